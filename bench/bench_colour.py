"""Colour fidelity of sRGB models: flat saturated patches and a colour chart at sigma 6/255.

    python bench/bench_colour.py zoo:srgb-unet-m --out bench/results/.../srgb-unet-m_colour.json

A denoiser must not move colours (model-zoo issue): each patch's mean after denoising minus its
true colour, per channel, in 8-bit units (:func:`rawadapt.eval.colour.colour_fidelity`). The
issue's six flat patches (and yellow) come first, then the 24 chart patches (``chart:NAME``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rawadapt.eval.colour import colour_fidelity
from rawadapt.models.checkpoint import load_model
from rawadapt.utils.atomic import write_json
from rawadapt.utils.compute import compute_record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="zoo:NAME or a run folder")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    model, _ = load_model(args.model)
    res = colour_fidelity(model)
    flat = [p for p in res.patches if not p.name.startswith("chart:")]
    chart = [p for p in res.patches if p.name.startswith("chart:")]
    out = {
        "model": args.model,
        "sigma": "6/255",
        "max_abs_shift_flat_patches": round(max(p.max_abs for p in flat), 3),
        "max_abs_shift_chart": round(max(p.max_abs for p in chart), 3),
        "chart_within_2": sum(p.max_abs <= 2.0 for p in chart),
        "chart_n": len(chart),
        "patches": res.to_dict()["patches"],
        "compute": compute_record(),
    }
    write_json(args.out, out)
    print({k: v for k, v in out.items() if k not in ("patches", "compute")})


if __name__ == "__main__":
    main()
