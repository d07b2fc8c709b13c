"""Statistical tests of the physics-based noise model (rawadapt.noise.model)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from rawadapt.errors import ConfigError, NonFiniteError, ShapeError
from rawadapt.io.bayer import pack, unpack
from rawadapt.noise.model import (
    NoiseParams,
    SensorNoise,
    add_noise,
    sample_noise_params,
    tukey_lambda_quantile,
    tukey_lambda_sample,
    tukey_lambda_variance,
)
from rawadapt.noise.profiles import load_profile


def _flat(levels: list[float], h: int = 64, w: int = 64) -> np.ndarray:
    """(len(levels), 4, h, w): flat images, one per level."""
    return np.stack([np.full((4, h, w), lv, np.float32) for lv in levels])


def test_variance_follows_profile_per_channel() -> None:
    """var = K x + sigma^2 per channel (tolerance: 4 % of the predicted variance, i.e. about
    6 standard errors of a variance estimated from 16384 samples)."""
    prof = load_profile("CanonEOS70D")
    base = sample_noise_params(prof, iso=1600, rng=0, read_model="gaussian")
    params = replace(
        base, sigma_row=0.0, bias=(0.0,) * 4, k_scale=(1.0, 1.1, 0.9, 1.2), read_scale=(1.0, 1.2, 0.8, 1.0)
    )
    span = prof.span
    for level in (0.002, 0.02, 0.2, 0.6):
        clean = np.full((4, 128, 128), level, np.float32)
        dn = add_noise(clean, prof, params, seed=7, output="dn", clip=False, fixed_pattern=False)
        for c in range(4):
            x = level * span[c]
            got = float(np.var(dn[c] - prof.black_level[c]))
            want = float(params.variance(x, channel=c, quantization="uniform", include_row=False))
            assert abs(got / want - 1) < 0.04, (level, c, got, want)
            assert abs(float(np.mean(dn[c] - prof.black_level[c])) - x) < 4 * math.sqrt(want / dn[c].size) + 0.01


def test_shot_noise_exact_and_approximation_agree() -> None:
    """Exact Poisson everywhere vs the default switch to the skew-corrected rounded Gaussian:
    same mean, variance and skewness, integer electrons, near-identical distribution."""
    from scipy.stats import poisson, skew

    prof = load_profile("SonyA7S2")
    p = NoiseParams.poisson_gaussian(K=2.0, sigma=0.0)
    for lam in (20.0, 400.0):  # both above the default exact threshold (10 e-)
        clean = np.full((4, 160, 160), lam * 2.0 / prof.span[0], np.float32)
        a = add_noise(clean, prof, p, seed=1, output="dn", quantization="none", fixed_pattern=False)
        b = add_noise(
            clean, prof, p, seed=1, output="dn", quantization="none", fixed_pattern=False, shot_exact_below=math.inf
        )
        for arr in (a, b):
            e = ((arr - 512) / 2.0).ravel()
            assert np.allclose(e, np.round(e), atol=1e-2)  # integer electrons in both modes
            assert abs(e.mean() - lam) < 5 * math.sqrt(lam / e.size)
            assert abs(e.var() / lam - 1) < 0.03
            assert abs(skew(e) - 1 / math.sqrt(lam)) < 5 * math.sqrt(6 / e.size)  # Poisson skewness
        k = np.arange(int(lam - 6 * math.sqrt(lam)), int(lam + 6 * math.sqrt(lam)))
        ea = np.round((a - 512) / 2.0).astype(int).ravel()
        hist = np.array([(ea == v).mean() for v in k])
        assert 0.5 * np.abs(hist - poisson.pmf(k, lam)).sum() < 0.02  # total variation


def test_tukey_lambda_quantiles_match_formula() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    u = np.array([0.001, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 0.999])
    for lam in (-0.2429, -0.1, 0.0, 0.0571, 0.2):
        np.testing.assert_allclose(
            tukey_lambda_quantile(u, lam), scipy_stats.tukeylambda.ppf(u, lam), rtol=1e-9, atol=1e-9
        )
        assert math.isclose(tukey_lambda_variance(lam), scipy_stats.tukeylambda.var(lam), rel_tol=1e-6)
        draws = tukey_lambda_sample((400_000,), lam, torch.Generator().manual_seed(3)).numpy()
        probs = np.array([0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
        emp = np.quantile(draws, probs)
        theo = tukey_lambda_quantile(probs, lam)
        # standard error of an empirical quantile: sqrt(p(1-p)/n) / pdf(q); 6 of them allowed
        dens = 1.0 / (probs ** (lam - 1) + (1 - probs) ** (lam - 1))  # pdf at Q(p) = 1 / Q'(p)
        se = np.sqrt(probs * (1 - probs) / draws.size) / dens
        assert np.all(np.abs(emp - theo) < 6 * se + 1e-3), (lam, emp, theo)
    with pytest.raises(ConfigError):
        NoiseParams(K=1.0, read_model="tukey", sigma_read=1.0, tukey_lambda=-0.6)


def test_row_noise_is_constant_along_full_resolution_rows() -> None:
    """Only row noise: every full-resolution mosaic row is one constant; in packed planes R/G1
    share a mosaic row and G2/B share the other one, for every CFA."""
    for cfa in ("RGGB", "BGGR", "GRBG", "GBRG"):
        prof = replace(load_profile("NikonD850"), cfa=cfa)
        p = NoiseParams(K=1.0, sigma_row=5.0)
        clean = np.zeros((4, 16, 24), np.float32)
        # no shot noise at zero signal, no quantisation, keep negatives: y = row offsets only
        dn = add_noise(clean, prof, p, seed=11, output="dn", quantization="none", fixed_pattern=False)
        mosaic = unpack(dn - 600.0, cfa)
        assert np.allclose(mosaic, mosaic[:, :1], atol=1e-4), cfa  # constant along each row
        rows = mosaic[:, 0]
        assert np.std(rows) > 1.0  # and different between rows
        assert np.allclose(dn[0], dn[1]) and np.allclose(dn[2], dn[3])
        assert not np.allclose(dn[0], dn[3])


def test_fixed_pattern_same_within_sensor_different_across() -> None:
    prof = load_profile("CanonEOS700D")
    p = replace(NoiseParams(K=1.0), dsnu=4.0, prnu=0.01, column=1.0)
    clean = np.full((4, 48, 64), 0.3, np.float32)
    # direct check: the deterministic part (no temporal noise at all) is identical
    det = replace(p, K=1e-9)  # no temporal noise left: only the fixed pattern
    a = add_noise(clean, prof, det, seed=1, output="dn", quantization="none")
    b = add_noise(clean, prof, det, seed=2, output="dn", quantization="none")
    np.testing.assert_allclose(a, b, atol=0.05)
    assert np.std(a - 0.3 * prof.span[:, None, None] - prof.black_level[0]) > 3.0  # a visible pattern
    other = replace(prof, fixed_pattern=replace(prof.fixed_pattern, seed=prof.fixed_pattern.seed + 1))
    c = add_noise(clean, other, det, seed=1, output="dn", quantization="none")
    assert np.corrcoef((a - a.mean()).ravel(), (c - c.mean()).ravel())[0, 1] < 0.1
    assert np.abs(a - c).mean() > 1.0
    # the pattern is tied to sensor positions: a crop at an even origin sees the same values
    big = add_noise(np.full((4, 40, 40), 0.3, np.float32), prof, det, seed=1, output="dn", quantization="none")
    crop = add_noise(
        np.full((4, 20, 20), 0.3, np.float32), prof, det, seed=1, output="dn", quantization="none", origin=(10, 16)
    )
    np.testing.assert_allclose(crop, big[:, 5:25, 8:28], atol=0.05)


def test_builtin_sensors_have_distinct_patterns() -> None:
    from rawadapt.noise.profiles import BUILTIN_ORDER

    seeds = [load_profile(n).fixed_pattern.seed for n in BUILTIN_ORDER]
    assert len(set(seeds)) == len(seeds)


def test_seeds_reproduce_exactly_and_differ() -> None:
    prof = load_profile("SonyA7S2")
    params = sample_noise_params(prof, iso=3200, rng=5)
    assert params == sample_noise_params(prof, iso=3200, rng=5)
    clean = np.random.default_rng(0).random((4, 32, 32)).astype(np.float32) * 0.2
    a = add_noise(clean, prof, params, ratio=10, seed=42)
    b = add_noise(clean, prof, params, ratio=10, generator=torch.Generator().manual_seed(42))
    c = add_noise(clean, prof, params, ratio=10, seed=43)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    t = add_noise(torch.from_numpy(clean), prof, params, ratio=10, seed=42)
    assert isinstance(t, torch.Tensor) and np.array_equal(t.numpy(), a)


def test_exposure_ratio_and_clipping() -> None:
    prof = load_profile("SonyA7S2")
    p = NoiseParams.poisson_gaussian(K=1.0, sigma=2.0)
    clean = np.full((4, 64, 64), 0.2, np.float32)
    dn = add_noise(clean, prof, p, ratio=10, seed=0, output="dn", quantization="none", fixed_pattern=False)
    assert abs(float(dn.mean()) - (512 + 0.2 * 15871 / 10)) < 2.0  # short exposure DN
    out = add_noise(clean, prof, p, ratio=10, seed=0, quantization="none", fixed_pattern=False)
    assert abs(float(out.mean()) - 0.2) < 2e-3  # brightness-matched
    assert abs(float(out.std()) - math.sqrt(317.4 + 4) / 15871 * 10) < 2e-3
    bright = add_noise(np.full((4, 8, 8), 0.99, np.float32), prof, p, ratio=1, seed=0, clip=False, output="dn")
    assert bright.max() <= 16383  # saturates at white
    dark = add_noise(np.zeros((4, 8, 8), np.float32), prof, NoiseParams.poisson_gaussian(1.0, 50.0), seed=0)
    assert dark.min() >= 0.0 and (dark == 0).any()  # clipped at 0 after black subtraction
    raw = add_noise(np.zeros((4, 8, 8), np.float32), prof, NoiseParams.poisson_gaussian(1.0, 50.0), seed=0, clip=False)
    assert raw.min() < 0.0


def test_sample_noise_params_follow_eld_regressions() -> None:
    prof = load_profile("NikonD850")
    rng = np.random.default_rng(0)
    ps = [sample_noise_params(prof, rng=rng) for _ in range(3000)]
    ks = np.array([p.K for p in ps])
    kmin, kmax = prof.gain_range
    assert ks.min() >= kmin and ks.max() <= kmax
    # log K uniform: mean of log K in the middle of the range
    assert abs(np.log(ks).mean() - 0.5 * (math.log(kmin) + math.log(kmax))) < 0.1
    resid = np.log([p.sigma_read for p in ps]) - (prof.sigma_tl.a * np.log(ks) + prof.sigma_tl.b)
    assert abs(resid.mean()) < 0.03 and abs(resid.std() / prof.sigma_tl.sigma - 1) < 0.08
    assert {p.tukey_lambda for p in ps} <= set(prof.tukey_lambdas)
    # ISO <-> K: fixing one gives the other
    p = sample_noise_params(prof, iso=800, rng=0)
    assert math.isclose(p.K, prof.iso_to_k(800))
    p = sample_noise_params(prof, K=5.0, rng=0)
    assert math.isclose(prof.iso_to_k(p.iso), 5.0, rel_tol=1e-6)
    # NLF phones: read noise from beta2 at the table ISOs
    s6 = load_profile("S6")
    q = sample_noise_params(s6, iso=800, rng=0)
    assert math.isclose(q.K, 3.696e-3 * 1023, rel_tol=1e-6)


def test_sensor_noise_module_batches() -> None:
    mod = SensorNoise("GP")
    x = torch.rand(3, 4, 16, 16) * 0.3
    out, params = mod(x, iso=[100, 800, 3200], generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and len(params) == 3
    assert params[0].K < params[1].K < params[2].K
    out2, _ = mod(x, iso=[100, 800, 3200], seed=0)
    assert torch.equal(out, out2)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_bad_inputs_raise_typed_errors() -> None:
    prof = load_profile("IP")
    p = NoiseParams.poisson_gaussian(1.0, 1.0)
    with pytest.raises(ShapeError):
        add_noise(np.zeros((3, 8, 8), np.float32), prof, p, seed=0)
    bad = np.zeros((4, 8, 8), np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(NonFiniteError):
        add_noise(bad, prof, p, seed=0)
    with pytest.raises(ConfigError):
        add_noise(np.zeros((4, 8, 8), np.float32), prof, p, seed=0, quantization="bogus")
    with pytest.raises(ConfigError):
        NoiseParams(K=0.0)
    with pytest.raises(ConfigError):
        sample_noise_params(prof, read_model="tukey", rng=0)  # NLF profiles are Gaussian


def test_pack_roundtrip_of_noise_geometry() -> None:
    """Noise generated on planes and on the mosaic agree on which pixel is which."""
    prof = load_profile("G4")  # BGGR
    det = replace(NoiseParams(K=1e-9), dsnu=1.0)
    a = add_noise(np.zeros((4, 8, 8), np.float32), prof, det, seed=0, output="dn", quantization="none")
    mosaic = unpack(a, prof.cfa)
    assert np.array_equal(pack(mosaic, prof.cfa), a)


def test_large_frames_same_noise_for_any_thread_count() -> None:
    """Big draws are chunked with derived generators; the result must not depend on threads."""
    prof = load_profile("CanonEOS5D4")
    params = sample_noise_params(prof, iso=6400, rng=1)
    clean = np.full((4, 512, 520), 0.01, np.float32)  # > 1 M values: chunked path, mixed Poisson
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = add_noise(clean, prof, params, ratio=10, seed=3)
        torch.set_num_threads(2)
        b = add_noise(clean, prof, params, ratio=10, seed=3)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(a, b)
