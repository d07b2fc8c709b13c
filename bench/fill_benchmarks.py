"""Copy the tables of a benchmark run into BENCHMARKS.md, so that no number there is typed by hand.

BENCHMARKS.md marks every table it shows with a pair of HTML comments::

    <!-- BEGIN harmful/results.md#Summary over variants -->
    ...table copied from runs/benchmarks/harmful/results.md, section "## Summary over variants..."
    <!-- END -->

and this script replaces what lies between them with the Markdown table(s) of that section of
that file (the section whose ``## `` heading starts with the text after ``#``; without ``#`` the
whole file minus its title). A marker whose file is missing is left as it is and reported.

    .venv/bin/python bench/fill_benchmarks.py                      # runs/benchmarks -> BENCHMARKS.md
    .venv/bin/python bench/fill_benchmarks.py --runs DIR --doc FILE --check   # report only
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from rawadapt.utils.atomic import write_text

MARKER = re.compile(r"<!-- BEGIN (?P<ref>[^>]+?) -->\n.*?<!-- END -->", re.S)


def section(text: str, heading: str | None) -> str:
    """The table lines of the ``## heading...`` section of a results.md text (all tables if None)."""
    out: list[str] = []
    on = heading is None
    for line in text.splitlines():
        if line.startswith("## "):
            if heading is not None:
                if on:
                    break
                on = line[3:].strip().startswith(heading)
            elif out and out[-1] != "":
                out.append("")
            continue
        if on and line.startswith("|"):
            out.append(line)
    return "\n".join(out).strip()


def fill(doc: str, runs: Path) -> tuple[str, list[str], int]:
    """Return the document with every marker filled, the list of problems and the marker count."""
    problems: list[str] = []
    refs: list[str] = []

    def repl(m: re.Match[str]) -> str:
        ref = m.group("ref").strip()
        refs.append(ref)
        path, _, heading = ref.partition("#")
        f = runs / path
        if not f.is_file():
            problems.append(f"{ref}: {f} not found (left as it was)")
            return m.group(0)
        table = section(f.read_text(), heading or None)
        if not table:
            problems.append(f"{ref}: no table under that heading in {f}")
            return m.group(0)
        return f"<!-- BEGIN {ref} -->\n{table}\n<!-- END -->"

    new = MARKER.sub(repl, doc)
    return new, problems, len(refs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=Path("runs/benchmarks"))
    p.add_argument("--doc", type=Path, default=Path("BENCHMARKS.md"))
    p.add_argument("--check", action="store_true", help="report problems, write nothing")
    a = p.parse_args(argv)
    doc = a.doc.read_text()
    new, problems, n = fill(doc, a.runs)
    for msg in problems:
        print(f"fill_benchmarks: {msg}", file=sys.stderr)
    if not a.check and new != doc:
        write_text(a.doc, new)  # atomic: the document is never half-written
    print(f"{n} tables, {len(problems)} problems" + ("" if a.check else f"; wrote {a.doc}"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
