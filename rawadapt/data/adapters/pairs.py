"""Generic folder of noisy/clean pairs.

Layouts (the first that matches wins)::

    root/                         root/
      scene1_real.png               noisy/  a.ARW   sub/b.ARW
      scene1_mean.png               gt/     a.ARW   sub/b.ARW     (or clean/)
      ...

* ``*_real.*`` is the noisy image, ``*_mean.*`` the clean one (PolyU's convention), paired by
  the part before the suffix; or ``noisy/`` + ``gt/`` (or ``clean/``) subfolders with matching
  relative paths (extensions may differ).
* Options: ``regex`` with named groups ``camera`` (the sensor), ``iso`` and ``scene`` matched
  (``re.search``) against the pair id (the file stem without ``_real``; for subfolders the
  relative path without extension, ``/``-separated); ``sensor`` (default: the folder name);
  ``space`` (default: from the extension: RAW containers -> ``"raw"``, images -> ``"srgb"``,
  ``.npy`` -> by channel count); ``cfa``/``black_level``/``white_level`` for mosaic images and
  integer arrays; ``ratio`` (noisy multiplier, default 1); ``clip``; ``cache``.
* RAW pairs are read with :func:`rawadapt.io.raw.read_raw` (decoded once: on-disk cache). When
  no ISO comes from the regex, a RAW sample's ``iso`` is the noisy file's EXIF ISO (records,
  which are built without opening files, keep ``None``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rawadapt.data.base import PairDataset
from rawadapt.data.cache import Decoded, load_file, space_of
from rawadapt.data.sample import Sample, SampleRecord
from rawadapt.errors import CFAError, DatasetError, MetadataError
from rawadapt.io.readers import (
    ARRAY_EXTENSIONS,
    IMAGE_EXTENSIONS,
    MAT_EXTENSIONS,
    RAW_EXTENSIONS,
)

_DATA_EXT = RAW_EXTENSIONS | IMAGE_EXTENSIONS | ARRAY_EXTENSIONS | MAT_EXTENSIONS
_SUFFIX = re.compile(r"^(?P<id>.+)_(?P<kind>real|mean)$", re.IGNORECASE)
NOISY_DIRS = ("noisy",)
CLEAN_DIRS = ("gt", "clean")


def _data_files(folder: Path, recursive: bool) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in _DATA_EXT)


def _subdir(root: Path, names: Sequence[str]) -> Path | None:
    for child in sorted(root.iterdir()) if root.is_dir() else []:
        if child.is_dir() and child.name.lower() in names:
            return child
    return None


def _suffix_pairs(root: Path) -> tuple[dict[str, tuple[Path, Path | None]], list[Path]]:
    noisy: dict[str, Path] = {}
    clean: dict[str, Path] = {}
    for f in _data_files(root, recursive=False):
        m = _SUFFIX.match(f.stem)
        if m:
            (noisy if m.group("kind").lower() == "real" else clean)[m.group("id")] = f
    orphans = [clean[k] for k in clean if k not in noisy]
    return {k: (noisy[k], clean.get(k)) for k in sorted(noisy)}, orphans


def _folder_pairs(root: Path) -> dict[str, tuple[Path, Path | None]] | None:
    nd, cd = _subdir(root, NOISY_DIRS), _subdir(root, CLEAN_DIRS)
    if nd is None or cd is None:
        return None
    clean = {f.relative_to(cd).with_suffix("").as_posix(): f for f in _data_files(cd, recursive=True)}
    out: dict[str, tuple[Path, Path | None]] = {}
    for f in _data_files(nd, recursive=True):
        key = f.relative_to(nd).with_suffix("").as_posix()
        out[key] = (f, clean.get(key))
    return dict(sorted(out.items()))


def detect(root: Path) -> bool:
    """A folder with ``noisy/`` + ``gt/``/``clean/`` subfolders or ``*_real.*``/``*_mean.*`` pairs."""
    root = Path(root)
    if not root.is_dir():
        return False
    if _subdir(root, NOISY_DIRS) is not None and _subdir(root, CLEAN_DIRS) is not None:
        return True
    pairs, _ = _suffix_pairs(root)
    return any(c is not None for _, c in pairs.values())


def sample_from_decoded(
    rec: SampleRecord, noisy: Decoded, clean: Decoded | None, *, clip: bool = True, iso: float | None = None
) -> Sample:
    """Build and validate a :class:`Sample`: noisy times ``rec.ratio`` then clipped to [0, 1].

    Raises
    ------
    CFAError
        Noisy and clean RAW files with different CFA phases.
    ShapeError, NonFiniteError
        From :meth:`Sample.validate` (size mismatch, wrong channels, NaN/Inf).
    """
    n = noisy.array if rec.ratio == 1.0 else noisy.array * np.float32(rec.ratio)
    if clip:
        n = np.clip(n, 0.0, 1.0)
    n = np.ascontiguousarray(n, dtype=np.float32)
    c = None
    if clean is not None:
        c = np.ascontiguousarray(clean.array, dtype=np.float32)
        if clip:
            c = np.clip(c, 0.0, 1.0)
        if noisy.cfa and clean.cfa and noisy.cfa != clean.cfa:
            raise CFAError(f"noisy CFA {noisy.cfa} and clean CFA {clean.cfa} differ", rec.noisy_path)
    extra: dict[str, Any] = dict(rec.extra)
    if rec.split is not None:
        extra.setdefault("split", rec.split)
    if noisy.meta.get("exposure_time") is not None:
        extra.setdefault("exposure_time", noisy.meta["exposure_time"])
    sample = Sample(
        noisy=n,
        clean=c,
        sensor=rec.sensor,
        iso=rec.iso if rec.iso is not None else iso,
        ratio=float(rec.ratio),
        space=rec.space,
        scene=rec.scene,
        path=rec.noisy_path,
        clean_path=rec.clean_path,
        cfa=noisy.cfa or (clean.cfa if clean else None),
        black_level=None if noisy.black_level is None else tuple(float(b) for b in noisy.black_level),
        white_level=noisy.white_level,
        sample_id=rec.sample_id,
        extra=extra,
    )
    return sample.validate()


def _parse_regex(regex: str | re.Pattern[str] | None, pair_id: str, path: Path) -> dict[str, str]:
    if regex is None:
        return {}
    pat = re.compile(regex) if isinstance(regex, str) else regex
    m = pat.search(pair_id)
    if m is None:
        raise MetadataError(f"name {pair_id!r} does not match the regex {pat.pattern!r}", path)
    return {k: v for k, v in m.groupdict().items() if v is not None}


def open(
    root: Path,
    *,
    regex: str | re.Pattern[str] | None = None,
    sensor: str | None = None,
    space: str | None = None,
    cfa: str | None = None,
    black_level: float | Sequence[float] | None = None,
    white_level: float | None = None,
    ratio: float = 1.0,
    clip: bool = True,
    cache: bool = True,
    name: str | None = None,
    allow_unpaired: bool = False,
    **_ignored: Any,
) -> PairDataset:
    """Open a generic pairs folder (see the module docstring).

    Parameters
    ----------
    root
        The folder.
    regex
        Optional pattern with named groups ``camera``, ``iso``, ``scene``.
    sensor
        Sensor name when the regex gives none (default: the folder name).
    space
        Force ``"raw"`` or ``"srgb"`` (default: from the files).
    cfa, black_level, white_level
        For Bayer mosaic images and integer arrays.
    ratio
        Multiplier of the noisy image (brightness matching), default 1.
    clip, cache
        Clip to [0, 1]; use the on-disk decode cache.
    name
        Dataset name (default: the folder name).
    allow_unpaired
        Keep noisy files without a clean partner (``clean = None``) instead of failing.

    Raises
    ------
    DatasetError
        Missing folder, no pairs, unpaired files, or mixed spaces.
    MetadataError
        A name the regex does not match, or an unparsable ISO.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("not a folder", root)
    pairs = _folder_pairs(root)
    if pairs is None:
        pairs, orphans = _suffix_pairs(root)
        if orphans and not allow_unpaired:
            raise DatasetError(f"clean file without a noisy partner (*_real.*): {orphans[0].name}", root)
    if not pairs:
        raise DatasetError(
            "no noisy/clean pairs found (expected *_real.*/*_mean.* files or noisy/ + gt/ folders)", root
        )
    default_sensor = sensor or root.resolve().name
    records: list[SampleRecord] = []
    spaces: set[str] = set()
    for pair_id, (noisy, clean) in pairs.items():
        if clean is None and not allow_unpaired:
            raise DatasetError("noisy file without a clean partner (pass allow_unpaired=True to keep it)", noisy)
        groups = _parse_regex(regex, pair_id, noisy)
        iso: float | None = None
        if "iso" in groups:
            try:
                iso = float(groups["iso"])
            except ValueError:
                raise MetadataError(f"cannot parse ISO {groups['iso']!r} from the name", noisy) from None
        sp = space or space_of(noisy)
        if sp not in ("raw", "srgb"):
            raise DatasetError("cannot tell whether the file is RAW or sRGB; pass space='raw' or 'srgb'", noisy)
        spaces.add(sp)
        records.append(
            SampleRecord(
                sample_id=pair_id,
                sensor=groups.get("camera") or default_sensor,
                iso=iso,
                scene=groups.get("scene") or pair_id,
                noisy_path=str(noisy),
                clean_path=None if clean is None else str(clean),
                ratio=float(ratio),
                space=sp,  # type: ignore[arg-type]
            )
        )
    if len(spaces) != 1:
        raise DatasetError(f"the folder mixes spaces {sorted(spaces)}; pass space= to choose", root)
    opts = {"cfa": cfa, "black_level": black_level, "white_level": white_level, "clip": clip, "cache": cache}

    def loader(rec: SampleRecord) -> Sample:
        n = load_file(rec.noisy_path, space=rec.space, **opts)  # type: ignore[arg-type]
        c = None
        if rec.clean_path is not None:
            c = load_file(rec.clean_path, space=rec.space, **opts)  # type: ignore[arg-type]
        return sample_from_decoded(rec, n, c, clip=clip, iso=n.meta.get("iso"))

    return PairDataset(
        records,
        loader,
        name=name or root.resolve().name,
        space=spaces.pop(),  # type: ignore[arg-type]
        root=os.fspath(root),
    )
