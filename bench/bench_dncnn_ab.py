"""Short A/B of sRGB training variants on synth-srgb batches: does the network leave the identity?

    python bench/bench_dncnn_ab.py recipe 300        # DnCNN-S, L1, lr 5e-4 (the first recipe)
    python bench/bench_dncnn_ab.py recipe-lr1e4 800  # ... lr 1e-4 (the shipped recipe)
    python bench/bench_dncnn_ab.py recipe-l2 800     # ... the L2 loss
    python bench/bench_dncnn_ab.py unet-fp32 300     # the U-Net of srgb-unet-m, fp32

Prints, every 50 steps, the mean ratio of the training loss to the identity's loss on the same
batch (< 1: the network denoises; 1: it outputs its input), then the ratio in eval mode on 10
fresh batches. Variant names combine: ``unet`` (else DnCNN 17x64), ``nobn``, ``noinit`` (no
zeroed last layer), ``fp32`` (else the compute policy's bf16 where the CPU has it), ``lr1e3`` /
``lr1e4`` (else 5e-4), ``l2`` (else L1), ``noclip`` (else gradient norm 1.0). The data are the
patches of the srgb-dncnn-s recipe (synth-srgb's six sources, 64x64, batch 8, seed 0). Written
to find why the first srgb-dncnn-s build learned the identity (BENCHMARKS.md §7).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from rawadapt.data.patches import PatchSampler
from rawadapt.models.registry import build_model
from rawadapt.train.api import identity_init
from rawadapt.train.datasets import prepare_data
from rawadapt.train.recipes import load_recipe


def main() -> None:
    variant = sys.argv[1] if len(sys.argv) > 1 else "recipe"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    data = prepare_data(load_recipe("srgb-dncnn-s").config)
    sampler = PatchSampler([s for ss in data.sources.values() for s in ss], seed=0, patch=64, batch=8)
    torch.manual_seed(0)
    if "unet" in variant:
        kw = {"arch": "unet", "width": 24, "depth": 4, "use_sensor": False, "use_iso": False}
    else:
        kw = {"arch": "dncnn", "depth": 17, "width": 64, "batch_norm": "nobn" not in variant}
    model = build_model({**kw, "in_channels": 3, "sensors": []})
    if "noinit" not in variant:
        identity_init(model, 0.0)
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    model.set_precision("fp32" if "fp32" in variant else "auto")
    lr = 1e-3 if "lr1e3" in variant else (1e-4 if "lr1e4" in variant else 5e-4)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0)

    def ratio(out: torch.Tensor, b: object) -> tuple[torch.Tensor, float]:
        if "l2" in variant:
            loss, ident = ((out - b.clean) ** 2).mean(), ((b.noisy - b.clean) ** 2).mean()  # type: ignore[attr-defined]
        else:
            loss, ident = (out - b.clean).abs().mean(), (b.noisy - b.clean).abs().mean()  # type: ignore[attr-defined]
        return loss, float(loss.detach()) / float(ident)

    ratios: list[float] = []
    t0 = time.time()
    for i in range(steps):
        b = sampler.draw()
        model.train()
        opt.zero_grad()
        loss, r = ratio(model(b.noisy), b)
        loss.backward()
        if "noclip" not in variant:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ratios.append(r)
        if (i + 1) % 50 == 0:
            print(f"{variant} {i + 1} ratio {np.mean(ratios[-50:]):.3f} {time.time() - t0:.0f}s", flush=True)
    model.eval()
    with torch.no_grad():
        ev = [ratio(model(b.noisy), b)[1] for b in (sampler.draw() for _ in range(10))]
    print(f"{variant} EVAL ratio {np.mean(ev):.3f}", flush=True)


if __name__ == "__main__":
    main()
