"""PatchSampler shapes, determinism, exact resume, and CFA-safe augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rawadapt.data.patches import PatchSampler, augment_pair
from rawadapt.data.sample import Sample
from rawadapt.errors import ShapeError
from rawadapt.io.bayer import (
    BAYER_PATTERNS,
    cfa_after,
    image_dihedral,
    pack,
    packed_dihedral,
    unpack,
)


def _samples(space: str, n: int = 3, h: int = 21, w: int = 33, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    c = 4 if space == "raw" else 3
    out = []
    for i in range(n):
        clean = rng.random((c, h + i, w + 2 * i)).astype(np.float32)
        out.append(
            Sample(
                noisy=clean + 0.01,
                clean=clean,
                sensor=f"s{i % 2}",
                iso=100.0 * (i + 1),
                space=space,
                cfa="GRBG" if space == "raw" else None,
                sample_id=f"id{i}",
            )
        )
    return out


@pytest.mark.parametrize("space,channels", [("raw", 4), ("srgb", 3)])
@pytest.mark.parametrize("patch", [8, 7])  # odd patch sizes work too
def test_shapes(space: str, channels: int, patch: int) -> None:
    sampler = PatchSampler(_samples(space), patch=patch, batch=5, seed=1)
    b = sampler.draw()
    assert tuple(b.noisy.shape) == (5, channels, patch, patch) == tuple(b.clean.shape)
    assert b.noisy.dtype == torch.float32 and len(b.sensor) == 5 and b.iso.shape == (5,)
    assert set(b.sample_ids) <= {"id0", "id1", "id2"}
    torch.testing.assert_close(b.noisy - b.clean, torch.full_like(b.noisy, 0.01), atol=1e-6, rtol=0)


def test_patch_clamped_to_smallest_sample_and_odd_sizes() -> None:
    # RAW: one packed pixel is kept in reserve for the Bayer unification crop
    sampler = PatchSampler(_samples("raw", h=9, w=13), patch=64, batch=2, seed=0)
    assert sampler.patch == 8
    assert tuple(sampler.draw().noisy.shape[-2:]) == (8, 8)
    plain = PatchSampler(_samples("raw", h=9, w=13), patch=64, batch=2, seed=0, unify=False)
    assert plain.patch == 9 and tuple(plain.draw().noisy.shape[-2:]) == (9, 9)
    srgb = PatchSampler(_samples("srgb", h=9, w=13), patch=64, batch=2, seed=0)
    assert srgb.patch == 9


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_raw_patches_are_contiguous_rggb_windows(cfa: str) -> None:
    """Every augmented RAW patch, unpacked as RGGB, is a contiguous (flipped/transposed) window
    of the original mosaic with a RED pixel at its origin: one phase whatever CFA or augmentation."""
    h, w = 12, 16
    yy, xx = np.mgrid[0 : 2 * h, 0 : 2 * w]
    mosaic = (yy * 1000 + xx).astype(np.float32)
    colour = np.zeros((2 * h, 2 * w), dtype="<U1")
    for (dy, dx), ch in zip([(0, 0), (0, 1), (1, 0), (1, 1)], cfa):
        colour[dy::2, dx::2] = ch
    planes = pack(mosaic, cfa)
    sample = Sample(noisy=planes, clean=planes.copy(), sensor="s", iso=100.0, cfa=cfa, sample_id="m")
    sampler = PatchSampler([sample], patch=5, batch=16, seed=3)
    for patch in sampler.draw().clean.numpy():
        win = unpack(patch, "RGGB")
        ddx, ddy = np.diff(win, axis=1), np.diff(win, axis=0)
        assert len(np.unique(ddx)) == 1 and len(np.unique(ddy)) == 1
        assert {abs(float(ddx[0, 0])), abs(float(ddy[0, 0]))} == {1.0, 1000.0}
        y0, x0 = divmod(int(win[0, 0]), 1000)
        assert colour[y0, x0] == "R"
        # the green right of red (G1) shares red's mosaic row in the original, as it must
        y1, _ = divmod(int(win[0, 1]), 1000)
        assert colour[y1, divmod(int(win[0, 1]), 1000)[1]] == "G"


def test_determinism_by_seed() -> None:
    a = PatchSampler(_samples("raw"), patch=6, batch=4, seed=5).draw()
    b = PatchSampler(_samples("raw"), patch=6, batch=4, seed=5).draw()
    c = PatchSampler(_samples("raw"), patch=6, batch=4, seed=6).draw()
    torch.testing.assert_close(a.noisy, b.noisy, atol=0, rtol=0)
    assert a.sample_ids == b.sample_ids
    assert not torch.equal(a.noisy, c.noisy)


def test_resume_gives_the_identical_next_batch() -> None:
    s1 = PatchSampler(_samples("srgb"), patch=5, batch=3, seed=11)
    s1.draw()
    state = json.loads(json.dumps(s1.state_dict()))  # survives a JSON round trip (checkpoints)
    expected = s1.draw()
    s2 = PatchSampler(_samples("srgb"), patch=5, batch=3, seed=999)
    s2.load_state_dict(state)
    got = s2.draw()
    torch.testing.assert_close(got.noisy, expected.noisy, atol=0, rtol=0)
    torch.testing.assert_close(got.clean, expected.clean, atol=0, rtol=0)
    assert got.sample_ids == expected.sample_ids


def test_sampler_refusals() -> None:
    with pytest.raises(ShapeError):
        PatchSampler([], patch=4, batch=1)
    s = _samples("raw")[0]
    with pytest.raises(ShapeError, match="clean"):
        PatchSampler([Sample(noisy=s.noisy, clean=None, sensor="x")], patch=4, batch=1)
    with pytest.raises(ShapeError, match="mix"):
        PatchSampler(_samples("raw")[:1] + _samples("srgb")[:1], patch=4, batch=1)


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
@pytest.mark.parametrize("code", range(8))
def test_augmentation_keeps_cfa(cfa: str, code: int) -> None:
    """augment_pair on packed planes == pack(transformed mosaic, new cfa)."""
    rng = np.random.default_rng(code)
    mosaic = rng.integers(0, 1024, (10, 14)).astype(np.float32)
    planes = pack(mosaic, cfa)
    noisy, clean, new_cfa = augment_pair(planes, planes + 1, "raw", code, cfa)
    # transform the mosaic itself: transpose first, then flips (the coding of packed_dihedral)
    m = mosaic.T if code & 4 else mosaic
    m = m[:, ::-1] if code & 1 else m
    m = m[::-1, :] if code & 2 else m
    assert new_cfa == cfa_after(cfa, hflip=bool(code & 1), vflip=bool(code & 2), transpose=bool(code & 4))
    np.testing.assert_array_equal(noisy, pack(np.ascontiguousarray(m), new_cfa))
    np.testing.assert_array_equal(clean, noisy + 1)
    np.testing.assert_array_equal(unpack(noisy, new_cfa), m)
    # colours are preserved: the red plane holds exactly the red pixels of the original
    np.testing.assert_array_equal(np.sort(noisy[0].ravel()), np.sort(planes[0].ravel()))


def test_augmentation_torch_matches_numpy() -> None:
    planes = np.random.default_rng(0).random((2, 4, 6, 8)).astype(np.float32)
    for code in range(8):
        a, cfa_a = packed_dihedral(planes, "BGGR", code)
        b, cfa_b = packed_dihedral(torch.from_numpy(planes), "BGGR", code)
        np.testing.assert_array_equal(a, b.numpy())
        assert cfa_a == cfa_b


def test_srgb_augmentation_is_plain_dihedral() -> None:
    img = np.random.default_rng(1).random((3, 5, 7)).astype(np.float32)
    for code in range(8):
        n, c, cfa = augment_pair(img, img * 2, "srgb", code)
        np.testing.assert_array_equal(n, image_dihedral(img, code))
        np.testing.assert_array_equal(c, 2 * n)
        assert cfa is None
    n, _, _ = augment_pair(img, None, "srgb", 4)
    assert n.shape == (3, 7, 5)
