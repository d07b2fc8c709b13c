"""Bayer mosaics <-> 4 packed planes in ONE canonical order, whatever the CFA.

Canonical plane order
---------------------
``R, G1, G2, B`` where ``G1`` is the green pixel that shares a ROW with red and ``G2`` the green
that shares a row with blue. A 2x2 CFA cell is written as four letters in row-major order
(``"RGGB"``: R at (0, 0), G at (0, 1), G at (1, 0), B at (1, 1)); the four Bayer patterns are
``RGGB``, ``BGGR``, ``GRBG`` and ``GBRG``.

Packing a mosaic of size H x W gives planes of size (H // 2) x (W // 2): an odd last row or
column is dropped (the top-left phase, hence the CFA string, is kept). :func:`unpack` is the
exact inverse for even-sized mosaics.

The packed planes of two files with different CFAs carry the same colours in the same plane
order, but their half-pixel phases differ (e.g. in BGGR red sits at (1, 1) of the cell). That
phase is what the ``cfa`` string attached to a packed image records; dihedral transforms
(:func:`packed_dihedral`) update it, and a transpose swaps G1 and G2 (a green in red's row ends up
in red's column, i.e. in blue's row).

Works on NumPy arrays and torch tensors alike (the last two axes are the image axes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from rawadapt.errors import CFAError, ShapeError

CANONICAL_PLANES: tuple[str, str, str, str] = ("R", "G1", "G2", "B")
BAYER_PATTERNS: tuple[str, str, str, str] = ("RGGB", "BGGR", "GRBG", "GBRG")

ArrayT = TypeVar("ArrayT")


def normalize_cfa(cfa: str) -> str:
    """Validate a CFA string and return it upper-case.

    Raises
    ------
    CFAError
        If ``cfa`` is not one of ``RGGB``, ``BGGR``, ``GRBG``, ``GBRG``.
    """
    c = str(cfa).strip().upper()
    if c not in BAYER_PATTERNS:
        raise CFAError(f"unknown CFA pattern {cfa!r}; expected one of {', '.join(BAYER_PATTERNS)}")
    return c


def plane_offsets(cfa: str) -> tuple[tuple[int, int], ...]:
    """Offsets ``(dy, dx)`` inside the 2x2 cell of the canonical planes R, G1, G2, B.

    Examples
    --------
    >>> plane_offsets("GRBG")
    ((0, 1), (0, 0), (1, 1), (1, 0))
    """
    c = normalize_cfa(cfa)
    pos = [(0, 0), (0, 1), (1, 0), (1, 1)]
    r = pos[c.index("R")]
    b = pos[c.index("B")]
    greens = [pos[i] for i, ch in enumerate(c) if ch == "G"]
    g1 = next(g for g in greens if g[0] == r[0])
    g2 = next(g for g in greens if g[0] == b[0])
    return (r, g1, g2, b)


def _stack(planes: list[Any]) -> Any:
    first = planes[0]
    if isinstance(first, np.ndarray):
        return np.stack(planes, axis=-3)
    import torch

    return torch.stack(planes, dim=-3)


def pack(mosaic: ArrayT, cfa: str) -> ArrayT:
    """Pack a Bayer mosaic ``(..., H, W)`` into canonical planes ``(..., 4, H//2, W//2)``.

    Parameters
    ----------
    mosaic
        NumPy array or torch tensor; the last two axes are rows and columns.
    cfa
        The mosaic's pattern at its top-left pixel, e.g. ``"RGGB"``.

    Returns
    -------
    Planes in the order R, G1, G2, B. An odd last row or column is dropped.
    """
    shape = tuple(mosaic.shape)  # type: ignore[attr-defined]
    if len(shape) < 2:
        raise ShapeError(f"a mosaic needs at least 2 dimensions, got shape {shape}")
    h, w = shape[-2] // 2 * 2, shape[-1] // 2 * 2
    if h == 0 or w == 0:
        raise ShapeError(f"mosaic of shape {shape} is too small to pack (needs at least 2x2)")
    m = mosaic[..., :h, :w]  # type: ignore[index]
    return _stack([m[..., dy::2, dx::2] for dy, dx in plane_offsets(cfa)])


def unpack(planes: ArrayT, cfa: str) -> ArrayT:
    """Inverse of :func:`pack`: canonical planes ``(..., 4, h, w)`` -> mosaic ``(..., 2h, 2w)``."""
    shape = tuple(planes.shape)  # type: ignore[attr-defined]
    if len(shape) < 3 or shape[-3] != 4:
        raise ShapeError(f"packed RAW needs 4 planes on axis -3, got shape {shape}")
    h, w = shape[-2], shape[-1]
    out_shape = shape[:-3] + (2 * h, 2 * w)
    if isinstance(planes, np.ndarray):
        out: Any = np.empty(out_shape, dtype=planes.dtype)
    else:
        import torch

        out = torch.empty(out_shape, dtype=planes.dtype, device=planes.device)  # type: ignore[attr-defined]
    for k, (dy, dx) in enumerate(plane_offsets(cfa)):
        out[..., dy::2, dx::2] = planes[..., k, :, :]  # type: ignore[index]
    return out


# --------------------------------------------------------------------------------------------
# Dihedral transforms that keep colour identities right.
# --------------------------------------------------------------------------------------------


def _cfa_grid(cfa: str) -> list[list[str]]:
    c = normalize_cfa(cfa)
    return [[c[0], c[1]], [c[2], c[3]]]


def _grid_cfa(g: list[list[str]]) -> str:
    return g[0][0] + g[0][1] + g[1][0] + g[1][1]


def cfa_after(cfa: str, *, hflip: bool = False, vflip: bool = False, transpose: bool = False) -> str:
    """The CFA at the top-left of an EVEN-sized mosaic after a transpose then flips.

    The transpose (if any) is applied first, then the horizontal and vertical flips.
    """
    g = _cfa_grid(cfa)
    if transpose:
        g = [[g[0][0], g[1][0]], [g[0][1], g[1][1]]]
    if hflip:
        g = [[g[0][1], g[0][0]], [g[1][1], g[1][0]]]
    if vflip:
        g = [g[1], g[0]]
    return _grid_cfa(g)


def _flip(x: Any, axis: int) -> Any:
    if isinstance(x, np.ndarray):
        return np.flip(x, axis=axis)
    return x.flip(axis)


def _swap_last2(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return np.swapaxes(x, -1, -2)
    return x.transpose(-1, -2)


def dihedral_code(*, hflip: bool, vflip: bool, transpose: bool) -> int:
    """Encode a dihedral transform as an int 0..7 (bit0 hflip, bit1 vflip, bit2 transpose)."""
    return int(hflip) | (int(vflip) << 1) | (int(transpose) << 2)


def packed_dihedral(planes: ArrayT, cfa: str | None, code: int) -> tuple[ArrayT, str | None]:
    """Apply one of the 8 dihedral transforms to canonical packed planes ``(..., 4, h, w)``.

    Equivalent to transforming the underlying mosaic and re-packing it with its new CFA: each
    plane is transposed/flipped and, for a transpose, G1 and G2 are swapped. The returned CFA
    is the new top-left phase (``None`` stays ``None``).

    Parameters
    ----------
    planes
        Packed RAW, NumPy or torch.
    cfa
        The packed image's CFA phase, or None if unknown.
    code
        0..7: bit 0 horizontal flip, bit 1 vertical flip, bit 2 transpose (applied first).
    """
    if not 0 <= int(code) <= 7:
        raise ValueError(f"dihedral code must be in 0..7, got {code}")
    hflip, vflip, transpose = bool(code & 1), bool(code & 2), bool(code & 4)
    shape = tuple(planes.shape)  # type: ignore[attr-defined]
    if len(shape) < 3 or shape[-3] != 4:
        raise ShapeError(f"packed RAW needs 4 planes on axis -3, got shape {shape}")
    x: Any = planes
    if transpose:
        x = _swap_last2(x)
        x = x[..., [0, 2, 1, 3], :, :]
    if hflip:
        x = _flip(x, -1)
    if vflip:
        x = _flip(x, -2)
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(x)
    else:
        x = x.contiguous()
    new_cfa = None if cfa is None else cfa_after(cfa, hflip=hflip, vflip=vflip, transpose=transpose)
    return x, new_cfa


def image_dihedral(image: ArrayT, code: int) -> ArrayT:
    """Apply a dihedral transform (same coding as :func:`packed_dihedral`) to any ``(..., H, W)``
    image without colour bookkeeping (sRGB planes, masks)."""
    if not 0 <= int(code) <= 7:
        raise ValueError(f"dihedral code must be in 0..7, got {code}")
    x: Any = image
    if code & 4:
        x = _swap_last2(x)
    if code & 1:
        x = _flip(x, -1)
    if code & 2:
        x = _flip(x, -2)
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(x)
    else:
        x = x.contiguous()
    return x


# --------------------------------------------------------------------------------------------
# Levels
# --------------------------------------------------------------------------------------------


def normalize_levels(
    planes: np.ndarray,
    black_level: float | Sequence[float] | np.ndarray,
    white_level: float,
    *,
    clip: bool = True,
) -> np.ndarray:
    """Map packed DN planes to [0, 1]: ``(x - black) / (white - black)`` per canonical plane.

    Parameters
    ----------
    planes
        ``(4, h, w)`` (or ``(..., 4, h, w)``) packed values in digital numbers.
    black_level
        One value, or four in canonical plane order (R, G1, G2, B).
    white_level
        Saturation level in DN.
    clip
        Clip to [0, 1] (default). Unclipped values keep negative noise below black.
    """
    black = np.asarray(black_level, dtype=np.float32).reshape(-1)
    if black.size == 1:
        black = np.repeat(black, 4)
    if black.size != 4:
        raise ShapeError(f"black_level needs 1 or 4 values, got {black.size}")
    span = np.float32(white_level) - black
    if np.any(span <= 0):
        raise ShapeError(f"white level {white_level} must exceed black levels {black.tolist()}")
    out = (planes.astype(np.float32) - black[:, None, None]) / span[:, None, None]
    if clip:
        np.clip(out, 0.0, 1.0, out=out)
    return out


def denormalize_levels(
    planes: np.ndarray,
    black_level: float | list[float] | tuple[float, ...] | np.ndarray,
    white_level: float,
    *,
    dtype: Any = np.uint16,
) -> np.ndarray:
    """Inverse of :func:`normalize_levels`: [0, 1] planes back to DN (rounded, clipped to the
    dtype's range when it is an integer type)."""
    black = np.asarray(black_level, dtype=np.float64).reshape(-1)
    if black.size == 1:
        black = np.repeat(black, 4)
    span = float(white_level) - black
    if np.issubdtype(np.dtype(dtype), np.integer) and np.dtype(dtype).itemsize <= 2:
        # float32 in place (a third of float64's time on a 12 MP frame): DN <= 65535 needs 16 of
        # float32's 24 mantissa bits, so x * span + black lands within ~0.01 of the integer the
        # forward normalisation came from and rint recovers it exactly
        info = np.iinfo(dtype)
        dn32 = np.asarray(planes, dtype=np.float32).copy()
        dn32 *= span.astype(np.float32)[:, None, None]
        dn32 += black.astype(np.float32)[:, None, None]
        np.rint(dn32, out=dn32)
        np.clip(dn32, info.min, info.max, out=dn32)
        return dn32.astype(dtype)
    dn = planes.astype(np.float64) * span[:, None, None] + black[:, None, None]
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(dn), info.min, info.max).astype(dtype)
    return dn.astype(dtype)


# --------------------------------------------------------------------------------------------
# Bayer pattern unification (Liu et al., "Learning Raw Image Denoising with Bayer Pattern
# Unification and Bayer Preserving Augmentation", CVPRW 2019)
# --------------------------------------------------------------------------------------------
#
# Packed planes keep colour identities whatever the CFA, but not their sub-pixel PHASE: in RGGB
# red sits at (0, 0) of the cell, in BGGR at (1, 1). A network fed mixed phases (several sensors,
# or flips/transposes, which change the phase) cannot learn the exact inter-plane geometry, which
# costs PSNR at edges (measured: +0.6 dB on synth G4 with a single phase). rawadapt therefore
# feeds RAW models planes in ONE phase, RGGB: training patches are cropped by one mosaic
# row/column where needed (`unify_crop`), images at inference are reflect-padded by one mosaic
# row/column (`unify_pad`, exact: the CFA has period 2, so a 1-pixel reflection keeps every
# colour in place) and the padding is removed afterwards (`deunify_pad`).

RGGB_OFFSETS: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (1, 0), (1, 1))  # R, G1, G2, B in RGGB


def rggb_shift(cfa: str) -> tuple[int, int]:
    """Mosaic rows/columns ``(dy, dx)`` to remove at the top/left so that the CFA reads RGGB.

    Examples
    --------
    >>> [rggb_shift(c) for c in ("RGGB", "GRBG", "GBRG", "BGGR")]
    [(0, 0), (0, 1), (1, 0), (1, 1)]
    """
    return plane_offsets(cfa)[0]


def unify_crop(planes: ArrayT, cfa: str) -> ArrayT:
    """Packed planes of any phase -> RGGB phase by dropping one mosaic row/column at each side
    where needed: ``(..., 4, h, w)`` -> ``(..., 4, h - dy, w - dx)``.

    Equivalent to ``pack(unpack(planes, cfa)[..., dy:2h-dy, dx:2w-dx], "RGGB")``, done as
    per-plane slices (no unpacking). Used on training patches.
    """
    dy, dx = rggb_shift(cfa)
    if dy == 0 and dx == 0:
        return planes
    shape = tuple(planes.shape)  # type: ignore[attr-defined]
    if len(shape) < 3 or shape[-3] != 4:
        raise ShapeError(f"packed RAW needs 4 planes on axis -3, got shape {shape}")
    h, w = shape[-2] - dy, shape[-1] - dx
    if h < 1 or w < 1:
        raise ShapeError(f"packed image of shape {shape} is too small to unify")
    out = []
    for k, (oy, ox) in enumerate(RGGB_OFFSETS):
        sy, sx = (oy + dy) // 2, (ox + dx) // 2
        out.append(planes[..., k, sy : sy + h, sx : sx + w])  # type: ignore[index]
    return _stack(out)


def _pad_mosaic(m: Any, dy: int, dx: int) -> Any:
    if isinstance(m, np.ndarray):
        pad = [(0, 0)] * (m.ndim - 2) + [(dy, dy), (dx, dx)]
        return np.pad(m, pad, mode="reflect")
    import torch.nn.functional as F

    lead = m.shape[:-2]
    flat = m.reshape(-1, 1, *m.shape[-2:])
    return F.pad(flat, (dx, dx, dy, dy), mode="reflect").reshape(*lead, m.shape[-2] + 2 * dy, m.shape[-1] + 2 * dx)


def unify_pad(planes: ArrayT, cfa: str) -> ArrayT:
    """Packed planes of any phase -> RGGB phase by reflect-padding the mosaic by one row/column
    at each side where needed: ``(..., 4, h, w)`` -> ``(..., 4, h + dy, w + dx)``. Exact (no
    pixel is altered); undo with :func:`deunify_pad`. Used at inference."""
    dy, dx = rggb_shift(cfa)
    if dy == 0 and dx == 0:
        return planes
    return pack(_pad_mosaic(unpack(planes, cfa), dy, dx), "RGGB")


def deunify_pad(planes_rggb: ArrayT, cfa: str) -> ArrayT:
    """Inverse of :func:`unify_pad`: RGGB-phase planes of the padded image -> planes of the
    original phase and size."""
    dy, dx = rggb_shift(cfa)
    if dy == 0 and dx == 0:
        return planes_rggb
    m = unpack(planes_rggb, "RGGB")
    hh, ww = m.shape[-2], m.shape[-1]  # type: ignore[attr-defined]
    return pack(m[..., dy : hh - dy, dx : ww - dx], cfa)  # type: ignore[index]
