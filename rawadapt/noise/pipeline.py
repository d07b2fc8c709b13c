"""A small camera pipeline and its inverse ("unprocessing", Brooks et al., CVPR 2019).

Forward (RAW -> sRGB), for previews and for the sRGB noisy/clean pairs (noise is added in RAW
and both images go through the same pipeline):

    packed planes --(white balance gains)--> --(bilinear demosaic)--> camera RGB
    --(clip, CCM camera->linear sRGB)--> --(sRGB transfer function)--> --(tone curve)--> sRGB

Inverse (sRGB -> RAW): invert the tone curve (smoothstep, Brooks et al.) and the sRGB transfer
function, apply the inverse colour matrix, divide by the white-balance gains, scale the
exposure and mosaic in the profile's CFA. The CCM comes from the profile's DNG-style colour
matrix (:attr:`rawadapt.noise.profiles.Profile.ccm`); white-balance gains are drawn per image
from the profile's ranges.

Arrays are ``float32`` NumPy ``(C, H, W)``: sRGB is ``(3, H, W)``, packed RAW ``(4, H/2, W/2)``
in canonical plane order R, G1, G2, B (:mod:`rawadapt.io.bayer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rawadapt.errors import ShapeError
from rawadapt.io.bayer import plane_offsets, unpack
from rawadapt.noise.profiles import Profile, load_profile
from rawadapt.utils.seed import numpy_rng

#: plane -> colour channel of the canonical planes R, G1, G2, B
PLANE_CHANNEL = (0, 1, 1, 2)
#: default per-image exposure scale range (log-uniform) applied when unprocessing
DEFAULT_EXPOSURE = (0.3, 1.0)


# --------------------------------------------------------------------------------------------
# Point operations
# --------------------------------------------------------------------------------------------


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer function (IEC 61966-2-1), on values in [0, 1]."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB transfer function (IEC 61966-2-1); input clipped to [0, 1]."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def tone_curve(x: np.ndarray) -> np.ndarray:
    """Global tone curve of Brooks et al.: smoothstep ``3x^2 - 2x^3``."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return (3.0 * x * x - 2.0 * x * x * x).astype(np.float32)


def inverse_tone_curve(y: np.ndarray) -> np.ndarray:
    """Inverse of :func:`tone_curve`: ``1/2 - sin(arcsin(1 - 2y) / 3)``."""
    y = np.clip(np.asarray(y, dtype=np.float32), 0.0, 1.0)
    return (0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)).astype(np.float32)


def apply_ccm(rgb: np.ndarray, ccm: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """``out[c] = sum_k ccm[c, k] rgb[k]`` for a ``(3, H, W)`` image."""
    m = np.asarray(ccm, dtype=np.float32).reshape(3, 3)
    return np.einsum("ck,khw->chw", m, np.asarray(rgb, dtype=np.float32)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Mosaic / demosaic
# --------------------------------------------------------------------------------------------


def mosaic(rgb: np.ndarray, cfa: str) -> np.ndarray:
    """Sample a full-resolution ``(3, H, W)`` camera-RGB image with ``cfa`` into packed planes
    ``(4, H//2, W//2)`` (R, G1, G2, B)."""
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise ShapeError(f"mosaic needs a (3, H, W) image, got {tuple(rgb.shape)}")
    h, w = rgb.shape[1] // 2 * 2, rgb.shape[2] // 2 * 2
    return np.stack([rgb[ch, dy:h:2, dx:w:2] for ch, (dy, dx) in zip(PLANE_CHANNEL, plane_offsets(cfa))]).astype(
        np.float32
    )


_K_RB = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], dtype=np.float32)
_K_G = np.array([[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]], dtype=np.float32)


def demosaic_bilinear(planes: np.ndarray, cfa: str) -> np.ndarray:
    """Bilinear demosaic of packed planes ``(4, h, w)`` (or ``(B, 4, h, w)``) -> ``(3, 2h, 2w)``.

    Normalised convolution (``conv(mosaic * mask) / conv(mask)``) with zero padding, so borders
    only average the samples that exist and each known sample is kept exactly.
    """
    import torch
    import torch.nn.functional as F

    p = np.asarray(planes, dtype=np.float32)
    batched = p.ndim == 4
    if not batched:
        p = p[None]
    if p.ndim != 4 or p.shape[1] != 4:
        raise ShapeError(f"demosaic needs (4, h, w) packed planes, got {tuple(np.shape(planes))}")
    b, _, h, w = p.shape
    mos = np.zeros((b, 3, 2 * h, 2 * w), dtype=np.float32)
    mask = np.zeros((1, 3, 2 * h, 2 * w), dtype=np.float32)
    for k, (dy, dx) in enumerate(plane_offsets(cfa)):
        ch = PLANE_CHANNEL[k]
        mos[:, ch, dy::2, dx::2] = p[:, k]
        mask[:, ch, dy::2, dx::2] = 1.0
    kern = torch.from_numpy(np.stack([_K_RB, _K_G, _K_RB])[:, None])
    t_mos = F.conv2d(torch.from_numpy(mos), kern, padding=1, groups=3)
    t_mask = F.conv2d(torch.from_numpy(mask), kern, padding=1, groups=3)
    out = (t_mos / t_mask.clamp_min(1e-6)).numpy()
    return out if batched else out[0]


# --------------------------------------------------------------------------------------------
# Forward pipeline
# --------------------------------------------------------------------------------------------


def gray_world_wb(planes: np.ndarray) -> tuple[float, float, float]:
    """White-balance gains (r, g, b) that equalise the channel means (for previews)."""
    p = np.asarray(planes, dtype=np.float64)
    r, g, b = p[0].mean(), 0.5 * (p[1].mean() + p[2].mean()), p[3].mean()
    eps = 1e-6
    return (float(g / max(r, eps)), 1.0, float(g / max(b, eps)))


def render_srgb(
    planes01: np.ndarray,
    cfa: str,
    *,
    wb: Sequence[float] | None = None,
    ccm: np.ndarray | Sequence[Sequence[float]] | None = None,
    gamma: bool = True,
    tone: bool = True,
    gain: float = 1.0,
) -> np.ndarray:
    """Render packed RAW in [0, 1] to an sRGB image ``(3, 2h, 2w)`` float32 in [0, 1].

    Parameters
    ----------
    planes01
        Black-subtracted, normalised canonical planes ``(4, h, w)``.
    cfa
        The planes' CFA phase (demosaic geometry).
    wb
        White-balance gains ``(r, g, b)``; None: gray-world estimate.
    ccm
        Camera -> linear sRGB matrix; None: identity.
    gamma
        Apply the sRGB transfer function (else the output stays linear).
    tone
        Apply the tone curve (only with ``gamma``).
    gain
        Digital gain before white balance (e.g. ``1 / exposure`` of :func:`unprocess`).
    """
    p = np.asarray(planes01, dtype=np.float32)
    if p.ndim != 3 or p.shape[0] != 4:
        raise ShapeError(f"render_srgb needs (4, h, w) packed planes, got {tuple(p.shape)}")
    gains = gray_world_wb(p) if wb is None else tuple(float(v) for v in wb)
    if len(gains) != 3:
        raise ShapeError(f"wb needs 3 gains (r, g, b), got {len(gains)}")
    plane_gain = np.array([gains[c] for c in PLANE_CHANNEL], dtype=np.float32)[:, None, None] * float(gain)
    balanced = np.clip(p * plane_gain, 0.0, 1.0)
    rgb = np.clip(demosaic_bilinear(balanced, cfa), 0.0, 1.0)
    if ccm is not None:
        rgb = np.clip(apply_ccm(rgb, ccm), 0.0, 1.0)
    if gamma:
        rgb = linear_to_srgb(rgb)
        if tone:
            rgb = tone_curve(rgb)
    return rgb.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Inverse pipeline
# --------------------------------------------------------------------------------------------


def random_wb(profile: Profile, rng: np.random.Generator) -> tuple[float, float, float]:
    """White-balance gains (r, 1, b) drawn uniformly in the profile's ranges."""
    return (float(rng.uniform(*profile.wb_red)), 1.0, float(rng.uniform(*profile.wb_blue)))


def unprocess_rgb(srgb: np.ndarray, wb: Sequence[float], ccm: np.ndarray) -> np.ndarray:
    """sRGB ``(3, H, W)`` -> linear camera RGB before white balance (no mosaic, no exposure).

    Exact inverse of the point operations of :func:`render_srgb` for pixels that were not
    clipped (tone curve, transfer function, CCM, white balance)."""
    x = np.asarray(srgb, dtype=np.float32)
    if x.ndim != 3 or x.shape[0] != 3:
        raise ShapeError(f"unprocess needs a (3, H, W) sRGB image, got {tuple(x.shape)}")
    lin = srgb_to_linear(inverse_tone_curve(x))
    cam = apply_ccm(lin, np.linalg.inv(np.asarray(ccm, dtype=np.float64)))
    gains = np.asarray(wb, dtype=np.float32).reshape(3, 1, 1)
    return np.clip(cam / gains, 0.0, 1.0).astype(np.float32)


def unprocess(
    srgb: np.ndarray,
    profile: Profile | str,
    rng: np.random.Generator | int | None = None,
    *,
    wb: Sequence[float] | None = None,
    exposure: float | None = None,
    exposure_range: tuple[float, float] = DEFAULT_EXPOSURE,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Turn an sRGB image into clean linear packed RAW of ``profile`` (Brooks et al. 2019).

    Parameters
    ----------
    srgb
        ``(3, H, W)`` float in [0, 1] (even H, W keep every pixel).
    profile
        Camera profile (CFA, CCM, white-balance ranges).
    rng
        Randomness for the white balance and exposure (NumPy generator or seed).
    wb
        Fix the white-balance gains ``(r, g, b)`` instead of drawing them.
    exposure
        Fix the exposure scale (1 = as bright as the sRGB image implies) instead of drawing it
        log-uniformly in ``exposure_range`` (realistic brightness variation of raw captures).

    Returns
    -------
    planes01
        ``(4, H/2, W/2)`` float32 in [0, 1], canonical plane order.
    meta
        ``{"wb": (r, g, b), "ccm": 3x3 list, "exposure": float, "cfa": str}``; render back with
        ``render_srgb(planes01, cfa, wb=meta["wb"], ccm=meta["ccm"], gain=1/meta["exposure"])``.
    """
    prof = load_profile(profile)
    gen = numpy_rng(rng)
    gains = random_wb(prof, gen) if wb is None else tuple(float(v) for v in wb)
    if exposure is None:
        lo, hi = exposure_range
        exposure = float(np.exp(gen.uniform(np.log(lo), np.log(hi))))
    ccm = prof.ccm
    cam = unprocess_rgb(srgb, gains, ccm) * np.float32(exposure)
    planes = mosaic(cam, prof.cfa)
    meta = {"wb": tuple(gains), "ccm": ccm.tolist(), "exposure": float(exposure), "cfa": prof.cfa}
    return planes, meta


def preview_uint8(planes01: np.ndarray, cfa: str) -> np.ndarray:
    """Quick preview (gray-world WB, no CCM) as 8-bit ``(H, W, 3)`` for saving with PIL."""
    rgb = render_srgb(planes01, cfa)
    return to_uint8_hwc(rgb)


def to_uint8_hwc(rgb: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` float in [0, 1] -> ``(H, W, 3)`` uint8 (rounded)."""
    return np.clip(np.rint(np.transpose(rgb, (1, 2, 0)) * 255.0), 0, 255).astype(np.uint8)


def planes_to_mosaic(planes: np.ndarray, cfa: str) -> np.ndarray:
    """Packed planes back to a Bayer mosaic (thin wrapper of :func:`rawadapt.io.bayer.unpack`)."""
    return unpack(planes, cfa)
