"""What every metadata-conditioned backbone shares: ADL's modulation, the noise-parameter
input and the optional k-sigma transform.

A subclass builds its layers, calls :meth:`ConditionedDenoiser.init_conditioning` with the widths
of the feature maps it modulates (in the order it applies them) and implements
:meth:`ConditionedDenoiser.backbone` ``(x, mods) -> y``, where ``mods`` maps each modulated
layer's name to its ``(gamma, beta)`` (:func:`rawadapt.models.modulation.modulate`).
``forward(x, sensor, iso, noise)`` is then the same for all of them:

* ``noise``: ``[B, 2]`` mean-variance lines ``(a, b)`` (:mod:`rawadapt.noise.conditioning`) or None.
  With ``use_noise`` the modulation sees them; with ``ksigma`` the input is mapped onto one anchor
  noise line before the backbone and mapped back after it (PMRID §3.2), per image.
* ``uses_metadata`` is True when anything (type, ISO, noise, k-sigma) changes the output, and
  ``uses_noise`` tells callers to pass ``noise``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from rawadapt.models.base import Denoiser
from rawadapt.models.modulation import (
    DEFAULT_ISO_REF,
    DEFAULT_ISO_SCALE,
    Mods,
    Modulation,
)
from rawadapt.models.noise_input import ksigma_coefficients


class ConditionedDenoiser(Denoiser):
    """Base of the modulated backbones (U-Net, PMRID-class compact network)."""

    def init_conditioning(
        self,
        mod_channels: Mapping[str, int],
        *,
        use_sensor: bool,
        use_iso: bool,
        use_noise: bool = False,
        ksigma: bool = False,
        mod_hidden: int = 64,
        iso_ref: float = DEFAULT_ISO_REF,
        iso_scale: float = DEFAULT_ISO_SCALE,
    ) -> None:
        """Build the modulation (None when type, ISO and noise are all off)."""
        self.use_sensor, self.use_iso, self.use_noise = bool(use_sensor), bool(use_iso), bool(use_noise)
        self.ksigma, self.mod_hidden = bool(ksigma), int(mod_hidden)
        self.iso_ref, self.iso_scale = float(iso_ref), float(iso_scale)
        self.modulation: Modulation | None = None
        if self.use_sensor or self.use_iso or self.use_noise:
            self.modulation = Modulation(
                mod_channels,
                len(self.sensors),
                hidden=self.mod_hidden,
                use_sensor=self.use_sensor,
                use_iso=self.use_iso,
                use_noise=self.use_noise,
                iso_ref=self.iso_ref,
                iso_scale=self.iso_scale,
            )

    @property
    def uses_metadata(self) -> bool:
        return self.modulation is not None or self.ksigma

    @property
    def uses_noise(self) -> bool:
        return self.use_noise or self.ksigma

    def _needs_sensor(self) -> bool:
        return self.use_sensor

    def conditioning_config(self) -> dict[str, Any]:
        """The conditioning part of :meth:`config` (``use_noise``/``ksigma`` only when on, so
        configs of models without them stay as they were)."""
        cfg: dict[str, Any] = {
            "sensors": list(self.sensors),
            "use_sensor": self.use_sensor,
            "use_iso": self.use_iso,
            "mod_hidden": self.mod_hidden,
            "iso_ref": self.iso_ref,
            "iso_scale": self.iso_scale,
        }
        if self.use_noise:
            cfg["use_noise"] = True
        if self.ksigma:
            cfg["ksigma"] = True
        return cfg

    def backbone(self, x: torch.Tensor, mods: Mods) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(
        self,
        x: torch.Tensor,
        sensor: torch.Tensor | None = None,
        iso: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.check_input(x)
        mods = None
        if self.modulation is not None:
            mods = self.modulation(
                sensor, iso, x.shape[0], x.device, self.unknown_sensor, noise if self.use_noise else None
            )
        if self.ksigma and noise is not None:
            c, d = ksigma_coefficients(noise.to(x.device))
            if c.shape[0] == 1 and x.shape[0] > 1:
                c, d = c.expand(x.shape[0], -1, -1, -1), d.expand(x.shape[0], -1, -1, -1)
            return (self.backbone(x * c + d, mods) - d) / c
        return self.backbone(x, mods)
