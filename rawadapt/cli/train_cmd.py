"""``rawadapt train`` and ``rawadapt evaluate``.

Settings come from (later wins): defaults, ``--config FILE`` (or the run's own ``config.yaml``
with ``--resume``), then the command-line flags. The full resolved config is saved in the run
folder. With ``--json`` the LAST stdout line is one JSON object; human output goes to stderr.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from rawadapt.cli.common import (
    PRECISION_HELP,
    info,
    print_json,
    split_list,
    use_precision,
)


def _overrides(**flags: Any) -> dict[str, Any]:
    """Nested config overrides from the flags that were given (None = not given)."""
    out: dict[str, Any] = {}
    data_keys = {"data", "target", "target_pairs", "patch", "batch", "eval_tile"}
    for key, value in flags.items():
        if value is None:
            continue
        if key in data_keys:
            out.setdefault("data", {})[key] = value
        elif key == "sources":
            out.setdefault("data", {})["sources"] = split_list(value)
        elif key == "arch":
            out.setdefault("model", {})["arch"] = value
        elif key == "width":
            out.setdefault("model", {}).setdefault("kwargs", {})["width"] = value
        elif key == "lr":
            out.setdefault("optim", {})["lr"] = value
        elif key == "add_harmful":
            out.setdefault("data", {})["harmful"] = split_list(value)
        elif key in ("no_iso", "no_sensor"):
            if value:
                out.setdefault("model", {}).setdefault("kwargs", {})["use_iso" if key == "no_iso" else "use_sensor"] = (
                    False
                )
        elif key.startswith("adl_"):
            out.setdefault("adl", {})[key[4:]] = value
        else:
            out[key] = value
    return out


def _print_metrics(metrics: dict[str, Any], title: str, *, to_stdout: bool) -> None:
    """A per-sensor table: on stdout, or on stderr when stdout is reserved for --json."""

    def emit(line: str) -> None:
        if to_stdout:
            typer.echo(line)
        else:
            info(line)

    n = metrics.get("n_test", metrics.get("n", 0))
    emit(f"{title} ({n} images; per-image mean, data range 1):")
    emit(f"  {'sensor':<16} {'n':>4} {'PSNR':>8} {'noisy':>8} {'SSIM':>7} {'noisy':>7}")
    rows = dict(metrics.get("per_sensor") or {})
    rows["(all)"] = {k: metrics.get(k) for k in ("psnr", "psnr_noisy", "ssim", "ssim_noisy")} | {"n": n}
    for sensor, m in rows.items():

        def f(v: Any, w: int, p: int) -> str:
            return f"{v:>{w}.{p}f}" if isinstance(v, float) else f"{'-':>{w}}"

        emit(
            f"  {sensor:<16} {m.get('n', ''):>4} {f(m.get('psnr'), 8, 2)} {f(m.get('psnr_noisy'), 8, 2)} "
            f"{f(m.get('ssim'), 7, 4)} {f(m.get('ssim_noisy'), 7, 4)}"
        )


def _print_acceptance(summary: dict[str, Any]) -> None:
    """ADL's per-source-domain acceptance rates (stderr)."""
    info(
        f"ADL accepted {summary.get('accepted')} of {summary.get('iterations')} source batches "
        f"({100 * summary.get('acceptance_rate', 0):.1f} %); per source domain:"
    )
    for d, v in sorted(summary.get("domains", {}).items(), key=lambda kv: -kv[1]["acceptance_rate"]):
        info(f"  {d:<16} {100 * v['acceptance_rate']:5.1f} %  of {v['tried']} tried")


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        strategy: str = typer.Argument(
            None,
            help="pretrain | target-only | finetune | joint | adl (default: the config's; optional with --resume).",
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Run folder (must not exist unless --resume)."),
        data: str = typer.Option(None, "--data", help="Dataset: synth, synth-srgb, ADAPTER:PATH or a folder."),
        target: str = typer.Option(None, "--target", help="Target sensor (held out)."),
        target_pairs: int = typer.Option(None, "--target-pairs", help="Target pairs to train on (default 20)."),
        sources: str = typer.Option(None, "--sources", help="Comma-separated source sensors (default: all others)."),
        arch: str = typer.Option(None, "--model", help="unet | dncnn | restormer."),
        width: int = typer.Option(None, "--width", help="Model width (model.kwargs.width)."),
        iters: int = typer.Option(None, "--iters", help="Iterations of the main stage."),
        pretrain_iters: int = typer.Option(None, "--pretrain-iters", help="Iterations of the pretraining stage."),
        finetune_iters: int = typer.Option(None, "--finetune-iters", help="Iterations of the fine-tuning stage."),
        patch: int = typer.Option(None, "--patch", help="Patch side (packed pixels for RAW)."),
        batch: int = typer.Option(None, "--batch", help="Patches per batch."),
        lr: float = typer.Option(None, "--lr", help="Peak learning rate."),
        seed: int = typer.Option(None, "--seed", help="Random seed."),
        device: str = typer.Option(None, "--device", help="cpu (default) or cuda."),
        threads: int = typer.Option(None, "--threads", help="Torch CPU threads."),
        precision: str = typer.Option(None, "--precision", help=PRECISION_HELP),
        eval_every: int = typer.Option(None, "--eval-every", help="Periodic test-set validation (0 = end only)."),
        add_harmful: str = typer.Option(
            None, "--add-harmful", help="Mix harmful source domains in: harmful1,harmful2 (Table 5)."
        ),
        no_iso: bool = typer.Option(None, "--no-iso", help="Ablation: U-Net modulation without ISO."),
        no_sensor: bool = typer.Option(None, "--no-sensor", help="Ablation: U-Net modulation without sensor type."),
        criterion: str = typer.Option(
            None, "--criterion", help="ADL acceptance: queue (paper) | paired | none (no ADL)."
        ),
        on_reject: str = typer.Option(
            None,
            "--on-reject",
            help="ADL: restore (paper: a rejected iteration is spent) | target-step (a plain step on T_train instead).",
        ),
        queue_size: int = typer.Option(None, "--queue-size", help="ADL: size M of the PSNR priority queue."),
        validation: str = typer.Option(None, "--validation", help="ADL: dynamic (paper) | fixed (ablation)."),
        domain_sampling: str = typer.Option(
            None, "--domain-sampling", help="ADL: uniform | round-robin | score (source domain choice)."
        ),
        val_crop: int = typer.Option(None, "--val-crop", help="ADL: side of the validation crops."),
        restore_optimizer: bool = typer.Option(
            None, "--restore-optimizer/--restore-params-only", help="ADL: what a reject restores."
        ),
        config: Path = typer.Option(None, "--config", help="YAML config file (flags override it)."),
        init: str = typer.Option(
            None,
            "--init",
            help="Start from a trained model's weights: run folder, .safetensors or zoo:NAME "
            "(its architecture settings become the run's model).",
        ),
        resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run exactly."),
        as_json: bool = typer.Option(False, "--json", help="Last stdout line: one JSON object of final metrics."),
        no_progress: bool = typer.Option(False, "--no-progress", help="Plain log lines instead of a progress bar."),
    ) -> None:
        """Train a denoiser with a strategy; writes a self-describing run folder."""
        from rawadapt.train.api import CONFIG_NAME, run_training
        from rawadapt.train.config import TrainConfig, load_config, with_overrides
        from rawadapt.train.engine import TrainingInterrupted

        if config is not None:
            base = load_config(config)
        elif resume and (out / CONFIG_NAME).is_file():
            base = load_config(out / CONFIG_NAME)
        else:
            base = TrainConfig()
            if strategy is None and not resume:
                raise typer.BadParameter("give a STRATEGY or a --config file", param_hint="STRATEGY")
        flags = _overrides(
            strategy=strategy,
            data=data,
            target=target,
            target_pairs=target_pairs,
            sources=sources,
            arch=arch,
            width=width,
            iters=iters,
            pretrain_iters=pretrain_iters,
            finetune_iters=finetune_iters,
            patch=patch,
            batch=batch,
            lr=lr,
            seed=seed,
            device=device,
            threads=threads,
            precision=precision,
            eval_every=eval_every,
            add_harmful=add_harmful,
            no_iso=no_iso,
            no_sensor=no_sensor,
            adl_criterion=criterion,
            adl_on_reject=on_reject,
            adl_queue_size=queue_size,
            adl_validation=validation,
            adl_domain_sampling=domain_sampling,
            adl_val_crop=val_crop,
            adl_restore_optimizer=restore_optimizer,
        )
        if init is not None:
            from rawadapt.train.config import config_from_dict
            from rawadapt.train.init import init_model_settings

            # the network is the init model's (flags given explicitly still win, and are checked)
            raw = base.model_dump(mode="python")
            raw["model"] = {**raw["model"], **init_model_settings(init)}
            base = config_from_dict({**raw, "init": init}, source=config)
        cfg = with_overrides(base, flags, source=config) if flags else base
        try:
            metrics = run_training(cfg, out, resume=resume, progress=not no_progress)
        except TrainingInterrupted as exc:
            info(f"interrupted: {exc.message}")
            raise typer.Exit(130) from None
        if int(os.environ.get("RANK", "0")) != 0:
            return  # data-parallel: rank 0 reports
        title = f"{cfg.strategy} -> test set" + (f" of {metrics['target']}" if metrics.get("target") else "")
        _print_metrics(metrics, title, to_stdout=not as_json)
        info(f"run folder: {out}")
        if cfg.strategy == "adl" and metrics.get("stages", {}).get("adaptive"):
            _print_acceptance(metrics["stages"]["adaptive"])
        if as_json:
            out_json = {k: v for k, v in metrics.items() if k != "images"}
            valuation = out / "valuation.json"
            if valuation.is_file():
                import json

                out_json["valuation"] = json.loads(valuation.read_text())
                out_json["valuation"].pop("samples", None)  # per-sample detail stays in the file
            print_json(out_json)

    @app.command("evaluate")
    def evaluate(
        run: Path = typer.Argument(..., help="Run folder written by `rawadapt train`, or zoo:NAME."),
        data: str = typer.Option(None, "--data", help="Dataset (default: the run's)."),
        split: str = typer.Option("test", "--split", help="test | target | source | all."),
        tile: int = typer.Option(None, "--tile", help="Tiled inference with this tile side."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        precision: str = typer.Option(None, "--precision", help=PRECISION_HELP),
        unknown_sensor: str = typer.Option(
            None,
            "--unknown-sensor",
            help="Policy for sensors outside the model's vocabulary: error | average | iso-only.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Last stdout line: one JSON object."),
    ) -> None:
        """Per-sensor PSNR/SSIM of a run's model on a split recreated from its config and seed."""
        from rawadapt.train.api import evaluate_run

        use_precision(precision)
        res = evaluate_run(run, data=data, split=split, tile=tile, device=device, unknown_sensor=unknown_sensor)
        _print_metrics(res, f"{run} on {res['data']} [{split}]", to_stdout=not as_json)
        if as_json:
            print_json(res)
