"""``rawadapt data ...``: dataset tools.

``rawadapt data list`` lists the adapters and the built-in named datasets;
``rawadapt data list ROOT`` opens ROOT (auto-detected adapter, or ``--adapter NAME``) and prints
its sensors, ISOs and pair counts. ``data_app`` is module level so other commands (e.g.
``data build``) attach to it: ``from rawadapt.cli.data_cmd import data_app``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rawadapt.cli.common import print_json

data_app = typer.Typer(
    help="Datasets: list adapters, inspect a dataset root.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def adapters_listing() -> dict[str, Any]:
    """Adapters (auto-detection order) and named datasets, JSON-friendly."""
    from rawadapt.data.registry import ADAPTERS, NAMED

    return {
        "adapters": [{"name": a.name, "space": a.space, "description": a.description} for a in ADAPTERS.values()],
        "named": [{"name": n, "builder": NAMED.target(n)} for n in NAMED],
    }


def open_root(root: str, adapter: str | None = None) -> Any:
    """Open ``root`` with ``adapter`` or by auto-detection (see :mod:`rawadapt.data.registry`)."""
    from rawadapt.data.registry import adapter_for, open_dataset
    from rawadapt.errors import DatasetError

    if adapter is None:
        return open_dataset(root)
    p = Path(root).expanduser()
    if not p.exists():
        raise DatasetError("dataset path does not exist", p)
    return adapter_for(adapter)(p)


def _human_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"dataset {summary['name']!r} ({summary['space']}): {summary['count']} pairs"
        + (f" in {summary['root']}" if summary.get("root") else "")
    ]
    lines.append(f"  {'sensor':<16} {'pairs':>6} {'scenes':>7}  ISOs / splits")
    for sensor, d in summary["sensors"].items():
        isos = ", ".join(f"{i:g}" for i in d["isos"]) or "unknown"
        splits = ", ".join(f"{k}={v}" for k, v in d["splits"].items() if k != "-")
        lines.append(f"  {sensor:<16} {d['count']:>6} {d['scenes']:>7}  ISO {isos}" + (f"; {splits}" if splits else ""))
    return "\n".join(lines)


@data_app.command("list")
def list_cmd(
    root: str | None = typer.Argument(
        None,
        help="Dataset folder, manifest file, ADAPTER:PATH or a named dataset. "
        "Without it: list adapters and named datasets.",
    ),
    adapter: str | None = typer.Option(None, "--adapter", help="Force an adapter (see `rawadapt data list`)."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List dataset adapters, or the sensors / ISOs / counts of one dataset."""
    if root is None:
        listing = adapters_listing()
        if json_:
            print_json(listing)
            return
        typer.echo("adapters (auto-detection order):")
        for a in listing["adapters"]:
            typer.echo(f"  {a['name']:<10} {a['space']:<9} {a['description']}")
        typer.echo("named datasets:")
        for n in listing["named"]:
            typer.echo(f"  {n['name']}")
        typer.echo("open one with: rawadapt data list ROOT [--adapter NAME]")
        return
    summary = open_root(root, adapter).summary()
    if json_:
        print_json(summary)
    else:
        typer.echo(_human_summary(summary))


def register(app: typer.Typer) -> None:
    """Attach ``rawadapt data`` to the main app."""
    app.add_typer(data_app, name="data")
