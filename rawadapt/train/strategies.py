"""Training strategies: a plain dict from name to a builder of stages.

A builder takes the run's config and split data and returns the list of stages the engine runs::

    def build(config: TrainConfig, data: TrainData) -> list[Stage]

Register a new strategy with :func:`register_strategy` (or one entry in :data:`STRATEGIES`)::

    register_strategy("adl", build_adl, needs_target=True, description="...")

``needs_target`` strategies get a leave-one-sensor-out split (sources, target pool, target test);
the others (``pretrain``) get the chosen sensors' training records as sources and their test
records as the test set.

Built-in strategies
-------------------
``pretrain``
    All chosen sensors, no target: one stage on every sensor (batches per domain by default).
    The starting point for LAN's test-time adaptation; works for sRGB data too.
``target-only``
    The target pool only (``iters`` iterations).
``finetune``
    Pretrain on all sources (``pretrain_iters``, default ``iters``), then fine-tune on the target
    pool (``finetune_iters``, default ``iters``) with a fresh optimizer at ``finetune_lr``.
``joint``
    Sources and target mixed in every batch: ``target_fraction`` of the batch (half by default)
    from the target pool, the rest from ONE randomly chosen source domain ("batches drawn per
    domain"), for ``iters`` iterations.

This module imports nothing heavy: builders import the stage classes when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rawadapt.train.builders import source_domains, supervised, target_pool
from rawadapt.utils.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.train.config import TrainConfig
    from rawadapt.train.context import TrainData
    from rawadapt.train.stages import Stage

Builder = Callable[["TrainConfig", "TrainData"], "list[Stage]"]
DataHook = Callable[["TrainConfig", "TrainData"], "TrainData"]


@dataclass(frozen=True)
class Strategy:
    """A registered strategy.

    Attributes
    ----------
    name
        Registry key (the CLI's STRATEGY argument).
    build
        ``build(config, data) -> list[Stage]``.
    needs_target
        Whether the run needs a target sensor (leave-one-sensor-out split).
    description
        One line for ``--help`` and the docs.
    prepare
        Optional ``prepare(config, data) -> data`` run BEFORE the model is built, e.g. to add
        extra source domains (ADL's harmful sources) so that they enter the sensor vocabulary.
    """

    name: str
    build: Builder
    needs_target: bool = True
    description: str = ""
    prepare: DataHook | None = None


#: strategy name -> Strategy (registration order = display order)
STRATEGIES: Registry[Strategy] = Registry("strategy")


def register_strategy(
    name: str, build: Builder, *, needs_target: bool = True, description: str = "", prepare: DataHook | None = None
) -> None:
    """Add (or replace) a strategy (see :class:`Strategy` for the arguments)."""
    STRATEGIES.register(name, Strategy(name, build, needs_target, description, prepare), replace=True)


def get_strategy(name: str) -> Strategy:
    """The registered strategy ``name``.

    Raises
    ------
    ConfigError
        Unknown name (the message lists the known ones).
    """
    return STRATEGIES.get(name)


# -- built-in strategies ----------------------------------------------------------------------
def build_pretrain(config: TrainConfig, data: TrainData) -> list[Stage]:
    return [supervised(config, "pretrain", source_domains(data), config.stage_iters("main"))]


def build_target_only(config: TrainConfig, data: TrainData) -> list[Stage]:
    return [supervised(config, "target", target_pool(data), config.stage_iters("main"))]


def build_finetune(config: TrainConfig, data: TrainData) -> list[Stage]:
    pool = target_pool(data)
    return [
        supervised(config, "source-pretrain", source_domains(data), config.stage_iters("pretrain")),
        supervised(
            config,
            "target-finetune",
            pool,
            config.stage_iters("finetune"),
            lr=config.resolved_finetune_lr(),
            embed_from_sources=data.target,
        ),
    ]


def build_joint(config: TrainConfig, data: TrainData) -> list[Stage]:
    pool = target_pool(data)
    assert data.target is not None
    return [supervised(config, "joint", source_domains(data), config.stage_iters("main"), anchor=pool[data.target])]


register_strategy(
    "pretrain",
    build_pretrain,
    needs_target=False,
    description="all chosen sensors, no target (the starting point for LAN)",
)
register_strategy("target-only", build_target_only, description="the target pool only")
register_strategy("finetune", build_finetune, description="pretrain on all sources, then fine-tune on the target pool")
register_strategy("joint", build_joint, description="every batch: half target pool, half one random source domain")


def _build_adl(config: TrainConfig, data: TrainData) -> list[Stage]:
    from rawadapt.train.adl_stage import build_adl

    return build_adl(config, data)


register_strategy(
    "adl",
    _build_adl,
    description="ADL: target pretraining, source adaptive learning (accept/reject on a "
    "dynamic target validation set), target fine-tuning",
)
