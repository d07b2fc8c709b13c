"""Zero-Shot Noise2Noise (Mansour & Heckel, "Zero-Shot Noise2Noise: Efficient Image Denoising
without any Data", CVPR 2023) - the ADL paper's Table 1 "ZS-N2N" row.

Per test image, a fresh tiny network is trained on that image alone (the LAN paper):

* network: 3x3 conv (C -> 48) + LeakyReLU(0.2), 3x3 conv (48 -> 48) + LeakyReLU(0.2),
  1x1 conv (48 -> C); it predicts the NOISE, the denoiser is ``f(y) = y - net(y)``;
* loss: :func:`rawadapt.adapt.losses.zsn2n_loss` (the two fixed diagonal 2x2 down-samplers,
  residual + consistency terms), shared with LAN;
* Adam, lr 1e-3, the paper's 2000 steps with the lr halved at step 1500 -> here
  ``budget.per_image_iters`` steps (tiny 5, quick 100, default 500) with the lr halved at the
  same 75 % point;
* RAW: on the 4 packed planes (the down-samplers act on the packed planes, never the mosaic).

The output is ``y - net(y)`` of the trained network on the full image (not clipped; the
original clamps to [0, 1]). Its cost per image is measured in docs/baselines.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rawadapt.adapt.losses import check_input, zsn2n_loss
from rawadapt.baselines.perimage import ImageMethod, image_seed, seeded_torch
from rawadapt.errors import ConfigError
from rawadapt.utils.compute import policy_forward

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from rawadapt.data.sample import Sample

#: the paper's schedule: 2000 steps, lr halved at 1500
PAPER_ITERS = 2000
PAPER_HALVE_AT = 1500


def build_zsn2n_net(channels: int, width: int = 48) -> torch.nn.Module:
    """ZS-N2N's two-layer convolutional network (predicts the noise)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(width, width, 3, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(width, channels, 1),
    )


def train_zsn2n(
    noisy: np.ndarray,
    *,
    iters: int,
    lr: float = 1e-3,
    width: int = 48,
    seed: int = 0,
    halve_at: float = PAPER_HALVE_AT / PAPER_ITERS,
) -> tuple[np.ndarray, list[float]]:
    """Fit ZS-N2N on one ``(C, H, W)`` image; return the denoised image and the loss curve.

    Parameters
    ----------
    noisy
        The image (3 sRGB or 4 packed RAW planes), at least 2x2 pixels.
    iters
        Adam steps (>= 0; 0 returns the untrained network's output).
    lr
        Initial learning rate, halved after ``halve_at * iters`` steps.
    width
        Hidden channels (48 in the paper).
    seed
        Seeds the network initialisation.
    """
    import torch

    y = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32))[None]
    with seeded_torch(seed):
        net = build_zsn2n_net(y.shape[1], width)

    def f(x: torch.Tensor) -> torch.Tensor:
        return x - policy_forward(net, x)

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    step_at = max(1, int(round(halve_at * iters)))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=step_at, gamma=0.5)
    losses: list[float] = []
    for _ in range(int(iters)):
        loss = zsn2n_loss(f, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    with torch.inference_mode():
        out = f(y)[0].numpy()
    return out, losses


class ZSN2N(ImageMethod):
    """Zero-Shot Noise2Noise, trained on each test image (see the module docstring).

    Options
    -------
    iters
        Steps per image (default ``budget.per_image_iters``).
    lr
        Initial Adam learning rate (default 1e-3, the paper's).
    width
        Hidden channels (default 48, the paper's).

    References
    ----------
    Mansour & Heckel, CVPR 2023; the LAN paper; ADL paper (ADL paper) Table 1, §4.1.
    """

    name = "zsn2n"
    description = "Zero-Shot Noise2Noise: a 2-conv network trained on each test image"
    reference = "Mansour & Heckel CVPR 2023; ADL paper Table 1"
    known_options: ClassVar[tuple[str, ...]] = ("iters", "lr", "width", "progress")

    def __init__(self, budget: Any = None, **options: Any) -> None:
        super().__init__(budget, **options)
        self.iters = int(self.option("iters", self.budget.per_image_iters))
        self.lr = float(self.option("lr", 1e-3))
        self.width = int(self.option("width", 48))
        if self.iters < 0 or self.lr <= 0 or self.width < 1:
            raise ConfigError(
                f"zsn2n: iters must be >= 0, lr > 0 and width >= 1 (got {self.iters}, {self.lr}, {self.width})"
            )

    def denoise_array(self, noisy: np.ndarray, sample: Sample) -> np.ndarray:
        import torch

        check_input(torch.from_numpy(noisy)[None], what=f"zsn2n input {sample.sample_id or ''}".strip())
        out, losses = train_zsn2n(
            noisy, iters=self.iters, lr=self.lr, width=self.width, seed=image_seed(self.seed, self.name, sample)
        )
        self.last_info = {"iters": self.iters, "final_loss": losses[-1] if losses else None}
        return out
