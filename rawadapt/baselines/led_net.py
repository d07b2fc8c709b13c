"""LED's network and virtual cameras (Jin et al., "Lighting Every Darkness in Two Pairs: A
Calibration-Free Pipeline for RAW Denoising", ICCV 2023), at CPU scale.

Reparameterised noise removal (RepNR)
-------------------------------------
Every 3x3 convolution of the U-Net (not the 2x2 up-convolutions, not the final 1x1 — LED keeps
its last layer plain) becomes a :class:`RepNRConv2d`:

* **camera-specific alignment (CSA)**: a channel-wise affine ``a_i ⊙ x + b_i`` of the conv's
  INPUT, one per virtual camera ``i`` used in pretraining, plus one for the target camera
  (index -1) initialised, after pretraining, to the mean of the others (LED's "generalize");
* **out-of-model noise removal (OMNR) branch**: a parallel conv of the same kernel, zero at the
  start (so the pretrained function is unchanged), switched on for the last fine-tuning stage.

Training forward: ``conv(pad0(x) ⊙ a + b) + aux(pad0(x))`` (zero padding BEFORE the alignment),
which makes the reparameterisation EXACT: :meth:`LEDUNet.deploy` folds CSA and OMNR into one
plain convolution per layer (``W' = W ⊙ a + W_aux``, ``b' = b + Σ W·b_align + b_aux``) and
returns an ordinary :class:`~rawadapt.models.unet.UNet` (no modulation) with identical outputs.

Fine-tuning (LED's finetune config, CPU-scaled): the pretrained main weights are frozen; first
only the target CSA trains ("align", 2/3 of the steps at the pretraining LR), then the target
CSA and the OMNR branch ("omnr", 1/3 at a tenth of it) — 1000 / 500 iterations at 1e-4 / 1e-5
in LED.

Virtual cameras
---------------
:class:`VirtualFamily` holds the parameter space covering the five ELD DSLRs (ELD:
K in [0.1, 30], Tukey lambda in [-0.243, 0.2], read/row-noise regression slopes, biases and
residual sigmas within the five cameras' min..max, read from the built-in profiles), and
:meth:`VirtualFamily.cameras` draws ``m`` virtual cameras with LED's "coverage" strategy: each
parameter takes ``m`` evenly spaced values over its range (camera ``i`` the ``i``-th value;
optionally shuffled per parameter). :class:`VirtualCameraNoise` draws one camera per batch and,
per image, ``log K ~ U(log 0.1, log 30)`` and the camera's read/row sigmas from its regressions
(LED's ``VirtualNoisyPairGenerator``, noise type "ptrqc": Poisson, Tukey-lambda read, row,
quantisation, colour bias). The simulation uses a virtual 14-bit sensor (black 512, white
16383; ELD "All 14-bit"), whatever the target's bit depth: the family is defined in
14-bit DN, and the output is normalised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rawadapt.baselines.synthetic_pairs import NoiseDraw
from rawadapt.errors import ConfigError
from rawadapt.models.led_unet import (  # noqa: F401  (re-exported: the network lives in models/)
    DEFAULT_CAMERAS,
    LEDUNet,
    RepNRConv2d,
    is_aux,
    is_target_align,
)
from rawadapt.noise.model import NoiseParams
from rawadapt.noise.profiles import ELD_CAMERAS, load_profile, profile_from_dict

#: virtual-camera gain range (ELD; LED's ``param_ranges.K``)
K_RANGE = (0.1, 30.0)
#: virtual 14-bit sensor of the simulation
VIRTUAL_BLACK = 512.0
VIRTUAL_WHITE = 16383.0


# --------------------------------------------------------------------------------------------
# Virtual cameras
# --------------------------------------------------------------------------------------------

Range = tuple[float, float]


@dataclass(frozen=True)
class VirtualCamera:
    """One virtual camera: Tukey lambda, read/row regressions ``log sigma = a log K + b +
    N(0, s)`` (natural logs, DN) and a colour bias per plane (DN)."""

    index: int
    tukey_lambda: float
    read: tuple[float, float, float]
    row: tuple[float, float, float]
    bias: tuple[float, float, float, float]


@dataclass(frozen=True)
class VirtualFamily:
    """The parameter space the virtual cameras cover (see the module docstring)."""

    k_range: Range
    lambda_range: Range
    read_slope: Range
    read_bias: Range
    read_sigma: Range
    row_slope: Range
    row_bias: Range
    row_sigma: Range
    color_bias: Range

    @classmethod
    def from_profiles(cls, names: Sequence[str] | None = None, *, k_range: Range = K_RANGE) -> VirtualFamily:
        """min..max of the ELD DSLR profiles' Tukey-lambda read noise, row noise, lambdas and
        colour biases (default: the five built-in ELD cameras)."""

        profs = [load_profile(n) for n in (names or ELD_CAMERAS)]
        if any(p.kind != "eld" or p.sigma_tl is None or p.sigma_row is None for p in profs):
            raise ConfigError("the virtual family needs ELD profiles with Tukey-lambda and row-noise regressions")

        def span(values: Sequence[float]) -> Range:
            return (float(min(values)), float(max(values)))

        # every profile has both regressions (checked above)
        tl = [p.sigma_tl for p in profs if p.sigma_tl is not None]
        row = [p.sigma_row for p in profs if p.sigma_row is not None]
        return cls(
            k_range=(float(k_range[0]), float(k_range[1])),
            lambda_range=span([lam for p in profs for lam in p.tukey_lambdas]),
            read_slope=span([r.a for r in tl]),
            read_bias=span([r.b for r in tl]),
            read_sigma=span([r.sigma for r in tl]),
            row_slope=span([r.a for r in row]),
            row_bias=span([r.b for r in row]),
            row_sigma=span([r.sigma for r in row]),
            color_bias=span([v for p in profs for v in (*p.bias_kmin, *p.bias_kmax)]),
        )

    def cameras(self, m: int = DEFAULT_CAMERAS, *, shuffle: bool = False, seed: int = 0) -> list[VirtualCamera]:
        """``m`` cameras by LED's "coverage" strategy (evenly spaced values per parameter,
        camera ``i`` gets the ``i``-th; ``shuffle`` permutes each parameter's values with
        ``seed``); colour biases are drawn uniformly in range per plane with ``seed``."""
        if m < 1:
            raise ConfigError("at least one virtual camera")
        rng = np.random.default_rng(seed)

        def cover(r: Range) -> np.ndarray:
            v = np.linspace(r[0], r[1], m) if m > 1 else np.array([(r[0] + r[1]) / 2])
            return rng.permutation(v) if shuffle else v

        lam = cover(self.lambda_range)
        rs, rb, rsg = cover(self.read_slope), cover(self.read_bias), cover(self.read_sigma)
        ws, wb, wsg = cover(self.row_slope), cover(self.row_bias), cover(self.row_sigma)
        bias = rng.uniform(self.color_bias[0], self.color_bias[1], size=(m, 4))
        return [
            VirtualCamera(
                i,
                float(lam[i]),
                (float(rs[i]), float(rb[i]), float(rsg[i])),
                (float(ws[i]), float(wb[i]), float(wsg[i])),
                (float(bias[i, 0]), float(bias[i, 1]), float(bias[i, 2]), float(bias[i, 3])),
            )
            for i in range(m)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) for k, v in asdict(self).items()}


def virtual_level_profile(cfa: str = "RGGB") -> Any:
    """A profile holding only the virtual 14-bit sensor's levels and CFA (the simulator takes
    every noise parameter from :class:`~rawadapt.noise.model.NoiseParams`)."""

    return profile_from_dict(
        {
            "name": "virtual-14bit",
            "kind": "eld",
            "cfa": cfa,
            "black_level": [VIRTUAL_BLACK] * 4,
            "white_level": VIRTUAL_WHITE,
            "k_range": list(K_RANGE),
            "iso_k": [[100.0, 1.0]],
            "read_model": "gaussian",
            "regressions": {"sigma_gauss": {"a": 0.5, "b": 0.0, "sigma": 0.0}},
            "description": "levels of LED's virtual cameras (noise parameters come from the virtual family)",
        }
    )


class VirtualCameraNoise:
    """LED's virtual noisy-pair generator as a :class:`~rawadapt.baselines.synthetic_pairs.NoiseSource`.

    Parameters
    ----------
    cameras
        The virtual cameras (:meth:`VirtualFamily.cameras`).
    family
        Their parameter space (for K and the record).
    ratios
        Exposure ratios, drawn uniformly per image (the benchmark passes the target pool's).
    label
        Sensor label of the batches (LED's networks ignore it).
    """

    def __init__(
        self,
        cameras: Sequence[VirtualCamera],
        family: VirtualFamily,
        *,
        ratios: Sequence[float] = (1.0,),
        label: str = "virtual",
    ) -> None:
        if not cameras:
            raise ConfigError("at least one virtual camera")
        self.cameras = list(cameras)
        self.family = family
        self.ratios = tuple(float(r) for r in ratios)
        self.label = label
        self.profile = virtual_level_profile()
        self.current = 0

    def begin_batch(self, rng: np.random.Generator) -> int:
        self.current = int(rng.integers(0, len(self.cameras)))
        return self.current

    def draw(self, rng: np.random.Generator) -> Any:

        cam = self.cameras[self.current]
        lo, hi = self.family.k_range
        logk = rng.uniform(math.log(lo), math.log(hi))

        def sigma(reg: tuple[float, float, float]) -> float:
            a, b, s = reg
            return math.exp(a * logk + b + rng.normal(0.0, s))

        params = NoiseParams(
            K=math.exp(logk),
            iso=None,
            read_model="tukey",
            sigma_read=sigma(cam.read),
            tukey_lambda=cam.tukey_lambda,
            sigma_row=sigma(cam.row),
            bias=cam.bias,
        )
        ratio = self.ratios[int(rng.integers(0, len(self.ratios)))]
        return NoiseDraw(params=params, ratio=ratio, iso=None)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "led-virtual-cameras",
            "family": self.family.to_dict(),
            "ratios": list(self.ratios),
            "cameras": [asdict(c) for c in self.cameras],
            "levels": [VIRTUAL_BLACK, VIRTUAL_WHITE],
        }
