"""Harmful-data generators (ADL Table 5)."""

from __future__ import annotations

import numpy as np
import pytest

from rawadapt.data.base import PairDataset
from rawadapt.errors import ConfigError, ShapeError
from rawadapt.noise.harmful import HARMFUL1_SIGMA, HARMFUL2_MODES, make_harmful


@pytest.mark.parametrize("space", ["raw", "srgb"])
def test_harmful1_gaussian_sigma_30(space: str) -> None:
    ds = make_harmful("harmful1", n=3, size=64, space=space, seed=0)
    assert isinstance(ds, PairDataset) and len(ds) == 3 and ds.sensors == ["harmful1"]
    ch = 4 if space == "raw" else 3
    for s in ds:
        assert s.noisy.shape == s.clean.shape == (ch, 64, 64)
        assert s.space == space and s.sensor == "harmful1" and s.iso is not None
        assert np.isfinite(s.noisy).all() and s.noisy.min() >= 0 and s.noisy.max() <= 1
        mid = (s.clean > 0.15) & (s.clean < 0.85)  # away from the clipping at 0 and 1
        assert mid.sum() > 500
        sd = float(np.std((s.noisy - s.clean)[mid]))
        assert abs(sd / HARMFUL1_SIGMA - 1) < 0.08
    bright = np.mean([float(np.percentile(s.clean, 99.5)) for s in ds])
    assert bright > 0.6  # "bright clean images"


@pytest.mark.parametrize("space", ["raw", "srgb"])
def test_harmful2_misaligned_modes(space: str) -> None:
    ds = make_harmful("harmful2", n=6, size=48, space=space, seed=1)
    modes = [r.extra["mode"] for r in ds.records]
    assert modes == [HARMFUL2_MODES[i % 3] for i in range(6)]
    for s in ds:
        assert s.sensor == "harmful2" and s.noisy.shape == s.clean.shape
        assert s.iso is not None and s.iso > 0
        if s.extra["mode"] == "black":
            assert not s.clean.any()
        else:
            assert s.clean.any()
            # misaligned: the clean image does not explain the noisy one
            corr = np.corrcoef(s.noisy.ravel(), s.clean.ravel())[0, 1]
            assert corr < 0.9


def test_harmful_is_deterministic_and_uses_pool() -> None:
    a = make_harmful("harmful2", n=3, size=32, seed=5)
    b = make_harmful("harmful2", n=3, size=32, seed=5)
    c = make_harmful("harmful2", n=3, size=32, seed=6)
    assert np.array_equal(a[1].noisy, b[1].noisy) and np.array_equal(a[1].clean, b[1].clean)
    assert not np.array_equal(a[1].noisy, c[1].noisy)
    pool = [np.full((3, 40, 40), 0.5, np.float32), np.full((3, 50, 50), 0.25, np.float32)]
    h1 = make_harmful("harmful1", n=4, size=32, space="srgb", seed=0, clean_pool=pool)
    for s in h1:
        assert np.ptp(s.clean) < 1e-6  # flat pool images (brightened)
    with pytest.raises(ShapeError):
        make_harmful("harmful1", n=1, size=64, space="srgb", clean_pool=pool)[0]
    with pytest.raises(ConfigError):
        make_harmful("harmful3", n=1, size=32)
    with pytest.raises(ConfigError):
        make_harmful("harmful1", n=1, size=32, space="xyz")
