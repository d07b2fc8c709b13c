"""SID-style U-Net with ADL's channel-wise modulation (the ADL paper; ADL paper §3.2).

Per level two 3x3 convolutions + LeakyReLU(0.2), 2x2 max-pool down, 2x2 transposed conv up,
skip concatenation, final 1x1 convolution; the input is padded to a multiple of 2**depth.
Widths are ``width * 2**level``: the field's 32-64-128-256-512 is ``width=32, depth=4``; the CPU
default is ``width=16`` (an 8x cheaper network that trains in minutes on 2 cores).

Modulation (:class:`~rawadapt.models.modulation.Modulation`) is applied to the output of every
3x3 convolution, before its activation. With both ``use_sensor`` and ``use_iso`` off the network
is the plain U-Net (no modulation parameters at all).

``residual=True`` (default) predicts ``x + net(x)``: identical capacity, but a tiny CPU-budget
network starts from the identity instead of from zero, which converges much faster. The SID
original predicts the clean image directly (``residual=False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from rawadapt.models.base import crop_to, pad_to_multiple
from rawadapt.models.conditioned import ConditionedDenoiser
from rawadapt.models.modulation import (
    DEFAULT_ISO_REF,
    DEFAULT_ISO_SCALE,
    Mods,
    modulate,
)


class _DoubleConv(nn.Module):
    """Two modulated 3x3 convolutions; ``key`` names them in the modulation (``key.conv1/2``)."""

    def __init__(self, c_in: int, c_out: int, key: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.key = key

    def modulated(self) -> dict[str, int]:
        return {f"{self.key}.conv1": self.conv1.out_channels, f"{self.key}.conv2": self.conv2.out_channels}

    def forward(self, x: torch.Tensor, mods: Mods) -> torch.Tensor:
        x = self.act(modulate(self.conv1(x), mods, f"{self.key}.conv1"))
        return self.act(modulate(self.conv2(x), mods, f"{self.key}.conv2"))


class UNet(ConditionedDenoiser):
    """U-Net denoiser with optional sensor-type + ISO modulation.

    Parameters
    ----------
    in_channels
        4 (packed RAW) or 3 (sRGB); output has the same channels.
    width
        Channels of the first level (doubles per level).
    depth
        Number of down-samplings (levels = depth + 1).
    sensors
        Sensor vocabulary (order defines the one-hot code). May be empty when modulation is off.
    use_sensor, use_iso
        Modulation switches (ablations). All three off = plain U-Net.
    use_noise
        Also modulate on the image's noise parameters (:mod:`rawadapt.noise.conditioning`).
    ksigma
        k-sigma transform of the input to one anchor noise level (PMRID §3.2); needs ``noise``.
    mod_hidden
        Hidden width of the modulation MLPs.
    residual
        Predict ``x + net(x)`` (default) instead of the clean image directly.
    """

    arch = "unet"

    def __init__(
        self,
        in_channels: int = 4,
        *,
        width: int = 16,
        depth: int = 4,
        sensors: Sequence[str] | None = None,
        use_sensor: bool = True,
        use_iso: bool = True,
        mod_hidden: int = 64,
        residual: bool = True,
        iso_ref: float = DEFAULT_ISO_REF,
        iso_scale: float = DEFAULT_ISO_SCALE,
        use_noise: bool = False,
        ksigma: bool = False,
    ) -> None:
        super().__init__(in_channels, sensors)
        if depth < 1 or width < 1:
            raise ValueError("depth and width must be positive")
        self.width, self.depth, self.residual = int(width), int(depth), bool(residual)
        widths = [self.width * 2**i for i in range(self.depth + 1)]
        self.down = nn.ModuleList()
        c = in_channels
        for i, wd in enumerate(widths):
            self.down.append(_DoubleConv(c, wd, f"down.{i}"))
            c = wd
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for j, wd in enumerate(reversed(widths[:-1])):
            self.up.append(nn.ConvTranspose2d(c, wd, 2, stride=2))
            self.dec.append(_DoubleConv(2 * wd, wd, f"dec.{j}"))
            c = wd
        self.head = nn.Conv2d(c, in_channels, 1)
        mod_channels = {k: c for block in [*self.down, *self.dec] for k, c in block.modulated().items()}
        self.init_conditioning(
            mod_channels,
            use_sensor=use_sensor,
            use_iso=use_iso,
            use_noise=use_noise,
            ksigma=ksigma,
            mod_hidden=mod_hidden,
            iso_ref=iso_ref,
            iso_scale=iso_scale,
        )

    def backbone(self, x: torch.Tensor, mods: Mods) -> torch.Tensor:
        xp, size = pad_to_multiple(x, 2**self.depth)
        skips = []
        h = xp
        for i, block in enumerate(self.down):
            h = block(h, mods)
            if i < self.depth:
                skips.append(h)
                h = self.pool(h)
        for up, block in zip(self.up, self.dec):
            h = up(h)
            h = block(torch.cat([h, skips.pop()], dim=1), mods)
        out = self.head(h)
        if self.residual:
            out = out + xp
        return crop_to(out, size)

    def config(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "in_channels": self.in_channels,
            "width": self.width,
            "depth": self.depth,
            "residual": self.residual,
            **self.conditioning_config(),
        }

    # Layer handles used by the first/last-layer adaptation baselines.
    def first_layer(self) -> nn.Module:
        return cast(_DoubleConv, self.down[0]).conv1

    def last_layer(self) -> nn.Module:
        return self.head
