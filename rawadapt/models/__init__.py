"""Denoisers (U-Net with ADL modulation, DnCNN, compact Restormer), registry and checkpoints.

All follow the contract in :mod:`rawadapt.models.base`. Importing this package imports torch.
"""

from rawadapt.models.base import Denoiser
from rawadapt.models.registry import MODELS, build_model

__all__ = ["Denoiser", "MODELS", "build_model"]
