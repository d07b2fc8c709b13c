"""Classical baselines (issue 7): noise levels and the generalised Anscombe transform, BM3D
(optional extra), NL-means and wavelet tuned by J-invariance; the registry names of the
classical, per-image and self-supervised baselines."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rawadapt.baselines.base import Budget, Method, make_method, method_class
from rawadapt.baselines.noise_level import (
    NoiseLevel,
    PoolNoiseModel,
    estimate_poisson_gaussian,
    gat_forward,
    gat_inverse,
    gat_inverse_algebraic,
    pair_noise_level,
    profile_noise_level,
    sample_noise_level,
)
from rawadapt.data.sample import Sample
from rawadapt.errors import ConfigError, MissingDependencyError, ShapeError
from rawadapt.metrics import psnr
from tests.fixtures_data import smooth_image

OURS = ("bm3d", "nlm", "wavelet", "zsn2n", "dip", "nbr2nbr", "b2u")
A_RAW, B_RAW = 5e-3, 4e-4  # Poisson-Gaussian test noise (normalised units): ~25 dB on the test image
SIGMA_SRGB = 0.05


def noisy_sample(space: str, *, size: int = 32, width: int | None = None, seed: int = 0) -> Sample:
    """A smooth image with strong synthetic noise: Poisson-Gaussian (RAW) or Gaussian (sRGB)."""
    rng = np.random.default_rng(seed)
    c = 4 if space == "raw" else 3
    clean = smooth_image(rng, c, max(size, width or size))[:, :size, : (width or size)].copy()
    if space == "raw":
        noisy = A_RAW * rng.poisson(clean / A_RAW) + rng.normal(0.0, np.sqrt(B_RAW), clean.shape)
    else:
        noisy = clean + rng.normal(0.0, SIGMA_SRGB, clean.shape)
    return Sample(
        noisy=noisy.astype(np.float32),
        clean=clean,
        sensor="x",
        iso=800.0,
        space=space,
        sample_id=f"{space}-{seed}-{size}",
    ).validate()  # type: ignore[arg-type]


def gain_db(method: Method | np.ndarray, sample: Sample) -> float:
    """PSNR gain of a method's output (or of a given output) over the noisy input."""
    out = method if isinstance(method, np.ndarray) else method.denoise(sample)
    assert out.shape == sample.noisy.shape and out.dtype == np.float32
    return psnr(np.clip(out, 0, 1), sample.clean) - psnr(sample.noisy, sample.clean)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OURS)
def test_registry_names_resolve(name: str) -> None:
    cls = method_class(name)
    assert issubclass(cls, Method) and cls.name == name
    assert cls.reference and cls.description and cls.__doc__
    assert cls.uses_sources is False  # classical, per-image and self-supervised: target data only
    m = make_method(name, budget=Budget.preset("tiny"))
    assert m.budget.name == "tiny"


@pytest.mark.parametrize("name", OURS)
def test_unknown_option_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown options"):
        make_method(name, not_an_option=1)


# --------------------------------------------------------------------------------------------
# Generalised Anscombe transform
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("a,b", [(2e-3, 4e-6), (1e-2, 1e-4)])
def test_gat_exact_unbiased_inverse(a: float, b: float) -> None:
    """The inverse of E[f(z)] recovers x (Poisson-Gaussian z), also at a few photons, where the
    algebraic inverse is biased; the forward transform stabilises the variance to ~1."""
    rng = np.random.default_rng(0)
    level = NoiseLevel([a], [b])
    n = 200_000
    for photons in (2.0, 5.0, 20.0, 200.0):
        x = photons * a
        z = a * rng.poisson(photons, size=(1, 1, n)) + rng.normal(0.0, np.sqrt(b), size=(1, 1, n))
        f = gat_forward(z, level)
        ef = np.full((1, 1, 1), f.mean())
        exact = float(gat_inverse(ef, level)[0, 0, 0])
        algebraic = float(gat_inverse_algebraic(ef, level)[0, 0, 0])
        assert exact == pytest.approx(x, rel=0.03), photons
        assert abs(exact - x) <= abs(algebraic - x) + 1e-3 * x
        if photons >= 20:
            assert f.std() == pytest.approx(1.0, abs=0.03)
    # at 2 photons the algebraic inverse is off by > 10 %: the exact one is what makes it unbiased
    z = a * rng.poisson(2.0, size=(1, 1, n))
    ef = np.full((1, 1, 1), gat_forward(z, NoiseLevel([a], [0.0])).mean())
    assert abs(float(gat_inverse_algebraic(ef, NoiseLevel([a], [0.0]))[0, 0, 0]) - 2 * a) > 0.1 * 2 * a


def test_gat_round_trip_and_per_channel() -> None:
    level = NoiseLevel([1e-3, 2e-3, 2e-3, 4e-3], [1e-5, 2e-5, 2e-5, 0.0])
    x = np.random.default_rng(1).uniform(0.05, 0.9, size=(4, 5, 7))
    back = gat_inverse_algebraic(gat_forward(x, level), level)
    np.testing.assert_allclose(back, x, rtol=1e-9, atol=1e-12)
    with pytest.raises(ShapeError):
        gat_forward(np.zeros((3, 4, 4)), level)


def test_noise_level_validation() -> None:
    with pytest.raises(ConfigError):
        NoiseLevel([-1.0], [0.0])
    with pytest.raises(ConfigError):
        NoiseLevel([np.nan], [0.0])
    g = NoiseLevel.gaussian(0.1)
    assert g.mean_variance(np.ones((3, 2, 2))) == pytest.approx(0.01)


# --------------------------------------------------------------------------------------------
# Noise level sources
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("a,b", [(1e-3, 1e-5), (5e-3, 1e-4), (0.0, 4e-4)])
def test_blind_estimate_on_a_smooth_image(a: float, b: float) -> None:
    rng = np.random.default_rng(2)
    clean = smooth_image(rng, 4, 64).astype(np.float64)
    z = (a * rng.poisson(clean / a) if a > 0 else clean) + rng.normal(0.0, np.sqrt(b), clean.shape)
    est = estimate_poisson_gaussian(z)
    true = float((a * clean + b).mean())
    assert est.source == "image"
    assert est.mean_variance(clean) == pytest.approx(true, rel=0.25)
    assert estimate_poisson_gaussian(z, per_channel=True).a.shape == (4,)
    with pytest.raises(ShapeError):
        estimate_poisson_gaussian(np.zeros((4, 2, 2)))


def test_profile_noise_level_matches_the_simulator() -> None:
    """The profile's (a, b) at an ISO predict the variance of pairs the simulator makes."""
    from rawadapt.noise.model import add_noise, sample_noise_params

    clean = np.full((4, 64, 64), 0.2, dtype=np.float32)
    for name, iso, ratio in (("G4", 800.0, 1.0), ("SonyA7S2", 1600.0, 10.0)):
        params = sample_noise_params(name, iso=iso, rng=0, read_model="gaussian")
        noisy = add_noise(clean, name, params, ratio=ratio, seed=0, clip=False, fixed_pattern=False)
        level = profile_noise_level(name, iso, ratio)
        assert level.source == "profile" and level.a.shape == (4,)
        assert level.mean_variance(clean) == pytest.approx(float(np.var(noisy - clean)), rel=0.35)
    with pytest.raises(ConfigError):
        profile_noise_level("G4", -5.0)


def test_pool_model_and_sources() -> None:
    rng = np.random.default_rng(3)
    pool = []
    for i, iso in enumerate((200.0, 400.0, 800.0, 1600.0)):
        clean = smooth_image(rng, 4, 48)
        a, b = 1e-5 * iso, 1e-9 * iso**2
        noisy = np.clip(a * rng.poisson(clean / a) + rng.normal(0, np.sqrt(b), clean.shape), 0, 1)
        pool.append(Sample(noisy=noisy.astype(np.float32), clean=clean, sensor="x", iso=iso, sample_id=f"p{i}"))
        lvl = pair_noise_level(noisy, clean)
        assert lvl.mean_variance(clean) == pytest.approx(float((a * clean + b).mean()), rel=0.15)
    model = PoolNoiseModel.fit(pool)
    x = pool[0].clean
    assert model.at(600.0).mean_variance(x) == pytest.approx(float((6e-3 * x + 3.6e-4).mean()), rel=0.25)
    assert model.at(None).a[0] > 0  # unknown ISO: the pool median
    s = pool[0]
    assert sample_noise_level(s, "auto", pool=model).source == "pool"
    assert sample_noise_level(s, "auto").source == "image"
    with pytest.raises(ConfigError, match="fit"):
        sample_noise_level(s, "pool")
    with pytest.raises(ConfigError, match="noise_source"):
        sample_noise_level(s, "oracle")
    with pytest.raises(ConfigError, match="RAW only"):
        sample_noise_level(noisy_sample("srgb"), "profile")
    with pytest.raises(ConfigError):
        PoolNoiseModel.fit([s.with_arrays(s.noisy, None)])


# --------------------------------------------------------------------------------------------
# BM3D (optional extra)
# --------------------------------------------------------------------------------------------


def test_bm3d_missing_extra_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bm3d", None)  # `import bm3d` now raises ImportError
    from rawadapt.baselines.bm3d import BM3D, bm3d_available

    assert not bm3d_available()
    with pytest.raises(MissingDependencyError, match=r"pip install rawadapt\[bm3d\]"):
        BM3D().denoise(noisy_sample("raw"))


@pytest.fixture
def bm3d_extra() -> None:
    pytest.importorskip("bm3d", reason="optional extra 'bm3d' not installed (pip install rawadapt[bm3d])")


@pytest.mark.parametrize("space", ["raw", "srgb"])
def test_bm3d_lowers_error_and_is_deterministic(space: str, bm3d_extra: None) -> None:
    s = noisy_sample(space)
    m = make_method("bm3d", budget=Budget.preset("tiny"))
    out = m.denoise(s)
    assert gain_db(out, s) > 3.0
    np.testing.assert_array_equal(out, m.denoise(s))  # single-threaded aggregation: bit-exact


def test_bm3d_odd_and_tiny_sizes(bm3d_extra: None) -> None:
    m = make_method("bm3d", noise_source="image")
    for size, width in ((13, 21), (6, 5)):  # below the 8x8 block: padded and cropped back
        s = noisy_sample("raw", size=size, width=width)
        out = m.denoise(s)
        assert out.shape == s.noisy.shape and np.isfinite(out).all()


def test_bm3d_profile_source_needs_raw_and_iso(bm3d_extra: None) -> None:
    m = make_method("bm3d", noise_source="profile")
    with pytest.raises(ConfigError):
        m.denoise(noisy_sample("srgb"))
    s = noisy_sample("raw", size=16)
    s.sensor, s.iso = "G4", None
    with pytest.raises(ConfigError, match="ISO"):
        m.denoise(s)
    with pytest.raises(ConfigError, match="BM3D profile"):
        make_method("bm3d", bm3d_profile="fancy")


# --------------------------------------------------------------------------------------------
# NL-means and wavelet, calibrated by J-invariance
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nlm", "wavelet"])
@pytest.mark.parametrize("space", ["raw", "srgb"])
def test_calibrated_denoisers_lower_error(name: str, space: str) -> None:
    s = noisy_sample(space)
    m = make_method(name, budget=Budget.preset("tiny"))
    out = m.denoise(s)
    assert gain_db(out, s) > 2.0
    info = m.last_info
    assert info["params"] and len(info["losses"]) > 1  # the grid was scored
    np.testing.assert_array_equal(out, m.denoise(s))


@pytest.mark.parametrize("name", ["nlm", "wavelet"])
def test_calibrated_denoisers_odd_size_and_bad_input(name: str) -> None:
    m = make_method(name)
    s = noisy_sample("srgb", size=15, width=22)
    assert m.denoise(s).shape == (3, 15, 22)
    bad = Sample(noisy=np.zeros((2, 8, 8), np.float32), clean=None, sensor="x", space="raw")
    with pytest.raises(ShapeError):
        m.denoise(bad)
    with pytest.raises(ConfigError, match="calibration"):
        make_method(name, calibration="oracle")


def test_pool_calibration_uses_the_pairs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rawadapt.baselines.base import make_task
    from tests.fixtures_data import make_multisensor_dataset

    ds = make_multisensor_dataset(
        sensors=("a", "b"),
        per_sensor={"source": 1, "target": 2, "test": 1},
        size=24,
        space="srgb",
        gain_range=(4e-3, 8e-3),
        read_noise=0.02,
    )
    task = make_task("multisensor", "a", target_pairs=2, work_dir=tmp_path, dataset=ds)
    m = make_method("nlm", calibration="pool")
    m.run_fit(task)
    assert m.info()["pool_choice"] is not None and len(m.info()["pool_scores"]) == 12
    s = task.test[0]
    assert psnr(np.clip(m.denoise(s), 0, 1), s.clean) > psnr(s.noisy, s.clean)
