"""On-disk cache of decoded arrays (and small metadata dicts), so a RAW file is decoded once.

Layout: ``cache_dir()/decoded/<2 hex>/<sha256>.npy`` (and ``.json`` for metadata), where the
hash covers the file's absolute path, size and modification time (ns) and the reader's
parameters (``key_parts``). Editing or replacing a file therefore misses the cache; stale
entries are simply never read again (delete the folder to reclaim space).

Entries are written atomically (temporary file + rename), so concurrent workers never read a
half-written array; a corrupt or unreadable entry is discarded and the file decoded again. A
read-only or full cache folder never fails a read: the decoded array is returned uncached.
Set ``RAWADAPT_NO_DECODE_CACHE=1`` to bypass the cache entirely.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rawadapt.errors import InputFileError, OutputFileError
from rawadapt.utils.atomic import atomic_path, write_text
from rawadapt.utils.paths import cache_dir

#: bump when what a reader returns changes, so old entries are ignored
CACHE_VERSION = 1


def decoded_dir() -> Path:
    """Folder of the decode cache: ``cache_dir() / "decoded"``."""
    return cache_dir() / "decoded"


def cache_enabled() -> bool:
    """False when ``RAWADAPT_NO_DECODE_CACHE`` is set to a true value."""
    return os.environ.get("RAWADAPT_NO_DECODE_CACHE", "") in ("", "0")


def cache_key(key_parts: Sequence[Any], path: str | os.PathLike[str]) -> str:
    """Hex digest identifying ``path`` (absolute path, size, mtime_ns) decoded with ``key_parts``.

    Raises
    ------
    InputFileError
        If ``path`` does not exist.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise InputFileError("no such file", p) from None
    ident = [CACHE_VERSION, str(p.resolve()), st.st_size, st.st_mtime_ns, [repr(k) for k in key_parts]]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()


def _entry(key: str, suffix: str) -> Path:
    return decoded_dir() / key[:2] / f"{key}{suffix}"


def cached_decode(
    key_parts: Sequence[Any], path: str | os.PathLike[str], fn: Callable[[], np.ndarray], *, enabled: bool = True
) -> np.ndarray:
    """Return ``fn()`` (the decoded array of ``path``), from the cache when possible.

    Parameters
    ----------
    key_parts
        Everything besides the file that changes the result (reader name, options such as
        ``clip``, levels, CFA...). Their ``repr`` enters the hash.
    path
        The source file (its identity and mtime enter the hash).
    fn
        Decodes the file; called on a miss. Must return a NumPy array (not an object array).
    enabled
        False bypasses the cache (as does ``RAWADAPT_NO_DECODE_CACHE=1``).

    Examples
    --------
    >>> planes = cached_decode(("read_raw", True), "a.dng",
    ...                        lambda: read_raw("a.dng").planes)  # doctest: +SKIP
    """
    if not (enabled and cache_enabled()):
        return fn()
    entry = _entry(cache_key(key_parts, path), ".npy")
    if entry.is_file():
        try:
            return np.load(entry, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            with contextlib.suppress(OSError):
                entry.unlink()  # corrupt entry: decode again
    arr = np.asarray(fn())
    try:
        with atomic_path(entry) as tmp, open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
    except (OSError, OutputFileError):
        pass  # an unwritable cache never fails a read
    return arr


def cached_json(
    key_parts: Sequence[Any], path: str | os.PathLike[str], fn: Callable[[], dict[str, Any]], *, enabled: bool = True
) -> dict[str, Any]:
    """Like :func:`cached_decode` for small JSON-friendly dicts (file metadata)."""
    if not (enabled and cache_enabled()):
        return fn()
    entry = _entry(cache_key(key_parts, path), ".json")
    if entry.is_file():
        try:
            out = json.loads(entry.read_text())
            if isinstance(out, dict):
                return out
        except (ValueError, OSError):
            pass
        with contextlib.suppress(OSError):
            entry.unlink()
    d = fn()
    try:
        write_text(entry, json.dumps(d, default=str))
    except (OSError, OutputFileError):
        pass
    return d


# --------------------------------------------------------------------------------------------
# RAW files through the cache (what the adapters use)
# --------------------------------------------------------------------------------------------


def raw_metadata_cached(path: str | os.PathLike[str], *, enabled: bool = True) -> dict[str, Any]:
    """:func:`rawadapt.io.raw.read_raw_metadata` as a dict, cached (no pixel decode)."""
    from rawadapt.io.raw import read_raw_metadata

    return cached_json(("raw_meta",), path, lambda: read_raw_metadata(path).to_dict(), enabled=enabled)


def raw_planes_cached(
    path: str | os.PathLike[str],
    *,
    clip: bool = True,
    black_level: float | Sequence[float] | None = None,
    white_level: float | None = None,
    enabled: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Normalised canonical planes of a RAW file and its metadata dict, decoded at most once.

    The metadata of a freshly decoded file is cached too, so later calls open nothing. Level
    overrides are part of the key; the returned dict's ``used_black_level`` (4 canonical values)
    and ``used_white_level`` are the levels the planes were normalised with.
    """
    from rawadapt.io.raw import canonical_black, read_raw

    black = None if black_level is None else canonical_black(black_level, path)
    white = None if white_level is None else float(white_level)
    fresh: dict[str, Any] = {}

    def decode() -> np.ndarray:
        img = read_raw(path, clip=clip, black_level=black, white_level=white)
        fresh.update(img.meta.to_dict())
        return img.planes

    planes = cached_decode(("read_raw", clip, black, white), path, decode, enabled=enabled)
    if fresh:
        meta = dict(cached_json(("raw_meta",), path, lambda: dict(fresh), enabled=enabled))
    else:
        meta = dict(raw_metadata_cached(path, enabled=enabled))
    meta["used_black_level"] = list(meta["black_level"]) if black is None else black
    meta["used_white_level"] = float(meta["white_level"]) if white is None else white
    return planes, meta


# --------------------------------------------------------------------------------------------
# Any supported file -> normalised (C, H, W) array (pairs and manifest adapters)
# --------------------------------------------------------------------------------------------


@dataclass
class Decoded:
    """A decoded image file in rawadapt's conventions (see :mod:`rawadapt.data.sample`).

    Attributes
    ----------
    array
        ``(4, h, w)`` canonical normalised planes (``space == "raw"``) or ``(3, H, W)`` sRGB,
        float32.
    space
        ``"raw"`` or ``"srgb"``.
    cfa, black_level, white_level
        For RAW: the CFA phase of the planes and the levels used (black: 4 canonical values).
    meta
        File metadata when the file has some (RAW: ``iso``, ``exposure_time``, ``camera``...).
    """

    array: np.ndarray
    space: str
    cfa: str | None = None
    black_level: list[float] | None = None
    white_level: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def space_of(path: str | os.PathLike[str]) -> str | None:
    """The space a file holds, from its extension (``.npy``: from its channel count), or None."""
    from rawadapt.io.images import array_shape
    from rawadapt.io.readers import file_kind

    kind = file_kind(path)
    if kind in ("raw", "headerless", "mat"):
        return "raw"
    if kind == "image":
        return "srgb"
    if kind == "array":
        shape = array_shape(path)
        if len(shape) == 2:
            return "raw"
        if len(shape) == 3 and shape[0] in (3, 4):
            return "raw" if shape[0] == 4 else "srgb"
    return None


def load_file(
    path: str | os.PathLike[str],
    *,
    space: str | None = None,
    cfa: str | None = None,
    black_level: float | Sequence[float] | None = None,
    white_level: float | None = None,
    clip: bool = True,
    cache: bool = True,
) -> Decoded:
    """Decode any supported file into rawadapt's array conventions.

    * RAW containers: :func:`rawadapt.io.raw.read_raw` through the decode cache (optional level
      overrides).
    * Images: sRGB via :func:`rawadapt.io.images.read_image`; with ``space="raw"`` a
      single-channel Bayer mosaic (``cfa``, ``black_level``, ``white_level`` required).
    * ``.npy``: float arrays are taken as already normalised (``(4, h, w)`` raw or
      ``(3, H, W)`` sRGB); integer arrays are DN values: ``(4, h, w)`` packed canonical planes
      or an ``(H, W)`` mosaic (needs ``cfa``) normalised with ``black_level``/``white_level``;
      ``(3, H, W)`` integer sRGB is divided by 255 (uint8) or 65535 (uint16).
    * ``.mat``: a SIDD mosaic (values in [0, 1], black 0, white 1), packed with ``cfa``.

    Raises
    ------
    MetadataError
        A needed CFA or level is missing.
    InputFileError, ShapeError, ...
        From the readers.
    """
    from rawadapt.errors import MetadataError, ShapeError
    from rawadapt.io.bayer import normalize_levels, pack
    from rawadapt.io.readers import file_kind

    p = Path(path)
    kind = file_kind(p)
    sp = space or space_of(p)

    def need_levels(what: str) -> tuple[list[float], float]:
        if black_level is None or white_level is None:
            raise MetadataError(f"{what} needs black_level and white_level", p)
        from rawadapt.io.raw import canonical_black

        return canonical_black(black_level, p), float(white_level)

    if kind == "raw":
        planes, meta = raw_planes_cached(p, clip=clip, black_level=black_level, white_level=white_level, enabled=cache)
        return Decoded(
            planes, "raw", meta["cfa"], list(meta["used_black_level"]), float(meta["used_white_level"]), meta
        )
    if kind == "image":
        if sp == "raw":
            if cfa is None:
                raise MetadataError("a Bayer mosaic image needs a CFA pattern (cfa)", p)
            black, white = need_levels("a Bayer mosaic image")
            from rawadapt.io.headerless import read_mosaic_image

            img = read_mosaic_image(p, cfa=cfa, black_level=black, white_level=white, clip=clip)
            return Decoded(img.planes, "raw", img.cfa, img.black_level, img.white_level)
        from rawadapt.io.images import read_image

        return Decoded(read_image(p), "srgb")
    if kind == "array":
        from rawadapt.io.images import read_array

        a = read_array(p)
        if np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float32, copy=False)
            if a.ndim == 3 and a.shape[0] == 4:
                from rawadapt.io.raw import canonical_black

                return Decoded(
                    a,
                    "raw",
                    cfa,
                    None if black_level is None else canonical_black(black_level, p),
                    None if white_level is None else float(white_level),
                )
            if a.ndim == 3 and a.shape[0] == 3:
                return Decoded(a, "srgb")
            raise ShapeError(f"a float array must be (4, h, w) raw or (3, H, W) sRGB, got {a.shape}", p)
        if not np.issubdtype(a.dtype, np.integer):
            raise ShapeError(f"unsupported array dtype {a.dtype}", p)
        if a.ndim == 3 and a.shape[0] == 3 and sp != "raw":
            scale = 255.0 if a.dtype == np.uint8 else 65535.0
            return Decoded(a.astype(np.float32) / np.float32(scale), "srgb")
        black, white = need_levels("an integer (DN) array")
        if a.ndim == 2:
            if cfa is None:
                raise MetadataError("an (H, W) mosaic array needs a CFA pattern (cfa)", p)
            a = pack(a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2], cfa)
        if a.ndim != 3 or a.shape[0] != 4:
            raise ShapeError(
                f"an integer raw array must be (4, h, w) packed planes or an (H, W) mosaic, got {a.shape}", p
            )
        return Decoded(normalize_levels(a, black, white, clip=clip), "raw", cfa, black, white)
    if kind == "mat":
        if cfa is None:
            raise MetadataError("a SIDD .MAT mosaic needs a CFA pattern (cfa)", p)
        from rawadapt.io.mat import read_sidd_mosaic

        planes = cached_decode(
            ("sidd_mosaic", cfa, clip),
            p,
            lambda: normalize_levels(pack(read_sidd_mosaic(p), cfa), 0.0, 1.0, clip=clip),
            enabled=cache,
        )
        return Decoded(planes, "raw", cfa, [0.0] * 4, 1.0)
    from rawadapt.errors import InputFileError

    raise InputFileError(f"unsupported file type {p.suffix!r} (kind {kind})", p)
