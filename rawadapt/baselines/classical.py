"""Classical floor lines from scikit-image: non-local means and wavelet shrinkage, each tuned per
image by the J-invariant self-supervised loss (Noise2Self; Batson & Royer, ICML 2019) with
``skimage.restoration.calibrate_denoiser``.

Per test image:

1. RAW (4 packed planes): generalised Anscombe transform with the image's noise level
   (:mod:`rawadapt.baselines.noise_level`; ``noise_source="auto"`` = the target pool's noise
   model after :meth:`fit`, else a blind estimate), so the noise is close to white Gaussian
   with ``sigma = 1`` - what both denoisers assume. sRGB: the image itself with its Gaussian
   sigma.
2. ``calibrate_denoiser`` scores a small grid of parameters (multiples of ``sigma``) by the
   self-supervised loss of their J-invariant versions (pixels on a stride-4 grid replaced by
   an interpolation of their neighbours, the denoiser's output compared there with the noisy
   value; ``approximate_loss=True`` scores one mask of the 16, as scikit-image's default).
   The Noise2Self loss is minimised by the same parameters as the true MSE, up to the noise
   variance, so no clean image is needed. sRGB noise is correlated between neighbouring
   pixels (demosaicing), which breaks that argument: on sRGB the loss is computed on the two
   diagonal 2x2 polyphase sub-images instead (option ``calibration``, see
   :class:`CalibratedDenoiser`).
3. The plain (not J-invariant) denoiser runs with the best parameters (scikit-image's gallery
   example "Calibrating Denoisers Using J-Invariance" does the same: the J-invariant version
   discards each pixel's own value and is worse), then the exact unbiased GAT inverse (RAW).

The 4 packed planes are denoised as the channels of one image (NL-means compares patches over
all channels at once; the wavelet denoiser shrinks each channel). Cost: milliseconds to a few
tenths of a second per image (docs/baselines.md).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rawadapt.baselines.base import Task
from rawadapt.baselines.noise_level import (
    VAR_MIN,
    PoolNoiseModel,
    check_noise_source,
    gat_forward,
    gat_inverse,
    pool_model_for,
    sample_noise_level,
)
from rawadapt.baselines.perimage import ImageMethod
from rawadapt.errors import ConfigError
from rawadapt.metrics import psnr

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.data.sample import Sample


#: NL-means ``h`` candidates, multiples of the noise std (log-spaced, x0.25 .. x1.3)
H_FACTORS: tuple[float, ...] = (0.25, 0.4, 0.6, 0.8, 1.0, 1.3)
#: wavelet threshold noise-std candidates, multiples of the noise std (x0.25 .. x2, log-spaced)
SIGMA_FACTORS: tuple[float, ...] = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)


#: accepted values of the ``calibration`` option
CALIBRATIONS: tuple[str, ...] = ("auto", "jinv", "jinv-pd", "pool")


class CalibratedDenoiser(ImageMethod):
    """Base of the calibrated scikit-image denoisers (see the module docstring).

    Options
    -------
    noise_source
        ``"auto"`` (default), ``"image"``, ``"profile"`` (RAW) or ``"pool"``
        (:mod:`rawadapt.baselines.noise_level`).
    calibration
        ``"jinv"``: per test image by the J-invariant loss on the image itself;
        ``"jinv-pd"``: the same loss summed over the two diagonal 2x2 polyphase sub-images
        (``x[0::2, 0::2]`` and ``x[1::2, 1::2]``: pixel-shuffle down-sampling, Zhou et al.,
        AAAI 2020), the chosen parameters then applied to the full image; ``"pool"``: once
        in :meth:`fit`, the grid candidate with the best mean PSNR on the target pool's pairs
        (candidates are multiples of each image's sigma); ``"auto"`` (default): ``"jinv"`` on
        RAW, ``"jinv-pd"`` on sRGB. Why: J-invariance needs noise independent between pixels;
        demosaicing and the rest of the camera pipeline correlate sRGB noise between
        neighbours, and the plain J-invariant loss then favours the weakest smoothing
        (measured on synth-srgb: NL-means picks the smallest ``h`` and loses up to 5 dB to the
        best candidate); on the sub-images neighbours are 2 pixels apart and nearly
        independent (NL-means within ~0.5 dB of the best candidate on 6 of 8 test images).
        Pool calibration is also available but transfers badly when pool and test scenes
        differ (wavelet on synth-srgb G4: -2.4 dB).
    stride
        Stride of the J-invariant masks (scikit-image default 4).
    """

    known_options: ClassVar[tuple[str, ...]] = ("noise_source", "calibration", "stride", "progress")

    def __init__(self, budget: Any = None, **options: Any) -> None:
        super().__init__(budget, **options)
        self.noise_source = check_noise_source(str(self.option("noise_source", "auto")))
        self.calibration = str(self.option("calibration", "auto"))
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(
                f"{self.name}: unknown calibration {self.calibration!r}; choose one of {', '.join(CALIBRATIONS)}"
            )
        self.stride = int(self.option("stride", 4))
        if self.stride < 2:
            raise ConfigError(f"{self.name}: stride must be >= 2, got {self.stride}")
        self.pool: PoolNoiseModel | None = None
        self.pool_choice: int | None = None
        self.pool_scores: list[float] = []

    # -- what subclasses provide ----------------------------------------------------------------
    def function(self) -> Callable[..., np.ndarray]:  # pragma: no cover - abstract
        """The scikit-image denoiser, called as ``f(image_hwc, channel_axis=-1, **params)``."""
        raise NotImplementedError

    def grid(self, sigma: float, space: str) -> dict[str, list[Any]]:  # pragma: no cover - abstract
        """Parameter grid for noise std ``sigma`` (in the units the denoiser sees)."""
        raise NotImplementedError

    def candidates(self, sigma: float, space: str) -> list[dict[str, Any]]:
        """The grid as a list of keyword sets, in a fixed order (the same for every sigma)."""
        grid = {**self.grid(sigma, space), "channel_axis": [-1]}
        return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]

    # -- fit: noise model and (optionally) pool calibration -------------------------------------
    def resolved_calibration(self, space: str, has_pairs: bool = False) -> str:
        """``"jinv"``, ``"jinv-pd"`` or ``"pool"`` for ``space`` (see the ``calibration`` option)."""
        if self.calibration == "auto":
            return "jinv-pd" if space == "srgb" else "jinv"
        if self.calibration == "pool" and not has_pairs:
            raise ConfigError(f"{self.name}: calibration='pool' needs noisy/clean pairs in the target pool")
        return self.calibration

    def fit(self, task: Task) -> None:
        """Record the target; fit the pool noise model when ``noise_source`` needs it; with
        pool calibration, score every grid candidate on the pool's pairs."""
        super().fit(task)
        pool = task.target_pool
        self.pool = pool_model_for(self.noise_source, pool)
        has_pairs = bool(pool) and all(s.clean is not None for s in pool)
        self.pool_choice, self.pool_scores = None, []
        if self.resolved_calibration(task.space, has_pairs) != "pool":
            return

        scores: np.ndarray | None = None
        for s in pool:
            noisy = np.ascontiguousarray(s.noisy, dtype=np.float32)
            x, sigma, level = self._prepare(noisy, s)
            img = np.ascontiguousarray(np.transpose(x, (1, 2, 0)))
            row = []
            for params in self.candidates(sigma, s.space):
                out = self._finish(self.function()(img, **params), s.space, level)
                row.append(psnr(np.clip(out, 0.0, 1.0), s.clean))
            scores = np.array(row) if scores is None else scores + np.array(row)
        assert scores is not None
        self.pool_scores = (scores / len(pool)).tolist()
        self.pool_choice = int(np.argmax(scores))

    # -- per image --------------------------------------------------------------------------------
    def _prepare(self, noisy: np.ndarray, sample: Sample) -> tuple[np.ndarray, float, Any]:
        """The image the denoiser sees (GAT for RAW), its noise std and the noise level."""
        level = sample_noise_level(sample, self.noise_source, profile=self.target, pool=self.pool)
        if sample.space == "raw":
            return gat_forward(noisy, level), 1.0, level
        return noisy.astype(np.float64), math.sqrt(float(np.mean(level.b))), level

    @staticmethod
    def _finish(out_hwc: np.ndarray, space: str, level: Any) -> np.ndarray:
        out = np.transpose(np.asarray(out_hwc, dtype=np.float64), (2, 0, 1))
        return gat_inverse(out, level) if space == "raw" else out

    def denoise_array(self, noisy: np.ndarray, sample: Sample) -> np.ndarray:
        from skimage.restoration import calibrate_denoiser

        x, sigma, level = self._prepare(noisy, sample)
        if level.mean_variance(noisy) < VAR_MIN:
            self.last_info = {"noise": level.to_dict(), "params": None}
            return noisy.copy()
        img = np.ascontiguousarray(np.transpose(x, (1, 2, 0)))
        cands = self.candidates(sigma, sample.space)
        fn = self.function()
        losses: list[float] = []
        if self.pool_choice is not None:
            best = cands[self.pool_choice]
        else:
            grid = {k: [v] for k, v in cands[0].items()}
            for params in cands[1:]:
                for k, v in params.items():
                    if all(not _same(v, u) for u in grid[k]):
                        grid[k].append(v)
            pd = self.resolved_calibration(sample.space) == "jinv-pd" and min(img.shape[:2]) >= 8
            views = [img[0::2, 0::2], img[1::2, 1::2]] if pd else [img]
            total: np.ndarray | None = None
            for view in views:
                _, (tested, raw) = calibrate_denoiser(
                    np.ascontiguousarray(view), fn, grid, stride=self.stride, extra_output=True
                )
                total = np.asarray(raw, dtype=np.float64) if total is None else total + np.asarray(raw)
            assert total is not None
            losses = (total / len(views)).tolist()
            best = dict(tested[int(np.argmin(total))])
        out = self._finish(fn(img, **best), sample.space, level)
        self.last_info = {
            "noise": level.to_dict(),
            "losses": losses,
            "params": {k: v for k, v in best.items() if k != "channel_axis"},
        }
        return out

    def info(self) -> dict[str, Any]:
        out = super().info()
        out["noise_source"] = self.noise_source
        out["calibration"] = self.calibration
        if self.pool_choice is not None:
            out["pool_choice"] = self.pool_choice
            out["pool_scores"] = self.pool_scores
        return out


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


class NLMeans(CalibratedDenoiser):
    """Non-local means (Buades, Coll & Morel, CVPR 2005; scikit-image's fast variant) with ``h``
    chosen per image by J-invariant calibration.

    Grid: ``h`` in ``sigma x`` :data:`H_FACTORS` (scikit-image suggests ~0.8 sigma for
    ``fast_mode``; the low end covers an overestimated sigma), the patch-distance noise
    correction on (``sigma``) or off (``0``, safer when sigma is overestimated), 5x5 patches,
    search distance 6 (a 13x13 window): 12 candidates. RAW: on the GAT-stabilised packed planes
    (sigma 1), all four planes in each patch distance.

    References
    ----------
    Buades et al., CVPR 2005; Darbon et al., ISBI 2008 (fast NL-means); Batson & Royer,
    Noise2Self, ICML 2019 (J-invariant calibration); Mäkitalo & Foi, TIP 2013 (GAT).
    """

    name = "nlm"
    description = "non-local means (scikit-image), h tuned per image by J-invariance (Noise2Self)"
    reference = "Buades et al. CVPR 2005; calibration: Batson & Royer ICML 2019"

    def function(self) -> Callable[..., np.ndarray]:
        from skimage.restoration import denoise_nl_means

        return denoise_nl_means

    def grid(self, sigma: float, space: str) -> dict[str, list[Any]]:
        return {
            "h": [f * sigma for f in H_FACTORS],
            "sigma": [0.0, sigma],
            "patch_size": [5],
            "patch_distance": [6],
            "fast_mode": [True],
        }


class Wavelet(CalibratedDenoiser):
    """Wavelet shrinkage (BayesShrink, soft thresholds; Chang, Yu & Vetterli, IEEE TIP 2000)
    with the threshold's noise std and the wavelet chosen per image by J-invariant calibration.

    Grid: ``sigma`` in ``sigma x`` :data:`SIGMA_FACTORS` and wavelet ``db1`` / ``db2``
    (14 candidates);
    sRGB is shrunk in YCbCr (``convert2ycbcr``, scikit-image's recommendation for colour),
    RAW per GAT-stabilised packed plane.

    References
    ----------
    Chang, Yu & Vetterli, IEEE TIP 9(9), 2000 (BayesShrink); Batson & Royer, ICML 2019
    (J-invariant calibration); Mäkitalo & Foi, TIP 2013 (GAT).
    """

    name = "wavelet"
    description = "wavelet BayesShrink (scikit-image), tuned per image by J-invariance (Noise2Self)"
    reference = "Chang et al. TIP 2000; calibration: Batson & Royer ICML 2019"

    def function(self) -> Callable[..., np.ndarray]:
        from skimage.restoration import denoise_wavelet

        return denoise_wavelet

    def grid(self, sigma: float, space: str) -> dict[str, list[Any]]:
        return {
            "sigma": [f * sigma for f in SIGMA_FACTORS],
            "wavelet": ["db1", "db2"],
            "mode": ["soft"],
            "method": ["BayesShrink"],
            "rescale_sigma": [True],
            "convert2ycbcr": [space == "srgb"],
        }
