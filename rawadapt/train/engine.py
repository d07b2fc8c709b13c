"""The training engine: runs a strategy's stages in order, with logging, periodic validation,
checkpoints, exact resume, NaN/Inf detection and a clean Ctrl-C.

Checkpoints (every ``checkpoint_every`` iterations and at every stage end) write
``RUN/training_state.pt`` (:func:`rawadapt.models.checkpoint.save_training_state`: loads with
``torch.load(weights_only=True)``) and the current model (``model.safetensors`` + ``model.json``).
The training state holds::

    model              the model's state_dict
    optimizer          the current stage's optimizer state (None at a stage boundary)
    stage_index        the stage to run next / being run
    stage_step         iterations of that stage already done (0 = at the boundary, before setup)
    global_step        iterations done over all stages
    stage_names        to check the resumed run builds the same stages
    stages             {stage name: stage.state_dict()} for the current stage (samplers' generators...)
    summaries          {stage name: stage.finish() result} of completed stages
    torch_rng          torch's global CPU generator (and cuda_rng on GPU)
    train_seconds      training wall time so far

Resume replays exactly: the model, optimizer, samplers and every generator continue from the
saved values, and the LR schedule is a pure function of the in-stage step, so an interrupted then
resumed run ends with weights bit-identical to an uninterrupted run with the same seed (same
device, same thread count). Validation never touches a generator or the weights, so where it
happens does not matter.

Ctrl-C: the first SIGINT lets the current iteration finish, saves the state and raises
:class:`TrainingInterrupted` (a one-line message telling how to resume); a second one aborts at
once (the last periodic checkpoint remains).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rawadapt.errors import CheckpointError, NonFiniteError, RawAdaptError
from rawadapt.models.checkpoint import save_model, save_training_state
from rawadapt.train.context import TrainContext
from rawadapt.train.stages import Stage

STATE_NAME = "training_state.pt"


class TrainingInterrupted(RawAdaptError):
    """Training stopped early (Ctrl-C or a requested stop); the state is saved for ``--resume``."""

    exit_code = 130

    def __init__(self, message: str, path: str | Path | None = None, *, step: int = 0, saved: bool = True) -> None:
        super().__init__(message, path)
        self.step = step
        self.saved = saved


@dataclass
class ResumePoint:
    """Where a resumed run continues (decoded from a training state)."""

    stage_index: int
    stage_step: int
    global_step: int
    state: dict[str, Any] = field(default_factory=dict)


class _StopFlag:
    """SIGINT -> "stop after this iteration"; a second SIGINT aborts (KeyboardInterrupt).

    Installed only in the main thread (Python delivers signals there only); elsewhere a
    KeyboardInterrupt simply propagates.
    """

    def __init__(self, notify: Callable[[str], None]) -> None:
        self.requested = False
        self._notify = notify
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._notify("interrupt: finishing this iteration and saving the state (Ctrl-C again to abort)")

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except ValueError:  # pragma: no cover - not the main interpreter thread
                self._installed = False
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


class Engine:
    """Runs stages over a :class:`~rawadapt.train.context.TrainContext`.

    Parameters
    ----------
    ctx
        The run's context (model, data, config, logger...).
    stages
        The strategy's stages, in order (names must be unique).
    stop_after
        Stop (saving the state, raising :class:`TrainingInterrupted`) once this many global
        iterations are done. A test hook that simulates an interruption at a chosen point.
    on_step
        Called after every iteration with ``(ctx, values)`` (tests, custom monitoring).
    evaluate
        ``evaluate(ctx, limit) -> summary dict`` used for periodic validation (the API passes the
        test-set evaluation; None disables periodic validation).
    model_extra
        Extra entries for ``model.json`` of intermediate checkpoints.
    """

    def __init__(
        self,
        ctx: TrainContext,
        stages: Sequence[Stage],
        *,
        stop_after: int | None = None,
        on_step: Callable[[TrainContext, dict[str, Any]], None] | None = None,
        evaluate: Callable[[TrainContext, int | None], dict[str, Any]] | None = None,
        model_extra: dict[str, Any] | None = None,
    ) -> None:
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        for s in stages:
            if not isinstance(s, Stage):
                raise TypeError(f"{s!r} does not implement the Stage protocol")
        self.ctx = ctx
        self.stages = list(stages)
        self.stop_after = stop_after
        self.on_step = on_step
        self.evaluate = evaluate
        self.model_extra = dict(model_extra or {})
        self.summaries: dict[str, dict[str, Any]] = {}
        self.train_seconds = 0.0
        # the session clock starts here, not at 0: a state saved before run() (the run's initial,
        # resumable state) must record ~0 s of training, not the process clock (which once put
        # 10792 s of "training" into a resumed benchmark cell)
        self._session_t0 = time.perf_counter()
        ctx.total_iters = sum(s.iters for s in self.stages)

    # -- state -------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.ctx.run_dir / STATE_NAME

    def _elapsed(self) -> float:
        return self.train_seconds + (time.perf_counter() - self._session_t0)

    def training_state(self, stage_index: int, stage_step: int) -> dict[str, Any]:
        """The resumable state at a step boundary (see the module docstring)."""
        import torch

        ctx = self.ctx
        mid = 0 < stage_step and stage_index < len(self.stages)
        # at a boundary the optimizer matters only if the next stage continues it
        carried = (
            stage_step == 0
            and stage_index < len(self.stages)
            and getattr(self.stages[stage_index], "continue_optimizer", False)
        )
        state: dict[str, Any] = {
            "model": {k: v.detach().cpu().clone() for k, v in ctx.model.state_dict().items()},
            "optimizer": ctx.optimizer.state_dict() if ((mid or carried) and ctx.optimizer is not None) else None,
            "stage_index": int(stage_index),
            "stage_step": int(stage_step),
            "global_step": int(ctx.global_step),
            "stage_names": [s.name for s in self.stages],
            "stage_iters": [s.iters for s in self.stages],
            "stages": {self.stages[stage_index].name: self.stages[stage_index].state_dict()} if mid else {},
            "summaries": self.summaries,
            "torch_rng": torch.get_rng_state(),
            "train_seconds": self._elapsed(),
        }
        if torch.cuda.is_available() and ctx.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(ctx.device)
        return state

    def save(self, stage_index: int, stage_step: int) -> None:
        """Checkpoint: training state + current model (rank 0 only; atomic writes)."""
        if not self.ctx.is_main:
            return

        save_training_state(self.state_path, self.training_state(stage_index, stage_step))
        save_model(
            self.ctx.run_dir,
            self.ctx.model,
            extra={**self.model_extra, "complete": False, "global_step": self.ctx.global_step},
        )

    def resume_point(self, state: dict[str, Any]) -> ResumePoint:
        """Check a loaded state against this run's stages and restore the model from it."""
        names = [s.name for s in self.stages]
        iters = [s.iters for s in self.stages]
        if state.get("stage_names") != names or state.get("stage_iters") != iters:
            raise CheckpointError(
                f"the saved state belongs to stages {state.get('stage_names')} x {state.get('stage_iters')} "
                f"but this run has {names} x {iters}; resume with the run's own config.yaml",
                self.state_path,
            )
        try:
            self.ctx.model.load_state_dict(state["model"], strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"saved weights do not fit the model: {str(exc).splitlines()[0]}", self.state_path
            ) from None
        self.summaries = dict(state.get("summaries") or {})
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.ctx.global_step = int(state["global_step"])
        return ResumePoint(int(state["stage_index"]), int(state["stage_step"]), int(state["global_step"]), state)

    @staticmethod
    def _restore_rng(ctx: TrainContext, state: dict[str, Any]) -> None:
        import torch

        torch.set_rng_state(state["torch_rng"].cpu() if hasattr(state["torch_rng"], "cpu") else state["torch_rng"])
        if "cuda_rng" in state and ctx.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), ctx.device)

    # -- the loop ----------------------------------------------------------------------------
    def _stop_requested(self, flag: _StopFlag) -> bool:
        return flag.requested or (self.stop_after is not None and self.ctx.global_step >= self.stop_after)

    def _interrupt(self, stage_index: int, stage_step: int, saved: bool = True) -> TrainingInterrupted:
        step = self.ctx.global_step
        where = self.ctx.run_dir
        return TrainingInterrupted(
            f"training stopped at iteration {step}/{self.ctx.total_iters}; state saved, continue with "
            f"`rawadapt train --out {where} --resume` (same command plus --resume)",
            None,
            step=step,
            saved=saved,
        )

    def _validate(self) -> None:
        if self.evaluate is None or not self.ctx.is_main:  # report only: other ranks skip it
            return
        limit = self.ctx.config.eval_images
        summary = self.evaluate(self.ctx, limit)
        self.ctx.logger.log_eval(self.ctx.global_step, self.ctx.stage_name, summary)

    def run(self, resume: ResumePoint | None = None) -> dict[str, dict[str, Any]]:
        """Run (or continue) all stages; returns each stage's ``finish`` summary.

        Raises
        ------
        TrainingInterrupted
            Ctrl-C or ``stop_after``; the state is saved first.
        NonFiniteError
            The loss became NaN/Inf (the message names the stage and iteration).
        """
        ctx = self.ctx
        cfg = ctx.config
        start_stage = resume.stage_index if resume else 0
        self._session_t0 = time.perf_counter()
        with _StopFlag(ctx.logger.message) as flag:
            try:
                for si in range(start_stage, len(self.stages)):
                    stage = self.stages[si]
                    ctx.stage_index, ctx.stage_name = si, stage.name
                    start = 0
                    if resume is not None and si == start_stage:
                        start = resume.stage_step
                    if resume is not None and si == start_stage and start == 0:
                        self._restore_rng(ctx, resume.state)  # boundary: generators as before setup
                        if getattr(stage, "continue_optimizer", False) and resume.state.get("optimizer") is not None:
                            from rawadapt.train.schedule import make_optimizer

                            ctx.optimizer = make_optimizer(ctx.model, cfg.optim, getattr(stage, "lr", cfg.optim.lr))
                            ctx.optimizer.load_state_dict(resume.state["optimizer"])
                    stage.setup(ctx)
                    if resume is not None and si == start_stage and start > 0:
                        if ctx.optimizer is not None and resume.state.get("optimizer") is not None:
                            ctx.optimizer.load_state_dict(resume.state["optimizer"])
                        stage.load_state_dict(resume.state["stages"][stage.name])
                        self._restore_rng(ctx, resume.state)
                    ctx.logger.message(
                        f"stage {si + 1}/{len(self.stages)} '{stage.name}': {stage.iters} iterations"
                        + (f" (resuming at {start})" if start else "")
                    )
                    i = start
                    while i < stage.iters:
                        t0 = time.perf_counter()
                        try:
                            values = dict(stage.step(ctx, i))
                        except NonFiniteError as exc:
                            raise NonFiniteError(
                                f"stage '{stage.name}' iteration {i + 1}/{stage.iters} "
                                f"(global {ctx.global_step + 1}): {exc.message}",
                                exc.path,
                            ) from None
                        step_time = time.perf_counter() - t0
                        loss = values.get("loss")
                        if isinstance(loss, float) and not math.isfinite(loss):
                            raise NonFiniteError(
                                f"stage '{stage.name}' iteration {i + 1}: loss became {loss}; "
                                "lower the learning rate or check the data"
                            )
                        i += 1
                        ctx.global_step += 1
                        ctx.logger.advance(ctx.global_step, stage.name, values, step_time)
                        if ctx.global_step % cfg.log_every == 0 or i == stage.iters:
                            ctx.logger.log(ctx.global_step, stage.name, i, stage.iters, values, step_time)
                        if self.on_step is not None:
                            self.on_step(ctx, values)
                        if (
                            cfg.eval_every
                            and ctx.global_step % cfg.eval_every == 0
                            and ctx.global_step < ctx.total_iters
                        ):
                            self._validate()
                        if i < stage.iters:
                            if self._stop_requested(flag):
                                self.save(si, i)
                                raise self._interrupt(si, i)
                            if ctx.global_step % cfg.checkpoint_every == 0:
                                self.save(si, i)
                    self.summaries[stage.name] = dict(stage.finish(ctx) or {})
                    self.save(si + 1, 0)
                    if si + 1 < len(self.stages) and self._stop_requested(flag):
                        raise self._interrupt(si + 1, 0)
            except KeyboardInterrupt:
                # second Ctrl-C, or one outside the main thread: no consistent state to save now
                raise TrainingInterrupted(
                    f"training aborted at iteration {ctx.global_step}; the last checkpoint in {ctx.run_dir} "
                    "remains: continue with the same command plus --resume",
                    step=ctx.global_step,
                    saved=False,
                ) from None
        self.train_seconds = self._elapsed()
        return self.summaries


def run_stages(
    ctx: TrainContext, stages: Sequence[Stage], *, state: dict[str, Any] | None = None, **options: Any
) -> dict[str, dict[str, Any]]:
    """Run ``stages`` on ``ctx`` (continuing from a loaded training ``state`` if given); returns
    each stage's ``finish`` summary. ``options`` go to :class:`Engine` (``stop_after``,
    ``on_step``, ``evaluate``, ``model_extra``). :func:`rawadapt.train.api.run_training` is the
    full pipeline (data, model, run folder, final metrics) around it."""
    engine = Engine(ctx, stages, **options)
    point = engine.resume_point(state) if state is not None else None
    return engine.run(point)
