"""Physics-based RAW noise in digital numbers: the ELD model (Wei et al., CVPR 2020) plus fixed pattern.

For a clean packed image ``c`` in [0, 1] (canonical planes R, G1, G2, B), a profile (levels,
CFA, fixed pattern) and per-image :class:`NoiseParams`:

1. clean DN above black: ``x = c (white - black) / ratio`` (``ratio`` = low-light exposure ratio);
2. PRNU: ``x <- x (1 + prnu P)`` with the sensor's fixed per-pixel field ``P``;
3. shot noise: ``Poisson(x / K) K`` (K = system gain in DN per electron, per-channel scale);
4. DSNU and column offsets: ``+ dsnu D + column C`` (fixed per sensor);
5. read noise: Tukey-lambda ``sigma_TL Q(u; lambda)`` or Gaussian ``sigma_g N(0, 1)``;
6. row noise: one ``N(0, sigma_r)`` per FULL-resolution sensor row (R/G1 share a mosaic row,
   G2/B share the other one);
7. colour bias: a constant per CFA channel;
8. quantisation: ``U(-1/2, 1/2) q`` (q = 1 DN), or real rounding, or none;
9. clipping to the ADC range ``[-black, white - black]`` (the sensor saturates at white);
10. back to normalised units: ``y / (white - black) * ratio``, clipped to [0, 1] by default (the
    field's ``max(raw - black, 0) / (white - black)`` then ``min(x ratio, 1)``).

Shot noise: exact ``torch.poisson`` for ``lambda < shot_exact_below`` electrons (default 10) and
above it a rounded Cornish-Fisher expansion ``round(lambda + sqrt(lambda - 5/36) z + (z^2 - 1)/6)``,
which matches the Poisson mean, variance and skewness and keeps the integer-electron lattice
(total-variation distance to the Poisson law ~0.002 at 10 e-, less above) while being several
times faster on CPU (``shot_exact_below=math.inf`` forces exact Poisson everywhere).

Every random call takes an explicit ``torch.Generator`` (or a seed): same seed, same noise.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from rawadapt.errors import ConfigError, NonFiniteError, ShapeError
from rawadapt.noise.pattern import column_planes, pattern_planes, row_parity
from rawadapt.noise.profiles import Profile, load_profile
from rawadapt.utils.seed import numpy_rng

#: default switch from exact Poisson to the skew-corrected rounded-Gaussian approximation
#: (electrons); at 10 e- its total-variation distance to the Poisson law is ~0.002
SHOT_EXACT_BELOW = 10.0
QUANTIZATION = ("uniform", "round", "none")
_Vec4 = tuple[float, float, float, float]


# --------------------------------------------------------------------------------------------
# Tukey lambda
# --------------------------------------------------------------------------------------------


def tukey_lambda_quantile(u: torch.Tensor | np.ndarray | float, lam: float) -> Any:
    """Quantile function of the Tukey-lambda distribution (location 0, scale 1).

    ``Q(u) = (u**lam - (1 - u)**lam) / lam``; for ``lam -> 0`` the logistic ``log(u / (1 - u))``.
    Works on floats, NumPy arrays and torch tensors.
    """
    lam = float(lam)
    if isinstance(u, torch.Tensor):
        if abs(lam) < 1e-6:
            return torch.log(u) - torch.log1p(-u)
        return (torch.exp(lam * torch.log(u)) - torch.exp(lam * torch.log1p(-u))) / lam
    ua = np.asarray(u, dtype=np.float64)
    if abs(lam) < 1e-6:
        out = np.log(ua) - np.log1p(-ua)
    else:
        out = (np.exp(lam * np.log(ua)) - np.exp(lam * np.log1p(-ua))) / lam
    return float(out) if np.ndim(out) == 0 else out


def tukey_lambda_sample(shape: Sequence[int], lam: float, generator: torch.Generator) -> torch.Tensor:
    """Standard Tukey-lambda draws by inverse transform, ``Q(U)`` with ``U ~ U(0, 1)``
    (in place on one buffer; ``U`` is kept inside ``[1e-7, 1 - 1e-7]``)."""
    u = _draw("uniform", shape, generator).clamp_(1e-7, 1.0 - 1e-7)
    lam = float(lam)
    if abs(lam) < 1e-6:
        return u.div(1.0 - u).log_()
    a = torch.pow(u, lam)
    return a.sub_(u.neg_().add_(1.0).pow_(lam)).div_(lam)


def tukey_lambda_variance(lam: float) -> float:
    """Variance of the standard Tukey-lambda distribution (finite for ``lam > -1/2``).

    ``2/lam^2 (1/(1+2 lam) - Gamma(lam+1)^2 / Gamma(2 lam + 2))``; ``pi^2/3`` at ``lam = 0``.
    """
    lam = float(lam)
    if lam <= -0.5:
        return math.inf
    if abs(lam) < 1e-4:
        return math.pi**2 / 3.0
    g = math.lgamma(lam + 1) * 2 - math.lgamma(2 * lam + 2)
    return 2.0 / lam**2 * (1.0 / (1.0 + 2.0 * lam) - math.exp(g))


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseParams:
    """Noise parameters of ONE image (all in DN unless stated).

    Attributes
    ----------
    K
        System gain, DN per electron.
    iso
        ISO the gain corresponds to (metadata; None when unknown).
    read_model
        ``"tukey"`` or ``"gaussian"``.
    sigma_read
        Tukey-lambda scale ``sigma_TL`` or Gaussian std ``sigma_g``.
    tukey_lambda
        Shape of the Tukey-lambda read noise (ignored for Gaussian).
    sigma_row
        Std of the per-row offset.
    bias
        Colour bias per canonical plane (R, G1, G2, B).
    k_scale, read_scale
        Per-plane multipliers of K and of the read noise (1 = same for all channels).
    dsnu, column
        Std of the sensor's per-pixel and per-column fixed offsets at this gain.
    prnu
        Std of the per-pixel gain non-uniformity (fraction).
    """

    K: float
    iso: float | None = None
    read_model: str = "gaussian"
    sigma_read: float = 0.0
    tukey_lambda: float = 0.0
    sigma_row: float = 0.0
    bias: _Vec4 = (0.0, 0.0, 0.0, 0.0)
    k_scale: _Vec4 = (1.0, 1.0, 1.0, 1.0)
    read_scale: _Vec4 = (1.0, 1.0, 1.0, 1.0)
    dsnu: float = 0.0
    prnu: float = 0.0
    column: float = 0.0

    def __post_init__(self) -> None:
        if not (self.K > 0 and math.isfinite(self.K)):
            raise ConfigError(f"system gain K must be a positive number, got {self.K}")
        if self.read_model not in ("tukey", "gaussian"):
            raise ConfigError(f"read_model must be 'tukey' or 'gaussian', got {self.read_model!r}")
        if min(self.sigma_read, self.sigma_row, self.dsnu, self.prnu, self.column) < 0:
            raise ConfigError("noise strengths must be >= 0")
        if self.read_model == "tukey" and self.tukey_lambda <= -0.5:
            raise ConfigError("tukey_lambda must be > -0.5")

    @classmethod
    def poisson_gaussian(cls, K: float, sigma: float, *, iso: float | None = None) -> NoiseParams:
        """Plain heteroscedastic noise: shot noise of gain ``K`` plus Gaussian read std ``sigma``."""
        return cls(K=float(K), iso=iso, read_model="gaussian", sigma_read=float(sigma))

    @property
    def read_std(self) -> float:
        """Standard deviation (DN) of the read noise (Tukey scale times the standard TL std)."""
        if self.read_model == "tukey":
            return self.sigma_read * math.sqrt(tukey_lambda_variance(self.tukey_lambda))
        return self.sigma_read

    def variance(
        self, x_dn: float | np.ndarray, *, channel: int = 0, quantization: str = "uniform", include_row: bool = True
    ) -> Any:
        """Expected temporal variance (DN^2) at clean signal ``x_dn`` (DN above black), without
        fixed pattern or clipping: ``K x + read^2 + row^2 + q^2/12``."""
        k = self.K * self.k_scale[channel]
        v = k * np.asarray(x_dn, dtype=np.float64) + (self.read_std * self.read_scale[channel]) ** 2
        if include_row:
            v = v + self.sigma_row**2
        if quantization != "none":
            v = v + 1.0 / 12.0
        return v

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseParams:
        d = dict(data)
        for key in ("bias", "k_scale", "read_scale"):
            if key in d:
                d[key] = tuple(float(v) for v in d[key])
        return cls(**d)


def _bias_at(profile: Profile, K: float) -> _Vec4:
    kmin, kmax = profile.gain_range
    t = 0.0 if kmax <= kmin else (math.log(K) - math.log(kmin)) / (math.log(kmax) - math.log(kmin))
    t = min(max(t, 0.0), 1.0)
    return tuple(a + t * (b - a) for a, b in zip(profile.bias_kmin, profile.bias_kmax))  # type: ignore[return-value]


def sample_noise_params(
    profile: Profile | str,
    *,
    iso: float | None = None,
    K: float | None = None,
    rng: np.random.Generator | int | None = None,
    read_model: str | None = None,
) -> NoiseParams:
    """Draw the noise parameters of one image of ``profile`` (ELD-style sampling).

    Parameters
    ----------
    profile
        A :class:`Profile` or a profile name.
    iso
        Fix the ISO (K from the profile's ISO <-> K mapping).
    K
        Fix the system gain instead (ISO from the inverse mapping).
    rng
        NumPy generator or seed. With neither ``iso`` nor ``K``: ELD profiles draw
        ``log K ~ U(log Kmin, log Kmax)``; NLF profiles draw ``log ISO`` uniformly in the ISO range.
    read_model
        Override the profile's read-noise model (``"tukey"`` or ``"gaussian"``; ELD only).

    Returns
    -------
    NoiseParams
    """
    prof = load_profile(profile)
    gen = numpy_rng(rng)
    if K is not None and K <= 0:
        raise ConfigError(f"K must be positive, got {K}")
    if iso is not None and iso <= 0:
        raise ConfigError(f"ISO must be positive, got {iso}")
    model = read_model or prof.read_model
    lam = 0.0
    if prof.kind == "eld":
        kmin, kmax = prof.gain_range
        if K is None:
            if iso is None:
                K = math.exp(gen.uniform(math.log(kmin), math.log(kmax)))
                iso = prof.k_to_iso(K)
            else:
                K = prof.iso_to_k(iso)
        elif iso is None:
            iso = prof.k_to_iso(K)
        logk = math.log(K)

        def draw(reg: Any) -> float:
            if reg is None:
                return 0.0
            return math.exp(reg.a * logk + reg.b + gen.normal(0.0, reg.sigma))

        if model == "tukey":
            if prof.sigma_tl is None or not prof.tukey_lambdas:
                raise ConfigError(f"profile {prof.name!r} has no Tukey-lambda calibration", prof.path)
            lam = float(gen.choice(np.asarray(prof.tukey_lambdas)))
            sigma_read = draw(prof.sigma_tl)
        else:
            if prof.sigma_gauss is None:
                raise ConfigError(f"profile {prof.name!r} has no Gaussian read-noise calibration", prof.path)
            sigma_read = draw(prof.sigma_gauss)
        sigma_row = draw(prof.sigma_row)
    else:
        if model != "gaussian":
            raise ConfigError(f"profile {prof.name!r} (NLF) supports the Gaussian read model only")
        lo, hi = prof.iso_range
        if K is None:
            if iso is None:
                iso = math.exp(gen.uniform(math.log(lo), math.log(hi)))
            K = prof.iso_to_k(iso)
        elif iso is None:
            iso = prof.k_to_iso(K)
        sigma_read = prof.nlf_read_sigma(iso) * math.exp(gen.normal(0.0, prof.read_jitter))
        sigma_row = prof.row_fraction * sigma_read
    params = NoiseParams(
        K=float(K),
        iso=float(iso),
        read_model=model,
        sigma_read=float(sigma_read),
        tukey_lambda=lam,
        sigma_row=float(sigma_row),
        bias=_bias_at(prof, K),
        k_scale=prof.channel_k,
        read_scale=prof.channel_read,
    )
    fp = prof.fixed_pattern
    read_std = params.read_std
    return replace(params, dsnu=fp.dsnu * read_std, prnu=fp.prnu, column=fp.column * read_std)


# --------------------------------------------------------------------------------------------
# Sampling helpers
# --------------------------------------------------------------------------------------------


def _generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator:
    if generator is not None:
        return generator
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def _sub_seeds(gen: torch.Generator, n: int) -> list[int]:
    return [int(v) for v in torch.randint(0, 2**62, (n,), generator=gen)]


_POOL: ThreadPoolExecutor | None = None
#: Large draws are split into this many chunks, each with its own generator seeded from the
#: caller's generator. The split does not depend on the thread count, so the same seed gives
#: the same noise with 1 or N threads; with >= 2 torch threads the chunks run in parallel
#: (the CPU generators are single-threaded).
_CHUNKS = 4
_CHUNK_MIN = 1 << 20


def _map_chunks(fn: Any, n: int) -> list[Any]:
    global _POOL
    if torch.get_num_threads() < 2:
        return [fn(i) for i in range(n)]
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=_CHUNKS, thread_name_prefix="rawadapt-rng")
    return list(_POOL.map(fn, range(n)))


def _draw(kind: str, shape: Sequence[int], gen: torch.Generator) -> torch.Tensor:
    """``torch.rand`` (``kind="uniform"``) or ``torch.randn`` (``"normal"``) of ``shape``, drawn
    in fixed chunks for large sizes (see :data:`_CHUNKS`)."""
    shape = tuple(int(v) for v in shape)
    n = math.prod(shape)
    if n < _CHUNK_MIN:
        return torch.rand(shape, generator=gen) if kind == "uniform" else torch.randn(shape, generator=gen)
    seeds = _sub_seeds(gen, _CHUNKS)
    out = torch.empty(n, dtype=torch.float32)
    parts = torch.tensor_split(out, _CHUNKS)

    def run(i: int) -> None:
        g = torch.Generator().manual_seed(seeds[i])
        if kind == "uniform":
            parts[i].uniform_(generator=g)
        else:
            parts[i].normal_(generator=g)

    _map_chunks(run, _CHUNKS)
    return out.reshape(shape)


def _poisson(lam: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Exact Poisson draws (chunked like :func:`_draw`; torch.poisson is single-threaded)."""
    n = lam.numel()
    if n < _CHUNK_MIN:
        return torch.poisson(lam, generator=gen)
    seeds = _sub_seeds(gen, _CHUNKS)
    flat = lam.reshape(-1)
    parts = list(torch.tensor_split(flat, _CHUNKS))

    def run(i: int) -> torch.Tensor:
        return torch.poisson(parts[i], generator=torch.Generator().manual_seed(seeds[i]))

    return torch.cat(_map_chunks(run, _CHUNKS)).reshape(lam.shape)


def sample_shot(
    electrons: torch.Tensor, gen: torch.Generator, *, exact_below: float = SHOT_EXACT_BELOW
) -> torch.Tensor:
    """Photon counts for expected counts ``electrons``: exact Poisson below ``exact_below``,
    the skew-corrected rounded Gaussian above (see the module docstring). ``electrons`` is
    clamped at 0 in place."""
    lam = electrons.clamp_(min=0)
    if math.isinf(exact_below):
        return _poisson(lam, gen)
    lo, hi = (float(v) for v in torch.aminmax(lam))
    if hi < exact_below:  # all dim (low light): exact Poisson everywhere, no masking
        return _poisson(lam, gen)
    z = _draw("normal", lam.shape, gen)
    # Cornish-Fisher: lambda + sqrt(lambda') z + (z^2 - 1)/6 has the Poisson mean, variance and
    # third cumulant; lambda' = lambda - 5/36 compensates the (z^2-1)/6 term (1/18) and the
    # rounding (1/12) so that the variance stays exactly lambda. Rounding keeps integer counts.
    skew = torch.mul(z, z).sub_(1.0).mul_(1.0 / 6.0)
    out = z.mul_((lam - 5.0 / 36.0).clamp_(min=0.0).sqrt_()).add_(lam).add_(skew).round_().clamp_(min=0.0)
    del skew
    if lo < exact_below:
        small = lam < exact_below
        out[small] = _poisson(lam[small], gen)
    return out


@functools.lru_cache(maxsize=8)
def _pattern_tensor(seed: int, field: str, cfa: str, h: int, w: int, origin: tuple[int, int]) -> torch.Tensor:
    """The sensor's fixed-pattern field as a (cached, never written) tensor."""
    return torch.from_numpy(np.array(pattern_planes(seed, field, cfa, h, w, origin)))


def _vec(values: Sequence[float] | np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32), device=like.device).reshape(4, 1, 1)


# --------------------------------------------------------------------------------------------
# The noise model
# --------------------------------------------------------------------------------------------


def add_noise(
    clean: np.ndarray | torch.Tensor,
    profile: Profile | str,
    params: NoiseParams,
    *,
    ratio: float = 1.0,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    quantization: str = "uniform",
    clip: bool = True,
    fixed_pattern: bool = True,
    origin: tuple[int, int] = (0, 0),
    shot_exact_below: float = SHOT_EXACT_BELOW,
    output: str = "normalized",
) -> Any:
    """Simulate a noisy RAW image from a clean one (see the module docstring for the steps).

    Parameters
    ----------
    clean
        Packed canonical planes ``(4, h, w)`` or a batch ``(B, 4, h, w)`` in [0, 1] (the LONG,
        well-exposed image for ``ratio > 1``). NumPy in -> NumPy out, torch in -> torch out.
    profile
        The sensor: levels, CFA (row-noise and fixed-pattern geometry) and fixed-pattern seed.
    params
        Per-image parameters (:func:`sample_noise_params`).
    ratio
        Exposure ratio: the noisy image is exposed ``ratio`` times less and brightened back.
    generator, seed
        Randomness (a fresh random generator when both are None).
    quantization
        ``"uniform"`` (additive ``U(-1/2, 1/2)`` DN, ELD), ``"round"`` (round the
        raw value as an ADC does) or ``"none"``.
    clip
        Clip the normalised output to [0, 1]. The raw value is always clipped to the ADC range.
    fixed_pattern
        Add the sensor's DSNU / PRNU / column pattern (strengths from ``params``).
    origin
        Full-resolution (row, col) of the image on the sensor (fixed-pattern position; even).
    shot_exact_below
        Exact Poisson below this many electrons (``math.inf``: everywhere).
    output
        ``"normalized"`` (brightness-matched like the clean image) or ``"dn"`` (raw digital
        numbers of the SHORT exposure, black level included).

    Returns
    -------
    Same type and shape as ``clean``, float32.
    """
    prof = load_profile(profile)
    if quantization not in QUANTIZATION:
        raise ConfigError(f"quantization must be one of {QUANTIZATION}, got {quantization!r}")
    if output not in ("normalized", "dn"):
        raise ConfigError(f"output must be 'normalized' or 'dn', got {output!r}")
    if not (float(ratio) > 0 and math.isfinite(float(ratio))):
        raise ConfigError(f"ratio must be positive, got {ratio}")
    is_numpy = isinstance(clean, np.ndarray)
    x = (
        torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32))
        if isinstance(clean, np.ndarray)
        else clean.float()
    )
    if x.ndim not in (3, 4) or x.shape[-3] != 4:
        raise ShapeError(f"clean RAW must be (4, h, w) or (B, 4, h, w) packed planes, got {tuple(x.shape)}")
    if not math.isfinite(float(x.sum())):  # one cheap reduction catches NaN and Inf
        raise NonFiniteError("clean image holds NaN/Inf values")
    gen = _generator(generator, seed)
    h, w = int(x.shape[-2]), int(x.shape[-1])
    black = _vec(prof.black_level, x)
    span = _vec(prof.span, x)
    white_above = span  # white - black per plane

    # Every step works in place on one float32 buffer (the frame is large; passes are the cost).
    y = x * (span / float(ratio))
    use_fpn = fixed_pattern and (params.prnu > 0 or params.dsnu > 0 or params.column > 0)
    fp = prof.fixed_pattern
    if use_fpn and params.prnu > 0:
        prnu_field = _pattern_tensor(fp.seed, "prnu", prof.cfa, h, w, tuple(origin))
        y.addcmul_(y, prnu_field, value=float(params.prnu))
    kvec = _vec(params.k_scale, x) * float(params.K)
    y = sample_shot(y.div_(kvec), gen, exact_below=shot_exact_below).mul_(kvec)
    if use_fpn and params.dsnu > 0:
        y.add_(_pattern_tensor(fp.seed, "dsnu", prof.cfa, h, w, tuple(origin)), alpha=float(params.dsnu))
    if use_fpn and params.column > 0:
        y.add_(torch.from_numpy(column_planes(fp.seed, prof.cfa, w, origin[1])), alpha=float(params.column))
    if params.sigma_read > 0:
        if params.read_model == "tukey":
            read = tukey_lambda_sample(y.shape, params.tukey_lambda, gen)
        else:
            read = _draw("normal", y.shape, gen)
        if all(v == 1.0 for v in params.read_scale):
            y.add_(read, alpha=float(params.sigma_read))
        else:
            y.addcmul_(read, _vec(params.read_scale, x), value=float(params.sigma_read))
        del read
    if params.sigma_row > 0:
        rows = torch.randn(y.shape[:-3] + (2 * h,), generator=gen) * float(params.sigma_row)
        par = row_parity(prof.cfa)
        y.add_(torch.stack([rows[..., p::2] for p in par], dim=-2)[..., None])
    offset = np.asarray(params.bias, dtype=np.float32)
    if quantization == "uniform":
        # U(-1/2, 1/2): rand in [0, 1) with the -1/2 folded into the per-channel offset
        y.add_(_draw("uniform", y.shape, gen))
        offset = offset - 0.5
    if np.any(offset != 0):
        y.add_(_vec(offset, x))
    if quantization == "round":
        y = y.add_(black).round_().sub_(black)
    y = torch.clamp(y, min=-black, max=white_above)
    if output == "dn":
        out = y.add_(black)
    else:
        out = y.mul_(float(ratio) / span)
        if clip:
            out = out.clamp_(0.0, 1.0)
    out = out.to(torch.float32)
    return out.numpy() if is_numpy else out


class SensorNoise(nn.Module):
    """:func:`add_noise` as a module that draws fresh parameters per batch element.

    Parameters
    ----------
    profile
        The sensor.
    quantization, clip, fixed_pattern, shot_exact_below
        As in :func:`add_noise`.

    Examples
    --------
    >>> noise = SensorNoise("SonyA7S2")  # doctest: +SKIP
    >>> noisy, params = noise(clean, iso=1600, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
    """

    def __init__(
        self,
        profile: Profile | str,
        *,
        quantization: str = "uniform",
        clip: bool = True,
        fixed_pattern: bool = True,
        shot_exact_below: float = SHOT_EXACT_BELOW,
    ) -> None:
        super().__init__()
        self.profile = load_profile(profile)
        self.quantization = quantization
        self.clip = clip
        self.fixed_pattern = fixed_pattern
        self.shot_exact_below = shot_exact_below

    def forward(
        self,
        clean: torch.Tensor,
        *,
        iso: float | Sequence[float] | None = None,
        ratio: float | Sequence[float] = 1.0,
        params: Sequence[NoiseParams] | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ) -> tuple[torch.Tensor, list[NoiseParams]]:
        """Noisy batch ``(B, 4, h, w)`` and the parameters used for each element."""
        x = clean if clean.ndim == 4 else clean[None]
        gen = _generator(generator, seed)
        b = x.shape[0]
        isos = list(iso) if isinstance(iso, Sequence) else [iso] * b
        ratios = list(ratio) if isinstance(ratio, Sequence) else [ratio] * b
        if len(isos) != b or len(ratios) != b or (params is not None and len(params) != b):
            raise ShapeError("iso / ratio / params lists must have one entry per batch element")
        outs, used = [], []
        for i in range(b):  # loop over images, not pixels
            if params is None:
                rng = np.random.default_rng(_sub_seeds(gen, 1)[0])
                p = sample_noise_params(self.profile, iso=isos[i], rng=rng)
            else:
                p = params[i]
            outs.append(
                add_noise(
                    x[i],
                    self.profile,
                    p,
                    ratio=float(ratios[i]),
                    generator=gen,
                    quantization=self.quantization,
                    clip=self.clip,
                    fixed_pattern=self.fixed_pattern,
                    shot_exact_below=self.shot_exact_below,
                )
            )
            used.append(p)
        out = torch.stack(outs)
        return (out if clean.ndim == 4 else out[0]), used

    def extra_repr(self) -> str:
        return f"profile={self.profile.name!r}, quantization={self.quantization!r}, clip={self.clip}"


def gaussian_noise(
    clean: np.ndarray | torch.Tensor,
    sigma: float,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    clip: bool = True,
) -> Any:
    """Additive white Gaussian noise of std ``sigma`` (normalised units), e.g. ADL's Harmful1."""
    is_numpy = isinstance(clean, np.ndarray)
    x = (
        torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32))
        if isinstance(clean, np.ndarray)
        else clean.float()
    )
    gen = _generator(generator, seed)
    out = x + float(sigma) * torch.randn(x.shape, generator=gen)
    if clip:
        out = out.clamp(0.0, 1.0)
    return out.numpy() if is_numpy else out
