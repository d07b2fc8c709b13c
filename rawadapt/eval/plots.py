"""Benchmark plots (matplotlib Agg, PNG, written atomically), all drawn from the result files.

* ``target_size.png`` — PSNR vs |T_adp| per method (ADL paper Figure 3), error bars = std over
  seeds, noisy input dashed.
* ``psnr_gain_<variant>.png`` — PSNR gain over the noisy input per target and method.
* ``acceptance_<method>.png`` — ADL: acceptance rate per source domain, one bar per target (and
  variant: the harmful protocol shows the harmful domains' rates next to the real ones).
* ``adl_threshold_<method>.png`` — ADL: the acceptance threshold (mean of the queue of best
  validation PSNRs) over the adaptive iterations, one line per target: how the validation PSNR
  rose while source batches were accepted (reuses
  :func:`rawadapt.eval.protocols.lan_figures.plot_iteration_curves`).
* ``noise_hist_<target>.png`` — distribution of the target's noise (noisy - clean) and of each
  method's residual (denoised - clean) on the stored crops.
* ``errormaps_<target>.png`` — first stored crop: noisy / methods / clean and error maps on a
  shared scale (:mod:`rawadapt.eval.errormaps`).

Per-run valuation plots (per-domain contribution heat map, cumulative acceptance) are made by
the ADL runs themselves (:func:`rawadapt.train.valuation.plot_valuation`) in their run folders;
:func:`ensure_valuation_plots` redraws them where missing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rawadapt.utils.atomic import atomic_path
from rawadapt.utils.log import logger

PLOTS_DIR = "plots"


def _warn(msg: str) -> None:
    logger.warning(msg)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path, dpi: int = 110) -> Path:
    plt = _plt()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def main_variant(result: dict[str, Any]) -> str:
    """The variant whose images and per-target plots are shown: the only one, ``base``, or the
    largest target size."""
    vs = result["variants"]
    if result["protocol"] == "target-size" and vs:
        return max(vs, key=lambda v: v["value"] or 0)["key"]
    keys = [v["key"] for v in vs]
    return "base" if "base" in keys else (keys[0] if keys else "default")


def _rows(result: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["variant"], r["target"], r["method"]): r for r in result["rows"]}


def plot_target_size(result: dict[str, Any], path: Path) -> Path | None:
    """PSNR (average over targets) vs |T_adp| per method, std over seeds as error bars."""
    vs = [v for v in result["variants"] if v.get("value") is not None]
    if not vs:
        return None
    plt = _plt()
    idx = _rows(result)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for m in result["methods"]:
        pts = [(v["value"], idx[(v["key"], "average", m)]) for v in vs if (v["key"], "average", m) in idx]
        pts = [(x, r) for x, r in pts if r.get("psnr") is not None]
        if not pts:
            continue
        x = [p[0] for p in pts]
        y = [p[1]["psnr"] for p in pts]
        err = [p[1]["psnr_std"] or 0.0 for p in pts]
        style = {"linestyle": "--", "color": "gray"} if m == "noisy" else {"marker": "o"}
        ax.errorbar(x, y, yerr=err, capsize=3, label=m, **style)
    ax.set_xscale("log")
    ax.set_xticks([v["value"] for v in vs], [str(int(v["value"])) for v in vs])
    ax.set_xlabel("|T_adp| (target pairs)")
    ax.set_ylabel("PSNR (dB), average over targets")
    ax.set_title("PSNR vs target-set size (ADL paper Fig. 3)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_psnr_gain(result: dict[str, Any], variant: str, path: Path) -> Path | None:
    """Grouped bars: PSNR gain over the noisy input, per target, one bar per method."""
    idx = _rows(result)
    methods = [m for m in result["methods"] if m != "noisy"]
    targets = [t for t in result["targets"] if any((variant, t, m) in idx for m in methods)]
    if not targets or not methods:
        return None
    plt = _plt()
    cols = targets + ["average"]
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(cols) * max(1, len(methods)) * 0.35 + 3), 4.0))
    for j, m in enumerate(methods):
        vals, errs = [], []
        for t in cols:
            r = idx.get((variant, t, m))
            vals.append(r["psnr_gain"] if r and r.get("psnr_gain") is not None else np.nan)
            errs.append(r["psnr_std"] or 0.0 if r else 0.0)
        ax.bar(np.arange(len(cols)) + (j - (len(methods) - 1) / 2) * width, vals, width, yerr=errs, capsize=2, label=m)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("PSNR gain over noisy (dB)")
    ax.set_title("Denoising gain per target sensor", fontsize=10)
    ax.legend(fontsize=7, ncol=min(4, len(methods)))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_acceptance_bars(result: dict[str, Any], method: str, path: Path, *, max_series: int = 12) -> Path | None:
    """Per source domain, the acceptance rate of ``method``'s candidate steps, one bar per target
    (x variant when there are several)."""
    acc = [a for a in result.get("acceptance", []) if a["method"] == method][:max_series]
    if not acc:
        return None
    labels = {v["key"]: v["label"] for v in result["variants"]}
    multi = len({a["variant"] for a in acc}) > 1
    domains = sorted({d for a in acc for d in a["domains"]})
    plt = _plt()
    width = 0.8 / len(acc)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(domains) * max(1.0, len(acc) * 0.5) + 2), 4.0))
    for j, a in enumerate(acc):
        vals = [a["domains"].get(d) if a["domains"].get(d) is not None else np.nan for d in domains]
        name = f"{labels.get(a['variant'], a['variant'])} {a['target']}" if multi else a["target"]
        ax.bar(np.arange(len(domains)) + (j - (len(acc) - 1) / 2) * width, vals, width, label=name)
    ax.set_xticks(range(len(domains)), domains, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accepted / tried")
    ax.set_title(f"{method}: acceptance of source batches per domain", fontsize=10)
    ax.legend(fontsize=7, ncol=2, title="target")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def load_cells(out: Path, result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(relative path, record)`` of every readable cell listed in ``result["cells"]``."""
    cells = []
    for rel in result.get("cells", []):
        try:
            cells.append((rel, json.loads((Path(out) / rel).read_text())))
        except (OSError, ValueError):
            continue
    return cells


def _cell_of(
    cells: Sequence[tuple[str, dict[str, Any]]], variant: str, target: str, method: str, seed: int | None = None
) -> dict[str, Any] | None:
    """The cell of (variant, target, method) at ``seed`` (default: the first one listed)."""
    for _, c in cells:
        k = c.get("key", {})
        if (k.get("variant"), k.get("target"), k.get("method")) == (variant, target, method) and (
            seed is None or k.get("seed") == seed
        ):
            return c
    return None


def _adl_methods(result: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(a["method"] for a in result.get("acceptance", [])))


def plot_adl_thresholds(
    out: Path, result: dict[str, Any], cells: Sequence[tuple[str, dict[str, Any]]], method: str, path: Path
) -> Path | None:
    """The acceptance threshold over the adaptive iterations of ``method``, one line per target
    (main variant, first seed)."""
    from rawadapt.eval.protocols.lan_figures import plot_iteration_curves
    from rawadapt.train.valuation import read_adl_log

    v = main_variant(result)
    curves: dict[str, list[float]] = {}
    for t in result["targets"]:
        c = _cell_of(cells, v, t, method)
        if not c or not c.get("run_dir"):
            continue
        log = (out / c["run_dir"]) / "adl_log.csv"
        if not log.is_file():
            continue
        rows = read_adl_log(log)
        th = [r["threshold"] for r in rows if math.isfinite(r["threshold"])]
        if th:
            curves[t] = th
    if not curves:
        return None
    return plot_iteration_curves(
        path,
        curves,
        ylabel="acceptance threshold: queue mean PSNR on V' (dB)",
        title=f"{method}: validation PSNR threshold over ADL iterations",
    )


def plot_noise_histograms(crops: Sequence[Any], path: Path, *, bins: int = 81) -> Path | None:
    """Histogram of the noise (noisy - clean) and of every method's residual (denoised - clean)
    over the stored crops of one target."""
    if not crops:
        return None
    plt = _plt()
    noise = np.concatenate([(c.noisy - c.clean).ravel() for c in crops])
    lim = max(float(np.percentile(np.abs(noise), 99.5)), 1e-4)
    edges = np.linspace(-lim, lim, bins + 1)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.hist(
        np.clip(noise, -lim, lim),
        bins=edges,
        density=True,
        histtype="step",
        linewidth=2.0,
        color="black",
        label=f"noise (noisy - clean), std {noise.std():.4f}",
    )
    methods = [m for m in crops[0].outputs if m != "noisy"]
    for m in methods:
        res = np.concatenate([(c.outputs[m] - c.clean).ravel() for c in crops if m in c.outputs])
        ax.hist(
            np.clip(res, -lim, lim),
            bins=edges,
            density=True,
            histtype="step",
            linewidth=1.3,
            label=f"{m} residual, std {res.std():.4f}",
        )
    ax.set_xlabel("value (data range 1)")
    ax.set_ylabel("density")
    ax.set_yscale("log")
    ax.set_title(f"{crops[0].target}: noise and residuals on the report crops", fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_error_maps(crop: Any, path: Path) -> Path | None:
    """Noisy / methods / clean (camera-pipeline rendering for RAW) over their error maps."""
    from rawadapt.eval.errormaps import display_for, error_map, render, shared_vmax

    panels = [("noisy", crop.noisy)] + [(m, o) for m, o in crop.outputs.items() if m != "noisy"]
    disp = display_for(crop.clean, crop.space, cfa=crop.cfa, sensor=crop.sensor)
    maps = [error_map(img, crop.clean, crop.space) for _, img in panels]
    vmax = shared_vmax(maps, reference=maps[0])
    plt = _plt()
    n = len(panels) + 1
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.8), squeeze=False)
    for j, (name, img) in enumerate(panels + [("clean", crop.clean)]):
        axes[0, j].imshow(render(img, disp), interpolation="nearest")
        p = crop.psnr.get(name)
        axes[0, j].set_title(name + (f"\n{p:.2f} dB" if p is not None and math.isfinite(p) else ""), fontsize=8)
    im = None
    for j, m in enumerate(maps):
        im = axes[1, j].imshow(m, cmap="inferno", vmin=0, vmax=vmax, interpolation="nearest")
    for ax in axes.ravel():
        ax.axis("off")
    if im is not None:
        fig.colorbar(im, ax=axes[1, n - 1], fraction=0.9, label="|denoised - clean|")
    fig.suptitle(f"{crop.target} {crop.sample_id}: crops and error maps (shared scale)", fontsize=9)
    return _save(fig, path)


def ensure_valuation_plots(out: Path, cells: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """Every ADL cell's run folder holds ``adl_contribution.png`` / ``adl_acceptance.png``
    (redrawn with :func:`rawadapt.train.valuation.plot_valuation` where missing); returns their
    paths relative to ``out``."""
    from rawadapt.train.valuation import compute_valuation, plot_valuation, read_adl_log

    found: list[str] = []
    for _, c in cells:
        if not c.get("acceptance") or not c.get("run_dir"):
            continue
        run = out / c["run_dir"]
        pngs = [run / "adl_contribution.png", run / "adl_acceptance.png"]
        log = run / "adl_log.csv"
        if not all(p.is_file() for p in pngs) and log.is_file():
            rows = read_adl_log(log)
            plot_valuation(compute_valuation(rows), rows, run)
        found += [p.relative_to(out).as_posix() for p in pngs if p.is_file()]
    return found


def protocol_plots(out: Any, result: dict[str, Any]) -> list[str]:
    """Draw every plot that applies to ``result``; return their paths relative to ``out``.

    A plot that fails is skipped with a warning on stderr: plots never lose a finished
    benchmark.
    """
    from rawadapt.eval.errormaps import load_crop_sets

    out = Path(out)
    pdir = out / PLOTS_DIR
    made: list[Path | None] = []

    def attempt(fn: Any, *args: Any) -> None:
        try:
            made.append(fn(*args))
        except Exception as exc:  # noqa: BLE001 - see the docstring
            _warn(f"warning: plot {getattr(fn, '__name__', fn)} failed: {type(exc).__name__}: {exc}")

    v = main_variant(result)
    cells_all = load_cells(out, result)
    if result["protocol"] == "target-size":
        attempt(plot_target_size, result, pdir / "target_size.png")
    for var in result["variants"]:
        if result["protocol"] != "target-size" or var["key"] == v:
            attempt(plot_psnr_gain, result, var["key"], pdir / f"psnr_gain_{var['key']}.png")
    for m in _adl_methods(result):
        attempt(plot_acceptance_bars, result, m, pdir / f"acceptance_{m}.png")
        attempt(plot_adl_thresholds, out, result, cells_all, m, pdir / f"adl_threshold_{m}.png")
    for t in result["targets"]:
        cells, rels = [], []
        for rel, c in cells_all:
            k = c["key"]
            if k["variant"] == v and k["target"] == t and k["seed"] == result["settings"]["seeds"][0]:
                cells.append(c)
                rels.append(rel)
        crops = load_crop_sets(out, cells, rels)
        if crops:
            from rawadapt.eval.protocols.cells import safe_name

            attempt(plot_noise_histograms, crops, pdir / f"noise_hist_{safe_name(t)}.png")
            attempt(plot_error_maps, crops[0], pdir / f"errormaps_{safe_name(t)}.png")
    try:
        ensure_valuation_plots(out, cells_all)
    except Exception as exc:  # noqa: BLE001
        _warn(f"warning: valuation plots failed: {type(exc).__name__}: {exc}")
    return [p.relative_to(out).as_posix() for p in made if p is not None]
