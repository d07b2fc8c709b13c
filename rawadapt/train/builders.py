"""What strategy builders share: the target pool and source domains of a split, and a supervised
stage configured from the run's settings. Used by the built-in strategies
(:mod:`rawadapt.train.strategies`), ADL (:mod:`rawadapt.train.adl_stage`) and the baselines'
strategies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rawadapt.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from rawadapt.data.sample import Sample
    from rawadapt.train.config import TrainConfig
    from rawadapt.train.context import TrainData
    from rawadapt.train.stages import Stage


def supervised(
    config: TrainConfig,
    name: str,
    domains: dict,
    iters: int,
    *,
    lr: float | None = None,
    anchor: Sequence[Sample] | None = None,
    embed_from_sources: str | None = None,
) -> Stage:
    """A :class:`~rawadapt.train.stages.SupervisedStage` with the run's sampling and optimizer
    settings (``lr`` defaults to ``optim.lr``)."""
    from rawadapt.train.stages import SupervisedStage

    d = config.data
    return SupervisedStage(
        name,
        domains,
        iters,
        lr=config.optim.lr if lr is None else lr,
        optim=config.optim,
        patch=d.patch,
        batch=d.batch,
        augment=d.augment,
        seed=config.seed,
        rule=d.mixing,
        anchor=anchor,
        anchor_fraction=d.target_fraction,
        embed_from_sources=embed_from_sources,
    )


def target_pool(data: TrainData) -> dict:
    """``{target: its pool}``; ConfigError when the split has no target."""
    if data.target_pool is None or data.target is None:
        raise ConfigError("this strategy needs a target sensor (--target)")
    return {data.target: data.target_pool}


def source_domains(data: TrainData) -> dict:
    """``{source sensor: its training records}``; ConfigError when there is none."""
    if not data.sources:
        raise ConfigError("this strategy needs at least one source sensor")
    return dict(data.sources)
