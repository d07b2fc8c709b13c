"""One number for an image's noise level: LAN's noise-scaled offset (:mod:`rawadapt.adapt.lan`)
and the noise map of a blind FFDNet (:mod:`rawadapt.models.ffdnet_ext`).

:func:`estimate_noise_std` is a one-bin, Gaussian (``a = 0``) version of the project's blind
estimator (:func:`rawadapt.baselines.noise_level.estimate_poisson_gaussian`, which lives in a
higher layer than ``models`` and ``adapt``; this one is torch-only and runs on the tensor's
device): per 3x3 window of every plane, Immerkær's second-order detail
``d`` (separable ``[1, -2, 1]`` differences / 6, whose std equals the noise std for independent
noise and which is exactly 0 on signals linear along x or y), windows touching a clipped value
(<= 0 or >= 1) left out, and ``std = q_0.3(|d|) / q_0.3(|N(0, 1)|)``: a low quantile, because
texture and edges only ever add to ``|d|`` (less biased than the median absolute deviation on
textured, nearly clean images). On Poisson-Gaussian RAW noise the one number leans towards the
noise of the darker windows, the conservative side for an offset bound. On quantised images
(8-bit sRGB) where over 30 % of the details are 0 (up to float rounding), the median (the classic MAD
estimate) is used instead, and the RMS detail if that is 0 too.

Limits: a one-scale detail sees white noise only. Spatially correlated noise (demosaiced,
JPEG-compressed sRGB such as PolyU's) is underestimated several-fold — on 96x96 PolyU crops
~0.002 against a residual std of ~0.013, as the project's other blind estimators
(``estimate_gaussian_sigma``, ``estimate_poisson_gaussian``) also are; pass a known std
(``LANAdapter(noise_std=...)``) there.

J. Immerkær, "Fast noise variance estimation", CVIU 64(2), 1996.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rawadapt.errors import ShapeError

#: quantile of |detail| used (as in rawadapt.baselines.noise_level.LOW_QUANTILE)
LOW_QUANTILE = 0.3
#: the same quantile of |N(0, 1)| (= Phi^-1((1 + 0.3) / 2))
GAUSS_ABS_QUANTILE = 0.38532046640756773
#: the median of |N(0, 1)| (the MAD's 0.6745), for the quantised-image fallback
GAUSS_ABS_MEDIAN = 0.6744897501960817
#: |detail| at or below this is a float-rounding zero (a 16-bit step gives 1 / (6 * 65535) = 2.5e-6)
ZERO_DETAIL = 1e-6
#: below this fraction of unclipped windows, every window is used
MIN_KEPT_FRACTION = 0.25


def estimate_noise_std(image: np.ndarray | torch.Tensor) -> float:
    """Blind noise std of one ``(C, H, W)`` (or ``(1, C, H, W)``) image in [0, 1] units.

    Deterministic (no sampling); runs on the tensor's device.

    Raises
    ------
    ShapeError
        Not a ``(C, H, W)`` image, or under 3x3 pixels.
    """
    x = torch.as_tensor(np.ascontiguousarray(image) if isinstance(image, np.ndarray) else image)
    x = x.detach().to(torch.float32)
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3:
        raise ShapeError(f"expected a (C, H, W) image to estimate its noise, got shape {tuple(x.shape)}")
    c, h, w = x.shape
    if h < 3 or w < 3:
        raise ShapeError(f"image of {h}x{w} pixels is too small to estimate its noise (3x3 at least)")
    planes = x.reshape(c, 1, h, w)
    k1 = torch.tensor([1.0, -2.0, 1.0], dtype=torch.float32, device=x.device)
    kern = (torch.outer(k1, k1) / 6.0).reshape(1, 1, 3, 3)
    detail = F.conv2d(planes, kern).abs().flatten()
    lo = -F.max_pool2d(-planes, 3, stride=1).flatten()
    hi = F.max_pool2d(planes, 3, stride=1).flatten()
    keep = (lo > 0.0) & (hi < 1.0)
    if int(keep.sum()) >= MIN_KEPT_FRACTION * keep.numel():
        detail = detail[keep]
    d = detail.cpu()
    for quantile, gauss in ((LOW_QUANTILE, GAUSS_ABS_QUANTILE), (0.5, GAUSS_ABS_MEDIAN)):
        k = max(1, int(round(quantile * d.numel())))
        q = float(torch.kthvalue(d, k).values)  # kthvalue: no size limit (torch.quantile has one)
        if q > ZERO_DETAIL:
            return q / gauss
    return float(d.square().mean().sqrt())  # quantised, mostly flat: at least the RMS detail
