"""SID (See-in-the-Dark), Sony A7S2 part (docs/data.md).

Layout::

    SID/
      Sony_train_list.txt   Sony_test_list.txt   Sony_val_list.txt     (optional)
      Sony/short/10003_00_0.04s.ARW  ...
      Sony/long/10003_00_10s.ARW     ...

* Names ``SSSSS_BB_Es.ARW``: scene (first digit: 0 train, 1 test, 2 val), burst index,
  exposure time in seconds. ``record.split`` = ``"train"``/``"test"``/``"val"`` from it.
* List files, lines ``./Sony/short/x.ARW ./Sony/long/y.ARW ISO200 F9`` (paths relative to the
  list's folder), give the pairs and the ISO. Without list files the adapter pairs every short
  exposure with the long exposure of its scene (the first by name if there are several) and
  the ISO stays unknown unless ``iso_from_exif=True`` (reads each file's metadata once; cached).
* ratio = min(long exposure / short exposure, 300) (SID's cap); the noisy planes are multiplied
  by it and clipped to [0, 1].
* Levels: SID's fixed black 512 and white 16383 (``black_level=None``/``white_level=None`` use
  the files' own levels instead).
* Sensor ``"SonyA7S2"``; scene id = the 5-digit scene number.
* Files are usually ``.ARW``; any RAW extension LibRaw reads (``.dng`` stand-ins) is accepted.
  The Fuji half of SID is X-Trans (not Bayer) and is not handled here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from rawadapt.data.adapters.pairs import sample_from_decoded
from rawadapt.data.base import PairDataset
from rawadapt.data.cache import Decoded, raw_metadata_cached, raw_planes_cached
from rawadapt.data.sample import Sample, SampleRecord
from rawadapt.errors import DatasetError, MetadataError
from rawadapt.io.readers import RAW_EXTENSIONS

NAME_RE = re.compile(r"^(?P<scene>\d{5})_(?P<burst>\d{2})_(?P<exposure>\d+(?:\.\d+)?)s$")
LIST_NAMES = {"train": "Sony_train_list.txt", "test": "Sony_test_list.txt", "val": "Sony_val_list.txt"}
SPLIT_OF_DIGIT = {"0": "train", "1": "test", "2": "val"}
MAX_RATIO = 300.0
SID_BLACK, SID_WHITE = 512.0, 16383.0


def parse_name(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse ``10019_00_0.033s.ARW`` -> scene, burst, exposure (s), split.

    Examples
    --------
    >>> parse_name("Sony/short/10019_00_0.033s.ARW")
    {'scene': '10019', 'burst': 0, 'exposure': 0.033, 'split': 'test'}
    """
    p = Path(path)
    m = NAME_RE.match(p.stem)
    if m is None:
        raise MetadataError("cannot parse a SID name (expected SSSSS_BB_<exposure>s, e.g. 10019_00_0.033s.ARW)", p)
    return {
        "scene": m.group("scene"),
        "burst": int(m.group("burst")),
        "exposure": float(m.group("exposure")),
        "split": SPLIT_OF_DIGIT.get(m.group("scene")[0], "train"),
    }


def find_base(root: Path) -> Path | None:
    """The folder holding ``Sony/`` and the list files, or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    if root.name == "Sony" and (root / "short").is_dir():
        return root.parent
    if (root / "Sony" / "short").is_dir() or any((root / n).is_file() for n in LIST_NAMES.values()):
        return root
    return None


def detect(root: Path) -> bool:
    """A folder with ``Sony/short`` (and ``Sony/long``) or SID Sony list files."""
    return find_base(Path(root)) is not None


def _raw_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in RAW_EXTENSIONS)


def _from_lists(base: Path, strict: bool) -> list[tuple[Path, Path, float | None, float | None]]:
    pairs: list[tuple[Path, Path, float | None, float | None]] = []
    for split, fname in LIST_NAMES.items():
        lf = base / fname
        if not lf.is_file():
            continue
        for n, line in enumerate(lf.read_text().splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise MetadataError(f"line {n}: expected 'short long [ISOnnn] [Fn]'", lf)
            short, long_ = (base / parts[0]).resolve(), (base / parts[1]).resolve()
            iso = aperture = None
            for tok in parts[2:]:
                if tok.upper().startswith("ISO"):
                    try:
                        iso = float(tok[3:])
                    except ValueError:
                        raise MetadataError(f"line {n}: cannot parse ISO {tok!r}", lf) from None
                elif tok.upper().startswith("F"):
                    try:
                        aperture = float(tok[1:])
                    except ValueError:
                        aperture = None
            missing = [p for p in (short, long_) if not p.is_file()]
            if missing:
                if strict:
                    raise DatasetError(f"line {n}: listed file does not exist: {missing[0]}", lf)
                continue
            pairs.append((short, long_, iso, aperture))
    return pairs


def _from_scan(base: Path) -> list[tuple[Path, Path, float | None, float | None]]:
    shorts, longs = _raw_files(base / "Sony" / "short"), _raw_files(base / "Sony" / "long")
    by_scene: dict[str, Path] = {}
    for f in longs:
        by_scene.setdefault(parse_name(f)["scene"], f)
    pairs: list[tuple[Path, Path, float | None, float | None]] = []
    for f in shorts:
        long_ = by_scene.get(parse_name(f)["scene"])
        if long_ is not None:
            pairs.append((f, long_, None, None))
    return pairs


def open(
    root: Path,
    *,
    splits: list[str] | None = None,
    lists: bool = True,
    strict: bool = True,
    black_level: float | None = SID_BLACK,
    white_level: float | None = SID_WHITE,
    max_ratio: float = MAX_RATIO,
    sensor: str = "SonyA7S2",
    iso_from_exif: bool = False,
    name: str = "sid",
    cache: bool = True,
    clip: bool = True,
    **_ignored: Any,
) -> PairDataset:
    """Open SID Sony (see the module docstring).

    Parameters
    ----------
    root
        The SID root (holding ``Sony/``), or the ``Sony`` folder itself.
    splits
        Keep only these splits (``["train", "val"]``); default all.
    lists
        Use the list files when present (default); ``False`` always scans the folders.
    strict
        A list line naming a missing file raises (default) instead of being skipped.
    black_level, white_level
        Levels used to normalise (SID's 512 / 16383); None: each file's own.
    max_ratio
        Cap of the exposure ratio (SID: 300).
    sensor, name
        Sensor and dataset names.
    iso_from_exif
        Without list files, read each short file's ISO from its metadata (cached).
    cache, clip
        On-disk decode cache; clip to [0, 1].
    """
    root = Path(root)
    base = find_base(root)
    if base is None:
        raise DatasetError("not a SID root (no Sony/short folder or Sony_*_list.txt files)", root)
    pairs = _from_lists(base, strict) if lists else []
    source = "lists"
    if not pairs:
        pairs, source = _from_scan(base), "scan"
    records: list[SampleRecord] = []
    seen: set[str] = set()
    for short, long_, iso, aperture in pairs:
        s, g = parse_name(short), parse_name(long_)
        if s["scene"] != g["scene"]:
            raise MetadataError(f"short and long exposures of different scenes ({s['scene']} vs {g['scene']})", short)
        if splits is not None and s["split"] not in splits:
            continue
        sid = short.stem
        if sid in seen:
            continue
        seen.add(sid)
        if iso is None and iso_from_exif:
            iso = raw_metadata_cached(short, enabled=cache).get("iso")
        ratio = min(g["exposure"] / s["exposure"], float(max_ratio)) if s["exposure"] > 0 else 1.0
        records.append(
            SampleRecord(
                sample_id=sid,
                sensor=sensor,
                iso=iso,
                scene=s["scene"],
                noisy_path=str(short),
                clean_path=str(long_),
                ratio=float(ratio),
                space="raw",
                split=s["split"],
                extra={
                    "burst": s["burst"],
                    "exposure": s["exposure"],
                    "gt_exposure": g["exposure"],
                    "aperture": aperture,
                    "pairs_from": source,
                },
            )
        )
    if not records:
        raise DatasetError("no SID short/long pairs found", root)
    records.sort(key=lambda r: r.sample_id)

    def loader(rec: SampleRecord) -> Sample:
        assert rec.clean_path is not None  # every SID record is a short/long pair
        n, nm = raw_planes_cached(rec.noisy_path, black_level=black_level, white_level=white_level, enabled=cache)
        c, cm = raw_planes_cached(rec.clean_path, black_level=black_level, white_level=white_level, enabled=cache)
        dn = Decoded(n, "raw", nm["cfa"], nm["used_black_level"], nm["used_white_level"], nm)
        dc = Decoded(c, "raw", cm["cfa"], cm["used_black_level"], cm["used_white_level"], cm)
        return sample_from_decoded(rec, dn, dc, clip=clip, iso=nm.get("iso"))

    return PairDataset(records, loader, name=name, space="raw", root=os.fspath(base))
