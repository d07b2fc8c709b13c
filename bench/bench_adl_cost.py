"""Cost of one ADL iteration vs one plain fine-tuning iteration on the same merged batch.

Issue 5 item 8 asks for an ADL iteration to cost at most 1.3x a plain fine-tuning iteration of
the same batch. Both sides here draw the same kind of batch (``batch`` source patches + up to
``target_batch`` T_train patches, ``patch`` px) and take one AdamW step of the same model; ADL
adds the in-place snapshot, the validation forward pass on |V'| fixed crops (under
``torch.inference_mode``) and, on a reject, the in-place restore. |V'| grows from 20 % to 50 %
of the pool over the stage, so the script measures the whole schedule (mean) and its last
iterations (worst case).

    .venv/bin/python bench/bench_adl_cost.py            # CPU defaults
    .venv/bin/python bench/bench_adl_cost.py --quick    # fewer iterations

Prints a Markdown table; ``--out FILE.json`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import date

import numpy as np
import torch

from rawadapt.data.patches import Batch, PatchSampler
from rawadapt.data.sample import Sample
from rawadapt.models import build_model
from rawadapt.train.adl import AdaptiveLearning
from rawadapt.train.adl_config import ADLConfig
from rawadapt.train.step import train_step


def _samples(rng: np.random.Generator, sensor: str, n: int, size: int) -> list[Sample]:
    out = []
    for i in range(n):
        clean = rng.random((4, size, size), dtype=np.float32) * 0.8 + 0.1
        noisy = clean + 0.03 * rng.standard_normal(clean.shape).astype(np.float32)
        out.append(Sample(noisy=noisy, clean=clean, sensor=sensor, iso=800.0, cfa="RGGB", sample_id=f"{sensor}{i}"))
    return out


def measure(
    *,
    width: int,
    depth: int,
    patch: int,
    batch: int,
    target_batch: int,
    pool: int,
    val_crop: int,
    iters: int,
    criterion: str,
    seed: int = 0,
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    sources = {d: _samples(rng, d, 16, 128) for d in ("s1", "s2", "s3")}
    target = _samples(rng, "t", pool, 128)
    torch.manual_seed(seed)
    model = build_model(
        {"arch": "unet", "in_channels": 4, "width": width, "depth": depth, "sensors": ["s1", "s2", "s3", "t"]}
    )
    cfg = ADLConfig(criterion=criterion, val_crop=val_crop, target_batch=target_batch)

    # plain fine-tuning: the same merged batch composition, one step each
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    src = {d: PatchSampler(s, patch=patch, batch=batch, seed=1) for d, s in sources.items()}
    tgt = PatchSampler(target, patch=patch, batch=batch, seed=2)
    plain = []
    for it in range(iters + 3):
        t0 = time.perf_counter()
        b = Batch.cat([src[f"s{1 + it % 3}"].draw(), tgt.draw(min(target_batch, pool // 2))])
        train_step(model, opt, b)
        if it >= 3:
            plain.append(time.perf_counter() - t0)

    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    learner = AdaptiveLearning(
        model,
        opt,
        sources={d: PatchSampler(s, patch=patch, batch=batch, seed=3) for d, s in sources.items()},
        target_pool=target,
        target_sampler=PatchSampler(target, patch=patch, batch=batch, seed=4),
        total_iters=iters,
        cfg=cfg,
        seed=seed,
    )
    learner.step()  # warm-up (also seeds the queue)
    adl = []
    for _ in range(iters - 1):
        t0 = time.perf_counter()
        learner.step()
        adl.append(time.perf_counter() - t0)
    tail = max(1, len(adl) // 5)
    p = statistics.median(plain)
    return {
        "plain_s": p,
        "adl_s": statistics.mean(adl),
        "adl_last_s": statistics.mean(adl[-tail:]),
        "ratio_mean": statistics.mean(adl) / statistics.mean(plain),
        "ratio_last": statistics.mean(adl[-tail:]) / p,
        "accept_rate": learner.accepted_total / max(1, learner.step_index),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    iters = 20 if a.quick else 60
    rows = []
    for crit in ("queue", "paired"):
        for val_crop in (64, 128):
            r = measure(
                width=16,
                depth=4,
                patch=64,
                batch=8,
                target_batch=8,
                pool=20,
                val_crop=val_crop,
                iters=iters,
                criterion=crit,
            )
            rows.append({"criterion": crit, "val_crop": val_crop, **r})
    print(
        f"ADL iteration cost vs plain fine-tuning iteration — {date.today()}, "
        f"{platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}; U-Net w16 d4, batch 8+8 patches of 64 px, "
        f"|T_adp| = 20 (|V'| 4 -> 10), {iters} iterations\n"
    )
    print("| criterion | val crop | plain step (ms) | ADL step, mean (ms) | ratio mean | ratio at |V'|=10 | accepted |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['criterion']} | {r['val_crop']} | {1e3 * r['plain_s']:.1f} | {1e3 * r['adl_s']:.1f} | "
            f"{r['ratio_mean']:.2f} | {r['ratio_last']:.2f} | {100 * r['accept_rate']:.0f} % |"
        )
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
