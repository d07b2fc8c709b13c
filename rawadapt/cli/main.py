"""Entry point of the ``rawadapt`` console script.

Error policy: a :class:`~rawadapt.errors.RawAdaptError` (bad file, shape, sensor, config...) is
printed as one line ``error: <path>: <problem>`` on stderr with exit code 2 and no traceback;
usage errors exit 2 as well; any other exception is reported in one line with exit code 1
(set ``RAWADAPT_DEBUG=1`` to see its traceback).
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from rawadapt import __version__
from rawadapt.errors import RawAdaptError

#: command modules, each with ``register(app: typer.Typer) -> None``
COMMAND_MODULES: tuple[str, ...] = (
    "rawadapt.cli.demo_cmd",
    "rawadapt.cli.info_cmd",
    "rawadapt.cli.data_cmd",
    "rawadapt.cli.noise_cmd",
    "rawadapt.cli.profiles_cmd",
    "rawadapt.cli.train_cmd",
    "rawadapt.cli.adapt_cmd",
    "rawadapt.cli.bench_cmd",
    "rawadapt.cli.report_cmd",
    "rawadapt.cli.denoise_cmd",
    "rawadapt.cli.zoo_cmd",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rawadapt {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="rawadapt",
        help="Best RAW/sRGB denoiser for a new camera sensor from little data (ADL + LAN).",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        """rawadapt command line."""

    from rawadapt.utils.log import cli_logging

    cli_logging()  # library progress messages -> stderr lines
    importlib.import_module("rawadapt.baselines")  # registers the baselines' training strategies
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


def _one_line(text: str) -> str:
    """Messages quoting file contents may hold line breaks: the error stays on one line."""
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; never lets a traceback through for user errors."""
    debug = os.environ.get("RAWADAPT_DEBUG", "") not in ("", "0")
    try:
        app = build_app()
        # Standalone mode: typer handles --help, usage errors (exit 2) and typer.Exit itself by
        # raising SystemExit, which passes through here untouched.
        app(args=argv, prog_name="rawadapt")
    except RawAdaptError as exc:
        if debug:
            raise
        sys.stderr.write(f"error: {_one_line(str(exc))}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            raise
        sys.stderr.write(
            f"error: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
            "(set RAWADAPT_DEBUG=1 for the traceback)\n"
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
