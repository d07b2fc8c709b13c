"""One benchmark cell = one method fitted and evaluated on one task; its own folder and files.

Layout under the protocol's output folder::

    cells/<variant>/<target>/seed<k>/<method>/result.json    the cell (written last, atomically)
    cells/<variant>/<target>/seed<k>/<method>/crops/*.npy    denoised crops for the report
    cells/<variant>/<target>/seed<k>/inputs/*.npz            noisy/clean crops (shared by methods)
    runs/<variant>/<target>/seed<k>/<method>/               training runs (trained methods)

``result.json`` holds the per-image PSNR/SSIM of the method and of the noisy input on the
target test set, fit seconds, denoise seconds per image, ``method.info()`` (with ADL's
per-domain acceptance), the budget and the cell's *settings* (:func:`cell_settings`). A cell
whose ``result.json`` exists with the same settings is finished and never recomputed; one with
different settings is refused or recomputed (:attr:`BenchSettings.on_change`).

Timing: ``fit_seconds`` is the wall time of ``method.run_fit``; for trained methods it is the
run's own setup + training seconds from its ``metrics.json`` when that is larger, so a run
reused or resumed after an interruption still reports its real training time.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rawadapt.baselines.base import make_method, method_class
from rawadapt.errors import ConfigError
from rawadapt.metrics import evaluate_pair
from rawadapt.utils.atomic import atomic_path, write_json
from rawadapt.utils.compute import compute_record, resolve_precision

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.baselines.base import Budget, Method, Task
    from rawadapt.data.sample import Sample
    from rawadapt.eval.protocols.plan import TaskPlan
    from rawadapt.eval.protocols.settings import BenchSettings

RESULT_NAME = "result.json"
ERROR_NAME = "error.json"
SCHEMA = 1


def safe_name(text: str) -> str:
    """A folder-safe version of a sensor/sample name."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", str(text)).strip("_") or "_"


def task_dir(out: Path, tp: TaskPlan) -> Path:
    return Path(out) / "cells" / tp.variant.key / safe_name(tp.target) / f"seed{tp.seed}"


def run_root(out: Path, tp: TaskPlan) -> Path:
    """``task.work_dir``: trained methods write their runs in ``<this>/<method>``."""
    return Path(out) / "runs" / tp.variant.key / safe_name(tp.target) / f"seed{tp.seed}"


def cell_dir(out: Path, tp: TaskPlan, method: str) -> Path:
    return task_dir(out, tp) / safe_name(method)


def split_digest(task: Task) -> str:
    """Hash of the target pool and test sample ids (another split → another digest)."""
    pool = [r.sample_id for r in task.data.target_pool.records] if task.data.target_pool is not None else []
    test = [r.sample_id for r in task.data.test.records]
    return hashlib.sha256(json.dumps([pool, test]).encode()).hexdigest()[:16]


def cell_settings(settings: BenchSettings, tp: TaskPlan, method: str, budget: Budget, task: Task) -> dict[str, Any]:
    """Everything that changes a cell's numbers (threads and progress do not, so they are out)."""
    ds = task.dataset
    return {
        "data": settings.data,
        "dataset": {"name": ds.name, "space": ds.space, "count": len(ds)},
        "variant": tp.variant.key,
        "target": tp.target,
        "seed": tp.seed,
        "method": method,
        "target_pairs": tp.target_pairs,
        "test_pairs": settings.test_pairs,
        "sources": settings.sources,
        "extra": tp.extra,
        "budget": budget.to_dict(),
        "split": split_digest(task),
        "crops": {"n": settings.crops, "side": settings.crop},
        "precision": resolve_precision(settings.precision),
    }


def settings_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Top-level keys (``budget.iters`` for nested dicts) whose values differ."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += [f"{k}.{s}" for s in settings_diff(va, vb)]
        elif json.dumps(va, sort_keys=True, default=str) != json.dumps(vb, sort_keys=True, default=str):
            out.append(k)
    return out


def load_result(path: Path) -> dict[str, Any] | None:
    """A finished cell's ``result.json``, or None (missing, unreadable, not a cell)."""
    try:
        cell = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return cell if isinstance(cell, dict) and cell.get("schema") == SCHEMA and "images" in cell else None


def cell_status(path: Path, wanted: dict[str, Any]) -> tuple[str, list[str]]:
    """``("missing", [])``, ``("done", [])`` or ``("changed", differing keys)``."""
    cell = load_result(path)
    if cell is None:
        return "missing", []
    diff = settings_diff(cell.get("settings", {}), wanted)
    return ("changed", diff) if diff else ("done", [])


# -- crops for the report ----------------------------------------------------------------------
def crop_box(clean: np.ndarray, side: int) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a ``side`` crop: of 9 candidate positions (3x3 grid) the one with
    the most detail (std of the clean image), so crops show edges rather than flat sky."""
    _, h, w = clean.shape
    ch, cw = min(side, h), min(side, w)
    best, box = -1.0, (0, 0, ch, cw)
    for top in np.linspace(0, h - ch, 3).astype(int):
        for left in np.linspace(0, w - cw, 3).astype(int):
            v = float(np.std(clean[:, top : top + ch, left : left + cw]))
            if v > best:
                best, box = v, (int(top), int(left), ch, cw)
    return box


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def _save_inputs(path: Path, noisy: np.ndarray, clean: np.ndarray) -> None:
    if path.is_file():
        return  # written by another method of the same task: identical content
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, noisy=noisy.astype(np.float16), clean=clean.astype(np.float16))


def store_crop(cdir: Path, k: int, sample: Sample, denoised: np.ndarray, side_px: int) -> dict[str, Any]:
    """Save the crop of ``denoised`` (and, once per task, of noisy/clean); return its record.

    Crops are float16 (display and error maps only: metrics are computed on the full float32
    images); ``side_px`` is in displayed pixels (packed RAW crops are half that).
    """
    assert sample.clean is not None
    side = side_px // 2 if sample.space == "raw" else side_px
    top, left, h, w = crop_box(sample.clean, side)
    sl = (slice(None), slice(top, top + h), slice(left, left + w))
    stem = f"{k:02d}_{safe_name(sample.sample_id)}"
    den = np.clip(denoised[sl], 0.0, 1.0).astype(np.float16)
    _save_npy(cdir / "crops" / f"{stem}.npy", den)
    _save_inputs(cdir.parent / "inputs" / f"{stem}.npz", sample.noisy[sl], sample.clean[sl])
    return {
        "sample_id": sample.sample_id,
        "sensor": sample.sensor,
        "iso": sample.iso,
        "space": sample.space,
        "cfa": sample.cfa,
        "box": [top, left, h, w],
        "denoised": f"crops/{stem}.npy",
        "inputs": f"../inputs/{stem}.npz",
    }


# -- running one cell --------------------------------------------------------------------------
def _fit_seconds(method: Method, measured: float) -> float:
    """The larger of the measured fit time and the run's own setup + training seconds (trained
    methods reusing or resuming a run measure almost nothing themselves)."""
    metrics = getattr(method, "metrics", None)
    timings = metrics.get("timings", {}) if isinstance(metrics, dict) else {}
    own = float(timings.get("setup_seconds") or 0.0) + float(timings.get("train_seconds") or 0.0)
    return max(measured, own)


def _acceptance(info: dict[str, Any]) -> dict[str, float] | None:
    adl = info.get("adl")
    if not isinstance(adl, dict) or not isinstance(adl.get("domains"), dict):
        return None
    return {
        d: float(v["acceptance_rate"])
        for d, v in adl["domains"].items()
        if isinstance(v, dict) and v.get("acceptance_rate") is not None
    }


def _rel(path: Any, base: Path) -> str | None:
    if path is None:
        return None
    p = Path(path)
    try:
        return p.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(p)


def _jsonable(obj: Any) -> Any:
    """``obj`` with anything JSON cannot hold (paths, numpy scalars, tuples) made plain."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _mean(values: list[float]) -> float:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else math.nan


def run_cell(
    settings: BenchSettings,
    tp: TaskPlan,
    method_name: str,
    budget: Budget,
    wanted: dict[str, Any],
    *,
    out: Path,
    progress: bool = False,
    method_factory: Any = None,
) -> dict[str, Any]:
    """Fit ``method_name`` on the task, denoise every test image, write ``result.json``.

    Parameters
    ----------
    settings, tp, budget
        The run, the task plan (its ``task`` already built) and the budget.
    wanted
        :func:`cell_settings` of this cell (stored in the result).
    out
        The protocol's output folder.
    progress
        Training and denoising progress bars on stderr.
    method_factory
        ``(name, budget) -> Method`` (tests); default :func:`rawadapt.baselines.base.make_method`.

    Returns
    -------
    dict
        The cell record (what ``result.json`` holds).
    """
    import torch
    from tqdm import tqdm

    task = tp.task
    assert task is not None
    cdir = cell_dir(out, tp, method_name)
    if method_factory is not None:
        method = method_factory(method_name, budget)
    else:
        opts: dict[str, Any] = {}
        if method_class(method_name).shows_progress:
            opts["progress"] = progress  # (the task's test_pairs reach the run's config)
        method = make_method(method_name, budget=budget, **opts)
    prev = torch.get_num_threads()
    images: list[dict[str, Any]] = []
    crops: list[dict[str, Any]] = []
    try:
        t0 = time.perf_counter()
        method.run_fit(task)
        fit_wall = time.perf_counter() - t0
        if settings.threads:
            torch.set_num_threads(settings.threads)
        tests = [s for s in task.test if s.clean is not None]
        bar = tqdm(tests, desc=f"{method_name} denoise", unit="img", leave=False, disable=not progress)
        for k, sample in enumerate(bar):
            t1 = time.perf_counter()
            pred = np.asarray(method.denoise(sample), dtype=np.float32)
            dt = time.perf_counter() - t1
            if pred.shape != sample.noisy.shape:
                raise ConfigError(
                    f"method {method_name!r} returned shape {pred.shape} for a {sample.noisy.shape} image"
                )
            after = evaluate_pair(pred, sample.clean)
            before = evaluate_pair(sample.noisy, sample.clean)
            images.append(
                {
                    "sample_id": sample.sample_id,
                    "sensor": sample.sensor,
                    "iso": sample.iso,
                    "ratio": sample.ratio,
                    "psnr": after["psnr"],
                    "ssim": after["ssim"],
                    "psnr_noisy": before["psnr"],
                    "ssim_noisy": before["ssim"],
                    "seconds": dt,
                }
            )
            if k < settings.crops:
                crops.append(store_crop(cdir, k, sample, pred, settings.crop))
    finally:
        torch.set_num_threads(prev)
    info = _jsonable(method.info())
    run_dir = info.get("run_dir")
    metrics_file = Path(run_dir) / "metrics.json" if run_dir else None
    cell = {
        "schema": SCHEMA,
        "protocol": settings.protocol,
        "key": {
            "variant": tp.variant.key,
            "variant_label": tp.variant.label,
            "target": tp.target,
            "seed": tp.seed,
            "method": method_name,
        },
        "settings": wanted,
        "space": task.space,
        "n_images": len(images),
        "psnr": _mean([i["psnr"] for i in images]),
        "ssim": _mean([i["ssim"] for i in images]),
        "psnr_noisy": _mean([i["psnr_noisy"] for i in images]),
        "ssim_noisy": _mean([i["ssim_noisy"] for i in images]),
        "fit_seconds": _fit_seconds(method, fit_wall),
        "fit_wall_seconds": fit_wall,
        "denoise_seconds_per_image": _mean([i["seconds"] for i in images]),
        "images": images,
        "crops": crops,
        "acceptance": _acceptance(info),
        "run_dir": _rel(run_dir, out),
        "metrics_file": _rel(metrics_file, out) if metrics_file is not None and metrics_file.is_file() else None,
        "info": info,
        "budget": budget.to_dict(),
        "split": {
            "target_pool": [r.sample_id for r in task.data.target_pool.records]
            if task.data.target_pool is not None
            else [],
            "test": [i["sample_id"] for i in images],
            "sources": {d: len(v) for d, v in task.data.sources.items()},
            "harmful": list(tp.extra.get("harmful", [])),
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {
            "host": platform.node(),
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads() if not settings.threads else settings.threads,
            **compute_record(settings.precision),
        },
    }
    write_json(cdir / RESULT_NAME, cell)
    err = cdir / ERROR_NAME
    if err.exists():
        err.unlink()
    return cell


def write_error(out: Path, tp: TaskPlan, method: str, exc: BaseException) -> dict[str, Any]:
    """Record a failed cell (``--keep-going``); it is retried by the next run."""
    rec = {
        "key": {"variant": tp.variant.key, "target": tp.target, "seed": tp.seed, "method": method},
        "error": f"{type(exc).__name__}: {exc}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(cell_dir(out, tp, method) / ERROR_NAME, rec)
    return rec
