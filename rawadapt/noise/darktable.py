"""Import darktable's measured camera noise profiles as ``nlf`` profiles.

darktable (https://www.darktable.org) ships per-camera, per-ISO Poisson-Gaussian noise
measurements in ``noiseprofiles.json`` (Debian/Ubuntu package ``darktable``:
``/usr/share/darktable/noiseprofiles.json``, several hundred camera models). The format
(darktable ``src/common/noiseprofiles.c``, file version 0)::

    {"version": 0,
     "noiseprofiles": [
       {"maker": "Canon",
        "models": [
          {"model": "EOS 5D Mark II", "comment": "contributed by ...",
           "profiles": [
             {"name": "EOS 5D Mark II iso 100", "iso": 100,
              "a": [a_r, a_g, a_b], "b": [b_r, b_g, b_b]},
             {"name": "...", "iso": 200, "a": [...], "b": [...], "skip": true},
             ...]}]}]}

``maker`` is the camera maker (darktable matches it as a substring of the image's maker),
``model`` the model without the maker, and every profile gives, for one ISO, the noise of data
normalised to [0, 1] (black level subtracted, divided by ``white - black``) as
``variance = a * y + b`` per colour channel (R, G, B). Entries with ``"skip": true`` are ignored
(as darktable does); an ISO may appear more than once (repeated measurements).

Conversion (:func:`camera_profile`): one ``nlf`` profile per camera, named
``"<maker> <model>"`` as :func:`rawadapt.io.raw.camera_name` writes a file's make and model
(``"Canon EOS 5D Mark II"``, so a RAW file of that camera finds it), with one NLF row
``[iso, a, b]`` per ISO:

* **the green channel's a and b**. darktable's red and blue values are about the green ones times
  the white-balance gains of the profiling shots (R/G ~ 2, B/G ~ 1.5 on most cameras), and
  darktable itself denoises with the green values scaled by each image's white balance; on
  RAW planes before white balance, as rawadapt denoises them, every plane gets the green line.
  So ``channel_k`` and ``channel_read`` stay 1.
* repeated ISOs are averaged; a negative ``b`` (a fit artefact at base ISO on some cameras) is
  clamped to 0; entries with a missing, non-finite or non-positive ``iso``/``a``, or ``a``/``b``
  not of three numbers, are skipped with a warning; a camera without any usable entry is
  skipped.
* **levels**: darktable's file has no black/white levels, and none are needed: its numbers are
  on normalised data, the unit of every rawadapt noise line. The profile uses NOMINAL levels,
  black 0 and white 65535 (16 bits), so that ``K = a * 65535`` and ``sigma_read = sqrt(b) * 65535``
  in DN reproduce ``a * y + b`` on [0, 1] exactly; the ADC quantisation the simulator adds
  (1/12 DN^2, i.e. 2e-11 normalised) is negligible. At denoise time a RAW file is normalised by
  its OWN levels, so the noise line applies to it unchanged. CFA ``RGGB`` is a placeholder: the
  simulator and the denoiser use the file's CFA.
* pure Poisson-Gaussian: no row noise, read-noise jitter, fixed pattern or colour bias (darktable
  does not measure them).

Between table ISOs the profile interpolates linearly in log ISO / log a and log b
(:class:`~rawadapt.noise.profiles.Profile`), unlike darktable's linear interpolation in ISO.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rawadapt.errors import ConfigError, InputFileError
from rawadapt.io.raw import camera_name
from rawadapt.noise.profiles import normalize_camera_name, save_profile, user_profile_dir

#: where Debian's ``darktable`` package installs the file
DEFAULT_PATH = Path("/usr/share/darktable/noiseprofiles.json")
#: the only file version darktable (and this importer) understands
SUPPORTED_VERSION = 0
#: nominal levels of imported profiles (see the module docstring)
NOMINAL_BLACK = 0.0
NOMINAL_WHITE = 65535.0
#: prefix of the files the importer writes
FILE_PREFIX = "darktable-"


@dataclass
class DarktableCamera:
    """One camera of darktable's file, reduced to the rows rawadapt uses.

    Attributes
    ----------
    maker, model
        As written in the file.
    name
        ``"<maker> <model>"`` cleaned like a RAW file's camera name (the profile name).
    comment
        darktable's comment (contributor), possibly empty.
    rows
        ``[(iso, a, b), ...]`` sorted by ISO: the green channel's values, repeated ISOs averaged,
        ``b`` clamped at 0.
    clamped
        Number of ISO rows whose ``b`` was negative (set to 0).
    """

    maker: str
    model: str
    name: str
    comment: str = ""
    rows: list[tuple[float, float, float]] = field(default_factory=list)
    clamped: int = 0


@dataclass
class DarktableFile:
    """The usable content of a ``noiseprofiles.json`` and what was left out."""

    path: Path
    version: int
    cameras: list[DarktableCamera]
    warnings: list[str] = field(default_factory=list)


def _is_number(v: Any) -> bool:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # a JSON integer beyond the float range
        return False


def _three(v: Any) -> list[float] | None:
    if not isinstance(v, list) or len(v) != 3 or not all(_is_number(x) for x in v):
        return None
    return [float(x) for x in v]


def _entry(entry: Any) -> tuple[float, float, float] | str | None:
    """``(iso, a_green, b_green)``, None for a skipped entry, or why the entry is unusable."""
    if not isinstance(entry, Mapping):
        return "not an object"
    if entry.get("skip") is True:
        return None
    raw_iso: Any = entry.get("iso")
    iso = float(raw_iso) if _is_number(raw_iso) else math.nan
    if not iso > 0:
        return f"bad iso {raw_iso!r}"
    a, b = _three(entry.get("a")), _three(entry.get("b"))
    if a is None or b is None:
        return "'a' and 'b' must be lists of 3 finite numbers"
    if a[1] <= 0:
        return f"non-positive a {a[1]!r}"
    return iso, a[1], b[1]


def _round(v: float) -> float:
    """6 significant digits (darktable's numbers are fits; averaging must not add noise digits)."""
    return float(f"{v:.6g}")


def _camera(maker: str, model_doc: Mapping[str, Any], where: str, warnings: list[str]) -> DarktableCamera | None:
    model = str(model_doc.get("model") or "").strip()
    if not model:
        warnings.append(f"{where}: a model without a 'model' name, skipped")
        return None
    name = camera_name(maker, model)
    profiles = model_doc.get("profiles")
    if not isinstance(profiles, list):
        warnings.append(f"{name}: no 'profiles' list, skipped")
        return None
    by_iso: dict[float, list[tuple[float, float]]] = {}
    for k, entry in enumerate(profiles):
        got = _entry(entry)
        if got is None:
            continue
        if isinstance(got, str):
            label = entry.get("name") if isinstance(entry, Mapping) and entry.get("name") else f"entry {k + 1}"
            warnings.append(f"{name}: {label}: {got}, skipped")
            continue
        iso, a, b = got
        by_iso.setdefault(iso, []).append((a, b))
    if not by_iso:
        warnings.append(f"{name}: no usable ISO entry, skipped")
        return None
    rows: list[tuple[float, float, float]] = []
    clamped = 0
    for iso in sorted(by_iso):
        vals = by_iso[iso]
        a = sum(v[0] for v in vals) / len(vals)
        b = sum(v[1] for v in vals) / len(vals)
        if b < 0:
            clamped += 1
            b = 0.0
        rows.append((iso, _round(a), _round(b)))
    return DarktableCamera(
        maker=maker, model=model, name=name, comment=str(model_doc.get("comment") or ""), rows=rows, clamped=clamped
    )


def read_darktable(path: str | os.PathLike[str] | None = None) -> DarktableFile:
    """Read and check darktable's ``noiseprofiles.json``.

    Parameters
    ----------
    path
        The file; default :data:`DEFAULT_PATH`.

    Returns
    -------
    DarktableFile
        Every camera with at least one usable ISO entry; malformed entries and cameras are left
        out with a one-line warning each (``warnings``).

    Raises
    ------
    InputFileError
        The file does not exist or cannot be read.
    ConfigError
        Not JSON, or not darktable's layout (no ``noiseprofiles`` list, another file version).
    """
    p = Path(path).expanduser() if path is not None else DEFAULT_PATH
    if not p.is_file():
        raise InputFileError(f"darktable noise profiles not found at {p}; install darktable or pass the file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read darktable noise profiles: {getattr(exc, 'strerror', None) or exc}", p)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not a valid darktable noise profile file: invalid JSON at line {exc.lineno} column {exc.colno}", p
        ) from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("noiseprofiles"), list):
        raise ConfigError("not a darktable noise profile file: no 'noiseprofiles' list", p)
    version = doc.get("version", SUPPORTED_VERSION)
    if version != SUPPORTED_VERSION:
        raise ConfigError(
            f"darktable noise profile file version {version!r} is not supported (expected {SUPPORTED_VERSION})", p
        )
    warnings: list[str] = []
    cameras: list[DarktableCamera] = []
    for i, maker_doc in enumerate(doc["noiseprofiles"]):
        where = f"maker {i + 1}"
        if not isinstance(maker_doc, Mapping) or not isinstance(maker_doc.get("models"), list):
            warnings.append(f"{where}: no 'models' list, skipped")
            continue
        maker = str(maker_doc.get("maker") or "").strip()
        for j, model_doc in enumerate(maker_doc["models"]):
            if not isinstance(model_doc, Mapping):
                warnings.append(f"{maker or where}: model {j + 1} is not an object, skipped")
                continue
            cam = _camera(maker, model_doc, f"{maker or where}, model {j + 1}", warnings)
            if cam is not None:
                cameras.append(cam)
    return DarktableFile(path=p, version=int(version), cameras=cameras, warnings=warnings)


def camera_profile(camera: DarktableCamera, *, source_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The ``nlf`` profile mapping of one darktable camera (rules in the module docstring).

    Parameters
    ----------
    camera
        From :func:`read_darktable`.
    source_path
        The file it came from (written in the profile's ``source``).

    Returns
    -------
    dict
        A mapping :func:`rawadapt.noise.profiles.profile_from_dict` accepts.
    """
    isos = [r[0] for r in camera.rows]
    raw_name = f"{camera.maker} {camera.model}".strip()
    where = f" ({source_path})" if source_path is not None else ""
    comment = f"; darktable comment: {camera.comment}" if camera.comment else ""
    clamped = f"; {camera.clamped} negative b clamped to 0" if camera.clamped else ""
    doc: dict[str, Any] = {
        "name": camera.name,
        "kind": "nlf",
        "description": f"{camera.name}: darktable noise profile, {len(isos)} ISO settings",
        "source": (
            f"darktable noiseprofiles.json{where}, maker {camera.maker!r}, model {camera.model!r}{comment}. "
            "Per-ISO Poisson-Gaussian var = a y + b on [0, 1] data, green channel (R/B include the white balance "
            f"of the profiling shots){clamped}. Levels nominal (black 0, white 65535): darktable has none; a RAW "
            "file is normalised by its own. CFA RGGB is a placeholder (the file's CFA is used)."
        ),
        "cfa": "RGGB",
        "bits": 16,
        "black_level": [NOMINAL_BLACK] * 4,
        "white_level": NOMINAL_WHITE,
        "iso_range": [min(isos), max(isos)],
        "read_model": "gaussian",
        "nlf": [[iso, a, b] for iso, a, b in camera.rows],
        "read_jitter": 0.0,
        "row_fraction": 0.0,
        "fixed_pattern": {"seed": 0, "dsnu": 0.0, "prnu": 0.0, "column": 0.0},
        "ratios": [1],
    }
    if normalize_camera_name(raw_name) != normalize_camera_name(camera.name):
        doc["aliases"] = [raw_name]  # the file's own spelling, e.g. "NIKON CORPORATION D850"
    return doc


def profile_filename(name: str) -> str:
    """``darktable-<name with runs of other characters as '-'>.yaml``.

    Examples
    --------
    >>> profile_filename("Canon EOS 5D Mark II")
    'darktable-Canon-EOS-5D-Mark-II.yaml'
    """
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-") or "camera"
    return f"{FILE_PREFIX}{slug}.yaml"


@dataclass
class ImportResult:
    """What :func:`import_darktable` wrote."""

    source: Path
    out_dir: Path
    cameras: list[str]
    files: list[Path]
    isos: int
    warnings: list[str]

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary (what ``rawadapt profiles import-darktable --json`` prints)."""
        return {
            "source": str(self.source),
            "out": str(self.out_dir),
            "cameras": len(self.cameras),
            "isos": self.isos,
            "names": self.cameras,
            "files": [str(f) for f in self.files],
            "warnings": self.warnings,
        }


def import_darktable(
    path: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    camera: str | None = None,
) -> ImportResult:
    """Convert darktable's noise profiles into rawadapt profiles and write them (one YAML per
    camera, each written atomically).

    Parameters
    ----------
    path
        darktable's ``noiseprofiles.json``; default :data:`DEFAULT_PATH`.
    out_dir
        Destination folder (created if needed); default the user profile folder
        (:func:`rawadapt.noise.profiles.user_profile_dir`), where ``load_profile`` and the
        camera matching of ``rawadapt denoise`` find them.
    camera
        Import only the cameras whose name (``"<maker> <model>"``) contains this text (case
        ignored).

    Returns
    -------
    ImportResult

    Raises
    ------
    InputFileError, ConfigError
        See :func:`read_darktable`; also ConfigError when ``camera`` matches no camera.
    OutputFileError
        The destination cannot be written.
    """
    data = read_darktable(path)
    cams = data.cameras
    if camera is not None:
        needle = camera.strip().lower()
        cams = [c for c in cams if needle in c.name.lower() or needle in f"{c.maker} {c.model}".lower()]
        if not cams:
            raise ConfigError(f"no camera in the file matches {camera!r}", data.path)
        warnings = [w for w in data.warnings if needle in w.lower()]
    else:
        warnings = data.warnings
        if not cams:
            raise ConfigError("no usable camera profile in the file", data.path)
    dest = Path(out_dir).expanduser() if out_dir is not None else user_profile_dir()
    used: dict[str, int] = {}
    files: list[Path] = []
    for cam in cams:
        fname = profile_filename(cam.name)
        n = used.get(fname, 0)
        used[fname] = n + 1
        if n:  # two models with the same cleaned name: keep both
            fname = fname[: -len(".yaml")] + f"-{n + 1}.yaml"
        files.append(save_profile(camera_profile(cam, source_path=data.path), dest / fname))
    return ImportResult(
        source=data.path,
        out_dir=dest,
        cameras=[c.name for c in cams],
        files=files,
        isos=sum(len(c.rows) for c in cams),
        warnings=warnings,
    )
