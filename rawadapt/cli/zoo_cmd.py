"""``rawadapt zoo ...``: the pretrained models shipped with the package.

``zoo list`` shows them (and the recipes ``zoo build`` trains), ``zoo build NAME`` trains a
recipe into a run folder (resumable), ``zoo export RUN NAME`` adds a finished run to the zoo
(float16 weights, SHA-256 in ``zoo.json``), ``zoo verify`` re-hashes every model. Use a model
as ``zoo:NAME`` wherever a run folder is accepted (``denoise``, ``adapt``, ``evaluate``,
``train --init``). ``$RAWADAPT_ZOO_DIR`` replaces the package's zoo folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rawadapt.cli.common import info, print_json

zoo_app = typer.Typer(
    help="Pretrained models shipped with rawadapt: list, build (train a recipe), export, verify.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _params(n: Any) -> str:
    return f"{n / 1e6:.2f} M" if isinstance(n, int) else "-"


def _psnr(entry: dict[str, Any]) -> str:
    rows = entry.get("psnr") or {}
    return ", ".join(f"{k} {v:.2f}" for k, v in rows.items() if isinstance(v, (int, float))) or "-"


def _trained_on(entry: dict[str, Any]) -> str:
    t = entry.get("trained_on") or {}
    sensors = t.get("sensors") or []
    return f"{t.get('data', '?')} ({len(sensors)} sensors)" if sensors else str(t.get("data", "-"))


def zoo_listing() -> dict[str, Any]:
    """The index's models and the shipped recipes, JSON-friendly."""
    from rawadapt.models.zoo import entries, zoo_root
    from rawadapt.train.recipes import recipe_names

    return {"root": str(zoo_root()), "models": entries(), "recipes": recipe_names()}


@zoo_app.command("list")
def list_cmd(json_: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """The shipped models: name, space, backbone, training data, size, benchmark PSNR."""
    listing = zoo_listing()
    if json_:
        print_json(listing)
        return
    models = listing["models"]
    if not models:
        typer.echo(f"no models in the zoo ({listing['root']})")
    else:
        typer.echo(
            f"{'name':<18} {'space':<5} {'backbone':<10} {'trained on':<22} {'params':>8} {'size':>8}  PSNR (dB)"
        )
        for e in models:
            typer.echo(
                f"{e['name']:<18} {e.get('space', '-'):<5} {e.get('arch', '-'):<10} {_trained_on(e):<22} "
                f"{_params(e.get('params')):>8} {e['size_bytes'] / 1e6:>6.2f} MB  {_psnr(e)}"
            )
        typer.echo("use one as zoo:NAME, e.g. rawadapt denoise zoo:NAME shot.dng -o out.dng")
    if listing["recipes"]:
        typer.echo(f"recipes (rawadapt zoo build NAME): {', '.join(listing['recipes'])}")


@zoo_app.command("build")
def build_cmd(
    name: str = typer.Argument(..., help="A recipe name (see `rawadapt zoo list`) or a recipe YAML file."),
    out: Path = typer.Option(
        None, "--out", "-o", help="Run folder (default runs/zoo/NAME); resumed if it holds the run."
    ),
    iters: int = typer.Option(None, "--iters", help="Override the recipe's iterations (trial runs)."),
    threads: int = typer.Option(None, "--threads", help="Torch CPU threads."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Plain log lines instead of a progress bar."),
    json_: bool = typer.Option(False, "--json", help="Last stdout line: one JSON object."),
) -> None:
    """Train a zoo recipe through the normal training API (run again to resume)."""
    from rawadapt.errors import ConfigError
    from rawadapt.train.engine import TrainingInterrupted
    from rawadapt.train.zoo_build import build_recipe

    if (iters is not None and iters < 0) or (threads is not None and threads < 1):
        raise ConfigError("--iters must be >= 0 and --threads >= 1")
    try:
        res = build_recipe(name, out, iters=iters, threads=threads, progress=not no_progress)
    except TrainingInterrupted as exc:
        info(f"interrupted: {exc.message}; run the same command again to resume")
        raise typer.Exit(130) from None
    m = res["metrics"]
    psnr, noisy = m.get("psnr", float("nan")), m.get("psnr_noisy", float("nan"))
    info(
        f"{'resumed and finished' if res['resumed'] else 'finished'} {res['recipe']}: test PSNR "
        f"{psnr:.2f} dB (noisy {noisy:.2f}) over {m.get('n_test')} images"
    )
    info(f"run folder: {res['run']}; add it to the zoo with: rawadapt zoo export {res['run']} {res['recipe']}")
    if json_:
        print_json(
            {k: v for k, v in res.items() if k != "metrics"} | {"psnr": m.get("psnr"), "n_test": m.get("n_test")}
        )


def _parse_psnr(values: list[str] | None) -> dict[str, float]:
    from rawadapt.errors import ConfigError

    out: dict[str, float] = {}
    for v in values or []:
        key, sep, num = v.rpartition("=")
        try:
            if not sep or not key:
                raise ValueError
            out[key.strip()] = float(num)
        except ValueError:
            raise ConfigError(f"--psnr takes BENCHMARK=DB (e.g. synth/SonyA7S2=43.1), got {v!r}") from None
    return out


@zoo_app.command("export")
def export_cmd(
    run: Path = typer.Argument(..., help="A finished run folder (e.g. from `rawadapt zoo build`)."),
    name: str = typer.Argument(..., help="Zoo model name (replaces a model of that name)."),
    description: str = typer.Option(None, "--description", help="One line for `zoo list` (default: the recipe's)."),
    psnr: list[str] = typer.Option(None, "--psnr", help="Record a benchmark result BENCHMARK=DB (repeatable)."),
    json_: bool = typer.Option(False, "--json", help="Print the new index entry as one JSON object."),
) -> None:
    """Add a finished run to the zoo: float16 weights, model.json, recipe, log; zoo.json updated."""
    from rawadapt.models.zoo import model_dir
    from rawadapt.train.zoo_build import export_run

    entry = export_run(run, name, description=description, psnr=_parse_psnr(psnr))
    if json_:
        print_json(entry)
        return
    typer.echo(
        f"exported {name}: {entry['params'] / 1e6:.2f} M parameters, {entry['dtype']}, "
        f"{entry['size_bytes'] / 1e6:.2f} MB, sha256 {entry['sha256'][:16]}... -> {model_dir(name)}"
    )


@zoo_app.command("verify")
def verify_cmd(json_: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Re-hash every zoo model against zoo.json (and check the size limits); exit 2 on a failure."""
    from rawadapt.errors import CheckpointError
    from rawadapt.models.zoo import verify_all, zoo_root

    rows = verify_all()
    bad = [r["name"] for r in rows if not r["ok"]]
    if json_:
        print_json({"root": str(zoo_root()), "models": rows, "ok": not bad})
    else:
        for r in rows:
            typer.echo(f"{r['name']:<18} {'ok' if r['ok'] else 'FAILED: ' + str(r['error'])}")
        if not rows:
            typer.echo(f"no models in the zoo ({zoo_root()})")
    if bad:
        raise CheckpointError(f"{len(bad)} zoo model(s) failed verification: {', '.join(bad)}")


def register(app: typer.Typer) -> None:
    """Attach ``rawadapt zoo`` to the main app."""
    app.add_typer(zoo_app, name="zoo")
