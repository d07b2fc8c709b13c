"""Data valuation from ADL's per-iteration log: which source data helped or hurt the target.

``adl_log.csv`` (one row per ADL iteration) → ``valuation.json``:

* ``domains``: per source domain ``acceptance_rate``, ``tried``, ``accepted``, ``mean_delta``
  (mean PSNR margin of its candidates over the acceptance threshold, dB), and the acceptance
  rate in the first and second half of the stage;
* ``samples``: per source sample id, how many accepted/tried batches it was part of;
* ``timeline``: per domain, acceptance counts and rates in equal bins of iterations (the
  paper's per-domain contribution heat map).

:func:`plot_valuation` draws the heat map and the cumulative acceptance curves (PNG).
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from rawadapt.utils.atomic import atomic_path, write_json


def read_adl_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of ``adl_log.csv`` with numeric fields parsed."""
    rows = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            rows.append(
                {
                    "step": int(r["step"]),
                    "domain": r["domain"],
                    "k": int(r["k"]),
                    "psnr": _f(r["psnr"]),
                    "threshold": _f(r["threshold"]),
                    "delta": _f(r["delta"]),
                    "accepted": bool(int(r["accepted"])),
                    "source_ids": [s for s in r["source_ids"].split(";") if s],
                }
            )
    return rows


def _f(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def compute_valuation(rows: list[dict[str, Any]], *, bins: int = 10, criterion: str | None = None) -> dict[str, Any]:
    """Aggregate ADL log rows into the valuation report (see module docstring)."""
    domains = sorted({r["domain"] for r in rows})
    n = len(rows)
    out: dict[str, Any] = {
        "criterion": criterion,
        "iterations": n,
        "accepted": int(sum(r["accepted"] for r in rows)),
        "acceptance_rate": float(np.mean([r["accepted"] for r in rows])) if rows else math.nan,
        "domains": {},
        "samples": {},
        "timeline": {},
    }
    half = n // 2
    for d in domains:
        dr = [r for r in rows if r["domain"] == d]
        acc = [r["accepted"] for r in dr]
        deltas = [r["delta"] for r in dr if math.isfinite(r["delta"])]
        first = [r["accepted"] for r in dr if r["step"] < rows[half]["step"]] if n > 1 else acc
        second = [r["accepted"] for r in dr if r["step"] >= rows[half]["step"]] if n > 1 else acc
        out["domains"][d] = {
            "acceptance_rate": float(np.mean(acc)),
            "tried": len(acc),
            "accepted": int(sum(acc)),
            "mean_delta": float(np.mean(deltas)) if deltas else math.nan,
            "first_half_rate": float(np.mean(first)) if first else math.nan,
            "second_half_rate": float(np.mean(second)) if second else math.nan,
        }
    samples: dict[str, dict[str, Any]] = {}
    for r in rows:
        for sid in set(r["source_ids"]):
            s = samples.setdefault(sid, {"domain": r["domain"], "tried": 0, "accepted": 0})
            s["tried"] += 1
            s["accepted"] += int(r["accepted"])
    for s in samples.values():
        s["acceptance_rate"] = s["accepted"] / s["tried"]
    out["samples"] = dict(sorted(samples.items()))
    if rows:
        steps = np.array([r["step"] for r in rows])
        edges = np.linspace(steps.min(), steps.max() + 1, min(bins, n) + 1)
        timeline: dict[str, Any] = {"bin_edges": edges.tolist(), "domains": {}}
        for d in domains:
            tried, accepted = [], []
            for lo, hi in zip(edges[:-1], edges[1:]):
                sel = [r["accepted"] for r in rows if r["domain"] == d and lo <= r["step"] < hi]
                tried.append(len(sel))
                accepted.append(int(sum(sel)))
            timeline["domains"][d] = {
                "tried": tried,
                "accepted": accepted,
                "rate": [a / t if t else None for a, t in zip(accepted, tried)],
            }
        out["timeline"] = timeline
    return out


def write_valuation(
    log_path: str | os.PathLike[str], out_path: str | os.PathLike[str], *, criterion: str | None = None, bins: int = 10
) -> dict[str, Any]:
    """Read ``adl_log.csv``, write ``valuation.json`` atomically, return it."""
    val = compute_valuation(read_adl_log(log_path), bins=bins, criterion=criterion)
    write_json(out_path, val)
    return val


def plot_valuation(
    valuation: dict[str, Any], rows: list[dict[str, Any]], out_dir: str | os.PathLike[str]
) -> list[Path]:
    """Heat map of per-domain acceptance over training and cumulative acceptance curves.

    Returns the written PNG paths (``adl_contribution.png``, ``adl_acceptance.png``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    written: list[Path] = []
    domains = list(valuation["domains"])
    if not domains:
        return written
    tl = valuation["timeline"]
    rates = np.array([[np.nan if v is None else v for v in tl["domains"][d]["rate"]] for d in domains], dtype=float)
    edges = tl["bin_edges"]
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * rates.shape[1] + 2), 0.45 * len(domains) + 1.6))
    im = ax.imshow(rates, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(domains)), domains)
    ax.set_xticks(range(rates.shape[1]), [f"{int(lo)}" for lo in edges[:-1]], rotation=45, fontsize=7)
    ax.set_xlabel("ADL iteration (bin start)")
    ax.set_title("Per-domain acceptance rate over training")
    fig.colorbar(im, ax=ax, label="accepted / tried")
    fig.tight_layout()
    p = out_dir / "adl_contribution.png"
    with atomic_path(p) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    written.append(p)

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for d in domains:
        acc = np.array([r["accepted"] for r in rows if r["domain"] == d], dtype=float)
        steps = [r["step"] for r in rows if r["domain"] == d]
        if len(acc):
            ax.plot(steps, np.cumsum(acc) / np.arange(1, len(acc) + 1), label=d)
    ax.set_xlabel("ADL iteration")
    ax.set_ylabel("cumulative acceptance rate")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Acceptance of source batches")
    fig.tight_layout()
    p = out_dir / "adl_acceptance.png"
    with atomic_path(p) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    written.append(p)
    return written
