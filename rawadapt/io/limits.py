"""Size limits on untrusted input files, checked from headers before anything is decoded.

``MAX_PIXELS`` (default 100 million pixels, e.g. 12 000 x 8 333) bounds one image, RAW frame or
array plane: a file declaring more is refused with :class:`~rawadapt.errors.InputFileError`
(exit code 2) before its pixels are read, so a small "decompression bomb" cannot take gigabytes.
Set ``RAWADAPT_MAX_PIXELS`` to change it (e.g. ``RAWADAPT_MAX_PIXELS=200000000``). Pillow's own
bomb limit (``Image.MAX_IMAGE_PIXELS``) is set to the same value before every open.

This module has no third-party imports.
"""

from __future__ import annotations

import os
from typing import Any

from rawadapt.errors import ConfigError, InputFileError

DEFAULT_MAX_PIXELS: int = 100_000_000
MAX_PIXELS_ENV = "RAWADAPT_MAX_PIXELS"


def max_pixels() -> int:
    """The pixel limit: ``$RAWADAPT_MAX_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`.

    Raises
    ------
    ConfigError
        The variable is not a positive integer.
    """
    env = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not env:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(env))
    except (ValueError, OverflowError):
        value = 0
    if value <= 0:
        raise ConfigError(f"{MAX_PIXELS_ENV} must be a positive number of pixels, got {env!r}")
    return value


def check_pixels(width: int, height: int, path: Any, what: str = "image") -> None:
    """Refuse an image whose declared size is empty or above :func:`max_pixels`.

    Parameters
    ----------
    width, height
        The size the file declares.
    path
        The file, for the message.
    what
        What the file holds ("image", "RAW frame", "array"...).

    Raises
    ------
    InputFileError
        Zero/negative size, or more pixels than the limit.
    """
    w, h = int(width), int(height)
    if w <= 0 or h <= 0:
        raise InputFileError(f"{what} declares an empty size {w}x{h}", path)
    limit = max_pixels()
    if w * h > limit:
        raise InputFileError(
            f"{what} of {w}x{h} = {w * h / 1e6:.1f} megapixels exceeds the limit of "
            f"{limit / 1e6:g} megapixels (set {MAX_PIXELS_ENV} to raise it)",
            path,
        )


def set_pillow_limit() -> None:
    """Set Pillow's decompression-bomb limit to :func:`max_pixels` (Pillow refuses above twice it)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max_pixels()
