"""Moved to :mod:`rawadapt.models.inference` (kept so that old imports still work)."""

from rawadapt.models.inference import PRECISIONS, denoise_image, noise_kwargs

__all__ = ["PRECISIONS", "denoise_image", "noise_kwargs"]
