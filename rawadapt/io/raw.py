"""Read camera RAW files (any Bayer file LibRaw decodes) into canonical packed planes.

What :func:`read_raw` returns (docs/data.md "Packing")
---------------------------------------------------------
* The VISIBLE area only (``rawpy.raw_image_visible``: masked/optical-black borders dropped).
* The even-crop rule: an odd last row or column of the visible area is dropped (the top-left
  pixel is kept, so the CFA string of the file still describes the cropped mosaic).
  :attr:`RawMetadata.raw_width`/``raw_height`` are the visible size BEFORE this crop,
  :attr:`RawMetadata.width`/``height`` the size AFTER it (always even).
* Four planes in the canonical order R, G1, G2, B (:mod:`rawadapt.io.bayer`), whatever the
  file's CFA (RGGB, BGGR, GRBG, GBRG); black level subtracted per plane and divided by
  ``white - black``; clipped to [0, 1] unless ``clip=False``.
* :func:`planes_to_mosaic` is the exact inverse for values within [black, white].

Refusals (typed errors of :mod:`rawadapt.errors`)
-------------------------------------------------
* Missing, unreadable, corrupt, truncated or unsupported files: :class:`InputFileError`
  naming the file (LibRaw's ``LibRawError`` family is translated).
* Non-Bayer sensors: X-Trans (6x6 pattern), Foveon and linear DNG (no CFA: ``raw_type`` is
  ``Stack`` or there is no 2x2 pattern), 4-colour CFAs such as CYGM: :class:`UnsupportedSensorError`.
* Files without a camera RAW signature (TIFF ``II*\\0``/``MM\\0*`` as in DNG/NEF/CR2/ARW/PEF...,
  or the CR3, CRW, ORF, RW2, RAF, MRW, X3F, IIQ headers): :class:`InputFileError`. LibRaw would
  otherwise identify e.g. a headerless dump renamed ``.dng`` from its file size alone.
* DNGs whose BitsPerSample is outside 8-32, whose uncompressed strips/tiles do not hold
  width x height x BitsPerSample bits, or whose WhiteLevel does not fit BitsPerSample (no
  linearisation table): :class:`InputFileError` (a corrupt header decodes to garbage).
* Frames over the pixel limit (:mod:`rawadapt.io.limits`), refused before LibRaw allocates them;
  non-finite or out-of-range black/white levels (given or decoded): :class:`MetadataError`.
* Frames whose pixel data is missing -> :class:`EmptyFrameError`: a file smaller than
  :data:`MIN_BITS_PER_PIXEL` (0.5) bit per sensor pixel (checked before decoding: LibRaw fills
  the missing data of stripped files with whatever its buffer held), or more than
  :data:`EMPTY_ZERO_FRACTION` (90 %) of the visible pixels exactly 0. A real exposure never has
  that many zeros: even a black frame sits at the black level (> 0 on almost every camera);
  the stubs of stripped files (all zeros, or zeros except a few rows) do.

Metadata
--------
Camera make/model, ISO and exposure time come from LibRaw (``other.iso_speed``,
``other.shutter_speed``) and from the EXIF tags (``exifread`` when installed, else a minimal
built-in TIFF/EXIF parser). ISO: LibRaw's value when > 0, else EXIF ``ISOSpeedRatings`` when
> 0, else None. Exposure time: EXIF ``ExposureTime`` when the tag exists (0 -> None: LibRaw
reports a placeholder 1 s for files that record 0), else LibRaw's shutter when > 0.

rawpy is imported inside functions only: ``import rawadapt`` stays light.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rawadapt.errors import (
    EmptyFrameError,
    InputFileError,
    MetadataError,
    RawAdaptError,
    ShapeError,
    UnsupportedSensorError,
)
from rawadapt.io.bayer import (
    denormalize_levels,
    normalize_cfa,
    normalize_levels,
    pack,
    plane_offsets,
    unpack,
)
from rawadapt.io.limits import check_pixels
from rawadapt.io.readers import file_kind

T = TypeVar("T")

#: A file smaller than this many bits per sensor pixel cannot hold the image (stripped/truncated).
MIN_BITS_PER_PIXEL: float = 0.5

#: A frame with more than this fraction of exactly-zero visible pixels is refused as empty.
EMPTY_ZERO_FRACTION: float = 0.9


@dataclass
class RawMetadata:
    """What a RAW file says about itself (no pixels decoded).

    Attributes
    ----------
    path
        The file.
    make, model
        EXIF camera make and model ("" when unknown).
    camera
        Cleaned ``"make model"`` (vendor suffixes such as "Corporation" dropped, the make not
        repeated when the model already starts with it), ``"unknown"`` when neither is known.
    cfa
        Bayer pattern at the top-left visible pixel, e.g. ``"RGGB"``.
    black_level
        Four black levels in DN, canonical plane order R, G1, G2, B.
    white_level
        Saturation level in DN.
    iso, exposure_time
        ISO speed and exposure time in seconds, or None when unknown.
    width, height
        Size of the visible mosaic AFTER the even crop (what :func:`read_raw` returns).
    raw_width, raw_height
        Size of the visible mosaic BEFORE the even crop.
    color_matrix
        3x3 camera RGB -> sRGB matrix from LibRaw (``color_matrix[:, :3]``), or None when
        LibRaw has none (all zeros).
    camera_whitebalance, daylight_whitebalance
        White-balance multipliers as LibRaw reports them (3 or 4 values), or None.
    rgb_xyz
        3x3 XYZ -> camera matrix (``rgb_xyz_matrix[:3]``), or None when all zeros.
    """

    path: str
    make: str
    model: str
    camera: str
    cfa: str
    black_level: list[float]
    white_level: float
    iso: float | None
    exposure_time: float | None
    width: int
    height: int
    raw_width: int
    raw_height: int
    color_matrix: list[list[float]] | None = None
    camera_whitebalance: list[float] | None = None
    daylight_whitebalance: list[float] | None = None
    rgb_xyz: list[list[float]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (plain floats, ints, strings and lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RawMetadata:
        """Inverse of :meth:`to_dict` (e.g. from the metadata cache)."""
        return cls(**d)


@dataclass
class RawImage:
    """A decoded Bayer frame.

    Attributes
    ----------
    planes
        ``(4, h, w)`` float32, canonical R, G1, G2, B, normalised (see module docstring).
    mosaic
        ``(2h, 2w)`` uint16, the even-cropped visible mosaic in the file's own DN and CFA.
    cfa
        The mosaic's CFA pattern (also the phase of ``planes``).
    black_level
        Four black levels in DN, canonical order, used for ``planes``.
    white_level
        White level in DN used for ``planes``.
    meta
        The file's metadata.
    """

    planes: np.ndarray
    mosaic: np.ndarray
    cfa: str
    black_level: list[float]
    white_level: float
    meta: RawMetadata


# --------------------------------------------------------------------------------------------
# Shared helpers (also used by rawadapt.io.headerless)
# --------------------------------------------------------------------------------------------


def canonical_black(black_level: float | Sequence[float] | np.ndarray, path: Any = None) -> list[float]:
    """One or four black levels -> a list of four (canonical R, G1, G2, B)."""
    b = np.asarray(black_level, dtype=np.float64).reshape(-1)
    if b.size == 1:
        b = np.repeat(b, 4)
    if b.size != 4:
        raise ShapeError(f"black_level needs 1 or 4 values (canonical R, G1, G2, B), got {b.size}", path)
    return [float(v) for v in b]


def check_levels(black_level: Sequence[float], white_level: float, path: Any = None) -> None:
    """Refuse black/white levels that are not finite, negative, above 65535, or with white <= black.

    Raises
    ------
    MetadataError
        Implausible levels (the message names them).
    """
    black = [float(b) for b in black_level]
    white = float(white_level)
    if not (np.isfinite(white) and 0 < white <= 65535):
        raise MetadataError(f"white level must be a finite number in (0, 65535], got {white_level}", path)
    if not all(np.isfinite(b) and 0 <= b < white for b in black):
        raise MetadataError(f"black levels must be finite, >= 0 and below the white level {white:g}, got {black}", path)


def even_crop(mosaic: np.ndarray) -> np.ndarray:
    """Drop an odd last row/column (keeps the top-left pixel, hence the CFA phase)."""
    h, w = mosaic.shape[-2] // 2 * 2, mosaic.shape[-1] // 2 * 2
    return mosaic[..., :h, :w]


def check_not_empty(mosaic: np.ndarray, path: Any) -> None:
    """Raise :class:`EmptyFrameError` if more than :data:`EMPTY_ZERO_FRACTION` of the pixels are 0."""
    n = mosaic.size
    if n == 0:
        raise EmptyFrameError("the frame has no pixels", path)
    zeros = n - int(np.count_nonzero(mosaic))
    if zeros == n:
        raise EmptyFrameError("every pixel is 0 (no image data; stripped or broken file)", path)
    if zeros > EMPTY_ZERO_FRACTION * n:
        raise EmptyFrameError(
            f"{100.0 * zeros / n:.1f} % of the pixels are 0 (more than {100 * EMPTY_ZERO_FRACTION:.0f} %): "
            "image data missing or broken",
            path,
        )


def check_file_holds_pixels(path: Path, n_pixels: int) -> None:
    """Refuse a file too small to hold ``n_pixels`` (< :data:`MIN_BITS_PER_PIXEL` bits each).

    Files whose pixel data was stripped or cut keep their headers; LibRaw then "decodes" them
    into whatever its buffer holds (zeros, or leftovers of an earlier decode in the same
    process). No real raw encoding, even lossy, gets below half a bit per pixel.
    """
    size = path.stat().st_size
    if n_pixels > 0 and size * 8 < MIN_BITS_PER_PIXEL * n_pixels:
        raise EmptyFrameError(
            f"the file has {size} bytes for {n_pixels} pixels (< {MIN_BITS_PER_PIXEL} bit per "
            "pixel): image data stripped or truncated",
            path,
        )


def mosaic_to_planes(
    mosaic: np.ndarray,
    cfa: str,
    black_level: Sequence[float],
    white_level: float,
    *,
    clip: bool = True,
    path: Any = None,
) -> np.ndarray:
    """Pack an even-sized mosaic (DN) and normalise it: the core of every Bayer reader."""
    try:
        return normalize_levels(pack(mosaic, cfa), black_level, white_level, clip=clip)
    except RawAdaptError as exc:
        raise type(exc)(exc.message, path) from None


def planes_to_mosaic(
    planes01: np.ndarray, cfa: str, black_level: float | Sequence[float], white_level: float
) -> np.ndarray:
    """Exact inverse of the normalisation and packing of :func:`read_raw`.

    Parameters
    ----------
    planes01
        ``(4, h, w)`` canonical planes in [0, 1] (normalised units).
    cfa
        The target mosaic's pattern (the file's own CFA).
    black_level, white_level
        The file's levels (black: 1 value or 4 canonical values).

    Returns
    -------
    ``(2h, 2w)`` uint16 mosaic in DN. Values whose DN lies within [black, white] come back
    exactly; others are rounded and clipped to the uint16 range.
    """
    a = np.asarray(planes01)
    if a.ndim != 3 or a.shape[0] != 4:
        raise ShapeError(f"packed RAW needs shape (4, h, w), got {a.shape}")
    c = normalize_cfa(cfa)
    dn = denormalize_levels(a, canonical_black(black_level), white_level, dtype=np.uint16)
    return unpack(dn, c)


# --------------------------------------------------------------------------------------------
# Camera names and EXIF tags
# --------------------------------------------------------------------------------------------

_MAKE_ALIASES = {
    "eastman kodak company": "Kodak",
    "nikon corporation": "Nikon",
    "nikon": "Nikon",
    "olympus imaging corp.": "Olympus",
    "olympus corporation": "Olympus",
    "olympus optical co.,ltd": "Olympus",
    "samsung": "Samsung",
    "sony": "Sony",
    "canon": "Canon",
    "fujifilm": "Fujifilm",
    "panasonic": "Panasonic",
    "pentax corporation": "Pentax",
    "ricoh imaging company, ltd.": "Ricoh",
    "leica camera ag": "Leica",
    "hasselblad": "Hasselblad",
    "lge": "LG",
    "google": "Google",
    "apple": "Apple",
    "huawei": "Huawei",
}
_MAKE_SUFFIX = re.compile(r"[\s,]+(corporation|corp\.?|company|co\.?,?\s*ltd\.?|inc\.?|ag|imaging)$", re.I)


def _clean(s: Any) -> str:
    return re.sub(r"\s+", " ", str(s or "").replace("\x00", " ")).strip()


def camera_name(make: str, model: str) -> str:
    """``"make model"`` cleaned: ``("NIKON CORPORATION", "NIKON D70")`` -> ``"Nikon D70"``.

    Examples
    --------
    >>> camera_name("Canon", "Canon EOS Kiss X4")
    'Canon EOS Kiss X4'
    >>> camera_name("", "")
    'unknown'
    """
    mk, md = _clean(make), _clean(model)
    alias = _MAKE_ALIASES.get(mk.lower())
    if alias is None:
        prev = None
        while prev != mk:
            prev, mk = mk, _MAKE_SUFFIX.sub("", mk).strip()
        alias = mk
    if md and alias and md.lower().startswith(alias.lower()):
        md = md[len(alias) :].strip()
    name = _clean(f"{alias} {md}")
    return name or "unknown"


def _ratio(v: Any) -> float | None:
    try:
        if hasattr(v, "num") and hasattr(v, "den"):
            return None if v.den == 0 else float(v.num) / float(v.den)
        return float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def _exifread_tags(path: Path) -> dict[str, Any] | None:
    """Make, model, ISO, exposure via exifread; None when exifread is not installed."""
    try:
        import exifread
    except ImportError:
        return None
    log = logging.getLogger("exifread")
    old = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with open(path, "rb") as fh:
            tags = exifread.process_file(fh, details=False)
    except Exception:  # noqa: BLE001 - EXIF is best effort; LibRaw already accepted the file
        return {}
    finally:
        log.setLevel(old)
    out: dict[str, Any] = {}
    for key, name in (("Image Make", "make"), ("Image Model", "model")):
        if key in tags:
            out[name] = _clean(tags[key].printable)
    for key in ("EXIF ISOSpeedRatings", "Image ISOSpeedRatings", "EXIF PhotographicSensitivity"):
        if key in tags and tags[key].values:
            out["iso"] = _ratio(tags[key].values[0])
            break
    for key in ("EXIF ExposureTime", "Image ExposureTime"):
        if key in tags and tags[key].values:
            out["exposure_time"] = _ratio(tags[key].values[0])
            break
    return out


_TIFF_TYPES = {
    1: ("B", 1),
    2: ("s", 1),
    3: ("H", 2),
    4: ("I", 4),
    5: ("II", 8),
    7: ("B", 1),
    9: ("i", 4),
    10: ("ii", 8),
}


def _tiff_tags(path: Path) -> dict[str, Any]:
    """Minimal TIFF/EXIF reader (IFD0 + EXIF IFD) for make, model, ISO and exposure time.

    Used when exifread is not installed. Handles classic TIFF containers (DNG, NEF, ARW, CR2,
    KDC, PEF...) and Panasonic's/Olympus's TIFF variants; anything else gives ``{}``. Not
    tifffile (a dependency): it refuses the Panasonic/Olympus magic numbers and parses whole
    page structures where four tags of two IFDs are all that is needed.
    """
    out: dict[str, Any] = {}
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8 or head[:2] not in (b"II", b"MM"):
                return out
            e = "<" if head[:2] == b"II" else ">"
            first = struct.unpack(e + "I", head[4:8])[0]

            def read_ifd(offset: int) -> dict[int, Any]:
                fh.seek(offset)
                raw = fh.read(2)
                if len(raw) < 2:
                    return {}
                n = struct.unpack(e + "H", raw)[0]
                if n > 4096:
                    return {}
                ents = fh.read(12 * n)
                tags: dict[int, Any] = {}
                for i in range(n):
                    tag, typ, cnt = struct.unpack(e + "HHI", ents[12 * i : 12 * i + 8])
                    if typ not in _TIFF_TYPES or cnt == 0 or cnt > 4096:
                        continue
                    fmt, size = _TIFF_TYPES[typ]
                    nbytes = size * cnt
                    val = ents[12 * i + 8 : 12 * i + 12]
                    if nbytes > 4:
                        pos = fh.tell()
                        fh.seek(struct.unpack(e + "I", val)[0])
                        val = fh.read(nbytes)
                        fh.seek(pos)
                    if typ == 2:
                        tags[tag] = val[:nbytes].split(b"\0")[0].decode("latin-1")
                    elif typ in (5, 10):
                        nums = struct.unpack(e + fmt[0] * (2 * cnt), val[:nbytes])
                        tags[tag] = [a / b if b else None for a, b in zip(nums[::2], nums[1::2], strict=True)]
                    else:
                        tags[tag] = list(struct.unpack(e + fmt * cnt, val[:nbytes]))
                return tags

            ifd0 = read_ifd(first)
            exif = read_ifd(ifd0[34665][0]) if 34665 in ifd0 else {}
    except (OSError, struct.error, ValueError, KeyError, IndexError):
        return out
    if 271 in ifd0:
        out["make"] = _clean(ifd0[271])
    if 272 in ifd0:
        out["model"] = _clean(ifd0[272])
    for tags in (exif, ifd0):
        if 34855 in tags and "iso" not in out:
            out["iso"] = float(tags[34855][0])
        if 33434 in tags and "exposure_time" not in out:
            out["exposure_time"] = tags[33434][0]
    return out


def exif_tags(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Make, model, ISO and exposure time from the file's EXIF (best effort; missing keys absent).

    Uses ``exifread`` when installed, else a minimal built-in TIFF parser.
    """
    p = Path(path)
    tags = _exifread_tags(p)
    return _tiff_tags(p) if tags is None else tags


# --------------------------------------------------------------------------------------------
# LibRaw
# --------------------------------------------------------------------------------------------

_STDERR_LOCK = threading.RLock()


class _CapturedStderr:
    """Capture what C code (LibRaw) prints on file descriptor 2 while LibRaw runs.

    LibRaw reports problems such as ``data corrupted at 1378`` with ``fprintf(stderr)``; the
    text is folded into our one-line error instead of leaking as an extra line. On success, or
    when another exception propagates, the captured text is written back to stderr so nothing
    is lost. A process-wide lock serialises the redirection (LibRaw calls from several threads
    run one at a time; DataLoader workers are processes and are not affected).
    """

    def __init__(self) -> None:
        self.text = ""
        self._saved: int | None = None
        self._tmp: Any = None

    def __enter__(self) -> _CapturedStderr:
        _STDERR_LOCK.acquire()
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            self._tmp = tempfile.TemporaryFile()
            os.dup2(self._tmp.fileno(), 2)
        except (OSError, ValueError, AttributeError):  # no usable fd 2: run uncaptured
            if self._saved is not None:
                os.close(self._saved)
            self._saved = None
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if self._saved is not None:
                os.dup2(self._saved, 2)
                os.close(self._saved)
                self._tmp.seek(0)
                self.text = self._tmp.read().decode("utf-8", "replace")
            if self._tmp is not None:
                self._tmp.close()
        finally:
            _STDERR_LOCK.release()
        if exc_type is not None:
            self.replay()

    def replay(self) -> None:
        if self.text:
            sys.stderr.write(self.text)
            sys.stderr.flush()

    def detail(self, path: Path) -> str:
        """The captured text as one short clause (file name prefixes removed)."""
        lines = [ln.strip() for ln in self.text.splitlines() if ln.strip()]
        out = []
        for ln in lines:
            for prefix in (f"{path}:", f"{path.name}:", f"{path.resolve()}:"):
                if ln.startswith(prefix):
                    ln = ln[len(prefix) :].strip()
            out.append(ln)
        return "; ".join(out)[:200]


def _translate(exc: Exception, path: Path, detail: str) -> InputFileError:
    import rawpy

    extra = f" (LibRaw: {detail})" if detail else ""
    if isinstance(exc, rawpy.LibRawFileUnsupportedError):
        return InputFileError(f"unsupported file format or not a RAW file{extra}", path)
    if isinstance(exc, rawpy.LibRawIOError):
        return InputFileError(f"cannot read the file (I/O error, truncated?){extra}", path)
    if isinstance(exc, rawpy.LibRawDataError):
        return InputFileError(f"corrupt or truncated RAW data{extra}", path)
    return InputFileError(f"LibRaw cannot decode the file: {type(exc).__name__}: {exc}{extra}", path)


def _libraw_call(p: Path, fn: Callable[[Any], T]) -> T:
    """Open ``p`` with rawpy, run ``fn(raw)``, close; LibRaw errors -> one-line InputFileError."""
    import rawpy

    failure: Exception | None = None
    with _CapturedStderr() as cap:
        try:
            raw = rawpy.imread(str(p))
            try:
                result = fn(raw)
            finally:
                raw.close()
        except rawpy.LibRawError as exc:
            failure = exc
    if failure is not None:
        raise _translate(failure, p, cap.detail(p)) from None
    cap.replay()
    return result


def _check_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputFileError("no such file", p)
    if not p.is_file():
        raise InputFileError("not a regular file", p)

    if file_kind(p) == "headerless":
        raise InputFileError(
            "a headerless .raw/.bin dump cannot be read with LibRaw (it would guess a camera "
            "from the file size); use read_headerless with width, height, CFA and levels",
            p,
        )
    check_raw_signature(p)
    check_dng_header(p)
    return p


# --------------------------------------------------------------------------------------------
# Header checks before LibRaw (it guesses cameras from file sizes and trusts any BitsPerSample)
# --------------------------------------------------------------------------------------------

#: (offset, bytes) signatures of the camera RAW containers LibRaw reads by header
RAW_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (0, b"II*\0"),
    (0, b"MM\0*"),  # TIFF: DNG, NEF, NRW, CR2, ARW, SRF, SR2, PEF, SRW, KDC, DCR, 3FR...
    (0, b"II+\0"),
    (0, b"MM\0+"),  # BigTIFF
    (0, b"IIRO"),
    (0, b"IIRS"),
    (0, b"MMOR"),  # Olympus ORF
    (0, b"IIU\0"),  # Panasonic RW2 / Leica RWL
    (4, b"ftypcrx "),  # Canon CR3
    (6, b"HEAPCCDR"),  # Canon CRW
    (0, b"FUJIFILM"),  # Fujifilm RAF
    (0, b"\0MRM"),  # Minolta MRW
    (0, b"FOVb"),  # Sigma X3F
    (0, b"IIII"),
    (0, b"MMMM"),  # Phase One IIQ
)


def check_raw_signature(path: str | os.PathLike[str]) -> None:
    """Refuse a file that starts with no camera RAW signature (:data:`RAW_SIGNATURES`).

    Raises
    ------
    InputFileError
        Unknown header (LibRaw would identify the camera from the file size only).
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise InputFileError(f"cannot read: {exc.strerror or exc}", p) from None
    if not any(head[off : off + len(sig)] == sig for off, sig in RAW_SIGNATURES):
        raise InputFileError(
            "not a camera RAW file: no TIFF/DNG or maker header (LibRaw would only guess a camera from the file size)",
            p,
        )


_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 6: 1, 7: 1, 8: 2, 9: 4, 16: 8}
_TIFF_INT = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 16: "Q"}


def _tiff_ifds(data: bytes, max_ifds: int = 32) -> list[dict[int, list[int]]]:
    """Integer tags of IFD0, its chain and its SubIFDs (tag 330) in a classic TIFF.

    Only integer-typed values are decoded (others are absent); raises ``ValueError`` on
    offsets outside the data.
    """
    e = "<" if data[:2] == b"II" else ">"
    if struct.unpack(e + "H", data[2:4])[0] != 42:
        raise ValueError("not a classic TIFF")
    todo = [struct.unpack(e + "I", data[4:8])[0]]
    seen: set[int] = set()
    out: list[dict[int, list[int]]] = []
    while todo and len(out) < max_ifds:
        off = todo.pop(0)
        if off in seen or off == 0:
            continue
        seen.add(off)
        if off + 2 > len(data):
            raise ValueError("IFD offset outside the file")
        n = struct.unpack(e + "H", data[off : off + 2])[0]
        if off + 2 + 12 * n + 4 > len(data):
            raise ValueError("IFD outside the file")
        tags: dict[int, list[int]] = {}
        for i in range(n):
            q = off + 2 + 12 * i
            tag, typ, cnt = struct.unpack(e + "HHI", data[q : q + 8])
            if typ not in _TIFF_INT or cnt == 0 or cnt > 1_000_000:
                continue
            nbytes = _TIFF_SIZES[typ] * cnt
            if nbytes <= 4:
                raw = data[q + 8 : q + 8 + nbytes]
            else:
                at = struct.unpack(e + "I", data[q + 8 : q + 12])[0]
                if at + nbytes > len(data):
                    raise ValueError("tag value outside the file")
                raw = data[at : at + nbytes]
            tags[tag] = list(struct.unpack(e + _TIFF_INT[typ] * cnt, raw))
        out.append(tags)
        todo.append(struct.unpack(e + "I", data[off + 2 + 12 * n : off + 6 + 12 * n])[0])
        todo.extend(tags.get(330, []))
    return out


def check_dng_header(path: str | os.PathLike[str]) -> None:
    """Refuse a DNG whose raw (CFA) image header cannot describe its data.

    Checks the CFA image's BitsPerSample (8-32), that uncompressed strips/tiles hold width x
    height x BitsPerSample bits (and less than one more bit per pixel), and that the WhiteLevel fits BitsPerSample when
    there is no linearisation table. Files that are not DNGs, or whose TIFF structure this
    minimal parser cannot follow, are left to LibRaw.

    Raises
    ------
    InputFileError
        An inconsistent DNG header (naming the value).
    """
    import mmap

    p = Path(path)
    try:
        with open(p, "rb") as fh:
            if fh.read(4) not in (b"II*\0", b"MM\0*"):
                return
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                ifds = _tiff_ifds(data)  # type: ignore[arg-type]
    except OSError as exc:
        raise InputFileError(f"cannot read: {exc.strerror or exc}", p) from None
    except (ValueError, struct.error):
        return
    if not ifds or 50706 not in ifds[0]:  # DNGVersion: not a DNG
        return
    cfa = [t for t in ifds if t.get(262, [0])[0] == 32803 and not (t.get(254, [0])[0] & 1)]
    if not cfa:
        return  # linear DNGs etc.: refused later as non-Bayer
    t = cfa[0]
    bps_list = t.get(258, [1])
    bps = int(bps_list[0])
    if not 8 <= bps <= 32:
        raise InputFileError(f"corrupt DNG header: BitsPerSample {bps} (a CFA image has 8 to 32)", p)
    width, height = t.get(256, [0])[0], t.get(257, [0])[0]
    spp = t.get(277, [1])[0] or 1
    float_data = t.get(339, [1])[0] == 3
    if t.get(259, [1])[0] == 1 and width > 0 and height > 0:  # uncompressed: the data size is known
        if 322 in t and 323 in t and 325 in t:
            tw, th = t[322][0], t[323][0]
            tiles = len(t[325])
            expected = tiles * ((tw * spp * bps + 7) // 8) * th
            have = sum(t[325])
        elif 279 in t:
            expected = height * ((width * spp * bps + 7) // 8)
            have = sum(t[279])
        else:
            expected = have = 0
        # fewer bytes: truncated or BitsPerSample raised; room for a whole extra bit per pixel: lowered
        if have < expected or have * bps >= expected * (bps + 1) > 0:
            raise InputFileError(
                f"corrupt DNG header: {width}x{height} pixels of {bps} bits need {expected} bytes "
                f"but the image data holds {have}",
                p,
            )
    white = t.get(50717, [None])[0]
    if white is not None and not float_data and bps < 32 and 50712 not in t and white > 2**bps - 1:
        raise InputFileError(f"corrupt DNG header: WhiteLevel {white} does not fit BitsPerSample {bps}", p)


def _bayer_layout(raw: Any, path: Path) -> tuple[str, list[float]]:
    """(CFA string, canonical black levels) of an open rawpy handle; refuses non-Bayer sensors."""
    import rawpy

    raw_type = raw.raw_type
    pattern = raw.raw_pattern
    desc = raw.color_desc.decode("ascii", "replace")
    num_colors = raw.num_colors
    black = list(raw.black_level_per_channel)
    if raw_type != rawpy.RawType.Flat or pattern is None:
        raise UnsupportedSensorError(
            "not a Bayer sensor: no colour filter array (Foveon, linear/demosaiced DNG or similar)", path
        )
    pattern = np.asarray(pattern)
    if pattern.shape == (6, 6):
        raise UnsupportedSensorError("not a Bayer sensor: X-Trans (6x6 colour filter array)", path)
    if pattern.shape != (2, 2):
        raise UnsupportedSensorError(
            f"not a Bayer sensor: {pattern.shape[0]}x{pattern.shape[1]} colour filter array", path
        )
    letters = "".join(
        desc[int(pattern[dy, dx])] if int(pattern[dy, dx]) < len(desc) else "?"
        for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1))
    )
    try:
        cfa = normalize_cfa(letters)
    except RawAdaptError:
        raise UnsupportedSensorError(
            f"not an RGB Bayer sensor: colour filter pattern {letters!r} (colours {desc!r}, {num_colors} colours)", path
        ) from None
    canon = [float(black[int(pattern[dy, dx])]) for dy, dx in plane_offsets(cfa)]
    return cfa, canon


def _matrix(m: Any, rows: int = 3) -> list[list[float]] | None:
    a = np.asarray(m, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < rows or a.shape[1] < 3:
        return None
    a = a[:rows, :3]
    if not np.any(a) or not np.all(np.isfinite(a)):
        return None
    return [[float(v) for v in row] for row in a]


def _wb(v: Any) -> list[float] | None:
    vals = [float(x) for x in (v or [])]
    return vals if vals and any(vals) else None


def _metadata(raw: Any, p: Path) -> RawMetadata:
    cfa, black = _bayer_layout(raw, p)
    sizes = raw.sizes
    other = raw.other
    white = float(raw.white_level)
    cm, rgb_xyz = raw.color_matrix, raw.rgb_xyz_matrix
    cam_wb, day_wb = raw.camera_whitebalance, raw.daylight_whitebalance
    if (
        not (np.isfinite(white) and 0 < white <= 65535)
        or not all(np.isfinite(b) for b in black)
        or min(black) < 0
        or max(black) >= white
    ):
        # LibRaw reads uninitialised levels from some stripped files (seen on the ExifTool DNG stub)
        raise InputFileError(f"implausible levels: black {black} vs white {white:g} (corrupt metadata)", p)
    tags = exif_tags(p)
    iso: float | None = float(other.iso_speed) if other.iso_speed and other.iso_speed > 0 else None
    if iso is None and tags.get("iso"):
        iso = float(tags["iso"]) if tags["iso"] > 0 else None
    if "exposure_time" in tags:
        t = tags["exposure_time"]
        exposure = float(t) if t is not None and t > 0 else None
    else:
        exposure = float(other.shutter_speed) if other.shutter_speed and other.shutter_speed > 0 else None
    make, model = tags.get("make", ""), tags.get("model", "")
    vis_w, vis_h = int(sizes.width), int(sizes.height)
    return RawMetadata(
        path=str(p),
        make=make,
        model=model,
        camera=camera_name(make, model),
        cfa=cfa,
        black_level=black,
        white_level=white,
        iso=iso,
        exposure_time=exposure,
        width=vis_w // 2 * 2,
        height=vis_h // 2 * 2,
        raw_width=vis_w,
        raw_height=vis_h,
        color_matrix=_matrix(cm),
        camera_whitebalance=_wb(cam_wb),
        daylight_whitebalance=_wb(day_wb),
        rgb_xyz=_matrix(rgb_xyz),
        extra={
            "aperture": float(other.aperture) if other.aperture and other.aperture > 0 else None,
            "flip": int(sizes.flip),
            "top_margin": int(sizes.top_margin),
            "left_margin": int(sizes.left_margin),
            "full_width": int(sizes.raw_width),
            "full_height": int(sizes.raw_height),
        },
    )


def read_raw_metadata(path: str | os.PathLike[str]) -> RawMetadata:
    """Metadata of a RAW file without decoding its pixels.

    Raises
    ------
    InputFileError
        Missing, unsupported or corrupt file.
    UnsupportedSensorError
        Not a Bayer sensor.
    """
    p = _check_path(path)
    return _libraw_call(p, lambda raw: _metadata(raw, p))


def read_raw(
    path: str | os.PathLike[str],
    *,
    clip: bool = True,
    black_level: float | Sequence[float] | None = None,
    white_level: float | None = None,
    check_empty: bool = True,
) -> RawImage:
    """Decode a Bayer RAW file into canonical normalised planes (see the module docstring).

    Parameters
    ----------
    path
        Any Bayer file LibRaw reads (DNG, NEF, ARW, CR2, RAF-Bayer, RW2, KDC...).
    clip
        Clip the planes to [0, 1] (default); ``False`` keeps values below black / above white.
    black_level, white_level
        Override the file's levels (e.g. SID's fixed 512 / 16383); black as 1 or 4 canonical values.
    check_empty
        Refuse frames that are (mostly) zeros (:data:`EMPTY_ZERO_FRACTION`).

    Raises
    ------
    InputFileError, UnsupportedSensorError, EmptyFrameError
        See the module docstring.

    Examples
    --------
    >>> img = read_raw("shot.dng")  # doctest: +SKIP
    >>> img.planes.shape, img.cfa   # doctest: +SKIP
    ((4, 578, 867), 'RGGB')
    """
    p = _check_path(path)

    def decode(raw: Any) -> tuple[RawMetadata, np.ndarray]:
        check_pixels(raw.sizes.raw_width, raw.sizes.raw_height, p, "RAW frame")  # before LibRaw allocates it
        visible = raw.raw_image_visible  # unpacks: LibRaw's data errors surface here
        if check_empty:  # before trusting levels or pixels LibRaw may have left stale
            check_file_holds_pixels(p, int(raw.sizes.raw_width) * int(raw.sizes.raw_height))
        meta = _metadata(raw, p)
        return meta, np.array(even_crop(visible), dtype=np.uint16, copy=True)

    meta, mosaic = _libraw_call(p, decode)
    if check_empty:
        check_not_empty(mosaic, p)
    black = meta.black_level if black_level is None else canonical_black(black_level, p)
    white = meta.white_level if white_level is None else float(white_level)
    check_levels(black, white, p)
    planes = mosaic_to_planes(mosaic, meta.cfa, black, white, clip=clip, path=p)
    return RawImage(
        planes=planes, mosaic=mosaic, cfa=meta.cfa, black_level=list(black), white_level=float(white), meta=meta
    )
