"""``rawadapt report DIR``: the self-contained HTML page of a benchmark folder
(:mod:`rawadapt.eval.report`)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        directory: Path = typer.Argument(..., help="A folder written by `rawadapt bench ...` or `rawadapt demo`."),
        output: Path = typer.Option(None, "--output", "-o", help="HTML file (default DIR/report.html)."),
        images: int = typer.Option(
            2, "--images", min=0, help="Test images per target shown as crops (at most the number stored by the run)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last stdout line."),
    ) -> None:
        """Write one HTML file (tables, plots, crops and error maps, images embedded) for a benchmark."""
        from rawadapt.cli.common import print_json
        from rawadapt.eval.report import write_report

        path = write_report(directory, output, images=images)
        if as_json:
            print_json({"report": str(path), "bytes": path.stat().st_size})
        else:
            typer.echo(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained)")
