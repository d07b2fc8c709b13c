"""Calibrate a Poisson-Gaussian noise profile on the target pool's noisy/clean pairs.

The calibration-based baselines (ADL paper §4.3, Table 2(a), after Zhang et al. ICCV 2021 /
Wei et al. ELD) and PMN's shot-noise augmentation need the target sensor's system gain K and
read noise. The pool holds ~20 pairs at various ISOs and exposure ratios, in the loaders'
units; this module turns them back into digital numbers (DN) and fits, per ISO,
``var = K x + sigma_read^2`` with :func:`rawadapt.noise.calibrate.calibrate_pairs`, then the
ISO dependence across ISOs.

Units (the careful part)
------------------------
A RAW :class:`~rawadapt.data.sample.Sample` holds ``noisy = clip((DN_short - black) / span *
ratio, 0, 1)`` and ``clean`` = the long exposure in [0, 1] (``span = white - black`` per
plane). The noise lives at the SHORT exposure, so both halves are converted to DN above black
at the short exposure: ``noisy * span / ratio`` and ``clean * span / ratio``; pixels the loader
clipped at 1 are flagged as saturated (set to the ``white_level`` given to ``calibrate_pairs``,
whose bins with clipped values are dropped) and those clipped at 0 as under-range (DN <= 0).
Pairs of the same ISO (any ratio) share K and the read noise, so they are fitted together.
Samples without levels (sRGB-free test fixtures, foreign data) are calibrated in "virtual DN"
of a 16-bit span (:data:`VIRTUAL_WHITE`): the fit and the simulation use the same span, so the
normalised noise is reproduced.

Across ISOs
-----------
K(ISO) is a line in log-log space (``K ∝ ISO`` for a linear sensor, ADL paper eq. 3; the slope
is fitted when at least two ISOs calibrated, else fixed to 1); the Gaussian read noise follows
ELD's regression ``log sigma = a log K + b + N(0, sigma_hat)`` (``a`` fitted from >= 2 ISOs,
else :data:`DEFAULT_READ_SLOPE`; ``sigma_hat`` = residual std from >= 3 ISOs, else 0). The
result is an ``eld``-kind :class:`~rawadapt.noise.profiles.Profile` with a Gaussian read model
and no fixed pattern, ISO range and exposure ratios of the pool — what the simulator needs to
synthesise target-like pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rawadapt.data.sample import Sample
from rawadapt.errors import ConfigError
from rawadapt.noise.calibrate import calibrate_pairs
from rawadapt.noise.profiles import profile_from_dict

#: white level (DN) of the virtual 16-bit sensor used for samples without levels
VIRTUAL_WHITE = 65535.0
#: read-noise slope when only one ISO calibrated: the middle of the ELD DSLRs' Gaussian
#: read-noise slopes (0.54-0.68, ELD)
DEFAULT_READ_SLOPE = 0.6
#: ISO assumed for samples without one
NOMINAL_ISO = 100.0
#: smallest read-noise std (DN) used in log space
_MIN_SIGMA = 1e-3


@dataclass
class PoolCalibration:
    """A calibrated target noise model.

    Attributes
    ----------
    profile
        The simulator profile (kind ``eld``, Gaussian read noise, no fixed pattern).
    groups
        Per calibrated ISO: ``{"iso", "pairs", "K", "K_channels", "read_sigma"}`` (DN).
    k_slope, k_intercept
        ``log K = k_slope log ISO + k_intercept``.
    read_slope, read_intercept, read_sigma
        ``log sigma_read = read_slope log K + read_intercept + N(0, read_sigma)``.
    levels_known
        False when the pool had no black/white levels (virtual 16-bit DN).
    notes
        What was skipped or assumed.
    """

    profile: Any
    groups: list[dict[str, Any]]
    k_slope: float
    k_intercept: float
    read_slope: float
    read_intercept: float
    read_sigma: float
    levels_known: bool
    notes: list[str] = field(default_factory=list)

    def gain(self, iso: float | None) -> float:
        """Mean system gain K (DN per electron) at ``iso``."""
        lg = math.log(float(iso if iso else NOMINAL_ISO))
        return float(math.exp(self.k_slope * lg + self.k_intercept))

    def normalised_gain(self, sample: Sample) -> np.ndarray:
        """Per-plane shot-noise gain of ``sample`` in the units of its brightness-matched
        normalised arrays: ``K_c(ISO) * ratio / span_c``, so that the shot-noise variance of
        ``noisy`` is ``gain * clean`` (what PMN's shot-noise augmentation needs)."""
        span = _span(sample, self.levels_known)
        k = self.gain(sample.iso) * np.asarray(self.profile.channel_k, dtype=np.float64)
        return (k * float(sample.ratio or 1.0) / span).astype(np.float64)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description."""
        return {
            "method": "pairs (rawadapt.noise.calibrate.calibrate_pairs) per ISO, log-log K(ISO)",
            "groups": self.groups,
            "k_slope": self.k_slope,
            "k_intercept": self.k_intercept,
            "read_slope": self.read_slope,
            "read_intercept": self.read_intercept,
            "read_sigma": self.read_sigma,
            "levels_known": self.levels_known,
            "iso_range": list(self.profile.iso_range),
            "ratios": list(self.profile.ratios),
            "black_level": list(self.profile.black_level),
            "white_level": self.profile.white_level,
            "channel_k": list(self.profile.channel_k),
            "notes": list(self.notes),
        }


def _levels(sample: Sample) -> tuple[np.ndarray, float] | None:
    if sample.black_level is None or sample.white_level is None:
        return None
    black = np.asarray(sample.black_level, dtype=np.float64).reshape(-1)
    if black.size == 1:
        black = np.repeat(black, 4)
    return black, float(sample.white_level)


def _span(sample: Sample, levels_known: bool) -> np.ndarray:
    lv = _levels(sample) if levels_known else None
    if lv is None:
        return np.full(4, VIRTUAL_WHITE)
    black, white = lv
    return white - black


def pool_to_dn(sample: Sample, levels_known: bool, flag: float) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy, clean)`` of a pool sample in DN above black at the SHORT exposure (see the
    module docstring); noisy pixels the loader clipped at 1 are set to ``flag``."""
    if sample.clean is None:
        raise ConfigError(f"target sample {sample.sample_id} has no clean image; calibration needs pairs", sample.path)
    span = _span(sample, levels_known)[:, None, None]
    ratio = float(sample.ratio or 1.0)
    noisy = sample.noisy.astype(np.float64) * span / ratio
    clean = sample.clean.astype(np.float64) * span / ratio
    noisy = np.where(sample.noisy >= 1.0, flag, noisy)
    return noisy, clean


def _fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``y = a x + b`` and the residual std (0 with fewer than 3 points)."""
    a, b = np.polyfit(x, y, 1)
    res = y - (a * x + b)
    sd = float(np.sqrt(np.sum(res**2) / (len(x) - 2))) if len(x) >= 3 else 0.0
    return float(a), float(b), sd


def calibrate_pool(samples: Sequence[Sample], *, name: str = "calibrated", n_bins: int = 32) -> PoolCalibration:
    """Fit the target's noise profile from its pool pairs (see the module docstring).

    Parameters
    ----------
    samples
        Packed RAW noisy/clean pairs of ONE sensor.
    name
        Name of the resulting profile.
    n_bins
        Brightness bins per channel and ISO (:func:`~rawadapt.noise.calibrate.calibrate_pairs`);
        fewer on small pools (about 40 pixels per bin at least).

    Returns
    -------
    PoolCalibration

    Raises
    ------
    ConfigError
        No pair, sRGB pairs, or no ISO group could be calibrated (e.g. all pairs black).
    """

    pairs = [s for s in samples if s.clean is not None]
    if not pairs:
        raise ConfigError("calibration needs at least one noisy/clean pair")
    if any(s.space != "raw" for s in pairs):
        raise ConfigError("calibration needs packed RAW pairs (the noise model is in raw digital numbers)")
    levels = [_levels(s) for s in pairs]
    levels_known = all(lv is not None for lv in levels)
    notes: list[str] = []
    if not levels_known:
        notes.append(f"no black/white levels: calibrated in virtual DN of a {VIRTUAL_WHITE:g} span")
    spans = np.stack([_span(s, levels_known) for s in pairs])
    flag = float(spans.max()) + 1.0  # above any valid DN value: marks saturated pixels
    by_iso: dict[float, list[Sample]] = {}
    for s in pairs:
        by_iso.setdefault(float(s.iso) if s.iso else NOMINAL_ISO, []).append(s)
    if any(not s.iso for s in pairs):
        notes.append(f"pairs without ISO calibrated as ISO {NOMINAL_ISO:g}")
    groups: list[dict[str, Any]] = []
    chan_k: list[np.ndarray] = []
    for iso in sorted(by_iso):
        conv = [pool_to_dn(s, levels_known, flag) for s in by_iso[iso]]
        pixels = sum(n[0].size for n, _ in conv)
        bins = int(max(4, min(n_bins, pixels // 40)))  # >= ~20 pixels per bin on small pools
        try:
            res = calibrate_pairs(
                [n for n, _ in conv], [c for _, c in conv], black_level=0.0, white_level=flag, n_bins=bins, iso=iso
            )
        except ConfigError as exc:
            notes.append(f"ISO {iso:g}: skipped ({exc.message})")
            continue
        read_sigma = math.sqrt(max(float(np.mean(res.read_var)), 0.0))
        groups.append(
            {
                "iso": iso,
                "pairs": len(conv),
                "K": res.K_mean,
                "K_channels": [float(k) for k in res.K],
                "read_sigma": read_sigma,
            }
        )
        chan_k.append(np.asarray(res.K, dtype=np.float64) / res.K_mean)
    if not groups:
        raise ConfigError("noise calibration failed for every ISO of the target pool: " + "; ".join(notes))

    lisos = np.log([g["iso"] for g in groups])
    lks = np.log([g["K"] for g in groups])
    if len(groups) >= 2:
        k_slope, k_intercept, _ = _fit_line(lisos, lks)
    else:
        k_slope, k_intercept = 1.0, float(lks[0] - lisos[0])
        notes.append("one ISO calibrated: K assumed proportional to ISO")
    lsig = np.log(np.maximum([g["read_sigma"] for g in groups], _MIN_SIGMA))
    lk_fit = k_slope * lisos + k_intercept
    if len(groups) >= 2:
        read_slope, read_intercept, read_sd = _fit_line(lk_fit, lsig)
    else:
        read_slope, read_sd = DEFAULT_READ_SLOPE, 0.0
        read_intercept = float(lsig[0] - read_slope * lk_fit[0])
    channel_k = np.mean(chan_k, axis=0)
    channel_k = channel_k / channel_k.mean()

    if levels_known:
        black, white = levels[0]  # type: ignore[misc]
    else:
        black, white = np.zeros(4), VIRTUAL_WHITE
    iso_lo, iso_hi = min(by_iso), max(by_iso)
    k_lo = math.exp(k_slope * math.log(iso_lo) + k_intercept)
    k_hi = math.exp(k_slope * math.log(iso_hi) + k_intercept)
    iso_k = [[iso_lo, k_lo]] if iso_hi <= iso_lo else [[iso_lo, k_lo], [iso_hi, k_hi]]
    ratios = sorted({float(s.ratio or 1.0) for s in pairs})
    cfa = next((s.cfa for s in pairs if s.cfa), "RGGB")
    prof = profile_from_dict(
        {
            "name": name,
            "kind": "eld",
            "cfa": cfa,
            "description": "Poisson-Gaussian profile calibrated on the target pool "
            "(rawadapt.baselines.pool_calibration)",
            "source": "rawadapt calibrate_pool",
            "black_level": [float(b) for b in black],
            "white_level": float(white),
            "iso_range": [iso_lo, iso_hi],
            "iso_k": iso_k,
            "k_range": [min(k_lo, k_hi), max(k_lo, k_hi)],
            "read_model": "gaussian",
            "regressions": {"sigma_gauss": {"a": read_slope, "b": read_intercept, "sigma": read_sd}},
            "channel_k": [float(v) for v in channel_k],
            "ratios": ratios,
            "fixed_pattern": {"seed": 0, "dsnu": 0.0, "prnu": 0.0, "column": 0.0},
        }
    )
    return PoolCalibration(
        profile=prof,
        groups=groups,
        k_slope=k_slope,
        k_intercept=k_intercept,
        read_slope=read_slope,
        read_intercept=read_intercept,
        read_sigma=read_sd,
        levels_known=levels_known,
        notes=notes,
    )
