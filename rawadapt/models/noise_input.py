"""What a noise-conditioned network does with an image's noise parameters ``(a, b)`` (its
mean-variance line ``Var = a x + b`` in normalised units): the normalised log features the
modulation sees, and the k-sigma transform (PMRID §3.2). Where ``(a, b)`` come from (a sensor's
profile at the image's ISO) is :mod:`rawadapt.noise.conditioning`.
"""

from __future__ import annotations

from typing import Any

#: centring/scale of log10(a), log10(b) -> features of order 1 over SID/ELD/SIDD-like regimes
#: (a from ~1e-5 at base ISO to ~0.3 at x300 low light; b from ~1e-8 to ~0.3)
FEATURE_SHIFT: tuple[float, float] = (3.0, 4.5)
FEATURE_SCALE: tuple[float, float] = (2.5, 3.5)
#: the k-sigma anchor line (a0, b0): a mid-range noise level (PMRID maps to ISO 1600 of its camera)
KSIGMA_ANCHOR: tuple[float, float] = (1e-2, 1e-4)


def noise_features(noise: Any) -> Any:
    """``[B, 2]`` normalised ``log10 a``, ``log10 b``; 0 (the centre) where unknown/non-positive."""
    import torch

    n = torch.as_tensor(noise, dtype=torch.float32)
    ok = torch.isfinite(n) & (n > 0)
    logs = torch.log10(torch.where(ok, n, torch.ones_like(n)))
    shift = torch.tensor(FEATURE_SHIFT, dtype=n.dtype, device=n.device)
    scale = torch.tensor(FEATURE_SCALE, dtype=n.dtype, device=n.device)
    return torch.where(ok, (logs + shift) / scale, torch.zeros_like(n))


def ksigma_coefficients(noise: Any, anchor: tuple[float, float] = KSIGMA_ANCHOR) -> tuple[Any, Any]:
    """Per-image ``(c, d)`` ``[B, 1, 1, 1]`` of the k-sigma transform ``y' = c y + d``, which
    maps ``Var = a x + b`` onto the anchor line ``Var = a0 x' + b0`` (PMRID §3.2: ``c = a0 / a``,
    ``d = (c**2 b - b0) / a0``); identity (1, 0) where the noise is unknown. Inverse:
    ``y = (y' - d) / c``."""
    import torch

    n = torch.as_tensor(noise, dtype=torch.float32)
    a, b = n[:, 0], n[:, 1]
    ok = torch.isfinite(a) & torch.isfinite(b) & (a > 0) & (b >= 0)
    a0, b0 = anchor
    c = torch.where(ok, a0 / torch.where(ok, a, torch.ones_like(a)), torch.ones_like(a))
    d = torch.where(ok, (c * c * torch.where(ok, b, torch.zeros_like(b)) - b0) / a0, torch.zeros_like(a))
    return c.view(-1, 1, 1, 1), d.view(-1, 1, 1, 1)
