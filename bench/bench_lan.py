"""LAN benchmarks (LAN paper): Table 1 (PSNR/SSIM of LAN and its baselines) and Table 2
(time and memory per iteration, LAN vs full fine-tuning), on data we have.

A thin wrapper around ``rawadapt bench lan`` and ``rawadapt bench lan-cost`` (same options),
for running both in one go and printing the load average around them (the CPU is shared)::

    .venv/bin/python bench/bench_lan.py --out runs/bench_lan --quick          # minutes
    .venv/bin/python bench/bench_lan.py --out runs/bench_lan                  # meaningful size
    .venv/bin/python bench/bench_lan.py --out runs/bench_lan --only cost      # Table 2 only

Table 1 lands in ``OUT/table1/results.{csv,md,json}`` (+ ``figures/``), Table 2 in
``OUT/table2/cost.{csv,md,json}``. Re-running continues where it stopped (Table 1 skips finished
cells).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", choices=["table1", "cost"], default=None)
    p.add_argument("--backbones", default="dncnn,restormer")
    p.add_argument("--images", type=int, default=None)
    p.add_argument("--pretrain-iters", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-raw", action="store_true")
    a = p.parse_args(argv)

    from rawadapt.cli.main import main as cli

    common = ["--device", a.device] + (["--threads", str(a.threads)] if a.threads else [])
    code = 0
    for part in ("table1", "cost"):
        if a.only and a.only != part:
            continue
        sys.stderr.write(f"[bench_lan] {part}: load average before {_load()}\n")
        if part == "table1":
            args = ["bench", "lan", "--out", str(a.out / "table1"), "--backbones", a.backbones, *common]
            args += ["--quick"] if a.quick else []
            args += ["--images", str(a.images)] if a.images else []
            args += ["--pretrain-iters", str(a.pretrain_iters)] if a.pretrain_iters else []
            args += ["--no-raw"] if a.no_raw else []
        else:
            args = ["bench", "lan-cost", "--out", str(a.out / "table2"), "--backbones", a.backbones, *common]
            args += ["--quick"] if a.quick else []
        try:
            cli(args)
        except SystemExit as exc:  # typer exits after each command
            code = code or int(exc.code or 0)
        sys.stderr.write(f"[bench_lan] {part}: load average after {_load()}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
