"""Training stages: the unit the engine runs, one after another.

A strategy is a list of stages (``finetune`` = source pretraining, then target fine-tuning; ADL =
target pretraining, adaptive source learning, target fine-tuning). The engine
(:class:`rawadapt.train.engine.Engine`) calls, for each stage in order::

    stage.setup(ctx)                   # build samplers; set ctx.optimizer and ctx.scheduler
    stage.load_state_dict(saved)       # only when resuming inside this stage
    for i in range(start, stage.iters):
        values = stage.step(ctx, i)    # ONE iteration; returns what to log
    summary = stage.finish(ctx)        # once, at the end; JSON-friendly, saved in metrics.json

Contract
--------
* ``step`` must be a deterministic function of (model, optimizer, the stage's own state, i):
  every random draw comes from generators the stage owns and returns in ``state_dict``, so that a
  resumed run replays exactly the same iterations.
* ``state_dict`` returns plain data (numbers, strings, lists, dicts, tensors, NumPy generator
  states); the engine saves it with :func:`rawadapt.models.checkpoint.save_training_state`.
  ``load_state_dict`` is called after ``setup``.
* Each stage creates a FRESH optimizer and LR schedule in ``setup``: a fine-tuning stage restarts
  AdamW's moments and its own warm-up/decay at its own peak LR, as is standard for fine-tuning
  (moments estimated on source data would be stale for the target). The engine saves and
  restores ``ctx.optimizer``'s state itself.
* ``step`` returns a dict of floats (or short strings, e.g. the source domain used); the keys
  ``loss``, ``lr`` and ``data_time`` are shown on the progress bar / used for the log timing
  columns. New keys are welcome (ADL: ``accepted``, ``val_psnr``): the CSV log grows columns.

Writing a new stage: subclass :class:`BaseStage` (optimizer/schedule creation, ``set_lr``, empty
state) and implement ``step``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from rawadapt.data.patches import Batch, PatchSampler
from rawadapt.errors import ConfigError
from rawadapt.train.schedule import LRSchedule, make_optimizer
from rawadapt.train.step import train_step
from rawadapt.utils.seed import derive_seed

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.data.patches import Batch, PatchSampler
    from rawadapt.data.sample import Sample
    from rawadapt.train.config import OptimConfig
    from rawadapt.train.context import TrainContext

StepValues = dict[str, float | int | str]


@runtime_checkable
class Stage(Protocol):
    """What the engine needs from a stage (see the module docstring for the contract)."""

    name: str
    iters: int

    def setup(self, ctx: TrainContext) -> None: ...

    def step(self, ctx: TrainContext, i: int) -> StepValues: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def finish(self, ctx: TrainContext) -> dict[str, Any]: ...


class BaseStage:
    """Shared plumbing: a fresh AdamW + :class:`~rawadapt.train.schedule.LRSchedule` per stage.

    Parameters
    ----------
    name
        Stage name (unique within a strategy; shown in logs, keys the saved state).
    iters
        Number of iterations.
    lr
        Peak learning rate of this stage.
    optim
        Optimizer settings (betas, weight decay, schedule shape, warm-up, grad clip).
    """

    #: keep the previous stage's optimizer (and its AdamW moments) instead of a fresh one; the
    #: engine then checkpoints the optimizer at the boundary too, so resume stays exact
    continue_optimizer: bool = False

    def __init__(self, name: str, iters: int, *, lr: float, optim: OptimConfig) -> None:
        if iters < 0:
            raise ConfigError(f"stage {name!r}: iterations must be >= 0, got {iters}")
        self.name = str(name)
        self.iters = int(iters)
        self.lr = float(lr)
        self.optim = optim
        self.schedule = LRSchedule.from_config(optim, self.lr, self.iters)
        #: Adam betas of this stage, written into the param groups with the LR at every step (so
        #: a stage that continues another's optimizer, or a resumed run, always uses its own)
        self.betas: tuple[float, float] = (optim.betas[0], optim.betas[1])

    def setup(self, ctx: TrainContext) -> None:
        """Create the stage's optimizer (or keep the previous one, see ``continue_optimizer``)
        and its schedule in the context."""
        if not (self.continue_optimizer and ctx.optimizer is not None):
            ctx.optimizer = make_optimizer(ctx.model, self.optim, self.lr)
        ctx.scheduler = self.schedule

    def set_lr(self, ctx: TrainContext, i: int) -> float:
        """Apply the schedule's LR for iteration ``i`` (and the stage's betas); return the LR."""
        assert ctx.optimizer is not None, "setup() must run before step()"
        for group in ctx.optimizer.param_groups:
            if "betas" in group:
                group["betas"] = self.betas
        return self.schedule.apply(ctx.optimizer, i)

    def step(self, ctx: TrainContext, i: int) -> StepValues:  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def finish(self, ctx: TrainContext) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, iters={self.iters}, lr={self.lr:g})"


MIXING_RULES = ("domain", "pooled")


class SupervisedStage(BaseStage):
    """Plain supervised L1 training on patches of one or more domains.

    Batch composition
    -----------------
    * one domain: every batch from it;
    * several domains, ``rule="domain"``: each batch from ONE domain chosen uniformly at random
      (domains weigh the same whatever their size; a batch never mixes noise models);
    * several domains, ``rule="pooled"``: patches drawn uniformly over all images of all domains;
    * with an ``anchor`` (the target pool in ``joint``): ``round(anchor_fraction * batch)``
      patches (at least 1) from the anchor, the rest from the domain(s) by the rule above.

    Parameters
    ----------
    name, iters, lr, optim
        See :class:`BaseStage`.
    domains
        Training samples per domain (a :class:`~rawadapt.data.base.PairDataset` works; it is
        decoded when the stage starts, not before).
    patch, batch, augment
        Patch side, patches per batch, random dihedral augmentation.
    seed
        Base seed; each sampler and the domain choice get a seed derived from it, the stage name
        and the domain name.
    rule
        ``"domain"`` or ``"pooled"``.
    anchor, anchor_fraction
        Samples present in every batch, and their share.
    embed_from_sources
        A sensor (the target) whose type embedding is set to the average of the other sensors'
        at setup (:meth:`rawadapt.models.modulation.Modulation.init_sensor_embedding`): the
        fine-tuning stage after a source stage in which it got no gradient.
    """

    def __init__(
        self,
        name: str,
        domains: Mapping[str, Sequence[Sample]],
        iters: int,
        *,
        lr: float,
        optim: OptimConfig,
        patch: int,
        batch: int,
        augment: bool = True,
        seed: int = 0,
        rule: str = "domain",
        anchor: Sequence[Sample] | None = None,
        anchor_fraction: float = 0.5,
        embed_from_sources: str | None = None,
    ) -> None:
        super().__init__(name, iters, lr=lr, optim=optim)
        self.embed_from_sources = embed_from_sources
        if not domains:
            raise ConfigError(f"stage {name!r} has no training data")
        empty = [d for d, s in domains.items() if len(s) == 0]
        if empty:
            raise ConfigError(f"stage {name!r}: no training pairs for {', '.join(empty)}")
        if rule not in MIXING_RULES:
            raise ConfigError(f"stage {name!r}: mixing rule must be one of {MIXING_RULES}, got {rule!r}")
        if anchor is not None and len(anchor) == 0:
            raise ConfigError(f"stage {name!r}: the anchor (target pool) is empty")
        if anchor is not None and not 0.0 < anchor_fraction < 1.0:
            raise ConfigError(f"stage {name!r}: anchor_fraction must be in (0, 1), got {anchor_fraction}")
        self.domains = dict(sorted(domains.items()))
        self.patch, self.batch, self.augment = int(patch), int(batch), bool(augment)
        self.seed = int(seed)
        self.rule = rule if len(self.domains) > 1 else "domain"
        self.anchor = anchor
        self.anchor_fraction = float(anchor_fraction)
        self.samplers: dict[str, PatchSampler] = {}
        self.anchor_sampler: PatchSampler | None = None
        self.choice_rng: np.random.Generator | None = None
        self._rank: int | None = None
        self.comm: Any = None

    # -- setup -------------------------------------------------------------------------------
    def _seed(self, *keys: object) -> int:

        # data-parallel ranks draw different patches; single-process seeds are unchanged
        rank = ("rank", self._rank) if self._rank is not None else ()
        return derive_seed(self.seed, "stage", self.name, *keys, *rank)

    def setup(self, ctx: TrainContext) -> None:

        super().setup(ctx)
        self._rank = ctx.rank if getattr(ctx, "world_size", 1) > 1 else None
        self.comm = getattr(ctx, "extra", {}).get("comm")
        decoded = {d: list(s) for d, s in self.domains.items()}
        anchor = None if self.anchor is None else list(self.anchor)
        # one patch size for all samplers: batches from different domains are concatenated
        sides = [min(s.height, s.width) for ss in decoded.values() for s in ss]
        sides += [min(s.height, s.width) for s in anchor or []]
        patch = min(self.patch, min(sides))
        kw: dict[str, Any] = {"patch": patch, "batch": self.batch, "augment": self.augment}
        if self.rule == "pooled":
            pooled = [s for ss in decoded.values() for s in ss]
            self.samplers = {"pooled": PatchSampler(pooled, seed=self._seed("pooled"), **kw)}
        else:
            self.samplers = {
                d: PatchSampler(ss, seed=self._seed("domain", d), domain=d, **kw) for d, ss in decoded.items()
            }
        if anchor is not None:
            self.anchor_sampler = PatchSampler(anchor, seed=self._seed("anchor"), domain="target", **kw)
        self.choice_rng = np.random.default_rng(self._seed("choice"))

    def _init_embedding(self, ctx: TrainContext) -> None:
        """Called by the stage's first iteration, so a mid-stage resume (whose weights already
        include it) does not apply it twice."""
        mod = getattr(ctx.model, "modulation", None)
        sensors = list(getattr(ctx.model, "sensors", []))
        target = self.embed_from_sources
        if mod is None or not getattr(mod, "use_sensor", False) or target not in sensors:
            return
        mod.init_sensor_embedding(sensors.index(target), [i for i, s in enumerate(sensors) if s != target])

    # -- one iteration -----------------------------------------------------------------------
    def choose_domain(self) -> str:
        """The domain of the next batch (uniform over domains)."""
        assert self.choice_rng is not None, "setup() must run first"
        names = list(self.samplers)
        if len(names) == 1:
            return names[0]
        return names[int(self.choice_rng.integers(0, len(names)))]

    def draw(self) -> tuple[Batch, str]:
        """The next batch and the name of the domain it came from."""

        domain = self.choose_domain()
        if self.anchor_sampler is None:
            return self.samplers[domain].draw(), domain
        n_anchor = min(self.batch, max(1, round(self.anchor_fraction * self.batch)))
        parts = [self.anchor_sampler.draw(n_anchor)]
        if self.batch - n_anchor > 0:
            parts.append(self.samplers[domain].draw(self.batch - n_anchor))
        return Batch.cat(parts), domain

    def step(self, ctx: TrainContext, i: int) -> StepValues:

        if i == 0 and self.embed_from_sources is not None:
            self._init_embedding(ctx)
        lr = self.set_lr(ctx, i)
        t0 = time.perf_counter()
        batch, domain = self.draw()
        data_time = time.perf_counter() - t0
        assert ctx.optimizer is not None
        loss = train_step(
            ctx.model, ctx.optimizer, batch, device=ctx.device, grad_clip=self.optim.grad_clip, comm=self.comm
        )
        return {"loss": loss, "lr": lr, "data_time": data_time, "domain": domain}

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "samplers": {d: s.state_dict() for d, s in self.samplers.items()},
            "anchor": None if self.anchor_sampler is None else self.anchor_sampler.state_dict(),
            "choice": None if self.choice_rng is None else self.choice_rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("samplers", {})
        if set(saved) != set(self.samplers):
            raise ConfigError(
                f"stage {self.name!r}: saved samplers {sorted(saved)} do not match "
                f"this run's {sorted(self.samplers)} (different data or config?)"
            )
        for d, s in self.samplers.items():
            s.load_state_dict(saved[d])
        if self.anchor_sampler is not None and state.get("anchor") is not None:
            self.anchor_sampler.load_state_dict(state["anchor"])
        if self.choice_rng is not None and state.get("choice") is not None:
            self.choice_rng.bit_generator.state = state["choice"]

    def finish(self, ctx: TrainContext) -> dict[str, Any]:
        return {
            "domains": list(self.domains),
            "rule": self.rule,
            "anchor": None if self.anchor is None else len(self.anchor),
        }
