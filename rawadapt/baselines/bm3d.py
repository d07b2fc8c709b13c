"""BM3D (Dabov et al., "Image denoising by sparse 3-D transform-domain collaborative filtering",
IEEE TIP 16(8), 2007) through the ``bm3d`` package - the ADL paper's Table 1 "BM3D" row.

The ``bm3d`` package (Mäkitalo, Foi et al., Tampere University) is an OPTIONAL extra with a
NON-COMMERCIAL licence: ``pip install rawadapt[bm3d]``. It is imported only when an image is
denoised; without it :class:`BM3D` raises :class:`~rawadapt.errors.MissingDependencyError`
with that hint.

RAW (4 packed planes): BM3D assumes white Gaussian noise, RAW noise is Poisson-Gaussian
(``var = a x + b``). Each plane goes through the generalised Anscombe transform with the
image's noise level (unit noise variance afterwards), is rescaled to [0, 1] (the package's
block-matching thresholds are absolute, tuned for [0, 1] images) and denoised by
``bm3d.bm3d`` with ``sigma = 1 / scale``; the result comes back through the exact unbiased
inverse (Mäkitalo & Foi, IEEE TIP 2013) - the standard "VST + Gaussian denoiser + optimal
inverse" pipeline of Mäkitalo & Foi. See :mod:`rawadapt.baselines.noise_level` for the noise
sources (``noise_source="auto"`` default = the target pool's noise model when fitted,
``"image"``, ``"profile"``, ``"pool"``).

sRGB: ``bm3d.bm3d_rgb`` (opponent colour space, the package default) with the Gaussian sigma of
the image (scikit-image's wavelet estimate) or of the pool.

No training; its cost per image (``bm3d`` 'np' profile, per plane) is measured in
docs/baselines.md and BENCHMARKS.md.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rawadapt.baselines.base import Task
from rawadapt.baselines.noise_level import (
    VAR_MIN,
    NoiseLevel,
    PoolNoiseModel,
    check_noise_source,
    gat_forward,
    gat_inverse,
    pool_model_for,
    sample_noise_level,
)
from rawadapt.baselines.perimage import ImageMethod
from rawadapt.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.data.sample import Sample

#: the package's blocks are 8x8; images below this side are padded (symmetric) and cropped back
#: (bm3d 4.0.3 crashes - segfault - on an exactly 8x8 plane and refuses smaller ones)
MIN_SIDE = 16

INSTALL_HINT = "BM3D needs the optional 'bm3d' package (non-commercial licence): pip install rawadapt[bm3d]"


def import_bm3d() -> Any:
    """The ``bm3d`` module, or :class:`MissingDependencyError` with the install hint."""
    try:
        import bm3d
    except ImportError:
        raise MissingDependencyError(INSTALL_HINT) from None
    return bm3d


def bm3d_available() -> bool:
    """Whether the optional ``bm3d`` package can be imported."""
    try:
        import_bm3d()
    except MissingDependencyError:
        return False
    return True


#: the package's parameter profiles by name
PROFILE_CLASSES = {
    "np": "BM3DProfile",
    "refilter": "BM3DProfileRefilter",
    "vn": "BM3DProfileVN",
    "high": "BM3DProfileHigh",
    "lc": "BM3DProfileLC",
    "deb": "BM3DProfileDeb",
}


def make_profile(name: str = "np", *, threads: int = 1) -> Any:
    """A ``bm3d`` parameter profile by name with ``threads`` aggregation threads.

    ``threads=1`` (default) makes BM3D bit-for-bit deterministic: with more threads the
    package's aggregation order varies and outputs differ by float rounding (~1e-7) run to run.
    """
    bm3d = import_bm3d()
    if name not in PROFILE_CLASSES:
        raise ConfigError(f"unknown BM3D profile {name!r}; known: {', '.join(PROFILE_CLASSES)}")
    prof = getattr(bm3d, PROFILE_CLASSES[name])()
    prof.num_threads = int(threads)
    return prof


def _pad_min(x: np.ndarray, side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad the first two axes (symmetric) up to ``side``; return the array and the original size."""
    h, w = x.shape[:2]
    ph, pw = max(0, side - h), max(0, side - w)
    if ph or pw:
        pad = [(0, ph), (0, pw)] + [(0, 0)] * (x.ndim - 2)
        x = np.pad(x, pad, mode="symmetric")
    return x, (h, w)


def bm3d_gaussian(plane: np.ndarray, sigma: float, *, profile: Any = "np") -> np.ndarray:
    """BM3D of one 2-D plane with white Gaussian noise of std ``sigma`` (any value range).

    The plane is rescaled to [0, 1] first (the package's thresholds are absolute) and back after.
    """
    bm3d = import_bm3d()
    p = np.asarray(plane, dtype=np.float64)
    lo, hi = float(p.min()), float(p.max())
    scale = max(hi - lo, 1e-12)
    z, (h, w) = _pad_min((p - lo) / scale, MIN_SIDE)
    out = np.asarray(bm3d.bm3d(z, sigma_psd=float(sigma) / scale, profile=profile), dtype=np.float64)
    return out[:h, :w] * scale + lo


def bm3d_raw(noisy: np.ndarray, level: NoiseLevel, *, profile: Any = "np") -> np.ndarray:
    """Packed RAW ``(C, H, W)``: per plane GAT -> BM3D (sigma 1) -> exact unbiased inverse."""
    f = gat_forward(noisy, level)
    d = np.stack([bm3d_gaussian(f[c], 1.0, profile=profile) for c in range(f.shape[0])])
    return gat_inverse(d, level)


def bm3d_srgb(noisy: np.ndarray, sigma: float, *, profile: Any = "np") -> np.ndarray:
    """sRGB ``(3, H, W)`` with ``bm3d.bm3d_rgb`` (opponent colour space) at Gaussian ``sigma``."""
    bm3d = import_bm3d()
    z, (h, w) = _pad_min(np.transpose(np.asarray(noisy, dtype=np.float64), (1, 2, 0)), MIN_SIDE)
    out = np.asarray(bm3d.bm3d_rgb(z, sigma_psd=float(sigma), profile=profile), dtype=np.float64)
    return np.transpose(out[:h, :w], (2, 0, 1))


class BM3D(ImageMethod):
    """BM3D, per packed plane after a generalised Anscombe transform (RAW) or ``bm3d_rgb`` (sRGB).

    Options
    -------
    noise_source
        ``"auto"`` (default: ``"pool"`` after :meth:`fit` on a task with target pairs, else
        ``"image"``), ``"image"`` (blind estimate from the test image itself), ``"profile"``
        (the target sensor's profile at the image's ISO/ratio; RAW only) or ``"pool"``
        (fitted on the target pool's pairs in :meth:`fit`, evaluated at the image's
        effective ISO). See :mod:`rawadapt.baselines.noise_level`.
    bm3d_profile
        The package's parameter profile (``"np"`` normal profile, default; ``"refilter"``,
        ``"lc"`` low complexity, ``"high"``, ``"vn"``, ``"deb"``).
    bm3d_threads
        Threads of the package's aggregation (default 1: deterministic; 0 = all cores,
        outputs then vary by float rounding between runs).

    References
    ----------
    Dabov, Foi, Katkovnik, Egiazarian, IEEE TIP 16(8), 2007 (BM3D); Mäkitalo & Foi, IEEE TIP
    22(1), 2013 (GAT and its exact unbiased inverse); ADL paper (ADL paper) Table 1, §4.1.
    """

    name = "bm3d"
    description = "BM3D (GAT per packed plane on RAW, bm3d_rgb on sRGB); optional non-commercial extra"
    reference = "Dabov et al. TIP 2007; GAT inverse Mäkitalo & Foi TIP 2013; ADL paper Table 1"
    known_options: ClassVar[tuple[str, ...]] = ("noise_source", "bm3d_profile", "bm3d_threads", "progress")

    def __init__(self, budget: Any = None, **options: Any) -> None:
        super().__init__(budget, **options)
        self.noise_source = check_noise_source(str(self.option("noise_source", "auto")))
        self.bm3d_profile = str(self.option("bm3d_profile", "np"))
        if self.bm3d_profile not in PROFILE_CLASSES:
            raise ConfigError(f"unknown BM3D profile {self.bm3d_profile!r}; known: {', '.join(PROFILE_CLASSES)}")
        self.bm3d_threads = int(self.option("bm3d_threads", 1))
        self.pool: PoolNoiseModel | None = None

    def fit(self, task: Task) -> None:
        """Record the target; with ``noise_source="pool"`` fit the pool's noise model (pairs)."""
        super().fit(task)
        import_bm3d()  # fail early, before any image, when the extra is missing
        self.pool = pool_model_for(self.noise_source, task.target_pool)

    def denoise_array(self, noisy: np.ndarray, sample: Sample) -> np.ndarray:
        profile = make_profile(self.bm3d_profile, threads=self.bm3d_threads)
        level = sample_noise_level(sample, self.noise_source, profile=self.target, pool=self.pool)
        self.last_info = {"noise": level.to_dict()}
        if level.mean_variance(noisy) < VAR_MIN:  # noiseless: nothing to remove
            return noisy.copy()
        if sample.space == "raw":
            return bm3d_raw(noisy, level, profile=profile)
        sigma = math.sqrt(float(np.mean(level.b)))
        return bm3d_srgb(noisy, sigma, profile=profile)

    def info(self) -> dict[str, Any]:
        out = super().info()
        out["noise_source"] = self.noise_source
        if self.pool is not None:
            out["pool_noise"] = self.pool.to_dict()
        return out
