"""Moved to :mod:`rawadapt.metrics` (kept so that old imports still work)."""

from rawadapt.metrics import (
    SSIM_RADIUS,
    SSIM_SIGMA,
    evaluate_pair,
    psnr,
    psnr_per_image,
    ssim,
    ssim_per_image,
)

__all__ = ["SSIM_RADIUS", "SSIM_SIGMA", "evaluate_pair", "psnr", "psnr_per_image", "ssim", "ssim_per_image"]
