"""SIDD (Smartphone Image Denoising Dataset), RAW and sRGB (docs/data.md).

Layout (``SIDD_Medium_Raw``; the scene folders may sit directly in the root or in ``Data/``)::

    SIDD_Medium_Raw/Data/
      0001_001_S6_00100_00060_3200_L/
        0001_NOISY_RAW_010.MAT   0001_GT_RAW_010.MAT   0001_METADATA_RAW_010.MAT
        0001_NOISY_RAW_011.MAT   0001_GT_RAW_011.MAT   0001_METADATA_RAW_011.MAT
      0002_001_N6_00100_00160_5500_L/ ...

Folder name ``SSSS_NNN_CC_IIIII_TTTTT_LLLL_B``: scene instance, scene number, camera
(``GP`` Pixel, ``IP`` iPhone 7, ``S6`` Galaxy S6 edge, ``N6`` Nexus 6, ``G4`` LG G4), ISO,
shutter as 1/TTTTT s (``00060`` = 1/60 s, matching the metadata's ExposureTime), illuminant
temperature (K) and brightness code (``L``/``N``/``H``); all kept in ``SampleRecord.extra``.

* One record per ``*_NOISY_RAW_0NN.MAT`` with its ``*_GT_RAW_0NN.MAT``; ``sensor`` = the
  camera code, ``iso`` from the folder name, ``scene`` = the scene NUMBER (``NNN``): instances
  of one scene under other settings share it, so splits never leak a scene.
* Pixels: the HDF5 mosaic (:func:`rawadapt.io.mat.read_sidd_mosaic`), packed with the CFA of
  the metadata file (tag 33422) of the same ``0NN`` (or any metadata file of the folder);
  values are already in [0, 1] (black 0, white 1). The NoiseProfile (tag 51041) goes into
  ``Sample.extra["noise_profile"]``. Decoded planes are cached on disk.
* ``space="srgb"`` reads ``*_NOISY_SRGB_0NN.PNG`` / ``*_GT_SRGB_0NN.PNG`` instead (SIDD Medium
  sRGB); the default picks RAW when RAW files are present.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from rawadapt.data.adapters.pairs import sample_from_decoded
from rawadapt.data.base import PairDataset
from rawadapt.data.cache import Decoded, cached_decode, cached_json
from rawadapt.data.sample import Sample, SampleRecord
from rawadapt.errors import DatasetError, MetadataError
from rawadapt.io.bayer import normalize_levels, pack
from rawadapt.io.images import read_image
from rawadapt.io.mat import read_sidd_metadata, read_sidd_mosaic

FOLDER_RE = re.compile(
    r"^(?P<instance>\d{4})_(?P<scene>\d{3})_(?P<camera>[A-Z0-9]{2})_(?P<iso>\d{5})_(?P<shutter>\d{5})_"
    r"(?P<temp>\d{4})_(?P<brightness>[A-Z])$"
)
FILE_RE = re.compile(
    r"^(?P<instance>\d{4})_(?P<kind>NOISY|GT|METADATA)_(?P<space>RAW|SRGB)_(?P<nn>\d{3})"
    r"\.(?P<ext>\w+)$",
    re.IGNORECASE,
)
CAMERAS = {
    "GP": "Google Pixel",
    "IP": "iPhone 7",
    "S6": "Samsung Galaxy S6 Edge",
    "N6": "Motorola Nexus 6",
    "G4": "LG G4",
}


def scene_folders(root: Path) -> list[Path]:
    """SIDD scene folders in ``root``, ``root/Data`` or ``root/*/`` (or ``root`` itself), sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    if FOLDER_RE.match(root.name):
        return [root]
    out: list[Path] = []
    for base in [root, *sorted(p for p in root.iterdir() if p.is_dir() and not FOLDER_RE.match(p.name))]:
        try:
            out.extend(p for p in base.iterdir() if p.is_dir() and FOLDER_RE.match(p.name))
        except OSError:
            continue
        if out:
            break
    return sorted(out, key=lambda p: p.name)


def detect(root: Path) -> bool:
    """A folder holding (directly, in ``Data/`` or one level down) SIDD scene folders."""
    return bool(scene_folders(Path(root)))


def _files(folder: Path) -> dict[tuple[str, str, str], Path]:
    out: dict[tuple[str, str, str], Path] = {}
    for f in folder.iterdir():
        m = FILE_RE.match(f.name)
        if m and f.is_file():
            out[(m.group("kind").upper(), m.group("space").upper(), m.group("nn"))] = f
    return out


def _metadata(path: Path, cache: bool) -> dict[str, Any]:

    return cached_json(("sidd_metadata",), path, lambda: read_sidd_metadata(path), enabled=cache)


def open(
    root: Path,
    *,
    space: str | None = None,
    cameras: list[str] | None = None,
    cfa: str | None = None,
    name: str = "sidd",
    cache: bool = True,
    clip: bool = True,
    **_ignored: Any,
) -> PairDataset:
    """Open a SIDD root (see the module docstring).

    Parameters
    ----------
    root
        ``SIDD_Medium_Raw`` (or its ``Data`` folder, or one scene folder).
    space
        ``"raw"`` (HDF5 mosaics) or ``"srgb"`` (PNGs); default raw when present.
    cameras
        Keep only these camera codes (``["GP", "IP"]``).
    cfa
        CFA to use when a folder has no metadata file (normally read from the metadata).
    name, cache, clip
        Dataset name; on-disk decode cache; clip to [0, 1].

    Raises
    ------
    DatasetError
        No scene folders or no pairs.
    """
    root = Path(root)
    folders = scene_folders(root)
    if not folders:
        raise DatasetError("no SIDD scene folders (SSSS_NNN_CC_IIIII_TTTTT_LLLL_B) found", root)
    listing = {f: _files(f) for f in folders}
    if space is None:
        space = "raw" if any(k[1] == "RAW" for files in listing.values() for k in files) else "srgb"
    if space not in ("raw", "srgb"):
        raise DatasetError(f"space must be 'raw' or 'srgb', got {space!r}", root)
    tag = "RAW" if space == "raw" else "SRGB"
    records: list[SampleRecord] = []
    for folder in folders:
        g = FOLDER_RE.match(folder.name).groupdict()  # type: ignore[union-attr]
        if cameras is not None and g["camera"] not in cameras:
            continue
        files = listing[folder]
        shutter = int(g["shutter"])
        metas = sorted(p for (k, s, _), p in files.items() if k == "METADATA")
        for (kind, sp, nn), noisy in sorted(files.items()):
            if kind != "NOISY" or sp != tag:
                continue
            gt = files.get(("GT", tag, nn))
            if gt is None:
                raise DatasetError(f"no ground truth *_GT_{tag}_{nn} beside the noisy file", noisy)
            meta = files.get(("METADATA", "RAW", nn)) or (metas[0] if metas else None)
            records.append(
                SampleRecord(
                    sample_id=f"{g['instance']}_{nn}",
                    sensor=g["camera"],
                    iso=float(int(g["iso"])),
                    scene=g["scene"],
                    noisy_path=str(noisy),
                    clean_path=str(gt),
                    ratio=1.0,
                    space=space,  # type: ignore[arg-type]
                    extra={
                        "instance": g["instance"],
                        "shutter": shutter,
                        "exposure_time": 1.0 / shutter if shutter else None,
                        "illuminant": int(g["temp"]),
                        "brightness": g["brightness"],
                        "metadata_path": None if meta is None else str(meta),
                        "camera_name": CAMERAS.get(g["camera"], g["camera"]),
                    },
                )
            )
    if not records:
        raise DatasetError(f"no SIDD {tag} noisy/GT pairs found", root)

    def loader(rec: SampleRecord) -> Sample:
        assert rec.clean_path is not None  # every SIDD record is a noisy/GT pair
        if rec.space == "srgb":
            return sample_from_decoded(
                rec, Decoded(read_image(rec.noisy_path), "srgb"), Decoded(read_image(rec.clean_path), "srgb"), clip=clip
            )
        mpath = rec.extra.get("metadata_path")
        md: dict[str, Any] = {}
        if mpath:
            md = _metadata(Path(mpath), cache)
        pattern = md.get("cfa") or cfa
        if pattern is None:
            raise MetadataError("no *_METADATA_RAW_*.MAT beside the mosaic to tell its CFA (pass cfa=)", rec.noisy_path)
        shape = None
        if md.get("height") and md.get("width"):
            shape = (int(md["height"]), int(md["width"]))

        def planes(path: str) -> Any:

            return cached_decode(
                ("sidd_mosaic", pattern, clip),
                path,
                lambda: normalize_levels(
                    pack(read_sidd_mosaic(path, expected_shape=shape), pattern), 0.0, 1.0, clip=clip
                ),
                enabled=cache,
            )

        n = Decoded(planes(rec.noisy_path), "raw", pattern, [0.0] * 4, 1.0)
        c = Decoded(planes(rec.clean_path), "raw", pattern, [0.0] * 4, 1.0)
        s = sample_from_decoded(rec, n, c, clip=clip)
        if md.get("noise_profile") is not None:
            s.extra["noise_profile"] = md["noise_profile"]
        return s

    return PairDataset(records, loader, name=name, space=space, root=os.fspath(root))  # type: ignore[arg-type]
