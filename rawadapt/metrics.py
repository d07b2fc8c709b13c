"""Per-image PSNR and SSIM, the field's conventions (docs/benchmarks.md).

* PSNR is computed per image and then averaged over images (never a pooled MSE over a batch).
* SSIM is Wang et al. (2004): 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03,
  population covariances, averaged over the valid region and over channels. It equals
  ``skimage.metrics.structural_similarity(a, b, data_range=R, channel_axis=0,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` (tested). Kept instead of
  calling skimage because it is batched torch: ADL's validation and LAN's per-iteration curves
  score whole batches of tensors (any device) without a round trip through NumPy per image.
* Data range is 1.0: RAW metrics on packed planes in [0, 1]; sRGB metrics on [0, 1] images
  (8-bit values / 255). Callers clip predictions to [0, 1] first (``evaluate_pair`` does).

Inputs are NumPy arrays or torch tensors, ``(C, H, W)`` or ``(B, C, H, W)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # int(3.5 * 1.5 + 0.5), the truncation skimage/scipy use
_K1, _K2 = 0.01, 0.03


def _as_batch(x: Any) -> torch.Tensor:
    import torch

    t = torch.as_tensor(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x)
    t = t.detach().to(torch.float64)
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[None]
    if t.ndim != 4:
        raise ValueError(f"expected (C,H,W) or (B,C,H,W), got shape {tuple(t.shape)}")
    return t


def psnr_per_image(pred: Any, target: Any, data_range: float = 1.0) -> np.ndarray:
    """PSNR in dB of each image of a batch: ``10 log10(R^2 / MSE)`` (inf for identical images)."""
    p, t = _as_batch(pred), _as_batch(target)
    if p.shape != t.shape:
        raise ValueError(f"shape mismatch {tuple(p.shape)} vs {tuple(t.shape)}")
    mse = ((p - t) ** 2).flatten(1).mean(1)
    with np.errstate(divide="ignore"):
        return (10.0 * np.log10(data_range**2 / mse.cpu().numpy())).astype(np.float64)


def psnr(pred: Any, target: Any, data_range: float = 1.0) -> float:
    """Mean over images of the per-image PSNR (dB)."""
    return float(np.mean(psnr_per_image(pred, target, data_range)))


def _gauss_kernel(device: Any) -> torch.Tensor:
    import torch

    x = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64, device=device)
    k = torch.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    return k / k.sum()


def ssim_per_image(pred: Any, target: Any, data_range: float = 1.0) -> np.ndarray:
    """SSIM of each image of a batch (mean over channels and the valid region)."""
    import torch.nn.functional as F

    p, t = _as_batch(pred), _as_batch(target)
    if p.shape != t.shape:
        raise ValueError(f"shape mismatch {tuple(p.shape)} vs {tuple(t.shape)}")
    b, c, h, w = p.shape
    win = 2 * SSIM_RADIUS + 1
    if h < win or w < win:
        raise ValueError(f"SSIM needs images of at least {win}x{win}, got {h}x{w}")
    k = _gauss_kernel(p.device)
    kh = k.view(1, 1, win, 1).repeat(c, 1, 1, 1)
    kw = k.view(1, 1, 1, win).repeat(c, 1, 1, 1)

    def filt(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(z, kh, groups=c), kw, groups=c)

    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    mu_p, mu_t = filt(p), filt(t)
    spp = filt(p * p) - mu_p**2
    stt = filt(t * t) - mu_t**2
    spt = filt(p * t) - mu_p * mu_t
    s = ((2 * mu_p * mu_t + c1) * (2 * spt + c2)) / ((mu_p**2 + mu_t**2 + c1) * (spp + stt + c2))
    return s.flatten(1).mean(1).cpu().numpy().astype(np.float64)


def ssim(pred: Any, target: Any, data_range: float = 1.0) -> float:
    """Mean over images of the per-image SSIM."""
    return float(np.mean(ssim_per_image(pred, target, data_range)))


def evaluate_pair(pred: Any, target: Any, *, data_range: float = 1.0, with_ssim: bool = True) -> dict[str, float]:
    """PSNR and SSIM of one image after clipping ``pred`` to ``[0, data_range]``.

    SSIM is skipped (NaN) for images smaller than the 11x11 window.
    """
    p = np.clip(
        np.asarray(pred, dtype=np.float64) if isinstance(pred, np.ndarray) else pred.detach().double().cpu().numpy(),
        0.0,
        data_range,
    )
    t = (
        np.asarray(target, dtype=np.float64)
        if isinstance(target, np.ndarray)
        else target.detach().double().cpu().numpy()
    )
    out = {"psnr": float(psnr_per_image(p, t, data_range)[0])}
    if with_ssim:
        try:
            out["ssim"] = float(ssim_per_image(p, t, data_range)[0])
        except ValueError:
            out["ssim"] = math.nan
    return out
