"""Speed benchmark of the denoisers on this machine's CPU.

For each model (U-Net width 16 = CPU default, U-Net width 32 = the field's width, DnCNN,
compact Restormer), all on packed RAW (4 planes):

* training throughput: MPix/s of packed pixels through forward + backward + AdamW step
  (batch 8 of 64x64);
* inference throughput (MPix/s) and peak RSS: whole image 512x512, and tiled 1024x1024
  (tile 256, overlap 32, the overlap recomputation included), as ``denoise_image`` runs it
  (``inference_mode``, channels-last input);
* forward FLOPs per packed pixel (``torch.utils.flop_counter.FlopCounterMode``: convolutions,
  matmuls) against the measured dense fp32 matmul rate (``torch.mm``) -> % of that limit;
* CPU variants: thread count, ``channels_last``, ``inference_mode`` vs ``no_grad``, bf16
  autocast (accuracy against fp32: max abs diff and PSNR of the outputs), optional
  ``torch.compile``.

Every inference measurement runs in a fresh subprocess so that its peak RSS (``VmHWM`` in
/proc/self/status) belongs to that measurement alone. Timings are
the BEST of several repeats (other processes on a shared CPU only ever slow a run down), with
the median in the JSON; the load average before and after is printed.

Usage::

    .venv/bin/python bench/bench_speed.py --quick --out bench_speed.json
    .venv/bin/python bench/bench_speed.py            # more repeats, 2048-sized matmul

Writes a Markdown report to stdout (progress to stderr).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MODELS: dict[str, dict[str, Any]] = {
    "unet-16": {"arch": "unet", "in_channels": 4, "width": 16, "depth": 4, "sensors": ["A", "B", "C"]},
    "unet-32 (paper width)": {"arch": "unet", "in_channels": 4, "width": 32, "depth": 4, "sensors": ["A", "B", "C"]},
    "dncnn": {"arch": "dncnn", "in_channels": 4, "depth": 10, "width": 32},
    "restormer": {"arch": "restormer", "in_channels": 4},
    "pmrid (compact)": {"arch": "pmrid", "in_channels": 4, "sensors": ["A", "B", "C"]},
}


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def cpu_name() -> str:
    from rawadapt.utils.compute import cpu_info

    return cpu_info().model


def timed(fn: Any, repeats: int, warmup: int = 1) -> tuple[float, float]:
    """``(best, median)`` wall time of ``fn()`` in seconds over ``repeats`` runs.

    The best (minimum) time is the headline number, as ``timeit`` recommends: other processes on
    a shared machine can only make a run slower, never faster. The median shows the spread.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB.

    ``VmHWM`` of /proc/self/status belongs to the current address space (fresh after exec);
    ``ru_maxrss`` would carry the PARENT's peak into a spawned worker (Linux keeps it across
    execve), so it is only the fallback.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# --------------------------------------------------------------------------------------------
# measurements (each function runs inside the current process)
# --------------------------------------------------------------------------------------------


def matmul_gflops(n: int, repeats: int) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    best, _ = timed(lambda: torch.mm(a, b), repeats)
    return 2 * n**3 / best / 1e9


def build(name: str) -> Any:
    import torch

    from rawadapt.models import build_model

    torch.manual_seed(0)
    return build_model(MODELS[name])


def forward_flops_per_pixel(name: str, size: int = 128) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    m = build(name).eval()
    x = torch.rand(1, 4, size, size)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m(x, torch.tensor([0]), torch.tensor([800.0]))
    return fc.get_total_flops() / (size * size)


def train_throughput(name: str, repeats: int, batch: int = 8, size: int = 64, channels_last: bool = False) -> float:
    import torch

    m = build(name).train()
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    x = torch.rand(batch, 4, size, size)
    y = torch.rand(batch, 4, size, size)
    if channels_last:
        x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
    s = torch.zeros(batch, dtype=torch.long)
    iso = torch.full((batch,), 800.0)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        (m(x, s, iso) - y).abs().mean().backward()
        opt.step()

    best, _ = timed(step, repeats, warmup=2)
    return batch * size * size / best / 1e6


def infer_worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """One inference configuration (run in a subprocess): throughput, peak RSS, accuracy."""
    import numpy as np
    import torch

    torch.set_num_threads(int(cfg["threads"]))
    from rawadapt.models.tiling import tiled_forward

    m = build(cfg["model"]).eval()
    size, tile = int(cfg["size"]), cfg.get("tile")
    x = torch.rand(1, 4, size, size, generator=torch.Generator().manual_seed(1))
    s, iso = torch.tensor([0]), torch.tensor([800.0])
    if cfg.get("channels_last", True):  # what denoise_image does: convert the input only
        x = x.contiguous(memory_format=torch.channels_last)
    fwd: Any = m
    if cfg.get("compile"):
        fwd = torch.compile(m)
    ctx = torch.inference_mode if cfg.get("grad_mode", "inference_mode") == "inference_mode" else torch.no_grad
    bf16 = cfg.get("precision") == "bf16"
    base_rss = peak_rss_mib()

    def net(t: torch.Tensor) -> torch.Tensor:
        if bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return fwd(t, s, iso).float()
        return fwd(t, s, iso)

    def run() -> torch.Tensor:
        with ctx():
            if tile:
                return tiled_forward(net, x, tile=int(tile), overlap=int(cfg.get("overlap", 32)))
            return net(x)

    with ctx():  # warm up on one small input (a full tiled pass would double the run time)
        net(x[..., :128, :128])
    best, med = timed(run, int(cfg["repeats"]), warmup=0)
    out: dict[str, Any] = {
        "seconds": best,
        "median_seconds": med,
        "mpix_s": size * size / best / 1e6,
        "median_mpix_s": size * size / med / 1e6,
        "peak_rss_mib": peak_rss_mib(),
        "rss_before_mib": base_rss,
    }
    if bf16:  # accuracy of bf16 against fp32 on the same input (same weights)
        with torch.inference_mode():
            ref = (
                tiled_forward(lambda t: m(t, s, iso), x, tile=int(tile), overlap=int(cfg.get("overlap", 32)))
                if tile
                else m(x, s, iso)
            )
            y = run()
        diff = (y.float() - ref).abs()
        mse = float(diff.square().mean())
        out["max_abs_diff"] = float(diff.max())
        out["psnr_vs_fp32"] = float(10 * np.log10(1.0 / mse)) if mse > 0 else float("inf")
    return out


def run_subprocess(cfg: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=str(cfg["threads"]))
    proc = subprocess.run(
        [sys.executable, __file__, "--_worker", json.dumps(cfg)], capture_output=True, text=True, env=env, timeout=1800
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"rc {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def matmul_peak(n: int, repeats: int, dtype: str) -> float:
    """Best ``torch.mm`` GFLOP/s of ``n x n`` matrices in ``dtype`` ("fp32" or "bf16")."""
    import torch

    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    a, b = torch.randn(n, n).to(dt), torch.randn(n, n).to(dt)
    best, _ = timed(lambda: torch.mm(a, b), repeats, warmup=2)
    return 2 * n**3 / best / 1e9


def precision_rows(names: list[str], repeats: int, batch: int, size: int, infer: int) -> list[dict[str, Any]]:
    """Per model and precision, as rawadapt trains and infers (rawadapt.utils.compute policy:
    channels-last, bf16 autocast; channels-last weights and fused AdamW as the trainer builds
    them): median training step (batch x size² packed) and inference of an infer² image."""
    import torch

    from rawadapt.utils.compute import precision_scope

    rows = []
    for name in names:
        fpp = forward_flops_per_pixel(name)
        for prec in ("fp32", "bf16"):
            with precision_scope(prec):
                m = build(name).to(memory_format=torch.channels_last).train()
                opt = torch.optim.AdamW(m.parameters(), lr=1e-4, fused=True)
                x, y = torch.rand(batch, 4, size, size), torch.rand(batch, 4, size, size)
                sid, iso = torch.zeros(batch, dtype=torch.long), torch.full((batch,), 800.0)

                def step() -> None:
                    opt.zero_grad(set_to_none=True)
                    (m(x, sid, iso) - y).abs().mean().backward()
                    opt.step()

                _, train_med = timed(step, repeats * 3, warmup=3)
                m.eval()
                xi = torch.rand(1, 4, infer, infer)
                with torch.inference_mode():
                    _, inf_med = timed(lambda: m(xi, sid[:1], iso[:1]), repeats, warmup=1)
            rows.append(
                {
                    "model": name,
                    "precision": prec,
                    "params": m.num_parameters(),
                    "fwd_flops_per_pixel": fpp,
                    "train_step_ms": 1e3 * train_med,
                    "train_mpix_s": batch * size * size / train_med / 1e6,
                    "infer_ms": 1e3 * inf_med,
                    "infer_mpix_s": infer * infer / inf_med / 1e6,
                    "train_gflops": 3 * fpp * batch * size * size / train_med / 1e9,
                    "infer_gflops": fpp * infer * infer / inf_med / 1e9,
                }
            )
            log(f"{name} {prec}: {json.dumps(rows[-1])}")
    return rows


def precision_markdown(res: dict[str, Any]) -> str:
    peaks = res["matmul_peak_gflops"]
    mach = res["machine"]
    lines = [
        f"Machine: {mach['line']}; date {res['date']}; command `{res['command']}`.",
        "",
        f"Matmul peak measured in the same run ({res['matmul_n']}², {mach['threads']} thread(s)): "
        f"fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s.",
        "",
        f"| model | params | fwd kFLOP/px | precision | train step ms (batch {res['batch']} x {res['size']}²) "
        f"| train MPix/s | % of peak | inference ms ({res['infer']}²) | infer MPix/s | % of peak |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        pk = peaks[r["precision"]]
        lines.append(
            f"| {r['model']} | {r['params'] / 1e6:.2f} M | {r['fwd_flops_per_pixel'] / 1e3:.1f} | "
            f"{r['precision']} | {r['train_step_ms']:.1f} | {r['train_mpix_s']:.3f} | "
            f"{100 * r['train_gflops'] / pk:.1f} | {r['infer_ms']:.1f} | {r['infer_mpix_s']:.2f} | "
            f"{100 * r['infer_gflops'] / pk:.1f} |"
        )
    return "\n".join(lines) + "\n"


def precision_table(args: argparse.Namespace, argv: list[str] | None) -> int:
    import torch

    from rawadapt.utils.compute import compute_record, machine_line

    torch.set_num_threads(args.threads)
    reps = 3 if args.quick else 5
    n = 1024 if args.quick else 2048
    names = [x.strip() for x in args.models.split(",") if x.strip()]
    peaks = {d: max(matmul_peak(n, reps, d) for _ in range(2)) for d in ("fp32", "bf16")}
    log(f"matmul peaks {peaks}")
    res: dict[str, Any] = {
        "date": _dt.date.today().isoformat(),
        "matmul_n": n,
        "matmul_peak_gflops": peaks,
        "batch": args.batch,
        "size": args.size,
        "infer": args.infer,
        "machine": {
            **compute_record("auto"),
            "threads": args.threads,
            "torch": torch.__version__,
            "line": machine_line("auto", threads=args.threads),
            "loadavg_start": loadavg(),
        },
        "command": " ".join(["python", "bench/bench_speed.py", *(argv or sys.argv[1:])]),
        "rows": precision_rows(names, reps, args.batch, args.size, args.infer),
    }
    res["machine"]["loadavg_end"] = loadavg()
    print(precision_markdown(res))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller matmul (a few minutes)")
    ap.add_argument("--out", type=Path, help="also write all numbers to this JSON file")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of: " + ", ".join(MODELS))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for the main table")
    ap.add_argument(
        "--variants",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the CPU variants (threads, channels_last, no_grad, bf16)",
    )
    ap.add_argument("--compile", action="store_true", help="also try torch.compile (slow to warm up)")
    ap.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="do not measure: merge earlier --out files, keeping each cell's best run",
    )
    ap.add_argument(
        "--precision-table",
        action="store_true",
        help="only the per-model fp32/bf16 table (train step, inference, matmul peaks): minutes",
    )
    ap.add_argument("--batch", type=int, default=8, help="--precision-table: training batch")
    ap.add_argument("--size", type=int, default=48, help="--precision-table: training patch side (packed px)")
    ap.add_argument("--infer", type=int, default=512, help="--precision-table: inference image side (packed px)")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.precision_table:
        return precision_table(args, argv)
    if args._worker:
        print(json.dumps(infer_worker(json.loads(args._worker))))
        return 0
    if args.merge:
        res = merge([json.loads(p.read_text()) for p in args.merge])
        res["command"] = "python bench/bench_speed.py " + " ".join(argv or sys.argv[1:])
        print(markdown(res))
        if args.out:
            args.out.write_text(json.dumps(res, indent=2) + "\n")
        return 0

    import torch

    torch.set_num_threads(args.threads)
    reps = 3 if args.quick else 7
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    res: dict[str, Any] = {
        "date": _dt.date.today().isoformat(),
        "machine": {
            "cpu": cpu_name(),
            "logical_cpus": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": args.threads,
            "mkldnn_bf16": bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)()),
        },
        "command": " ".join([Path(sys.executable).name, "bench/bench_speed.py", *(argv or sys.argv[1:])]),
        "loadavg_start": loadavg(),
        "models": {},
        "variants": [],
    }
    n = 1024 if args.quick else 2048
    # the hardware limit is the BEST rate seen (other processes only ever slow it down)
    gf = max(matmul_gflops(n, reps) for _ in range(3))
    res["matmul_gflops"] = gf
    log(f"matmul {n}x{n} fp32: {gf:.1f} GFLOP/s ({args.threads} threads); load {loadavg()}")

    for name in names:
        # re-measure the limit between models and keep the best: one short quiet moment suffices
        gf = max(gf, matmul_gflops(n, reps))
        row: dict[str, Any] = {}
        fpp = forward_flops_per_pixel(name)
        row["params"] = build(name).num_parameters()
        row["fwd_flops_per_pixel"] = fpp
        row["train_mpix_s"] = train_throughput(name, reps)
        base = {"model": name, "threads": args.threads, "repeats": reps}
        row["infer_512"] = run_subprocess({**base, "size": 512})
        row["infer_1024_tiled"] = run_subprocess({**base, "size": 1024, "tile": 256, "overlap": 32, "repeats": reps})
        # achieved FLOP/s as a share of the matmul rate (training ~ 3x forward FLOPs)
        inf = row["infer_512"].get("mpix_s")
        row["infer_pct_of_matmul"] = (100 * inf * 1e6 * fpp / (gf * 1e9)) if inf else None
        row["train_pct_of_matmul"] = 100 * row["train_mpix_s"] * 1e6 * 3 * fpp / (gf * 1e9)
        res["models"][name] = row
        log(f"{name}: {json.dumps(row)}; load {loadavg()}")

    if args.variants:
        size = 512
        for name in names:
            base = {"model": name, "size": size, "repeats": reps}
            t = args.threads
            variants = [
                ("NCHW, 1 thread", {"threads": 1, "channels_last": False}),
                (f"NCHW, {t} threads", {"threads": t, "channels_last": False}),
                ("channels_last, 1 thread", {"threads": 1}),
                (f"channels_last, {t} threads (default)", {"threads": t}),
                ("channels_last, no_grad instead of inference_mode", {"threads": t, "grad_mode": "no_grad"}),
                # without native bf16 instructions (AVX2-only CPUs) oneDNN falls back to a slow
                # path (~100x slower): measure it on a 256x256 crop, once
                ("bf16 autocast (256², 1 run)", {"threads": t, "precision": "bf16", "size": 256, "repeats": 1}),
            ]
            if args.compile:
                variants.append(("torch.compile", {"threads": t, "compile": True}))
            for label, extra in variants:
                r = run_subprocess({**base, **extra})
                res["variants"].append({"model": name, "variant": label, **r})
                log(f"{name} / {label}: {json.dumps(r)}; load {loadavg()}")
            cl = train_throughput(name, reps, channels_last=True)
            res["variants"].append(
                {"model": name, "variant": "TRAINING, channels_last (vs NCHW in the main table)", "train_mpix_s": cl}
            )
            log(f"{name} / train channels_last: {cl:.3f} MPix/s")
    res["loadavg_end"] = loadavg()
    res["matmul_gflops"] = max(gf, matmul_gflops(n, reps))
    for row in res["models"].values():  # percentages against the final (best) limit
        inf = row["infer_512"].get("mpix_s")
        row["infer_pct_of_matmul"] = (
            100 * inf * 1e6 * row["fwd_flops_per_pixel"] / (res["matmul_gflops"] * 1e9) if inf else None
        )
        row["train_pct_of_matmul"] = (
            100 * row["train_mpix_s"] * 1e6 * 3 * row["fwd_flops_per_pixel"] / (res["matmul_gflops"] * 1e9)
        )
    print(markdown(res))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


def _better(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    """The measurement with the higher throughput (a run on a shared CPU is only ever slowed)."""
    if not a or "mpix_s" not in a:
        return b or a
    if not b or "mpix_s" not in b:
        return a
    return b if b["mpix_s"] > a["mpix_s"] else a


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine several runs' JSON: per cell the best run, matmul the best rate seen."""
    out = json.loads(json.dumps(runs[0]))
    out["runs"] = [
        {
            "command": r["command"],
            "date": r["date"],
            "loadavg_start": r["loadavg_start"],
            "loadavg_end": r.get("loadavg_end"),
            "matmul_gflops": r["matmul_gflops"],
        }
        for r in runs
    ]
    out["matmul_gflops"] = max(r["matmul_gflops"] for r in runs)
    out["loadavg_start"] = "; ".join(r["loadavg_start"] for r in runs)
    out["loadavg_end"] = "; ".join(str(r.get("loadavg_end")) for r in runs)
    for r in runs[1:]:
        for name, row in r["models"].items():
            mine = out["models"].setdefault(name, row)
            mine["train_mpix_s"] = max(mine["train_mpix_s"], row["train_mpix_s"])
            for key in ("infer_512", "infer_1024_tiled"):
                mine[key] = _better(mine.get(key), row.get(key))
        for v in r["variants"]:
            for i, w in enumerate(out["variants"]):
                if (w["model"], w["variant"]) == (v["model"], v["variant"]):
                    if "train_mpix_s" in v:
                        w["train_mpix_s"] = max(w["train_mpix_s"], v["train_mpix_s"])
                    else:
                        out["variants"][i] = {**w, **(_better(w, v) or {})}
                    break
            else:
                out["variants"].append(v)
    gf = out["matmul_gflops"]
    for row in out["models"].values():
        inf = row["infer_512"].get("mpix_s")
        row["infer_pct_of_matmul"] = 100 * inf * 1e6 * row["fwd_flops_per_pixel"] / (gf * 1e9) if inf else None
        row["train_pct_of_matmul"] = 100 * row["train_mpix_s"] * 1e6 * 3 * row["fwd_flops_per_pixel"] / (gf * 1e9)
    return out


def _f(v: Any, fmt: str = ".3f") -> str:
    return "n/a" if v is None else format(v, fmt)


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"Speed on {m['cpu']} ({m['logical_cpus']} logical CPUs, {m['threads']} threads), torch {m['torch']}, "
        f"{res['date']}; load average {res['loadavg_start']} (start) / {res.get('loadavg_end', '?')} (end).",
        f"Dense fp32 matmul: **{res['matmul_gflops']:.1f} GFLOP/s**. Pixels are packed RAW pixels (4 planes).",
        "",
        "| model | params | fwd kFLOP/px | train MPix/s (b8 64²) | train % of matmul | infer 512² MPix/s "
        "| infer % of matmul | peak RSS 512² MiB | tiled 1024² MPix/s | peak RSS tiled MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in res["models"].items():
        a, b = r["infer_512"], r["infer_1024_tiled"]
        lines.append(
            f"| {name} | {r['params'] / 1e6:.2f} M | {r['fwd_flops_per_pixel'] / 1e3:.1f} | {_f(r['train_mpix_s'])} "
            f"| {_f(r['train_pct_of_matmul'], '.1f')} | {_f(a.get('mpix_s'))} | {_f(r['infer_pct_of_matmul'], '.1f')} "
            f"| {_f(a.get('peak_rss_mib'), '.0f')} | {_f(b.get('mpix_s'))} | {_f(b.get('peak_rss_mib'), '.0f')} |"
        )
    if res["variants"]:
        lines += [
            "",
            "CPU variants (inference 512², MPix/s; bf16 accuracy against fp32 on the same weights):",
            "",
            "| model | variant | MPix/s | peak RSS MiB | max abs diff | PSNR vs fp32 dB |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for v in res["variants"]:
            mp = v.get("mpix_s", v.get("train_mpix_s"))
            lines.append(
                f"| {v['model']} | {v['variant']} | {_f(mp)} | {_f(v.get('peak_rss_mib'), '.0f')} "
                f"| {_f(v.get('max_abs_diff'), '.2e')} | {_f(v.get('psnr_vs_fp32'), '.1f')} |"
                + (f" error: {v['error']}" if "error" in v else "")
            )
    lines += ["", f"Command: `{res['command']}`"]
    for r in res.get("runs", []):
        lines.append(f"- merged run: `{r['command']}` (load {r['loadavg_start']} -> {r['loadavg_end']})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
