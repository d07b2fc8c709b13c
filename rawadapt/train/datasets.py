"""From a config to split data: which records train, which test, and the sensor vocabulary.

* Strategies that need a target: :func:`rawadapt.data.splits.leave_one_sensor_out` (target pool
  of ``target_pairs`` pairs, target test set with scenes disjoint from the pool, other sensors as
  sources), then restricted to ``data.sources`` when given.
* ``pretrain``: the chosen sensors' records; those whose dataset role is ``"test"`` form the test
  set, the others train. A sensor without any ``"test"`` records (a dataset with no roles) gets
  a seeded hold-out of about 20 % of its scenes (at least one) as test, so the report is never
  on training images.

The split is a pure function of the dataset's records, the config and the seed, so
``rawadapt evaluate`` recreates it from ``RUN/config.yaml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rawadapt.data.registry import open_dataset
from rawadapt.data.splits import leave_one_sensor_out, source_domains
from rawadapt.errors import ConfigError
from rawadapt.noise.harmful import make_harmful
from rawadapt.train.context import TrainData
from rawadapt.train.strategies import get_strategy
from rawadapt.utils.seed import derive_seed

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.data.base import PairDataset
    from rawadapt.train.config import TrainConfig

#: fraction of scenes held out as test for pretrain sensors without "test" records
PRETRAIN_TEST_FRACTION = 0.2


def open_run_dataset(config: TrainConfig) -> PairDataset:
    """Open ``config.data.data`` (a :class:`~rawadapt.errors.DatasetError` names the problem)."""

    return open_dataset(config.data.data)


def _check_sensors(names: list[str], available: list[str], what: str) -> None:
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(
            f"{what} {', '.join(map(repr, unknown))} not in the dataset; its sensors: {', '.join(available)}"
        )


def _pretrain_data(config: TrainConfig, dataset: PairDataset) -> TrainData:
    d = config.data
    available = dataset.sensors
    if d.target is not None:
        _check_sensors([d.target], available, "target sensor")
    if d.sources is not None:
        _check_sensors(d.sources, available, "source sensor")
        if d.target in d.sources:
            raise ConfigError(f"sensor {d.target!r} is both the target and a source")
        sensors = sorted(d.sources)
    else:
        sensors = [s for s in available if s != d.target]
    if not sensors:
        raise ConfigError("no sensors left to pretrain on")
    by_sensor = dataset.by_sensor()
    train: dict[str, PairDataset] = {}
    test_idx: list[int] = []
    for sensor in sensors:
        idx = by_sensor[sensor]
        tests = [i for i in idx if dataset.records[i].split == "test"]
        if not tests:
            scenes = sorted({dataset.records[i].scene for i in idx})
            if len(scenes) > 1:
                rng = np.random.default_rng(derive_seed(config.seed, "pretrain-test", sensor))
                k = max(1, round(PRETRAIN_TEST_FRACTION * len(scenes)))
                held = set(rng.choice(np.asarray(scenes, dtype=object), size=k, replace=False).tolist())
                tests = [i for i in idx if dataset.records[i].scene in held]
        tset = set(tests)
        train[sensor] = dataset.subset([i for i in idx if i not in tset], name=f"{dataset.name}:{sensor}")
        test_idx += tests
    empty = [s for s, ds in train.items() if len(ds) == 0]
    if empty:
        raise ConfigError(f"no training records for {', '.join(empty)}")
    test = dataset.subset(sorted(test_idx), name=f"{dataset.name}:test")
    return TrainData(
        space=dataset.space,
        sources=train,
        target_pool=None,
        test=test,
        target=None,
        sensors=sorted(sensors),
        dataset=dataset,
    )


def _target_data(config: TrainConfig, dataset: PairDataset) -> TrainData:

    d = config.data
    if d.target is None:
        raise ConfigError(
            f"strategy {config.strategy!r} needs a target sensor (--target); "
            f"the dataset's sensors: {', '.join(dataset.sensors)}"
        )
    _check_sensors([d.target], dataset.sensors, "target sensor")
    if d.sources is not None:
        _check_sensors(d.sources, dataset.sensors, "source sensor")
        if d.target in d.sources:
            raise ConfigError(f"sensor {d.target!r} is both the target and a source")
    split = leave_one_sensor_out(
        dataset, d.target, target_pairs=d.target_pairs, seed=config.seed, test_pairs=d.test_pairs
    )
    sources = source_domains(split) if d.real_sources else {}
    if d.sources is not None and not d.real_sources:
        raise ConfigError("data.sources names real source sensors but data.real_sources is false")
    if d.sources is not None:
        missing = [s for s in d.sources if s not in sources]
        if missing:
            raise ConfigError(f"source sensor(s) {', '.join(missing)} have no source records in the split")
        sources = {s: sources[s] for s in sorted(d.sources)}
    if len(split.target_pool) == 0:
        raise ConfigError(f"the target pool of {d.target!r} is empty")
    harmful = harmful_domains(config, dataset.space)
    sources.update(harmful)
    # relabelled harmful domains claim the target's type: no vocabulary entry of their own
    own_labels = set(harmful) if d.harmful_label == "own" else set()
    return TrainData(
        space=dataset.space,
        sources=dict(sorted(sources.items())),
        target_pool=split.target_pool,
        test=split.target_test,
        target=d.target,
        sensors=sorted((set(sources) - set(harmful)) | own_labels | {d.target}),
        dataset=dataset,
    )


def harmful_domains(config: TrainConfig, space: str) -> dict[str, PairDataset]:
    """The ``data.harmful`` source domains (ADL paper Table 5), deterministic by seed."""

    d = config.data
    size = d.harmful_size or 2 * d.patch
    label = d.target if d.harmful_label == "target" else None
    return {
        kind: make_harmful(
            kind,
            n=d.harmful_count,
            size=size,
            space=space,
            seed=derive_seed(config.seed, "harmful", kind),
            label=label,
        )
        for kind in d.harmful
    }


def prepare_data(config: TrainConfig, dataset: PairDataset | None = None) -> TrainData:
    """Split the run's dataset for its strategy.

    Parameters
    ----------
    config
        The run configuration.
    dataset
        An already opened dataset (tests, benchmarks); default: open ``config.data.data``.

    Raises
    ------
    ConfigError
        Missing/unknown target or source sensors, or nothing to train on.
    """

    ds = open_run_dataset(config) if dataset is None else dataset
    if get_strategy(config.strategy).needs_target:
        return _target_data(config, ds)
    return _pretrain_data(config, ds)
