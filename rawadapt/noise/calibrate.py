"""Fit a per-channel Poisson-Gaussian noise model ``var = K mean + sigma_read^2`` (DN) to data.

Three sources of (mean, variance) points, all per canonical plane (R, G1, G2, B), black level
subtracted, saturated and zero-clipped data masked:

(a) :func:`calibrate_pairs` - noisy/clean pairs: pixels binned by their clean value (equal-count
    bins), variance of ``noisy - clean`` per bin.
(b) :func:`calibrate_flat_regions` - a single noisy frame with flat regions (a colour chart,
    a grey card): local mean and variance on small blocks after removing a fitted plane (so
    slow shading does not count as noise), then a robust selection of flat blocks (iteratively
    rejecting blocks whose variance is outside ``+-3`` standard errors of the current fit:
    edges and texture only ever ADD variance).
(c) :func:`calibrate_dark_flat` - photon transfer: dark frames give the read variance (temporal
    variance over >= 2 frames, which excludes the fixed DSNU pattern), flat frames at several
    levels give (mean, temporal variance) points (>= 2 frames per level: the fixed PRNU pattern
    cancels); K is the slope with the intercept fixed to the dark read variance.

The line is fitted by weighted least squares with weights ``n / var_pred^2`` (the variance of a
sample variance is ``2 var^2 / (n - 1)``), iterated a few times. The result becomes a profile
(:func:`calibration_profile`, kind ``nlf``) that :mod:`rawadapt.noise.model` simulates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from rawadapt.errors import ConfigError, ShapeError

SAT_MARGIN = 0.98  # ignore data above this fraction of (white - black)
#: one value per canonical plane (R, G1, G2, B)
PerPlane = tuple[float, float, float, float]


@dataclass
class ChannelPoints:
    """(mean, variance, count) points of one channel and the line fitted to them."""

    means: np.ndarray
    variances: np.ndarray
    counts: np.ndarray
    K: float = float("nan")
    read_var: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "K": self.K,
            "read_var": self.read_var,
            "n_points": int(len(self.means)),
            "means": self.means.round(3).tolist(),
            "variances": self.variances.round(3).tolist(),
            "counts": self.counts.astype(int).tolist(),
        }


@dataclass
class CalibrationResult:
    """Fitted per-channel gains and read variances (DN, DN^2) in canonical plane order."""

    method: str
    K: PerPlane
    read_var: PerPlane
    black_level: PerPlane
    white_level: float
    cfa: str | None
    channels: list[ChannelPoints]
    iso: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def K_mean(self) -> float:
        return float(np.mean(self.K))

    @property
    def read_sigma(self) -> float:
        """Read-noise std (DN), channel average of the variances."""
        return float(math.sqrt(max(float(np.mean(self.read_var)), 0.0)))

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "K": [round(k, 5) for k in self.K],
            "K_mean": round(self.K_mean, 5),
            "read_var": [round(v, 3) for v in self.read_var],
            "read_sigma": round(self.read_sigma, 4),
            "black_level": list(self.black_level),
            "white_level": self.white_level,
            "cfa": self.cfa,
            "iso": self.iso,
            "n_points": [len(c.means) for c in self.channels],
            "notes": self.notes,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "channels": [c.to_dict() for c in self.channels]}


# --------------------------------------------------------------------------------------------
# Line fit
# --------------------------------------------------------------------------------------------


def fit_poisson_gaussian(
    means: np.ndarray,
    variances: np.ndarray,
    counts: np.ndarray | None = None,
    *,
    read_var: float | None = None,
    iterations: int = 4,
) -> tuple[float, float]:
    """Weighted least-squares fit of ``var = K mean + c``.

    Parameters
    ----------
    means, variances
        Points (DN, DN^2).
    counts
        Samples behind each variance (weights ``counts / var_pred^2``); default 1.
    read_var
        Fix the intercept (e.g. from dark frames) and fit the slope only.

    Returns
    -------
    (K, read_var)
    """
    m = np.asarray(means, dtype=np.float64)
    v = np.asarray(variances, dtype=np.float64)
    n = np.ones_like(m) if counts is None else np.asarray(counts, dtype=np.float64)
    ok = np.isfinite(m) & np.isfinite(v) & (n > 0)
    m, v, n = m[ok], v[ok], n[ok]
    if len(m) < (1 if read_var is not None else 2):
        raise ConfigError("not enough (mean, variance) points to fit a noise model")
    pred = np.maximum(v, 1e-6)
    K, c = float("nan"), float("nan")
    for _ in range(max(1, iterations)):
        w = n / np.maximum(pred, 1e-6) ** 2
        if read_var is not None:
            c = float(read_var)
            K = float(np.sum(w * m * (v - c)) / max(np.sum(w * m * m), 1e-30))
        else:
            sw, swm, swv = w.sum(), (w * m).sum(), (w * v).sum()
            swmm, swmv = (w * m * m).sum(), (w * m * v).sum()
            det = sw * swmm - swm * swm
            if det <= 0:
                raise ConfigError("degenerate calibration data: all points at the same brightness")
            K = float((sw * swmv - swm * swv) / det)
            c = float((swmm * swv - swm * swmv) / det)
        pred = np.maximum(K * m + c, 1e-6)
    return K, c


def _result(
    method: str,
    chans: list[ChannelPoints],
    black: Sequence[float] | np.ndarray,
    white: float,
    cfa: str | None,
    iso: float | None,
    notes: list[str],
) -> CalibrationResult:
    for i, ch in enumerate(chans):
        if ch.read_var < 0:
            notes.append(f"channel {i}: negative read variance {ch.read_var:.3g} clamped to 0")
            ch.read_var = 0.0
        if not ch.K > 0:
            raise ConfigError(f"channel {i}: fitted gain K={ch.K:.4g} is not positive (no signal range?)")
    return CalibrationResult(
        method=method,
        K=cast(PerPlane, tuple(c.K for c in chans)),
        read_var=cast(PerPlane, tuple(c.read_var for c in chans)),
        black_level=cast(PerPlane, tuple(float(b) for b in black)),
        white_level=float(white),
        cfa=cfa,
        channels=chans,
        iso=iso,
        notes=notes,
    )


def _as_list(frames: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(frames, np.ndarray):
        frames = [frames] if frames.ndim == 3 else list(frames)
    out = [np.asarray(f, dtype=np.float64) for f in frames]
    for f in out:
        if f.ndim != 3 or f.shape[0] != 4:
            raise ShapeError(f"calibration frames must be packed DN planes (4, h, w), got {f.shape}")
    if not out:
        raise ConfigError("no frames given")
    return out


def _levels(black: float | Sequence[float], white: float) -> tuple[np.ndarray, float]:
    b = np.asarray(black, dtype=np.float64).reshape(-1)
    if b.size == 1:
        b = np.repeat(b, 4)
    if b.size != 4:
        raise ShapeError(f"black_level needs 1 or 4 values, got {b.size}")
    if np.any(b >= white):
        raise ConfigError(f"white level {white} must exceed black levels {b.tolist()}")
    return b, float(white)


def _bin_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Half equal-count (quantile) edges, half geometric edges from the dark end, so that both
    the well-populated levels and the dark levels (which pin down the read noise) get bins."""
    lo, hi = float(values.min()), float(values.max())
    q = np.quantile(values, np.linspace(0, 1, n_bins // 2 + 1))
    start = max(float(np.quantile(values, 0.001)), 1e-3 * max(hi, 1e-6), 1e-6)
    g = np.geomspace(start, max(hi, start * 1.001), n_bins - n_bins // 2 + 1)
    return np.unique(np.concatenate([[lo], q, g, [hi]]))


# --------------------------------------------------------------------------------------------
# (a) noisy / clean pairs
# --------------------------------------------------------------------------------------------


def calibrate_pairs(
    noisy: np.ndarray | Sequence[np.ndarray],
    clean: np.ndarray | Sequence[np.ndarray],
    *,
    black_level: float | Sequence[float],
    white_level: float,
    cfa: str | None = None,
    ratio: float = 1.0,
    n_bins: int = 48,
    iso: float | None = None,
) -> CalibrationResult:
    """Fit from noisy/clean pairs in DN (packed planes ``(4, h, w)``, black level included).

    ``ratio`` > 1: the noisy frames are ``ratio`` times shorter exposures than the clean ones
    (the clean signal is divided by it). Pixels whose clean value is near saturation are
    ignored; bins with more than 0.1 % of noisy values clipped at 0 or at white are dropped.
    """
    ns, cs = _as_list(noisy), _as_list(clean)
    if len(ns) != len(cs) or any(a.shape != b.shape for a, b in zip(ns, cs)):
        raise ShapeError("noisy and clean frames must pair up with identical shapes")
    black, white = _levels(black_level, white_level)
    chans: list[ChannelPoints] = []
    for c in range(4):
        span = white - black[c]
        sig = np.concatenate([(f[c] - black[c]).ravel() for f in cs]) / float(ratio)
        raw = np.concatenate([f[c].ravel() for f in ns])
        res = raw - black[c] - sig
        clipped = (raw <= 0) | (raw >= white)
        keep = sig * float(ratio) < SAT_MARGIN * span
        sig, res, clipped = sig[keep], res[keep], clipped[keep]
        if sig.size < 100:
            raise ConfigError(f"channel {c}: too few unsaturated pixels to calibrate")
        edges = _bin_edges(sig, n_bins)
        idx = np.clip(np.searchsorted(edges, sig, side="right") - 1, 0, len(edges) - 2)
        cnt = np.bincount(idx, minlength=len(edges) - 1).astype(np.float64)
        s1 = np.bincount(idx, sig, minlength=len(edges) - 1)
        r1 = np.bincount(idx, res, minlength=len(edges) - 1)
        r2 = np.bincount(idx, res * res, minlength=len(edges) - 1)
        clip_frac = np.bincount(idx, clipped.astype(np.float64), minlength=len(edges) - 1) / np.maximum(cnt, 1)
        good = (cnt > 10) & (clip_frac < 1e-3)
        mean = s1[good] / cnt[good]
        var = (r2[good] - r1[good] ** 2 / cnt[good]) / (cnt[good] - 1)
        pts = ChannelPoints(mean, var, cnt[good])
        pts.K, pts.read_var = fit_poisson_gaussian(mean, var, cnt[good])
        chans.append(pts)
    return _result("pairs", chans, black, white, cfa, iso, [])


# --------------------------------------------------------------------------------------------
# (b) one frame with flat regions
# --------------------------------------------------------------------------------------------


def block_stats(plane: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per ``block x block`` tile of ``plane``: mean, residual variance after a least-squares
    plane fit (dof ``block^2 - 3``), min and max."""
    h, w = plane.shape[0] // block * block, plane.shape[1] // block * block
    if h == 0 or w == 0:
        raise ShapeError(f"plane {plane.shape} is smaller than one {block}x{block} block")
    t: np.ndarray = plane[:h, :w].reshape(h // block, block, w // block, block).transpose(0, 2, 1, 3)
    t = t.reshape(-1, block * block)
    yy, xx = np.mgrid[0:block, 0:block]
    a = np.stack([np.ones(block * block), (yy.ravel() - (block - 1) / 2), (xx.ravel() - (block - 1) / 2)], 1)
    proj = a @ np.linalg.pinv(a)  # (n, n) projector onto the plane model
    fitted = t @ proj.T
    resid = t - fitted
    var = (resid * resid).sum(1) / (block * block - 3)
    return t.mean(1), var, t.min(1), t.max(1)


def _robust_points(
    means: np.ndarray, vars_: np.ndarray, dof: int, n_bins: int, read_var: float | None = None
) -> ChannelPoints:
    """Select flat blocks and bin them (see the module docstring)."""
    if means.size < 20:
        raise ConfigError("too few usable blocks to calibrate (need flat, unsaturated regions)")
    from scipy.stats import chi2

    band = 3.0 * math.sqrt(2.0 / dof)
    q = 0.25  # a low quantile per bin: edges and texture only ever ADD variance
    q_factor = float(chi2.ppf(q, dof) / dof)  # that quantile of a chi^2_dof / dof variable
    edges = np.unique(np.quantile(means, np.linspace(0, 1, n_bins + 1)))
    idx = np.clip(np.searchsorted(edges, means, side="right") - 1, 0, len(edges) - 2)
    nb = len(edges) - 1
    bm, bv, bc = [], [], []
    for b in range(nb):
        sel = idx == b
        if sel.sum() >= 5:
            bm.append(means[sel].mean())
            bv.append(np.quantile(vars_[sel], q) / q_factor)
            bc.append(sel.sum())
    bm_a, bv_a, bc_a = np.array(bm), np.array(bv), np.array(bc, dtype=np.float64)
    use = np.ones(len(bm_a), dtype=bool)
    for _ in range(3):  # drop outlying bins (mostly textured) before the block-level selection
        K, c = fit_poisson_gaussian(bm_a[use], bv_a[use], bc_a[use], read_var=read_var)
        r = np.log(np.maximum(bv_a, 1e-9) / np.maximum(K * bm_a + c, 1e-9))
        mad = float(np.median(np.abs(r[use] - np.median(r[use])))) + 0.02
        new_use = np.abs(r - np.median(r[use])) < 4 * 1.4826 * mad
        if new_use.sum() < 2 or np.array_equal(new_use, use):
            break
        use = new_use
    keep = np.ones_like(means, dtype=bool)
    for _ in range(5):
        pred = np.maximum(K * means + c, 1e-6)
        keep = np.abs(vars_ / pred - 1.0) < band
        cnt = np.bincount(idx[keep], minlength=nb).astype(np.float64)
        sm = np.bincount(idx[keep], means[keep], minlength=nb)
        sv = np.bincount(idx[keep], vars_[keep], minlength=nb)
        good = cnt >= 5
        if good.sum() < 2:
            break
        bm_, bv_, bc_ = sm[good] / cnt[good], sv[good] / cnt[good], cnt[good] * (dof / 2.0)
        K, c = fit_poisson_gaussian(bm_, bv_, bc_, read_var=read_var)
    pts = ChannelPoints(bm_, bv_, cnt[good])
    pts.K, pts.read_var = K, c
    return pts


def calibrate_flat_regions(
    frames: np.ndarray | Sequence[np.ndarray],
    *,
    black_level: float | Sequence[float],
    white_level: float,
    cfa: str | None = None,
    block: int = 8,
    n_bins: int = 32,
    iso: float | None = None,
) -> CalibrationResult:
    """Fit from single noisy frame(s) holding flat regions (DN planes ``(4, h, w)``).

    Note: the spatial variance of a flat region also holds the fixed pattern (PRNU grows as
    ``(prnu x)^2``), which this method cannot separate from shot noise; use
    :func:`calibrate_dark_flat` with repeated frames when that matters.
    """
    fs = _as_list(frames)
    black, white = _levels(black_level, white_level)
    dof = block * block - 3
    chans = []
    for c in range(4):
        ms, vs = [], []
        for f in fs:
            m, v, lo, hi = block_stats(f[c], block)
            ok = (hi < black[c] + SAT_MARGIN * (white - black[c])) & (lo > 0) & (hi < white)
            ms.append(m[ok] - black[c])
            vs.append(v[ok])
        chans.append(_robust_points(np.concatenate(ms), np.concatenate(vs), dof, n_bins))
    notes = ["spatial variance: includes fixed-pattern noise (PRNU/DSNU)"]
    return _result("flat-regions", chans, black, white, cfa, iso, notes)


# --------------------------------------------------------------------------------------------
# (c) dark frames + flat frames (photon transfer)
# --------------------------------------------------------------------------------------------


def _temporal(frames: list[np.ndarray], c: int, black: float, white: float) -> tuple[float, float, int]:
    """Mean (above black) and mean per-pixel temporal variance of channel ``c`` over frames."""
    stack = np.stack([f[c] for f in frames])
    ok = np.all((stack < black + SAT_MARGIN * (white - black)) & (stack > 0), axis=0)
    if ok.sum() < 100:
        raise ConfigError(f"channel {c}: too few unsaturated pixels in a frame group")
    var = stack.var(axis=0, ddof=1)[ok]
    return float(stack.mean(axis=0)[ok].mean() - black), float(var.mean()), int(ok.sum() * (len(frames) - 1))


def group_by_level(frames: list[np.ndarray], tolerance: float = 0.02) -> list[list[np.ndarray]]:
    """Group frames whose mean brightness agrees within ``tolerance`` (relative)."""
    order = sorted(range(len(frames)), key=lambda i: float(frames[i].mean()))
    groups: list[list[int]] = []
    for i in order:
        m = float(frames[i].mean())
        if groups and abs(m - float(frames[groups[-1][0]].mean())) <= tolerance * max(abs(m), 1e-6):
            groups[-1].append(i)
        else:
            groups.append([i])
    return [[frames[i] for i in g] for g in groups]


def calibrate_dark_flat(
    darks: np.ndarray | Sequence[np.ndarray],
    flats: np.ndarray | Sequence[np.ndarray],
    *,
    black_level: float | Sequence[float],
    white_level: float,
    cfa: str | None = None,
    block: int = 8,
    iso: float | None = None,
) -> CalibrationResult:
    """Photon-transfer fit from dark frames and flat frames (DN planes ``(4, h, w)``).

    Dark frames: with >= 2, the read variance is the mean temporal variance (DSNU excluded);
    with one, the robust block variance (DSNU included). Flats are grouped by brightness; a
    group of >= 2 frames gives one temporal (mean, variance) point (PRNU excluded), a single
    flat gives block points. K is fitted with the intercept fixed to the dark read variance.
    """
    ds, fs = _as_list(darks), _as_list(flats)
    black, white = _levels(black_level, white_level)
    notes: list[str] = []
    dof = block * block - 3
    groups = group_by_level(fs)
    chans = []
    for c in range(4):
        if len(ds) >= 2:
            offset, read_var, _ = _temporal(ds, c, black[c], white)
        else:
            m, v, _, _ = block_stats(ds[0][c], block)
            offset, read_var = float(np.median(m) - black[c]), float(np.median(v) / (1 - 2 / (9 * dof)) ** 3)
            if c == 0:
                notes.append("one dark frame: read variance includes DSNU")
        ms, vs, ns = [], [], []
        for g in groups:
            if len(g) >= 2:
                tm, tv, tn = _temporal(g, c, black[c], white)
                ms.append(tm - offset)
                vs.append(tv)
                ns.append(tn)
            else:
                mm, vv, lo, hi = block_stats(g[0][c], block)
                ok = (hi < black[c] + SAT_MARGIN * (white - black[c])) & (lo > 0)
                if ok.sum() >= 20:
                    pts = _robust_points(mm[ok] - black[c] - offset, vv[ok], dof, 4, read_var=read_var)
                    ms.extend(pts.means.tolist())
                    vs.extend(pts.variances.tolist())
                    ns.extend(pts.counts.tolist())
                    if c == 0:
                        notes.append("single flat frame at a level: its variance includes PRNU")
        if not ms:
            raise ConfigError("no usable flat frames (all saturated or too small)")
        pts = ChannelPoints(np.array(ms), np.array(vs), np.array(ns, dtype=np.float64))
        pts.K, pts.read_var = fit_poisson_gaussian(pts.means, pts.variances, pts.counts, read_var=read_var)
        chans.append(pts)
    return _result("dark-flat", chans, black, white, cfa, iso, notes)


# --------------------------------------------------------------------------------------------
# Profile output
# --------------------------------------------------------------------------------------------


def calibration_profile(
    result: CalibrationResult, *, name: str, iso: float | None = None, description: str = "", source: str = ""
) -> dict[str, Any]:
    """A profile mapping (kind ``nlf``) that reproduces the fit; save it with
    :func:`rawadapt.noise.profiles.save_profile`.

    The NLF row is ``[iso, mean K / span, mean read variance / span^2]``; per-channel
    differences go to ``channel_k`` and ``channel_read``.
    """
    iso_v = float(iso if iso is not None else (result.iso or 100.0))
    black = np.asarray(result.black_level, dtype=np.float64)
    span = float(result.white_level - black.mean())
    kmean = result.K_mean
    rv = float(np.mean(result.read_var))
    channel_read = [math.sqrt(v / rv) if rv > 0 else 1.0 for v in result.read_var]
    bits = max(1, math.ceil(math.log2(result.white_level + 1)))
    return {
        "name": name,
        "kind": "nlf",
        "description": description or f"calibrated with rawadapt ({result.method})",
        "source": source or f"rawadapt calibrate, method {result.method}",
        "cfa": result.cfa or "RGGB",
        "bits": bits,
        "black_level": black.round(3).tolist(),
        "white_level": float(result.white_level),
        "iso_range": [iso_v, iso_v],
        "read_model": "gaussian",
        "nlf": [[iso_v, kmean / span, max(rv, 0.0) / span**2]],
        "channel_k": [round(k / kmean, 5) for k in result.K],
        "channel_read": [round(v, 5) for v in channel_read],
        "ratios": [1],
        "fixed_pattern": {"seed": 0, "dsnu": 0.0, "prnu": 0.0, "column": 0.0},
    }
