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
policy; the ISO is the file's unless ``iso=`` is given. Explicit arguments always win. A
noise-conditioned model gets the image's noise line from ``profile=``, else from the built-in or
imported profile of the file's camera (EXIF make/model), else estimated from the image itself;
the result's ``noise_source`` says which (:mod:`rawadapt.eval.conditioning`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rawadapt.errors import ConfigError, InputFileError, MetadataError, NonFiniteError, ShapeError
from rawadapt.eval.conditioning import FileMetadata, match_sensor, resolve_conditioning  # noqa: F401  (re-exported)
from rawadapt.io.dng import write_dng_like
from rawadapt.io.images import read_array, read_image, write_image
from rawadapt.io.raw import planes_to_mosaic, read_raw
from rawadapt.io.readers import file_kind
from rawadapt.models.checkpoint import load_model
from rawadapt.models.inference import denoise_image
from rawadapt.noise.pipeline import render_srgb
from rawadapt.utils.atomic import atomic_path
from rawadapt.utils.color import wb_gains, xyz_to_camera  # noqa: F401  (re-exported)
from rawadapt.utils.compute import resolve_precision
from rawadapt.utils.guard import check_outputs, check_writable

RAW_OUTPUTS = (".dng", ".tif", ".tiff", ".npy")
SRGB_OUTPUTS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".npy")


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

    with atomic_path(path) as tmp:
        np.save(tmp, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)


def _write_tiff_mosaic(path: Path, mosaic: np.ndarray, description: dict[str, Any]) -> None:
    import tifffile

    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp,
            np.ascontiguousarray(mosaic, dtype=np.uint16),
            photometric="minisblack",
            description=json.dumps(description),
        )


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
        noise-conditioned model (needs an ISO); default: the built-in/imported profile of the
        sensor or the file's camera (EXIF make/model, aliases), else an estimate from the image.
        With known noise, a camera outside the model's vocabulary needs no type guess.
    device
        Torch device.

    Returns
    -------
    A JSON-friendly summary (paths, space, shape, sensor, ISO and noise line used and where they
    came from: ``noise_source`` is ``"profile:<profile>"``, ``"camera:<profile name>"``,
    ``"estimated"``, ``"unknown"`` or ``"not used"``, ``noise_detail`` says it in words; seconds).

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
    plan = plan_denoise(input_path, output_path, preview=preview, bits=bits, iso=iso)

    model, meta = load_model(run, device=device)
    image = read_input(plan, model, run)
    cond = resolve_conditioning(
        model,
        image.meta,
        sensor=sensor,
        iso=iso,
        profile=profile,
        unknown_sensor=unknown_sensor,
        path=plan.src,
        image=image.x,
    )
    shape = list(image.x.shape)
    y, seconds = run_model(
        model, image, cond, tile=tile, overlap=overlap, device=device, precision=precision, run=run, path=plan.src
    )
    write_outputs(plan, image, y)
    return {
        "input": str(plan.src),
        "output": str(plan.dst),
        "preview": str(preview) if preview else None,
        "run": str(run),
        "arch": meta.get("arch"),
        "space": image.space,
        "shape": shape,
        "file_camera": image.meta.camera,
        **cond.summary(),
        "tile": tile or None,
        "overlap": overlap if tile else None,
        "precision": resolve_precision(precision if precision is not None else model.compute_precision, device),
        "seconds": round(seconds, 4),
    }


# -- the steps ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DenoisePlan:
    """Checked paths and formats of one ``denoise`` call (nothing read or computed yet)."""

    src: Path
    dst: Path
    space: str  # "raw", "srgb" or "array" (a .npy of the model's space)
    ext: str
    preview: Path | None
    bits: int


@dataclass
class InputImage:
    """The decoded input: normalised planes, the RAW container (RAW input) and its metadata."""

    x: np.ndarray
    space: str
    raw: Any
    meta: FileMetadata


def plan_denoise(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    preview: str | os.PathLike[str] | None = None,
    bits: int = 8,
    iso: float | None = None,
) -> DenoisePlan:
    """Check the input exists, the output formats fit it and every output is writable and is
    not an input, BEFORE anything is loaded or computed."""

    src, dst = Path(input_path), Path(output_path)
    if not src.is_file():
        raise InputFileError("no such input file", src)
    check_outputs([dst, preview], [src])
    kind = file_kind(src)
    space = {"raw": "raw", "image": "srgb", "array": "array"}.get(kind)
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
    return DenoisePlan(src, dst, space, ext, Path(preview) if preview is not None else None, bits)


def read_input(plan: DenoisePlan, model: Any, run: Any) -> InputImage:
    """Decode the input for ``model`` (its space must match); ``.npy`` must be finite float."""
    src = plan.src
    if plan.space == "raw":
        if model.space != "raw":
            raise ShapeError(
                f"{src.name} is a RAW file but the model in {run} denoises {model.space} images "
                '(see its model.json "space")',
                src,
            )

        raw = read_raw(src)
        return InputImage(raw.planes, "raw", raw, FileMetadata.from_raw(raw))
    if plan.space == "srgb":
        if model.space != "srgb":
            raise ShapeError(
                f"{src.name} is an sRGB image but the model in {run} denoises {model.space} images "
                '(see its model.json "space")',
                src,
            )

        camera, file_iso = _image_exif(src)
        return InputImage(read_image(src), "srgb", None, FileMetadata(camera=camera, iso=file_iso))

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
    return InputImage(x, model.space, None, FileMetadata())


def run_model(
    model: Any,
    image: InputImage,
    cond: Any,
    *,
    tile: int | None,
    overlap: int,
    device: str,
    precision: str | None,
    run: Any,
    path: Path | None = None,
) -> tuple[np.ndarray, float]:
    """The denoised planes (finite, else NonFiniteError) and the network's seconds."""

    t0 = time.perf_counter()
    y = denoise_image(
        model,
        image.x,
        cfa=image.raw.cfa if image.raw is not None else None,
        tile=tile or None,
        overlap=overlap,
        device=device,
        precision=precision,
        **cond.network_kwargs(),
    )
    seconds = time.perf_counter() - t0
    image.x = np.empty(0, dtype=np.float32)  # the input is no longer needed: lower peak memory while writing
    if not np.isfinite(y).all():
        raise NonFiniteError(f"the model in {run} produced NaN or Inf values for this input; nothing written", path)
    return y, seconds


def write_outputs(plan: DenoisePlan, image: InputImage, y: np.ndarray) -> None:
    """Write the result (and the preview) in the plan's formats, atomically."""
    raw, dst, ext = image.raw, plan.dst, plan.ext
    if raw is not None:
        out01 = np.minimum(y, 1.0)
        if ext == ".npy":
            _write_npy(dst, y)
        elif ext == ".dng":
            write_dng_like(dst, out01, raw, software="rawadapt denoise")
        else:
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
        if plan.preview is not None:
            rgb = render_srgb(
                np.clip(y, 0.0, 1.0), raw.cfa, wb=wb_gains(raw.meta.camera_whitebalance), ccm=raw.meta.color_matrix
            )
            write_image(plan.preview, rgb, bits=8)
    elif ext == ".npy":
        _write_npy(dst, y)
    else:
        write_image(dst, np.clip(y, 0.0, 1.0, out=y), bits=8 if ext in (".jpg", ".jpeg") else plan.bits)
