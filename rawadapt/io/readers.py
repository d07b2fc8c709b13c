"""Which reader handles a file: classification by extension, shared by adapters and the CLI.

Kinds
-----
``"raw"``
    Camera RAW containers LibRaw decodes (DNG, NEF, ARW, CR2, RW2, KDC...): :func:`rawadapt.io.raw.read_raw`.
``"headerless"``
    ``.raw`` / ``.bin``: a bare array of pixels without any header. The caller gives width,
    height, CFA and levels (:func:`rawadapt.io.headerless.read_headerless`). Such files never go
    through LibRaw, which guesses a camera from the file size and decodes garbage.
``"image"``
    PNG / JPEG / TIFF / PGM / PPM / BMP / WebP: sRGB images (:func:`rawadapt.io.images.read_image`)
    or, when the caller gives a CFA, single-channel Bayer mosaics
    (:func:`rawadapt.io.headerless.read_mosaic_image`).
``"array"``
    ``.npy`` arrays (:func:`rawadapt.io.images.read_array`, never unpickled).
``"mat"``
    MATLAB ``.mat`` files (SIDD; :mod:`rawadapt.io.mat`).

This module is light (no third-party imports) so that adapters can classify files while
building their records without loading any decoder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

FileKind = Literal["raw", "headerless", "image", "array", "mat", "unknown"]

#: Extensions of camera RAW containers read through LibRaw (lower case, with the dot). ``.raw``
#: is deliberately absent: in rawadapt it means a headerless dump (see module docstring).
RAW_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".dng",
        ".nef",
        ".nrw",
        ".arw",
        ".srf",
        ".sr2",
        ".cr2",
        ".cr3",
        ".crw",
        ".raf",
        ".rw2",
        ".rwl",
        ".orf",
        ".pef",
        ".ptx",
        ".srw",
        ".kdc",
        ".dcr",
        ".dcs",
        ".k25",
        ".mrw",
        ".3fr",
        ".fff",
        ".iiq",
        ".mos",
        ".mef",
        ".erf",
        ".x3f",
        ".rwz",
        ".gpr",
        ".mdc",
        ".nksc",
    }
)
HEADERLESS_EXTENSIONS: frozenset[str] = frozenset({".raw", ".bin"})
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".tif",
        ".tiff",
        ".pgm",
        ".ppm",
        ".pnm",
        ".bmp",
        ".webp",
    }
)
ARRAY_EXTENSIONS: frozenset[str] = frozenset({".npy"})
MAT_EXTENSIONS: frozenset[str] = frozenset({".mat"})


def file_kind(path: str | os.PathLike[str]) -> FileKind:
    """Classify ``path`` by its extension (case-insensitive).

    Examples
    --------
    >>> file_kind("a/IMG_0001.CR2"), file_kind("x.png"), file_kind("dump.raw")
    ('raw', 'image', 'headerless')
    """
    ext = Path(path).suffix.lower()
    if ext in RAW_EXTENSIONS:
        return "raw"
    if ext in HEADERLESS_EXTENSIONS:
        return "headerless"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in ARRAY_EXTENSIONS:
        return "array"
    if ext in MAT_EXTENSIONS:
        return "mat"
    return "unknown"


def is_raw(path: str | os.PathLike[str]) -> bool:
    """True for a camera RAW container LibRaw reads."""
    return file_kind(path) == "raw"


def is_image(path: str | os.PathLike[str]) -> bool:
    """True for a PNG/JPEG/TIFF-like image file."""
    return file_kind(path) == "image"
