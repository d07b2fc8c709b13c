"""``rawadapt demo``: the end-to-end showcase run by ``make demo`` (grows with the project)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo() -> None:
        """Run the end-to-end demo on the built-in data."""
        from rawadapt.utils.paths import shared_data_dir

        typer.echo("rawadapt demo: (placeholder until the demo issue lands)")
        typer.echo(f"shared data: {shared_data_dir()}")
