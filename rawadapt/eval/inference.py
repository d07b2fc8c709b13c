"""Denoise one image with a model: whole-image or tiled (bounded memory), under inference mode.

``denoise_image`` is the single entry point used by evaluation, the CLI and the baselines.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rawadapt.models.base import Denoiser


def _meta(model: Denoiser, sensor: str | None, iso: float | None, device: Any) -> tuple[Any, Any]:
    sensor_ids = model.sensor_ids([sensor], device=device) if model.uses_metadata else None
    iso_t = None if iso is None else torch.tensor([float(iso)], dtype=torch.float32, device=device)
    return sensor_ids, iso_t


def denoise_image(model: Denoiser, image: np.ndarray | torch.Tensor, *, sensor: str | None = None,
                  iso: float | None = None, tile: int | None = None, overlap: int = 32,
                  device: str | torch.device = "cpu") -> np.ndarray:
    """Denoise a ``(C, H, W)`` image; returns a float32 ``(C, H, W)`` NumPy array (not clipped).

    Parameters
    ----------
    model
        Any :class:`~rawadapt.models.base.Denoiser` (put in eval mode here).
    image
        Normalised image of the model's space.
    sensor, iso
        Metadata for modulated models (ignored by others).
    tile
        Tile side in pixels; None = whole image at once.
    overlap
        Overlap between tiles (blended), pixels.
    """
    model.eval()
    x = torch.as_tensor(np.ascontiguousarray(image) if isinstance(image, np.ndarray) else image)
    x = x.to(device=device, dtype=torch.float32)
    if x.ndim != 3:
        raise ValueError(f"denoise_image expects (C, H, W), got {tuple(x.shape)}")
    sensor_ids, iso_t = _meta(model, sensor, iso, device)
    with torch.inference_mode():
        if tile is None or (x.shape[-2] <= tile and x.shape[-1] <= tile):
            y = model(x[None], sensor_ids, iso_t)[0]
        else:
            from rawadapt.eval.tiling import tiled_forward

            y = tiled_forward(lambda t: model(t, sensor_ids, iso_t), x[None], tile=tile, overlap=overlap)[0]
    return y.float().cpu().numpy()
