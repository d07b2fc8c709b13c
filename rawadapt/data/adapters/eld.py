"""ELD (Extreme Low-light Denoising) real test set (docs/data.md).

Layout (the root may also be one camera folder)::

    ELD/
      SonyA7S2/scene-1/IMG_0001.ARW ... IMG_0016.ARW
      NikonD850/scene-1/IMG_0001.nef ...
      CanonEOS70D/scene-1/IMG_0001.CR2 ...
      CanonEOS700D/scene-1/IMG_0001.CR2 ...

* 16 images per scene: references (clean, long exposure at base ISO) 1, 6, 11, 16; the others
  are noisy low-light shots (2-5 ISO 800, 7-10 ISO 1600, 12-15 ISO 3200, light x1/x10/x100/x200).
* Pairing. ``pairing="nearest"`` (default, ELD's own evaluation code): each noisy image is
  paired with the NEAREST reference id (ties: the lower id), i.e. 2, 3 -> 1; 4, 5, 7, 8 -> 6;
  9, 10, 12, 13 -> 11; 14, 15 -> 16. ``pairing="block"``: 2-5 -> 1, 7-10 -> 6, 12-15 -> 11
  (the reference shot just before the block).
* ratio = (ISO x exposure time) of the reference / (ISO x exposure time) of the noisy image,
  from each file's metadata (LibRaw ``iso_speed``/``shutter_speed``, EXIF as fallback), read
  once when the dataset is opened and cached on disk. No cap (ELD's code has none).
* sensor = the camera folder name; scene = ``scene-<k>``; levels = each file's own.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rawadapt.data.adapters.pairs import sample_from_decoded
from rawadapt.data.base import PairDataset
from rawadapt.data.cache import Decoded, raw_metadata_cached, raw_planes_cached
from rawadapt.data.sample import Sample, SampleRecord
from rawadapt.errors import DatasetError, MetadataError
from rawadapt.io.readers import RAW_EXTENSIONS

REFERENCE_IDS = (1, 6, 11, 16)
SCENE_RE = re.compile(r"^scene-(?P<k>\d+)$")
IMG_RE = re.compile(r"^IMG_(?P<id>\d{4})$", re.IGNORECASE)


def reference_for(img_id: int, pairing: Literal["nearest", "block"] = "nearest") -> int:
    """The reference image id a noisy image ``img_id`` is paired with (see module docstring).

    Examples
    --------
    >>> [reference_for(i) for i in (2, 4, 5, 7, 9, 12, 14, 15)]
    [1, 6, 6, 6, 11, 11, 16, 16]
    >>> [reference_for(i, "block") for i in (2, 5, 7, 10, 12, 15)]
    [1, 1, 6, 6, 11, 11]
    """
    refs = np.array(REFERENCE_IDS)
    if pairing == "nearest":
        return int(refs[np.argmin(np.abs(img_id - refs))])
    if pairing == "block":
        below = refs[refs < img_id]
        return int(below.max()) if below.size else int(refs[0])
    raise ValueError(f"pairing must be 'nearest' or 'block', got {pairing!r}")


def _scene_dirs(cam: Path) -> list[Path]:
    def scene_index(p: Path) -> int:
        m = SCENE_RE.match(p.name)
        assert m is not None  # only matching folders are sorted
        return int(m.group("k"))

    return sorted((p for p in cam.iterdir() if p.is_dir() and SCENE_RE.match(p.name)), key=scene_index)


def camera_dirs(root: Path) -> list[Path]:
    """Camera folders (holding ``scene-*`` folders) of an ELD root, or ``[root]`` for one camera."""
    root = Path(root)
    if not root.is_dir():
        return []
    if _scene_dirs(root):
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and _scene_dirs(p))


def _images(scene: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    for f in sorted(scene.iterdir()):
        m = IMG_RE.match(f.stem)
        if m and f.is_file() and f.suffix.lower() in RAW_EXTENSIONS:
            out.setdefault(int(m.group("id")), f)
    return out


def detect(root: Path) -> bool:
    """A folder of camera folders with ``scene-<k>/IMG_00NN.<raw>`` files (or one camera folder)."""
    for cam in camera_dirs(Path(root)):
        for scene in _scene_dirs(cam):
            if _images(scene):
                return True
    return False


def _exposure(meta: dict[str, Any], path: Path) -> float:
    iso, t = meta.get("iso"), meta.get("exposure_time")
    if not iso or not t:
        raise MetadataError("ISO or exposure time missing from the file's metadata: cannot compute the ratio", path)
    return float(iso) * float(t)


def open(
    root: Path,
    *,
    pairing: Literal["nearest", "block"] = "nearest",
    cameras: list[str] | None = None,
    name: str = "eld",
    cache: bool = True,
    clip: bool = True,
    strict: bool = True,
    **_ignored: Any,
) -> PairDataset:
    """Open ELD (see the module docstring).

    Parameters
    ----------
    root
        ELD root (camera folders) or one camera folder.
    pairing
        ``"nearest"`` (ELD's code, default) or ``"block"``.
    cameras
        Keep only these camera folders.
    name, cache, clip
        Dataset name; on-disk cache (decoded pixels and metadata); clip to [0, 1].
    strict
        A noisy image whose reference is missing raises (default) instead of being skipped.

    Raises
    ------
    DatasetError
        No camera/scene folders or no pairs; a missing reference (strict).
    MetadataError
        ISO or exposure time missing from a file.
    """
    root = Path(root)
    cams = camera_dirs(root)
    if not cams:
        raise DatasetError("not an ELD root (no <Camera>/scene-<k>/ folders)", root)
    records: list[SampleRecord] = []
    for cam in cams:
        if cameras is not None and cam.name not in cameras:
            continue
        for scene in _scene_dirs(cam):
            imgs = _images(scene)
            for img_id, noisy in sorted(imgs.items()):
                if img_id in REFERENCE_IDS:
                    continue
                ref_id = reference_for(img_id, pairing)
                ref = imgs.get(ref_id)
                if ref is None:
                    if strict:
                        raise DatasetError(f"reference IMG_{ref_id:04d} of this noisy image is missing", noisy)
                    continue
                nm = raw_metadata_cached(noisy, enabled=cache)
                rm = raw_metadata_cached(ref, enabled=cache)
                ratio = _exposure(rm, ref) / _exposure(nm, noisy)
                records.append(
                    SampleRecord(
                        sample_id=f"{cam.name}_{scene.name}_{img_id:04d}",
                        sensor=cam.name,
                        iso=nm.get("iso"),
                        scene=scene.name,
                        noisy_path=str(noisy),
                        clean_path=str(ref),
                        ratio=float(ratio),
                        space="raw",
                        extra={
                            "image_id": img_id,
                            "reference_id": ref_id,
                            "exposure_time": nm.get("exposure_time"),
                            "reference_iso": rm.get("iso"),
                            "reference_exposure_time": rm.get("exposure_time"),
                        },
                    )
                )
    if not records:
        raise DatasetError("no ELD noisy/reference pairs found", root)

    def loader(rec: SampleRecord) -> Sample:
        n, nm = raw_planes_cached(rec.noisy_path, enabled=cache)
        c, cm = raw_planes_cached(rec.clean_path, enabled=cache)  # type: ignore[arg-type]
        dn = Decoded(n, "raw", nm["cfa"], nm["used_black_level"], nm["used_white_level"], nm)
        dc = Decoded(c, "raw", cm["cfa"], cm["used_black_level"], cm["used_white_level"], cm)
        return sample_from_decoded(rec, dn, dc, clip=clip)

    return PairDataset(records, loader, name=name, space="raw", root=os.fspath(root))
