"""A compact CPU backbone in the PMRID class, with ADL's modulation (arch ``"pmrid"``).

After PMRID (Wang et al., "Practical Deep Raw Image Denoising on Mobile Devices", ECCV 2020,
§3.3): an encoder of depthwise-separable 5x5 convolutions (a depthwise k x k convolution then a
pointwise 1x1), stride-2 separable convolutions to go down, a light decoder (separable 3x3
blocks, 2x2 transposed convolutions up, separable 3x3 projections of the skips added, not
concatenated) and a global residual ``x + f(x)``. Almost all of its arithmetic is in 1x1
convolutions, which oneDNN runs as matrix products (fast in bf16 on AMX).

Choices PMRID leaves open or this project changes (each a constructor argument):

* Widths ``(w, 4w, 8w, 16w, 32w)`` with ``w = width`` (PMRID: 16, 64, 128, 256, 512) and
  ``blocks`` encoder blocks per level (PMRID: 2, 2, 4, 4). The CPU default ``width=12``,
  ``blocks=(1, 1, 2, 2)`` has 1.3 M parameters and a third of the forward FLOPs of the
  width-16 U-Net per packed pixel (bench/bench_speed.py counts both).
* Bottleneck blocks: the first separable conv of an encoder block maps to ``out / 4`` channels
  (PMRID's "mid" width), the second back to ``out``; a separable 3x3 projection on the shortcut
  where stride or width change.
* ADL modulation (ADL paper §3.2) on the stem, on the bottleneck of every encoder block and on
  the first conv of every decoder block, before the activation; same metadata vector, noise
  conditioning and k-sigma option as the U-Net (:mod:`rawadapt.models.conditioned`).
* LeakyReLU(0.2) like the U-Net (PMRID: ReLU); input padded to a multiple of 16 and cropped back.
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


class SeparableConv(nn.Module):
    """Depthwise ``k x k`` (stride ``s``) then pointwise 1x1 convolution.

    The depthwise convolution always runs in fp32: oneDNN's bf16 depthwise backward pass on CPU
    is several times slower than its fp32 one (measured with torch.profiler on an AMX Xeon, torch
    2.13), and it is memory-bound anyway; the pointwise convolution, where the arithmetic is,
    follows the autocast policy.
    """

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, k, stride=stride, padding=k // 2, groups=c_in)
        self.pointwise = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                h = self.depthwise(x.float())
        else:
            h = self.depthwise(x)
        return self.pointwise(h)


class EncoderBlock(nn.Module):
    """``act(sep5(act(mod(sep5(x)))) + proj(x))`` with a bottleneck of ``c_out // 4`` channels."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, key: str = "") -> None:
        super().__init__()
        self.key = key
        mid = max(4, c_out // 4)
        self.mid = mid
        self.conv1 = SeparableConv(c_in, mid, 5, stride)
        self.conv2 = SeparableConv(mid, c_out, 5)
        self.proj = SeparableConv(c_in, c_out, 3, stride) if (stride != 1 or c_in != c_out) else None
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor, mods: Mods) -> torch.Tensor:
        h = self.act(modulate(self.conv1(x), mods, self.key))
        h = self.conv2(h)
        return self.act(h + (x if self.proj is None else self.proj(x)))


class DecoderBlock(nn.Module):
    """``x + sep3(act(mod(sep3(x))))``."""

    def __init__(self, c: int, key: str = "") -> None:
        super().__init__()
        self.key = key
        self.conv1 = SeparableConv(c, c, 3)
        self.conv2 = SeparableConv(c, c, 3)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor, mods: Mods) -> torch.Tensor:
        return x + self.conv2(self.act(modulate(self.conv1(x), mods, self.key)))


class DecoderStage(nn.Module):
    """Decoder block, 2x2 transposed conv up, plus a separable 3x3 projection of the skip."""

    def __init__(self, c_in: int, c_skip: int, c_out: int, key: str = "") -> None:
        super().__init__()
        self.block = DecoderBlock(c_in, key)
        self.up = nn.ConvTranspose2d(c_in, c_out, 2, stride=2)
        self.skip = SeparableConv(c_skip, c_out, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, mods: Mods) -> torch.Tensor:
        return self.up(self.block(x, mods)) + self.skip(skip)


class PMRID(ConditionedDenoiser):
    """Compact separable-convolution encoder/decoder with ADL modulation.

    Parameters
    ----------
    in_channels
        4 (packed RAW) or 3 (sRGB).
    width
        Stem width ``w``; levels are ``w, 4w, 8w, 16w, 32w``.
    blocks
        Encoder blocks per down-sampled level (4 levels).
    sensors, use_sensor, use_iso, use_noise, ksigma, mod_hidden, iso_ref, iso_scale
        Conditioning, as for :class:`rawadapt.models.unet.UNet`.
    residual
        Predict ``x + f(x)`` (PMRID's global residual; default).
    """

    arch = "pmrid"

    def __init__(
        self,
        in_channels: int = 4,
        *,
        width: int = 12,
        blocks: Sequence[int] = (1, 1, 2, 2),
        sensors: Sequence[str] | None = None,
        use_sensor: bool = True,
        use_iso: bool = True,
        use_noise: bool = False,
        ksigma: bool = False,
        mod_hidden: int = 64,
        residual: bool = True,
        iso_ref: float = DEFAULT_ISO_REF,
        iso_scale: float = DEFAULT_ISO_SCALE,
    ) -> None:
        super().__init__(in_channels, sensors)
        blocks = [int(b) for b in blocks]
        if width < 1 or len(blocks) != 4 or min(blocks) < 1:
            raise ValueError("width must be positive and blocks four positive counts")
        self.width, self.blocks, self.residual = int(width), blocks, bool(residual)
        w = self.width
        widths = [w, 4 * w, 8 * w, 16 * w, 32 * w]
        self.stem = nn.Conv2d(in_channels, w, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        mod_channels = {"stem": w}
        self.encoder = nn.ModuleList()
        for level, n in enumerate(blocks):
            c_in, c_out = widths[level], widths[level + 1]
            level_blocks = [
                EncoderBlock(c_in if i == 0 else c_out, c_out, 2 if i == 0 else 1, key=f"encoder.{level}.{i}")
                for i in range(n)
            ]
            mod_channels.update({blk.key: blk.mid for blk in level_blocks})
            self.encoder.append(nn.ModuleList(level_blocks))
        self.decoder = nn.ModuleList()
        for k, level in enumerate(range(4, 0, -1)):
            self.decoder.append(DecoderStage(widths[level], widths[level - 1], widths[level - 1], key=f"decoder.{k}"))
            mod_channels[f"decoder.{k}"] = widths[level]
        self.head = nn.Conv2d(w, in_channels, 3, padding=1)
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
        xp, size = pad_to_multiple(x, 16)
        h = self.act(modulate(self.stem(xp), mods, "stem"))
        skips = [h]
        for stage in self.encoder:
            for blk in cast(nn.ModuleList, stage):
                h = blk(h, mods)
            skips.append(h)
        skips.pop()  # the deepest level is the decoder's input, not a skip
        for dec in self.decoder:
            h = dec(h, skips.pop(), mods)
        out = self.head(h)
        if self.residual:
            out = out + xp
        return crop_to(out, size)

    def config(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "in_channels": self.in_channels,
            "width": self.width,
            "blocks": list(self.blocks),
            "residual": self.residual,
            **self.conditioning_config(),
        }

    def first_layer(self) -> nn.Module:
        return self.stem

    def last_layer(self) -> nn.Module:
        return self.head
