"""Merge the per-target PSNR/SSIM tables of several cross-validation runs into one table.

A run's ``results.md`` has one column per target; two runs on different targets (e.g. run A on
SonyA7S2 and IP, run B on NikonD850 and GP, same methods, budget and seed) give two tables. This
script joins them by method into one table with every target and a new average over them, so a
reader compares every method on every target in one place. Inputs are ``results.md`` files or
blocks of a document already filled by ``fill_benchmarks.py`` (``DOC::REF``, e.g.
``BENCHMARKS.md::crossval-synth/results-sony-ip.md#PSNR``, for a run whose folder is gone).

    .venv/bin/python bench/merge_tables.py --out runs/benchmarks/crossval-synth/results-merged.md \\
        BENCHMARKS.md::crossval-synth/results-sony-ip.md#PSNR runs/benchmarks/crossval-synth/results-nikon-gp.md

The average is taken over the values as printed (2 decimals for PSNR, 4 for SSIM), so it can
differ from an average of the unrounded numbers in the last digit; a cell no input has is "-"
and its row gets no average; a cell two inputs give differently is an error. Only the per-target
columns are kept (times differ per run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling script, also when loaded by path
from fill_benchmarks import MARKER, section  # noqa: E402  (its block pattern and section reader)

from rawadapt.utils.atomic import write_text  # noqa: E402

#: the result tables merged, by their ``## `` heading in results.md (written back under it)
SECTIONS = {"PSNR": "PSNR (dB) per target", "SSIM": "SSIM per target"}
#: columns of a results table that are not targets
NOT_TARGETS = ("average", "fit s", "denoise s/img")


def read_table(lines: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Target names and ``method -> values`` of the first Markdown table in ``lines``."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if line.startswith("|")]
    if len(rows) < 3 or rows[0][0] != "method":
        raise ValueError("no '| method | ...' table")
    head = rows[0]
    keep = [i for i, name in enumerate(head) if i > 0 and name not in NOT_TARGETS]
    return [head[i] for i in keep], {r[0]: [r[i] for i in keep] for r in rows[2:]}


def load(spec: str, kind: str) -> tuple[list[str], dict[str, list[str]]]:
    """The ``kind`` table (PSNR or SSIM) of one input: a results.md path or ``DOC::REF``."""
    if "::" in spec:
        doc, ref = spec.split("::", 1)
        ref = ref.partition("#")[0] + "#" + kind  # the block of this metric
        for m in MARKER.finditer(Path(doc).read_text()):
            if m.group("ref").strip() == ref:
                return read_table(m.group(0).splitlines())
        raise ValueError(f"{doc}: no block <!-- BEGIN {ref} -->")
    return read_table(section(Path(spec).read_text(), SECTIONS[kind]).splitlines())


def merge(tables: list[tuple[list[str], dict[str, list[str]]]], digits: int) -> str:
    """One Markdown table: method, the targets in order of appearance, average over them.

    A (method, target) cell given by several inputs must agree (e.g. ``noisy``, which every run
    has); a disagreement is an error, not a silent choice.
    """
    targets: list[str] = []
    methods: list[str] = []
    cell: dict[tuple[str, str], str] = {}
    for names, rows in tables:
        targets += [n for n in names if n not in targets]
        for m, values in rows.items():
            if m not in methods:
                methods.append(m)
            for name, v in zip(names, values):
                if cell.setdefault((m, name), v) != v:
                    raise ValueError(f"{m} on {name}: {cell[(m, name)]} in one input, {v} in another")
    lines = ["| method | " + " | ".join(targets) + " | average |", "|" + "---|" * (len(targets) + 2)]
    for m in methods:
        cells = [cell.get((m, n), "-") for n in targets]
        values = [float(c) for c in cells if c != "-"]
        avg = f"{sum(values) / len(values):.{digits}f}" if len(values) == len(cells) else "-"
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {avg} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="+", help="results.md files or DOC::REF blocks, in column order")
    p.add_argument("--out", type=Path, required=True, help="merged results file (Markdown)")
    p.add_argument("--title", default="Cross-validation, merged from several runs")
    a = p.parse_args(argv)
    try:
        psnr = merge([load(s, "PSNR") for s in a.inputs], 2)
        ssim = merge([load(s, "SSIM") for s in a.inputs], 4)
    except (OSError, ValueError) as exc:
        print(f"merge_tables: {exc}", file=sys.stderr)
        return 1
    text = (
        f"# {a.title}\n\nInputs, in column order: "
        + ", ".join(f"`{s}`" for s in a.inputs)
        + ". Average over the printed values.\n\n"
        + f"## {SECTIONS['PSNR']}\n\n{psnr}\n\n## {SECTIONS['SSIM']}\n\n{ssim}\n"
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(a.out, text)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
