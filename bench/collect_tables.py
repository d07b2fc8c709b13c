"""Tables of a benchmark folder from ALL its finished cells, computing nothing.

A benchmark grown by several `rawadapt bench` invocations (other targets, seeds or methods in the
same ``--out`` folder) has a ``results.md`` of its last invocation only. This script reads every
``cells/<variant>/<target>/seed<k>/<method>/result.json`` there and writes
``results.{md,csv,json}`` of the union through the same aggregation as the runner
(:mod:`rawadapt.eval.results`), so every number still comes from the cell files.

    python bench/collect_tables.py DIR --protocol crossval \
        --methods noisy,bm3d,target-only,finetune,joint,adl,adl-paired --targets SonyA7S2,NikonD850,IP,GP \
        --out bench/results/2026-12-06/v2/crossval
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rawadapt.eval.protocols.settings import protocol_spec
from rawadapt.eval.results import aggregate, noise_bands, paired_tests, write_results


def _order(found: list[str], wanted: str | None) -> list[str]:
    if not wanted:
        return sorted(found)
    want = [w.strip() for w in wanted.split(",") if w.strip()]
    return [w for w in want if w in found]


def collect(root: Path, protocol: str, methods: str | None, targets: str | None) -> dict[str, Any]:
    cells = [json.loads(p.read_text()) for p in sorted(root.glob("cells/*/*/seed*/*/result.json"))]
    if not cells:
        raise SystemExit(f"{root}: no finished cells (cells/*/*/seed*/*/result.json)")
    labels: dict[str, str] = {}
    for c in cells:
        labels.setdefault(c["key"]["variant"], c["key"].get("variant_label", c["key"]["variant"]))
    keep_m = _order(sorted({c["key"]["method"] for c in cells}), methods)
    keep_t = _order(sorted({c["key"]["target"] for c in cells}), targets)
    cells = [c for c in cells if c["key"]["method"] in keep_m and c["key"]["target"] in keep_t]
    variants = sorted(labels, key=lambda v: (len(v), v))
    rows, acceptance = aggregate(cells, protocol=protocol, variants=variants, targets=keep_t, methods=keep_m)
    spec = protocol_spec(protocol)
    first = cells[0]
    seeds = sorted({int(c["key"]["seed"]) for c in cells})
    settings = {**first.get("settings", {}), "seeds": seeds}
    machines = sorted({json.dumps(c.get("machine", {}), sort_keys=True) for c in cells})
    return {
        "schema": 1,
        "protocol": protocol,
        "title": spec.title,
        "paper": spec.paper,
        "settings": settings,
        "budget": first["budget"],
        "data": settings.get("data"),
        "space": first.get("space"),
        "targets": keep_t,
        "methods": keep_m,
        "target_pairs": settings.get("target_pairs"),
        "variants": [{"key": v, "label": labels[v], "value": None, "harmful": []} for v in variants],
        "metric_note": (
            "PSNR (dB, data range 1) and SSIM per test image, averaged over the target's test images; "
            "± = std over seeds (min–max in brackets); collected from every finished cell of "
            f"{root.name} by bench/collect_tables.py (cells of several invocations)."
        ),
        "rows": rows,
        "acceptance": acceptance,
        "bands": noise_bands(cells),
        "paired": paired_tests(cells),
        "cells": len(cells),
        "failures": [],
        "notes": [f"{len(cells)} cells; seeds per row in results.csv (n_seeds)"]
        + ([] if len(machines) <= 1 else [f"{len(machines)} machine records among the cells"]),
        "plots": [],
        "machine": {},
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--protocol", default="crossval")
    ap.add_argument("--methods")
    ap.add_argument("--targets")
    ap.add_argument("--machine", default="", help="The Machine: line of the tables (CPU, flags, precision).")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    res = collect(args.root, args.protocol, args.methods, args.targets)
    if args.machine:
        res["machine"] = {"line": args.machine}
    args.out.mkdir(parents=True, exist_ok=True)
    for p in write_results(args.out, res):
        print(p)


if __name__ == "__main__":
    main()
