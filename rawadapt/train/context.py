"""What every training stage sees: the data of a run and the :class:`TrainContext`.

Kept free of the engine so stages (the plain supervised stage here, ADL's adaptive stage) depend
only on this module and :mod:`rawadapt.train.stages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rawadapt.utils.seed import derive_seed

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from rawadapt.data.base import PairDataset
    from rawadapt.models.base import Denoiser
    from rawadapt.train.config import TrainConfig
    from rawadapt.train.runlog import RunLogger
    from rawadapt.train.schedule import LRSchedule


@dataclass
class TrainData:
    """The data of one run, already split.

    Attributes
    ----------
    space
        ``"raw"`` or ``"srgb"``.
    sources
        Training data per source domain (sensor name -> dataset); for ``pretrain`` these are
        the pretraining sensors.
    target_pool
        T_adp, the few target pairs (None for ``pretrain``).
    test
        The held-out test set: the target's test records, or for ``pretrain`` the test records of
        the pretraining sensors. Used for reporting only.
    target
        The target sensor (None for ``pretrain``).
    sensors
        The model's sensor vocabulary: sorted(sources + target).
    dataset
        The whole dataset the split came from.
    """

    space: str
    sources: dict[str, PairDataset]
    target_pool: PairDataset | None
    test: PairDataset
    target: str | None
    sensors: list[str]
    dataset: PairDataset | None = None

    def summary(self) -> dict[str, Any]:
        """Counts per role (JSON-friendly)."""
        return {
            "space": self.space,
            "target": self.target,
            "sensors": list(self.sensors),
            "sources": {k: len(v) for k, v in self.sources.items()},
            "target_pool": None if self.target_pool is None else len(self.target_pool),
            "target_pool_ids": None if self.target_pool is None else [r.sample_id for r in self.target_pool.records],
            "test": len(self.test),
        }


@dataclass
class TrainContext:
    """Mutable state shared by the engine and the stages of one run.

    Attributes
    ----------
    config
        The run's full configuration.
    model
        The network being trained (on ``device``).
    data
        The split data.
    device
        Torch device.
    run_dir
        The run folder (only rank 0 writes into it).
    logger
        The run's :class:`~rawadapt.train.logging.RunLogger`.
    optimizer, scheduler
        Set by the current stage's ``setup`` (a fresh AdamW and LR schedule per stage).
    rank, world_size
        Data-parallel position (single process: 0 and 1).
    global_step
        Iterations completed over all stages.
    stage_index, stage_name
        The stage running now.
    total_iters
        Sum of all stages' iterations.
    extra
        Free slot for stages that need to share objects (e.g. a communicator).
    """

    config: TrainConfig
    model: Denoiser
    data: TrainData
    device: torch.device
    run_dir: Path
    logger: RunLogger
    optimizer: torch.optim.Optimizer | None = None
    scheduler: LRSchedule | None = None
    rank: int = 0
    world_size: int = 1
    global_step: int = 0
    stage_index: int = 0
    stage_name: str = ""
    total_iters: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        """True on the process that writes files (rank 0)."""
        return self.rank == 0

    def seed_for(self, *keys: object) -> int:
        """A stable seed derived from the run's seed and ``keys`` (e.g. stage and domain names)."""
        return derive_seed(self.config.seed, *keys)
