"""sRGB images and arrays: PNG / JPEG / TIFF / PNM (8 or 16 bit) <-> ``(3, H, W)`` float32 in [0, 1].

Conventions (docs/benchmarks.md: sRGB metrics on 8-bit-scale [0, 1])
------------------------------------------------------------------
* :func:`read_image` returns ``(3, H, W)`` float32: 8-bit values / 255, 16-bit values / 65535,
  PNM values / their ``maxval``, float TIFFs as stored. The alpha channel is dropped.
  Grayscale images raise :class:`~rawadapt.errors.ShapeError` unless ``gray="replicate"``
  (then the one channel is copied to R, G and B). EXIF orientation is ignored on purpose: a
  noisy/clean pair must stay pixel-aligned whatever the viewer would do.
* All 16 bits are kept. Pillow silently truncates 16-bit RGB PNGs to 8 bits and rescales PGMs
  whose maxval is not 65535, so 16-bit colour PNGs and PNM files are decoded here with NumPy
  and zlib (all five PNG filter types, vectorised): no maintained dependency we already have
  reads them losslessly; everything else goes through Pillow (TIFF through tifffile).
* :func:`write_image` writes atomically: PNG 8/16-bit, TIFF 8/16-bit, JPEG 8-bit (quality 95).
* :func:`read_array` loads ``.npy`` with ``allow_pickle=False`` (never unpickles), after checking
  its header: the magic (a ``.npz`` archive named ``.npy`` is refused), no object dtype, a
  non-empty shape, and a file large enough for the declared shape (no allocation from a header
  alone). Big-endian arrays come back in native byte order.
* Declared sizes above the pixel limit (:mod:`rawadapt.io.limits`, ``RAWADAPT_MAX_PIXELS``)
  are refused from the header, before decoding. Any decoder failure is an
  :class:`~rawadapt.errors.InputFileError` naming the file.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from rawadapt.errors import InputFileError, NonFiniteError, RawAdaptError, ShapeError
from rawadapt.io.limits import (
    MAX_PIXELS_ENV,
    check_pixels,
    max_pixels,
    set_pillow_limit,
)
from rawadapt.utils.atomic import atomic_path

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


# --------------------------------------------------------------------------------------------
# PNG (16-bit colour) and PNM decoding/encoding
# --------------------------------------------------------------------------------------------


def _png_chunks(data: bytes, path: Path) -> tuple[dict[str, int], bytes]:
    if not data.startswith(_PNG_SIG):
        raise InputFileError("not a PNG file", path)
    pos, ihdr, idat = 8, None, []
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise InputFileError("truncated PNG chunk", path)
        if ctype == b"IHDR":
            w, h, depth, colour, _comp, _filt, interlace = struct.unpack(">IIBBBBB", body[:13])
            ihdr = {"width": w, "height": h, "depth": depth, "colour": colour, "interlace": interlace}
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
        pos += 12 + length
    if ihdr is None:
        raise InputFileError("PNG without IHDR chunk", path)
    return ihdr, b"".join(idat)


def _png_header(path: Path) -> dict[str, int] | None:
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 33 or not head.startswith(_PNG_SIG) or head[12:16] != b"IHDR":
        return None
    w, h, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return {"width": w, "height": h, "depth": depth, "colour": colour, "interlace": interlace}


def png_unfilter(filtered: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Undo PNG row filters on ``(H, W, bpp)`` bytes (filter types 0-4 per row), vectorised.

    Rows using only None/Sub/Up are undone row by row (each row vectorised). Average and Paeth
    predict from the reconstructed left neighbour, so they are undone along anti-diagonals of
    the (row, pixel) grid: every pixel of one anti-diagonal depends only on earlier diagonals.
    """
    h, w, bpp = filtered.shape
    if int(filters.max(initial=0)) > 4:
        raise ValueError(f"unknown PNG filter type {int(filters.max())}")
    if np.all(filters <= 2):
        out = np.empty_like(filtered)
        prev = np.zeros((w, bpp), dtype=np.uint8)
        for r in range(h):  # per ROW, each row vectorised
            f, x = int(filters[r]), filtered[r]
            if f == 0:
                cur = x
            elif f == 1:
                cur = np.cumsum(x, axis=0, dtype=np.uint8)
            else:
                cur = x + prev
            out[r] = cur
            prev = out[r]
        return out
    rec = np.zeros((h + 1, w + 1, bpp), dtype=np.int16)  # rec[r + 1, c + 1] = pixel (r, c)
    x_all = filtered.astype(np.int16)
    ft = filters.astype(np.int16)
    for k in range(h + w - 1):  # per anti-diagonal
        rows = np.arange(max(0, k - w + 1), min(h - 1, k) + 1)
        cols = k - rows
        a = rec[rows + 1, cols]
        b = rec[rows, cols + 1]
        c = rec[rows, cols]
        t = ft[rows][:, None]
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        pred = np.select([t == 1, t == 2, t == 3, t == 4], [a, b, (a + b) >> 1, paeth], 0)
        rec[rows + 1, cols + 1] = (x_all[rows, cols] + pred) & 255
    return rec[1:, 1:].astype(np.uint8)


def read_png16(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a 16-bit PNG (any colour type, not interlaced) to ``(H, W[, C])`` uint16."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputFileError(f"cannot read: {exc.strerror}", p) from None
    hdr, idat = _png_chunks(data, p)
    if hdr["depth"] != 16 or hdr["colour"] not in _PNG_CHANNELS:
        raise InputFileError(f"not a 16-bit PNG (depth {hdr['depth']}, colour type {hdr['colour']})", p)
    if hdr["interlace"]:
        raise InputFileError("interlaced 16-bit PNGs are not supported; re-save without interlacing", p)
    check_pixels(hdr["width"], hdr["height"], p)
    h, w, ch = hdr["height"], hdr["width"], _PNG_CHANNELS[hdr["colour"]]
    bpp = 2 * ch
    try:  # never inflate more than the declared image needs
        raw = zlib.decompressobj().decompress(idat, h * (1 + w * bpp))
    except zlib.error as exc:
        raise InputFileError(f"corrupt PNG data: {exc}", p) from None
    if len(raw) < h * (1 + w * bpp):
        raise InputFileError("truncated PNG image data", p)
    rows = np.frombuffer(raw, dtype=np.uint8, count=h * (1 + w * bpp)).reshape(h, 1 + w * bpp)
    try:
        rec = png_unfilter(rows[:, 1:].reshape(h, w, bpp), rows[:, 0])
    except ValueError as exc:
        raise InputFileError(f"corrupt PNG data: {exc}", p) from None
    out = rec.reshape(h, w * bpp).view(">u2").reshape(h, w, ch).astype(np.uint16)
    return out[..., 0] if ch == 1 else out


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def encode_png16(array: np.ndarray) -> bytes:
    """Encode ``(H, W)`` or ``(H, W, C)`` (C = 1..4) integer data as a 16-bit PNG (Sub filter)."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[..., None]
    h, w, ch = a.shape
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[ch]
    be = np.ascontiguousarray(a.astype(">u2")).view(np.uint8).reshape(h, w, 2 * ch)
    sub = be.copy()
    sub[:, 1:] = be[:, 1:] - be[:, :-1]  # uint8 arithmetic wraps modulo 256 (PNG filter 1)
    rows = np.concatenate([np.ones((h, 1), np.uint8), sub.reshape(h, w * 2 * ch)], axis=1)
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0)
    return (
        _PNG_SIG
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _png_chunk(b"IEND", b"")
    )


def read_pnm(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read a PGM/PPM (P2, P3, P5, P6) exactly: ``(array (H, W[, 3]), maxval)``; no rescaling."""
    p = Path(path)
    data = p.read_bytes()
    magic = data[:2]
    if magic not in (b"P2", b"P3", b"P5", b"P6"):
        raise InputFileError("not a PGM/PPM file (expected P2, P3, P5 or P6)", p)
    tokens: list[int] = []
    pos = 2
    tok = re.compile(rb"\s*(?:#[^\n]*\n\s*)*(\d+)")
    for _ in range(3):
        m = tok.match(data, pos)
        if m is None:
            raise InputFileError("corrupt PNM header", p)
        tokens.append(int(m.group(1)))
        pos = m.end()
    w, h, maxval = tokens
    ch = 3 if magic in (b"P3", b"P6") else 1
    if not 0 < maxval < 65536 or w <= 0 or h <= 0:
        raise InputFileError(f"corrupt PNM header ({w}x{h}, maxval {maxval})", p)
    check_pixels(w, h, p)
    n = w * h * ch
    if magic in (b"P5", b"P6"):
        dt = np.dtype(">u2") if maxval > 255 else np.dtype("u1")
        body = data[pos + 1 :]
        if len(body) < n * dt.itemsize:
            raise InputFileError("truncated PNM pixel data", p)
        arr = np.frombuffer(body, dtype=dt, count=n).astype(np.uint16 if maxval > 255 else np.uint8)
    else:
        vals = data[pos:].split()
        if len(vals) < n:
            raise InputFileError("truncated PNM pixel data", p)
        arr = np.array(vals[:n], dtype=np.int64).astype(np.uint16 if maxval > 255 else np.uint8)
    arr = arr.reshape(h, w, ch)
    return (arr[..., 0] if ch == 1 else arr), maxval


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load_pixels(path: str | os.PathLike[str]) -> np.ndarray:
    """The stored samples of an image file, ``(H, W)`` or ``(H, W, C)``, in their own dtype.

    16-bit data stays 16-bit; palette images are expanded to RGB(A). See :func:`image_maxval`
    for the value that maps to 1.0.
    """
    return _load(Path(path))[0]


def _load(p: Path) -> tuple[np.ndarray, float]:
    if not p.exists():
        raise InputFileError("no such file", p)
    if not p.is_file():
        raise InputFileError("not a regular file", p)
    ext = p.suffix.lower()
    try:
        if ext in (".tif", ".tiff"):
            arr = _read_tiff(p)
            if arr.ndim == 3 and arr.shape[0] in (1, 2, 3, 4) and arr.shape[-1] not in (1, 2, 3, 4):
                arr = np.moveaxis(arr, 0, -1)  # planar (C, H, W) -> (H, W, C)
            maxval = float(np.iinfo(arr.dtype).max) if np.issubdtype(arr.dtype, np.integer) else 1.0
            return arr, maxval
        if ext in (".pgm", ".ppm", ".pnm"):
            arr, mv = read_pnm(p)
            return arr, float(mv)
        if ext == ".png":
            hdr = _png_header(p)
            if hdr is not None and hdr["depth"] == 16 and hdr["colour"] in (2, 4, 6) and not hdr["interlace"]:
                return read_png16(p), 65535.0
        from PIL import Image, UnidentifiedImageError

        set_pillow_limit()
        try:
            with warnings.catch_warnings():  # sizes over the limit are refused below, in one line
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im: Image.Image = Image.open(p)
            with im:
                check_pixels(im.size[0], im.size[1], p)  # from the header, before decoding
                im.load()
                mode = im.mode
                if mode == "P":
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                    im = im.convert("RGB")
                elif mode == "1":
                    im = im.convert("L")
                elif mode == "PA":
                    im = im.convert("RGBA")
                arr = np.array(im)
                mode = im.mode
                im.close()  # frees the decoded copy now (a converted image is not closed by `with`)
        except UnidentifiedImageError:
            raise InputFileError("not a readable image (unknown or corrupt format)", p) from None
        except Image.DecompressionBombError:  # Pillow's own check (twice the limit) came first
            lim = max_pixels()
            raise InputFileError(
                f"image size exceeds the limit of {lim / 1e6:g} megapixels (set {MAX_PIXELS_ENV} to raise it)", p
            ) from None
    except RawAdaptError:
        raise
    except MemoryError:
        raise InputFileError("not enough memory to decode the image", p) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on a bad file is a bad input file
        raise InputFileError(f"cannot decode image: {type(exc).__name__}: {exc}", p) from None
    if mode.startswith("I;16") or (mode == "I" and arr.size and arr.min() >= 0 and arr.max() <= 65535):
        return arr.astype(np.uint16), 65535.0
    if arr.dtype == np.uint8:
        return arr, 255.0
    if np.issubdtype(arr.dtype, np.floating):
        return arr, 1.0
    raise InputFileError(f"unsupported image mode {mode!r}", p)


def _read_tiff(p: Path) -> np.ndarray:
    """The first image of a TIFF file, its declared size checked before reading."""
    import tifffile

    with tifffile.TiffFile(p) as tf:
        if not tf.series:
            raise InputFileError("TIFF without images", p)
        shape = tf.series[0].shape
        if len(shape) < 2:
            raise InputFileError(f"TIFF image of shape {shape}", p)
        planar = len(shape) == 3 and shape[0] in (1, 2, 3, 4) and shape[-1] not in (1, 2, 3, 4)
        h, w = (shape[1], shape[2]) if planar else (shape[0], shape[1])
        check_pixels(w, h, p)
        return np.asarray(tf.series[0].asarray())


def read_image(path: str | os.PathLike[str], *, gray: Literal["error", "replicate"] = "error") -> np.ndarray:
    """Read an sRGB image as ``(3, H, W)`` float32 in [0, 1].

    Parameters
    ----------
    path
        PNG / JPEG / TIFF / PNM / BMP / WebP, 8 or 16 bits per sample (float TIFF as stored).
    gray
        ``"error"`` (default): grayscale images raise :class:`ShapeError` (a single-channel
        16-bit file is usually a Bayer mosaic: use ``read_mosaic_image``);
        ``"replicate"``: copy the gray channel to R, G and B.

    Raises
    ------
    InputFileError
        Missing, unreadable or corrupt file.
    ShapeError
        Grayscale (with ``gray="error"``) or an unsupported channel count.
    NonFiniteError
        NaN/Inf in a float TIFF.
    """
    p = Path(path)
    arr, maxval = _load(p)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ShapeError(f"unsupported image shape {arr.shape}", p)
    ch = arr.shape[-1]
    if ch in (1, 2):  # gray or gray + alpha
        if gray != "replicate":
            raise ShapeError(
                "grayscale image where an RGB image is expected (pass gray='replicate' to copy "
                "the channel, or read it as a Bayer mosaic with a CFA)",
                p,
            )
        arr = np.repeat(arr[..., :1], 3, axis=-1)
    elif ch == 4:
        arr = arr[..., :3]  # drop alpha
    elif ch != 3:
        raise ShapeError(f"unsupported number of channels {ch}", p)
    out = np.empty((3, arr.shape[0], arr.shape[1]), dtype=np.float32)
    for c in range(3):  # one channel at a time: no full-size temporary besides the result
        out[c] = arr[..., c]
    del arr
    if maxval != 1.0:
        out /= np.float32(maxval)
    elif not np.isfinite(out).all():
        raise NonFiniteError("image holds NaN/Inf values", p)
    return out


def _to_hwc(array: np.ndarray, path: Path) -> np.ndarray:
    """(C, H, W) with C in {1, 3} (the library convention, tried first), (H, W, C) or (H, W) -> (H, W, C)."""
    a = np.asarray(array)
    if a.ndim == 2:
        return a[..., None]
    if a.ndim == 3 and a.shape[0] in (1, 3):
        return np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] in (1, 3):
        return a
    raise ShapeError(f"an image to write must be (3, H, W), (1, H, W) or (H, W), got {a.shape}", path)


def write_image(path: str | os.PathLike[str], array: np.ndarray, *, bits: int = 8) -> Path:
    """Write a ``(3, H, W)`` (or gray ``(H, W)``/``(1, H, W)``) image with values in [0, 1], atomically.

    Parameters
    ----------
    path
        ``.png`` (8 or 16 bit), ``.tif``/``.tiff`` (8 or 16 bit) or ``.jpg``/``.jpeg`` (8 bit).
    array
        Float values in [0, 1] (clipped, then rounded to the nearest code), NumPy or torch.
        Integer arrays are written as they are (they must fit the bit depth).
    bits
        8 or 16.

    Returns
    -------
    The written path.
    """
    p = Path(path)
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    if bits not in (8, 16):
        raise ShapeError(f"bits must be 8 or 16, got {bits}", p)
    ext = p.suffix.lower()
    if ext not in (".png", ".tif", ".tiff", ".jpg", ".jpeg"):
        raise InputFileError("unsupported output format (use .png, .tif or .jpg)", p)
    if ext in (".jpg", ".jpeg") and bits != 8:
        raise ShapeError("JPEG supports 8 bits only", p)
    a = _to_hwc(array, p)
    maxv = 255 if bits == 8 else 65535
    qtype = np.uint8 if bits == 8 else np.uint16
    if np.issubdtype(a.dtype, np.floating):
        q: np.ndarray = np.empty(a.shape, dtype=qtype)
        rows = max(1, (1 << 18) // max(1, a.shape[1] * a.shape[2]))
        for r in range(0, a.shape[0], rows):  # in row blocks: no full-size float temporaries
            if not np.isfinite(a[r : r + rows]).all():
                raise NonFiniteError("image to write holds NaN/Inf values", p)
            t = np.clip(a[r : r + rows], 0.0, 1.0)
            t *= maxv
            q[r : r + rows] = np.rint(t, out=t)
    else:
        if a.min() < 0 or a.max() > maxv:
            raise ShapeError(f"integer image values must lie in [0, {maxv}] for {bits}-bit output", p)
        q = np.ascontiguousarray(a.astype(qtype))
    with atomic_path(p) as tmp:
        if ext in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(
                tmp, q[..., 0] if q.shape[-1] == 1 else q, photometric="minisblack" if q.shape[-1] == 1 else "rgb"
            )
        elif ext == ".png" and bits == 16:
            tmp.write_bytes(encode_png16(q))
        else:
            from PIL import Image

            im = Image.fromarray(q[..., 0] if q.shape[-1] == 1 else q)
            if ext == ".png":
                im.save(tmp, format="PNG", compress_level=6)
            else:
                im.save(tmp, format="JPEG", quality=95)
    return p


def _npy_header(p: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data offset)`` of a ``.npy`` file, its header checked against the file size.

    Raises
    ------
    InputFileError
        Not a .npy file (a .npz archive, another format), a corrupt header, an object dtype, or
        a file too small for the declared array.
    """
    from numpy.lib import format as npf

    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            magic = fh.read(6)
            if magic.startswith(b"PK\x03\x04"):
                raise InputFileError("a .npz archive, not a .npy array (save one array with np.save)", p)
            if magic != b"\x93NUMPY":
                raise InputFileError("not a .npy array file (bad magic bytes)", p)
            fh.seek(0)
            version = npf.read_magic(fh)
            if version == (1, 0):
                shape, _fortran, dtype = npf.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _fortran, dtype = npf.read_array_header_2_0(fh)
            else:
                raise InputFileError(f"unsupported .npy format version {version}", p)
            offset = fh.tell()
    except RawAdaptError:
        raise
    except OSError as exc:
        raise InputFileError(f"cannot read array: {exc.strerror or exc}", p) from None
    except Exception as exc:  # noqa: BLE001 - ValueError, SyntaxError, EOFError... from a corrupt header
        raise InputFileError(f"corrupt .npy header: {type(exc).__name__}: {exc}", p) from None
    if dtype.hasobject:
        raise InputFileError("object arrays need pickle, which rawadapt never loads", p)
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise InputFileError(f"corrupt .npy header: shape {shape}", p)
    count = 1
    for n in shape:
        count *= n
    need = count * dtype.itemsize
    if size - offset < need:
        raise InputFileError(
            f"truncated or corrupt .npy: the header declares {dtype.str} {shape} ({need} bytes) but "
            f"the file holds {size - offset} bytes of data",
            p,
        )
    return tuple(shape), dtype, offset


def read_array(path: str | os.PathLike[str]) -> np.ndarray:
    """Load a ``.npy`` array safely (``allow_pickle=False``: object arrays are refused).

    The header is checked first (see the module docstring); the array comes back in native
    byte order.

    Raises
    ------
    InputFileError
        Missing, corrupt, truncated, pickled (object) or ``.npz`` file; a plane over the pixel
        limit.
    ShapeError
        An empty array (a zero-length axis).
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError("no such file", p)
    shape, _dtype, _offset = _npy_header(p)
    if len(shape) >= 2:
        check_pixels(shape[-1], shape[-2], p, "array")
    if 0 in shape:
        raise ShapeError(f"empty array of shape {shape}", p)
    try:
        a = np.load(p, allow_pickle=False)
    except ValueError as exc:
        msg = "object arrays need pickle, which rawadapt never loads" if "pickle" in str(exc) else str(exc)
        raise InputFileError(f"cannot load array: {msg}", p) from None
    except (OSError, EOFError) as exc:
        raise InputFileError(f"cannot load array: {exc}", p) from None
    if not isinstance(a, np.ndarray):
        raise InputFileError("not a single .npy array", p)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return a


def array_shape(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """Shape of a ``.npy`` file from its header only (no pixel read)."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError("no such file", p)
    return _npy_header(p)[0]
