"""The AIN network of transfer learning with adaptive instance normalisation (Kim, Soh, Park,
Cho, "Transfer Learning from Synthetic to Real-Noise Denoising with Adaptive Instance
Normalization", CVPR 2020), registered as ``ain-unet``: a noise-level estimator and a
reconstruction U-Net whose blocks are AIN residual blocks. The training recipe (noise-level
supervision, the transfer stage) is the ``ain-transfer`` baseline, :mod:`rawadapt.baselines.ain`,
whose docstring states the choices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rawadapt.models.base import Denoiser, crop_to, pad_to_multiple

#: the noise-level estimator works at 1/8 resolution
ESTIMATOR_STRIDE = 8


class AIN(nn.Module):
    """Adaptive instance normalisation driven by a noise-level map.

    Parameters
    ----------
    channels
        Feature channels.
    map_channels
        Channels of the noise-level map.
    hidden
        Width of the shared conv (default: ``channels``, as in Kim et al.).
    """

    def __init__(self, channels: int, map_channels: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = int(hidden or channels)
        self.shared = nn.Conv2d(map_channels, hidden, 3, padding=1)
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, h: torch.Tensor, noise_map: torch.Tensor) -> torch.Tensor:
        if noise_map.shape[-2:] != h.shape[-2:]:
            noise_map = F.adaptive_avg_pool2d(noise_map, (h.shape[-2], h.shape[-1]))
        t = F.relu(self.shared(noise_map))
        return F.instance_norm(h, eps=1e-5) * (1.0 + self.gamma(t)) + self.beta(t)


class AINResBlock(nn.Module):
    """``h + conv2(act(AIN2(conv1(act(AIN1(h))))))``."""

    def __init__(self, channels: int, map_channels: int) -> None:
        super().__init__()
        self.ain1 = AIN(channels, map_channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.ain2 = AIN(channels, map_channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, h: torch.Tensor, noise_map: torch.Tensor) -> torch.Tensor:
        r = self.conv1(self.act(self.ain1(h, noise_map)))
        r = self.conv2(self.act(self.ain2(r, noise_map)))
        return h + r


class NoiseLevelEstimator(nn.Module):
    """Kim et al.'s noise-level estimator (see the module docstring); output ``(B, C, H, W)``,
    non-negative, for inputs whose sides are multiples of :data:`ESTIMATOR_STRIDE`."""

    def __init__(self, channels: int, width: int = 16) -> None:
        super().__init__()
        self.enc1 = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU()
        )
        self.enc2 = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU()
        )
        self.to_map = nn.Conv2d(width, channels, 3, padding=1)
        self.refine = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.enc1(x)
        h = F.avg_pool2d(h, 4)
        h = self.enc2(h)
        h = F.avg_pool2d(h, 2)
        coarse = F.relu(self.to_map(h))
        up = F.interpolate(coarse, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return 0.8 * up + 0.2 * self.refine(up)


class AINUNet(Denoiser):
    """U-Net of AIN residual blocks with a noise-level estimator (Kim et al. CVPR 2020, CPU-sized).

    Parameters
    ----------
    in_channels
        4 (packed RAW) or 3 (sRGB).
    width, depth
        First-level width (doubling per level) and number of down-samplings.
    sensors
        Vocabulary (kept for the checkpoint; the network uses no metadata).
    est_width
        Width of the noise-level estimator.
    residual
        Predict ``x + f(x)``.
    """

    arch = "ain-unet"

    def __init__(
        self,
        in_channels: int = 4,
        *,
        width: int = 16,
        depth: int = 4,
        sensors: Sequence[str] | None = None,
        est_width: int = 16,
        residual: bool = True,
    ) -> None:
        super().__init__(in_channels, sensors)
        if depth < 1 or width < 1 or est_width < 1:
            raise ValueError("depth, width and est_width must be positive")
        self.width, self.depth, self.est_width, self.residual = int(width), int(depth), int(est_width), bool(residual)
        c = in_channels
        widths = [self.width * 2**i for i in range(self.depth + 1)]
        self.estimator = NoiseLevelEstimator(c, self.est_width)
        self.inc = nn.Conv2d(c, widths[0], 3, padding=1)
        self.enc = nn.ModuleList([AINResBlock(w, c) for w in widths])
        self.down = nn.ModuleList([nn.Conv2d(widths[i], widths[i + 1], 3, padding=1) for i in range(self.depth)])
        self.up = nn.ModuleList(
            [nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(self.depth))]
        )
        self.fuse = nn.ModuleList(
            [nn.Conv2d(2 * widths[i], widths[i], 3, padding=1) for i in reversed(range(self.depth))]
        )
        self.dec = nn.ModuleList([AINResBlock(widths[i], c) for i in reversed(range(self.depth))])
        self.head = nn.Conv2d(widths[0], c, 1)
        self.act = nn.LeakyReLU(0.2)

    def forward(
        self, x: torch.Tensor, sensor: torch.Tensor | None = None, iso: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.forward_with_map(x)[0]

    def forward_with_map(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(denoised, estimated noise-level map)``, both cropped to the input size."""
        self.check_input(x)
        multiple = max(2**self.depth, ESTIMATOR_STRIDE)
        xp, size = pad_to_multiple(x, multiple)
        m = self.estimator(xp)
        h = self.act(self.inc(xp))
        skips = []
        for i, block in enumerate(self.enc):
            h = block(h, m)
            if i < self.depth:
                skips.append(h)
                h = self.act(self.down[i](F.avg_pool2d(h, 2)))
        for up, fuse, block in zip(self.up, self.fuse, self.dec):
            h = up(h)
            h = self.act(fuse(torch.cat([h, skips.pop()], dim=1)))
            h = block(h, m)
        out = self.head(h)
        if self.residual:
            out = out + xp
        return crop_to(out, size), crop_to(m, size)

    def config(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "in_channels": self.in_channels,
            "width": self.width,
            "depth": self.depth,
            "sensors": list(self.sensors),
            "est_width": self.est_width,
            "residual": self.residual,
        }

    def first_layer(self) -> nn.Module:
        return self.inc

    def last_layer(self) -> nn.Module:
        return self.head
