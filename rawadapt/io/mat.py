"""SIDD ``.MAT`` files (docs/data.md).

* ``*_NOISY_RAW_0NN.MAT`` / ``*_GT_RAW_0NN.MAT``: MATLAB v7.3, i.e. HDF5 (with a 512-byte
  MATLAB user block), one dataset (usually ``x``) holding the Bayer mosaic as floats in [0, 1].
  MATLAB stores arrays column-major, so h5py sees the TRANSPOSE of the MATLAB matrix: a
  3000x5328 MATLAB mosaic comes out of h5py as 5328x3000. :func:`read_sidd_mosaic` transposes
  it back (unless ``expected_shape`` says the stored orientation is already right) and replaces
  NaN/Inf by 0/1 (``nan_to_num``: SIDD mosaics contain a few NaNs). Older v5 files (not HDF5)
  are read with ``scipy.io.loadmat``, which already returns the MATLAB orientation.
* ``*_METADATA_RAW_0NN.MAT``: MATLAB v5 with the DNG tags of the original shot;
  :func:`read_sidd_metadata` returns a JSON-friendly summary: CFA from ``UnknownTags`` tag
  33422 (CFAPattern, 0 = R, 1 = G, 2 = B, row-major 2x2; ``[1 0 2 1]`` = ``"GRBG"``), the
  NoiseProfile (tag 51041, ``[beta1, beta2]`` per colour plane), ISO, exposure, levels.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rawadapt.errors import (
    InputFileError,
    MetadataError,
    ShapeError,
    UnsupportedSensorError,
)
from rawadapt.io.bayer import normalize_cfa

#: DNG tag ids found in SIDD's UnknownTags
TAG_CFA_REPEAT = 33421
TAG_CFA_PATTERN = 33422
TAG_NOISE_PROFILE = 51041


def _pick_dataset(f: Any, key: str | None, path: Path) -> Any:
    import h5py

    if key is not None:
        if key not in f or not isinstance(f[key], h5py.Dataset):
            raise InputFileError(f"no dataset {key!r} in the HDF5 .MAT file (has: {sorted(f.keys())})", path)
        return f[key]
    if "x" in f and isinstance(f["x"], h5py.Dataset):
        return f["x"]
    cands = [f[k] for k in f.keys() if not k.startswith("#") and isinstance(f[k], h5py.Dataset) and f[k].ndim == 2]
    if len(cands) != 1:
        raise InputFileError(
            f"cannot tell which dataset holds the mosaic (2-D datasets: {[c.name for c in cands]}); pass key=", path
        )
    return cands[0]


def read_sidd_mosaic(
    path: str | os.PathLike[str], *, key: str | None = None, expected_shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Read a SIDD noisy or ground-truth RAW mosaic as ``(H, W)`` float32.

    Parameters
    ----------
    path
        ``*_NOISY_RAW_0NN.MAT`` or ``*_GT_RAW_0NN.MAT``.
    key
        Dataset name; default ``"x"`` if present, else the only 2-D dataset.
    expected_shape
        ``(H, W)`` of the MATLAB matrix if known (e.g. from the metadata file). HDF5 arrays are
        transposed (MATLAB column-major) unless their stored shape already equals this.

    Returns
    -------
    Float32 mosaic with NaN -> 0, +Inf -> 1, -Inf -> 0.

    Raises
    ------
    InputFileError
        Missing, corrupt, or no recognisable mosaic dataset.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError("no such file", p)
    import h5py

    try:
        hdf5 = h5py.is_hdf5(p)
    except OSError as exc:
        raise InputFileError(f"cannot read: {exc}", p) from None
    if hdf5:
        try:
            with h5py.File(p, "r") as f:
                ds = _pick_dataset(f, key, p)
                arr = np.asarray(ds[()])
        except InputFileError:
            raise
        except (OSError, KeyError, ValueError) as exc:
            raise InputFileError(f"corrupt HDF5 (MATLAB v7.3) file: {exc}", p) from None
        if arr.ndim != 2:
            raise ShapeError(f"the mosaic dataset must be 2-D, got shape {arr.shape}", p)
        if expected_shape is None or tuple(arr.shape) != tuple(expected_shape):
            arr = arr.T  # MATLAB column-major -> row-major
    else:
        from scipy.io import loadmat

        try:
            m = loadmat(p)
        except Exception as exc:  # noqa: BLE001 - scipy raises many types on bad files
            raise InputFileError(f"not a readable MATLAB file: {exc}", p) from None
        names = [key] if key else (["x"] if "x" in m else [k for k in m if not k.startswith("__")])
        arrs = [np.asarray(m[k]) for k in names if k in m and np.asarray(m[k]).ndim == 2]
        if len(arrs) != 1:
            raise InputFileError(f"cannot find one 2-D mosaic in the .MAT file (variables: {names})", p)
        arr = arrs[0]
    if not np.issubdtype(arr.dtype, np.number):
        raise InputFileError(f"the mosaic is not numeric (dtype {arr.dtype})", p)
    out = np.nan_to_num(np.ascontiguousarray(arr, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return out


def _tag_values(v: Any) -> list[float]:
    return [float(x) for x in np.asarray(v, dtype=np.float64).reshape(-1)]


def _scalar(v: Any) -> float | None:
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    return float(a[0]) if a.size else None


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def cfa_from_tag(values: Any, path: Any = None) -> str:
    """DNG CFAPattern values (0 R, 1 G, 2 B, row-major 2x2) -> CFA string, e.g. [1 0 2 1] -> 'GRBG'."""
    vals = [int(v) for v in np.asarray(values).reshape(-1)]
    if len(vals) != 4 or any(v not in (0, 1, 2) for v in vals):
        raise UnsupportedSensorError(f"CFA pattern {vals} is not a 2x2 RGB Bayer pattern", path)
    try:
        return normalize_cfa("".join("RGB"[v] for v in vals))
    except Exception:
        raise UnsupportedSensorError(f"CFA pattern {vals} is not a Bayer pattern", path) from None


def read_sidd_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a SIDD ``*_METADATA_RAW_0NN.MAT`` (MATLAB v5) into a JSON-friendly dict.

    Returns
    -------
    dict with keys ``cfa`` (e.g. ``"GRBG"``), ``noise_profile`` (list of floats from tag 51041:
    ``[beta1, beta2]`` per colour plane), ``iso``, ``exposure_time``, ``make``, ``model``,
    ``black_level`` (list), ``white_level``, ``width``, ``height`` (of the original DNG) and
    ``tags`` (every UnknownTags entry: ``{id: [values]}``).

    Raises
    ------
    InputFileError
        Missing or unreadable file.
    MetadataError
        No ``metadata`` struct, or no CFA pattern tag.
    UnsupportedSensorError
        A CFA pattern that is not 2x2 RGB Bayer.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError("no such file", p)
    from scipy.io import loadmat

    try:
        m = loadmat(p, simplify_cells=True)
    except Exception as exc:  # noqa: BLE001 - scipy raises many types on bad files
        raise InputFileError(f"not a readable MATLAB v5 file: {exc}", p) from None
    md = m.get("metadata")
    if not isinstance(md, dict):
        raise MetadataError("no 'metadata' struct in the SIDD metadata file", p)
    unknown = md.get("UnknownTags", [])
    if isinstance(unknown, dict):
        unknown = [unknown]
    tags: dict[int, list[float]] = {}
    for entry in unknown if isinstance(unknown, list) else []:
        if isinstance(entry, dict) and "ID" in entry and "Value" in entry:
            try:
                tags[int(entry["ID"])] = _tag_values(entry["Value"])
            except (TypeError, ValueError):
                continue
    repeat = tags.get(TAG_CFA_REPEAT)
    if repeat is not None and [int(v) for v in repeat] != [2, 2]:
        raise UnsupportedSensorError(f"CFA repeat pattern {[int(v) for v in repeat]} is not 2x2", p)
    if TAG_CFA_PATTERN not in tags:
        raise MetadataError(f"no CFAPattern (tag {TAG_CFA_PATTERN}) in UnknownTags", p)
    cfa = cfa_from_tag(tags[TAG_CFA_PATTERN], p)
    iso = _scalar(md.get("ISOSpeedRatings"))
    exposure = _scalar(md.get("ExposureTime"))
    black = md.get("BlackLevel")
    return {
        "cfa": cfa,
        "noise_profile": tags.get(TAG_NOISE_PROFILE),
        "iso": iso if iso and iso > 0 else None,
        "exposure_time": exposure if exposure and exposure > 0 else None,
        "make": _str(md.get("Make")),
        "model": _str(md.get("Model")),
        "black_level": None if black is None else _tag_values(black),
        "white_level": _scalar(md.get("WhiteLevel")),
        "width": _scalar(md.get("Width")),
        "height": _scalar(md.get("Height")),
        "tags": {str(k): v for k, v in sorted(tags.items())},
    }
