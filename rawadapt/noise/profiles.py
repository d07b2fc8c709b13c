"""Camera noise profiles: data files (YAML), loaded into a typed :class:`Profile`.

A profile describes ONE sensor for the simulator (:mod:`rawadapt.noise.model`), the camera
pipeline (:mod:`rawadapt.noise.pipeline`) and the built-in benchmark: CFA, black/white levels,
the ISO <-> system-gain (K) mapping, the noise model and its per-image parameter distributions,
the per-sensor fixed-pattern noise, a colour matrix and white-balance ranges.

Two kinds exist (ELD):

``eld``
    The ELD DSLR calibrations: per image ``log K ~ U(log Kmin, log Kmax)`` (or K from ISO) and
    ``log sigma = a log K + b + N(0, sigma_hat)`` for the Tukey-lambda read noise, the row noise
    and the Gaussian read noise; a Tukey lambda drawn from the camera's list.
``nlf``
    Poisson-Gaussian noise level functions per ISO (SIDD phones, or a profile written by
    ``rawadapt calibrate``): ``var = beta1 x + beta2`` with ``x`` normalised to [0, 1]; in DN,
    ``K = beta1 (white - black)`` and ``sigma_read^2 = beta2 (white - black)^2``; ISOs between
    table entries are interpolated linearly in log ISO (log beta).

Built-in profiles ship in ``rawadapt/noise/profiles/*.yaml``; then come the user profile folder
(:func:`user_profile_dir`: ``$RAWADAPT_USER_PROFILES``, else ``$XDG_CONFIG_HOME/rawadapt/profiles``,
default ``~/.config/rawadapt/profiles``; ``rawadapt profiles import-darktable`` writes there) and
the folders of the environment variable ``RAWADAPT_PROFILES`` (``os.pathsep``-separated). A
profile with the name of an earlier one replaces it. ``load_profile`` also accepts a path to a
YAML file.

A profile may list ``aliases``: other names of the camera, e.g. its EXIF make and model
(``CanonEOS5D4`` is ``"Canon EOS 5D Mark IV"`` in its files). :func:`match_profile` finds the
profile of a camera from such names, ignoring case, spaces and punctuation.

This module imports no torch: listing profiles stays cheap.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from rawadapt.errors import CFAError, ConfigError, InputFileError, UnknownSensorError
from rawadapt.io.bayer import normalize_cfa
from rawadapt.utils.atomic import write_text
from rawadapt.utils.color import (
    SRGB_TO_XYZ,  # turns a DNG ColorMatrix (XYZ -> camera) into a CCM
)
from rawadapt.utils.settings import condense

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
ENV_PROFILES = "RAWADAPT_PROFILES"
ENV_USER_PROFILES = "RAWADAPT_USER_PROFILES"
KINDS = ("eld", "nlf")
READ_MODELS = ("tukey", "gaussian")

#: Standard 1/3-stop ISO values (ISO 12232 rounded series).
STANDARD_ISOS: tuple[int, ...] = (
    50,
    64,
    80,
    100,
    125,
    160,
    200,
    250,
    320,
    400,
    500,
    640,
    800,
    1000,
    1250,
    1600,
    2000,
    2500,
    3200,
    4000,
    5000,
    6400,
    8000,
    10000,
    12800,
    16000,
    20000,
    25600,
    32000,
    40000,
    51200,
)


@dataclass(frozen=True)
class Regression:
    """``log sigma = a log K + b + N(0, sigma)`` (natural logs), as in ELD."""

    a: float
    b: float
    sigma: float

    def mean(self, K: float) -> float:
        """The regression's sigma at gain ``K`` without the random term."""
        return math.exp(self.a * math.log(K) + self.b)


@dataclass(frozen=True)
class FixedPattern:
    """Per-sensor fixed-pattern noise, identical for every image of the sensor.

    Attributes
    ----------
    seed
        Seed of the sensor's pattern (different sensors must use different seeds).
    dsnu
        Dark-signal non-uniformity: per-pixel offset std as a FRACTION of the image's read-noise
        std (so it scales with the analogue gain like the read noise does).
    prnu
        Photo-response non-uniformity: per-pixel gain std (fraction, ~0.005-0.01).
    column
        Column offset std (one offset per full-resolution column), fraction of read-noise std.
    """

    seed: int = 0
    dsnu: float = 0.0
    prnu: float = 0.0
    column: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.dsnu > 0 or self.prnu > 0 or self.column > 0


@dataclass(frozen=True)
class Profile:
    """One sensor's noise and colour description (see the module docstring).

    Levels are in digital numbers (DN). ``black_level`` holds four values in canonical plane
    order (R, G1, G2, B).
    """

    name: str
    kind: str
    cfa: str
    black_level: tuple[float, float, float, float]
    white_level: float
    bits: int
    iso_range: tuple[float, float]
    iso_k: tuple[tuple[float, float], ...]
    description: str = ""
    source: str = ""
    read_model: str = "gaussian"
    k_range: tuple[float, float] | None = None
    tukey_lambdas: tuple[float, ...] = ()
    sigma_tl: Regression | None = None
    sigma_row: Regression | None = None
    sigma_gauss: Regression | None = None
    nlf: tuple[tuple[float, float, float], ...] = ()
    read_jitter: float = 0.0
    row_fraction: float = 0.0
    bias_kmin: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    bias_kmax: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    channel_k: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    channel_read: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    fixed_pattern: FixedPattern = field(default_factory=FixedPattern)
    ratios: tuple[float, ...] = (1.0,)
    color_matrix: tuple[float, ...] = tuple(np.linalg.inv(SRGB_TO_XYZ).reshape(-1).tolist())
    wb_red: tuple[float, float] = (1.8, 2.4)
    wb_blue: tuple[float, float] = (1.4, 2.0)
    path: str | None = None
    aliases: tuple[str, ...] = ()

    # -- levels -------------------------------------------------------------------------------
    @property
    def span(self) -> np.ndarray:
        """``white - black`` per canonical plane (DN), float64 array of 4."""
        return float(self.white_level) - np.asarray(self.black_level, dtype=np.float64)

    @property
    def mean_span(self) -> float:
        return float(self.span.mean())

    # -- ISO <-> K ----------------------------------------------------------------------------
    @property
    def gain_range(self) -> tuple[float, float]:
        """(Kmin, Kmax) in DN per electron."""
        if self.k_range is not None:
            return self.k_range
        lo, hi = self.iso_range
        isos = [lo, hi] + [i for i, _ in self.iso_k if lo <= i <= hi]
        ks = [self.iso_to_k(i) for i in isos]
        return (min(ks), max(ks))

    def iso_to_k(self, iso: float) -> float:
        """System gain K (DN/e-) at ``iso``: piecewise linear in log ISO / log K, extrapolated
        linearly in log-log space beyond the table."""
        return float(math.exp(_interp_loglog(math.log(float(iso)), self._log_iso, self._log_k)))

    def k_to_iso(self, K: float) -> float:
        """Inverse of :meth:`iso_to_k`. Where the mapping is not monotonic (the SIDD iPhone's
        NLF), the ISO inside ``iso_range`` whose K is closest is returned."""
        lk = math.log(float(K))
        li, lkk = self._log_iso, self._log_k
        if len(li) >= 2 and np.all(np.diff(lkk) > 0):
            return float(math.exp(_interp_loglog(lk, lkk, li)))
        grid = np.linspace(math.log(self.iso_range[0]), math.log(self.iso_range[1]), 512)
        ks = np.interp(grid, li, lkk)
        return float(math.exp(grid[int(np.argmin(np.abs(ks - lk)))]))

    @functools.cached_property
    def _log_iso(self) -> np.ndarray:
        return np.log(np.array([p[0] for p in self.iso_k], dtype=np.float64))

    @functools.cached_property
    def _log_k(self) -> np.ndarray:
        return np.log(np.array([p[1] for p in self.iso_k], dtype=np.float64))

    # -- NLF read noise -------------------------------------------------------------------------
    def nlf_read_sigma(self, iso: float) -> float:
        """Gaussian read-noise std (DN) of an ``nlf`` profile at ``iso`` (from beta2)."""
        if not self.nlf:
            raise ConfigError(f"profile {self.name!r} has no NLF table", self.path)
        li = np.log(np.array([p[0] for p in self.nlf]))
        lb2 = np.log(np.maximum(np.array([p[2] for p in self.nlf]), 1e-20))
        beta2 = math.exp(_interp_loglog(math.log(float(iso)), li, lb2, extrapolate=False))
        return math.sqrt(beta2) * self.mean_span

    # -- colour -------------------------------------------------------------------------------
    @property
    def ccm(self) -> np.ndarray:
        """Camera RGB (white balanced) -> linear sRGB 3x3 matrix, rows summing to 1.

        Built the dcraw way from the XYZ -> camera ``color_matrix`` (DNG ColorMatrix1, D65):
        ``cam_from_srgb = color_matrix @ SRGB_TO_XYZ``, rows normalised to sum 1 (so a white
        balanced neutral stays neutral), then inverted.
        """
        cm = np.asarray(self.color_matrix, dtype=np.float64).reshape(3, 3)
        cam_from_srgb = cm @ SRGB_TO_XYZ
        cam_from_srgb = cam_from_srgb / cam_from_srgb.sum(axis=1, keepdims=True)
        return np.linalg.inv(cam_from_srgb)

    # -- export -------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """A short JSON-friendly description (what ``rawadapt profiles`` prints)."""
        kmin, kmax = self.gain_range
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "cfa": self.cfa,
            "bits": self.bits,
            "black_level": list(self.black_level),
            "white_level": self.white_level,
            "iso_range": list(self.iso_range),
            "k_range": [round(kmin, 5), round(kmax, 5)],
            "read_model": self.read_model,
            "ratios": list(self.ratios),
            "fixed_pattern": asdict(self.fixed_pattern),
            "source": self.source,
            "aliases": list(self.aliases),
            "path": self.path,
        }

    def to_dict(self) -> dict[str, Any]:
        """The profile as the YAML mapping :func:`profile_from_dict` reads back."""
        d: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "source": self.source,
        }
        if self.aliases:
            d["aliases"] = list(self.aliases)
        d |= {
            "cfa": self.cfa,
            "bits": self.bits,
            "black_level": list(self.black_level),
            "white_level": self.white_level,
            "iso_range": list(self.iso_range),
            "iso_k": [list(p) for p in self.iso_k],
            "read_model": self.read_model,
        }
        if self.k_range is not None:
            d["k_range"] = list(self.k_range)
        if self.tukey_lambdas:
            d["tukey_lambdas"] = list(self.tukey_lambdas)
        regs = {
            k: asdict(v)
            for k, v in (("sigma_tl", self.sigma_tl), ("sigma_row", self.sigma_row), ("sigma_gauss", self.sigma_gauss))
            if v is not None
        }
        if regs:
            d["regressions"] = regs
        if self.nlf:
            d["nlf"] = [list(p) for p in self.nlf]
        d.update(
            {
                "read_jitter": self.read_jitter,
                "row_fraction": self.row_fraction,
                "color_bias": {"k_min": list(self.bias_kmin), "k_max": list(self.bias_kmax)},
                "channel_k": list(self.channel_k),
                "channel_read": list(self.channel_read),
                "fixed_pattern": asdict(self.fixed_pattern),
                "ratios": list(self.ratios),
                "color_matrix": list(self.color_matrix),
                "white_balance": {"red": list(self.wb_red), "blue": list(self.wb_blue)},
            }
        )
        return d


def _interp_loglog(x: float, xs: np.ndarray, ys: np.ndarray, *, extrapolate: bool = True) -> float:
    """Piecewise-linear interpolation, linear extrapolation from the end segments."""
    if len(xs) == 1:
        return float(ys[0])
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    if not extrapolate or xs[0] <= x <= xs[-1]:
        return float(np.interp(x, xs, ys))
    i = 0 if x < xs[0] else len(xs) - 2
    slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
    return float(ys[i] + slope * (x - xs[i]))


def round_iso(iso: float) -> int:
    """Nearest standard 1/3-stop ISO value (in log space)."""
    arr = np.log(np.array(STANDARD_ISOS, dtype=np.float64))
    return int(STANDARD_ISOS[int(np.argmin(np.abs(arr - math.log(max(float(iso), 1e-3)))))])


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


FiniteFloat = Annotated[float, AfterValidator(lambda v: _finite(v))]


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


def _broadcast(n: int) -> Any:
    """A single number stands for ``n`` equal values."""

    def f(v: Any) -> Any:
        return [v] * n if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    return BeforeValidator(f)


#: lists of exactly 2 / 3 / 4 / 9 finite numbers (a single number is repeated)
Floats2 = Annotated[list[FiniteFloat], _broadcast(2), Field(min_length=2, max_length=2)]
Floats3 = Annotated[list[FiniteFloat], _broadcast(3), Field(min_length=3, max_length=3)]
Floats4 = Annotated[list[FiniteFloat], _broadcast(4), Field(min_length=4, max_length=4)]
Floats9 = Annotated[list[FiniteFloat], _broadcast(9), Field(min_length=9, max_length=9)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegressionSpec(_Spec):
    """``log sigma = a log K + b + N(0, sigma)`` as written in a profile."""

    a: FiniteFloat
    b: FiniteFloat
    sigma: FiniteFloat = 0.0


class RegressionsSpec(_Spec):
    sigma_tl: RegressionSpec | None = None
    sigma_row: RegressionSpec | None = None
    sigma_gauss: RegressionSpec | None = None


class ColorBiasSpec(_Spec):
    k_min: Floats4 = Field(default_factory=lambda: [0.0] * 4)
    k_max: Floats4 | None = None


class FixedPatternSpec(_Spec):
    seed: int = 0
    dsnu: FiniteFloat = Field(default=0.0, ge=0.0)
    prnu: FiniteFloat = Field(default=0.0, ge=0.0)
    column: FiniteFloat = Field(default=0.0, ge=0.0)


class WhiteBalanceSpec(_Spec):
    red: Floats2 | None = None
    blue: Floats2 | None = None


class ProfileSpec(_Spec):
    """The YAML format of a noise profile (types, lengths, ranges, unknown keys); the rules that
    relate fields to each other are checked by :func:`profile_from_dict`."""

    name: str
    kind: Literal["eld", "nlf"]
    cfa: str
    black_level: Floats4
    white_level: FiniteFloat
    description: str = ""
    source: str = ""
    aliases: list[str] = Field(default_factory=list)
    notes: Any = None
    bits: int | None = Field(default=None, ge=1, le=32)
    iso_range: Floats2 | None = None
    iso_k: list[Floats2] | None = None
    read_model: Literal["tukey", "gaussian"] | None = None
    k_range: Floats2 | None = None
    tukey_lambdas: list[FiniteFloat] = Field(default_factory=list)
    regressions: RegressionsSpec = Field(default_factory=RegressionsSpec)
    nlf: list[Floats3] | None = None
    read_jitter: FiniteFloat = 0.0
    row_fraction: FiniteFloat = 0.0
    color_bias: ColorBiasSpec = Field(default_factory=ColorBiasSpec)
    channel_k: Floats4 = Field(default_factory=lambda: [1.0] * 4)
    channel_read: Floats4 = Field(default_factory=lambda: [1.0] * 4)
    fixed_pattern: FixedPatternSpec = Field(default_factory=FixedPatternSpec)
    ratios: list[FiniteFloat] = Field(default_factory=lambda: [1.0], min_length=1)
    color_matrix: Floats9 | None = None
    white_balance: WhiteBalanceSpec = Field(default_factory=WhiteBalanceSpec)

    @field_validator("regressions", "color_bias", "fixed_pattern", "white_balance", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v


def _regression(spec: RegressionSpec | None) -> Regression | None:
    return None if spec is None else Regression(spec.a, spec.b, spec.sigma)


def profile_from_dict(data: Mapping[str, Any], *, path: str | None = None) -> Profile:
    """Validate a profile mapping (as read from YAML) and build a :class:`Profile`.

    Types, lengths and unknown keys are checked by :class:`ProfileSpec` (pydantic); the rules
    between fields here.

    Raises
    ------
    ConfigError
        Missing or malformed fields, unknown keys, inconsistent levels (one line).
    """

    if not isinstance(data, Mapping):
        raise ConfigError("a profile must be a YAML mapping", path)
    try:
        spec = ProfileSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(f"invalid profile: {condense(exc)}", path) from None
    try:
        cfa = normalize_cfa(spec.cfa)
    except CFAError as exc:
        raise ConfigError(exc.message, path) from None
    black = tuple(spec.black_level)
    white = spec.white_level
    if any(b >= white for b in black):
        raise ConfigError(f"white_level {white} must exceed black levels {black}", path)
    bits = spec.bits if spec.bits is not None else max(1, math.ceil(math.log2(white + 1)))
    read_model = spec.read_model or ("tukey" if spec.kind == "eld" else "gaussian")

    nlf: tuple[tuple[float, float, float], ...] = ()
    span = white - float(np.mean(black))
    if spec.kind == "nlf":
        if not spec.nlf:
            raise ConfigError("an 'nlf' profile needs an 'nlf' table: [[iso, beta1, beta2], ...]", path)
        if any(r[0] <= 0 or r[1] <= 0 or r[2] < 0 for r in spec.nlf):
            raise ConfigError("nlf rows need iso > 0, beta1 > 0, beta2 >= 0", path)
        nlf = tuple(sorted((r[0], r[1], r[2]) for r in spec.nlf))
    if spec.iso_k is not None:
        iso_k = tuple((p[0], p[1]) for p in spec.iso_k)
    elif nlf:
        iso_k = tuple((r[0], r[1] * span) for r in nlf)
    else:
        raise ConfigError("profile needs 'iso_k' ([[iso, K], ...]) or an 'nlf' table", path)
    if not iso_k or any(i <= 0 or k <= 0 for i, k in iso_k):
        raise ConfigError("iso_k entries need iso > 0 and K > 0", path)
    iso_k = tuple(sorted(iso_k))
    iso_range = (spec.iso_range[0], spec.iso_range[1]) if spec.iso_range else (iso_k[0][0], iso_k[-1][0])
    if not 0 < iso_range[0] <= iso_range[1]:
        raise ConfigError(f"bad iso_range {iso_range}", path)
    k_range = (spec.k_range[0], spec.k_range[1]) if spec.k_range else None

    regs = spec.regressions
    sigma_tl, sigma_row, sigma_gauss = (
        _regression(regs.sigma_tl),
        _regression(regs.sigma_row),
        _regression(regs.sigma_gauss),
    )
    # ELD: "Drop lambda = 0 entries"; lambda <= -0.5 has no finite variance.
    lambdas = tuple(v for v in spec.tukey_lambdas if v != 0.0)
    if any(v <= -0.5 for v in lambdas):
        raise ConfigError("tukey_lambdas must be > -0.5 (finite variance)", path)
    if spec.kind == "eld":
        if k_range is None:
            raise ConfigError("an 'eld' profile needs k_range: [Kmin, Kmax]", path)
        if read_model == "tukey" and (sigma_tl is None or not lambdas):
            raise ConfigError("read_model 'tukey' needs regressions.sigma_tl and tukey_lambdas", path)
        if read_model == "gaussian" and sigma_gauss is None:
            raise ConfigError("read_model 'gaussian' needs regressions.sigma_gauss", path)

    def four(v: Sequence[float]) -> tuple[float, float, float, float]:
        return (v[0], v[1], v[2], v[3])

    bias = spec.color_bias
    fp = spec.fixed_pattern
    if any(r < 1 for r in spec.ratios):
        raise ConfigError("ratios must be a non-empty list of values >= 1", path)
    kwargs: dict[str, Any] = {}
    if spec.color_matrix is not None:
        kwargs["color_matrix"] = tuple(spec.color_matrix)
    if spec.white_balance.red is not None:
        kwargs["wb_red"] = tuple(spec.white_balance.red)
    if spec.white_balance.blue is not None:
        kwargs["wb_blue"] = tuple(spec.white_balance.blue)
    prof = Profile(
        name=spec.name,
        kind=spec.kind,
        cfa=cfa,
        black_level=four(black),
        white_level=white,
        bits=bits,
        iso_range=iso_range,
        iso_k=iso_k,
        description=spec.description,
        source=spec.source,
        read_model=read_model,
        k_range=k_range,
        tukey_lambdas=lambdas,
        sigma_tl=sigma_tl,
        sigma_row=sigma_row,
        sigma_gauss=sigma_gauss,
        nlf=nlf,
        read_jitter=spec.read_jitter,
        row_fraction=spec.row_fraction,
        bias_kmin=four(bias.k_min),
        bias_kmax=four(bias.k_max if bias.k_max is not None else bias.k_min),
        channel_k=four(spec.channel_k),
        channel_read=four(spec.channel_read),
        fixed_pattern=FixedPattern(seed=fp.seed, dsnu=fp.dsnu, prnu=fp.prnu, column=fp.column),
        ratios=tuple(spec.ratios),
        path=path,
        aliases=tuple(a.strip() for a in spec.aliases if a.strip()),
        **kwargs,
    )
    try:
        np.linalg.inv(np.asarray(prof.color_matrix).reshape(3, 3) @ SRGB_TO_XYZ)
    except np.linalg.LinAlgError:
        raise ConfigError("color_matrix is singular", path) from None
    return prof


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFileError(f"cannot read profile: {exc.strerror or exc}", path) from None
    try:
        # libyaml's loader when PyYAML has it: listing hundreds of imported profiles stays fast
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}".splitlines()[0], path) from None


def user_profile_dir() -> Path:
    """The user profile folder (imported and personal profiles; it need not exist).

    ``$RAWADAPT_USER_PROFILES`` if set, else ``$XDG_CONFIG_HOME/rawadapt/profiles`` (default
    ``~/.config/rawadapt/profiles``).
    """
    env = os.environ.get(ENV_USER_PROFILES, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "rawadapt" / "profiles"


def profile_dirs() -> list[Path]:
    """Folders searched for ``*.yaml`` profiles: built-ins first, then the user profile folder
    (:func:`user_profile_dir`), then ``$RAWADAPT_PROFILES``."""
    dirs = [PROFILE_DIR, user_profile_dir()]
    for part in os.environ.get(ENV_PROFILES, "").split(os.pathsep):
        if part.strip():
            dirs.append(Path(part.strip()).expanduser())
    return dirs


@functools.lru_cache(maxsize=64)
def _load_file_cached(path: str, mtime: float) -> Profile:
    return profile_from_dict(_read_yaml(Path(path)), path=path)


def load_profile_file(path: str | os.PathLike[str]) -> Profile:
    """Load one profile YAML file.

    Raises
    ------
    InputFileError
        Missing or unreadable file.
    ConfigError
        Invalid content.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputFileError("profile file not found", p)
    return _load_file_cached(str(p.resolve()), p.stat().st_mtime)


def _scan() -> tuple[tuple[str, Path, tuple[str, ...]], ...]:
    """(name, file, aliases) of every profile, later folders overriding earlier ones (cached on
    folder mtimes)."""
    key = tuple((str(d), d.stat().st_mtime_ns if d.is_dir() else -1) for d in profile_dirs())
    return _index_cached(key)


def _index() -> dict[str, Path]:
    """Profile name -> file, later folders overriding earlier ones."""
    return {name: f for name, f, _ in _scan()}


@functools.lru_cache(maxsize=8)
def _index_cached(key: tuple[tuple[str, int], ...]) -> tuple[tuple[str, Path, tuple[str, ...]], ...]:
    out: dict[str, tuple[Path, tuple[str, ...]]] = {}
    for dname, mtime in key:
        d = Path(dname)
        if mtime < 0:
            continue
        for f in sorted(d.glob("*.y*ml")):
            if f.suffix not in (".yaml", ".yml"):
                continue
            aliases: tuple[str, ...] = ()
            try:
                doc = _read_yaml(f)
                name = str(doc.get("name", f.stem))
                raw = doc.get("aliases") or ()
                if isinstance(raw, (list, tuple)):
                    aliases = tuple(str(a) for a in raw if a)
            except (ConfigError, InputFileError, AttributeError):
                name = f.stem
            out.pop(name, None)  # a later folder's profile of the same name replaces the earlier one
            out[name] = (f, aliases)
    return tuple((n, f, a) for n, (f, a) in out.items())


def normalize_camera_name(name: str) -> str:
    """A camera name for matching: lower case, letters and digits only.

    Examples
    --------
    >>> normalize_camera_name("Canon EOS 5D Mark IV")
    'canoneos5dmarkiv'
    """
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def matching_profiles(candidates: Sequence[str | None]) -> list[str]:
    """Names of every profile of a camera known by any of ``candidates``, best first.

    Names and aliases are compared with :func:`normalize_camera_name` (case, spaces and
    punctuation ignored). Profiles whose NAME equals a candidate come before those with an equal
    ALIAS (so an imported ``"Canon EOS 5D Mark IV"`` comes before the built-in ``CanonEOS5D4``,
    whose alias it is); then candidates in their order; then later folders first (user profiles
    before built-in ones).

    Parameters
    ----------
    candidates
        Names to try (EXIF make and model, a sensor name...); None and blanks are skipped.

    Returns
    -------
    list of str
        Names :func:`load_profile` accepts (empty when none matches).
    """
    keys = [normalize_camera_name(c) for c in candidates if c and str(c).strip()]
    keys = [k for k in keys if k]
    entries = list(reversed(_scan()))  # later folders first
    out: list[str] = []
    for by_alias in (False, True):
        for k in keys:
            for name, _, aliases in entries:
                names = aliases if by_alias else (name,)
                if name not in out and any(normalize_camera_name(n) == k for n in names):
                    out.append(name)
    return out


def match_profile(candidates: Sequence[str | None]) -> str | None:
    """The best profile of a camera known by any of ``candidates`` (rules in
    :func:`matching_profiles`), or None.

    Examples
    --------
    >>> match_profile(["Canon EOS 5D Mark IV"])  # doctest: +SKIP
    'CanonEOS5D4'
    """
    found = matching_profiles(candidates)
    return found[0] if found else None


def list_profiles() -> list[str]:
    """Names of every loadable profile (built-in and user), built-ins in a fixed order."""
    idx = _index()
    builtin = [n for n in BUILTIN_ORDER if n in idx]
    return builtin + sorted(n for n in idx if n not in BUILTIN_ORDER)


def load_profile(name_or_path: str | os.PathLike[str] | Profile) -> Profile:
    """A profile by name (case-insensitive) or by path to a YAML file.

    Raises
    ------
    UnknownSensorError
        No profile of that name; the message lists the known ones.
    """
    if isinstance(name_or_path, Profile):
        return name_or_path
    s = str(name_or_path)
    p = Path(s).expanduser()
    if s.endswith((".yaml", ".yml")) or os.sep in s or p.is_file():
        return load_profile_file(p)
    idx = _index()
    match = idx.get(s) or next((f for n, f in idx.items() if n.lower() == s.lower()), None)
    if match is None:
        raise UnknownSensorError(f"unknown camera profile {s!r}; known profiles: {', '.join(list_profiles())}")
    return load_profile_file(match)


def save_profile(profile: Profile | Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a profile as YAML (atomically) after validating it. Returns the path."""
    import yaml

    data = profile.to_dict() if isinstance(profile, Profile) else dict(profile)
    profile_from_dict(data, path=str(path))  # validate before writing
    write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100))
    return Path(path)


#: The ten built-in sensors: five ELD DSLRs, five SIDD phones.
ELD_CAMERAS: tuple[str, ...] = ("SonyA7S2", "NikonD850", "CanonEOS70D", "CanonEOS700D", "CanonEOS5D4")
SIDD_PHONES: tuple[str, ...] = ("IP", "GP", "S6", "N6", "G4")
BUILTIN_ORDER: tuple[str, ...] = ELD_CAMERAS + SIDD_PHONES


def builtin_profiles() -> list[Profile]:
    """The ten built-in profiles in :data:`BUILTIN_ORDER`."""
    return [load_profile(n) for n in BUILTIN_ORDER]


def profile_summaries(names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """:meth:`Profile.summary` of the given (default: all) profiles."""
    return [load_profile(n).summary() for n in (names if names is not None else list_profiles())]
