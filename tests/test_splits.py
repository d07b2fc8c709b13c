"""Leave-one-sensor-out splits: pool size, scene disjointness, determinism, roles, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rawadapt.data.base import PairDataset
from rawadapt.data.sample import Sample, SampleRecord
from rawadapt.data.splits import DomainSplit, leave_one_sensor_out, source_domains
from rawadapt.errors import DatasetError


def _loader(rec: SampleRecord) -> Sample:
    a = np.zeros((3, 4, 4), np.float32)
    return Sample(noisy=a, clean=a, sensor=rec.sensor, space="srgb", sample_id=rec.sample_id)


def _dataset(spec: dict[str, list[tuple[str, str | None]]]) -> PairDataset:
    """sensor -> [(scene, split)] records."""
    recs = [
        SampleRecord(
            sample_id=f"{s}-{i}",
            sensor=s,
            iso=100.0,
            scene=scene,
            noisy_path=f"/x/{s}{i}",
            clean_path=f"/y/{s}{i}",
            space="srgb",
            split=split,
        )
        for s, items in spec.items()
        for i, (scene, split) in enumerate(items)
    ]
    return PairDataset(recs, _loader, name="t", space="srgb")


def _scenes(ds: PairDataset) -> set[str]:
    return {r.scene for r in ds.records}


@pytest.fixture(scope="module")
def polyu_ds(shared_data: Path) -> PairDataset:
    from rawadapt.data.adapters import polyu

    return polyu.open(shared_data / "polyu")


@pytest.mark.parametrize("target,n", [("Canon5D2", 10), ("NikonD800", 20), ("Canon600D", 5), ("Sony", 3)])
def test_polyu_loso(polyu_ds: PairDataset, target: str, n: int) -> None:
    split = leave_one_sensor_out(polyu_ds, target, target_pairs=n, seed=0)
    assert isinstance(split, DomainSplit) and split.target == target
    assert len(split.target_pool) == n
    assert {r.sensor for r in split.target_pool.records} == {target} == {r.sensor for r in split.target_test.records}
    assert len(split.target_test) >= 1
    assert not _scenes(split.target_pool) & _scenes(split.target_test)  # disjoint by scene
    ids_pool = {r.sample_id for r in split.target_pool.records}
    assert not ids_pool & {r.sample_id for r in split.target_test.records}
    assert target not in split.sources.sensors and len(split.sources) == 100 - len(polyu_ds.by_sensor()[target])
    doms = source_domains(split)
    assert sorted(doms) == sorted(set(polyu_ds.sensors) - {target})
    assert sum(len(d) for d in doms.values()) == len(split.sources)
    # every pair of a test scene is in the test set (whole scenes)
    for scene in _scenes(split.target_test):
        n_scene = sum(1 for r in polyu_ds.records if r.sensor == target and r.scene == scene)
        assert sum(1 for r in split.target_test.records if r.scene == scene) == n_scene


def test_determinism_and_seed_dependence(polyu_ds: PairDataset) -> None:
    a = leave_one_sensor_out(polyu_ds, "Canon5D2", target_pairs=10, seed=0)
    b = leave_one_sensor_out(polyu_ds, "Canon5D2", target_pairs=10, seed=0)
    assert [r.sample_id for r in a.target_pool.records] == [r.sample_id for r in b.target_pool.records]
    assert [r.sample_id for r in a.target_test.records] == [r.sample_id for r in b.target_test.records]
    pools = {
        tuple(
            r.sample_id for r in leave_one_sensor_out(polyu_ds, "Canon5D2", target_pairs=10, seed=s).target_pool.records
        )
        for s in range(5)
    }
    assert len(pools) > 1  # another seed, another pool


def test_test_pairs_cap(polyu_ds: PairDataset) -> None:
    split = leave_one_sensor_out(polyu_ds, "NikonD800", target_pairs=5, seed=1, test_pairs=4)
    assert len(split.target_test) == 4
    assert not _scenes(split.target_pool) & _scenes(split.target_test)


def test_errors(polyu_ds: PairDataset) -> None:
    with pytest.raises(DatasetError, match=r"unknown target sensor 'Pixel'.*Canon5D2"):
        leave_one_sensor_out(polyu_ds, "Pixel", target_pairs=5)
    with pytest.raises(DatasetError, match="only 11 pairs"):
        leave_one_sensor_out(polyu_ds, "Canon600D", target_pairs=11)
    # Canon600D: scenes of 3 (waterhouse), 2 (book) and 6 (toy) pairs; 10 leaves no whole scene
    with pytest.raises(DatasetError, match="at least one whole scene"):
        leave_one_sensor_out(polyu_ds, "Canon600D", target_pairs=10)
    with pytest.raises(DatasetError):
        leave_one_sensor_out(polyu_ds, "Sony", target_pairs=0)


def test_fallback_keeps_a_test_scene() -> None:
    # one big scene and two small ones: greedy order may swallow everything; a scene is held out
    ds = _dataset({"T": [("big", None)] * 8 + [("s1", None), ("s2", None)], "S": [("x", None)]})
    for seed in range(6):
        split = leave_one_sensor_out(ds, "T", target_pairs=8, seed=seed)
        assert len(split.target_pool) == 8 and len(split.target_test) >= 1
        assert not _scenes(split.target_pool) & _scenes(split.target_test)


def test_roles_like_the_synth_benchmark() -> None:
    spec = {
        "A": [(f"a{i}", "source") for i in range(4)]
        + [(f"at{i}", "target") for i in range(6)]
        + [(f"ae{i}", "test") for i in range(3)],
        "B": [(f"b{i}", "source") for i in range(5)]
        + [(f"bt{i}", "target") for i in range(2)]
        + [(f"be{i}", "test") for i in range(2)],
    }
    ds = _dataset(spec)
    split = leave_one_sensor_out(ds, "A", target_pairs=4, seed=3)
    assert {r.split for r in split.target_pool.records} == {"target"} and len(split.target_pool) == 4
    assert {r.split for r in split.target_test.records} == {"test"} and len(split.target_test) == 3
    assert {r.sensor for r in split.sources.records} == {"B"}
    assert {r.split for r in split.sources.records} == {"source", "target"}  # B's test pairs excluded
    with pytest.raises(DatasetError, match="only 6 pool-eligible"):
        leave_one_sensor_out(ds, "A", target_pairs=7)
    # overlapping scenes between roles are removed from the test set
    ds2 = _dataset({"A": [("same", "target"), ("same", "test"), ("other", "test")], "B": [("b", "source")]})
    split2 = leave_one_sensor_out(ds2, "A", target_pairs=1)
    assert [r.scene for r in split2.target_test.records] == ["other"]
    # SID-like roles (train/test): the pool comes from non-test records
    ds3 = _dataset({"Sony": [("1", "train"), ("2", "train"), ("3", "val"), ("4", "test")]})
    split3 = leave_one_sensor_out(ds3, "Sony", target_pairs=2)
    assert {r.split for r in split3.target_pool.records} <= {"train", "val"}
    assert [r.scene for r in split3.target_test.records] == ["4"] and len(split3.sources) == 0
    assert split3.summary()["target_test"] == 1
