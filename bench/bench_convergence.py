"""PSNR-vs-iteration curves of the benchmark's trained methods (benchmark v2, "convergence").

Runs the SAME configuration a benchmark cell uses (:meth:`TrainedMethod.config` under a named
budget) with more iterations and a periodic evaluation, then writes ``curves.json``,
``curves.md`` and ``curves.png``. The periodic evaluation is on ``--eval-images`` of the
target's held-out test images and is a report only: nothing is selected on it.

    python bench/bench_convergence.py --data synth --targets SonyA7S2,IP --budget medium \
        --scale 3 --eval-every 100 --threads 1 --out /tmp/runs/convergence

``--scale 3``: target-only trains 3x the budget's total steps; fine-tuning keeps its source
pretraining and trains its target stage for 3x the budget's total steps as well (so both curves
cover the same target-step axis; the budget's own split is marked on the plot).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

import torch

from rawadapt.baselines.base import make_method, make_task
from rawadapt.eval.protocols.settings import resolve_budget
from rawadapt.eval.tables import markdown_table
from rawadapt.train.api import run_training
from rawadapt.train.config import deep_update
from rawadapt.utils.atomic import write_json, write_text
from rawadapt.utils.compute import compute_record


def _curve(run: Path) -> list[dict[str, Any]]:
    path = run / "eval.csv"
    if not path.is_file():
        return []
    with path.open() as fh:
        return [
            {
                "step": int(r["step"]),
                "stage": r["stage"],
                "psnr": float(r["psnr"]),
                "psnr_noisy": float(r["psnr_noisy"]),
            }
            for r in csv.DictReader(fh)
            if r.get("psnr")
        ]


def run_one(args: argparse.Namespace, target: str, method: str, out: Path) -> dict[str, Any]:
    budget = resolve_budget(args.budget)
    total = budget.pretrain_iters + budget.iters + budget.finetune_iters
    task = make_task(
        args.data, target, target_pairs=args.target_pairs, seed=args.seed, work_dir=out, threads=args.threads
    )
    m = make_method(method, budget=budget)
    cfg = m.config(task)
    long = total * args.scale
    if method == "finetune":
        over = {"finetune_iters": long}
        target_offset = budget.pretrain_iters + budget.iters  # source steps before the target stage
    else:
        over = {"iters": long}
        target_offset = 0
    cfg = type(cfg).model_validate(
        deep_update(cfg.model_dump(), {**over, "eval_every": args.eval_every, "eval_images": args.eval_images})
    )
    run = out / target / method
    t0 = time.perf_counter()
    resume = (run / "training_state.pt").is_file()
    metrics = run_training(cfg, run, resume=resume, progress=False, dataset=task.dataset)
    curve = _curve(run)
    return {
        "target": target,
        "method": method,
        "budget_total": total,
        "target_offset": target_offset,
        "budget_target_steps": total if method != "finetune" else budget.finetune_iters,
        "curve": [{**p, "target_step": p["step"] - target_offset} for p in curve if p["step"] > target_offset],
        "final_psnr_all_test": metrics.get("psnr"),
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="synth")
    ap.add_argument("--targets", default="SonyA7S2,IP")
    ap.add_argument("--methods", default="target-only,finetune")
    ap.add_argument("--budget", default="medium")
    ap.add_argument("--scale", type=int, default=3)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-images", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target-pairs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for t in args.targets.split(","):
        for m in args.methods.split(","):
            results.append(run_one(args, t, m, args.out))
            write_json(
                args.out / "curves.json",
                {"args": vars(args) | {"out": str(args.out)}, "compute": compute_record(), "runs": results},
            )
    # table: PSNR at the budget's target steps, at 2x and at the end
    rows = []
    for r in results:
        pts = {p["target_step"]: p["psnr"] for p in r["curve"]}

        def at(step: int, pts: dict[int, float] = pts) -> str:
            near = min(pts, key=lambda s: abs(s - step)) if pts else None
            return f"{pts[near]:.2f} @{near}" if near is not None else "-"

        b = r["budget_target_steps"]
        best = max(pts.values()) if pts else float("nan")
        rows.append([r["target"], r["method"], at(b), at(2 * b), at(max(pts) if pts else 0), f"{best:.2f}"])
    md = markdown_table(["target", "method", "at budget's target steps", "at 2x", "at the end", "best"], rows)
    write_text(args.out / "curves.md", "\n".join(md) + "\n")
    _plot(results, args.out / "curves.png")
    print("\n".join(md))


def _plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = sorted({r["target"] for r in results}, key=[r["target"] for r in results].index)
    fig, axes = plt.subplots(1, len(targets), figsize=(5 * len(targets), 3.6), squeeze=False)
    for ax, t in zip(axes[0], targets, strict=False):
        for r in results:
            if r["target"] != t or not r["curve"]:
                continue
            xs = [p["target_step"] for p in r["curve"]]
            ax.plot(xs, [p["psnr"] for p in r["curve"]], label=f"{r['method']} (budget: {r['budget_target_steps']})")
            ax.axvline(r["budget_target_steps"], ls=":", lw=0.8, color=ax.lines[-1].get_color())
        ax.set_title(t)
        ax.set_xlabel("target steps")
        ax.set_ylabel("PSNR (dB), held-out images")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
