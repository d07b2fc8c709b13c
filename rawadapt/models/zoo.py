"""The model zoo: pretrained models shipped inside the package, loadable as ``zoo:NAME``.

Layout of a zoo root (the package's ``rawadapt/zoo`` folder; ``$RAWADAPT_ZOO_DIR`` replaces it)::

    zoo.json                     the index (below): what is shipped, with each weights file's SHA-256
    weights/NAME/model.safetensors   weights stored in float16 (bfloat16 where a value exceeds the
                                     float16 range); loading casts them back to float32
    weights/NAME/model.json      the model description a run folder has (:mod:`rawadapt.models.checkpoint`)
    weights/NAME/recipe.yaml     how it was trained: the recipe and the run's full resolved TrainConfig
    weights/NAME/train_log.csv   the run's training log
    weights/NAME/metrics.json    the run's final test metrics (per image rows removed)
    recipes/NAME.yaml            the recipes ``rawadapt zoo build`` trains (package root only)

``zoo.json``::

    {"format": "rawadapt-zoo", "format_version": 1,
     "models": [{"name", "space" ("raw"/"srgb"), "arch", "recipe", "description",
                 "trained_on": {"data", "sensors"}, "held_out", "params", "dtype", "size_bytes",
                 "sha256", "iterations", "seed", "package_version",
                 "psnr": {"BENCHMARK": dB, ...} (filled when measured), "train_metrics"}, ...]}

Anything that accepts a run folder accepts ``zoo:NAME`` (the hook is
:func:`rawadapt.models.checkpoint.resolve_model_files`, which every ``load_model`` goes through,
and :func:`resolve_run`): the name is looked up in the index and the weights file's size and
SHA-256 are checked against it before anything is loaded; a mismatch is a one-line
:class:`~rawadapt.errors.CheckpointError`. ``zoo:`` always means the zoo, never a folder of that
name.

Limits (enforced by ``rawadapt zoo export`` and a test over the shipped index):
:data:`MAX_MODEL_BYTES` per model folder, :data:`MAX_TOTAL_BYTES` for all of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from rawadapt.errors import CheckpointError, ConfigError

ZOO_PREFIX = "zoo:"
ZOO_ENV = "RAWADAPT_ZOO_DIR"
#: the shipped model a benchmark's zoo rows (``zoo-ft``, ``zoo-zs``) start from, per space
DEFAULT_MODELS: dict[str, str] = {"raw": "zoo:raw-unet-any", "srgb": "zoo:srgb-unet-m"}
INDEX_NAME = "zoo.json"
WEIGHTS_DIR = "weights"
RECIPES_DIR = "recipes"
INDEX_FORMAT = "rawadapt-zoo"
INDEX_FORMAT_VERSION = 1
#: at most this many bytes per model folder (weights + description + recipe + log)
MAX_MODEL_BYTES = 10 * 10**6
#: at most this many bytes for all the model folders of the index together
MAX_TOTAL_BYTES = 25 * 10**6
#: model names: lower-case letters, digits, ``.``, ``_``, ``-``; a letter or digit first
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_MAX_INDEX_BYTES = 4 * 2**20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

PathLike = str | os.PathLike[str]


def package_zoo_dir() -> Path:
    """The zoo shipped in the package: ``rawadapt/zoo``."""
    return Path(__file__).resolve().parents[1] / "zoo"


def zoo_root(root: PathLike | None = None) -> Path:
    """The zoo root: ``root`` if given, else ``$RAWADAPT_ZOO_DIR`` if set, else the package's."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ZOO_ENV)
    return Path(env).expanduser() if env else package_zoo_dir()


def is_zoo_ref(path: object) -> bool:
    """Whether ``path`` (a string or path) is a ``zoo:NAME`` reference."""
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(ZOO_PREFIX)


def check_name(name: str) -> str:
    """``name`` if it is a valid zoo model name (:data:`NAME_PATTERN`).

    Raises
    ------
    ConfigError
        An invalid name.
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigError(
            f"invalid zoo model name {str(name)[:80]!r}: lower-case letters, digits, '.', '_' and '-' "
            "(a letter or digit first, at most 64 characters)"
        )
    return name


def empty_index() -> dict[str, Any]:
    """An index without models."""
    return {"format": INDEX_FORMAT, "format_version": INDEX_FORMAT_VERSION, "models": []}


def read_index(root: PathLike | None = None) -> dict[str, Any]:
    """The zoo index of ``root`` (default :func:`zoo_root`); a missing ``zoo.json`` is an empty zoo.

    Raises
    ------
    CheckpointError
        An unreadable, foreign or malformed index (entries without a valid name, SHA-256 or size,
        duplicate names), or one written by a newer rawadapt.
    """
    path = zoo_root(root) / INDEX_NAME
    if not path.is_file():
        return empty_index()
    try:
        if path.stat().st_size > _MAX_INDEX_BYTES:
            raise CheckpointError(f"zoo index larger than {_MAX_INDEX_BYTES} bytes", path)
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"unreadable zoo index: {type(exc).__name__}: {str(exc)[:120]}", path) from None
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise CheckpointError(f'not a rawadapt zoo index (no "format": "{INDEX_FORMAT}")', path)
    version = index.get("format_version")
    if not isinstance(version, int) or version > INDEX_FORMAT_VERSION:
        raise CheckpointError(f"zoo index format_version {version!r} is not supported; upgrade rawadapt", path)
    models = index.get("models")
    if not isinstance(models, list):
        raise CheckpointError('zoo index: "models" must be a list', path)
    seen: set[str] = set()
    for k, entry in enumerate(models):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise CheckpointError(f"zoo index: entry {k} has no name", path)
        ok = (
            NAME_PATTERN.match(name) is not None
            and isinstance(entry.get("sha256"), str)
            and _HEX64.match(entry["sha256"]) is not None
            and isinstance(entry.get("size_bytes"), int)
            and entry["size_bytes"] > 0
        )
        if not ok:
            raise CheckpointError(f"zoo index: entry {k} needs a valid name, sha256 and size_bytes", path)
        if name in seen:
            raise CheckpointError(f"zoo index: model {name!r} listed twice", path)
        seen.add(name)
    return index


def entries(root: PathLike | None = None) -> list[dict[str, Any]]:
    """The index's model entries (see the module docstring), in index order."""
    return list(read_index(root)["models"])


def known_names(root: PathLike | None = None) -> list[str]:
    """Names of the models in the index."""
    return [e["name"] for e in entries(root)]


def get_entry(name: str, root: PathLike | None = None) -> dict[str, Any]:
    """The index entry of model ``name``.

    Raises
    ------
    ConfigError
        No such model; the one-line message lists the known names.
    """
    for e in entries(root):
        if e["name"] == name:
            return e
    names = known_names(root)
    known = (
        f"known: {', '.join(names)}"
        if names
        else "the zoo has no models yet (train one with `rawadapt zoo build`, add it with `rawadapt zoo export`)"
    )
    raise ConfigError(f"unknown zoo model {name!r}; {known}")


def model_dir(name: str, root: PathLike | None = None) -> Path:
    """The folder of model ``name`` (whether or not it exists)."""
    return zoo_root(root) / WEIGHTS_DIR / check_name(name)


def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def folder_bytes(folder: PathLike) -> int:
    """Total size of the plain files in ``folder`` (not recursive; 0 when it does not exist)."""
    p = Path(folder)
    if not p.is_dir():
        return 0
    return sum(f.stat().st_size for f in p.iterdir() if f.is_file())


def verify_entry(entry: dict[str, Any], root: PathLike | None = None) -> Path:
    """Check model ``entry``'s folder against the index; returns the folder.

    The weights file must exist and have exactly the index's size and SHA-256, and the
    ``tensors_sha256`` of its ``model.json`` must agree.

    Raises
    ------
    CheckpointError
        Missing folder or files, or a size / hash mismatch (one line naming the file).
    """
    from rawadapt.models.checkpoint import META_NAME, WEIGHTS_NAME

    name = entry["name"]
    folder = model_dir(name, root)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"zoo model {name!r}: weights file missing (reinstall rawadapt or re-export it)", weights)
    size = weights.stat().st_size
    if size != entry["size_bytes"]:
        raise CheckpointError(
            f"zoo model {name!r}: weights are {size} bytes, {INDEX_NAME} says {entry['size_bytes']} "
            "(corrupted or replaced file); reinstall rawadapt or re-export it",
            weights,
        )
    if sha256_file(weights) != entry["sha256"]:
        raise CheckpointError(
            f"zoo model {name!r}: weights do not match the SHA-256 in {INDEX_NAME} (corrupted or replaced "
            "file); reinstall rawadapt or re-export it",
            weights,
        )
    try:
        meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"zoo model {name!r}: unreadable {META_NAME} ({type(exc).__name__})", folder) from None
    if not isinstance(meta, dict) or meta.get("tensors_sha256") != entry["sha256"]:
        raise CheckpointError(
            f"zoo model {name!r}: {META_NAME} describes other weights than {INDEX_NAME} lists", folder / META_NAME
        )
    return folder


def resolve_zoo(ref: str, root: PathLike | None = None) -> Path:
    """The verified folder of ``zoo:NAME`` (or a bare ``NAME``).

    Raises
    ------
    ConfigError
        Unknown name (the message lists the known ones) or an invalid one.
    CheckpointError
        The shipped files do not match the index (:func:`verify_entry`).
    """
    name = ref[len(ZOO_PREFIX) :] if ref.startswith(ZOO_PREFIX) else ref
    if not name:
        raise ConfigError(f"give a model name after {ZOO_PREFIX!r}; known: {', '.join(known_names(root)) or 'none'}")
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"unknown zoo model {name[:80]!r}; known: {', '.join(known_names(root)) or 'none'}")
    return verify_entry(get_entry(name, root), root)


def resolve_run(path: PathLike) -> Path:
    """A run folder or model file path: ``zoo:NAME`` -> its verified zoo folder, else ``Path(path)``."""
    if is_zoo_ref(path):
        return resolve_zoo(os.fspath(path))
    return Path(path)


def verify_all(root: PathLike | None = None) -> list[dict[str, Any]]:
    """Re-hash every model of the index; one ``{"name", "ok", "error", "folder_bytes"}`` per model.

    Folders over :data:`MAX_MODEL_BYTES` fail; so does every model when the total is over
    :data:`MAX_TOTAL_BYTES`. Model folders under ``weights/`` that the index does not list are
    reported with ``"ok": False`` and ``"error": "not in the index"``.
    """
    out: list[dict[str, Any]] = []
    total = 0
    for e in entries(root):
        size = folder_bytes(model_dir(e["name"], root))
        total += size
        try:
            verify_entry(e, root)
            error = None if size <= MAX_MODEL_BYTES else f"{size} bytes, over the limit of {MAX_MODEL_BYTES}"
        except CheckpointError as exc:
            error = exc.message
        out.append({"name": e["name"], "ok": error is None, "error": error, "folder_bytes": size})
    if total > MAX_TOTAL_BYTES:
        for r in out:
            r["ok"] = False
            r["error"] = r["error"] or f"the zoo holds {total} bytes, over the limit of {MAX_TOTAL_BYTES}"
    listed = {r["name"] for r in out}
    weights = zoo_root(root) / WEIGHTS_DIR
    if weights.is_dir():
        for d in sorted(weights.iterdir()):
            if d.is_dir() and not d.name.startswith(".") and d.name not in listed:
                out.append(
                    {"name": d.name, "ok": False, "error": f"not in {INDEX_NAME}", "folder_bytes": folder_bytes(d)}
                )
    return out
