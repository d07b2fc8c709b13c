"""Bayer mosaics without RAW metadata: headerless dumps and 16-bit PNG/PGM/TIFF mosaics.

The caller supplies what the file cannot tell: size (headerless only), CFA pattern, black and
white levels. The result is the same :class:`~rawadapt.io.raw.RawImage` as for camera RAW files
(canonical R, G1, G2, B planes, even crop, per-plane black subtraction, clip to [0, 1]).

Headerless files are read with NumPy only, never through LibRaw: LibRaw identifies cameras of
headerless formats by FILE SIZE and would silently decode e.g. a 768x512 16-bit dump as some
other camera's 1024x768 frame.

Mosaic images keep all their bits (16-bit PNG/PGM/TIFF are read as 16-bit integers). Note that
such files often hold fewer significant bits than their container: the Halide N900 PNGs hold
10-bit values (white 1023) in 16-bit samples. Give the white level of the DATA, not of the
container.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rawadapt.errors import InputFileError, RawAdaptError, ShapeError
from rawadapt.io.bayer import normalize_cfa
from rawadapt.io.images import _read_tiff, load_pixels
from rawadapt.io.limits import check_pixels
from rawadapt.io.raw import (
    RawImage,
    RawMetadata,
    canonical_black,
    check_levels,
    check_not_empty,
    even_crop,
    mosaic_to_planes,
)


def _metadata(path: Path, cfa: str, black: list[float], white: float, h: int, w: int, **extra: object) -> RawMetadata:
    return RawMetadata(
        path=str(path),
        make="",
        model="",
        camera="unknown",
        cfa=cfa,
        black_level=black,
        white_level=float(white),
        iso=None,
        exposure_time=None,
        width=w // 2 * 2,
        height=h // 2 * 2,
        raw_width=w,
        raw_height=h,
        extra=dict(extra),
    )


def _finish(
    mosaic: np.ndarray,
    path: Path,
    cfa: str,
    black_level: float | Sequence[float],
    white_level: float,
    clip: bool,
    check_empty: bool,
    **extra: object,
) -> RawImage:
    c = normalize_cfa(cfa)
    black = canonical_black(black_level, path)
    check_levels(black, white_level, path)
    if float(white_level) <= max(black):
        raise ShapeError(f"white level {white_level} must exceed the black levels {black}", path)
    h, w = mosaic.shape
    cropped = np.ascontiguousarray(even_crop(mosaic))
    if cropped.shape[0] < 2 or cropped.shape[1] < 2:
        raise ShapeError(f"mosaic of {h}x{w} pixels is too small (needs at least 2x2)", path)
    if check_empty:
        check_not_empty(cropped, path)
    if cropped.dtype != np.uint16:
        if np.issubdtype(cropped.dtype, np.floating) or cropped.min() < 0 or cropped.max() > 65535:
            raise ShapeError(f"mosaic values must be integers in [0, 65535], got dtype {cropped.dtype}", path)
        cropped = cropped.astype(np.uint16)
    planes = mosaic_to_planes(cropped, c, black, float(white_level), clip=clip, path=path)
    return RawImage(
        planes=planes,
        mosaic=cropped,
        cfa=c,
        black_level=black,
        white_level=float(white_level),
        meta=_metadata(path, c, black, float(white_level), h, w, **extra),
    )


def read_headerless(
    path: str | os.PathLike[str],
    *,
    width: int,
    height: int,
    cfa: str,
    black_level: float | Sequence[float],
    white_level: float,
    dtype: str = "<u2",
    offset: int = 0,
    clip: bool = True,
    check_empty: bool = True,
) -> RawImage:
    """Read a headerless Bayer dump (``height`` rows of ``width`` pixels, row-major).

    Parameters
    ----------
    path
        The file (any extension; ``.raw``/``.bin`` by convention).
    width, height
        Mosaic size in pixels (columns, rows).
    cfa
        Pattern at the top-left pixel, e.g. ``"RGGB"``.
    black_level, white_level
        Levels in DN; black as one value or four canonical (R, G1, G2, B) values.
    dtype
        NumPy dtype of a pixel, default little-endian uint16 ``"<u2"`` (``">u2"``, ``"u1"``...).
    offset
        Bytes to skip at the start of the file (a header of known size).
    clip, check_empty
        As in :func:`rawadapt.io.raw.read_raw`.

    Raises
    ------
    InputFileError
        Missing file, or a file size that does not match ``offset + width * height * itemsize``
        (wrong size or dtype given, or a truncated file).

    Examples
    --------
    >>> img = read_headerless("dsc.raw", width=768, height=512, cfa="RGGB",
    ...                       black_level=600, white_level=15520)  # doctest: +SKIP
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError("no such file", p)
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise ShapeError(f"unknown pixel dtype {dtype!r} (e.g. <u2, >u2, u1)", p) from None
    if dt.kind not in "ui":
        raise ShapeError(f"headerless pixels must be integers, got dtype {dt}", p)
    if width <= 0 or height <= 0 or offset < 0:
        raise ShapeError(f"invalid size {width}x{height} or offset {offset}", p)
    check_pixels(width, height, p, "mosaic")
    expected = offset + int(width) * int(height) * dt.itemsize
    size = p.stat().st_size
    if size != expected:
        what = "truncated or wrong size" if size < expected else "larger than expected (wrong size, dtype or offset?)"
        raise InputFileError(
            f"file has {size} bytes but {width}x{height} {dt.str} pixels after a {offset}-byte "
            f"offset need {expected}: {what}",
            p,
        )
    n = int(width) * int(height)
    mosaic = np.fromfile(p, dtype=dt, count=n, offset=int(offset)).reshape(int(height), int(width))
    return _finish(mosaic, p, cfa, black_level, white_level, clip, check_empty, source="headerless", dtype=dt.str)


def load_mosaic_array(path: str | os.PathLike[str]) -> np.ndarray:
    """The single-channel integer array stored in a PNG/PGM/TIFF mosaic, all bits kept."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError("no such file", p)
    ext = p.suffix.lower()
    if ext in (".tif", ".tiff"):
        try:
            arr = _read_tiff(p)  # declared size checked against the pixel limit first
        except RawAdaptError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad input file
            raise InputFileError(f"cannot read TIFF: {exc}", p) from None
    else:
        arr = load_pixels(p)
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ShapeError(f"a Bayer mosaic image must have one channel, got shape {arr.shape}", p)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ShapeError(f"a Bayer mosaic image must hold integers, got dtype {arr.dtype}", p)
    return arr


def read_mosaic_image(
    path: str | os.PathLike[str],
    *,
    cfa: str,
    black_level: float | Sequence[float],
    white_level: float,
    clip: bool = True,
    check_empty: bool = True,
) -> RawImage:
    """Read a single-channel 8/16-bit PNG, PGM or TIFF holding a Bayer mosaic.

    Parameters
    ----------
    path
        The image file.
    cfa, black_level, white_level
        Pattern and levels of the data (e.g. the Halide N900 PNGs: ``"GRBG"``, 25, 1023).
    clip, check_empty
        As in :func:`rawadapt.io.raw.read_raw`.
    """
    p = Path(path)
    mosaic = load_mosaic_array(p)
    return _finish(mosaic, p, cfa, black_level, white_level, clip, check_empty, source="image", dtype=str(mosaic.dtype))
