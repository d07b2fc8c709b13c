"""Denoise one image with a model: whole-image or tiled (bounded memory), under inference mode.

``denoise_image`` is the single entry point used by evaluation, the CLI and the baselines.

Speed options:

* ``torch.inference_mode`` is always used (no autograd bookkeeping).
* Precision and memory layout follow :mod:`rawadapt.utils.compute` (applied by
  :meth:`rawadapt.models.base.Denoiser.__call__`): channels-last input, and bfloat16 autocast where
  ``precision`` resolves to ``"bf16"`` (``"auto"`` does so on CPUs with AMX/AVX512-BF16 and on
  CUDA). bf16 keeps 8 mantissa bits: outputs move by ~1e-3 against fp32 (tested: PSNR within
  0.05 dB of fp32 on a trained model). Timings per machine are in BENCHMARKS.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rawadapt.io.bayer import deunify_pad, unify_pad
from rawadapt.models.base import Denoiser
from rawadapt.models.tiling import tiled_forward
from rawadapt.utils.compute import PRECISIONS


def _meta(model: Denoiser, sensor: str | None, iso: float | None, device: Any) -> tuple[Any, Any]:
    sensor_ids = model.sensor_ids([sensor], device=device) if model.uses_metadata else None
    iso_t = None if iso is None else torch.tensor([float(iso)], dtype=torch.float32, device=device)
    return sensor_ids, iso_t


def noise_kwargs(model: Denoiser, noise: Any, device: Any) -> dict[str, Any]:
    """``{"noise": [1, 2] tensor}`` for noise-conditioned models given a line ``(a, b)``."""
    if noise is None or not getattr(model, "uses_noise", False):
        return {}
    return {"noise": torch.as_tensor(noise, dtype=torch.float32, device=device).reshape(1, 2)}


def denoise_image(
    model: Denoiser,
    image: np.ndarray | torch.Tensor,
    *,
    sensor: str | None = None,
    iso: float | None = None,
    cfa: str | None = None,
    tile: int | None = None,
    overlap: int = 32,
    device: str | torch.device = "cpu",
    precision: str | None = None,
    channels_last: bool = True,
    noise: tuple[float, float] | None = None,
) -> np.ndarray:
    """Denoise a ``(C, H, W)`` image; returns a float32 ``(C, H, W)`` NumPy array (not clipped).

    Parameters
    ----------
    model
        Any :class:`~rawadapt.models.base.Denoiser` (put in eval mode here).
    image
        Normalised image of the model's space (4 packed RAW planes or 3 sRGB channels).
    sensor, iso
        Metadata for modulated models (ignored by others).
    cfa
        RAW only: the Bayer phase of ``image`` (its file's CFA, :attr:`Sample.cfa`). When it
        differs from the model's ``raw_phase`` (RGGB), the mosaic is reflect-padded by one
        row/column to that phase (exact, :func:`rawadapt.io.bayer.unify_pad`) and the padding
        removed afterwards. None = feed the planes as they are.
    tile
        Tile side in pixels (packed pixels for RAW); None or 0 = whole image at once. Tiles are
        blended with :func:`rawadapt.models.tiling.tiled_forward`, so memory is bounded by the
        tile, not the image.
    overlap
        Overlap between tiles (blended), pixels; clamped to ``tile - 1``.
    device
        Where to run the model.
    precision
        ``"auto"``, ``"fp32"`` or ``"bf16"`` for this call; None (default) = the model's own
        ``compute_precision``, else the process default (:mod:`rawadapt.utils.compute`).
    noise
        The image's mean-variance line ``(a, b)`` (:mod:`rawadapt.noise.conditioning`), for
        noise-conditioned models (ignored by others); None = unknown.
    channels_last
        Kept for compatibility: the compute policy always feeds CPU networks channels-last
        tensors (the same result up to float rounding, faster); False is ignored.

    Raises
    ------
    ShapeError
        The image does not have the model's number of channels.
    UnknownSensorError
        ``sensor`` is not in the model's vocabulary and its policy is ``"error"``.
    """
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    model.eval()
    x = torch.as_tensor(np.ascontiguousarray(image) if isinstance(image, np.ndarray) else image)
    x = x.to(device=device, dtype=torch.float32)
    if x.ndim != 3:
        raise ValueError(f"denoise_image expects (C, H, W), got {tuple(x.shape)}")
    model.check_input(x[None])
    sensor_ids, iso_t = _meta(model, sensor, iso, device)
    extra = noise_kwargs(model, noise, device)
    pinned = model.compute_precision

    def net(t: torch.Tensor) -> torch.Tensor:
        return model(t, sensor_ids, iso_t, **extra).float().contiguous()

    if precision is not None:
        model.compute_precision = precision
    try:
        y = _run(net, model, x, cfa, tile, overlap)
    finally:
        model.compute_precision = pinned
    return y.float().cpu().numpy()


def _run(net: Any, model: Denoiser, x: torch.Tensor, cfa: str | None, tile: int | None, overlap: int) -> torch.Tensor:
    """Unify the CFA phase, run whole or tiled under inference mode, undo the phase padding."""
    unify = (
        cfa is not None and x.shape[0] == 4 and getattr(model, "raw_phase", None) == "RGGB" and cfa.upper() != "RGGB"
    )
    if unify:
        x = unify_pad(x, cfa)  # type: ignore[arg-type]
    with torch.inference_mode():
        if not tile or (x.shape[-2] <= tile and x.shape[-1] <= tile):
            y = net(x[None])[0]
        else:
            y = tiled_forward(net, x[None], tile=int(tile), overlap=min(int(overlap), int(tile) - 1))[0]
    if unify:
        y = deunify_pad(y, cfa)  # type: ignore[arg-type]
    return y
