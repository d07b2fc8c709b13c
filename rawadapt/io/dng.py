"""Write a Bayer mosaic as an uncompressed DNG that LibRaw/rawpy and raw editors open.

A minimal little-endian TIFF writer (no third-party dependency): IFD0 carries the CFA image
and the DNG tags (version, CFA pattern, black/white levels, colour matrix, as-shot neutral), an
EXIF sub-IFD carries ISO and exposure time. Values follow the DNG 1.4 specification:

* ``CFAPattern`` (33422): 0 = red, 1 = green, 2 = blue, row-major over the 2x2 repeat.
* ``BlackLevel`` (50714): one value per CFA position (``BlackLevelRepeatDim`` = 2x2).
* ``ColorMatrix1`` (50721): XYZ -> camera, 3x3 row-major, illuminant D65 (21).
* ``AsShotNeutral`` (50728): camera-native RGB of a neutral (1 / white-balance gains).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rawadapt.errors import ShapeError
from rawadapt.io.bayer import normalize_cfa, plane_offsets
from rawadapt.io.raw import planes_to_mosaic
from rawadapt.utils.atomic import write_bytes
from rawadapt.utils.color import SRGB_TO_XYZ, wb_gains, xyz_to_camera

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.io.raw import RawImage

_BYTE, _ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED, _SRATIONAL = 1, 2, 3, 4, 5, 7, 10
_FMT = {_BYTE: "B", _ASCII: "B", _SHORT: "H", _LONG: "I", _UNDEFINED: "B"}
_SIZE = {_BYTE: 1, _ASCII: 1, _SHORT: 2, _LONG: 4, _RATIONAL: 8, _UNDEFINED: 1, _SRATIONAL: 8}
_UINT32_MAX = 2**32 - 1
_INT32_MAX = 2**31 - 1

#: LibRaw ``sizes.flip`` -> TIFF/DNG Orientation (0 none, 3 180°, 5 90° CCW, 6 90° CW)
LIBRAW_FLIP_TO_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}


def rational(value: float, signed: bool = False) -> tuple[int, int]:
    """The closest fraction ``(numerator, denominator)`` to ``value`` that fits a TIFF (S)RATIONAL.

    Numerator and denominator fit uint32 (RATIONAL) or int32 / uint32 (SRATIONAL), so any
    level up to 65535 DN (and colour matrix entries) is stored exactly or to ~1e-9.

    Raises
    ------
    ShapeError
        NaN/Inf, a negative value for an unsigned RATIONAL, or a value beyond the type's range.

    Examples
    --------
    >>> rational(2056.5), rational(-0.25, signed=True)
    ((4113, 2), (-1, 4))
    """
    v = float(value)
    top = _INT32_MAX if signed else _UINT32_MAX
    if not np.isfinite(v) or abs(v) > top or (v < 0 and not signed):
        raise ShapeError(f"{v} cannot be stored as a TIFF {'S' if signed else ''}RATIONAL")
    # |numerator| <= (|v| + 1) * denominator must stay within `top`
    max_den = max(1, min(_UINT32_MAX, int(top // (abs(v) + 1))))
    f = Fraction(v).limit_denominator(max_den)
    if abs(f.numerator) > top:  # pragma: no cover - excluded by max_den
        f = Fraction(round(v))
    return f.numerator, f.denominator


def _rationals(values: Sequence[float], signed: bool) -> bytes:
    out = b""
    for v in values:
        num, den = rational(v, signed)
        out += struct.pack("<iI" if signed else "<II", num, den)
    return out


class _Ifd:
    """Entries of one IFD; serialised after its data blobs are placed."""

    def __init__(self) -> None:
        self.entries: dict[int, tuple[int, int, bytes]] = {}

    def add(self, tag: int, typ: int, values: Sequence[float] | bytes | str) -> None:
        if typ == _ASCII:
            data = str(values).encode("ascii", "replace") + b"\0"
            count = len(data)
        elif isinstance(values, (bytes, bytearray)):
            data, count = bytes(values), len(values)
        elif typ in (_RATIONAL, _SRATIONAL):
            data, count = _rationals(list(values), typ == _SRATIONAL), len(values)  # type: ignore[arg-type]
        else:
            vals = [int(v) for v in values]
            data, count = struct.pack("<" + _FMT[typ] * len(vals), *vals), len(vals)
        self.entries[tag] = (typ, count, data)

    def size(self) -> int:
        return 2 + 12 * len(self.entries) + 4

    def blob_size(self) -> int:
        return sum(len(d) + (len(d) & 1) for _, _, d in self.entries.values() if len(d) > 4)

    def serialise(self, offset: int, next_ifd: int = 0) -> bytes:
        """IFD bytes followed by its out-of-line values, starting at file ``offset``."""
        head = struct.pack("<H", len(self.entries))
        blobs = b""
        blob_at = offset + self.size()
        for tag in sorted(self.entries):
            typ, count, data = self.entries[tag]
            if len(data) <= 4:
                value = data.ljust(4, b"\0")
            else:
                value = struct.pack("<I", blob_at + len(blobs))
                blobs += data + (b"\0" if len(data) & 1 else b"")
            head += struct.pack("<HHI", tag, typ, count) + value
        return head + struct.pack("<I", next_ifd) + blobs


def write_dng(
    path: str | os.PathLike[str],
    mosaic: np.ndarray,
    cfa: str,
    *,
    black_level: float | Sequence[float],
    white_level: int,
    make: str = "rawadapt",
    model: str = "unknown",
    unique_model: str | None = None,
    iso: float | None = None,
    exposure_time: float | None = None,
    color_matrix: np.ndarray | None = None,
    as_shot_neutral: Sequence[float] | None = None,
    software: str = "rawadapt",
    orientation: int = 1,
) -> Path:
    """Write ``mosaic`` (``uint16`` H x W, in the file's own DN and CFA) as a DNG, atomically.

    Parameters
    ----------
    path
        Destination (``.dng``).
    mosaic
        Bayer mosaic in digital numbers (black level included), even size.
    cfa
        Pattern at the top-left pixel, e.g. ``"RGGB"``.
    black_level
        One value, or four in canonical plane order (R, G1, G2, B).
    white_level
        Saturation level in DN.
    make, model, unique_model
        Camera identification (``UniqueCameraModel`` defaults to ``make model``).
    iso, exposure_time
        Written to the EXIF sub-IFD when given.
    color_matrix
        3x3 XYZ(D65) -> camera matrix (DNG ``ColorMatrix1``); default: the inverse of
        sRGB->XYZ, i.e. a camera whose native space is linear sRGB.
    as_shot_neutral
        Camera RGB of a neutral (e.g. ``1 / wb_gains``); default ``(1, 1, 1)``.
    orientation
        TIFF Orientation (1 normal, 3 rotated 180°, 6 rotate 90° CW to view, 8 rotate 270° CW).

    Returns
    -------
    The written path.
    """
    m = np.asarray(mosaic)
    if m.ndim != 2 or m.shape[0] % 2 or m.shape[1] % 2 or m.size == 0:
        raise ShapeError(f"DNG mosaic must be a non-empty even-sized 2-D array, got shape {m.shape}", path)
    if not np.issubdtype(m.dtype, np.integer):
        raise ShapeError(f"DNG mosaic must hold integer DN values, got dtype {m.dtype}", path)
    if m.min() < 0 or m.max() > 65535:
        raise ShapeError("DNG mosaic values must lie in [0, 65535]", path)
    data = np.ascontiguousarray(m.astype("<u2")).tobytes()
    c = normalize_cfa(cfa)
    h, w = m.shape
    black = np.asarray(black_level, dtype=np.float64).reshape(-1)
    if black.size == 1:
        black = np.repeat(black, 4)
    if black.size != 4:
        raise ShapeError(f"black_level needs 1 or 4 values, got {black.size}", path)
    # canonical (R, G1, G2, B) -> per CFA position, row-major
    per_pos = [0.0] * 4
    for k, (dy, dx) in enumerate(plane_offsets(c)):
        per_pos[2 * dy + dx] = float(black[k])
    cm = np.linalg.inv(SRGB_TO_XYZ) if color_matrix is None else np.asarray(color_matrix, dtype=np.float64)
    if cm.shape != (3, 3):
        raise ShapeError(f"color_matrix must be 3x3, got {cm.shape}", path)
    neutral = [1.0, 1.0, 1.0] if as_shot_neutral is None else [float(v) for v in as_shot_neutral][:3]

    ifd0 = _Ifd()
    ifd0.add(254, _LONG, [0])
    ifd0.add(256, _LONG, [w])
    ifd0.add(257, _LONG, [h])
    ifd0.add(258, _SHORT, [16])
    ifd0.add(259, _SHORT, [1])
    ifd0.add(262, _SHORT, [32803])  # CFA
    ifd0.add(271, _ASCII, make)
    ifd0.add(272, _ASCII, model)
    ifd0.add(273, _LONG, [0])  # strip offset, patched below
    if orientation not in (1, 2, 3, 4, 5, 6, 7, 8):
        raise ShapeError(f"orientation must be a TIFF orientation 1..8, got {orientation}", path)
    ifd0.add(274, _SHORT, [orientation])
    ifd0.add(277, _SHORT, [1])
    ifd0.add(278, _LONG, [h])
    ifd0.add(279, _LONG, [len(data)])
    ifd0.add(284, _SHORT, [1])
    ifd0.add(305, _ASCII, software)
    ifd0.add(33421, _SHORT, [2, 2])
    ifd0.add(33422, _BYTE, bytes("RGB".index(ch) for ch in c))
    ifd0.add(34665, _LONG, [0])  # EXIF IFD offset, patched below
    ifd0.add(50706, _BYTE, bytes([1, 4, 0, 0]))
    ifd0.add(50707, _BYTE, bytes([1, 1, 0, 0]))
    ifd0.add(50708, _ASCII, unique_model or f"{make} {model}")
    ifd0.add(50710, _BYTE, bytes([0, 1, 2]))
    ifd0.add(50711, _SHORT, [1])
    ifd0.add(50713, _SHORT, [2, 2])
    ifd0.add(50714, _RATIONAL, per_pos)
    ifd0.add(50717, _LONG, [int(white_level)])
    ifd0.add(50721, _SRATIONAL, cm.reshape(-1).tolist())
    ifd0.add(50728, _RATIONAL, neutral)
    ifd0.add(50778, _SHORT, [21])

    exif = _Ifd()
    exif.add(36864, _UNDEFINED, b"0230")
    if exposure_time is not None and exposure_time > 0:
        exif.add(33434, _RATIONAL, [float(exposure_time)])
    if iso is not None and iso > 0:
        exif.add(34855, _SHORT, [int(round(min(iso, 65535)))])

    ifd0_at = 8
    exif_at = ifd0_at + ifd0.size() + ifd0.blob_size()
    exif_at += exif_at & 1
    strip_at = exif_at + exif.size() + exif.blob_size()
    strip_at += (-strip_at) % 16
    ifd0.add(273, _LONG, [strip_at])
    ifd0.add(34665, _LONG, [exif_at])
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd0_at))
    out += ifd0.serialise(ifd0_at)
    out += b"\0" * (exif_at - len(out))
    out += exif.serialise(exif_at)
    out += b"\0" * (strip_at - len(out))
    out += data
    write_bytes(path, bytes(out))
    return Path(path)


def write_dng_like(
    path: str | os.PathLike[str], planes01: np.ndarray, raw: RawImage, *, software: str = "rawadapt"
) -> Path:
    """Write packed [0, 1] planes as a DNG in the CFA, levels and metadata of a source RAW file.

    Parameters
    ----------
    path
        Destination ``.dng``.
    planes01
        ``(4, h, w)`` canonical planes (values above 1 are clipped at white).
    raw
        The :class:`rawadapt.io.raw.RawImage` the planes came from: its CFA, black/white levels,
        make/model, ISO, exposure time, white balance (``AsShotNeutral``), colour matrix
        (``ColorMatrix1``, see :func:`rawadapt.utils.color.xyz_to_camera`) and orientation are
        carried over.
    software
        The ``Software`` tag.
    """

    m = raw.meta
    mosaic = planes_to_mosaic(np.minimum(planes01, 1.0), raw.cfa, raw.black_level, raw.white_level)
    gains = wb_gains(m.camera_whitebalance)
    flip = int((getattr(m, "extra", None) or {}).get("flip", 0) or 0)
    return write_dng(
        path,
        mosaic,
        raw.cfa,
        black_level=raw.black_level,
        white_level=int(round(raw.white_level)),
        make=m.make or "unknown",
        model=m.model or "unknown",
        unique_model=m.camera if m.camera and m.camera != "unknown" else None,
        iso=m.iso,
        exposure_time=m.exposure_time,
        color_matrix=xyz_to_camera(m.rgb_xyz, m.color_matrix, gains),
        as_shot_neutral=None if gains is None else [1.0 / g for g in gains],
        software=software,
        orientation=LIBRAW_FLIP_TO_ORIENTATION.get(flip, 1),
    )
