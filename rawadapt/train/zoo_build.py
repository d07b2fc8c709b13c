"""Build and export model-zoo models (``rawadapt zoo build`` / ``rawadapt zoo export``).

``build_recipe(NAME)`` trains a recipe (:mod:`rawadapt.train.recipes`) through the normal
training API into a run folder; calling it again on the same folder resumes an interrupted run
exactly (a finished one is only re-evaluated). When the run finishes, ``RUN/recipe.yaml`` records
the recipe with the run's resolved config.

``export_run(RUN, NAME)`` turns a finished run folder into ``weights/NAME`` of the zoo root
(:mod:`rawadapt.models.zoo`): the weights converted to float16 (bfloat16 when a value exceeds
float16's range), ``model.json`` with the new checksum, ``recipe.yaml``, ``train_log.csv`` and a
``metrics.json`` summary, then the entry in ``zoo.json`` (hash, size, ...). The new folder is
written beside the old one, loaded back to check it, and swapped in by renames; the index is
replaced atomically; a lock on the zoo root serialises concurrent exports.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from rawadapt.errors import CheckpointError, ConfigError
from rawadapt.models.zoo import (
    INDEX_NAME,
    MAX_MODEL_BYTES,
    MAX_TOTAL_BYTES,
    WEIGHTS_DIR,
    check_name,
    folder_bytes,
    model_dir,
    read_index,
    zoo_root,
)
from rawadapt.train.recipes import RECIPE_FILE, Recipe, load_recipe, recipe_from_dict
from rawadapt.utils.atomic import write_json
from rawadapt.utils.lock import FolderLock

#: the run's training log inside a zoo model folder
LOG_FILE = "train_log.csv"
#: the run's final metrics (per-image rows removed) inside a zoo model folder
METRICS_FILE = "metrics.json"
#: float16's largest finite value: a weight beyond it is stored as bfloat16 instead
FP16_MAX = 65504.0
#: where ``zoo build`` puts its run folders by default
DEFAULT_BUILD_DIR = Path("runs") / "zoo"


def build_recipe(
    recipe: str | Path | Recipe,
    out: str | Path | None = None,
    *,
    iters: int | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a zoo recipe into a run folder (resuming it when it already holds the run).

    Parameters
    ----------
    recipe
        A shipped recipe name, a recipe YAML file, or a :class:`~rawadapt.train.recipes.Recipe`.
    out
        The run folder (default ``runs/zoo/NAME``). A folder with the run's ``config.yaml`` is
        resumed (its settings must match: same recipe and ``iters``).
    iters
        Override the recipe's ``iters`` (short trial runs).
    threads
        Torch CPU threads (may differ on resume).
    progress
        tqdm progress bar on stderr (else plain lines).

    Returns
    -------
    dict
        ``{"run", "recipe", "resumed", "metrics"}``.

    Raises
    ------
    ConfigError, CheckpointError, RunLockedError, NonFiniteError, TrainingInterrupted
        As :func:`rawadapt.train.api.run_training`.
    """
    from rawadapt.train.api import CONFIG_NAME, run_training
    from rawadapt.train.config import with_overrides
    from rawadapt.utils.atomic import write_text

    rec = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    overrides: dict[str, Any] = {}
    if iters is not None:
        overrides["iters"] = int(iters)
    if threads is not None:
        overrides["threads"] = int(threads)
    config = with_overrides(rec.config, overrides) if overrides else rec.config
    run = Path(out) if out is not None else DEFAULT_BUILD_DIR / rec.name
    resume = (run / CONFIG_NAME).is_file()
    metrics = run_training(config, run, resume=resume, progress=progress)
    final = rec.model_copy(update={"config": config})
    write_text(run / RECIPE_FILE, final.to_yaml())
    return {"run": str(run), "recipe": rec.name, "resumed": resume, "metrics": metrics}


def _half_state(state: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Floating tensors as float16 (bfloat16 for all when one exceeds float16's range)."""
    import torch

    floats = [t for t in state.values() if t.is_floating_point() and t.numel()]
    big = any(float(t.detach().abs().max()) > FP16_MAX for t in floats)
    dtype = torch.bfloat16 if big else torch.float16
    out = {
        k: (v.detach().to("cpu", dtype).contiguous() if v.is_floating_point() else v.contiguous())
        for k, v in state.items()
    }
    return out, ("bfloat16" if big else "float16")


def _run_recipe(run: Path, name: str, description: str | None, space: str) -> Recipe:
    """The run's recipe (``RUN/recipe.yaml`` from ``zoo build``), else one made from ``config.yaml``."""
    from rawadapt.train.api import CONFIG_NAME
    from rawadapt.train.config import load_config

    if (run / RECIPE_FILE).is_file():
        rec = load_recipe(run / RECIPE_FILE)
        if (run / CONFIG_NAME).is_file():  # the run's own config is the truth
            rec = rec.model_copy(update={"config": load_config(run / CONFIG_NAME)})
    elif (run / CONFIG_NAME).is_file():
        rec = recipe_from_dict(
            {"name": name, "space": space, "config": load_config(run / CONFIG_NAME).model_dump(mode="json")},
            source=run / CONFIG_NAME,
        )
    else:
        raise CheckpointError(f"not a training run folder (no {RECIPE_FILE} or {CONFIG_NAME})", run)
    if description is not None:
        rec = rec.model_copy(update={"description": description})
    return rec


def _clean_stale(weights: Path) -> None:
    """Remove what a killed export left in ``weights/`` (call under the zoo lock): staging
    folders, and previous versions, which are put back when their model folder is missing."""
    for d in sorted(weights.glob(".*.old-*")):
        dest = weights / d.name[1:].split(".old-")[0]
        if d.is_dir() and not dest.exists():
            with contextlib.suppress(OSError):
                os.replace(d, dest)
            continue
        shutil.rmtree(d, ignore_errors=True)
    for d in weights.glob(".*.tmp-*"):
        shutil.rmtree(d, ignore_errors=True)


def export_run(
    run: str | Path,
    name: str,
    *,
    root: str | Path | None = None,
    description: str | None = None,
    psnr: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Export a finished run folder as zoo model ``name`` (see the module docstring).

    Parameters
    ----------
    run
        A finished run folder (``model.json`` with ``"complete": true``).
    name
        The zoo model name; an existing model of that name is replaced.
    root
        The zoo root (default :func:`rawadapt.models.zoo.zoo_root`: ``$RAWADAPT_ZOO_DIR`` or the
        package's ``rawadapt/zoo``).
    description
        One line for ``zoo list`` (default: the recipe's).
    psnr
        Benchmark results to record, ``{"BENCHMARK": dB}`` (e.g. ``{"synth/SonyA7S2": 43.1}``).
        Re-exporting identical weights keeps the results recorded before.

    Returns
    -------
    dict
        The new index entry.

    Raises
    ------
    CheckpointError
        Not a finished run, or its model does not load.
    ConfigError
        An invalid name, or the model folder over :data:`~rawadapt.models.zoo.MAX_MODEL_BYTES`
        or the zoo over :data:`~rawadapt.models.zoo.MAX_TOTAL_BYTES`.
    """
    import hashlib

    import torch
    from safetensors.torch import save as st_save

    import rawadapt
    from rawadapt.models.checkpoint import META_NAME, MODEL_FORMAT, WEIGHTS_NAME, load_model
    from rawadapt.train.api import METRICS_NAME
    from rawadapt.train.runlog import LOG_NAME
    from rawadapt.utils.atomic import write_bytes, write_text

    check_name(name)
    src = Path(run)
    if not src.is_dir():
        raise CheckpointError("no such run folder", src)
    try:
        meta_raw = json.loads((src / META_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta_raw = None
    if not isinstance(meta_raw, dict) or meta_raw.get("complete") is not True:
        raise CheckpointError(
            'not a finished run (model.json without "complete": true); finish it first '
            "(`rawadapt zoo build` resumes an interrupted build)",
            src,
        )
    with torch.random.fork_rng(devices=[]):
        model, meta = load_model(src)
    rec = _run_recipe(src, name, description, model.space)
    state, dtype = _half_state(model.state_dict())
    # one metadata entry: safetensors writes its metadata map in no fixed order, and the same
    # weights must give the same bytes (and SHA-256) on every export
    blob = st_save(state, metadata={"format": MODEL_FORMAT})
    digest = hashlib.sha256(blob).hexdigest()
    meta = dict(meta)
    meta.update(tensors_sha256=digest, storage_dtype=dtype, zoo_name=name)
    metrics: dict[str, Any] = {}
    if (src / METRICS_NAME).is_file():
        try:
            metrics = json.loads((src / METRICS_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            metrics = {}
        metrics.pop("images", None)
    cfg = rec.config
    entry: dict[str, Any] = {
        "name": name,
        "space": model.space,
        "arch": model.arch,
        "recipe": rec.name,
        "description": rec.description,
        "trained_on": {"data": cfg.data.data, "sensors": list(meta.get("train_sensors") or model.sensors)},
        "held_out": list(rec.held_out),
        "params": int(model.num_parameters()),
        "dtype": dtype,
        "size_bytes": len(blob),
        "sha256": digest,
        "iterations": meta.get("global_step"),
        "seed": cfg.seed,
        "package_version": rawadapt.__version__,
        "psnr": {str(k): float(v) for k, v in (psnr or {}).items()},
        "train_metrics": {
            k: metrics.get(k) for k in ("data", "n_test", "psnr", "psnr_noisy", "ssim", "ssim_noisy") if k in metrics
        },
    }

    zoo = zoo_root(root)
    weights = zoo / WEIGHTS_DIR
    weights.mkdir(parents=True, exist_ok=True)
    dest = model_dir(name, zoo)
    stage = weights / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
    old = weights / f".{name}.old-{uuid.uuid4().hex[:8]}"
    with FolderLock(zoo):
        _clean_stale(weights)
        swapped = False
        try:
            write_bytes(stage / WEIGHTS_NAME, blob)
            write_json(stage / META_NAME, meta)
            write_text(stage / RECIPE_FILE, rec.to_yaml())
            if (src / LOG_NAME).is_file():
                shutil.copyfile(src / LOG_NAME, stage / LOG_FILE)
            write_json(stage / METRICS_FILE, metrics)
            size = folder_bytes(stage)
            if size > MAX_MODEL_BYTES:
                raise ConfigError(
                    f"zoo model {name!r} would take {size / 1e6:.2f} MB, over the limit of "
                    f"{MAX_MODEL_BYTES / 1e6:g} MB per model (a smaller network?)"
                )
            index = read_index(zoo)
            others = [e for e in index["models"] if e["name"] != name]
            prev = [e for e in index["models"] if e["name"] == name]
            if prev and prev[0]["sha256"] == digest and isinstance(prev[0].get("psnr"), dict):
                entry["psnr"] = {**prev[0]["psnr"], **entry["psnr"]}  # same weights: results still hold
            total = size + sum(folder_bytes(model_dir(e["name"], zoo)) for e in others)
            if total > MAX_TOTAL_BYTES:
                raise ConfigError(
                    f"the zoo would hold {total / 1e6:.2f} MB with {name!r}, over the limit of "
                    f"{MAX_TOTAL_BYTES / 1e6:g} MB in all"
                )
            with torch.random.fork_rng(devices=[]):
                load_model(stage)  # the float16 files load (checksum, shapes, finite values)
            if dest.exists():
                os.replace(dest, old)
            os.replace(stage, dest)
            swapped = True
            index["models"] = sorted([*others, entry], key=lambda e: e["name"])
            write_json(zoo / INDEX_NAME, index)
        except BaseException:
            # put the previous model back: the index still describes it
            if swapped:
                shutil.rmtree(dest, ignore_errors=True)
            if old.exists() and not dest.exists():
                with contextlib.suppress(OSError):
                    os.replace(old, dest)
            raise
        finally:
            for leftover in (stage, old):
                shutil.rmtree(leftover, ignore_errors=True)
    return entry
