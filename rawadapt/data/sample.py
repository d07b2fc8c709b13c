"""The unit of data in rawadapt: a (noisy, clean) pair with the metadata ADL's modulation needs.

Conventions
-----------
* ``space == "raw"``: 4 planes in canonical order R, G1, G2, B (see :mod:`rawadapt.io.bayer`),
  black subtracted, divided by (white - black). ``noisy`` is brightness-matched to ``clean``:
  it is already multiplied by the exposure ``ratio`` (SID/ELD convention), then clipped to
  [0, 1] unless the reader was asked not to clip.
* ``space == "srgb"``: 3 planes R, G, B in [0, 1] (8-bit values / 255).
* Arrays are ``float32`` NumPy arrays shaped ``(C, H, W)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from rawadapt.errors import NonFiniteError, ShapeError

Space = Literal["raw", "srgb"]
SPACE_CHANNELS: dict[str, int] = {"raw": 4, "srgb": 3}


def check_image(array: np.ndarray, space: str, *, what: str = "image", path: str | None = None) -> None:
    """Raise a typed error unless ``array`` is a finite ``(C, H, W)`` image of ``space``.

    Raises
    ------
    ShapeError
        Wrong number of dimensions or channels, or an empty image.
    NonFiniteError
        NaN or Inf values.
    """
    if space not in SPACE_CHANNELS:
        raise ShapeError(f"unknown space {space!r}; expected 'raw' or 'srgb'", path)
    want = SPACE_CHANNELS[space]
    if array.ndim != 3 or array.shape[0] != want:
        raise ShapeError(f"{what} must have shape ({want}, H, W) for space {space!r}, got {tuple(array.shape)}", path)
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise ShapeError(f"{what} is empty: shape {tuple(array.shape)}", path)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise NonFiniteError(f"{what} holds {bad} NaN/Inf values", path)


@dataclass
class Sample:
    """One noisy image, its clean reference (or None) and metadata.

    Attributes
    ----------
    noisy, clean
        ``(C, H, W)`` float32 arrays (see module docstring); ``clean`` may be None.
    sensor
        Domain name (camera model or profile name), e.g. ``"SonyA7S2"``.
    iso
        ISO speed, or None when unknown.
    ratio
        Exposure ratio the noisy image was multiplied by (1 for normal exposures).
    space
        ``"raw"`` (4 packed planes) or ``"srgb"`` (3 planes).
    scene
        Scene identifier; splits keep scenes disjoint between target pool and test set.
    path, clean_path
        Source files, if any.
    cfa
        For RAW: the CFA phase of the packed planes (the source file's pattern), else None.
    black_level, white_level
        For RAW: the source file's levels in DN (black in canonical plane order), to unpack
        back to the file's own values.
    sample_id
        Unique id inside its dataset.
    extra
        Free-form adapter metadata (exposure time, aperture, split...).
    """

    noisy: np.ndarray
    clean: np.ndarray | None
    sensor: str
    iso: float | None = None
    ratio: float = 1.0
    space: Space = "raw"
    scene: str = ""
    path: str | None = None
    clean_path: str | None = None
    cfa: str | None = None
    black_level: tuple[float, ...] | None = None
    white_level: float | None = None
    sample_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> Sample:
        """Check shapes, channels, finiteness and noisy/clean agreement; return self."""
        check_image(self.noisy, self.space, what="noisy image", path=self.path)
        if self.clean is not None:
            check_image(self.clean, self.space, what="clean image", path=self.clean_path or self.path)
            if self.clean.shape != self.noisy.shape:
                raise ShapeError(
                    f"noisy {tuple(self.noisy.shape)} and clean {tuple(self.clean.shape)} sizes differ",
                    self.path,
                )
        return self

    @property
    def effective_iso(self) -> float | None:
        """ISO x exposure ratio: the gain the noise of the brightness-matched ``noisy`` image
        scales with, and what the modulated models are given as "ISO".

        ADL's modulation feeds ISO because ISO is proportional to the system gain K
        (ADL paper eq. 3). A low-light frame multiplied by the exposure ratio r (SID/ELD) has
        its noise multiplied by r as well, so its effective gain is r·K ∝ ISO·r; with the raw
        ISO alone the network could not tell a x100 frame from a x1 frame of the same ISO.
        For normal exposures (r = 1) this is the ISO itself.
        """
        if self.iso is None:
            return None
        return float(self.iso) * float(self.ratio or 1.0)

    @property
    def height(self) -> int:
        return int(self.noisy.shape[-2])

    @property
    def width(self) -> int:
        return int(self.noisy.shape[-1])

    def with_arrays(self, noisy: np.ndarray, clean: np.ndarray | None, **changes: Any) -> Sample:
        """A copy with new arrays (e.g. a crop) and optional metadata changes."""
        return replace(self, noisy=noisy, clean=clean, **changes)

    def crop(self, top: int, left: int, height: int, width: int) -> Sample:
        """A crop in array coordinates (packed coordinates for RAW: the CFA phase is kept)."""
        sl = (slice(None), slice(top, top + height), slice(left, left + width))
        return self.with_arrays(
            np.ascontiguousarray(self.noisy[sl]),
            None if self.clean is None else np.ascontiguousarray(self.clean[sl]),
        )

    def meta(self) -> dict[str, Any]:
        """Metadata only (no arrays), JSON-friendly."""
        return {
            "sample_id": self.sample_id,
            "sensor": self.sensor,
            "iso": self.iso,
            "ratio": self.ratio,
            "space": self.space,
            "scene": self.scene,
            "path": self.path,
            "clean_path": self.clean_path,
            "cfa": self.cfa,
            "black_level": None if self.black_level is None else list(self.black_level),
            "white_level": self.white_level,
            "height": self.height,
            "width": self.width,
            **{k: v for k, v in self.extra.items() if isinstance(v, (str, int, float, bool, type(None)))},
        }


@dataclass(frozen=True)
class SampleRecord:
    """Metadata of one pair, known without decoding any pixels (what splits work on).

    ``split`` is the dataset's own role for the pair when it has one (e.g. the built-in
    benchmark's ``"source"``, ``"target"``, ``"test"``; SID's ``"train"``/``"test"``), else None.
    """

    sample_id: str
    sensor: str
    iso: float | None
    scene: str
    noisy_path: str
    clean_path: str | None = None
    ratio: float = 1.0
    space: Space = "raw"
    split: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def sample_from_raw(raw: Any, sensor: str | None = None, iso: float | None = None) -> Sample:
    """A :class:`Sample` of a :class:`rawadapt.io.raw.RawImage` (``noisy = planes``, no clean image).

    Parameters
    ----------
    raw
        What :func:`rawadapt.io.raw.read_raw` returned.
    sensor
        Domain name; default the camera name from the metadata.
    iso
        ISO; default the file's ISO.
    """
    from pathlib import Path

    meta = raw.meta
    return Sample(
        noisy=raw.planes,
        clean=None,
        sensor=sensor or meta.camera,
        iso=meta.iso if iso is None else float(iso),
        space="raw",
        scene=Path(meta.path).stem,
        path=meta.path,
        cfa=raw.cfa,
        black_level=tuple(float(b) for b in raw.black_level),
        white_level=float(raw.white_level),
        sample_id=Path(meta.path).stem,
        extra={"exposure_time": meta.exposure_time, "camera": meta.camera},
    )
