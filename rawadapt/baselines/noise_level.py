"""Noise levels for the classical baselines: estimation from one image, from a profile or from
the target pool, and the generalised Anscombe transform (GAT) that makes Poisson-Gaussian noise
unit-variance Gaussian.

Noise model (ELD, ADL paper eq. 3): on normalised packed RAW the variance of a
pixel of clean value ``x`` is ``var = a x + b`` per plane, ``a`` the (normalised) Poisson gain,
``b`` the Gaussian (read, row, quantisation) variance. :class:`NoiseLevel` holds ``a`` and ``b``
per channel. On sRGB the camera pipeline makes the noise signal dependent in ways no two-number
model captures; the sRGB baselines use one Gaussian ``sigma`` (``a = 0``, ``b = sigma^2``).

Three sources, :data:`NOISE_SOURCES` (plus ``"auto"``: ``"pool"`` when the method was fitted
on a task whose target pool has pairs, else ``"image"`` - the baselines' default, since the
pool is data every method of a benchmark cell is given):

``"image"``
    :func:`estimate_poisson_gaussian` - blind, from the noisy image alone. Per 3x3 window of
    every plane: the window mean (local signal) and Immerkær's second-order detail ``d``
    (variance = the noise variance for independent noise; exactly 0 on signals linear along
    x or y). Windows are binned by mean (equal-count bins); per bin the std is a low quantile
    (30 %) of ``|d|`` divided by the same quantile of ``|N(0, 1)|`` (texture and edges only
    ever add to ``d``, so this is less biased than the median on textured images); ``var = a mean + b``
    is fitted by weighted non-negative least squares. Windows with a clipped pixel (<= 0 or
    >= 1) are left out. This is the local-mean/local-variance idea of Foi et al., "Practical
    Poissonian-Gaussian noise modeling and fitting for single-image raw-data", IEEE TIP 2008,
    reduced to its core. Blind estimates are only as good as the image has flat areas: on the
    small, textured, nearly clean test crops of the tiny synth they overestimate (median x1.5,
    up to x50 on a textured image at 54 dB); on flat or smooth content they are within ~10 %.
``"profile"``
    :func:`profile_noise_level` - the sensor profile's noise model at the sample's ISO and
    exposure ratio (median read noise of the ELD regressions; no fixed pattern).
``"pool"``
    :class:`PoolNoiseModel` - fitted on the target pool's noisy/clean pairs (exact residuals),
    one ``(a, b)`` per pool image, then ``log a`` and ``log b`` regressed on ``log`` effective
    ISO (ISO x ratio, :attr:`Sample.effective_iso`) and evaluated at the test image's.

GAT (Mäkitalo & Foi, "Optimal inversion of the generalized Anscombe transformation for
Poisson-Gaussian noise", IEEE TIP 22(1), 2013): with ``alpha = a``, ``sigma^2 = b``,
``f(z) = 2 sqrt(z / a + 3/8 + b / a^2)`` (stabilised std ~ 1); the inverse is their closed-form
approximation of the EXACT UNBIASED inverse (Mäkitalo & Foi, IEEE TIP 20(9), 2011)
``a [D^2/4 + 1/4 sqrt(3/2) D^-1 - 11/8 D^-2 + 5/8 sqrt(3/2) D^-3 - 1/8 - b / a^2]``, clipped at 0,
which undoes the bias a plain algebraic inverse leaves at low counts.

Nothing heavy is imported at module level (scikit-image only inside the sRGB estimator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rawadapt.errors import ConfigError, ShapeError
from rawadapt.noise.model import tukey_lambda_variance
from rawadapt.noise.profiles import load_profile

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.data.sample import Sample
    from rawadapt.noise.profiles import Profile

#: accepted values of the ``noise_source`` option
NOISE_SOURCES: tuple[str, ...] = ("auto", "image", "profile", "pool")

#: smallest Poisson gain used by the GAT (pure Gaussian noise then reduces to an affine map)
A_MIN = 1e-9
#: smallest variance considered noise at all (below it the image is treated as clean)
VAR_MIN = 1e-12
#: quantile of |detail| used per signal bin by the blind estimator: texture and edges only ever
#: ADD to the detail, so a low quantile is less biased than the median on textured images
LOW_QUANTILE = 0.3
#: the same quantile of |N(0, 1)| (= Phi^-1((1 + 0.3) / 2)), turning it into a std
_GAUSS_ABS_QUANTILE = 0.38532046640756773


@dataclass(frozen=True)
class NoiseLevel:
    """Per-channel Poisson-Gaussian noise ``var = a x + b`` (normalised units).

    Attributes
    ----------
    a, b
        Arrays of one value per channel (or length 1, broadcast).
    source
        Where the numbers come from (``"image"``, ``"profile"``, ``"pool"``, ``"given"``).
    """

    a: np.ndarray
    b: np.ndarray
    source: str = "given"

    def __post_init__(self) -> None:
        a = np.atleast_1d(np.asarray(self.a, dtype=np.float64))
        b = np.atleast_1d(np.asarray(self.b, dtype=np.float64))
        if a.ndim != 1 or b.ndim != 1:
            raise ShapeError("noise parameters a, b must be scalars or 1-D per-channel arrays")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or np.any(a < 0) or np.any(b < 0):
            raise ConfigError(f"noise parameters must be finite and >= 0, got a={a.tolist()}, b={b.tolist()}")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)

    @classmethod
    def gaussian(cls, sigma: float | Sequence[float], source: str = "given") -> NoiseLevel:
        """Signal-independent noise of standard deviation ``sigma``."""
        s = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
        return cls(np.zeros_like(s), s * s, source)

    def per_channel(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """``(a, b)`` as ``(channels, 1, 1)`` arrays (length-1 values broadcast)."""
        if self.a.size not in (1, channels) or self.b.size not in (1, channels):
            raise ShapeError(f"noise level has {self.a.size}/{self.b.size} values for an image of {channels} channels")
        a = np.broadcast_to(self.a, (channels,)).reshape(channels, 1, 1)
        b = np.broadcast_to(self.b, (channels,)).reshape(channels, 1, 1)
        return a, b

    def variance(self, x: np.ndarray) -> np.ndarray:
        """Expected noise variance at signal ``x`` ``(C, H, W)`` (negative values count as 0)."""
        a, b = self.per_channel(x.shape[0])
        return a * np.maximum(x, 0.0) + b

    def mean_variance(self, image: np.ndarray) -> float:
        """Average variance over an image (``a`` times the mean signal plus ``b``)."""
        return float(self.variance(np.asarray(image, dtype=np.float64)).mean())

    def scaled(self, factor: float) -> NoiseLevel:
        """Variances multiplied by ``factor`` (``a`` and ``b`` both)."""
        return NoiseLevel(self.a * factor, self.b * factor, self.source)

    def to_dict(self) -> dict[str, object]:
        return {"a": self.a.tolist(), "b": self.b.tolist(), "source": self.source}


# --------------------------------------------------------------------------------------------
# Estimation from one noisy image
# --------------------------------------------------------------------------------------------


def _cells(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 3x3 window of every channel (stride 1, valid positions): mean, a second-order
    detail and a "clipped" flag.

    The detail is Immerkær's operator (separable second differences ``[1, -2, 1]`` along both
    axes, divided by 6 so that its variance equals the noise variance for independent noise):
    it is exactly 0 on any signal that is linear along x or along y (bilinear shading included),
    so smooth content does not count as noise (J. Immerkær, "Fast noise variance estimation",
    CVIU 64(2), 1996).
    """
    x = np.asarray(image, dtype=np.float64)
    h, w = x.shape[1] - 2, x.shape[2] - 2
    if h < 1 or w < 1:
        raise ShapeError(f"image of {x.shape[1]}x{x.shape[2]} pixels is too small to estimate its noise")
    kern = np.outer([1.0, -2.0, 1.0], [1.0, -2.0, 1.0]) / 6.0
    detail = np.zeros((x.shape[0], h, w))
    total = np.zeros_like(detail)
    lo = np.full_like(detail, np.inf)
    hi = np.full_like(detail, -np.inf)
    for i in range(3):  # 9 shifted views: vectorised over the whole image
        for j in range(3):
            v = x[:, i : i + h, j : j + w]
            detail += kern[i, j] * v
            total += v
            np.minimum(lo, v, out=lo)
            np.maximum(hi, v, out=hi)
    clipped = (lo <= 0.0) | (hi >= 1.0)
    return total / 9.0, detail, clipped


def _fit_line(means: np.ndarray, details: np.ndarray, n_bins: int) -> tuple[float, float]:
    """Weighted non-negative fit of ``var = a mean + b`` to binned robust detail variances."""
    from scipy.optimize import nnls

    if means.size == 0:
        return 0.0, 0.0
    bins = max(1, min(int(n_bins), means.size // 32))
    edges = np.unique(np.quantile(means, np.linspace(0.0, 1.0, bins + 1)))
    idx = np.clip(np.searchsorted(edges, means, side="right") - 1, 0, max(len(edges) - 2, 0))
    order = np.argsort(idx, kind="stable")
    splits = np.flatnonzero(np.diff(idx[order])) + 1
    bm, bv, bn = [], [], []
    for group in np.split(order, splits):  # one iteration per bin (<= n_bins), not per pixel
        if group.size < 8:
            continue
        bm.append(means[group].mean())
        bv.append((np.quantile(np.abs(details[group]), LOW_QUANTILE) / _GAUSS_ABS_QUANTILE) ** 2)
        bn.append(group.size)
    if not bm:
        return 0.0, float(np.var(details))
    m, v, n = np.array(bm), np.array(bv), np.array(bn, dtype=np.float64)
    if len(m) == 1 or np.ptp(m) <= 1e-12:
        return 0.0, float(np.average(v, weights=n))
    pred = np.maximum(v, VAR_MIN)
    a = b = 0.0
    for _ in range(3):  # the variance of a sample variance grows with var^2: reweight
        w = np.sqrt(n) / np.maximum(pred, VAR_MIN)
        sol, _ = nnls(np.stack([m * w, w], axis=1), v * w)
        a, b = float(sol[0]), float(sol[1])
        pred = a * m + b
    return a, b


def estimate_poisson_gaussian(image: np.ndarray, *, per_channel: bool = False, n_bins: int = 12) -> NoiseLevel:
    """Blind estimate of ``var = a x + b`` from one noisy image (see the module docstring).

    Parameters
    ----------
    image
        ``(C, H, W)`` noisy image, normalised to about [0, 1].
    per_channel
        One ``(a, b)`` per channel; default one pair for all channels (4x more cells per fit:
        steadier on small images; the planes of one sensor share the gain up to a few %).
    n_bins
        Signal bins of the fit (fewer when the image is small: >= 32 cells per bin).

    Returns
    -------
    NoiseLevel
        ``source == "image"``.

    Raises
    ------
    ShapeError
        Not a ``(C, H, W)`` array or smaller than 2x2.
    """
    x = np.asarray(image)
    if x.ndim != 3:
        raise ShapeError(f"expected a (C, H, W) image, got shape {tuple(x.shape)}")
    mean, detail, clipped = _cells(x)
    keep = ~clipped
    if per_channel:
        ab = [_fit_line(mean[c][keep[c]], detail[c][keep[c]], n_bins) for c in range(x.shape[0])]
        return NoiseLevel(np.array([p[0] for p in ab]), np.array([p[1] for p in ab]), "image")
    a, b = _fit_line(mean[keep], detail[keep], n_bins)
    if a == 0.0 and b == 0.0 and not keep.any():  # every cell clipped: use them all
        a, b = _fit_line(mean.ravel(), detail.ravel(), n_bins)
    return NoiseLevel(np.array([a]), np.array([b]), "image")


def estimate_gaussian_sigma(image: np.ndarray) -> float:
    """Gaussian noise std of a ``(C, H, W)`` image: scikit-image's wavelet (MAD of the finest
    diagonal sub-band, Donoho & Johnstone 1994) estimate, averaged over channels."""
    from skimage.restoration import estimate_sigma

    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 3:
        raise ShapeError(f"expected a (C, H, W) image, got shape {tuple(x.shape)}")
    return float(estimate_sigma(x, average_sigmas=True, channel_axis=0))


# --------------------------------------------------------------------------------------------
# From a sensor profile
# --------------------------------------------------------------------------------------------


def profile_noise_level(profile: str | Profile, iso: float, ratio: float = 1.0) -> NoiseLevel:
    """The profile's noise ``var = a x + b`` on normalised, brightness-matched packed RAW.

    In DN (ELD) ``var = K x_dn + read^2 + row^2 + 1/12`` (ADC rounding) at the
    short exposure; normalising by ``span = white - black`` and multiplying by the exposure
    ``ratio`` gives ``a = K ratio / span`` and ``b = ratio^2 (read^2 + row^2 + 1/12) / span^2``
    per plane (with the profile's per-plane gain/read multipliers). ELD profiles use the
    regression medians ``exp(a log K + b)`` (Tukey read noise times the std of a Tukey-lambda
    variable, averaged over the camera's lambdas); NLF profiles their ``beta2`` table. Fixed
    pattern noise and colour bias are not included.

    Raises
    ------
    ConfigError
        ``iso`` or ``ratio`` not positive, or the profile lacks a read-noise calibration.
    UnknownSensorError
        Unknown profile name.
    """

    if iso is None or not (float(iso) > 0 and math.isfinite(float(iso))):
        raise ConfigError(f"profile noise needs a positive ISO, got {iso!r}")
    if not (float(ratio) > 0 and math.isfinite(float(ratio))):
        raise ConfigError(f"exposure ratio must be positive, got {ratio!r}")
    prof = load_profile(profile)
    K = prof.iso_to_k(float(iso))
    if prof.kind == "eld":
        if prof.read_model == "tukey" and prof.sigma_tl is not None and prof.tukey_lambdas:
            tl_var = float(np.mean([tukey_lambda_variance(lam) for lam in prof.tukey_lambdas]))
            read = prof.sigma_tl.mean(K) * math.sqrt(tl_var)
        elif prof.sigma_gauss is not None:
            read = prof.sigma_gauss.mean(K)
        else:
            raise ConfigError(f"profile {prof.name!r} has no read-noise calibration", prof.path)
        row = prof.sigma_row.mean(K) if prof.sigma_row is not None else 0.0
    else:
        read = prof.nlf_read_sigma(float(iso))
        row = prof.row_fraction * read
    span = prof.span
    r = float(ratio)
    a = K * np.asarray(prof.channel_k, dtype=np.float64) * r / span
    read_c = read * np.asarray(prof.channel_read, dtype=np.float64)
    b = r * r * (read_c**2 + row**2 + 1.0 / 12.0) / span**2
    return NoiseLevel(a, b, "profile")


# --------------------------------------------------------------------------------------------
# From the target pool's pairs
# --------------------------------------------------------------------------------------------


def pair_noise_level(noisy: np.ndarray, clean: np.ndarray, *, n_bins: int = 16, gaussian: bool = False) -> NoiseLevel:
    """``(a, b)`` of one noisy/clean pair from its exact residuals, binned by the clean value
    (bins with more than 1 % of noisy values clipped at 0 or 1 left out: their variance is
    truncated). ``gaussian=True``: ``a = 0``, ``b`` = the residual variance (sRGB)."""
    n = np.asarray(noisy, dtype=np.float64)
    c = np.asarray(clean, dtype=np.float64)
    if n.shape != c.shape:
        raise ShapeError(f"noisy {n.shape} and clean {c.shape} differ")
    r = n - c
    clipped = (n <= 0.0) | (n >= 1.0)
    if gaussian or n.size < 64:
        return NoiseLevel(np.zeros(1), np.array([float(np.var(r))]), "pool")
    from scipy.optimize import nnls

    x, res = c.ravel(), r.ravel()
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1)))
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, max(len(edges) - 2, 0))
    nb = max(len(edges) - 1, 1)
    cnt = np.bincount(idx, minlength=nb).astype(np.float64)
    s1 = np.bincount(idx, x, minlength=nb)
    r1 = np.bincount(idx, res, minlength=nb)
    r2 = np.bincount(idx, res * res, minlength=nb)
    clip_frac = np.bincount(idx, clipped.ravel().astype(np.float64), minlength=nb) / np.maximum(cnt, 1.0)
    good = (cnt > 8) & (clip_frac < 0.01)  # a clipped bin's variance is truncated: drop the bin
    m = s1[good] / cnt[good]
    v = (r2[good] - r1[good] ** 2 / cnt[good]) / (cnt[good] - 1)
    if len(m) < 2 or np.ptp(m) <= 1e-12:
        return NoiseLevel(np.zeros(1), np.array([float(np.var(res))]), "pool")
    w = np.sqrt(cnt[good]) / np.maximum(v, VAR_MIN)
    sol, _ = nnls(np.stack([m * w, w], axis=1), v * w)
    return NoiseLevel(np.array([sol[0]]), np.array([sol[1]]), "pool")


#: extrapolate the pool's noise-vs-ISO line only when its log-log slope is physical (noise
#: variances grow about linearly - shot noise - to quadratically - read noise x exposure ratio -
#: with the effective ISO; slopes in [0, 3] are accepted) and the fit is tight (rms of the log
#: residuals <= 0.5, a factor 1.65); otherwise the ISO is clamped to the pool's range
MAX_ISO_SLOPE = 3.0
MAX_FIT_RMS = 0.5


@dataclass
class PoolNoiseModel:
    """Noise level as a function of effective ISO, fitted on the target pool's pairs.

    ``log a`` and ``log b`` are each fitted as a line in ``log(ISO x ratio)`` (least squares)
    and evaluated at the test image's effective ISO; outside the pool's ISO range only when the
    line is plausible (slope in [0, :data:`MAX_ISO_SLOPE`], log residual rms <=
    :data:`MAX_FIT_RMS`), else at the nearest end of the range. With fewer than two distinct
    ISOs, or no ISO, the pool median is used.

    Attributes
    ----------
    isos
        Effective ISO of each pool image (NaN when unknown).
    a, b
        Per pool image.
    gaussian
        sRGB: one Gaussian variance per image (``a = 0``).
    """

    isos: np.ndarray
    a: np.ndarray
    b: np.ndarray
    gaussian: bool = False

    @classmethod
    def fit(cls, samples: Sequence[Sample], *, gaussian: bool | None = None) -> PoolNoiseModel:
        """Fit on pairs (every sample needs its clean reference)."""
        if not samples:
            raise ConfigError("the target pool is empty: noise_source='pool' needs noisy/clean pairs")
        gauss = samples[0].space != "raw" if gaussian is None else bool(gaussian)
        isos, a, b = [], [], []
        for s in samples:
            if s.clean is None:
                raise ConfigError("noise_source='pool' needs clean references in the target pool", s.path)
            lvl = pair_noise_level(s.noisy, s.clean, gaussian=gauss)
            isos.append(math.nan if s.effective_iso is None else float(s.effective_iso))
            a.append(float(lvl.a[0]))
            b.append(float(lvl.b[0]))
        return cls(np.array(isos), np.array(a), np.array(b), gauss)

    @staticmethod
    def _predict(isos: np.ndarray, values: np.ndarray, iso: float | None) -> float:
        ok = np.isfinite(isos) & (isos > 0) & (values > 0)
        if iso is None or not (iso > 0) or ok.sum() < 2 or np.ptp(np.log(isos[ok])) < 1e-6:
            pos = values[values > 0]
            return float(np.median(pos)) if pos.size else 0.0
        lx, ly = np.log(isos[ok]), np.log(values[ok])
        slope, icpt = np.polyfit(lx, ly, 1)
        x = math.log(float(iso))
        rms = float(np.sqrt(np.mean((icpt + slope * lx - ly) ** 2)))
        if not (0.0 <= slope <= MAX_ISO_SLOPE and rms <= MAX_FIT_RMS):  # implausible: do not extrapolate
            x = min(max(x, float(lx.min())), float(lx.max()))
        return float(math.exp(icpt + slope * x))

    def at(self, iso: float | None) -> NoiseLevel:
        """The noise level predicted at effective ISO ``iso`` (None: the pool median)."""
        a = 0.0 if self.gaussian else self._predict(self.isos, self.a, iso)
        b = self._predict(self.isos, self.b, iso)
        return NoiseLevel(np.array([a]), np.array([b]), "pool")

    def to_dict(self) -> dict[str, object]:
        return {"isos": self.isos.tolist(), "a": self.a.tolist(), "b": self.b.tolist(), "gaussian": self.gaussian}


# --------------------------------------------------------------------------------------------
# Generalised Anscombe transform
# --------------------------------------------------------------------------------------------


def _gat_params(level: NoiseLevel, channels: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = level.per_channel(channels)
    return np.maximum(a, A_MIN), b


def gat_forward(z: np.ndarray, level: NoiseLevel) -> np.ndarray:
    """Generalised Anscombe transform of a ``(C, H, W)`` image: ``2 sqrt(max(z/a + 3/8 + b/a^2, 0))``
    per channel (float64). Its noise has unit variance (Mäkitalo & Foi 2013, eq. 4)."""
    x = np.asarray(z, dtype=np.float64)
    a, b = _gat_params(level, x.shape[0])
    return 2.0 * np.sqrt(np.maximum(x / a + 3.0 / 8.0 + b / (a * a), 0.0))


def gat_inverse(d: np.ndarray, level: NoiseLevel) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse of :func:`gat_forward`
    (Mäkitalo & Foi 2011/2013), clipped at 0, in the original units (float64)."""
    D = np.maximum(np.asarray(d, dtype=np.float64), 1e-3)  # the formula diverges at D -> 0
    a, b = _gat_params(level, D.shape[0])
    s32 = math.sqrt(1.5)
    inv = D * D / 4.0 + s32 / (4.0 * D) - 11.0 / (8.0 * D * D) + 5.0 * s32 / (8.0 * D**3) - 1.0 / 8.0 - b / (a * a)
    return np.maximum(inv, 0.0) * a


def gat_inverse_algebraic(d: np.ndarray, level: NoiseLevel) -> np.ndarray:
    """The plain algebraic inverse of :func:`gat_forward` (biased at low counts; for comparison)."""
    D = np.asarray(d, dtype=np.float64)
    a, b = _gat_params(level, D.shape[0])
    return (D * D / 4.0 - 3.0 / 8.0 - b / (a * a)) * a


# --------------------------------------------------------------------------------------------
# Choosing the source for one sample
# --------------------------------------------------------------------------------------------


def pool_model_for(source: str, samples: Sequence[Sample]) -> PoolNoiseModel | None:
    """The pool noise model a method with ``noise_source=source`` needs after ``fit``:
    fitted for ``"pool"`` (errors propagate), for ``"auto"`` when the pool has pairs (else
    None), None for the other sources."""
    check_noise_source(source)
    if source == "pool":
        return PoolNoiseModel.fit(samples)
    if source == "auto" and samples and all(s.clean is not None for s in samples):
        return PoolNoiseModel.fit(samples)
    return None


def check_noise_source(source: str) -> str:
    """Validate a ``noise_source`` option."""
    if source not in NOISE_SOURCES:
        raise ConfigError(f"unknown noise_source {source!r}; choose one of {', '.join(NOISE_SOURCES)}")
    return source


def sample_noise_level(
    sample: Sample, source: str, *, profile: str | None = None, pool: PoolNoiseModel | None = None
) -> NoiseLevel:
    """The noise level of ``sample.noisy`` from ``source`` (see :data:`NOISE_SOURCES`).

    ``"auto"`` is ``"pool"`` when ``pool`` is given, else ``"image"``;
    ``"profile"`` needs a RAW sample with an ISO and a profile name (the task's target);
    ``"pool"`` needs a :class:`PoolNoiseModel` fitted on the task's target pool; ``"image"``
    needs nothing (sRGB: a Gaussian level from :func:`estimate_gaussian_sigma`).

    Raises
    ------
    ConfigError
        Unknown source or missing information for it.
    """
    check_noise_source(source)
    if source == "auto":
        source = "pool" if pool is not None else "image"
    if source == "image":
        if sample.space == "raw":
            return estimate_poisson_gaussian(sample.noisy)
        return NoiseLevel.gaussian(estimate_gaussian_sigma(sample.noisy), "image")
    if source == "profile":
        if sample.space != "raw":
            raise ConfigError(
                "noise_source='profile' applies to RAW only (sRGB noise has no profile model); use 'image' or 'pool'"
            )
        name = profile or sample.sensor
        if sample.iso is None:
            raise ConfigError("noise_source='profile' needs the sample's ISO", sample.path)
        return profile_noise_level(name, float(sample.iso), float(sample.ratio or 1.0))
    if pool is None:
        raise ConfigError("noise_source='pool' needs fit(task) first (it fits on the target pool)")
    return pool.at(sample.effective_iso)
