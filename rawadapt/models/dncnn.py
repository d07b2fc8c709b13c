"""DnCNN (Zhang et al., TIP 2017): conv+ReLU, (conv+BN+ReLU) x (depth-2), conv; predicts the
noise residual, output ``x - net(x)``. One of LAN's backbones (LAN paper).

The original uses depth 17 and 64 channels; the CPU default here is depth 10, 32 channels.
Metadata (sensor, ISO) is accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from rawadapt.models.base import Denoiser


class DnCNN(Denoiser):
    """DnCNN residual denoiser.

    Parameters
    ----------
    in_channels
        4 (packed RAW) or 3 (sRGB).
    depth
        Number of convolution layers (>= 3).
    width
        Feature channels.
    batch_norm
        Batch normalisation in the middle layers, as in the original.
    """

    arch = "dncnn"

    def __init__(
        self,
        in_channels: int = 3,
        *,
        depth: int = 10,
        width: int = 32,
        batch_norm: bool = True,
        sensors: Sequence[str] | None = None,
    ) -> None:
        super().__init__(in_channels, sensors)
        if depth < 3:
            raise ValueError("DnCNN depth must be at least 3")
        self.depth, self.width, self.batch_norm = int(depth), int(width), bool(batch_norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(width, in_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(
        self, x: torch.Tensor, sensor: torch.Tensor | None = None, iso: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.check_input(x)
        return x - self.body(x)

    def config(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "in_channels": self.in_channels,
            "depth": self.depth,
            "width": self.width,
            "batch_norm": self.batch_norm,
            "sensors": list(self.sensors),
        }

    def first_layer(self) -> nn.Module:
        return self.body[0]

    def last_layer(self) -> nn.Module:
        return self.body[-1]
