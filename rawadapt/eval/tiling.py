"""Moved to :mod:`rawadapt.models.tiling` (kept so that old imports still work)."""

from rawadapt.models.tiling import tiled_forward

__all__ = ["tiled_forward"]
