"""Blind2Unblind with the authors' non-residual U-Net (``base=none``) vs ``base=interp``.

An investigation behind BENCHMARKS.md §1: at CPU budgets B2U ends below its noisy input on
``synth``. ``base=interp`` predicts a correction to the masker's neighbour average (zero-initialised
head) instead of the clean image, so it starts from a denoiser rather than from a random
network; if B2U's loss at ``medium`` is the non-residual start, this variant closes the gap.

    .venv/bin/python bench/bench_b2u_base.py --targets NikonD850 --bases interp \
        --out runs/benchmarks/b2u-base/NikonD850.json

Prints one Markdown row per (target, base) and writes them as JSON (atomically).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="NikonD850", help="synth sensors, comma-separated")
    ap.add_argument("--bases", default="none,interp", help="b2u 'base' options, comma-separated")
    ap.add_argument("--budget", default="medium")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True, help="JSON file")
    args = ap.parse_args(argv)

    import torch

    from rawadapt.baselines.base import make_method, make_task
    from rawadapt.eval.protocols.settings import resolve_budget
    from rawadapt.metrics import evaluate_pair
    from rawadapt.utils.atomic import write_text

    torch.set_num_threads(args.threads)
    budget = resolve_budget(args.budget)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for target in args.targets.split(","):
            task = make_task("synth", target, target_pairs=20, seed=args.seed, work_dir=work, threads=args.threads)
            before = [evaluate_pair(s.noisy, s.clean)["psnr"] for s in task.test]
            for base in args.bases.split(","):
                method = make_method("b2u", budget=budget, base=base)
                t0 = time.perf_counter()
                method.run_fit(task)
                fit_s = time.perf_counter() - t0
                after = [evaluate_pair(method.denoise(s), s.clean)["psnr"] for s in task.test]
                row = {
                    "target": target,
                    "base": base,
                    "budget": args.budget,
                    "seed": args.seed,
                    "psnr": float(np.mean(after)),
                    "psnr_noisy": float(np.mean(before)),
                    "test_images": len(after),
                    "fit_s": fit_s,
                }
                rows.append(row)
                print(f"| {target} | {base} | {row['psnr_noisy']:.2f} | {row['psnr']:.2f} | {fit_s:.0f} |", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
