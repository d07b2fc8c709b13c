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

sRGB noisy/clean pairs: one camera, two inputs (issue #18)
----------------------------------------------------------
A DnCNN pretrained on the first ``synth-srgb`` moved saturated colours (a green patch (40, 180,
40) with noise of std 6/255 came out (142, 148, 121)). Diagnosis on a tiny build of that data
(``wide`` plan, 120 pairs; offsets are ``mean(noisy - clean)`` per channel R/G/B in 8-bit units,
split into causes by averaging 6-8 noise draws per pair):

* as built: +1.2 / -0.5 / +3.0 over the build, per image up to 58 / 27 / 65 (CanonEOS70D,
  ISO 6400 x100, noisy PSNR 6 dB); per-sensor noisy PSNR 6-47 dB, means 21-30 dB;
* the clean and noisy images did go through the same :func:`render_srgb` (same white balance,
  CCM, exposure gain, tone curve). The offsets came from three things, all but the first
  growing with the noise level:

  1. the noise model's colour bias (ELD's per-channel black-level error, 1.3-4.2 DN for the
     A7S2) was added to the noisy RAW and never removed, then multiplied by the exposure ratio
     and the white-balance gains: up to +34 (R) / +30 (B) per image (A7S2 x100), -10 (D850
     x100); still up to 1.9 at ratio 1 for the 10-bit phones, whose DN are large in [0, 1];
  2. clipping of the noisy data at 0 and 1 (the RAW loader clips at 0 before white balance,
     render_srgb again after demosaicking and after the CCM): ``E[clip(x + n)] != x`` near
     black and white, up to +71 / +67 / +100 (EOS70D x100 ISO 6400) and +23 / +16 (N6, ISO
     1600 at ratio 1, 18 dB);
  3. the sRGB transfer function and tone curve: ``E[f(x + n)] != f(x)`` (the concave sRGB curve
     wins), down to -49 / -42 / -42 at 6 dB, -4 at 18 dB, under 0.2 above 35 dB.

  Causes 2 and 3 are physical (a camera clips and gamma-encodes its noisy signal too), but at
  the noise of a camera JPEG (about 28-45 dB) they are small; the old data was mostly far
  noisier (x10/x100 low-light ratios brightened into an sRGB image, phones at high ISO without
  the noise reduction every camera applies). Cause 1 is not physical for camera output:
  cameras measure their black level on optical-black pixels and subtract it.

What is consistent now (:func:`render_camera_pair`): the clean image is exactly what the camera
outputs for the noise-free signal with the same settings (same white balance, exposure gain,
demosaic, CCM, transfer function, tone curve, and for JPEG scenes the same chroma subsampling);
the noisy image goes through the identical path. The camera subtracts black level plus colour
bias (black clamp), keeps signed values through demosaicking and its noise reduction
(:func:`reduce_noise`, strength from the noise level, :func:`nr_target_db`), and clips after
it (to [0, 1] before the CCM and again after it, like :func:`render_srgb`). The biases of
causes 2 and 3 remain where they are physical (near black and white, and ``E[f(x + n)]`` at
the remaining noise level); where nothing clips, the offset in expectation over the noise is
within 1/255 per channel (0.5/255 or less pooled per sensor on a tiny build;
tests/test_srgb_colour.py). :func:`render_srgb` itself is unchanged (previews, error maps and
the harmful sets use it).
"""

from __future__ import annotations

import math
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


# --------------------------------------------------------------------------------------------
# sRGB noisy/clean pairs: one camera, two inputs
# --------------------------------------------------------------------------------------------

#: images whose sRGB PSNR before noise reduction is above this get no luma noise reduction (dB)
NR_KNEE_DB = 40.0
#: below the knee the camera's noise reduction keeps this share of the PSNR deficit
NR_SLOPE = 0.4
#: chroma noise is brought this much lower than luma noise (cameras suppress chroma noise hardest)
NR_CHROMA = 0.5
#: Gaussian scales (pixels) the noise reduction may use, gentlest first
NR_BLURS = (1.0, 2.0, 4.0)


def camera_rgb(planes01: np.ndarray, cfa: str, *, wb: Sequence[float], gain: float = 1.0) -> np.ndarray:
    """White-balanced, demosaicked linear camera RGB ``(3, 2h, 2w)``, NOT clipped (signed noise
    kept, as an image signal processor keeps it until its noise reduction)."""
    p = np.asarray(planes01, dtype=np.float32)
    if p.ndim != 3 or p.shape[0] != 4:
        raise ShapeError(f"camera_rgb needs (4, h, w) packed planes, got {tuple(p.shape)}")
    gains = np.array([float(wb[c]) for c in PLANE_CHANNEL], dtype=np.float32)[:, None, None] * float(gain)
    return demosaic_bilinear(p * gains, cfa)


def finish_srgb(cam: np.ndarray, ccm: np.ndarray | Sequence[Sequence[float]] | None) -> np.ndarray:
    """Clip linear camera RGB to [0, 1], apply the CCM (clipped again), the sRGB transfer function
    and the tone curve: the camera's output in [0, 1]."""
    rgb = np.clip(cam, 0.0, 1.0)
    if ccm is not None:
        rgb = np.clip(apply_ccm(rgb, ccm), 0.0, 1.0)
    return tone_curve(linear_to_srgb(rgb))


def nr_target_db(psnr_in: float, *, knee: float = NR_KNEE_DB, slope: float = NR_SLOPE) -> float:
    """PSNR (dB) the camera's noise reduction aims at for an image of ``psnr_in`` dB: unchanged
    above ``knee``, the deficit below it scaled by ``slope`` (stronger reduction for noisier
    images, as cameras tune it per ISO)."""
    return float(psnr_in) if psnr_in >= knee else float(knee - slope * (knee - psnr_in))


def _opponent(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[0], rgb[1], rgb[2]
    return np.stack([(r + 2 * g + b) / 4, r - g, b - g])


def _from_opponent(o: np.ndarray) -> np.ndarray:
    g = o[0] - (o[1] + o[2]) / 4
    return np.stack([o[1] + g, g, o[2] + g])


def _blend_to_std(r: np.ndarray, factor: float, blurs: Sequence[float]) -> tuple[np.ndarray, float]:
    """``r - w (r - G_s r)``: the gentlest Gaussian ``G_s`` of ``blurs`` and the weight ``w`` in
    [0, 1] that bring the std of ``r`` to ``factor`` times its value (``G_s r`` alone when even
    the strongest blur is not enough). Linear and normalised: local means are kept. Returns
    the result and ``s`` (0 when nothing was done)."""
    from scipy.ndimage import gaussian_filter

    x = np.asarray(r, dtype=np.float64)
    s0 = float(x.var())
    if factor >= 1.0 or s0 <= 0.0:
        return np.asarray(r, dtype=np.float32), 0.0
    t2 = max(float(factor), 0.0) ** 2 * s0
    g, s = x, 0.0
    for s in blurs:
        g = gaussian_filter(x, sigma=float(s), mode="reflect")
        d = x - g
        vd = float(d.var())
        cov = float(np.mean((x - x.mean()) * (d - d.mean())))
        if vd > 0 and s0 - 2 * cov + vd <= t2:  # var(r - w d) at w = 1 is low enough
            w = (cov - math.sqrt(max(cov * cov - vd * (s0 - t2), 0.0))) / vd
            return (x - min(max(w, 0.0), 1.0) * d).astype(np.float32), float(s)
    return g.astype(np.float32), float(s)


def reduce_noise(
    clean: np.ndarray,
    noisy: np.ndarray,
    *,
    luma: float,
    chroma: float,
    blurs: Sequence[float] = NR_BLURS,
    info: dict[str, float] | None = None,
) -> np.ndarray:
    """Idealised in-camera noise reduction of linear camera RGB ``(3, H, W)``.

    The noise component ``noisy - clean`` is split into luma ``(R + 2G + B) / 4`` and two
    colour differences ``R - G``, ``B - G``; each is smoothed (:func:`_blend_to_std`) until its
    std is ``luma`` (resp. ``chroma``) times the input's. Filtering the noise component instead
    of the image models a perfect edge-preserving filter: the scene's detail is not touched, so
    the clean image stays what the camera outputs for the noise-free signal. The filters are
    linear and normalised, so the local mean of the noise (zero, or a physical bias) is kept;
    a bias is carried about three ``blur`` to the neighbours (``info["blur"]`` receives the
    largest Gaussian scale used, pixels).
    """
    c = np.asarray(clean, dtype=np.float32)
    o = _opponent(np.asarray(noisy, dtype=np.float32) - c)
    parts = [_blend_to_std(o[i], f, blurs) for i, f in enumerate((luma, chroma, chroma))]
    if info is not None:
        info["blur"] = max(b for _, b in parts)
    return (c + _from_opponent(np.stack([p for p, _ in parts]))).astype(np.float32)


def psnr01(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two images in [0, 1] (``inf`` when identical)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def render_camera_pair(
    clean01: np.ndarray,
    noisy01: np.ndarray,
    cfa: str,
    *,
    wb: Sequence[float],
    ccm: np.ndarray | Sequence[Sequence[float]] | None,
    gain: float = 1.0,
    noise_reduction: bool = False,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Render a clean and a noisy RAW image of one capture through ONE camera pipeline.

    Both images take the identical path: white balance and exposure gain, bilinear demosaic (on
    signed values), [optional noise reduction of the noisy one,] clipping to [0, 1], CCM,
    clipping, sRGB transfer function, tone curve. The clean image is thus exactly what the
    camera outputs for the noise-free signal with the same settings (the same values as
    :func:`render_srgb` for clean data in [0, 1]).

    Parameters
    ----------
    clean01, noisy01
        Packed planes ``(4, h, w)``, black-subtracted and normalised (the noisy one may hold
        negative values: a camera subtracts its black level without clipping).
    cfa, wb, ccm, gain
        As in :func:`render_srgb`.
    noise_reduction
        Apply :func:`reduce_noise` with the strength the camera would choose for this noise
        level (:func:`nr_target_db` of the image's PSNR before reduction; chroma
        :data:`NR_CHROMA` times lower).

    Returns
    -------
    clean, noisy
        sRGB ``(3, 2h, 2w)`` float32 in [0, 1].
    info
        ``{"psnr_in": dB, "luma": factor, "chroma": factor, "blur": px}`` when noise reduction
        ran, else ``{}``.
    """
    c_cam = camera_rgb(clean01, cfa, wb=wb, gain=gain)
    n_cam = camera_rgb(noisy01, cfa, wb=wb, gain=gain)
    clean = finish_srgb(c_cam, ccm)
    info: dict[str, float] = {}
    if noise_reduction:
        p_in = psnr01(finish_srgb(n_cam, ccm), clean)
        if math.isfinite(p_in):
            k = 10.0 ** ((p_in - nr_target_db(p_in)) / 20.0)
            info = {"psnr_in": p_in, "luma": k, "chroma": NR_CHROMA * k}
            n_cam = reduce_noise(c_cam, n_cam, luma=k, chroma=NR_CHROMA * k, info=info)
    return clean, finish_srgb(n_cam, ccm), info


def jpeg_roundtrip(rgb01: np.ndarray, quality: int, *, subsampling: int = 2) -> tuple[np.ndarray, bytes]:
    """Compress an sRGB image ``(3, H, W)`` in [0, 1] as an 8-bit JPEG (Pillow, baseline,
    ``subsampling`` 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0) and decode it: ``(decoded float32, file bytes)``.
    Deterministic for one Pillow/libjpeg build."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(to_uint8_hwc(rgb01)).save(buf, format="JPEG", quality=int(quality), subsampling=int(subsampling))
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as im:
        dec = np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0
    return np.ascontiguousarray(dec), data


def clip_free_mask(
    clean01: np.ndarray,
    noise_std: np.ndarray,
    cfa: str,
    *,
    wb: Sequence[float],
    ccm: np.ndarray | Sequence[Sequence[float]] | None,
    gain: float = 1.0,
    floor: float | np.ndarray = 0.0,
    k: float = 3.0,
    spread: int = 0,
    nr: float = 1.0,
) -> np.ndarray:
    """Full-resolution pixels ``(2h, 2w)`` where no stage of :func:`render_camera_pair` clips the
    noisy image (with ``k``-sigma confidence), judged on the CLEAN signal so that the selection
    does not depend on the noise itself.

    Stages: the ADC range ``[floor, 1]`` of the planes (``floor`` = minus the black level in
    normalised units; 0 for sensors with black level 0), the clip of white-balanced camera RGB
    and the clip after the CCM. ``noise_std`` ``(4, h, w)`` is the noise std of the planes
    (normalised units, before gains); it is propagated conservatively (maximum over the
    demosaic footprint, sum of absolute CCM weights). ``nr``: the factor by which noise
    reduction lowered the noise before the later stages (``info["luma"]`` of
    :func:`render_camera_pair`); ``spread``: how far (pixels) the noise reduction carries the
    bias of ADC-clipped samples to their neighbours (about ``3 * info["blur"]``).
    """
    from scipy.ndimage import binary_erosion, maximum_filter, minimum_filter

    c = np.asarray(clean01, dtype=np.float32)
    sd = np.broadcast_to(np.asarray(noise_std, dtype=np.float32), c.shape)
    ok_planes = np.all((c - k * sd > np.asarray(floor, dtype=np.float32)) & (c + k * sd < 1.0), axis=0)
    ok = np.repeat(np.repeat(minimum_filter(ok_planes.astype(np.uint8), size=3, mode="nearest"), 2, 0), 2, 1) > 0
    if spread > 0:
        ok = binary_erosion(ok, iterations=int(spread), border_value=1)
    gains = np.array([float(wb[ch]) for ch in PLANE_CHANNEL], dtype=np.float32)[:, None, None] * float(gain)
    sd_full = np.repeat(np.repeat((sd * gains).max(axis=0), 2, 0), 2, 1) * float(nr)
    sd_full = maximum_filter(sd_full, size=3, mode="nearest")
    cam = camera_rgb(c, cfa, wb=wb, gain=gain)
    ok &= np.all((cam - k * sd_full > 0.0) & (cam + k * sd_full < 1.0), axis=0)
    if ccm is not None:
        m = np.asarray(ccm, dtype=np.float32).reshape(3, 3)
        lin = apply_ccm(np.clip(cam, 0.0, 1.0), m)
        sd_ccm = sd_full[None] * np.abs(m).sum(axis=1)[:, None, None]
        ok &= np.all((lin - k * sd_ccm > 0.0) & (lin + k * sd_ccm < 1.0), axis=0)
    return np.asarray(ok, dtype=bool)
