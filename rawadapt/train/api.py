"""The training API used by the CLI, the benchmarks and the other methods (LAN pretrains here).

``run_training(config, run_dir)`` runs a strategy end to end and leaves a self-describing run
folder::

    RUN/config.yaml          the full resolved config (written before the first iteration)
    RUN/training_state.pt    resumable state (weights_only-loadable; see rawadapt.train.engine)
    RUN/model.safetensors    weights (latest checkpoint, then the final model)
    RUN/model.json           architecture, sensor vocabulary, ISO normalisation, strategy, target...
    RUN/log.csv              training log (step, stage, loss, lr, step/data time, stage extras)
    RUN/eval.csv             periodic test-set validation (report only)
    RUN/metrics.json         final test metrics (per image, per sensor, mean) and timings
    RUN/tb/                  TensorBoard events (when tensorboard is installed)

``evaluate_run(run_dir)`` re-evaluates a finished run on a split recreated from its config.

One run at a time per folder: the main process holds ``RUN/.lock`` (``fcntl.flock``, its PID
inside) for the whole run; a second ``train --out RUN`` or ``--resume`` of it is refused with the
holder's PID. The lock file and leftover temporaries of a killed atomic write (``.*.tmp-*``,
removed when the lock is taken) never make a folder "not empty". A folder with ``config.yaml``
but no ``training_state.pt`` (killed before the first checkpoint) resumes from step 0.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rawadapt.errors import CheckpointError, ConfigError
from rawadapt.models.checkpoint import load_model, load_training_state, save_model
from rawadapt.models.registry import build_model
from rawadapt.models.zoo import resolve_run
from rawadapt.train.config import TrainConfig, config_diff, load_config
from rawadapt.train.context import TrainContext
from rawadapt.train.datasets import open_run_dataset, prepare_data
from rawadapt.train.distributed import init_from_env
from rawadapt.train.engine import STATE_NAME, Engine
from rawadapt.train.runlog import RunLogger
from rawadapt.train.step import evaluate
from rawadapt.train.strategies import get_strategy
from rawadapt.utils.atomic import remove_stale_temporaries, write_json, write_text
from rawadapt.utils.compute import compute_record, precision_scope
from rawadapt.utils.lock import LOCK_NAME, FolderLock

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from rawadapt.data.base import PairDataset
    from rawadapt.data.sample import Sample
    from rawadapt.models.base import Denoiser
    from rawadapt.train.context import TrainContext, TrainData

CONFIG_NAME = "config.yaml"
METRICS_NAME = "metrics.json"

#: settings that may change on --resume: they do not influence the weights
RESUME_MUTABLE = (
    "device",
    "threads",
    "precision",
    "eval_every",
    "eval_images",
    "log_every",
    "checkpoint_every",
    "tensorboard",
    "data.eval_tile",
)

__all__ = ["run_training", "evaluate_run", "load_config", "build_run_model", "CONFIG_NAME", "METRICS_NAME"]


# -- helpers ------------------------------------------------------------------------------------
def _device(name: str) -> torch.device:
    import torch

    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"invalid device {name!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return dev


def build_run_model(config: TrainConfig, data: TrainData) -> Denoiser:
    """The run's model: ``config.model`` plus channels from the data's space and the sensor
    vocabulary; initialised from ``config.seed`` (same seed = same initial weights)."""
    import torch

    torch.manual_seed(config.seed)
    kwargs = {
        "arch": config.model.arch,
        **config.model.kwargs,
        "in_channels": 4 if data.space == "raw" else 3,
        "sensors": list(data.sensors),
    }
    try:
        model = build_model(kwargs)
    except ValueError as exc:
        raise ConfigError(f"invalid model settings for {config.model.arch!r}: {exc}") from None
    if config.model.identity_init:
        identity_init(model, scale=config.model.last_layer_scale)
    # channels-last weights match the channels-last activations of the compute policy
    # (rawadapt.utils.compute): no layout conversion in the convolutions' backward pass
    return model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def identity_init(model: Denoiser, scale: float = 0.0) -> bool:
    """Scale the last layer of a residual model by ``scale`` (0: output = input exactly; small:
    near the identity with gradients reaching every layer) and zero its bias; returns whether it
    applied (models without ``last_layer()`` or with ``residual=False`` are left alone)."""
    import torch

    last = getattr(model, "last_layer", None)
    if last is None or not getattr(model, "residual", True):
        return False
    layer = last()
    with torch.no_grad():
        for name, p in layer.named_parameters(recurse=False):
            if name == "bias" or scale == 0.0:
                p.zero_()
            else:
                p.mul_(scale)
    return True


def _check_run_dir(run: Path, resume: bool) -> None:
    if resume:
        # config.yaml without a state: killed before the first checkpoint; resumes from step 0
        if not (run / STATE_NAME).is_file() and not (run / CONFIG_NAME).is_file():
            raise CheckpointError(
                f"nothing to resume: no {STATE_NAME} or {CONFIG_NAME} in this folder (start a "
                "new run without --resume)",
                run,
            )
        return
    # the lock file is ours (or a killed run's): it does not make the folder "not empty"
    if run.exists() and (not run.is_dir() or any(p.name != LOCK_NAME for p in run.iterdir())):
        raise ConfigError(
            "run folder already exists and is not empty; continue it with --resume or "
            "choose another --out (nothing is overwritten)",
            run,
        )


@contextlib.contextmanager
def _run_folder(run: Path, *, resume: bool, main: bool) -> Iterator[None]:
    """Hold the run folder's lock (main process only), clean stale temporaries, check the folder.

    A folder this call created is removed again when the run fails before writing anything.
    """
    if not main:
        _check_run_dir(run, resume)
        yield
        return
    if (resume or run.exists()) and not run.is_dir():
        _check_run_dir(run, resume)  # nothing to resume / not a folder
    created = not run.exists()
    lock = FolderLock(run)
    lock.acquire()
    try:
        remove_stale_temporaries(run)
        _check_run_dir(run, resume)
        yield
    finally:
        lock.release()
        if created:
            with contextlib.suppress(OSError):
                run.rmdir()  # only when still empty


def _check_resume_config(run: Path, config: TrainConfig) -> None:
    saved = load_config(run / CONFIG_NAME)
    diff = [k for k in config_diff(saved, config) if k not in RESUME_MUTABLE]
    if diff:
        raise ConfigError(
            f"--resume must use the run's own settings; these differ from {CONFIG_NAME}: {', '.join(diff)}", run
        )


def held_out_samples(data: TrainData, limit: int | None = None) -> list[Sample]:
    """The first ``limit`` (all when None) test samples."""
    n = len(data.test) if limit is None else min(limit, len(data.test))
    return [data.test[i] for i in range(n)]


def _periodic_eval(ctx: TrainContext, limit: int | None) -> dict[str, Any]:

    samples = held_out_samples(ctx.data, limit)
    return evaluate(ctx.model, samples, tile=ctx.config.data.eval_tile, device=ctx.device).summary()


# -- training -----------------------------------------------------------------------------------
def run_training(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    dataset: PairDataset | None = None,
    stop_after: int | None = None,
    on_step: Callable[[TrainContext, dict[str, Any]], None] | None = None,
    rank: int = 0,
    world_size: int = 1,
    comm: Any = None,
) -> dict[str, Any]:
    """Train a model with ``config.strategy`` into ``run_dir``; return the final metrics.

    Parameters
    ----------
    config
        The full run configuration (see :class:`~rawadapt.train.config.TrainConfig`).
    run_dir
        The run folder. Must not exist (or be empty) unless ``resume``.
    resume
        Continue an interrupted run exactly. ``config`` must equal ``RUN/config.yaml`` except for
        settings that do not influence the weights (device, threads, logging/eval cadence). A run
        killed before its first checkpoint (``config.yaml``, no state) starts again from step 0.
    progress
        Show a tqdm progress bar on stderr (else one plain line per logged step).
    dataset
        Use this dataset instead of opening ``config.data.data`` (tests, benchmarks).
    stop_after
        Stop after this many global iterations as if interrupted (saves the state and raises
        :class:`~rawadapt.train.engine.TrainingInterrupted`); a test hook.
    on_step
        Called after every iteration with ``(ctx, values)``.
    rank, world_size
        Data-parallel position; only rank 0 writes files.
    comm
        Collectives for data-parallel training (:class:`rawadapt.train.adl.Comm`). When None and
        the process was launched by ``torchrun`` (``WORLD_SIZE`` > 1), the process group is
        initialised here (gloo on CPU, nccl on GPU) and rank/world size come from it.

    Returns
    -------
    dict
        What ``metrics.json`` holds: ``psnr``, ``ssim``, ``psnr_noisy``, ``ssim_noisy`` (per-image
        means over the test set), ``per_sensor``, ``images``, the split, iterations, timings and
        each stage's summary.

    Raises
    ------
    ConfigError
        Bad settings, existing run folder without ``resume``, or resume with changed settings.
    CheckpointError
        ``resume`` without a saved state or config, or a state that does not fit.
    RunLockedError
        Another process is training in ``run_dir`` (its PID is in the message).
    NonFiniteError
        Training diverged (NaN/Inf loss).
    TrainingInterrupted
        Ctrl-C or ``stop_after``: the state is saved; call again with ``resume=True``.
    """
    if comm is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        comm = init_from_env()
    if comm is not None:
        rank, world_size = comm.rank, comm.world_size
    run = Path(run_dir)
    with _run_folder(run, resume=resume, main=rank == 0), precision_scope(config.precision):
        return _run_training(
            config,
            run,
            resume=resume,
            progress=progress,
            dataset=dataset,
            stop_after=stop_after,
            on_step=on_step,
            rank=rank,
            world_size=world_size,
            comm=comm,
        )


def _run_training(
    config: TrainConfig,
    run: Path,
    *,
    resume: bool,
    progress: bool,
    dataset: PairDataset | None,
    stop_after: int | None,
    on_step: Callable[[TrainContext, dict[str, Any]], None] | None,
    rank: int,
    world_size: int,
    comm: Any,
) -> dict[str, Any]:
    """The body of :func:`run_training`, run while the folder is locked and checked."""
    import torch

    is_main = rank == 0
    state = None
    if resume:
        _check_resume_config(run, config)
        if (run / STATE_NAME).is_file():
            state = load_training_state(run / STATE_NAME)
    strategy = get_strategy(config.strategy)
    device = _device(config.device)
    prev_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    logger: RunLogger | None = None
    try:
        t_setup = time.perf_counter()
        data = prepare_data(config, dataset)
        if strategy.prepare is not None:
            data = strategy.prepare(config, data)
        model = build_run_model(config, data)
        init_info = None
        if config.init is not None and state is None:  # on resume the state holds the weights
            from rawadapt.train.init import apply_init

            init_info = apply_init(model, config.init)
        model = model.to(device)
        stages = strategy.build(config, data)
        if is_main:
            run.mkdir(parents=True, exist_ok=True)
            write_text(run / CONFIG_NAME, config.to_yaml())
        total = sum(s.iters for s in stages)
        resume_step = int(state["global_step"]) if state is not None else (0 if resume else None)
        logger = RunLogger(
            run,
            total=total,
            enabled=is_main,
            progress=progress,
            tensorboard=config.tensorboard,
            resume_step=resume_step,
        )
        ctx = TrainContext(
            config=config,
            model=model,
            data=data,
            device=device,
            run_dir=run,
            logger=logger,
            rank=rank,
            world_size=world_size,
        )
        if comm is not None and world_size > 1:
            ctx.extra["comm"] = comm
            comm.broadcast_parameters(model)  # every rank starts from rank 0's weights
        compute = compute_record(config.precision, device)
        logger.message(
            f"compute: {compute['precision']} ({compute['precision_requested']}), channels-last; "
            f"{compute['cpu']} [{' '.join(compute['cpu_flags'])}]"
        )
        if state is not None:
            _check_resume_precision(run, compute["precision"], logger)
        if init_info is not None:
            logger.message(
                f"init: weights of {config.init} ({init_info['arch']}"
                + (f"; {len(init_info['remapped'])} modulation inputs remapped" if init_info["remapped"] else "")
                + ")"
            )
        extra = {
            "strategy": config.strategy,
            "target": data.target,
            "train_sensors": sorted(data.sources),
            "data": config.data.data,
            "seed": config.seed,
            "compute": compute,
        }
        if config.init is not None:
            extra["init"] = config.init
        engine = Engine(ctx, stages, stop_after=stop_after, on_step=on_step, evaluate=_periodic_eval, model_extra=extra)
        point = engine.resume_point(state) if state is not None else None
        if point is None:
            engine.save(0, 0)  # a resumable state exists from the very start
        setup_seconds = time.perf_counter() - t_setup
        summaries = engine.run(point)
        logger.close()

        t_eval = time.perf_counter()
        samples = held_out_samples(data)
        res = evaluate(model, samples, tile=config.data.eval_tile, device=device)
        eval_seconds = time.perf_counter() - t_eval
        if not samples:
            logger.message("warning: empty test set; no test metrics")
        metrics = _metrics(config, data, res, engine, summaries, setup_seconds, eval_seconds)
        metrics["world_size"] = world_size  # data-parallel processes that trained it
        metrics["compute"] = compute
        if is_main:
            save_model(
                run,
                model,
                extra={
                    **extra,
                    "complete": True,
                    "global_step": ctx.global_step,
                    "train_config": config.model_dump(mode="json"),
                },
            )
            write_json(run / METRICS_NAME, metrics)
        return metrics
    finally:
        if logger is not None:
            logger.close()
        if config.threads is not None:
            torch.set_num_threads(prev_threads)


def _check_resume_precision(run: Path, precision: str, logger: Any) -> None:
    """Warn when a resumed run computes in another precision than it started with (``auto``
    resolved on another CPU): it continues, but is no longer bit-identical to an uninterrupted run."""
    try:
        before = json.loads((run / "model.json").read_text(encoding="utf-8")).get("compute", {}).get("precision")
    except (OSError, ValueError, AttributeError):
        return
    if before and before != precision:
        logger.message(
            f"warning: {run}: started in {before}, resumes in {precision} (another CPU?); "
            f"pass --precision {before} for an exact resume"
        )


def _metrics(
    config: TrainConfig,
    data: TrainData,
    res: Any,
    engine: Engine,
    summaries: dict[str, Any],
    setup_seconds: float,
    eval_seconds: float,
) -> dict[str, Any]:
    full = res.to_dict()
    iters = {s.name: s.iters for s in engine.stages}
    total = sum(iters.values())
    train_s = engine.train_seconds
    return {
        "strategy": config.strategy,
        "data": config.data.data,
        "space": data.space,
        "target": data.target,
        "seed": config.seed,
        "arch": config.model.arch,
        "sensors": list(data.sensors),
        "metric_note": (
            "per-image PSNR (dB, data range 1) and SSIM averaged over test images; "
            + ("packed RAW planes in [0, 1]" if data.space == "raw" else "sRGB in [0, 1]")
        ),
        "n_test": full["n"],
        "psnr": full["psnr"],
        "ssim": full["ssim"],
        "psnr_noisy": full["psnr_noisy"],
        "ssim_noisy": full["ssim_noisy"],
        "psnr_gain": full["psnr"] - full["psnr_noisy"] if full["n"] else math.nan,
        "per_sensor": full["per_sensor"],
        "images": full["images"],
        "split": data.summary(),
        "iterations": {"total": total, "stages": iters},
        "timings": {
            "setup_seconds": setup_seconds,
            "train_seconds": train_s,
            "eval_seconds": eval_seconds,
            "seconds_per_iter": train_s / total if total else math.nan,
        },
        "stages": summaries,
    }


# -- evaluation of a finished run -----------------------------------------------------------------
SPLITS = ("test", "target", "source", "all")


def run_config(run: Path) -> TrainConfig:
    """The training config of a run folder: ``config.yaml``, or the ``config`` of the
    ``recipe.yaml`` beside a zoo model's weights.

    Raises
    ------
    CheckpointError
        Neither file is there.
    ConfigError
        The file is invalid.
    """
    if (run / CONFIG_NAME).is_file():
        return load_config(run / CONFIG_NAME)
    from rawadapt.train.recipes import RECIPE_FILE, load_recipe

    if (run / RECIPE_FILE).is_file():
        return load_recipe(run / RECIPE_FILE).config
    raise CheckpointError(f"not a training run folder (no {CONFIG_NAME})", run)


def split_samples(data: TrainData, split: str) -> list[Sample]:
    """Samples of a split role: ``test`` (target test, or pretrain sensors' test records),
    ``target`` (the target pool), ``source`` (all source training records), ``all`` (the whole
    dataset)."""
    if split == "test":
        ds: Sequence[Any] = data.test
    elif split == "target":
        if data.target_pool is None:
            raise ConfigError("this run has no target pool (a pretrain run); use --split test|source|all")
        ds = data.target_pool
    elif split == "source":
        return [s for d in data.sources.values() for s in d]
    elif split == "all":
        assert data.dataset is not None
        ds = data.dataset
    else:
        raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return list(ds)


def evaluate_run(
    run_dir: str | Path,
    *,
    data: str | None = None,
    split: str = "test",
    tile: int | None = None,
    dataset: PairDataset | None = None,
    device: str = "cpu",
    unknown_sensor: str | None = None,
) -> dict[str, Any]:
    """Evaluate a run's model on a split recreated from ``RUN/config.yaml`` and its seed.

    Parameters
    ----------
    run_dir
        A run folder written by :func:`run_training`, or ``zoo:NAME`` (a shipped model: its
        ``recipe.yaml`` holds the run's config).
    data
        Dataset spec overriding the config's (e.g. the same benchmark at another location).
    split
        ``test``, ``target``, ``source`` or ``all`` (every record of the dataset, no split).
    tile
        Tiled inference (default: the config's ``eval_tile``).
    dataset
        An already opened dataset (tests).
    device
        Torch device.
    unknown_sensor
        Override the model's unknown-sensor policy (``error``, ``average``, ``iso-only``).

    Returns
    -------
    dict
        ``{"run", "split", "data", "n", "psnr", "ssim", "psnr_noisy", "ssim_noisy", "per_sensor", "images"}``.
    """

    run = resolve_run(run_dir)  # zoo:NAME -> the shipped model's folder (hash-checked)
    config = run_config(run)
    if data is not None:
        config = config.model_copy(update={"data": config.data.model_copy(update={"data": data})})
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    ds = open_run_dataset(config) if dataset is None else dataset
    if split == "all":
        samples = list(ds)
    else:
        samples = split_samples(prepare_data(config, ds), split)
    model, _meta = load_model(run, device=device)
    if unknown_sensor is not None:
        try:
            model.set_unknown_sensor_policy(unknown_sensor)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    res = evaluate(model, samples, tile=tile if tile is not None else config.data.eval_tile, device=device)
    full = res.to_dict()
    return {"run": str(run), "split": split, "data": config.data.data, **full}
