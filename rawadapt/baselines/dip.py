"""Deep Image Prior (Ulyanov, Vedaldi & Lempitsky, "Deep Image Prior", CVPR 2018 / IJCV 2020) -
the ADL paper's Table 1 "DIP" row ("trained on each test image", §4.1).

Per test image a randomly initialised encoder-decoder ``g`` maps a FIXED random code ``z`` to an
image and is fitted to the noisy image by MSE; the network reproduces structure long before
noise, so the output at the right moment is denoised. Faithful to the authors' denoising
set-up, at CPU scale:

* network: their "skip" architecture - per scale a stride-2 3x3 conv + BN + LeakyReLU(0.2),
  a 3x3 conv + BN + LeakyReLU, bilinear x2 up-sampling, concatenation with a 1x1-conv skip
  branch (4 channels), BN, 3x3 conv + BN + LeakyReLU, 1x1 conv + BN + LeakyReLU; final 1x1
  conv + sigmoid; reflection padding. Paper: 5 scales of 128 channels; here ``budget.depth + 1``
  scales of ``4 x budget.width`` channels (tiny 3 x 16, quick 4 x 32, default 5 x 64);
* input: 32 channels of uniform noise times 1/10, perturbed at every step by Gaussian noise of
  std 1/30 (``reg_noise_std``); Adam, lr 0.01; the output is an exponential moving average of
  the outputs (their ``exp_weight = 0.99`` over 3000 steps, i.e. a ~100-step window; here the
  window is scaled to the budget: ``exp_weight = 1 - 30 / iters``, clipped to [0, 0.99]);
  when the run stops before the average has forgotten its first output (weight
  ``exp_weight ** step`` above 1 %), the last output is returned instead;
* RAW: on the 4 packed planes (4 output channels); sRGB: 3 channels.

Early stopping (DIP's weak point: run too long and the noise is fitted too). Rule, stated and
implemented without the clean image - Morozov's **discrepancy principle**: stop at the first
step whose data-fit MSE ``mean((g(z) - y)^2)`` falls to ``tau x`` the expected noise variance
``mean(a y + b)`` (``tau = 1``), the noise level estimated as for the other baselines
(:mod:`rawadapt.baselines.noise_level`, ``noise_source="auto"``: the target pool's noise model
after :meth:`fit`, else a blind estimate from the image); otherwise stop after ``iters`` steps
(``budget.per_image_iters``, the paper runs 1800-3000). A clean image ``x`` fitted exactly
would have ``mean((x - y)^2) = noise variance``: below it, noise is being fitted. The step and
the reason are recorded in ``method.last_info``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rawadapt.baselines.base import Task
from rawadapt.baselines.noise_level import (
    NoiseLevel,
    PoolNoiseModel,
    check_noise_source,
    pool_model_for,
    sample_noise_level,
)
from rawadapt.baselines.perimage import ImageMethod, image_seed, seeded_torch
from rawadapt.errors import ConfigError
from rawadapt.models.base import crop_to
from rawadapt.utils.compute import policy_forward

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from rawadapt.data.sample import Sample

#: input code channels and scales of the authors' denoising notebook
INPUT_DEPTH = 32
INPUT_SCALE = 0.1
REG_NOISE_STD = 1.0 / 30.0
#: the moving average is returned once its first (random-network) output weighs at most this
EMA_MAX_START_WEIGHT = 0.01
LR = 0.01


def _block(c_in: int, c_out: int, k: int, stride: int = 1) -> list[Any]:
    from torch import nn

    pad = (k - 1) // 2
    layers: list[Any] = []
    if pad:
        layers.append(nn.ReflectionPad2d(pad))
    layers += [nn.Conv2d(c_in, c_out, k, stride=stride), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True)]
    return layers


def build_skip_net(
    in_channels: int, out_channels: int, *, channels: int, scales: int, skip: int = 4, sigmoid: bool = True
) -> nn.Module:
    """DIP's "skip" encoder-decoder with ``scales`` levels of ``channels`` channels
    (``skip`` channels on the skip branches). Input sides must be multiples of ``2**scales`` and
    at least ``2**(scales + 1)``."""
    from torch import nn

    class Level(nn.Module):
        """One scale: skip branch at this resolution, down -> deeper levels -> up, merge."""

        def __init__(self, c_in: int, deeper: nn.Module | None) -> None:
            super().__init__()
            self.skip = nn.Sequential(*_block(c_in, skip, 1)) if skip else None
            self.down = nn.Sequential(*_block(c_in, channels, 3, stride=2), *_block(channels, channels, 3))
            self.deeper = deeper
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            c_cat = skip + channels
            self.merge = nn.Sequential(
                nn.BatchNorm2d(c_cat), *_block(c_cat, channels, 3), *_block(channels, channels, 1)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            import torch

            h = self.down(x)
            if self.deeper is not None:
                h = self.deeper(h)
            h = self.up(h)
            parts = [h] if self.skip is None else [self.skip(x), h]
            return self.merge(torch.cat(parts, dim=1))

    def make(c_in: int, remaining: int) -> nn.Module:
        return Level(c_in, make(channels, remaining - 1) if remaining > 1 else None)

    head: list[Any] = [nn.Conv2d(channels, out_channels, 1)]
    if sigmoid:
        head.append(nn.Sigmoid())
    return nn.Sequential(make(in_channels, int(scales)), *head)


@dataclass
class DIPResult:
    """Output of :func:`fit_dip`."""

    image: np.ndarray
    stopped_at: int
    reason: str
    losses: list[float]
    target_mse: float


def fit_dip(
    noisy: np.ndarray,
    *,
    iters: int,
    noise_var: float,
    tau: float = 1.0,
    channels: int = 32,
    scales: int = 4,
    lr: float = LR,
    seed: int = 0,
    exp_weight: float | None = None,
    sigmoid: bool = True,
) -> DIPResult:
    """Fit DIP to one ``(C, H, W)`` image with the discrepancy-principle stop (module docstring).

    Parameters
    ----------
    noisy
        The image.
    iters
        Maximum number of Adam steps (>= 1).
    noise_var
        Expected noise variance per pixel (mean over the image); ``tau * noise_var`` is the
        stopping threshold of the data-fit MSE (``<= 0`` disables the rule).
    tau
        Discrepancy factor (1 = Morozov's principle).
    channels, scales
        Network size.
    lr
        Adam learning rate.
    seed
        Seeds the network, the input code and its perturbations.
    exp_weight
        Exponential-average weight of the outputs (default ``1 - 30 / iters`` in [0, 0.99]).
    sigmoid
        Sigmoid output layer (the paper's; images in [0, 1]).
    """
    import torch

    if iters < 1:
        raise ConfigError(f"dip: iters must be >= 1, got {iters}")
    y = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32))[None]
    c, h, w = y.shape[1:]
    m = 2**scales
    # the code is drawn at a padded size (a multiple of 2**scales, at least 2 * 2**scales so the
    # deepest level keeps 2x2 pixels for its reflection padding); the loss uses the crop
    hp, wp = max(h + (-h) % m, 2 * m), max(w + (-w) % m, 2 * m)
    gen = torch.Generator().manual_seed(int(seed) % (2**63 - 1))
    with seeded_torch(seed):
        net = build_skip_net(INPUT_DEPTH, c, channels=channels, scales=scales, sigmoid=sigmoid)
    z = torch.rand((1, INPUT_DEPTH, hp, wp), generator=gen) * INPUT_SCALE
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    ew = float(np.clip(1.0 - 30.0 / iters, 0.0, 0.99)) if exp_weight is None else float(exp_weight)
    threshold = float(tau) * float(noise_var)
    avg: torch.Tensor | None = None
    losses: list[float] = []
    reason, stopped = "max_iters", int(iters)
    net.train()
    for step in range(1, int(iters) + 1):
        inp = z + torch.randn(z.shape, generator=gen) * REG_NOISE_STD
        out = crop_to(policy_forward(net, inp), (h, w))
        loss = torch.mean((out - y) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        mse = float(loss.detach())
        losses.append(mse)
        o = out.detach()
        avg = o.clone() if avg is None else avg.mul_(ew).add_(o, alpha=1.0 - ew)
        if threshold > 0 and mse <= threshold:
            reason, stopped = "discrepancy", step
            break
    assert avg is not None
    # The average starts at the first (random-network) output and forgets it as ew**step. An
    # early discrepancy stop (a very noisy image is matched within a few steps) would return an
    # average still dominated by it (measured: a 22 dB NikonD850 test image stopped at step 7
    # came out at 12.5 dB): return then the output that passed the rule itself.
    if ew**stopped > EMA_MAX_START_WEIGHT:
        return DIPResult(o[0].numpy(), stopped, reason, losses, threshold)
    return DIPResult(avg[0].numpy(), stopped, reason, losses, threshold)


class DIP(ImageMethod):
    """Deep Image Prior fitted to each test image, stopped by the discrepancy principle.

    Options
    -------
    iters
        Maximum steps per image (default ``budget.per_image_iters``).
    tau
        Discrepancy factor (default 1.0; ``0`` disables early stopping).
    noise_source
        Noise level for the stopping rule (default ``"auto"``; see
        :mod:`rawadapt.baselines.noise_level`).
    channels, scales
        Network size (default ``4 x budget.width`` channels, ``budget.depth + 1`` scales).
    lr
        Adam learning rate (default 0.01, the paper's).

    References
    ----------
    Ulyanov, Vedaldi & Lempitsky, CVPR 2018 / IJCV 128, 2020; Morozov's discrepancy principle
    (V. A. Morozov, Soviet Math. Dokl. 7, 1966); ADL paper (ADL paper) Table 1, §4.1.
    """

    name = "dip"
    description = "Deep Image Prior per test image, discrepancy-principle early stopping"
    reference = "Ulyanov et al. CVPR 2018; ADL paper Table 1"
    known_options: ClassVar[tuple[str, ...]] = (
        "iters",
        "tau",
        "noise_source",
        "channels",
        "scales",
        "lr",
        "exp_weight",
        "sigmoid",
        "progress",
    )

    def __init__(self, budget: Any = None, **options: Any) -> None:
        super().__init__(budget, **options)
        b = self.budget
        self.iters = int(self.option("iters", b.per_image_iters))
        self.tau = float(self.option("tau", 1.0))
        self.noise_source = check_noise_source(str(self.option("noise_source", "auto")))
        self.channels = int(self.option("channels", 4 * b.width))
        self.scales = int(self.option("scales", b.depth + 1))
        self.lr = float(self.option("lr", LR))
        ew = self.option("exp_weight", None)
        self.exp_weight = None if ew is None else float(ew)
        self.sigmoid = bool(self.option("sigmoid", True))
        if self.iters < 1 or self.channels < 1 or self.scales < 1 or self.lr <= 0 or self.tau < 0:
            raise ConfigError(
                f"dip: invalid options iters={self.iters}, channels={self.channels}, "
                f"scales={self.scales}, lr={self.lr}, tau={self.tau}"
            )
        self.pool: PoolNoiseModel | None = None

    def fit(self, task: Task) -> None:
        """Record the target; fit the pool noise model when ``noise_source`` needs it."""
        super().fit(task)
        self.pool = pool_model_for(self.noise_source, task.target_pool)

    def noise_level(self, sample: Sample) -> NoiseLevel:
        return sample_noise_level(sample, self.noise_source, profile=self.target, pool=self.pool)

    def denoise_array(self, noisy: np.ndarray, sample: Sample) -> np.ndarray:
        level = self.noise_level(sample)
        res = fit_dip(
            noisy,
            iters=self.iters,
            noise_var=level.mean_variance(noisy),
            tau=self.tau,
            channels=self.channels,
            scales=self.scales,
            lr=self.lr,
            seed=image_seed(self.seed, self.name, sample),
            exp_weight=self.exp_weight,
            sigmoid=self.sigmoid,
        )
        self.last_info = {
            "stopped_at": res.stopped_at,
            "reason": res.reason,
            "target_mse": res.target_mse,
            "final_mse": res.losses[-1],
            "noise": level.to_dict(),
        }
        return res.image
