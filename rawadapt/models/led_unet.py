"""LED's reparameterised-noise-removal U-Net (Jin et al., "Lighting Every Darkness in Two Pairs",
ICCV 2023), registered as ``led-unet``: every 3x3 convolution of the project's U-Net becomes a
:class:`RepNRConv2d` (per-camera input alignment + an out-of-model noise-removal branch, both
foldable into one plain convolution by :meth:`LEDUNet.deploy`). The virtual cameras and the
training recipe are the ``led`` baseline, :mod:`rawadapt.baselines.led_net`, whose docstring
states the choices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from rawadapt.models.unet import UNet

#: LED's default number of virtual cameras (``branch_num``)
DEFAULT_CAMERAS = 5


class RepNRConv2d(nn.Module):
    """A convolution with per-camera input alignment and an optional parallel branch (see the
    module docstring). Built from an ``nn.Conv2d`` (its weights are copied).

    Parameters
    ----------
    conv
        The plain convolution (stride 1, zero padding, no groups).
    cameras
        Number of pretraining cameras; alignment ``cameras`` (index -1) is the target's.
    """

    aux_on: torch.Tensor  # buffer: the out-of-model noise-removal branch is on

    def __init__(self, conv: nn.Conv2d, cameras: int) -> None:
        super().__init__()
        if conv.groups != 1 or conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.padding_mode != "zeros":
            raise ValueError("RepNRConv2d supports plain stride-1 zero-padded convolutions")
        if conv.bias is None:
            raise ValueError("RepNRConv2d needs a convolution with a bias")
        self.cameras = int(cameras)
        self.padding = tuple(int(p) for p in conv.padding)
        self.weight = nn.Parameter(conv.weight.detach().clone())
        self.bias = nn.Parameter(conv.bias.detach().clone())
        cin = conv.in_channels
        self.align_weights = nn.ParameterList([nn.Parameter(torch.ones(cin)) for _ in range(self.cameras + 1)])
        self.align_biases = nn.ParameterList([nn.Parameter(torch.zeros(cin)) for _ in range(self.cameras + 1)])
        self.aux_weight = nn.Parameter(torch.zeros_like(self.weight))
        self.aux_bias = nn.Parameter(torch.zeros_like(self.bias))
        self.register_buffer("aux_on", torch.zeros((), dtype=torch.bool))
        self.branch = -1

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = self.padding
        return F.pad(x, (pw, pw, ph, ph)) if (ph or pw) else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.align_weights[self.branch].view(1, -1, 1, 1)
        b = self.align_biases[self.branch].view(1, -1, 1, 1)
        xp = self._pad(x)
        out = F.conv2d(xp * a + b, self.weight, self.bias)
        if bool(self.aux_on):
            out = out + F.conv2d(xp, self.aux_weight, self.aux_bias)
        return out

    @torch.no_grad()
    def fused(self, branch: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight, bias)`` of the equivalent plain convolution for ``branch``."""
        a = self.align_weights[branch].view(1, -1, 1, 1)
        b = self.align_biases[branch]
        w = self.weight * a
        bias = self.bias + (self.weight.sum(dim=(2, 3)) * b.view(1, -1)).sum(1)
        if bool(self.aux_on):
            w = w + self.aux_weight
            bias = bias + self.aux_bias
        return w, bias

    @torch.no_grad()
    def generalize(self) -> None:
        """Target alignment := mean of the pretraining cameras' alignments (LED)."""
        self.align_weights[-1].copy_(torch.stack(list(self.align_weights[:-1])).mean(0))
        self.align_biases[-1].copy_(torch.stack(list(self.align_biases[:-1])).mean(0))

    def extra_repr(self) -> str:
        w = self.weight.shape
        return f"{w[1]}, {w[0]}, kernel={tuple(w[2:])}, cameras={self.cameras}"


class LEDUNet(UNet):
    """The project's U-Net (no modulation: LED's networks take no metadata) with every 3x3
    convolution replaced by a :class:`RepNRConv2d`.

    Parameters
    ----------
    in_channels, width, depth, sensors, residual
        As for :class:`~rawadapt.models.unet.UNet`.
    cameras
        Virtual cameras of the pretraining (LED: 5).
    """

    arch = "led-unet"

    def __init__(
        self,
        in_channels: int = 4,
        *,
        width: int = 16,
        depth: int = 4,
        sensors: Sequence[str] | None = None,
        cameras: int = DEFAULT_CAMERAS,
        residual: bool = True,
    ) -> None:
        super().__init__(
            in_channels, width=width, depth=depth, sensors=sensors, use_sensor=False, use_iso=False, residual=residual
        )
        if cameras < 1:
            raise ValueError("cameras must be >= 1")
        self.cameras = int(cameras)
        for block in list(self.down) + list(self.dec):
            block.conv1 = RepNRConv2d(cast(nn.Conv2d, block.conv1), self.cameras)
            block.conv2 = RepNRConv2d(cast(nn.Conv2d, block.conv2), self.cameras)

    def repnr_layers(self) -> list[RepNRConv2d]:
        return [m for m in self.modules() if isinstance(m, RepNRConv2d)]

    def set_branch(self, branch: int) -> None:
        """Use camera ``branch``'s alignment (-1 = the target's)."""
        if not -1 <= branch < self.cameras:
            raise ValueError(f"branch must be in -1..{self.cameras - 1}, got {branch}")
        for m in self.repnr_layers():
            m.branch = int(branch)

    def generalize(self) -> None:
        """Initialise the target alignment from the cameras' mean (LED, before fine-tuning)."""
        for m in self.repnr_layers():
            m.generalize()

    def enable_aux(self, on: bool = True) -> None:
        """Switch the OMNR branches on (saved with the weights, as a buffer)."""
        for m in self.repnr_layers():
            m.aux_on.fill_(bool(on))

    def config(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "in_channels": self.in_channels,
            "width": self.width,
            "depth": self.depth,
            "sensors": list(self.sensors),
            "cameras": self.cameras,
            "residual": self.residual,
        }

    @torch.no_grad()
    def deploy(self, branch: int = -1) -> UNet:
        """The equivalent plain U-Net for ``branch`` (exact reparameterisation)."""
        plain = UNet(
            self.in_channels,
            width=self.width,
            depth=self.depth,
            sensors=self.sensors,
            use_sensor=False,
            use_iso=False,
            residual=self.residual,
        )
        src = self.state_dict()
        fused = {}
        for name, mod in self.named_modules():
            if isinstance(mod, RepNRConv2d):
                w, b = mod.fused(branch)
                fused[f"{name}.weight"], fused[f"{name}.bias"] = w, b
        out = {k: fused.get(k, src.get(k)) for k in plain.state_dict()}
        plain.load_state_dict(out, strict=True)
        plain.eval()
        return plain


def is_target_align(name: str, cameras: int) -> bool:
    """Parameter names of the target camera's alignment (``...align_weights.<cameras>``)."""
    return name.endswith((f"align_weights.{cameras}", f"align_biases.{cameras}"))


def is_aux(name: str) -> bool:
    """Parameter names of the OMNR branches."""
    return name.endswith(("aux_weight", "aux_bias"))
