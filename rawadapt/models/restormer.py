"""A compact Restormer (Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image
Restoration", CVPR 2022), one of LAN's backbones (LAN paper).

Structure, as in the original:

* 3x3 convolution "overlapped patch embedding" to ``dim`` channels;
* an encoder of ``L = len(num_blocks)`` levels; level ``i`` has ``dim * 2**i`` channels and
  ``num_blocks[i]`` transformer blocks; between levels a 3x3 convolution halves the channels and a
  2x2 pixel-unshuffle quarters the pixels (net: channels x2, resolution /2);
* a decoder mirroring it (3x3 convolution + pixel-shuffle up, skip concatenation, a 1x1
  convolution reducing the channels, except at the top level which keeps ``2 * dim`` channels);
* ``num_refinement`` extra blocks at full resolution, a 3x3 output convolution, and a global
  residual ``y = x + net(x)``.

A transformer block is ``x + MDTA(LN(x))`` then ``x + GDFN(LN(x))``:

* MDTA (multi-Dconv head transposed attention): 1x1 then depthwise 3x3 convolutions make q, k,
  v; attention is computed across CHANNELS (a ``C/h x C/h`` map per head, L2-normalised q and k,
  learned temperature), so its cost is linear in the number of pixels.
* GDFN (gated-Dconv feed-forward network): 1x1 expansion to ``2 * hidden``, depthwise 3x3, the
  GELU of one half gates the other, 1x1 projection back.
* LayerNorm over channels at each pixel (with bias).

The paper's model is ``dim=48, num_blocks=(4, 6, 6, 8), heads=(1, 2, 4, 8), num_refinement=4``
(26 M parameters, GPU scale). The CPU default here is ``dim=16, num_blocks=(1, 2, 2, 2),
num_refinement=1`` (about 1.1 M parameters, most of them in the 128-channel bottom level).
Inputs of any size are padded (reflect) to a multiple of ``2**(L-1)`` and cropped back.

Note: MDTA's channel attention pools over the whole image, so unlike a CNN the output at a pixel
depends (weakly) on every pixel; tiled inference is therefore close to, not equal to, whole-image
inference (see :mod:`rawadapt.models.tiling`). Metadata (sensor, ISO) is accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rawadapt.models.base import Denoiser, crop_to, pad_to_multiple


class _LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a ``(B, C, H, W)`` map (per pixel), with bias."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Restormer's to_3d -> LayerNorm -> to_4d as permuted views. F.layer_norm's fused kernel
        # is as fast as hand-written channel statistics on NCHW tensors and ~10x faster on
        # channels-last ones, where the permuted view is already contiguous (no copy at all).
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class _MDTA(nn.Module):
    """Multi-Dconv head transposed (channel) attention."""

    def __init__(self, dim: int, heads: int, bias: bool) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"Restormer: {dim} channels are not divisible by {heads} heads")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=bias)
        self.qkv_dw = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dw(self.qkv(x)).chunk(3, dim=1)
        q = F.normalize(q.reshape(b, self.heads, c // self.heads, h * w), dim=-1)
        k = F.normalize(k.reshape(b, self.heads, c // self.heads, h * w), dim=-1)
        v = v.reshape(b, self.heads, c // self.heads, h * w)
        attn = (q @ k.transpose(-2, -1)) * self.temperature  # (b, heads, c/h, c/h)
        out = attn.softmax(dim=-1) @ v
        return self.project_out(out.reshape(b, c, h, w))


class _GDFN(nn.Module):
    """Gated-Dconv feed-forward network."""

    def __init__(self, dim: int, expansion: float, bias: bool) -> None:
        super().__init__()
        hidden = max(1, int(dim * expansion))
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class _Block(nn.Module):
    """Restormer transformer block: pre-norm MDTA and GDFN, each with a residual."""

    def __init__(self, dim: int, heads: int, expansion: float, bias: bool) -> None:
        super().__init__()
        self.norm1 = _LayerNorm2d(dim)
        self.attn = _MDTA(dim, heads, bias)
        self.norm2 = _LayerNorm2d(dim)
        self.ffn = _GDFN(dim, expansion, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def _stage(n: int, dim: int, heads: int, expansion: float, bias: bool) -> nn.Sequential:
    return nn.Sequential(*[_Block(dim, heads, expansion, bias) for _ in range(n)])


class Restormer(Denoiser):
    """Compact Restormer denoiser (residual output).

    Parameters
    ----------
    in_channels
        4 (packed RAW) or 3 (sRGB); output has the same channels.
    dim
        Channels of the first level (doubles per level); must be even.
    num_blocks
        Transformer blocks per encoder level (its length is the number of levels, >= 1); the
        decoder uses the same counts.
    heads
        Attention heads per level (same length as ``num_blocks``).
    num_refinement
        Blocks after the decoder, at full resolution.
    ffn_expansion
        GDFN hidden width factor (2.66 in the paper).
    bias
        Biases in the convolutions (False in the paper).
    sensors
        Sensor vocabulary (stored only; Restormer ignores metadata).

    Examples
    --------
    >>> m = Restormer(3, dim=8, num_blocks=(1, 1), heads=(1, 2))
    >>> m(torch.rand(1, 3, 13, 21)).shape
    torch.Size([1, 3, 13, 21])
    """

    arch = "restormer"

    def __init__(
        self,
        in_channels: int = 4,
        *,
        dim: int = 16,
        num_blocks: Sequence[int] = (1, 2, 2, 2),
        heads: Sequence[int] = (1, 2, 4, 8),
        num_refinement: int = 1,
        ffn_expansion: float = 2.66,
        bias: bool = False,
        sensors: Sequence[str] | None = None,
    ) -> None:
        super().__init__(in_channels, sensors)
        blocks, hds = [int(n) for n in num_blocks], [int(h) for h in heads]
        if not blocks or len(blocks) != len(hds):
            raise ValueError("Restormer: num_blocks and heads must be non-empty and of equal length")
        if dim < 2 or dim % 2 or min(blocks) < 1 or min(hds) < 1 or num_refinement < 0:
            raise ValueError("Restormer: dim must be even and >= 2, block and head counts positive")
        self.dim, self.num_blocks, self.heads = int(dim), blocks, hds
        self.num_refinement, self.ffn_expansion, self.bias = int(num_refinement), float(ffn_expansion), bool(bias)
        levels = len(blocks)
        widths = [self.dim * 2**i for i in range(levels)]

        self.patch_embed = nn.Conv2d(in_channels, self.dim, 3, padding=1, bias=self.bias)
        self.encoders = nn.ModuleList(
            _stage(blocks[i], widths[i], hds[i], self.ffn_expansion, self.bias) for i in range(levels)
        )
        # Downsample: conv to C/2 then pixel-unshuffle (x4 channels) = 2C at half resolution.
        self.downs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[i], widths[i] // 2, 3, padding=1, bias=self.bias), nn.PixelUnshuffle(2))
            for i in range(levels - 1)
        )
        # Upsample: conv to 2C then pixel-shuffle (/4 channels) = C/2 at double resolution.
        self.ups = nn.ModuleList()
        self.reduces = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for i in reversed(range(levels - 1)):  # target level i (from level i + 1)
            self.ups.append(
                nn.Sequential(
                    nn.Conv2d(widths[i + 1], widths[i + 1] * 2, 3, padding=1, bias=self.bias), nn.PixelShuffle(2)
                )
            )
            # after concatenation with the skip: 2 * widths[i]; the top level keeps it (as the
            # paper does), the others reduce back to widths[i] with a 1x1 convolution
            if i == 0:
                self.reduces.append(nn.Identity())
                self.decoders.append(_stage(blocks[0], 2 * widths[0], hds[0], self.ffn_expansion, self.bias))
            else:
                self.reduces.append(nn.Conv2d(2 * widths[i], widths[i], 1, bias=self.bias))
                self.decoders.append(_stage(blocks[i], widths[i], hds[i], self.ffn_expansion, self.bias))
        top = 2 * widths[0] if levels > 1 else widths[0]
        self.refinement = _stage(self.num_refinement, top, hds[0], self.ffn_expansion, self.bias)
        self.output = nn.Conv2d(top, in_channels, 3, padding=1, bias=self.bias)

    def forward(
        self, x: torch.Tensor, sensor: torch.Tensor | None = None, iso: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.check_input(x)
        xp, size = pad_to_multiple(x, 2 ** (len(self.num_blocks) - 1))
        h = self.patch_embed(xp)
        skips = []
        for i, enc in enumerate(self.encoders):
            h = enc(h)
            if i < len(self.downs):
                skips.append(h)
                h = self.downs[i](h)
        for up, reduce, dec in zip(self.ups, self.reduces, self.decoders):
            h = dec(reduce(torch.cat([up(h), skips.pop()], dim=1)))
        out = self.output(self.refinement(h)) + xp
        return crop_to(out, size)

    def config(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "in_channels": self.in_channels,
            "dim": self.dim,
            "num_blocks": list(self.num_blocks),
            "heads": list(self.heads),
            "num_refinement": self.num_refinement,
            "ffn_expansion": self.ffn_expansion,
            "bias": self.bias,
            "sensors": list(self.sensors),
        }

    # Layer handles used by the first/last-layer adaptation baselines.
    def first_layer(self) -> nn.Module:
        return self.patch_embed

    def last_layer(self) -> nn.Module:
        return self.output
