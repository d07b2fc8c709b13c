"""Denoise one FILE with a saved model: what ``rawadapt denoise`` does, as a library function.

Input (by extension, :func:`rawadapt.io.readers.file_kind`):

* a camera RAW file (any Bayer file LibRaw reads) -> packed planes in [0, 1]
  (:func:`rawadapt.io.raw.read_raw`); needs a ``raw`` model;
* an sRGB image (PNG / JPEG / TIFF ...) -> ``(3, H, W)`` in [0, 1]; needs an ``srgb`` model;
* a ``.npy`` array ``(4, h, w)`` or ``(3, H, W)`` of normalised values (no metadata).

Output (by extension):

* RAW in: ``.dng`` (the denoised mosaic in the ORIGINAL CFA, black and white levels, with make,
  model, ISO, exposure time, ``AsShotNeutral`` from the camera white balance and
  ``ColorMatrix1`` from the file's XYZ->camera matrix, or derived from its camera->sRGB matrix),
  ``.tif``/``.tiff`` (16-bit mosaic in DN, CFA and levels in the TIFF description as JSON) or
  ``.npy`` (float32 packed planes, not clipped).
* sRGB in: ``.png`` (8-bit, or 16-bit with ``bits=16``), ``.tif``, ``.jpg`` or ``.npy``.

The mosaic written is the even-cropped VISIBLE area that :func:`read_raw` returns (masked
borders and an odd last row/column are not part of it). Denoised values above white are clipped
to white; values slightly below black are kept down to DN 0 (clipping them would bias dark
regions upwards).

Metadata: the sensor name is the file's camera when the model's vocabulary knows it (names are
compared case- and punctuation-insensitively), else ``sensor=``, else the unknown-sensor
policy; the ISO is the file's unless ``iso=`` is given. Explicit arguments always win.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rawadapt.errors import (
    ConfigError,
    InputFileError,
    MetadataError,
    NonFiniteError,
    ShapeError,
    UnknownSensorError,
)
from rawadapt.utils.color import wb_gains, xyz_to_camera  # noqa: F401  (re-exported)
from rawadapt.utils.compute import resolve_precision

RAW_OUTPUTS = (".dng", ".tif", ".tiff", ".npy")
SRGB_OUTPUTS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".npy")


#: sRGB (D65) -> XYZ, as in :mod:`rawadapt.io.dng`
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


def _image_exif(path: Path) -> tuple[str | None, float | None]:
    """Best-effort camera name and ISO from an sRGB file's EXIF (None, None when absent)."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            exif = im.getexif()
            make, model = str(exif.get(271) or "").strip(), str(exif.get(272) or "").strip()
            iso = exif.get_ifd(0x8769).get(34855)
    except Exception:  # noqa: BLE001 - EXIF is optional; the pixels were already read
        return None, None
    if isinstance(iso, (tuple, list)):
        iso = iso[0] if iso else None
    try:
        iso_f = float(iso) if iso else None
    except (TypeError, ValueError):
        iso_f = None
    cam = " ".join(p for p in (make, model) if p) or None
    return cam, iso_f if iso_f and iso_f > 0 else None


def _write_npy(path: Path, array: np.ndarray) -> None:
    from rawadapt.utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        np.save(tmp, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)


def _write_tiff_mosaic(path: Path, mosaic: np.ndarray, description: dict[str, Any]) -> None:
    import tifffile

    from rawadapt.utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp,
            np.ascontiguousarray(mosaic, dtype=np.uint16),
            photometric="minisblack",
            description=json.dumps(description),
        )


def _profile_names() -> list[str]:
    from rawadapt.noise.profiles import list_profiles

    return list_profiles()


def _noise_line(
    model: Any, profile: str | None, sensor: str | None, camera: str | None, iso: float | None, src: Path
) -> tuple[tuple[float, float] | None, str]:
    """The image's noise line for a noise-conditioned model, and where it came from."""
    if not getattr(model, "uses_noise", False):
        return None, "not used (the model is not noise-conditioned)"
    from rawadapt.noise.conditioning import sample_noise_line
    from rawadapt.noise.profiles import list_profiles, load_profile

    if profile is not None:
        prof, source = load_profile(profile), f"--profile {profile}"
    else:
        name = match_sensor(list_profiles(), [sensor, camera])
        if name is None:
            return None, "unknown (no profile for this camera; pass --profile)"
        prof, source = load_profile(name), f"profile {name}"
    if iso is None:
        return None, f"unknown (no ISO; {source} needs one: pass --iso)"
    return sample_noise_line(None, iso, 1.0, profile=prof), source


def denoise_file(
    run: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    sensor: str | None = None,
    iso: float | None = None,
    tile: int | None = 512,
    overlap: int = 32,
    unknown_sensor: str | None = None,
    preview: str | os.PathLike[str] | None = None,
    bits: int = 8,
    precision: str | None = None,
    device: str = "cpu",
    profile: str | None = None,
) -> dict[str, Any]:
    """Denoise ``input_path`` with the model in ``run`` and write ``output_path`` atomically.

    Parameters
    ----------
    run
        Run folder (``model.safetensors`` + ``model.json``) or a ``.safetensors`` file.
    input_path, output_path
        See the module docstring for the formats. The output may not be the input.
    sensor, iso
        Override the file's camera / ISO.
    tile, overlap
        Tiled inference (packed pixels for RAW); ``tile`` None or 0 = whole image.
    unknown_sensor
        ``"error"``, ``"average"`` or ``"iso-only"``; default the policy saved with the model.
    preview
        RAW input only: also write an sRGB PNG rendered through the camera pipeline (camera
        white balance and colour matrix when the file has them).
    bits
        8 or 16: bit depth of PNG/TIFF output for sRGB input.
    precision
        ``"auto"``, ``"fp32"`` or ``"bf16"``; None = the process default (see
        :mod:`rawadapt.utils.compute`).
    profile
        Noise profile (built-in name or YAML path) giving the image's noise parameters to a
        noise-conditioned model; default: the built-in/imported profile of the sensor or the
        file's camera. With one, a camera outside the model's vocabulary needs no type guess.
    device
        Torch device.

    Returns
    -------
    A JSON-friendly summary (paths, space, shape, sensor and ISO used and where they came from,
    seconds).

    Raises
    ------
    InputFileError, ConfigError, ShapeError, UnknownSensorError, CheckpointError
        Bad paths or formats, wrong input space for the model, unknown sensor.
    OutputFileError
        An output is the input (any spelling or link) or cannot be written (checked before
        anything is computed), or the disk filled up while writing.
    NonFiniteError
        NaN/Inf in a ``.npy`` input (or values beyond the float32 range), or in the result.
    """
    from rawadapt.io.readers import file_kind
    from rawadapt.utils.guard import check_outputs, check_writable

    src, dst = Path(input_path), Path(output_path)
    if not src.is_file():
        raise InputFileError("no such input file", src)
    check_outputs([dst, preview], [src])
    kind = file_kind(src)
    space = {"raw": "raw", "image": "srgb"}.get(kind)
    if kind == "array":
        space = "array"
    if space is None:
        raise InputFileError(f"unsupported input type {src.suffix!r} (a camera RAW file, an sRGB image or .npy)", src)
    ext = dst.suffix.lower()
    allowed = {"raw": RAW_OUTPUTS, "srgb": SRGB_OUTPUTS, "array": (".npy",)}[space]
    if ext not in allowed:
        hint = " (use --preview for an sRGB PNG of a RAW result)" if space == "raw" and ext in (".png", ".jpg") else ""
        raise ConfigError(
            f"output format {ext or '(none)'!r} is not available for {space} input; "
            f"use one of {', '.join(allowed)}{hint}",
            dst,
        )
    if preview is not None and space != "raw":
        raise ConfigError("--preview renders a RAW result; the input is not a RAW file", src)
    if preview is not None and Path(preview).suffix.lower() not in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
        raise ConfigError("the preview must be .png, .jpg or .tif", Path(preview))
    if bits not in (8, 16):
        raise ConfigError(f"bits must be 8 or 16, got {bits}")
    if iso is not None and not (np.isfinite(iso) and iso > 0):
        raise MetadataError(f"--iso must be a positive number, got {iso}")
    for out in (dst, preview):  # before any computation: a bad output path wastes no work
        if out is not None:
            check_writable(out)

    from rawadapt.models.checkpoint import load_model
    from rawadapt.models.inference import denoise_image

    model, meta = load_model(run, device=device)
    if unknown_sensor is not None:
        try:
            model.set_unknown_sensor_policy(unknown_sensor)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    raw = None
    file_camera: str | None = None
    file_iso: float | None = None
    if space == "raw":
        if model.space != "raw":
            raise ShapeError(
                f"{src.name} is a RAW file but the model in {run} denoises {model.space} images "
                '(see its model.json "space")',
                src,
            )
        from rawadapt.io.raw import read_raw

        raw = read_raw(src)
        x = raw.planes
        file_camera, file_iso = raw.meta.camera, raw.meta.iso
    elif space == "srgb":
        if model.space != "srgb":
            raise ShapeError(
                f"{src.name} is an sRGB image but the model in {run} denoises {model.space} images "
                '(see its model.json "space")',
                src,
            )
        from rawadapt.io.images import read_image

        x = read_image(src)
        file_camera, file_iso = _image_exif(src)
    else:
        from rawadapt.io.images import read_array

        x = read_array(src)
        if x.ndim != 3 or x.shape[0] != model.in_channels or x.dtype.kind != "f":
            raise ShapeError(
                f"a .npy input for this {model.space} model must be float ({model.in_channels}, H, W), "
                f"got {x.dtype} {x.shape}",
                src,
            )
        with np.errstate(over="ignore"):
            x = x.astype(np.float32, copy=False)  # float64 beyond the float32 range becomes Inf: refused below
        if not np.isfinite(x).all():
            raise NonFiniteError("the array holds NaN or Inf values (or values beyond the float32 range)", src)
        space = model.space

    # --- sensor and ISO ---------------------------------------------------------------------
    used_sensor: str | None = None
    if not model.uses_metadata:
        sensor_source = "not used (the model ignores metadata)"
    elif sensor is not None:
        used_sensor = match_sensor(model.sensors, [sensor]) or sensor
        sensor_source = "--sensor"
        if (
            used_sensor not in model.sensors
            and getattr(model, "uses_noise", False)
            and unknown_sensor is None
            and (profile is not None or match_sensor(_profile_names(), [sensor]))
        ):
            model.set_unknown_sensor_policy("iso-only")
            sensor_source = "--sensor, not in the vocabulary (no type; noise parameters from its profile)"
    else:
        used_sensor = match_sensor(model.sensors, [file_camera, raw.meta.model if raw else None])
        sensor_source = "file metadata"
        if (
            used_sensor is None
            and getattr(model, "uses_noise", False)
            and unknown_sensor is None
            and (profile is not None or match_sensor(_profile_names(), [file_camera]))
        ):
            # a noise-conditioned model needs no type guess when the noise parameters are known
            model.set_unknown_sensor_policy("iso-only")
            sensor_source = "unknown (no type; noise parameters from its profile)"
        elif used_sensor is None:
            known = ", ".join(model.sensors) or "(none)"
            if model.unknown_sensor == "error" and model._needs_sensor():
                what = f"the file's camera {file_camera!r}" if file_camera else "the file names no camera; it"
                raise UnknownSensorError(
                    f"{what} is not in the model's vocabulary [{known}]; pass --sensor NAME "
                    "or --unknown-sensor average|iso-only",
                    src,
                )
            sensor_source = f"unknown ({model.unknown_sensor})"
    used_iso = float(iso) if iso is not None else file_iso
    iso_source = "--iso" if iso is not None else ("file metadata" if file_iso is not None else "unknown")
    noise, noise_source = _noise_line(model, profile, used_sensor or sensor, file_camera, used_iso, src)

    t0 = time.perf_counter()
    shape = list(x.shape)
    y = denoise_image(
        model,
        x,
        sensor=used_sensor,
        iso=used_iso,
        cfa=raw.cfa if raw is not None else None,
        tile=tile or None,
        overlap=overlap,
        device=device,
        precision=precision,
        noise=noise,
    )
    seconds = time.perf_counter() - t0
    del x  # the input is no longer needed: lower peak memory while writing
    if not np.isfinite(y).all():
        raise NonFiniteError(f"the model in {run} produced NaN or Inf values for this input; nothing written", src)

    # --- write ------------------------------------------------------------------------------
    if raw is not None:
        out01 = np.minimum(y, 1.0)
        if ext == ".npy":
            _write_npy(dst, y)
        else:
            if ext == ".dng":
                from rawadapt.io.dng import write_dng_like

                write_dng_like(dst, out01, raw, software="rawadapt denoise")
            else:
                from rawadapt.io.raw import planes_to_mosaic

                mosaic = planes_to_mosaic(out01, raw.cfa, raw.black_level, raw.white_level)
                _write_tiff_mosaic(
                    dst,
                    mosaic,
                    {
                        "cfa": raw.cfa,
                        "black_level": raw.black_level,
                        "white_level": raw.white_level,
                        "camera": raw.meta.camera,
                        "iso": raw.meta.iso,
                        "software": "rawadapt denoise",
                    },
                )
        if preview is not None:
            from rawadapt.io.images import write_image
            from rawadapt.noise.pipeline import render_srgb

            rgb = render_srgb(
                np.clip(y, 0.0, 1.0), raw.cfa, wb=wb_gains(raw.meta.camera_whitebalance), ccm=raw.meta.color_matrix
            )
            write_image(Path(preview), rgb, bits=8)
    elif ext == ".npy":
        _write_npy(dst, y)
    else:
        from rawadapt.io.images import write_image

        write_image(dst, np.clip(y, 0.0, 1.0, out=y), bits=8 if ext in (".jpg", ".jpeg") else bits)

    return {
        "input": str(src),
        "output": str(dst),
        "preview": str(preview) if preview else None,
        "run": str(run),
        "arch": meta.get("arch"),
        "space": space,
        "shape": shape,
        "sensor": used_sensor,
        "sensor_source": sensor_source,
        "file_camera": file_camera,
        "iso": used_iso,
        "iso_source": iso_source,
        "unknown_sensor": model.unknown_sensor,
        "noise": list(noise) if noise is not None else None,
        "noise_source": noise_source,
        "tile": tile or None,
        "overlap": overlap if tile else None,
        "precision": resolve_precision(precision if precision is not None else model.compute_precision, device),
        "seconds": round(seconds, 4),
    }
