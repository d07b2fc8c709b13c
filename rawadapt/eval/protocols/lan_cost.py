"""Cost of one adaptation method, measured in THIS process (LAN's Table 2, LAN paper).

Run one measurement per process so that memory high-water marks and allocator caches of one
method never leak into another's::

    python -m rawadapt.eval.protocols.lan_cost --backbone dncnn --method lan --loss zsn2n --size 256 --iters 5

The last stdout line is one JSON object. :func:`run_cost_bench` (``rawadapt bench lan-cost``)
starts such a subprocess per (backbone, loss, method, repeat) and reports medians and the
LAN / full-fine-tuning ratios.

What is measured
----------------
* **time per iteration**: wall time between consecutive updates (forward of the self-loss,
  backward, Adam step), after ``warmup`` iterations; the median over the timed iterations.
  On CUDA the device is synchronised at each iteration boundary.
* **memory**: the EXTRA memory of adaptation over the post-load baseline (model, input and the
  adapter, including the fine-tuning adapter's weight snapshot, already allocated):

  - CUDA: ``torch.cuda.max_memory_allocated() - memory_allocated()`` at the baseline
    (peak stats reset at the baseline);
  - CPU (Linux): the process's resident-set high-water mark is reset at the baseline by
    writing ``5`` to ``/proc/self/clear_refs``, then ``VmHWM - VmRSS(baseline)``
    (``memory_measure = "rss-hwm"``); where that file cannot be written, the increase of
    ``getrusage(RUSAGE_SELF).ru_maxrss`` over its baseline value (``"ru_maxrss"``, a lower
    bound when an earlier peak exceeded the baseline).

  Memory is measured on a SEPARATE run after the timed one, so one-time costs (oneDNN
  primitives, the autograd engine, thread pools) are not counted and the timing is not
  disturbed: before its baseline, glibc is told (``mallopt``) to mmap blocks of 64 KiB and more
  and to trim its heap, so freed memory returns to the OS and the RSS follows live memory
  (``memory_measure`` says when that was not possible). RSS still includes page granularity
  and allocator overhead, so small models give noisy numbers.
* **profiler memory** (CPU): one more run under ``torch.profiler`` with
  ``profile_memory=True``; the allocations (operators' self memory) and frees (``[memory]``
  events) summed in time order give the live tensor memory at operator granularity, whose
  maximum is reported as ``profiler_peak_mb`` (tensor memory only, no allocator overhead).

The model is the backbone with random weights (cost does not depend on the weight values) or a
saved run (``--model RUN``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rawadapt.adapt.api import make_adapter
from rawadapt.errors import ConfigError, RawAdaptError
from rawadapt.eval.protocols.lan import MODEL_KWARGS
from rawadapt.eval.tables import markdown_table
from rawadapt.models.checkpoint import load_model
from rawadapt.models.registry import build_model
from rawadapt.models.zoo import is_zoo_ref, resolve_zoo
from rawadapt.utils.atomic import write_json, write_text
from rawadapt.utils.compute import machine_line
from rawadapt.utils.log import logger

COST_METHODS = ("lan", "full")


# --------------------------------------------------------------------------------------------
# Memory probes
# --------------------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _malloc_returns_memory() -> bool:
    """glibc only: mmap blocks >= 64 KiB (returned to the OS on free) and trim the heap now, so
    the RSS follows the live memory of what runs next. False where that is not possible."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
        ok = libc.mallopt(m_mmap_threshold, 65536) == 1 and libc.mallopt(m_trim_threshold, 65536) == 1
        libc.malloc_trim(0)
        return bool(ok)
    except (OSError, AttributeError):
        return False


def _maxrss_kb() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r // 1024) if sys.platform == "darwin" else int(r)  # bytes on macOS, KiB on Linux


def _profiler_peak(adapter: Any, y: Any, seed: int) -> float:
    """Peak live tensor memory (MB) of one more adaptation run, from torch's profiler.

    Allocations are attributed to operators (their self memory) and frees to ``[memory]``
    events; summing both in start-time order gives the live-memory timeline at operator
    granularity, whose maximum is the peak (CPU allocator only, no allocator caching).
    """
    import torch

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        adapter.adapt(y, seed=seed)
    cur = peak = 0
    for e in sorted(prof.events(), key=lambda e: e.time_range.start):
        cur += e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage
        peak = max(peak, cur)
    return peak / 2**20


# --------------------------------------------------------------------------------------------
# One measurement (in this process)
# --------------------------------------------------------------------------------------------


def measure(
    *,
    backbone: str,
    method: str,
    loss: str,
    size: int = 256,
    iters: int = 5,
    warmup: int = 2,
    quick: bool = False,
    model_path: str | None = None,
    channels: int = 3,
    device: str = "cpu",
    threads: int | None = None,
    seed: int = 0,
    profile_memory: bool = True,
    tune_malloc: bool = True,
) -> dict[str, Any]:
    """Time and memory of ``iters`` adaptation iterations of one method (see module docstring).

    ``tune_malloc=False`` leaves glibc's allocator settings alone (for in-process use: the
    setting would outlive the measurement).
    """
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    if model_path:
        model, _ = load_model(model_path, device=device)
        channels = model.in_channels
    else:
        model = (
            build_model(
                {"arch": backbone, "in_channels": channels, **MODEL_KWARGS[backbone]["quick" if quick else "full"]}
            )
            .to(device)
            .eval()
        )
    gen = torch.Generator().manual_seed(seed)
    y = torch.rand(channels, size, size, generator=gen).to(device)
    adapter = make_adapter(model, method, loss=loss, iters=iters, track_ssim=False)
    cuda = torch.device(device).type == "cuda"
    if warmup > 0:  # one-time costs (oneDNN primitives, autograd engine, thread pools) first
        adapter.iters = warmup  # type: ignore[attr-defined]
        adapter.adapt(y, seed=seed)
        adapter.iters = iters  # type: ignore[attr-defined]

    # 1) time, with the process's normal allocator settings
    stamps: list[float] = []

    def tick(step: int, value: float) -> None:
        if cuda:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    t_start = time.perf_counter()
    adapter.adapt(y, seed=seed, callback=tick)
    times = [b - a for a, b in zip([t_start] + stamps[:-1], stamps)]

    # 2) memory: a separate run from a clean baseline
    import gc

    gc.collect()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        measure_name = "cuda"
    else:
        tuned = _malloc_returns_memory() if tune_malloc else False
        base_rss = _status_kb("VmRSS")
        if base_rss is not None and _reset_hwm():
            measure_name = "rss-hwm" if tuned else "rss-hwm (allocator cache not released)"
            base = base_rss * 1024
        else:
            measure_name = "ru_maxrss"
            base = _maxrss_kb() * 1024
    adapter.adapt(y, seed=seed)
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    elif measure_name.startswith("rss-hwm"):
        peak = (_status_kb("VmHWM") or 0) * 1024
    else:
        peak = _maxrss_kb() * 1024

    # 3) torch's profiler view of the live tensor memory (CPU)
    prof_peak = _profiler_peak(adapter, y, seed) if profile_memory and not cuda else None
    return {
        "backbone": backbone if not model_path or is_zoo_ref(model_path) else getattr(model, "arch", backbone),
        "method": method,
        "loss": loss,
        "size": size,
        "channels": channels,
        "iters": iters,
        "warmup": warmup,
        "quick": quick,
        "model": model_path,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "time_per_iter_s": statistics.median(times) if times else float("nan"),
        "times_s": times,
        "memory_measure": measure_name,
        "baseline_mb": base / 2**20,
        "peak_mb": peak / 2**20,
        "memory_mb": max(peak - base, 0) / 2**20,
        "profiler_peak_mb": prof_peak,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------------------------
# The benchmark: one subprocess per measurement
# --------------------------------------------------------------------------------------------


def _run_one(args: list[str], timeout: float) -> dict[str, Any]:

    cmd = [sys.executable, "-m", "rawadapt.eval.protocols.lan_cost", *args]
    env = dict(os.environ)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise RawAdaptError(f"cost measurement timed out after {timeout:.0f} s: {' '.join(args)}") from None
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RawAdaptError(f"cost measurement failed ({' '.join(args)}): {tail}")
    return json.loads(lines[-1])


def run_cost_bench(
    out: str | Path,
    *,
    backbones: Sequence[str] = ("dncnn", "restormer"),
    losses: Sequence[str] = ("zsn2n", "nbr2nbr"),
    size: int = 256,
    iters: int = 5,
    warmup: int = 2,
    repeats: int = 3,
    quick: bool = False,
    device: str = "cpu",
    threads: int | None = None,
    timeout: float = 900.0,
    progress: bool = True,
    recompute: bool = False,
) -> dict[str, Any]:
    """Measure LAN vs full fine-tuning, each in its own process; write ``results.csv/md/json``.

    Repeats are interleaved (all combinations once, then again) so slow drifts of a shared
    machine hit every method alike. Reported: medians over repeats and the LAN / full ratios.

    Resumable like the other protocols: every measurement process's JSON is kept in
    ``DIR/cells/<backbone>-<loss>-<method>-r<repeat>.json`` together with the exact arguments it
    ran with; a re-run reuses the measurements whose arguments match (``recompute=True``
    measures everything again) and only runs the missing ones.
    """

    bad = [b for b in backbones if b not in MODEL_KWARGS and not is_zoo_ref(b)]
    if bad:
        raise ConfigError(f"unknown backbone(s) {bad}; choose from {', '.join(MODEL_KWARGS)} or zoo:NAME")
    for b in filter(is_zoo_ref, backbones):
        resolve_zoo(b)  # unknown name or a damaged model: fail before any measurement
    if repeats < 1 or iters < 1 or size < 8:
        raise ConfigError("repeats and iters must be >= 1 and size >= 8")
    outdir = Path(out)
    cells = outdir / "cells"
    runs: list[dict[str, Any]] = []
    computed = reused = 0
    combos = [(b, lo, m) for b in backbones for lo in losses for m in COST_METHODS]
    for r in range(repeats):
        for b, lo, m in combos:
            args = [
                "--backbone",
                b,
                "--method",
                m,
                "--loss",
                lo,
                "--size",
                str(size),
                "--iters",
                str(iters),
                "--warmup",
                str(warmup),
                "--device",
                device,
                "--seed",
                str(r),
            ]
            if quick:
                args.append("--quick")
            if is_zoo_ref(b):  # a shipped model with its trained weights
                args += ["--model", b]
            if threads:
                args += ["--threads", str(threads)]
            cell = cells / f"{b.replace(':', '-')}-{lo}-{m}-r{r}.json"
            cached = None
            if not recompute and cell.is_file():
                try:
                    cached = json.loads(cell.read_text())
                except ValueError:
                    cached = None
                if cached is not None and cached.get("args") != args:
                    cached = None
            if cached is not None:
                res = cached["result"]
                reused += 1
            else:
                if progress:
                    logger.info(f"[lan-cost] repeat {r + 1}/{repeats}: {b} {lo} {m}")
                res = _run_one(args, timeout)
                res["repeat"] = r
                write_json(cell, {"args": args, "result": res})
                computed += 1
            runs.append(res)
    rows = []
    for b in backbones:
        for lo in losses:
            med: dict[str, dict[str, float]] = {}
            for m in COST_METHODS:
                sel = [x for x in runs if (x["backbone"], x["loss"], x["method"]) == (b, lo, m)]
                times = [x["time_per_iter_s"] for x in sel]
                prof = [x["profiler_peak_mb"] for x in sel if x.get("profiler_peak_mb") is not None]
                med[m] = {
                    "time": statistics.median(times),
                    "time_spread": max(times) - min(times),
                    "memory": statistics.median(x["memory_mb"] for x in sel),
                    "profiler": statistics.median(prof) if prof else float("nan"),
                }
            rows.append(
                {
                    "backbone": b,
                    "loss": lo,
                    "size": size,
                    "lan_time_s": med["lan"]["time"],
                    "full_time_s": med["full"]["time"],
                    "time_ratio": med["lan"]["time"] / med["full"]["time"] if med["full"]["time"] else float("nan"),
                    "lan_memory_mb": med["lan"]["memory"],
                    "full_memory_mb": med["full"]["memory"],
                    "memory_ratio": med["lan"]["memory"] / med["full"]["memory"]
                    if med["full"]["memory"]
                    else float("nan"),
                    "lan_profiler_mb": med["lan"]["profiler"],
                    "full_profiler_mb": med["full"]["profiler"],
                    "profiler_ratio": (
                        med["lan"]["profiler"] / med["full"]["profiler"] if med["full"]["profiler"] else float("nan")
                    ),
                    "lan_time_spread_s": med["lan"]["time_spread"],
                    "full_time_spread_s": med["full"]["time_spread"],
                    "repeats": repeats,
                }
            )
    measure_name = runs[0]["memory_measure"] if runs else "-"
    settings = {
        "backbones": list(backbones),
        "losses": list(losses),
        "size": size,
        "iters": iters,
        "warmup": warmup,
        "repeats": repeats,
        "quick": quick,
        "device": device,
        "threads": threads,
        "memory_measure": measure_name,
    }
    _write_cost(outdir, rows, runs, settings)
    return {
        "out": str(outdir),
        "rows": rows,
        "settings": settings,
        "computed": computed,
        "reused": reused,
        "files": [str(outdir / n) for n in RESULT_FILES],
    }


RESULT_FILES = ("results.csv", "results.md", "results.json")


COST_COLUMNS = (
    "backbone",
    "loss",
    "size",
    "lan_time_s",
    "full_time_s",
    "time_ratio",
    "lan_memory_mb",
    "full_memory_mb",
    "memory_ratio",
    "lan_profiler_mb",
    "full_profiler_mb",
    "profiler_ratio",
    "lan_time_spread_s",
    "full_time_spread_s",
    "repeats",
)


def _write_cost(out: Path, rows: list[dict[str, Any]], runs: list[dict[str, Any]], settings: dict[str, Any]) -> None:
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COST_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in COST_COLUMNS})
    write_text(out / "results.csv", buf.getvalue())
    md = [
        "# LAN vs full fine-tuning: cost per adaptation iteration (LAN paper Table 2)",
        "",
        f"Image {settings['size']}x{settings['size']}, {settings['iters']} timed iterations after "
        f"{settings['warmup']} warm-up, median of {settings['repeats']} processes per cell, device "
        f"{settings['device']}, threads {settings['threads'] or 'default'}, "
        f"{'quick (tiny) networks' if settings['quick'] else 'default networks'}. Memory = extra memory of "
        f"adaptation over the post-load baseline ({settings['memory_measure']}).",
        "",
        f"Machine: {machine_line(threads=settings['threads'])}.",
        "",
        "Paper (Restormer / Uformer, GPU): LAN / full-trainable time 74-93 %, memory 74-93 %.",
        "",
        "Profiler = peak live tensor memory from torch's profiler (CPU only; see rawadapt.eval.protocols.lan_cost).",
        "",
    ]

    def pct(v: float) -> str:
        return f"{100 * v:.1f} %" if v == v else "-"

    header = ["backbone", "loss", "LAN s/iter", "full s/iter", "time LAN/full", "LAN MB", "full MB"]
    header += ["memory LAN/full", "profiler LAN MB", "profiler full MB", "profiler LAN/full"]
    md += markdown_table(
        header,
        [
            [
                r["backbone"],
                r["loss"],
                f"{r['lan_time_s']:.4f}",
                f"{r['full_time_s']:.4f}",
                pct(r["time_ratio"]),
                f"{r['lan_memory_mb']:.1f}",
                f"{r['full_memory_mb']:.1f}",
                pct(r["memory_ratio"]),
                f"{r['lan_profiler_mb']:.1f}",
                f"{r['full_profiler_mb']:.1f}",
                pct(r["profiler_ratio"]),
            ]
            for r in rows
        ],
    )
    write_text(out / "results.md", "\n".join(md) + "\n")
    write_json(out / "results.json", {"protocol": "lan-cost", "settings": settings, "rows": rows, "runs": runs})


# --------------------------------------------------------------------------------------------
# Entry point of the per-measurement process
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m rawadapt.eval.protocols.lan_cost",
        description="One LAN / fine-tuning cost measurement (prints one JSON line).",
    )
    p.add_argument("--backbone", default="dncnn")
    p.add_argument("--method", default="lan", choices=["lan", "full", "first-layer", "last-layer", "meta"])
    p.add_argument("--loss", default="zsn2n", choices=["zsn2n", "nbr2nbr"])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--channels", type=int, default=3, choices=[3, 4])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--model", default=None, help="a saved run instead of random weights")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    res = measure(
        backbone=a.backbone,
        method=a.method,
        loss=a.loss,
        size=a.size,
        iters=a.iters,
        warmup=a.warmup,
        quick=a.quick,
        model_path=a.model,
        channels=a.channels,
        device=a.device,
        threads=a.threads,
        seed=a.seed,
    )
    sys.stdout.write(json.dumps(res) + "\n")


if __name__ == "__main__":  # pragma: no cover
    main()
