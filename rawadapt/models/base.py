"""The one denoiser contract every model follows.

``model(x, sensor=None, iso=None) -> y``

* ``x``: ``(B, C, H, W)`` float tensor, C = 4 (packed RAW, canonical R, G1, G2, B) or 3 (sRGB),
  values normalised to about [0, 1]; ANY H and W (models pad internally and crop back).
* ``sensor``: ``LongTensor[B]`` of indices into ``model.sensors`` (the vocabulary stored with
  the model), or None. Index ``-1`` means "unknown sensor": it is only accepted when the
  model's ``unknown_sensor`` policy is ``"average"`` or ``"iso-only"`` (see
  :class:`rawadapt.models.modulation.Modulation`); use :meth:`Denoiser.sensor_ids` to encode
  names, which raises :class:`~rawadapt.errors.UnknownSensorError` under the default policy.
* ``iso``: ``FloatTensor[B]`` of ISO values (raw, not normalised), or None (unknown).
* ``y``: the denoised image, same shape as ``x``. Not clipped.
* RAW models take planes in ONE Bayer phase, ``model.raw_phase`` (``"RGGB"``): training patches
  are unified to it and :func:`rawadapt.models.inference.denoise_image` pads any other CFA to it
  (:func:`rawadapt.io.bayer.unify_pad`); ``raw_phase = None`` means "fed as packed, any phase".

Models that ignore metadata (DnCNN, Restormer) accept and ignore ``sensor``/``iso``.
``model.config()`` returns the JSON-serialisable constructor arguments saved in ``model.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rawadapt.errors import ShapeError, UnknownSensorError
from rawadapt.utils.compute import check_precision, policy_forward, resolve_precision

UNKNOWN_SENSOR_POLICIES = ("error", "average", "iso-only")


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the last two axes up to a multiple (reflect where possible, replicate for tiny
    images); return the padded tensor and the original (H, W) for :func:`crop_to`."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x[..., : size[0], : size[1]]


class Denoiser(nn.Module):
    """Base class: channel checks, metadata encoding and the saved configuration."""

    #: registry name, set by subclasses
    arch: str = "base"

    def __init__(self, in_channels: int, sensors: Sequence[str] | None = None) -> None:
        super().__init__()
        if in_channels not in (3, 4):
            raise ShapeError(f"in_channels must be 4 (packed RAW) or 3 (sRGB), got {in_channels}")
        self.in_channels = int(in_channels)
        self.sensors: list[str] = list(sensors or [])
        self.unknown_sensor = "error"
        self.raw_phase: str | None = "RGGB" if self.in_channels == 4 else None
        #: "auto" | "fp32" | "bf16", or None = the process default (rawadapt.utils.compute)
        self.compute_precision: str | None = None

    def set_precision(self, precision: str | None) -> None:
        """Pin this model's precision (``"auto"``, ``"fp32"``, ``"bf16"``; None = process default)."""
        self.compute_precision = None if precision is None else check_precision(precision)

    def resolved_precision(self, device: Any = "cpu") -> str:
        """``"fp32"`` or ``"bf16"``: what a forward pass on ``device`` runs in now."""
        return resolve_precision(self.compute_precision, device)

    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Run :meth:`forward` under the compute policy (:mod:`rawadapt.utils.compute`).

        Channels-last input on CPU; under ``"bf16"`` the forward pass runs in bfloat16 autocast
        and the output is returned as float32 (weights, loss and the caller's arithmetic stay
        fp32). Nested calls (a model inside a model) inherit the outer autocast.
        """
        return policy_forward(super().__call__, x, *args, precision=self.compute_precision, **kwargs)

    @property
    def space(self) -> str:
        return "raw" if self.in_channels == 4 else "srgb"

    @property
    def uses_metadata(self) -> bool:
        """Whether sensor/ISO change the output (modulated models only)."""
        return False

    def check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(
                f"{self.arch} model expects ({'B'}, {self.in_channels}, H, W) input for space "
                f"{self.space!r}, got {tuple(x.shape)}"
            )

    def set_unknown_sensor_policy(self, policy: str) -> None:
        """``"error"`` (default), ``"average"`` (mean of all sensor embeddings) or
        ``"iso-only"`` (no sensor-type information, ISO still used)."""
        if policy not in UNKNOWN_SENSOR_POLICIES:
            raise ValueError(f"unknown-sensor policy must be one of {UNKNOWN_SENSOR_POLICIES}, got {policy!r}")
        self.unknown_sensor = policy

    def sensor_ids(self, names: Sequence[str | None], device: Any = None) -> torch.Tensor:
        """Encode sensor names as indices into :attr:`sensors` (``-1`` for unknown ones).

        Raises
        ------
        UnknownSensorError
            A name is not in the vocabulary and the policy is ``"error"`` (and the model uses
            sensor metadata at all).
        """
        ids = []
        for n in names:
            if n is not None and n in self.sensors:
                ids.append(self.sensors.index(n))
                continue
            if self.uses_metadata and self.unknown_sensor == "error" and self._needs_sensor():
                known = ", ".join(self.sensors) or "(none)"
                raise UnknownSensorError(
                    f"sensor {n!r} is not in the model's vocabulary [{known}]; pick a fallback "
                    "(--unknown-sensor average|iso-only) or fine-tune on it"
                )
            ids.append(-1)
        return torch.tensor(ids, dtype=torch.long, device=device)

    def _needs_sensor(self) -> bool:
        return False

    def config(self) -> dict[str, Any]:  # pragma: no cover - subclasses override
        raise NotImplementedError

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
