"""``rawadapt demo`` (what ``make demo`` runs): the method working end to end on built-in data.

1. builds the ``synth`` benchmark if missing (progress bar; once per cache);
2. holds one sensor out (``--target``, default ``SonyA7S2``: the sensor of the ADL paper's
   single-sensor studies, Tables 4-5) with 20 target pairs;
3. runs the noisy reference, fine-tuning, ADL (``--paired``: also ADL with the paired
   criterion), and BM3D when the ``bm3d`` extra and its method are installed — through the
   ``crossval`` protocol machinery (:mod:`rawadapt.eval.protocols`), at the ``demo`` budget
   (:data:`rawadapt.eval.protocols.settings.EXTRA_BUDGETS`) on 8 of the sensor's 16 test images:
   under 10 minutes on 2 cores including the build (measured in docs/benchmarks.md);
4. prints the comparison table and the per-domain acceptance rates — read back from the run's
   ``results.json``, so every printed number is that run's — and writes ``report.html``.

Resumable: the output folder (default ``runs/demo``) keeps finished cells, so a second run
only re-reads them and redraws the tables and the report.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import typer

from rawadapt.cli.common import PRECISION_HELP

DEFAULT_TARGET = "SonyA7S2"
DEFAULT_OUT = "runs/demo"
DEMO_METHODS = ("noisy", "target-only", "finetune", "adl", "zoo-ft")
#: test images of the held-out sensor (of 16): BM3D's seconds per image keep the demo short
DEMO_TEST_PAIRS = 8


def demo_methods(*, paired: bool = False) -> list[str]:
    """:data:`DEMO_METHODS` (+ ``adl-paired``), plus ``bm3d`` when both the package and its method
    are installed."""
    from rawadapt.eval.protocols.plan import method_available

    out = list(DEMO_METHODS) + (["adl-paired"] if paired else [])
    if importlib.util.find_spec("bm3d") is not None:
        cls, _ = method_available("bm3d")
        if cls is not None:
            out.insert(1, "bm3d")
    return out


def format_table(result: dict[str, Any]) -> str:
    """The comparison table of a one-target crossval ``results.json``: PSNR, SSIM, gain over the
    noisy input, fit time and denoise time per image, one line per method."""
    from rawadapt.eval.results import fmt_seconds

    target = result["targets"][0]
    rows = {r["method"]: r for r in result["rows"] if r["target"] == target}
    lines = [f"{'method':<14} {'PSNR dB':>9} {'SSIM':>7} {'vs noisy':>9} {'fit s':>8} {'denoise s/img':>14}"]
    for m in result["methods"]:
        r = rows.get(m)
        if r is None or r.get("psnr") is None:
            lines.append(f"{m:<14} {'-':>9}")
            continue
        gain = r.get("psnr_gain")
        lines.append(
            f"{m:<14} {r['psnr']:>9.2f} {r['ssim']:>7.4f} "
            f"{'' if gain is None else f'{gain:+.2f}':>9} {fmt_seconds(r.get('fit_seconds')):>8} "
            f"{fmt_seconds(r.get('denoise_seconds_per_image')):>14}"
        )
    return "\n".join(lines)


def format_reading(result: dict[str, Any]) -> str:
    """What the table says, in words computed from its numbers: the winner and its margin, ADL
    against fine-tuning and target-only, the best learned method against BM3D, and what that
    means for a user choosing between them (one seed: a direction, not a significance)."""
    target = result["targets"][0]
    rows = {r["method"]: r for r in result["rows"] if r["target"] == target and r.get("psnr") is not None}
    if "noisy" not in rows or len(rows) < 2:
        return ""
    noisy = rows["noisy"]["psnr"]
    learned = {m: r["psnr"] for m, r in rows.items() if m not in ("noisy", "bm3d")}
    best = max(rows, key=lambda m: rows[m]["psnr"])
    lines = [f"- Best here: {best}, {rows[best]['psnr']:.2f} dB ({rows[best]['psnr'] - noisy:+.2f} dB over the input)."]

    def diff(a: str, b: str) -> str:
        return f"{rows[a]['psnr'] - rows[b]['psnr']:+.2f} dB"

    if "adl" in rows and "finetune" in rows:
        lines.append(
            f"- ADL vs fine-tuning: {diff('adl', 'finetune')} (the ADL paper: +1.2 dB on DSLRs, +2.1 dB on phones)."
        )
    if "adl" in rows and "target-only" in rows:
        lines.append(f"- ADL vs training on the target pairs alone: {diff('adl', 'target-only')}.")
    if "bm3d" in rows and learned:
        top = max(learned, key=lambda m: learned[m])
        lines.append(f"- Best learned method ({top}) vs BM3D: {diff(top, 'bm3d')}.")
    adl_wins = "adl" in rows and all(rows["adl"]["psnr"] >= v for m, v in learned.items() if m != "adl")
    top_learned = max(learned, key=lambda m: learned[m]) if learned else None
    if top_learned == "zoo-ft":
        advice = (
            "Start from the shipped zoo model and fine-tune it on your pairs (`rawadapt train target-only "
            "--init zoo:raw-unet-any`): its long pretraining on other sensors is worth more than any "
            "short run here; ADL's value at CPU scale is protection from harmful sources (BENCHMARKS.md)."
        )
    elif adl_wins:
        advice = (
            "ADL is the choice here: with ~20 pairs of the new sensor and other sensors' data it beats "
            "fine-tuning and the target alone."
        )
    else:
        top = max(learned, key=lambda m: learned[m]) if learned else best
        advice = (
            f"At this budget {top} is the better choice; ADL's rule keeps few source steps at CPU scale "
            "(its acceptance rates below), so its value is protection from harmful sources (BENCHMARKS.md, "
            "harmful data), not extra PSNR."
        )
    lines.append(
        f"- What it means: {advice} Without clean pairs of the new camera, use a zoo model as is "
        "(`rawadapt denoise zoo:NAME`) or adapt it per image with LAN (`rawadapt adapt`)."
    )
    lines.append("- One seed, one sensor: run `rawadapt bench crossval` for the three-seed tables with paired tests.")
    return "\n".join(lines)


def format_acceptance(result: dict[str, Any]) -> str:
    """Per ADL method, each source domain's acceptance rate (share of its candidate steps kept)."""
    lines = []
    for a in result.get("acceptance", []):
        rates = ", ".join(
            f"{d} {v:.2f}" for d, v in sorted(a["domains"].items(), key=lambda kv: -(kv[1] or 0)) if v is not None
        )
        lines.append(f"{a['method']:<12} {rates}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out: Path = typer.Option(Path(DEFAULT_OUT), "--out", "-o", help="Output folder (resumable)."),
        target: str = typer.Option(
            DEFAULT_TARGET,
            "--target",
            help="The held-out (new) sensor; one of the "
            "synth sensors (SonyA7S2, NikonD850, CanonEOS70D, CanonEOS700D, CanonEOS5D4, "
            "IP, GP, S6, N6, G4).",
        ),
        budget: str = typer.Option(
            "demo",
            "--budget",
            help="Iteration budget: demo (default, < 10 min on 2 cores), tiny (seconds, a smoke test), quick, default.",
        ),
        target_pairs: int = typer.Option(20, "--target-pairs", min=2, help="|T_adp| (the paper's 20)."),
        test_pairs: int = typer.Option(
            DEMO_TEST_PAIRS,
            "--test-pairs",
            min=0,
            help="Test images of the held-out sensor (0 = all 16; fewer keeps BM3D within the time budget).",
        ),
        paired: bool = typer.Option(
            False, "--paired", help="Also run ADL with the paired criterion (about +2 minutes at the demo budget)."
        ),
        threads: int = typer.Option(
            None,
            "--threads",
            min=1,
            help="Torch threads (default: torch's if they "
            "are faster right now, else 1; timed in ~1 s, see auto_threads).",
        ),
        precision: str = typer.Option(None, "--precision", help=PRECISION_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last stdout line."),
    ) -> None:
        """Build synth if needed, hold one sensor out, compare fine-tuning and ADL, write a report."""
        from rawadapt.cli.common import info, print_json, use_precision
        from rawadapt.data.registry import open_dataset
        from rawadapt.eval.protocols import BenchSettings, run_protocol
        from rawadapt.eval.protocols.plan import max_pool_pairs
        from rawadapt.eval.protocols.threads import auto_threads

        precision = use_precision(precision)
        info("rawadapt demo: the built-in multi-sensor benchmark 'synth' (built on first use)")
        ds = open_dataset("synth")
        if target not in ds.sensors:
            from rawadapt.errors import ConfigError

            raise ConfigError(f"unknown target sensor {target!r}; synth has: {', '.join(ds.sensors)}")
        pairs = min(target_pairs, max_pool_pairs(ds, target))
        methods = demo_methods(paired=paired)
        threads = threads or auto_threads()  # before training: 1 on a busy machine
        settings = BenchSettings(
            protocol="crossval",
            data="synth",
            out=str(out),
            targets=[target],
            methods=methods,
            budget=budget,
            seeds=[0],
            target_pairs=pairs,
            test_pairs=test_pairs or None,
            threads=threads,
            precision=precision,
            crops=2,
            report=True,
        )
        info(
            f"rawadapt demo: target {target} held out with {pairs} pairs; methods {', '.join(methods)}; "
            f"budget {budget}; {threads} thread(s); output {out}"
        )
        res = run_protocol(settings, progress=not as_json, dataset=ds)
        # Everything printed below is read back from the files the run wrote.
        result = json.loads((out / "results.json").read_text())
        if as_json:
            print_json(
                {
                    "out": str(out),
                    "target": target,
                    "report": res["report"],
                    "seconds": res["seconds"],
                    "computed": res["computed"],
                    "skipped": res["skipped"],
                    "rows": result["rows"],
                    "acceptance": result["acceptance"],
                }
            )
            return
        typer.echo("")
        typer.echo(
            f"Held-out sensor {target}: {pairs} target pairs, sources = the other 9 synth sensors; "
            f"{result['rows'][0]['n_images']} test images (scenes never trained on)."
        )
        typer.echo(result["metric_note"])
        typer.echo("")
        typer.echo(format_table(result))
        reading = format_reading(result)
        if reading:
            typer.echo("")
            typer.echo("Reading:")
            typer.echo(reading)
        acc = format_acceptance(result)
        if acc:
            typer.echo("")
            typer.echo("ADL acceptance rate per source domain (share of its candidate steps that were kept):")
            typer.echo(acc)
        typer.echo("")
        typer.echo(f"tables: {out / 'results.md'}")
        typer.echo(f"report: {res['report']}")
        typer.echo(f"({res['computed']} cells computed, {res['skipped']} reused, {res['seconds']:.0f} s)")
