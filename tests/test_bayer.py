"""Canonical packing: exact round trips, colour identities under dihedral transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rawadapt.errors import CFAError, ShapeError
from rawadapt.io.bayer import (
    BAYER_PATTERNS,
    cfa_after,
    denormalize_levels,
    image_dihedral,
    normalize_levels,
    pack,
    packed_dihedral,
    plane_offsets,
    unpack,
)

COLOUR = {"R": 0, "G": 1, "B": 2}
CELL = [(0, 0), (0, 1), (1, 0), (1, 1)]


def _colour_map(cfa: str, h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), int)
    for (dy, dx), ch in zip(CELL, cfa):
        m[dy::2, dx::2] = COLOUR[ch]
    return m


def _mosaic_op(a: np.ndarray, code: int) -> np.ndarray:
    if code & 4:
        a = a.T
    if code & 1:
        a = a[:, ::-1]
    if code & 2:
        a = a[::-1, :]
    return np.ascontiguousarray(a)


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
@pytest.mark.parametrize("shape", [(6, 8), (7, 9), (2, 2), (11, 4)])
def test_pack_unpack_round_trip(cfa: str, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    m = rng.integers(0, 2**14, shape).astype(np.uint16)
    p = pack(m, cfa)
    h, w = shape[0] // 2, shape[1] // 2
    assert p.shape == (4, h, w) and p.dtype == np.uint16
    # odd sizes: the last row/column is dropped, the rest comes back exactly
    np.testing.assert_array_equal(unpack(p, cfa), m[: 2 * h, : 2 * w])


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_planes_hold_their_colour(cfa: str) -> None:
    p = pack(_colour_map(cfa, 8, 10), cfa)
    assert [int(np.unique(p[k])[0]) for k in range(4)] == [0, 1, 1, 2]
    # G1 shares a row with R, G2 with B
    (ry, _), (g1y, _), (g2y, _), (by, _) = plane_offsets(cfa)
    assert g1y == ry and g2y == by


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
@pytest.mark.parametrize("code", range(8))
def test_packed_dihedral_equals_mosaic_transform(cfa: str, code: int) -> None:
    rng = np.random.default_rng(code)
    m = rng.random((8, 12)).astype(np.float32)
    new_cfa = cfa_after(cfa, hflip=bool(code & 1), vflip=bool(code & 2), transpose=bool(code & 4))
    # the CFA string after the transform is what the transformed mosaic really has
    tm = _mosaic_op(_colour_map(cfa, 8, 12), code)
    np.testing.assert_array_equal(tm, _colour_map(new_cfa, *tm.shape))
    got, got_cfa = packed_dihedral(pack(m, cfa), cfa, code)
    assert got_cfa == new_cfa
    np.testing.assert_array_equal(got, pack(_mosaic_op(m, code), new_cfa))


def test_transpose_swaps_greens() -> None:
    p = np.stack([np.full((3, 3), v, np.float32) for v in (1, 2, 3, 4)])
    t, cfa = packed_dihedral(p, "RGGB", 4)
    assert [float(t[k, 0, 0]) for k in range(4)] == [1, 3, 2, 4] and cfa == "RGGB"
    f, cfa = packed_dihedral(p, "RGGB", 1)
    assert [float(f[k, 0, 0]) for k in range(4)] == [1, 2, 3, 4] and cfa == "GRBG"


def test_torch_and_numpy_agree() -> None:
    m = np.arange(96, dtype=np.float32).reshape(8, 12)
    for cfa in BAYER_PATTERNS:
        tp = pack(torch.from_numpy(m), cfa)
        np.testing.assert_array_equal(tp.numpy(), pack(m, cfa))
        for code in range(8):
            a, _ = packed_dihedral(tp, cfa, code)
            b, _ = packed_dihedral(pack(m, cfa), cfa, code)
            np.testing.assert_array_equal(a.numpy(), b)
        np.testing.assert_array_equal(image_dihedral(torch.from_numpy(m), 5).numpy(), image_dihedral(m, 5))


def test_errors() -> None:
    with pytest.raises(CFAError):
        pack(np.zeros((4, 4)), "RGBX")
    with pytest.raises(ShapeError):
        unpack(np.zeros((3, 2, 2)), "RGGB")
    with pytest.raises(ShapeError):
        pack(np.zeros((1, 5)), "RGGB")
    with pytest.raises(ValueError):
        packed_dihedral(np.zeros((4, 2, 2)), "RGGB", 8)


def test_levels_round_trip() -> None:
    rng = np.random.default_rng(0)
    black = [512, 510, 514, 511]
    dn = rng.integers(512, 16384, (4, 5, 7)).astype(np.uint16)
    norm = normalize_levels(dn, black, 16383)
    assert norm.dtype == np.float32 and norm.min() >= 0 and norm.max() <= 1
    np.testing.assert_array_equal(denormalize_levels(norm, black, 16383), dn)
    below = normalize_levels(np.full((4, 1, 1), 500, np.uint16), 512, 16383, clip=False)
    assert (below < 0).all()
    with pytest.raises(ShapeError):
        normalize_levels(dn, [1, 2, 3], 16383)


from rawadapt.io.bayer import deunify_pad, rggb_shift, unify_crop, unify_pad  # noqa: E402


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_unify_crop_equals_mosaic_crop(cfa: str) -> None:
    rng = np.random.default_rng(2)
    m = rng.random((10, 14)).astype(np.float32)
    dy, dx = rggb_shift(cfa)
    ref = pack(m[dy : 10 - dy, dx : 14 - dx], "RGGB")
    got = unify_crop(pack(m, cfa), cfa)
    np.testing.assert_array_equal(got, ref)
    # the result really is RGGB phase: each plane holds only its colour
    col = pack(_colour_map(cfa, 10, 14)[dy : 10 - dy, dx : 14 - dx], "RGGB")
    assert [set(np.unique(col[k]).tolist()) for k in range(4)] == [{0}, {1}, {1}, {2}]
    np.testing.assert_array_equal(unify_crop(torch.from_numpy(pack(m, cfa)), cfa).numpy(), ref)


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_unify_pad_is_exact_and_invertible(cfa: str) -> None:
    rng = np.random.default_rng(3)
    p = rng.random((2, 4, 5, 7)).astype(np.float32)
    u = unify_pad(p, cfa)
    dy, dx = rggb_shift(cfa)
    assert u.shape == (2, 4, 5 + dy, 7 + dx)
    # the padded mosaic, unpacked as RGGB, contains the original mosaic untouched
    m = unpack(p, cfa)
    mu = unpack(u, "RGGB")
    np.testing.assert_array_equal(mu[..., dy : dy + 10, dx : dx + 14], m)
    # every padded pixel has the colour the RGGB pattern expects (a 1-px reflection keeps the CFA)
    colours = _colour_map(cfa, 10, 14)
    padded = np.pad(colours, ((dy, dy), (dx, dx)), mode="reflect")
    np.testing.assert_array_equal(padded, _colour_map("RGGB", *padded.shape))
    np.testing.assert_array_equal(deunify_pad(u, cfa), p)
    t = torch.from_numpy(p)
    assert torch.equal(deunify_pad(unify_pad(t, cfa), cfa), t)
