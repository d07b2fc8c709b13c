"""AdamW construction and the per-stage learning-rate schedule.

The schedule is a pure function of the in-stage iteration (``lr_at(i)``), written into the
optimizer's param groups before each step. It has no state of its own, so an interrupted run
resumes with exactly the LR it would have had, and a stage that rejects steps (ADL) can still set
the LR of iteration ``i`` directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from rawadapt.train.config import OptimConfig


@dataclass(frozen=True)
class LRSchedule:
    """Linear warm-up, then cosine decay (or constant) over one stage.

    Parameters
    ----------
    peak
        Peak learning rate.
    iters
        Stage length.
    kind
        ``"cosine"`` or ``"constant"``.
    warmup
        Warm-up iterations (clipped to ``iters``); LR grows linearly from ``peak / warmup``.
    min_factor
        Cosine floor, as a fraction of ``peak``, reached at the last iteration.
    """

    peak: float
    iters: int
    kind: str = "cosine"
    warmup: int = 0
    min_factor: float = 0.01

    @staticmethod
    def from_config(optim: OptimConfig, peak: float, iters: int) -> LRSchedule:
        return LRSchedule(float(peak), int(iters), optim.schedule, int(optim.warmup), float(optim.min_lr_factor))

    def lr_at(self, i: int) -> float:
        """LR of in-stage iteration ``i`` (0-based)."""
        warm = min(self.warmup, self.iters)
        if warm > 0 and i < warm:
            return self.peak * (i + 1) / warm
        if self.kind == "constant":
            return self.peak
        span = max(1, self.iters - warm - 1)
        t = min(1.0, max(0.0, (i - warm) / span))
        floor = self.peak * self.min_factor
        return floor + (self.peak - floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    def apply(self, optimizer: torch.optim.Optimizer, i: int) -> float:
        """Write ``lr_at(i)`` into every param group; return it."""
        lr = self.lr_at(i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr


def make_optimizer(model: torch.nn.Module, optim: OptimConfig, lr: float) -> torch.optim.Optimizer:
    """A fresh AdamW over the model's trainable parameters.

    The fused implementation (one kernel for all parameters; 10-15 % of a small U-Net's CPU
    training step, bench/bench_speed.py) where every parameter is a float tensor on CPU or CUDA,
    torch's default otherwise. Both are deterministic for a given device and thread count, which
    exact resume needs.
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    fused = bool(params) and all(p.dtype == torch.float32 and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(
        params, lr=lr, betas=(optim.betas[0], optim.betas[1]), weight_decay=optim.weight_decay, fused=fused or None
    )
