"""Domain splits: domain = sensor. Leave one sensor out as the few-shot target.

:func:`leave_one_sensor_out` gives

* ``sources``: every OTHER sensor's records, except those whose ``split`` is ``"test"``;
* ``target_pool``: ``target_pairs`` pairs of the target sensor (what ADL adapts with);
* ``target_test``: target-sensor pairs from scenes DISJOINT from the pool's.

Two modes for the target sensor:

1. **Roles.** When target records carry ``split`` roles (the built-in ``synth`` benchmark:
   ``"source"``/``"target"``/``"test"``; SID: ``"train"``/``"val"``/``"test"``), the pool is
   drawn from the ``"target"`` records (if there are none: from every record that is not
   ``"test"``), the test set is the ``"test"`` records. Test records sharing a scene with the
   chosen pool are dropped, so scenes stay disjoint even if the dataset's roles overlap.
2. **Scenes.** Otherwise whole scenes are assigned, deterministically from ``seed``: the
   target's scenes are shuffled; scenes go to the pool in that order until it holds at least
   ``target_pairs`` pairs; every remaining scene goes to the test set. If that leaves no scene
   for testing, the first scene (in shuffled order) whose removal still leaves enough pairs is
   made the test set instead. The pool then takes ``target_pairs`` random pairs of its scenes;
   unused pairs of pool scenes are NOT given to the test set (that would leak the scene).

``test_pairs`` caps the test set (a seeded random subset). Everything is deterministic given
``seed`` and the target name; another seed gives another pool. Subsets keep dataset order.
A dataset with no other sensor gives empty ``sources`` (target-only strategies still work).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rawadapt.data.base import PairDataset
from rawadapt.errors import DatasetError
from rawadapt.utils.seed import derive_seed


@dataclass
class DomainSplit:
    """A leave-one-sensor-out split.

    Attributes
    ----------
    sources
        All other sensors (records whose split is ``"test"`` excluded).
    target_pool
        The few target pairs to adapt with.
    target_test
        Target pairs from scenes disjoint from the pool's.
    target
        The target sensor.
    seed
        The seed the split was drawn with.
    """

    sources: PairDataset
    target_pool: PairDataset
    target_test: PairDataset
    target: str
    seed: int = 0

    def summary(self) -> dict[str, Any]:
        """Counts, sensors and scenes (JSON-friendly)."""
        return {
            "target": self.target,
            "seed": self.seed,
            "sources": {s: len(i) for s, i in self.sources.by_sensor().items()},
            "target_pool": len(self.target_pool),
            "target_test": len(self.target_test),
            "pool_scenes": sorted({r.scene for r in self.target_pool.records}),
            "test_scenes": sorted({r.scene for r in self.target_test.records}),
        }


def source_domains(split: DomainSplit) -> dict[str, PairDataset]:
    """The sources of ``split`` as one dataset per sensor (sorted by sensor name)."""
    return {
        sensor: split.sources.subset(idx, name=f"{split.sources.name}:{sensor}")
        for sensor, idx in split.sources.by_sensor().items()
    }


def _pick(rng: np.random.Generator, indices: list[int], n: int) -> list[int]:
    return sorted(int(i) for i in rng.choice(np.asarray(indices), size=n, replace=False))


def _by_scene(ds: PairDataset, indices: list[int]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i in indices:
        out.setdefault(ds.records[i].scene, []).append(i)
    return dict(sorted(out.items()))


def _scene_split(
    ds: PairDataset, idx: list[int], n: int, rng: np.random.Generator, target: str
) -> tuple[list[int], list[int]]:
    scenes = _by_scene(ds, idx)
    order = [list(scenes)[int(k)] for k in rng.permutation(len(scenes))]
    pool_scenes: list[str] = []
    count = 0
    for s in order:
        if count >= n:
            break
        pool_scenes.append(s)
        count += len(scenes[s])
    test_scenes = [s for s in order if s not in pool_scenes]
    if not test_scenes:
        total = len(idx)
        held = next((s for s in order if total - len(scenes[s]) >= n), None)
        if held is None:
            raise DatasetError(
                f"target sensor {target!r} has {total} pairs in {len(scenes)} scene(s): cannot take "
                f"{n} pool pairs and keep at least one whole scene for the test set; lower target_pairs"
            )
        test_scenes = [held]
        pool_scenes = [s for s in order if s != held]
    pool_idx = [i for s in pool_scenes for i in scenes[s]]
    test_idx = sorted(i for s in test_scenes for i in scenes[s])
    return _pick(rng, pool_idx, n), test_idx


def leave_one_sensor_out(
    dataset: PairDataset, target: str, *, target_pairs: int, seed: int = 0, test_pairs: int | None = None
) -> DomainSplit:
    """Hold out ``target`` as the few-shot target domain (see the module docstring).

    Parameters
    ----------
    dataset
        A multi-sensor dataset.
    target
        The target sensor name.
    target_pairs
        Pairs in the target pool (N).
    seed
        Makes the split deterministic.
    test_pairs
        Cap on the test-set size (seeded random subset); default: all eligible pairs.

    Raises
    ------
    DatasetError
        Unknown target sensor (the known ones are listed), too few target pairs or scenes.
    """
    if target_pairs < 1:
        raise DatasetError(f"target_pairs must be at least 1, got {target_pairs}")
    groups = dataset.by_sensor()
    if target not in groups:
        raise DatasetError(
            f"unknown target sensor {target!r}; dataset {dataset.name!r} has: {', '.join(groups) or '(none)'}",
            dataset.root,
        )
    rng = np.random.default_rng(derive_seed(seed, "leave_one_sensor_out", target))
    idx = groups[target]
    roles = {dataset.records[i].split for i in idx}
    if roles & {"target", "test"}:
        cands = [i for i in idx if dataset.records[i].split == "target"]
        if not cands:
            cands = [i for i in idx if dataset.records[i].split != "test"]
        if len(cands) < target_pairs:
            raise DatasetError(
                f"target sensor {target!r} has only {len(cands)} pool-eligible pairs "
                f"(split 'target'); {target_pairs} requested",
                dataset.root,
            )
        pool = _pick(rng, cands, target_pairs)
        pool_scenes = {dataset.records[i].scene for i in pool}
        test = [i for i in idx if dataset.records[i].split == "test" and dataset.records[i].scene not in pool_scenes]
        if not test:
            raise DatasetError(
                f"target sensor {target!r} has no 'test' pairs from scenes outside the pool", dataset.root
            )
    else:
        if len(idx) <= target_pairs:
            raise DatasetError(
                f"target sensor {target!r} has only {len(idx)} pairs; {target_pairs} requested for "
                "the pool plus at least one scene for the test set",
                dataset.root,
            )
        pool, test = _scene_split(dataset, idx, target_pairs, rng, target)
    if test_pairs is not None and 0 < test_pairs < len(test):
        test = _pick(rng, test, int(test_pairs))
    sources = [i for s, ii in groups.items() if s != target for i in ii if dataset.records[i].split != "test"]
    return DomainSplit(
        sources=dataset.subset(sorted(sources), name=f"{dataset.name}:sources"),
        target_pool=dataset.subset(pool, name=f"{dataset.name}:{target}:pool"),
        target_test=dataset.subset(test, name=f"{dataset.name}:{target}:test"),
        target=target,
        seed=int(seed),
    )
