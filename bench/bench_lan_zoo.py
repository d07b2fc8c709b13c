"""LAN (and full fine-tuning, at the same iterations) on a shipped zoo model, per PolyU image.

    python bench/bench_lan_zoo.py zoo:srgb-unet-m --polyu ../shared/data/polyu --images 20 --crop 256 \
        --methods lan,full --iters 20 --out bench/results/.../lan_zoo.json

Evenly spaced PolyU pairs, top-left ``--crop`` crops (the LAN protocol's choice); ZS-N2N loss, the
LAN paper's settings (Adam, lr 5e-4 for LAN and 5e-6 for fine-tuning, a fresh start per image).
Reports the mean PSNR after 0 (the pretrained network), 5, 10 and 20 updates and the seconds per
image.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rawadapt.adapt.api import adapt_image
from rawadapt.data.registry import open_dataset
from rawadapt.models.checkpoint import load_model
from rawadapt.utils.compute import compute_record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--polyu", default="../shared/data/polyu")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--methods", default="lan,full")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--loss", default="zsn2n")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    model, _ = load_model(args.model)
    ds = open_dataset(f"polyu:{args.polyu}")
    idx = np.linspace(0, len(ds) - 1, args.images).round().astype(int)
    out: dict[str, dict[str, list[float]]] = {}
    noisy_psnr = []
    t0 = time.perf_counter()
    for m in args.methods.split(","):
        curves, secs = [], []
        for i in idx:
            s = ds[int(i)]
            c = args.crop
            y, x = s.noisy[:, :c, :c], s.clean[:, :c, :c]
            r = adapt_image(model, y, method=m, loss=args.loss, iters=args.iters, clean=x)
            curves.append(r.psnr)
            secs.append(r.seconds)
            if m == args.methods.split(",")[0]:
                noisy_psnr.append(r.psnr_noisy)
        arr = np.asarray(curves)
        out[m] = {
            "psnr_at": {str(k): float(arr[:, k].mean()) for k in (0, 5, 10, args.iters) if k <= args.iters},
            "gain_at_end_per_image": [float(v) for v in arr[:, -1] - arr[:, 0]],
            "seconds_per_image": float(np.mean(secs)),
        }
    res = {
        "model": args.model,
        "images": len(idx),
        "crop": args.crop,
        "loss": args.loss,
        "psnr_noisy": float(np.mean(noisy_psnr)),
        "methods": out,
        "compute": compute_record(),
        "seconds": time.perf_counter() - t0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "compute"}, indent=1)[:2000])


if __name__ == "__main__":
    main()
