"""Per-sensor fixed-pattern noise fields (DSNU, PRNU, column offsets).

A sensor's pattern must be identical in every image of that sensor, whatever the image size,
and must follow the mosaic geometry. Drawing one array of the image's size from a generator
would tie values to that size, so the sensor plane is cut into fixed ``TILE x TILE`` tiles of
full-resolution pixels and each tile is drawn by its own ``torch.Generator`` seeded with a hash
(SplitMix64) of ``(sensor seed, field, tile row, tile column)``: a pixel of a sensor always gets
the same value, a crop at another origin sees the sensor's pattern at that place, and different
seeds give independent patterns. The fields are standard normal and are packed into canonical
planes with the sensor's CFA (:func:`rawadapt.io.bayer.pack`). Results are cached.
"""

from __future__ import annotations

import functools

import numpy as np

from rawadapt.io.bayer import pack, plane_offsets

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)

#: field identifiers mixed into the hash key
FIELDS = {"dsnu": 1, "prnu": 2, "column": 3}


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, elementwise on a uint64 array (in place where possible)."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x ^= x >> _S30
        x *= _M1
        x ^= x >> _S27
        x *= _M2
        x ^= x >> _S31
    return x


def _key(seed: int, field: int) -> np.uint64:
    k = np.array(
        [(int(seed) & 0xFFFFFFFFFFFFFFFF) ^ (int(field) * 0x632BE59BD9B4E019 & 0xFFFFFFFFFFFFFFFF)], dtype=np.uint64
    )
    return _splitmix64(k)[0]


def hash_normal(seed: int, field: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Standard-normal values for every ``(row, col)`` of the grid ``rows x cols``.

    Deterministic in ``(seed, field, row, col)`` only. Box-Muller on the two 32-bit halves of a
    64-bit hash.

    Returns
    -------
    float32 array of shape ``(len(rows), len(cols))``.
    """
    r = np.asarray(rows, dtype=np.int64).astype(np.uint64)
    c = np.asarray(cols, dtype=np.int64).astype(np.uint64)
    idx = (r[:, None] << _S32) | (c[None, :] & np.uint64(0xFFFFFFFF))
    idx ^= _key(seed, field)
    z = _splitmix64(idx)
    u1 = ((z >> _S32).astype(np.float64) + 0.5) * (1.0 / 4294967296.0)
    u2 = ((z & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) * (1.0 / 4294967296.0)
    out = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return out.astype(np.float32)


#: tile side (full-resolution pixels) of the fixed-pattern fields
TILE = 128
_MASK64 = 0xFFFFFFFFFFFFFFFF


def _mix_int(x: int) -> int:
    """SplitMix64 on a Python int (for a handful of tile seeds)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def tile_seed(seed: int, field: int, ty: int, tx: int) -> int:
    """63-bit seed of one pattern tile."""
    h = _mix_int((int(seed) & _MASK64) ^ _mix_int(int(field)))
    h = _mix_int(h ^ (int(ty) & 0xFFFFFFFF))
    h = _mix_int(h ^ ((int(tx) & 0xFFFFFFFF) << 1))
    return h >> 1


@functools.lru_cache(maxsize=4)
def _mosaic_field(seed: int, field: int, row0: int, col0: int, height: int, width: int) -> np.ndarray:
    import torch

    ty0, tx0 = row0 // TILE, col0 // TILE
    ty1, tx1 = (row0 + height - 1) // TILE, (col0 + width - 1) // TILE
    big = torch.empty(((ty1 - ty0 + 1) * TILE, (tx1 - tx0 + 1) * TILE), dtype=torch.float32)
    gen = torch.Generator()
    for ty in range(ty0, ty1 + 1):  # a loop over tiles, not pixels
        for tx in range(tx0, tx1 + 1):
            gen.manual_seed(tile_seed(seed, field, ty, tx))
            r, c = (ty - ty0) * TILE, (tx - tx0) * TILE
            big[r : r + TILE, c : c + TILE] = torch.randn((TILE, TILE), generator=gen)
    r0, c0 = row0 - ty0 * TILE, col0 - tx0 * TILE
    arr = np.ascontiguousarray(big[r0 : r0 + height, c0 : c0 + width].numpy())
    arr.setflags(write=False)
    return arr


@functools.lru_cache(maxsize=12)
def _column_field(seed: int, col0: int, width: int) -> np.ndarray:
    arr = hash_normal(seed, FIELDS["column"], np.zeros(1, dtype=np.int64), np.arange(col0, col0 + width))[0]
    arr.setflags(write=False)
    return arr


@functools.lru_cache(maxsize=12)
def pattern_planes(seed: int, field: str, cfa: str, h: int, w: int, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A per-pixel standard-normal field packed into canonical planes ``(4, h, w)``.

    Parameters
    ----------
    seed
        The sensor's fixed-pattern seed.
    field
        ``"dsnu"`` or ``"prnu"``.
    cfa
        The image's CFA phase (which full-resolution pixel each plane sample is).
    h, w
        Packed size; the mosaic covered is ``2h x 2w``.
    origin
        Full-resolution ``(row, col)`` of the image's top-left pixel on the sensor.

    Returns
    -------
    Read-only float32 array (cached: copy it before writing).
    """
    mosaic = _mosaic_field(int(seed), FIELDS[field], int(origin[0]), int(origin[1]), 2 * int(h), 2 * int(w))
    out = np.ascontiguousarray(pack(mosaic, cfa))
    out.setflags(write=False)
    return out


def column_planes(seed: int, cfa: str, w: int, origin_col: int = 0) -> np.ndarray:
    """One standard-normal offset per full-resolution column, as canonical planes ``(4, 1, w)``."""
    cols = _column_field(int(seed), int(origin_col), 2 * int(w))
    return np.stack([cols[dx::2][:w] for _, dx in plane_offsets(cfa)])[:, None, :]


def row_parity(cfa: str) -> tuple[int, int, int, int]:
    """Full-resolution row parity (0 or 1) of the canonical planes R, G1, G2, B.

    R and G1 always share a mosaic row, G2 and B share the other one.
    """
    return tuple(dy for dy, _ in plane_offsets(cfa))  # type: ignore[return-value]
