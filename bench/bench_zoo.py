"""Zero-shot scores of a shipped zoo model on a dataset's test images (targets it never saw).

RAW: each image's noise line comes from its sensor's profile at its ISO and exposure ratio (what
`rawadapt denoise --profile` gives a calibrated camera); sRGB: blind. Writes a JSON with the
per-target PSNR of the model and of the noisy input.

    python bench/bench_zoo.py zoo:raw-unet-any --data synth --targets SonyA7S2,NikonD850,IP,GP --out F.json
    python bench/bench_zoo.py zoo:srgb-unet-m --data polyu:../shared/data/polyu --out F.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rawadapt.data.registry import open_dataset
from rawadapt.metrics import psnr
from rawadapt.models.checkpoint import load_model
from rawadapt.models.inference import denoise_image
from rawadapt.train.step import sample_line
from rawadapt.utils.compute import compute_record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--data", required=True)
    ap.add_argument("--targets", default=None)
    ap.add_argument("--split", default="test", help="test (records with split 'test') or all")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    model, _ = load_model(args.model)
    ds = open_dataset(args.data)
    targets = args.targets.split(",") if args.targets else ds.sensors
    per: dict[str, list[tuple[float, float]]] = {}
    t0 = time.perf_counter()
    for i, rec in enumerate(ds.records):
        if rec.sensor not in targets or (args.split == "test" and rec.split not in (None, "test")):
            continue
        s = ds[i]
        out = denoise_image(model, s.noisy, iso=s.effective_iso, cfa=s.cfa, noise=sample_line(s), tile=512)
        per.setdefault(rec.sensor, []).append((float(psnr(np.clip(out, 0, 1), s.clean)), float(psnr(s.noisy, s.clean))))
    res = {
        "model": args.model,
        "data": args.data,
        "compute": compute_record(),
        "seconds": time.perf_counter() - t0,
        "per_target": {
            t: {"n": len(v), "psnr": float(np.mean([a for a, _ in v])), "psnr_noisy": float(np.mean([b for _, b in v]))}
            for t, v in per.items()
        },
    }
    allv = [x for v in per.values() for x in v]
    res["all"] = {
        "n": len(allv),
        "psnr": float(np.mean([a for a, _ in allv])),
        "psnr_noisy": float(np.mean([b for _, b in allv])),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "compute"}, indent=1))


if __name__ == "__main__":
    main()
