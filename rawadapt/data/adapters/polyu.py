"""PolyU real-world noisy images (sRGB; docs/data.md).

Layout: one folder of JPEG crops named ``<camera>_<aperture>_<shutter>_<ISO>_<scene>_<index>_<kind>.JPG``,
e.g. ``Canon5D2_5_160_3200_chair_11_real.JPG``:

* camera (the sensor: ``Canon5D2``, ``Canon600D``, ``Canon80D``, ``NikonD800``, ``Sony``);
* aperture f-number, ``-`` as the decimal point (``3-5`` = f/3.5);
* shutter as 1/x s (``160`` = 1/160 s);
* ISO;
* scene name (``chair``) and crop index (``11``); one name has a doubled underscore
  (``plant__4``), accepted;
* ``real`` = noisy single shot, ``mean`` = clean (mean of many shots).

The record's ``scene`` is the scene NAME without the crop index: crops 5, 11 and 14 of
``chair`` come from one photograph and must never be split between target pool and test set.
Names that do not parse raise :class:`~rawadapt.errors.MetadataError` naming the file, unless
``strict=False`` (then they are skipped; ``PairDataset.skipped`` lists them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from rawadapt.data.adapters.pairs import sample_from_decoded
from rawadapt.data.base import PairDataset
from rawadapt.data.cache import Decoded
from rawadapt.data.sample import Sample, SampleRecord
from rawadapt.errors import DatasetError, MetadataError
from rawadapt.io.images import read_image

NAME_RE = re.compile(
    r"^(?P<camera>[A-Za-z][A-Za-z0-9]*)_(?P<aperture>\d+(?:-\d+)?)_(?P<shutter>\d+)_(?P<iso>\d+)_"
    r"(?P<scene>[A-Za-z][A-Za-z0-9-]*?)_+(?P<index>\d+)_(?P<kind>real|mean)$",
    re.IGNORECASE,
)
_EXT = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
_KIND_RE = re.compile(r"_(real|mean)$", re.IGNORECASE)


def parse_name(name: str, path: Any = None) -> dict[str, Any]:
    """Parse a PolyU file name (with or without extension).

    Examples
    --------
    >>> d = parse_name("Canon600D_3-5_125_1600_waterhouse_10_real.JPG")
    >>> d["camera"], d["aperture"], d["exposure_time"], d["iso"], d["scene"], d["index"], d["kind"]
    ('Canon600D', 3.5, 0.008, 1600.0, 'waterhouse', 10, 'real')
    """
    stem = Path(name).stem if Path(name).suffix.lower() in _EXT else name
    m = NAME_RE.match(stem)
    if m is None:
        raise MetadataError(
            "cannot parse a PolyU name (expected camera_aperture_shutter_ISO_scene_index_"
            "real|mean, e.g. Canon5D2_5_160_3200_chair_11_real.JPG)",
            path or name,
        )
    g = m.groupdict()
    return {
        "camera": g["camera"],
        "aperture": float(g["aperture"].replace("-", ".")),
        "exposure_time": 1.0 / float(g["shutter"]) if int(g["shutter"]) else None,
        "iso": float(g["iso"]),
        "scene": g["scene"],
        "index": int(g["index"]),
        "kind": g["kind"].lower(),
    }


def _candidates(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in _EXT and _KIND_RE.search(p.stem))


def detect(root: Path) -> bool:
    """A folder holding at least one PolyU-named ``*_real`` image."""
    for p in _candidates(Path(root)):
        if NAME_RE.match(p.stem) and p.stem.lower().endswith("_real"):
            return True
    return False


def open(
    root: Path, *, strict: bool = True, name: str = "polyu", cameras: list[str] | None = None, **_ignored: Any
) -> PairDataset:
    """Open a PolyU folder: one sRGB pair per ``*_real``/``*_mean`` couple.

    Parameters
    ----------
    root
        The folder (e.g. ``CroppedImages/``).
    strict
        Unparsable names and unpaired files raise (default); ``False`` skips them.
    name
        Dataset name.
    cameras
        Keep only these cameras.

    Raises
    ------
    MetadataError
        An unparsable name (strict).
    DatasetError
        No pairs, or a noisy image without its clean partner (strict).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("not a folder", root)
    noisy: dict[str, tuple[Path, dict[str, Any]]] = {}
    clean: dict[str, Path] = {}
    skipped: list[str] = []
    for p in _candidates(root):
        try:
            info = parse_name(p.stem, p)
        except MetadataError:
            if strict:
                raise
            skipped.append(p.name)
            continue
        pid = _KIND_RE.sub("", p.stem)
        if info["kind"] == "real":
            noisy[pid] = (p, info)
        else:
            clean[pid] = p
    records: list[SampleRecord] = []
    for pid in sorted(noisy):
        p, info = noisy[pid]
        if cameras is not None and info["camera"] not in cameras:
            continue
        c = clean.get(pid)
        if c is None:
            if strict:
                raise DatasetError("noisy image without its clean *_mean partner", p)
            skipped.append(p.name)
            continue
        records.append(
            SampleRecord(
                sample_id=pid,
                sensor=info["camera"],
                iso=info["iso"],
                scene=info["scene"],
                noisy_path=str(p),
                clean_path=str(c),
                ratio=1.0,
                space="srgb",
                extra={"aperture": info["aperture"], "exposure_time": info["exposure_time"], "index": info["index"]},
            )
        )
    for pid, c in sorted(clean.items()):
        if pid not in noisy:
            if strict:
                raise DatasetError("clean image without its noisy *_real partner", c)
            skipped.append(c.name)
    if not records:
        raise DatasetError("no PolyU pairs found (*_real / *_mean images)", root)

    def loader(rec: SampleRecord) -> Sample:

        n = Decoded(read_image(rec.noisy_path), "srgb")
        c = Decoded(read_image(rec.clean_path), "srgb")  # type: ignore[arg-type]
        return sample_from_decoded(rec, n, c)

    ds = PairDataset(records, loader, name=name, space="srgb", root=os.fspath(root))
    ds.skipped = skipped  # type: ignore[attr-defined]
    return ds
