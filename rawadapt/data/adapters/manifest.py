"""Manifest datasets: a CSV or YAML table of noisy/clean files with their metadata.

Columns
-------
Required: ``noisy``, ``clean``, ``sensor``, ``iso``.
Optional: ``ratio``, ``scene``, ``split``, ``space``, ``cfa``, ``black_level``, ``white_level``,
``sample_id``, ``exposure``. Any other column is refused (:class:`MetadataError` listing the
allowed ones) so that a typo never silently drops metadata.

* Paths are relative to the manifest's folder (absolute paths are kept).
* ``clean`` may be empty (no reference: evaluation-only data); ``iso`` may be empty (unknown).
* ``ratio`` (default 1): the noisy image is multiplied by it AFTER normalisation and then
  clipped to [0, 1] (SID convention); the clean image is not multiplied.
* ``scene`` defaults to the sample id; ``sample_id`` defaults to the noisy path relative to
  the manifest folder, without extension.
* ``space``: ``raw`` or ``srgb``; default from the file (RAW containers -> raw, images -> srgb,
  ``.npy`` -> 4 channels raw / 3 channels srgb). One dataset holds one space: a manifest that
  mixes them must be opened with ``space=`` (rows of the other space are then left out).
* Files may be RAW containers (read with :func:`rawadapt.io.raw.read_raw` through the decode
  cache), images (sRGB, or Bayer mosaics with ``space=raw`` + ``cfa`` + levels), or ``.npy``
  arrays ``(C, H, W)``: float arrays are already normalised; integer (uint16) arrays are packed
  canonical DN planes normalised with the row's ``black_level`` (one value, or four
  space/comma-separated canonical R G1 G2 B values) and ``white_level``.

YAML: either a list of row mappings, or a mapping ``{name: ..., samples: [rows]}``.

This is also the on-disk format of the built-in ``synth`` benchmark, which opens its
``manifest.csv`` with ``open(root, name="synth")``; building records reads no pixels, so even
thousands of rows open in milliseconds.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rawadapt.data.adapters.pairs import sample_from_decoded
from rawadapt.data.base import PairDataset
from rawadapt.data.cache import load_file, space_of
from rawadapt.data.sample import Sample, SampleRecord
from rawadapt.errors import DatasetError, InputFileError, MetadataError, RawAdaptError
from rawadapt.io.bayer import normalize_cfa

REQUIRED = ("noisy", "clean", "sensor", "iso")
OPTIONAL = ("ratio", "scene", "split", "space", "cfa", "black_level", "white_level", "sample_id", "exposure")
ALLOWED = REQUIRED + OPTIONAL
MANIFEST_NAMES = ("manifest.csv", "manifest.yaml", "manifest.yml")
_SUFFIXES = (".csv", ".yaml", ".yml")
_NONE = ("", "none", "null", "nan", "na", "-")


def find_manifest(root: Path) -> Path | None:
    """The manifest file of ``root`` (itself if it is a .csv/.yaml/.yml file), or None."""
    root = Path(root)
    if root.is_file():
        return root if root.suffix.lower() in _SUFFIXES else None
    for n in MANIFEST_NAMES:
        if (root / n).is_file():
            return root / n
    return None


def detect(root: Path) -> bool:
    """A .csv/.yaml/.yml file, or a folder containing manifest.csv/manifest.yaml."""
    return find_manifest(Path(root)) is not None


def _check_columns(columns: Iterable[str], path: Path) -> None:
    cols = [c for c in columns if c is not None]
    unknown = [c for c in cols if c not in ALLOWED]
    if unknown:
        raise MetadataError(f"unknown manifest column(s) {unknown}; allowed: {', '.join(ALLOWED)}", path)
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise MetadataError(f"manifest lacks required column(s) {missing} (required: {', '.join(REQUIRED)})", path)


def read_rows(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """Rows of a manifest file (column-checked) and the name it declares (YAML), if any."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputFileError(f"cannot read manifest: {exc.strerror}", path) from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None:
            raise DatasetError("empty manifest (no header row)", path)
        _check_columns([f.strip() for f in reader.fieldnames], path)
        rows = []
        for row in reader:
            if None in row:
                raise MetadataError(f"line {reader.line_num}: more values than columns", path)
            rows.append({k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()})
        return rows, None
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MetadataError(f"invalid YAML: {str(exc).splitlines()[0]}", path) from None
    name = None
    if isinstance(doc, Mapping):
        extra_keys = set(doc) - {"name", "samples"}
        if extra_keys or "samples" not in doc:
            raise MetadataError(
                f"a YAML manifest mapping needs 'samples' (and optionally 'name'); got keys {sorted(map(str, doc))}",
                path,
            )
        name = None if doc.get("name") is None else str(doc["name"])
        doc = doc["samples"]
    if not isinstance(doc, list) or not all(isinstance(r, Mapping) for r in doc):
        raise MetadataError("a YAML manifest must be a list of rows (mappings)", path)
    seen: set[str] = set()
    for r in doc:
        seen.update(map(str, r))
    unknown = sorted(seen - set(ALLOWED))
    if unknown:
        raise MetadataError(f"unknown manifest column(s) {unknown}; allowed: {', '.join(ALLOWED)}", path)
    rows = []
    for i, r in enumerate(doc, start=1):
        missing = [c for c in REQUIRED if c not in r]
        if missing:
            raise MetadataError(f"row {i}: missing required field(s) {missing}", path)
        rows.append({str(k): v for k, v in r.items()})
    return rows, name


def _none(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip().lower() in _NONE)


def _float(v: Any, what: str, where: str, path: Path) -> float | None:
    if _none(v):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        raise MetadataError(f"{where}: cannot parse {what} {v!r} as a number", path) from None


def _levels(v: Any, where: str, path: Path) -> list[float] | None:
    if _none(v):
        return None
    vals = v if isinstance(v, (list, tuple)) else re.split(r"[\s,;]+", str(v).strip())
    try:
        out = [float(x) for x in vals if str(x) != ""]
    except ValueError:
        raise MetadataError(
            f"{where}: cannot parse black_level {v!r} (one value or four canonical R G1 G2 B)", path
        ) from None
    if len(out) not in (1, 4):
        raise MetadataError(f"{where}: black_level needs 1 or 4 values, got {len(out)}", path)
    return out


def _resolve(base: Path, v: Any) -> Path:
    p = Path(str(v).strip()).expanduser()
    return p if p.is_absolute() else base / p


def open(
    root: Path,
    *,
    name: str | None = None,
    space: str | None = None,
    clip: bool = True,
    cache: bool = True,
    check_files: bool = True,
    **_ignored: Any,
) -> PairDataset:
    """Open a manifest (file, or folder holding ``manifest.csv``/``manifest.yaml``).

    Parameters
    ----------
    root
        The manifest file or its folder.
    name
        Dataset name (default: the YAML ``name``, else the folder name for ``manifest.*``
        files, else the file stem).
    space
        Keep only rows of this space (needed when a manifest mixes raw and sRGB rows).
    clip
        Clip normalised arrays to [0, 1] (the noisy one after multiplying by ``ratio``).
    cache
        Decode RAW containers through the on-disk cache.
    check_files
        Check at open time that every listed file exists (a cheap ``stat`` per file).

    Raises
    ------
    MetadataError
        Unknown or missing columns, unparsable values, bad CFA strings.
    DatasetError
        No manifest, no rows, missing files, duplicate sample ids, or mixed spaces.
    """
    root = Path(root)
    mpath = find_manifest(root)
    if mpath is None:
        raise DatasetError("no manifest (.csv/.yaml file, or a folder with manifest.csv/manifest.yaml)", root)
    base = mpath.parent
    rows, declared = read_rows(mpath)
    if not rows:
        raise DatasetError("the manifest has no rows", mpath)
    records: list[SampleRecord] = []
    spaces: set[str] = set()
    ids: set[str] = set()
    for i, row in enumerate(rows, start=1):
        where = f"row {i}"
        if _none(row.get("noisy")):
            raise MetadataError(f"{where}: empty 'noisy' path", mpath)
        if _none(row.get("sensor")):
            raise MetadataError(f"{where}: empty 'sensor'", mpath)
        noisy = _resolve(base, row["noisy"])
        clean = None if _none(row.get("clean")) else _resolve(base, row["clean"])
        if check_files:
            for f in (noisy, clean):
                if f is not None and not f.is_file():
                    raise DatasetError(f"{where}: listed file does not exist: {f}", mpath)
        sp = None if _none(row.get("space")) else str(row["space"]).strip().lower()
        if sp is not None and sp not in ("raw", "srgb"):
            raise MetadataError(f"{where}: space must be 'raw' or 'srgb', got {row['space']!r}", mpath)
        if sp is None:
            try:
                sp = space_of(noisy)
            except RawAdaptError as exc:
                raise DatasetError(f"{where}: {exc}", mpath) from None
            if sp is None:
                raise MetadataError(f"{where}: cannot tell the space of {noisy.name}; add a 'space' column", mpath)
        if space is not None and sp != space:
            continue
        spaces.add(sp)
        cfa = None
        if not _none(row.get("cfa")):
            try:
                cfa = normalize_cfa(str(row["cfa"]))
            except RawAdaptError as exc:
                raise MetadataError(f"{where}: {exc.message}", mpath) from None
        ratio = _float(row.get("ratio"), "ratio", where, mpath)
        if ratio is not None and ratio <= 0:
            raise MetadataError(f"{where}: ratio must be positive, got {ratio}", mpath)
        sid = (
            str(row["sample_id"]).strip()
            if not _none(row.get("sample_id"))
            else Path(os.path.relpath(noisy, base)).with_suffix("").as_posix()
        )
        if sid in ids:
            raise DatasetError(f"{where}: duplicate sample_id {sid!r}", mpath)
        ids.add(sid)
        extra = {
            "cfa": cfa,
            "black_level": _levels(row.get("black_level"), where, mpath),
            "white_level": _float(row.get("white_level"), "white_level", where, mpath),
            "exposure": _float(row.get("exposure"), "exposure", where, mpath),
        }
        records.append(
            SampleRecord(
                sample_id=sid,
                sensor=str(row["sensor"]).strip(),
                iso=_float(row.get("iso"), "iso", where, mpath),
                scene=sid if _none(row.get("scene")) else str(row["scene"]).strip(),
                noisy_path=str(noisy),
                clean_path=None if clean is None else str(clean),
                ratio=1.0 if ratio is None else ratio,
                space=sp,  # type: ignore[arg-type]
                split=None if _none(row.get("split")) else str(row["split"]).strip(),
                extra={k: v for k, v in extra.items() if v is not None},
            )
        )
    if not records:
        raise DatasetError(f"no rows of space {space!r} in the manifest", mpath)
    if len(spaces) != 1:
        raise DatasetError(f"the manifest mixes spaces {sorted(spaces)}; open it with space='raw' or 'srgb'", mpath)

    def loader(rec: SampleRecord) -> Sample:
        opts = {
            "space": rec.space,
            "cfa": rec.extra.get("cfa"),
            "black_level": rec.extra.get("black_level"),
            "white_level": rec.extra.get("white_level"),
            "clip": clip,
            "cache": cache,
        }
        n = load_file(rec.noisy_path, **opts)  # type: ignore[arg-type]
        c = None if rec.clean_path is None else load_file(rec.clean_path, **opts)  # type: ignore[arg-type]
        return sample_from_decoded(rec, n, c, clip=clip, iso=n.meta.get("iso"))

    ds_name = name or declared or (base.resolve().name if mpath.name in MANIFEST_NAMES else mpath.stem)
    return PairDataset(
        records,
        loader,
        name=ds_name,
        space=spaces.pop(),  # type: ignore[arg-type]
        root=os.fspath(base),
    )
