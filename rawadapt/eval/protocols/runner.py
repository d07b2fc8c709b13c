"""Run (or continue) a protocol: build the plan, check finished cells, compute the missing ones,
aggregate the tables from the cell files, draw the plots and (optionally) the report.

Output folder::

    DIR/protocol.json            the settings of the last run (informational)
    DIR/cells/...                one folder per cell (see :mod:`rawadapt.eval.protocols.cells`)
    DIR/runs/...                 training runs of trained methods
    DIR/results.csv|json|md      the tables (aggregated from the cell files)
    DIR/plots/*.png              plots (:mod:`rawadapt.eval.plots`)
    DIR/report.html              the self-contained report (:mod:`rawadapt.eval.report`)

Resuming: a cell whose ``result.json`` exists with the same settings is skipped; a cell that
was interrupted is recomputed (trained methods resume their run from its last checkpoint).
Before anything is computed, every finished cell is compared with this run's settings: with
``on_change="refuse"`` (default) a difference is an error naming the cell and the settings
that differ; with ``"recompute"`` those cells are computed again.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rawadapt.data.registry import open_dataset
from rawadapt.errors import ConfigError
from rawadapt.eval.plots import protocol_plots
from rawadapt.eval.protocols.cells import (
    RESULT_NAME,
    cell_dir,
    cell_settings,
    cell_status,
    load_result,
    run_cell,
    run_root,
    write_error,
)
from rawadapt.eval.protocols.plan import Plan, build_plan, build_task, cell_applies
from rawadapt.eval.protocols.settings import (
    BenchSettings,
    protocol_spec,
    resolve_budget,
)
from rawadapt.eval.report import write_report
from rawadapt.eval.results import aggregate, noise_bands, paired_tests, write_results
from rawadapt.utils.atomic import write_json
from rawadapt.utils.compute import compute_record, machine_line, precision_scope
from rawadapt.utils.log import logger

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    logger.info(msg)  # the CLI shows it (rawadapt.utils.log.cli_logging)


def _metric_note(space: str) -> str:
    where = "packed RAW planes in [0, 1]" if space == "raw" else "sRGB in [0, 1] (8-bit values / 255)"
    return (
        f"PSNR (dB, data range 1) and SSIM per test image on {where}, averaged over the target's test "
        "images; ± = std over seeds (min–max in brackets); fit s = training wall time per target, "
        "denoise s/img = inference time per test image."
    )


def _machine(settings: BenchSettings) -> dict[str, Any]:
    import torch

    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover - not on every OS
        load = (math.nan,) * 3
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "threads": settings.threads or torch.get_num_threads(),
        "loadavg": list(load),
        **compute_record(settings.precision),
        "line": machine_line(settings.precision, threads=settings.threads),
    }


def _check_finished(settings: BenchSettings, plan: Plan, budget: Any, out: Path) -> dict[tuple[int, str], str]:
    """Status of every cell (``missing``/``done``/``changed``); refuses changed ones (policy)."""
    status: dict[tuple[int, str], str] = {}
    changed: list[str] = []
    for i, tp in enumerate(plan.tasks):
        task = build_task(settings, tp, plan.dataset, run_root(out, tp))
        for m in plan.methods:
            if not cell_applies(tp, m):
                status[(i, m)] = "done"  # nothing to compute: the method needs sources this task lacks
                continue
            st, diff = cell_status(cell_dir(out, tp, m) / RESULT_NAME, cell_settings(settings, tp, m, budget, task))
            status[(i, m)] = st
            if st == "changed":
                changed.append(f"{tp.variant.key}/{tp.target}/seed{tp.seed}/{m} ({', '.join(diff)})")
    if changed and settings.on_change == "refuse":
        raise ConfigError(
            f"{len(changed)} finished cell(s) were computed with other settings, e.g. {changed[0]}; "
            "rerun with --recompute to redo them, or use another --out",
            out,
        )
    return status


def run_protocol(
    settings: BenchSettings,
    *,
    progress: bool = True,
    log: Log | None = None,
    method_factory: Any = None,
    dataset: Any = None,
) -> dict[str, Any]:
    """Run or continue a protocol (see the module docstring).

    Parameters
    ----------
    settings
        The run (:class:`BenchSettings`).
    progress
        Progress bars (training, denoising) on stderr.
    log
        Where one-line progress messages go (default: stderr).
    method_factory
        ``(name, budget) -> Method`` replacing :func:`~rawadapt.baselines.base.make_method` (tests).
    dataset
        An already opened dataset instead of opening ``settings.data`` (tests).

    Returns
    -------
    dict
        ``{"out", "result" (what results.json holds), "computed", "skipped", "failed", "seconds",
        "files", "report"}``.

    Raises
    ------
    ConfigError
        Bad settings, unknown protocol/method/target, or finished cells with other settings
        (``on_change="refuse"``).
    Exception
        A cell failed (without ``keep_going``; with it the failure is recorded in the cell's
        ``error.json`` and listed in the tables); finished cells are kept.
    """

    log = log or _stderr
    settings.validate()
    spec = protocol_spec(settings.protocol)
    budget = resolve_budget(settings.budget_name)
    out = Path(settings.out)
    ds = dataset if dataset is not None else open_dataset(settings.data)
    plan = build_plan(settings, spec, ds)
    for note in plan.notes:
        log(f"[bench {spec.name}] note: {note}")
    status = _check_finished(settings, plan, budget, out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / "protocol.json",
        {
            "settings": settings.to_dict(),
            "budget": budget.to_dict(),
            "targets": plan.targets,
            "methods": plan.methods,
            "target_pairs": plan.target_pairs,
        },
    )
    t0 = time.perf_counter()
    todo = sum(1 for st in status.values() if st != "done")
    log(
        f"[bench {spec.name}] {settings.data}: targets {', '.join(plan.targets)}; methods {', '.join(plan.methods)}; "
        f"seeds {', '.join(map(str, settings.seeds))}; budget {budget.name}; {plan.n_cells()} cells, "
        f"{plan.n_cells() - todo} already finished"
    )
    computed = skipped = 0
    failures: list[dict[str, Any]] = []
    k = 0
    for i, tp in enumerate(plan.tasks):
        task = build_task(settings, tp, ds, run_root(out, tp))
        for m in plan.methods:
            if status[(i, m)] == "done":
                skipped += 1
                continue
            k += 1
            label = f"{tp.variant.label}/" if tp.variant.key != "default" else ""
            log(
                f"[bench {spec.name}] cell {k}/{todo}: {label}{tp.target} seed {tp.seed}: {m} "
                f"(|T_adp| {tp.target_pairs}, {len(task.data.test)} test images)"
            )
            try:
                with precision_scope(settings.precision):  # the method's fit and its denoising
                    run_cell(
                        settings,
                        tp,
                        m,
                        budget,
                        cell_settings(settings, tp, m, budget, task),
                        out=out,
                        progress=progress,
                        method_factory=method_factory,
                    )
                computed += 1
            except Exception as exc:  # noqa: BLE001 - with keep_going any failure is recorded
                if not settings.keep_going:
                    raise
                failures.append(write_error(out, tp, m, exc))
                log(f"[bench {spec.name}] cell failed (kept going): {type(exc).__name__}: {exc}")
    result = collect_results(settings, plan, budget, out, failures=failures)
    if settings.plots:
        result["plots"] = protocol_plots(out, result)

    files = write_results(out, result)
    report = None
    if settings.report:
        report = str(write_report(out))
    return {
        "out": str(out),
        "result": result,
        "computed": computed,
        "skipped": skipped,
        "failed": len(failures),
        "seconds": time.perf_counter() - t0,
        "files": files,
        "report": report,
    }


def collect_results(
    settings: BenchSettings, plan: Plan, budget: Any, out: Path, *, failures: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """What ``results.json`` holds, aggregated from the requested cells' files on disk."""

    cells, paths = [], []
    for tp in plan.tasks:
        for m in plan.methods:
            p = cell_dir(out, tp, m) / RESULT_NAME
            c = load_result(p)
            if c is not None:
                cells.append(c)
                paths.append(p.relative_to(out).as_posix())
    variants = plan.variants
    rows, acceptance = aggregate(
        cells, protocol=plan.spec.name, variants=[v.key for v in variants], targets=plan.targets, methods=plan.methods
    )
    return {
        "schema": 1,
        "protocol": plan.spec.name,
        "title": plan.spec.title,
        "paper": plan.spec.paper,
        "settings": settings.to_dict(),
        "budget": budget.to_dict(),
        "data": settings.data,
        "space": plan.dataset.space,
        "targets": plan.targets,
        "methods": plan.methods,
        "target_pairs": plan.target_pairs,
        "variants": [{"key": v.key, "label": v.label, "value": v.value, "harmful": list(v.harmful)} for v in variants],
        "metric_note": _metric_note(plan.dataset.space),
        "rows": rows,
        "acceptance": acceptance,
        "bands": noise_bands(cells),
        "paired": paired_tests(cells),
        "cells": paths,
        "failures": failures or [],
        "notes": plan.notes,
        "plots": [],
        "machine": _machine(settings),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
