"""``rawadapt denoise RUN INPUT -o OUTPUT``: denoise a RAW file or an sRGB image with a saved model.

Thin wrapper over :func:`rawadapt.eval.denoise_file.denoise_file` (formats, metadata rules and
errors are documented there). A noise-conditioned model's noise source (``--profile``, the
camera's profile, or an estimate from the image) is printed as one ``noise:`` line on stderr,
with ``--json`` too. User errors raise typed :class:`~rawadapt.errors.RawAdaptError`s:
one line on stderr, exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from rawadapt.cli.common import PRECISION_HELP, info, print_json, use_precision
from rawadapt.errors import ConfigError


def register(app: typer.Typer) -> None:
    @app.command("denoise")
    def denoise(
        run: Path = typer.Argument(..., help="Run folder (model.safetensors + model.json) or a .safetensors file."),
        input: Path = typer.Argument(..., help="Camera RAW file (.dng .nef .arw .cr2 ...), sRGB image or .npy."),
        output: Path = typer.Option(
            ...,
            "--output",
            "-o",
            help="RAW in: .dng, .tif (16-bit mosaic) or .npy (float planes); sRGB in: .png, .tif, .jpg or .npy.",
        ),
        sensor: str | None = typer.Option(None, "--sensor", help="Sensor name (default: the file's camera)."),
        iso: float | None = typer.Option(None, "--iso", help="ISO (default: the file's)."),
        tile: int = typer.Option(512, "--tile", help="Tile side in (packed) pixels; 0 = whole image at once."),
        overlap: int = typer.Option(32, "--overlap", help="Overlap of neighbouring tiles, pixels."),
        unknown_sensor: str | None = typer.Option(
            None, "--unknown-sensor", help="error | average | iso-only (default: the model's policy)."
        ),
        preview: Path | None = typer.Option(None, "--preview", help="RAW input: also write an sRGB preview PNG."),
        bits: int = typer.Option(8, "--bits", help="Bit depth of PNG/TIFF output for sRGB input (8 or 16)."),
        precision: str = typer.Option(None, "--precision", help=PRECISION_HELP),
        device: str = typer.Option("cpu", "--device", help="Torch device."),
        profile: str | None = typer.Option(
            None,
            "--profile",
            help="Noise profile (name or YAML, e.g. from `rawadapt calibrate`) for noise-conditioned models; "
            "needs an ISO (default: the built-in or imported profile of the file's camera, else an estimate "
            "from the image).",
        ),
        json_: bool = typer.Option(False, "--json", help="Print one JSON object (last line of stdout)."),
    ) -> None:
        """Denoise INPUT with the model in RUN and write OUTPUT (never the input)."""
        from rawadapt.eval.denoise_file import denoise_file

        if tile < 0 or overlap < 0:
            raise ConfigError("--tile and --overlap must be >= 0")
        precision = use_precision(precision)
        res = denoise_file(
            run,
            input,
            output,
            sensor=sensor,
            iso=iso,
            tile=tile or None,
            overlap=overlap,
            unknown_sensor=unknown_sensor,
            preview=preview,
            bits=bits,
            precision=precision,
            device=device,
            profile=profile,
        )
        if res["noise_source"] != "not used":  # where the noise parameters came from: one line, also with --json
            line = res["noise"]
            values = f" (a {line[0]:.3g}, b {line[1]:.3g})" if line else ""
            info(f"noise: {res['noise_source']}: {res['noise_detail']}{values}")
        if json_:
            print_json(res)
            return
        info(
            f"sensor: {res['sensor'] or '-'} ({res['sensor_source']}); ISO: "
            f"{res['iso'] if res['iso'] is not None else '-'} ({res['iso_source']}); precision {res['precision']}"
        )
        typer.echo(
            f"wrote {res['output']} ({res['space']}, {res['seconds']:.2f} s)"
            + (f"; preview {res['preview']}" if res["preview"] else "")
        )
