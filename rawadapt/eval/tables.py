"""The one function that renders a Markdown table (every ``results.md`` of the benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """GitHub-flavoured Markdown table lines: header, separator, one line per row.

    Cells are ``str()``-ed; a ``|`` inside a cell is escaped so it cannot split the column.
    """

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|")

    out = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return out
