"""No-reference check of a RAW denoiser on real noise: flat areas of a photograph (e.g. the
patches of a colour chart) should lose most of their noise and keep their mean.

Reads the noisy RAW file and the denoised DNG (`rawadapt denoise ... -o out.dng`), splits both
into packed planes normalised by their black/white levels, tiles them into ``--block`` ×
``--block`` blocks and keeps the FLAT ones: blocks whose noisy std is within ``--tolerance`` × the
std the image's own noise line predicts there (var = a·mean + b, fitted on all blocks by a robust
lower-envelope regression), i.e. blocks with no texture beyond noise, and a mean well above black
and below white. For those it reports the noise std before/after (ratio), and the relative change
of the block mean (|after − before| / before).

    python bench/bench_flat_patches.py NOISY.dng DENOISED.dng --out bench/results/.../flat.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rawadapt.io.raw import read_raw


def blocks(planes: np.ndarray, b: int) -> np.ndarray:
    c, h, w = planes.shape
    h, w = h - h % b, w - w % b
    x = planes[:, :h, :w].reshape(c, h // b, b, w // b, b)
    return x.transpose(0, 1, 3, 2, 4).reshape(c, -1, b * b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("noisy", type=Path)
    ap.add_argument("denoised", type=Path)
    ap.add_argument("--block", type=int, default=16)
    ap.add_argument("--tolerance", type=float, default=1.25)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    n, d = read_raw(args.noisy), read_raw(args.denoised)
    if n.planes.shape != d.planes.shape:
        raise SystemExit(f"shapes differ: {n.planes.shape} vs {d.planes.shape}")

    # read_raw gives planes already normalised by the file's black/white levels
    bn, bd = blocks(n.planes.astype(np.float64), args.block), blocks(d.planes.astype(np.float64), args.block)
    mean_n, std_n = bn.mean(-1), bn.std(-1)
    mean_d, std_d = bd.mean(-1), bd.std(-1)
    ok = (mean_n > 0.005) & (bn.max(-1) < 0.95)
    # noise line from the lower envelope: per mean bin, the 10th percentile of the block variance
    m, v = mean_n[ok], std_n[ok] ** 2
    edges = np.quantile(m, np.linspace(0, 1, 21))
    xs, ys = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=False):
        sel = (m >= lo) & (m <= hi)
        if sel.sum() >= 5:
            xs.append(float(np.median(m[sel])))
            ys.append(float(np.quantile(v[sel], 0.1)))
    a, b = np.polyfit(xs, ys, 1)
    predicted = np.sqrt(np.maximum(a * mean_n + b, 1e-12))
    flat = ok & (std_n <= args.tolerance * predicted)
    ratio = std_n[flat] / np.maximum(std_d[flat], 1e-12)
    shift = np.abs(mean_d[flat] - mean_n[flat]) / mean_n[flat]
    res = {
        "noisy": str(args.noisy),
        "denoised": str(args.denoised),
        "block": args.block,
        "noise_line": {"a": float(a), "b": float(b)},
        "flat_blocks": int(flat.sum()),
        "of_blocks": int(ok.sum()),
        "std_ratio_median": float(np.median(ratio)),
        "std_ratio_p10": float(np.quantile(ratio, 0.1)),
        "mean_shift_median_percent": float(100 * np.median(shift)),
        "mean_shift_p90_percent": float(100 * np.quantile(shift, 0.9)),
        "mean_shift_max_percent": float(100 * shift.max()),
        "share_std_halved": float((ratio >= 2).mean()),
        "share_mean_within_1_percent": float((shift <= 0.01).mean()),
    }
    print(json.dumps(res, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
