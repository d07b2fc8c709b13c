"""Noise-simulation benchmark: a 12-megapixel frame through the full noise model.

For a clean packed frame of 4 x 1500 x 2000 values (12 M, i.e. a 3000 x 4000 Bayer mosaic) and
the SonyA7S2 profile (Tukey-lambda read noise, row noise, colour bias, DSNU/PRNU/column pattern,
quantisation), it measures the wall time of :func:`rawadapt.noise.model.add_noise` with the
frame already in memory (median of ``--repeats``; the fixed-pattern fields are cached after the
first frame, whose "cold" time is reported separately), the process CPU time per frame (what
an otherwise idle machine would take with one thread), MPix/s, and the process's peak RSS.
Cases: exposure ratio x1 (bright: hybrid Poisson mostly Gaussian) and x100 (low light: exact
Poisson for most pixels), with 1 and 2 torch threads. Optionally (``--synth``) it also times a
tiny and a full build of the ``synth`` benchmark into a temporary folder.

Every case runs in a fresh subprocess so that its peak RSS (``VmHWM``) is its own::

    .venv/bin/python bench/bench_noise.py                 # noise model only
    .venv/bin/python bench/bench_noise.py --synth --json  # + synth builds

The CPU may be shared: the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, os, sys, time, statistics
import numpy as np, torch
threads, ratio, repeats = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
from rawadapt.noise.model import add_noise, sample_noise_params
from rawadapt.noise.profiles import load_profile
prof = load_profile("SonyA7S2")
params = sample_noise_params(prof, iso=3200, rng=0)
rng = np.random.default_rng(0)
clean = (rng.random((4, 1500, 2000), dtype=np.float32) * 0.4).astype(np.float32)
t0 = time.perf_counter(); add_noise(clean, prof, params, ratio=ratio, seed=0); cold = time.perf_counter() - t0
times, cpus = [], []
for i in range(repeats):
    t0, c0 = time.perf_counter(), time.process_time()
    add_noise(clean, prof, params, ratio=ratio, seed=i + 1)
    times.append(time.perf_counter() - t0); cpus.append(time.process_time() - c0)
rss = 0
with open("/proc/self/status") as fh:
    for line in fh:
        if line.startswith("VmHWM:"):
            rss = int(line.split()[1]) * 1024
med = statistics.median(times)
print(json.dumps({"threads": threads, "ratio": ratio, "mpix": clean.size / 1e6, "cold_s": round(cold, 3),
                  "median_s": round(med, 3), "min_s": round(min(times), 3),
                  "cpu_s": round(statistics.median(cpus), 3), "mpix_per_s": round(clean.size / 1e6 / med, 1),
                  "peak_rss_mb": round(rss / 2**20, 1)}))
"""


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def bench_noise(repeats: int) -> list[dict]:
    out = []
    for threads in (1, 2):
        for ratio in (1.0, 100.0):
            res = subprocess.run(
                [sys.executable, "-c", CHILD, str(threads), str(ratio), str(repeats)],
                capture_output=True,
                text=True,
                check=True,
            )
            out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return out


def bench_synth() -> list[dict]:
    code = (
        "import json, sys, time; from rawadapt.noise.synth_dataset import build_synth, dataset_summary; "
        "t=time.perf_counter(); r=build_synth(sys.argv[1], size=sys.argv[2], progress=False, space=sys.argv[3]); "
        "d=dataset_summary(r); d['wall_s']=round(time.perf_counter()-t,2); d.pop('counts'); print(json.dumps(d))"
    )
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in ("tiny", "full"):
            for space in ("raw", "srgb"):
                res = subprocess.run(
                    [sys.executable, "-c", code, os.path.join(tmp, f"{size}-{space}"), size, space],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--synth", action="store_true", help="also time synth builds (tiny and full)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    load_before = _load()
    t0 = time.perf_counter()
    report = {"cpus": os.cpu_count(), "load_before": load_before, "noise": bench_noise(a.repeats)}
    if a.synth:
        report["synth"] = bench_synth()
    report["load_after"] = _load()
    report["total_s"] = round(time.perf_counter() - t0, 1)
    if a.json:
        print(json.dumps(report))
        return 0
    print(f"CPUs: {report['cpus']}, load average before: {load_before}, after: {report['load_after']}")
    print("12 MPix frame (4 x 1500 x 2000), SonyA7S2 ISO 3200, full model:")
    print(
        f"{'threads':>7} {'ratio':>6} {'median s':>9} {'min s':>7} {'CPU s':>7} {'cold s':>7} {'MPix/s':>7} "
        f"{'peak RSS MB':>12}"
    )
    for r in report["noise"]:
        print(
            f"{r['threads']:>7} {r['ratio']:>6g} {r['median_s']:>9.3f} {r['min_s']:>7.3f} {r['cpu_s']:>7.3f} "
            f"{r['cold_s']:>7.3f} {r['mpix_per_s']:>7.1f} {r['peak_rss_mb']:>12.1f}"
        )
    for r in report.get("synth", []):
        print(
            f"synth {r['size']:<4} {r['space']:<4}: {r['pairs']} pairs, {r['bytes'] / 1e6:.1f} MB, "
            f"{r['wall_s']:.1f} s wall ({r['build_seconds']:.1f} s build)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
