"""LAN on a noise-conditioned RAW model told a WRONG noise line: does LAN recover a mismatch?

    python bench/bench_lan_mismatch.py --model zoo:raw-unet-any --target SonyA7S2 \
        --factors 0.25,1,4 --iters 20 --out bench/results/.../lan_mismatch.json

The LAN protocol's RAW row (``rawadapt bench lan --raw-backbones zoo:raw-unet-any``) falls with
every iteration: the noise-conditioned network is told each image's true line, so there is no
noise mismatch for LAN to adapt to (LAN paper: a network pretrained on one noise, adapted to
another). This experiment makes the mismatch: the network is told ``factor x (a, b)`` and LAN
adapts its input offset (ZS-N2N) with that wrong line. If the reading holds, LAN lowers PSNR at
factor 1 and raises it where the line is wrong. Same test crops, seeds and crop as the protocol.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rawadapt.adapt.api import make_adapter
from rawadapt.data.registry import open_dataset
from rawadapt.eval.protocols.lan import LanProtocolSettings, image_noise, raw_test_samples
from rawadapt.models.checkpoint import load_model
from rawadapt.utils.atomic import write_json, write_text
from rawadapt.utils.compute import compute_record


def markdown(res: dict[str, Any]) -> str:
    """The summary as a Markdown table (``## Summary``)."""
    it = res["iters"]
    lines = [
        "# LAN with a wrong noise line (noise-conditioned RAW model)",
        "",
        f"{res['model']} on {res['images']} {res['target']} test crops of {res['data']} (the LAN protocol's); "
        f"the network is told factor x the profile's line; LAN ({res['method']}, zsn2n) for {it} iterations.",
        "",
        "## Summary",
        "",
        f"| line factor | pretrained (dB) | after {it} it. (dB) | change (dB) | images improved |",
        "|---|---|---|---|---|",
    ]
    for f, v in res["summary"].items():
        lines.append(
            f"| {f} | {v['before']:.2f} | {v['after']:.2f} | {v['after'] - v['before']:+.2f} | "
            f"{v['improved']}/{res['images']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="zoo:raw-unet-any")
    ap.add_argument("--data", default="synth")
    ap.add_argument("--target", default="SonyA7S2")
    ap.add_argument("--factors", default="0.25,1,4", help="comma-separated multipliers of the noise line")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--method", default="lan")
    ap.add_argument("--images", type=int, default=None, help="default: the protocol's (20 RAW)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, required=True, help="JSON file (STEM.md is written beside it)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = LanProtocolSettings(out=str(args.out.parent), raw_target=args.target, images=args.images)
    samples = raw_test_samples(settings, open_dataset(args.data))
    model, _ = load_model(args.model)
    if not getattr(model, "uses_noise", False):
        raise SystemExit(f"{args.model} is not noise-conditioned: it is told no noise line")
    adapter = make_adapter(model, args.method, loss="zsn2n", iters=args.iters)
    factors = [float(f) for f in args.factors.split(",")]
    per_image: dict[str, list[dict[str, float]]] = {}
    t0 = time.perf_counter()
    for f in factors:
        rows = []
        for k, s in enumerate(samples):
            line = image_noise(model, s)
            if line is None:
                raise SystemExit(f"{s.sample_id}: no noise line (no profile of {s.sensor!r} or no ISO)")
            told = (line[0] * f, line[1] * f)
            r = adapter.adapt(
                torch.from_numpy(s.noisy), clean=torch.from_numpy(s.clean), iso=s.effective_iso, cfa=s.cfa,
                seed=k, noise=told,
            )  # fmt: skip
            rows.append({"sample_id": s.sample_id, "before": r.psnr[0], "after": r.psnr[-1]})
        per_image[f"{f:g}"] = rows
        print(f"factor {f:g}: {np.mean([r['before'] for r in rows]):.2f} -> {np.mean([r['after'] for r in rows]):.2f}")
    summary = {
        k: {
            "before": float(np.mean([r["before"] for r in v])),
            "after": float(np.mean([r["after"] for r in v])),
            "improved": int(sum(r["after"] > r["before"] for r in v)),
        }
        for k, v in per_image.items()
    }
    res = {
        "model": args.model, "data": args.data, "target": args.target, "method": args.method, "iters": args.iters,
        "images": len(samples), "summary": summary, "per_image": per_image, "compute": compute_record(),
        "seconds": time.perf_counter() - t0,
    }  # fmt: skip
    write_json(args.out, res)
    write_text(args.out.with_name(args.out.stem + ".md"), markdown(res))


if __name__ == "__main__":
    main()
