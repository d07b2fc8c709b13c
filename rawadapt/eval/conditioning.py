"""One place that decides what a modulated network is told about an image: sensor type, ISO and
noise parameters, and where each came from.

:func:`resolve_conditioning` takes the model, what the file says (:class:`FileMetadata`) and the
user's overrides, and owns every rule of that decision:

* **sensor**: ``sensor=`` wins, else the file's camera (or model) name when the model's
  vocabulary has it (:func:`match_sensor`: case, spaces and punctuation ignored), else the
  unknown-sensor policy (``error`` raises :class:`~rawadapt.errors.UnknownSensorError`;
  ``average`` / ``iso-only`` go on). A noise-conditioned model needs no type guess when the
  image's noise parameters are known: it switches to ``iso-only`` unless a policy was given.
* **ISO**: ``iso=`` wins (it must be a positive finite number), else the file's, else unknown
  (the modulation then feeds its reference ISO).
* **noise** (noise-conditioned models only; :func:`resolve_noise`), first that applies:

  1. ``profile=`` (name or YAML) at the resolved ISO (``noise_source`` ``"profile:<profile>"``;
     without an ISO: :class:`~rawadapt.errors.MetadataError`, pass ``--iso``);
  2. the built-in or imported profile of ``sensor=`` or of the file's camera, found by
     :func:`rawadapt.noise.profiles.matching_profiles` from the EXIF make and model (case,
     spaces and punctuation ignored; a profile's ``aliases`` map e.g. ``"Canon EOS 5D Mark IV"``
     to ``CanonEOS5D4``), at the resolved ISO (``"camera:<profile name>"``); a camera profile
     without an ISO falls through to 3;
  3. an estimate from the image itself (``"estimated"``, :func:`estimate_noise_line`: the blind
     Poisson-Gaussian fit of :func:`rawadapt.baselines.noise_level.estimate_poisson_gaussian`);
  4. none (``"unknown"``, only when no image is given).

  ``noise_detail`` says in words what was used and why. A noise-conditioned model whose sensor
  is outside its vocabulary needs no type guess once its noise is known: it switches to
  ``iso-only`` unless a policy was given.

The result's :meth:`Conditioning.network_kwargs` is what
:func:`rawadapt.models.inference.denoise_image` takes, by keyword.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rawadapt.errors import ConfigError, MetadataError, ShapeError, UnknownSensorError
from rawadapt.noise.conditioning import sample_noise_line
from rawadapt.noise.profiles import load_profile, matching_profiles

#: the blind noise estimate of a large image looks at this many tiles of this side
ESTIMATE_TILE = 256
ESTIMATE_MAX_TILES = 16


@dataclass(frozen=True)
class FileMetadata:
    """What an input file says about its capture (every field optional)."""

    camera: str | None = None
    model: str | None = None
    iso: float | None = None
    cfa: str | None = None
    make: str | None = None

    @classmethod
    def from_raw(cls, raw: Any) -> FileMetadata:
        """What a decoded camera RAW file (:class:`~rawadapt.io.raw.RawImage`) says."""
        m = raw.meta
        return cls(camera=m.camera, model=m.model, iso=m.iso, cfa=raw.cfa, make=m.make)

    def camera_names(self) -> list[str]:
        """The names the file gives its camera, for profile matching: the cleaned camera name,
        ``"make model"`` and the bare model (empty ones left out)."""
        both = " ".join(p for p in (self.make, self.model) if p)
        return [n for n in (self.camera, both, self.model) if n and n != "unknown"]


@dataclass(frozen=True)
class Conditioning:
    """The metadata a network is given, and where each part came from (for ``--json``)."""

    sensor: str | None
    sensor_source: str
    iso: float | None
    iso_source: str
    noise: tuple[float, float] | None
    noise_source: str
    unknown_sensor: str
    noise_detail: str = ""

    def network_kwargs(self) -> dict[str, Any]:
        """``sensor=``, ``iso=``, ``noise=`` for :func:`rawadapt.models.inference.denoise_image`."""
        return {"sensor": self.sensor, "iso": self.iso, "noise": self.noise}

    def summary(self) -> dict[str, Any]:
        return {
            "sensor": self.sensor,
            "sensor_source": self.sensor_source,
            "iso": self.iso,
            "iso_source": self.iso_source,
            "unknown_sensor": self.unknown_sensor,
            "noise": list(self.noise) if self.noise is not None else None,
            "noise_source": self.noise_source,
            "noise_detail": self.noise_detail,
        }


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def match_sensor(vocabulary: Sequence[str], candidates: Sequence[str | None]) -> str | None:
    """The first vocabulary entry equal to a candidate, ignoring case, spaces and punctuation.

    Examples
    --------
    >>> match_sensor(["SonyA7S2", "NikonD850"], ["Nikon D850"])
    'NikonD850'
    """
    by_norm = {_norm(v): v for v in vocabulary}
    for c in candidates:
        if c and _norm(c) in by_norm:
            return by_norm[_norm(c)]
    return None


@dataclass(frozen=True)
class NoiseChoice:
    """The image's noise line for a noise-conditioned model and where it came from.

    Attributes
    ----------
    noise
        ``(a, b)`` of ``Var = a x + b`` (normalised units), or None.
    source
        ``"profile:<--profile>"``, ``"camera:<profile name>"``, ``"estimated"``, ``"unknown"``
        or ``"not used"`` (the model is not noise-conditioned).
    detail
        One human line: what was used, and why the earlier sources were not.
    """

    noise: tuple[float, float] | None
    source: str
    detail: str


def _estimation_sample(image: np.ndarray) -> np.ndarray:
    """``image`` itself, or for a large one up to :data:`ESTIMATE_MAX_TILES` tiles spread over it
    stacked as channels (the fit pools every channel's windows; no seams between tiles)."""
    _, h, w = image.shape
    t = ESTIMATE_TILE
    if h * w <= ESTIMATE_MAX_TILES * t * t or h < t or w < t:
        return image
    n = int(math.isqrt(ESTIMATE_MAX_TILES))
    ys = np.linspace(0, h - t, n).round().astype(int)
    xs = np.linspace(0, w - t, n).round().astype(int)
    return np.concatenate([image[:, y : y + t, x : x + t] for y in ys for x in xs], axis=0)


def estimate_noise_line(image: np.ndarray) -> tuple[float, float]:
    """Blind estimate of the image's noise line ``(a, b)`` from its pixels alone.

    :func:`rawadapt.baselines.noise_level.estimate_poisson_gaussian` (local means and
    second-order details binned by signal, a robust low quantile per bin, a non-negative fit of
    ``var = a x + b``) on the whole ``(C, H, W)`` image, or on 16 tiles of 256 x 256 spread over
    a large one (the estimate needs flat areas, not all of them: 1.5 s instead of 4.3 s and a
    fraction of the memory for a 12 MPix frame on one core here).

    Parameters
    ----------
    image
        ``(C, H, W)`` noisy image normalised to about [0, 1] (RAW packed planes or sRGB).

    Returns
    -------
    tuple of float
        ``(a, b)``, both >= 0.

    Raises
    ------
    ShapeError
        Not a ``(C, H, W)`` image, or too small (under 3 x 3 pixels).
    """
    from rawadapt.baselines.noise_level import estimate_poisson_gaussian

    x = np.asarray(image)
    if x.ndim != 3:
        raise ShapeError(f"expected a (C, H, W) image to estimate its noise, got shape {tuple(x.shape)}")
    level = estimate_poisson_gaussian(_estimation_sample(x))
    return float(level.a[0]), float(level.b[0])


def resolve_noise(
    model: Any,
    profile: str | None,
    names: Sequence[str | None],
    iso: float | None,
    image: np.ndarray | None = None,
) -> NoiseChoice:
    """The image's noise line for a noise-conditioned model: ``profile``, else the profile of a
    camera in ``names`` (at ``iso``), else an estimate from ``image`` (rules in the module
    docstring).

    Parameters
    ----------
    model
        The network (only its ``uses_noise`` is read).
    profile
        ``--profile``: a profile name or YAML path, or None.
    names
        The sensor / camera names to find a profile for, in order of preference.
    iso
        The resolved ISO, or None.
    image
        The ``(C, H, W)`` normalised input, for the estimate; None = no estimate.

    Raises
    ------
    MetadataError
        ``profile`` is given but the ISO is unknown.
    UnknownSensorError, InputFileError, ConfigError
        ``profile`` cannot be loaded.
    """
    if not getattr(model, "uses_noise", False):
        return NoiseChoice(None, "not used", "the model is not noise-conditioned")
    if profile is not None:
        prof = load_profile(profile)
        if iso is None:
            raise MetadataError(f"--profile {profile} needs the image's ISO and the file records none; pass --iso")
        return NoiseChoice(
            sample_noise_line(None, iso, 1.0, profile=prof),
            f"profile:{profile}",
            f"--profile {profile} at ISO {iso:g}",
        )
    why = f"no profile for {_describe(names)}"
    found = matching_profiles(names)
    if found:
        prof = load_profile(found[0])
        if iso is not None:
            return NoiseChoice(
                sample_noise_line(None, iso, 1.0, profile=prof),
                f"camera:{prof.name}",
                f"profile {prof.name} of {_describe(names)} at ISO {iso:g}",
            )
        why = f"profile {prof.name} of {_describe(names)} needs an ISO and the file records none (pass --iso)"
    if image is not None:
        try:
            a, b = estimate_noise_line(image)
        except ShapeError as exc:  # a few pixels: nothing to estimate from
            return NoiseChoice(None, "unknown", f"unknown ({why}; {exc.message}; pass --profile)")
        return NoiseChoice((a, b), "estimated", f"estimated from the image ({why})")
    return NoiseChoice(None, "unknown", f"unknown ({why}; pass --profile)")


def _describe(names: Sequence[str | None]) -> str:
    first = next((n for n in names if n), None)
    return f"camera {first!r}" if first else "this camera (the file names none)"


def _vocabulary_sensor(model: Any, meta: FileMetadata) -> str | None:
    """The model's sensor for the file's camera: its names, else a profile matching them (and so
    its aliases: a file of a "Canon EOS 5D Mark IV" is the sensor ``CanonEOS5D4``)."""
    found = match_sensor(model.sensors, [meta.camera, meta.model])
    if found is None and model.sensors:
        found = match_sensor(model.sensors, matching_profiles(meta.camera_names()))
    return found


def resolve_conditioning(
    model: Any,
    meta: FileMetadata,
    *,
    sensor: str | None = None,
    iso: float | None = None,
    profile: str | None = None,
    unknown_sensor: str | None = None,
    path: str | Path | None = None,
    image: np.ndarray | None = None,
) -> Conditioning:
    """Decide sensor, ISO and noise parameters for ``model`` (rules in the module docstring).

    ``unknown_sensor`` (when given) is set on the model; the model's policy may also switch to
    ``iso-only`` for a noise-conditioned model whose noise parameters are known (from a profile
    or estimated from ``image``).

    Parameters
    ----------
    model
        The network.
    meta
        What the input file says.
    sensor, iso, profile, unknown_sensor
        The user's overrides (``--sensor``, ``--iso``, ``--profile``, ``--unknown-sensor``).
    path
        The input (named in errors).
    image
        The ``(C, H, W)`` normalised input: noise-conditioned models estimate its noise when no
        profile applies.

    Raises
    ------
    MetadataError
        ``iso`` is not a positive finite number, or ``profile`` is given without an ISO.
    UnknownSensorError
        The sensor is not in the vocabulary and the policy is ``error``.
    ConfigError
        An unknown policy name.
    """
    if iso is not None and not (math.isfinite(iso) and iso > 0):
        raise MetadataError(f"--iso must be a positive number, got {iso}")
    if unknown_sensor is not None:
        try:
            model.set_unknown_sensor_policy(unknown_sensor)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    noise_model = bool(getattr(model, "uses_noise", False))
    used_iso = float(iso) if iso is not None else meta.iso
    iso_source = "--iso" if iso is not None else ("file metadata" if meta.iso is not None else "unknown")
    used_sensor: str | None = None
    if model.uses_metadata:
        if sensor is not None:
            used_sensor = match_sensor(model.sensors, [sensor]) or sensor
        else:
            used_sensor = _vocabulary_sensor(model, meta)
    choice = resolve_noise(model, profile, [sensor or used_sensor, *meta.camera_names()], used_iso, image)
    noise_known = choice.noise is not None
    if not model.uses_metadata:
        sensor_source = "not used (the model ignores metadata)"
    elif sensor is not None:
        sensor_source = "--sensor"
        if used_sensor not in model.sensors and noise_model and unknown_sensor is None and noise_known:
            model.set_unknown_sensor_policy("iso-only")
            sensor_source = f"--sensor, not in the vocabulary (no type; noise parameters {choice.source})"
    else:
        sensor_source = "file metadata"
        if used_sensor is None and noise_model and unknown_sensor is None and noise_known:
            model.set_unknown_sensor_policy("iso-only")
            sensor_source = f"unknown (no type; noise parameters {choice.source})"
        elif used_sensor is None:
            known = ", ".join(model.sensors) or "(none)"
            if model.unknown_sensor == "error" and model._needs_sensor():
                what = f"the file's camera {meta.camera!r}" if meta.camera else "the file names no camera; it"
                raise UnknownSensorError(
                    f"{what} is not in the model's vocabulary [{known}]; pass --sensor NAME "
                    "or --unknown-sensor average|iso-only",
                    path,
                )
            sensor_source = f"unknown ({model.unknown_sensor})"
    return Conditioning(
        sensor=used_sensor,
        sensor_source=sensor_source,
        iso=used_iso,
        iso_source=iso_source,
        noise=choice.noise,
        noise_source=choice.source,
        unknown_sensor=model.unknown_sensor,
        noise_detail=choice.detail,
    )
