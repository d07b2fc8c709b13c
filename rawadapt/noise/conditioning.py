"""Noise-aware conditioning: the image's noise parameters as a network input.

The ADL paper (§3.2) conditions its modulation on a one-hot sensor type and the ISO, and says the
metadata vector may be extended. Both are proxies for what the network needs, the noise level of
the image: a camera the network never saw gets no meaningful one-hot, and an ISO means another
gain on every camera. Here the proxy is replaced by the quantity itself, the image's expected
mean-variance line in normalised units (RAW planes scaled to [0, 1] by black/white levels, after
the exposure ratio ``r`` was applied)::

    Var[y | x] ~= a * x + b,   a = r * K / span,   b = r**2 * (sigma_read**2 + sigma_row**2 + 1/12) / span**2

with the system gain ``K`` (DN/e-) and read noise at the image's ISO from the sensor's profile
(built-in, imported or calibrated by ``rawadapt calibrate``), ``span = white - black``. This is the
heteroscedastic Gaussian view of the physics-based model (ELD eq. 1-6; PMRID §3.1), its regression
means without the random term.

Networks take ``noise`` as a ``[B, 2]`` tensor of ``(a, b)`` (NaN = unknown). The modulation
sees :func:`noise_features` of it (two normalised logs); the optional k-sigma transform
(:func:`ksigma_coefficients`, PMRID §3.2) maps every image's noise to one anchor line.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from rawadapt.errors import RawAdaptError
from rawadapt.models.noise_input import (  # noqa: F401  (re-exported: what networks do with (a, b))
    FEATURE_SCALE,
    FEATURE_SHIFT,
    KSIGMA_ANCHOR,
    ksigma_coefficients,
    noise_features,
)
from rawadapt.noise.model import tukey_lambda_variance
from rawadapt.noise.profiles import list_profiles, load_profile

#: (a, b) of an unknown noise level
UNKNOWN: tuple[float, float] = (math.nan, math.nan)


def read_sigma_dn(profile: Any, iso: float) -> tuple[float, float]:
    """Expected read-noise std and row-noise std (DN) of ``profile`` at ``iso`` (regression means
    without the random term; NLF profiles: their tabulated read noise)."""

    K = profile.iso_to_k(iso)
    if profile.nlf:
        read = profile.nlf_read_sigma(iso)
        return read, profile.row_fraction * read
    row = profile.sigma_row.mean(K) if profile.sigma_row is not None else 0.0
    if profile.sigma_gauss is not None:
        return profile.sigma_gauss.mean(K), row
    if profile.sigma_tl is not None and profile.tukey_lambdas:
        lam = sorted(profile.tukey_lambdas)[len(profile.tukey_lambdas) // 2]
        return profile.sigma_tl.mean(K) * math.sqrt(tukey_lambda_variance(lam)), row
    return 0.0, row


def noise_line(profile: Any, iso: float, ratio: float = 1.0) -> tuple[float, float]:
    """``(a, b)`` of ``Var[y|x] = a x + b`` in normalised units for an image of ``profile`` at
    ``iso`` brightened by the exposure ``ratio``."""
    span = float(profile.mean_span)
    r = float(ratio or 1.0)
    K = profile.iso_to_k(float(iso))
    read, row = read_sigma_dn(profile, float(iso))
    return r * K / span, r * r * (read * read + row * row + 1.0 / 12.0) / (span * span)


@functools.lru_cache(maxsize=4096)
def _builtin_line(sensor: str, iso: float, ratio: float) -> tuple[float, float]:

    if sensor not in list_profiles():
        return UNKNOWN
    try:
        return noise_line(load_profile(sensor), iso, ratio)
    except (RawAdaptError, ValueError, ZeroDivisionError):
        return UNKNOWN


def sample_noise_line(
    sensor: str | None, iso: float | None, ratio: float = 1.0, profile: Any = None
) -> tuple[float, float]:
    """``(a, b)`` of an image from its sensor's profile (``profile``, else the built-in or
    imported profile named ``sensor``); :data:`UNKNOWN` without a profile or an ISO."""
    if iso is None or not math.isfinite(float(iso)) or float(iso) <= 0:
        return UNKNOWN
    if profile is not None:
        return noise_line(profile, float(iso), float(ratio or 1.0))
    if not sensor:
        return UNKNOWN
    return _builtin_line(str(sensor), float(iso), float(ratio or 1.0))


def noise_tensor(lines: Sequence[tuple[float, float]], device: Any = None) -> Any:
    """A ``[B, 2]`` float32 tensor of ``(a, b)`` lines (what networks take as ``noise``)."""
    import torch

    return torch.tensor([list(v) for v in lines], dtype=torch.float32, device=device).reshape(-1, 2)
