"""``rawadapt profiles``: list the camera noise profiles; ``rawadapt profiles import-darktable``:
import darktable's measured noise profiles (:mod:`rawadapt.noise.darktable`).

``--json``: one line of JSON on stdout, human messages on stderr.
"""

from __future__ import annotations

from pathlib import Path

import typer

from rawadapt.cli.common import info, print_json

profiles_app = typer.Typer(
    help="Camera noise profiles: list them (no sub-command), import darktable's.",
    no_args_is_help=False,
    invoke_without_command=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


@profiles_app.callback(invoke_without_command=True)
def profiles_main(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the camera noise profiles (built-in, user folder, $RAWADAPT_PROFILES)."""
    if ctx.invoked_subcommand is not None:
        return
    from rawadapt.cli.noise_cmd import profiles_cmd

    profiles_cmd(json_=json_)


@profiles_app.command("import-darktable")
def import_darktable_cmd(
    path: Path | None = typer.Argument(
        None, help="darktable's noiseprofiles.json (default: /usr/share/darktable/noiseprofiles.json)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Destination folder (default: the user profile folder, see `rawadapt profiles --json`)."
    ),
    camera: str | None = typer.Option(
        None, "--camera", help="Import only the models whose 'maker model' contains this text (case ignored)."
    ),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Convert darktable's per-camera, per-ISO noise measurements into rawadapt profiles.

    One `nlf` profile per camera, named like a RAW file's make and model (e.g. "Canon EOS 5D
    Mark II"), so `rawadapt denoise` finds it for that camera's files.
    """
    from rawadapt.noise.darktable import import_darktable

    res = import_darktable(path, out, camera=camera)
    for w in res.warnings:
        info(f"warning: {res.source}: {w}")
    if json_:
        print_json(res.summary())
        return
    typer.echo(f"imported {len(res.cameras)} cameras ({res.isos} ISO settings) from {res.source} into {res.out_dir}")


def register(app: typer.Typer) -> None:
    """Attach ``rawadapt profiles`` (list) and ``rawadapt profiles import-darktable``."""
    app.add_typer(profiles_app, name="profiles")
