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
* **noise** (noise-conditioned models only): ``profile=`` (name or YAML), else the built-in or
  imported profile of the sensor / the file's camera, at the resolved ISO; else unknown.

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

from rawadapt.errors import ConfigError, MetadataError, UnknownSensorError
from rawadapt.noise.conditioning import sample_noise_line
from rawadapt.noise.profiles import list_profiles, load_profile


@dataclass(frozen=True)
class FileMetadata:
    """What an input file says about its capture (every field optional)."""

    camera: str | None = None
    model: str | None = None
    iso: float | None = None
    cfa: str | None = None


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


def _profile_names() -> list[str]:

    return list_profiles()


def _has_profile(profile: str | None, names: Sequence[str | None]) -> bool:
    return profile is not None or match_sensor(_profile_names(), names) is not None


def resolve_noise(
    model: Any, profile: str | None, names: Sequence[str | None], iso: float | None
) -> tuple[tuple[float, float] | None, str]:
    """The image's noise line for a noise-conditioned model, and where it came from."""
    if not getattr(model, "uses_noise", False):
        return None, "not used (the model is not noise-conditioned)"

    if profile is not None:
        prof, source = load_profile(profile), f"--profile {profile}"
    else:
        name = match_sensor(_profile_names(), names)
        if name is None:
            return None, "unknown (no profile for this camera; pass --profile)"
        prof, source = load_profile(name), f"profile {name}"
    if iso is None:
        return None, f"unknown (no ISO; {source} needs one: pass --iso)"
    return sample_noise_line(None, iso, 1.0, profile=prof), source


def resolve_conditioning(
    model: Any,
    meta: FileMetadata,
    *,
    sensor: str | None = None,
    iso: float | None = None,
    profile: str | None = None,
    unknown_sensor: str | None = None,
    path: str | Path | None = None,
) -> Conditioning:
    """Decide sensor, ISO and noise parameters for ``model`` (rules in the module docstring).

    ``unknown_sensor`` (when given) is set on the model; the model's policy may also switch to
    ``iso-only`` for a noise-conditioned model given a profile.

    Raises
    ------
    MetadataError
        ``iso`` is not a positive finite number.
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
    used_sensor: str | None = None
    if not model.uses_metadata:
        sensor_source = "not used (the model ignores metadata)"
    elif sensor is not None:
        used_sensor = match_sensor(model.sensors, [sensor]) or sensor
        sensor_source = "--sensor"
        if (
            used_sensor not in model.sensors
            and noise_model
            and unknown_sensor is None
            and _has_profile(profile, [sensor])
        ):
            model.set_unknown_sensor_policy("iso-only")
            sensor_source = "--sensor, not in the vocabulary (no type; noise parameters from its profile)"
    else:
        used_sensor = match_sensor(model.sensors, [meta.camera, meta.model])
        sensor_source = "file metadata"
        if used_sensor is None and noise_model and unknown_sensor is None and _has_profile(profile, [meta.camera]):
            model.set_unknown_sensor_policy("iso-only")
            sensor_source = "unknown (no type; noise parameters from its profile)"
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
    used_iso = float(iso) if iso is not None else meta.iso
    iso_source = "--iso" if iso is not None else ("file metadata" if meta.iso is not None else "unknown")
    noise, noise_source = resolve_noise(model, profile, [used_sensor or sensor, meta.camera], used_iso)
    return Conditioning(
        sensor=used_sensor,
        sensor_source=sensor_source,
        iso=used_iso,
        iso_source=iso_source,
        noise=noise,
        noise_source=noise_source,
        unknown_sensor=model.unknown_sensor,
    )
