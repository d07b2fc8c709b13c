"""ADL as a training strategy: target pretraining → source adaptive learning → target fine-tuning
(ADL paper Algorithm 1 lines 1, 2-13, 14).

Stages 1 and 3 are plain supervised stages on T_adp; stage 2 is :class:`AdaptiveStage`, which
drives :class:`rawadapt.train.adl.AdaptiveLearning` one iteration per engine step, so ADL gets
the engine's progress bar, logging, checkpointing and exact resume for free. At the end of
stage 2 ``valuation.json`` and the valuation plots are written next to ``adl_log.csv``.

Iteration budget: ``pretrain_iters`` (target pretraining; 0 = the "without target pretraining"
ablation), ``iters`` (adaptive learning), ``finetune_iters`` (target fine-tuning).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rawadapt.data.patches import PatchSampler
from rawadapt.errors import ConfigError
from rawadapt.train.adl import AdaptiveLearning, Comm
from rawadapt.train.builders import source_domains, supervised, target_pool
from rawadapt.train.stages import BaseStage, StepValues
from rawadapt.train.valuation import plot_valuation, read_adl_log, write_valuation
from rawadapt.utils.seed import derive_seed

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.data.sample import Sample
    from rawadapt.train.adl_config import ADLConfig
    from rawadapt.train.config import OptimConfig, TrainConfig
    from rawadapt.train.context import TrainContext, TrainData
    from rawadapt.train.stages import Stage

ADL_LOG_NAME = "adl_log.csv"
VALUATION_NAME = "valuation.json"


class AdaptiveStage(BaseStage):
    """Stage 2 of ADL: source adaptive learning with accept/reject on a dynamic validation set.

    Parameters
    ----------
    name, iters, lr, optim
        See :class:`~rawadapt.train.stages.BaseStage` (a fresh AdamW for the stage).
    sources
        Source domains (name → samples).
    target_pool
        T_adp.
    adl
        ADL settings.
    patch, batch, augment, seed
        Patch sampling of the source batches (``batch`` source patches per iteration, plus up to
        ``adl.target_batch`` T_train patches).
    """

    def __init__(
        self,
        name: str,
        sources: Mapping[str, Sequence[Sample]],
        target_pool: Sequence[Sample],
        iters: int,
        *,
        lr: float,
        optim: OptimConfig,
        adl: ADLConfig,
        patch: int,
        batch: int,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(name, iters, lr=lr, optim=optim)
        if not sources:
            raise ConfigError("ADL needs at least one source domain")
        if len(target_pool) < 2:
            raise ConfigError(
                f"ADL needs at least 2 target pairs (one to validate, one to train), got {len(target_pool)}"
            )
        self.sources = dict(sorted(sources.items()))
        self.target_pool = target_pool
        self.adl = adl
        self.patch, self.batch, self.augment, self.seed = int(patch), int(batch), bool(augment), int(seed)
        self.learner: Any = None
        if adl.beta1 is not None:
            self.betas = (float(adl.beta1), self.betas[1])

    def setup(self, ctx: TrainContext) -> None:

        super().setup(ctx)
        pool = list(self.target_pool)
        decoded = {d: list(s) for d, s in self.sources.items()}
        sides = [min(s.height, s.width) for ss in decoded.values() for s in ss] + [min(s.height, s.width) for s in pool]
        patch = min(self.patch, min(sides))
        # Patch draws are rank-specific (data parallel: each rank sees different patches);
        # the decisions (domain, V') use one stream shared by all ranks.
        rank = ctx.rank

        def seed_of(*keys: object) -> int:
            return derive_seed(self.seed, "stage", self.name, *keys, "rank", rank)

        samplers = {
            d: PatchSampler(ss, patch=patch, batch=self.batch, augment=self.augment, seed=seed_of(d), domain=d)
            for d, ss in decoded.items()
        }
        target_sampler = PatchSampler(
            pool, patch=patch, batch=self.batch, augment=self.augment, seed=seed_of("target"), domain="target"
        )
        comm = ctx.extra.get("comm") or Comm()
        log_path = ctx.run_dir / ADL_LOG_NAME if ctx.is_main else None
        assert ctx.optimizer is not None  # created (or continued) by BaseStage.setup
        self.learner = AdaptiveLearning(
            ctx.model,
            ctx.optimizer,
            sources=samplers,
            target_pool=pool,
            target_sampler=target_sampler,
            total_iters=self.iters,
            cfg=self.adl,
            seed=derive_seed(self.seed, "adl-decisions"),
            device=ctx.device,
            log_path=log_path,
            comm=comm,
        )
        # (the engine calls load_state_dict after setup when resuming inside this stage)

    def step(self, ctx: TrainContext, i: int) -> StepValues:
        lr = self.set_lr(ctx, i)
        values = self.learner.step()
        return {
            "loss": values["loss"],
            "lr": lr,
            "val_psnr": values["val_psnr"],
            "accepted": values["accepted"],
            "accept_rate": values["accept_rate"],
            "domain": values["domain"],
        }

    def state_dict(self) -> dict[str, Any]:
        return {} if self.learner is None else self.learner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.learner.load_state_dict(state)

    def finish(self, ctx: TrainContext) -> dict[str, Any]:
        """Write valuation.json and the plots (rank 0); return the per-domain acceptance."""
        if not ctx.is_main:
            return {}

        log_path = ctx.run_dir / ADL_LOG_NAME
        if not log_path.exists():
            return {}
        val = write_valuation(log_path, ctx.run_dir / VALUATION_NAME, criterion=self.adl.criterion)
        try:
            plot_valuation(val, read_adl_log(log_path), ctx.run_dir)
        except Exception as exc:  # noqa: BLE001 - a plot must never lose a finished training run
            ctx.logger.message(f"warning: valuation plots failed: {exc}")
        return {
            "acceptance_rate": val["acceptance_rate"],
            "accepted": val["accepted"],
            "iterations": val["iterations"],
            "domains": {
                d: {"acceptance_rate": v["acceptance_rate"], "tried": v["tried"]} for d, v in val["domains"].items()
            },
        }


def build_adl(config: TrainConfig, data: TrainData) -> list[Stage]:
    """The three ADL stages for a run (see the module docstring)."""

    pool = target_pool(data)
    assert data.target is not None
    d = config.data
    stages: list[Stage] = []
    pre = config.stage_iters("pretrain")
    if pre > 0:
        stages.append(supervised(config, "target-pretrain", pool, pre))
    adaptive = AdaptiveStage(
        "adaptive",
        source_domains(data),
        pool[data.target],
        config.stage_iters("main"),
        lr=config.optim.lr * config.adl.lr_factor,
        optim=config.optim,
        adl=config.adl,
        patch=d.patch,
        batch=d.batch,
        augment=d.augment,
        seed=config.seed,
    )
    # Algorithm 1 is ONE optimisation: stages 2 and 3 continue stage 1's AdamW state (each with its
    # own LR schedule). A fresh AdamW at stage 2 would make every candidate a full-magnitude first
    # Adam step (±lr on every weight) — and with the optimizer restored on rejects, it stays one.
    adaptive.continue_optimizer = config.adl.continue_optimizer
    stages.append(adaptive)
    fin = config.stage_iters("finetune")
    if fin > 0:
        finetune = supervised(config, "target-finetune", pool, fin, lr=config.resolved_finetune_lr())
        finetune.continue_optimizer = config.adl.continue_optimizer  # type: ignore[attr-defined]
        stages.append(finetune)
    return stages
