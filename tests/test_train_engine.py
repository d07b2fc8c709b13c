"""The training engine: strategies' stages, determinism, exact resume, NaN stop, run folder."""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from fixtures_data import make_multisensor_dataset, tiny_train_config
from safetensors.torch import load_file

from rawadapt.errors import CheckpointError, ConfigError, NonFiniteError
from rawadapt.models.checkpoint import load_model, load_training_state
from rawadapt.train.api import run_training
from rawadapt.train.config import load_config
from rawadapt.train.datasets import prepare_data
from rawadapt.train.engine import TrainingInterrupted
from rawadapt.train.stages import Stage, SupervisedStage
from rawadapt.train.strategies import STRATEGIES, get_strategy, register_strategy


@pytest.fixture(scope="module")
def ds():  # type: ignore[no-untyped-def]
    return make_multisensor_dataset(sensors=("a", "b", "c"), per_sensor=12, size=24)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def log_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# -- strategies build the right stages ----------------------------------------------------------
def test_strategies_build_expected_stages(ds) -> None:  # type: ignore[no-untyped-def]
    assert {"pretrain", "target-only", "finetune", "joint"} <= set(STRATEGIES)
    cfg = tiny_train_config("finetune", iters=10, pretrain_iters=7, finetune_iters=3)
    data = prepare_data(cfg, ds)
    assert data.target == "a" and sorted(data.sources) == ["b", "c"] and data.sensors == ["a", "b", "c"]
    assert len(data.target_pool) == 3 and len(data.test) > 0
    assert not {r.scene for r in data.test.records} & {r.scene for r in data.target_pool.records}

    stages = get_strategy("finetune").build(cfg, data)
    assert [(s.name, s.iters) for s in stages] == [("source-pretrain", 7), ("target-finetune", 3)]
    assert all(isinstance(s, Stage) for s in stages)
    assert list(stages[0].domains) == ["b", "c"] and list(stages[1].domains) == ["a"]
    assert stages[0].lr == cfg.optim.lr and stages[1].lr == pytest.approx(cfg.resolved_finetune_lr())

    (only,) = get_strategy("target-only").build(cfg, data)
    assert only.iters == 10 and list(only.domains) == ["a"] and only.anchor is None

    (joint,) = get_strategy("joint").build(cfg, data)
    assert list(joint.domains) == ["b", "c"] and len(joint.anchor) == 3

    pre_cfg = tiny_train_config("pretrain", target=None, data={"sources": ["b", "c"]})
    pre = prepare_data(pre_cfg, ds)
    assert pre.target is None and pre.target_pool is None and pre.sensors == ["b", "c"]
    assert {r.split for r in pre.test.records} == {"test"} and {r.sensor for r in pre.test.records} == {"b", "c"}
    assert all(r.split != "test" for d in pre.sources.values() for r in d.records)
    (p,) = get_strategy("pretrain").build(pre_cfg, pre)
    assert list(p.domains) == ["b", "c"]


def test_target_strategy_needs_known_target(ds) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="needs a target"):
        prepare_data(tiny_train_config("finetune", target=None), ds)
    with pytest.raises(ConfigError, match="'zz' not in the dataset"):
        prepare_data(tiny_train_config("finetune", target="zz"), ds)
    with pytest.raises(ConfigError, match="both the target and a source"):
        prepare_data(tiny_train_config("finetune", data={"sources": ["a", "b"]}), ds)


def test_joint_batches_mix_target_and_one_source(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tiny_train_config("joint", data={"batch": 6})
    data = prepare_data(cfg, ds)
    (stage,) = get_strategy("joint").build(cfg, data)
    seen = set()

    class Ctx:  # the parts of TrainContext that setup() touches
        model = torch.nn.Linear(1, 1)
        optimizer = None
        scheduler = None

    stage.setup(Ctx())  # type: ignore[arg-type]
    for _ in range(12):
        batch, domain = stage.draw()
        assert batch.domains[:3] == ["target"] * 3 and set(batch.sensor[:3]) == {"a"}
        assert set(batch.domains[3:]) == {domain} and domain in ("b", "c")
        seen.add(domain)
    assert seen == {"b", "c"}


# -- determinism and exact resume -----------------------------------------------------------------
def test_same_seed_same_weights_other_seed_differs(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tiny_train_config("finetune", iters=4)
    run_training(cfg, tmp_path / "r1", dataset=ds, progress=False)
    run_training(cfg, tmp_path / "r2", dataset=ds, progress=False)
    assert_same_weights(weights(tmp_path / "r1"), weights(tmp_path / "r2"))
    assert [r["loss"] for r in log_rows(tmp_path / "r1")] == [r["loss"] for r in log_rows(tmp_path / "r2")]
    run_training(cfg.model_copy(update={"seed": 1}), tmp_path / "r3", dataset=ds, progress=False)
    w1, w3 = weights(tmp_path / "r1"), weights(tmp_path / "r3")
    assert any(not torch.equal(w1[k], w3[k]) for k in w1)


@pytest.mark.parametrize("stop", [3, 6, 9])  # mid-stage (after a checkpoint-free step), stage boundary, stage 2
def test_interrupted_then_resumed_equals_uninterrupted(ds, tmp_path: Path, stop: int) -> None:  # type: ignore[no-untyped-def]
    # finetune = 2 stages x 6 iterations; checkpoint_every=4 so stop=3 is NOT on a periodic checkpoint
    cfg = tiny_train_config("finetune", iters=6, data={"mixing": "domain"})
    full = tmp_path / "full"
    run_training(cfg, full, dataset=ds, progress=False)

    part = tmp_path / "part"
    with pytest.raises(TrainingInterrupted, match="--resume") as err:
        run_training(cfg, part, dataset=ds, progress=False, stop_after=stop)
    assert err.value.saved and err.value.step == stop
    state = load_training_state(part / "training_state.pt")
    assert state["global_step"] == stop
    assert (state["stage_index"], state["stage_step"]) == ((0, stop) if stop < 6 else (1, stop - 6))
    assert not (part / "metrics.json").exists()

    metrics = run_training(cfg, part, dataset=ds, progress=False, resume=True)
    assert_same_weights(weights(full), weights(part))
    # the log is the same too: rows after the checkpoint were not duplicated
    rf, rp = log_rows(full), log_rows(part)
    assert [r["step"] for r in rp] == [str(i) for i in range(1, 13)]
    assert [r["loss"] for r in rf] == [r["loss"] for r in rp]
    assert metrics["iterations"]["total"] == 12


def test_resume_of_pooled_pretrain_and_second_interrupt(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tiny_train_config("pretrain", target=None, iters=9, data={"mixing": "pooled"})
    run_training(cfg, tmp_path / "full", dataset=ds, progress=False)
    run = tmp_path / "part"
    with pytest.raises(TrainingInterrupted):
        run_training(cfg, run, dataset=ds, progress=False, stop_after=2)
    with pytest.raises(TrainingInterrupted):  # interrupted again after resuming
        run_training(cfg, run, dataset=ds, progress=False, stop_after=5, resume=True)
    run_training(cfg, run, dataset=ds, progress=False, resume=True)
    assert_same_weights(weights(tmp_path / "full"), weights(run))


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signal handlers need the main thread"
)
def test_ctrl_c_saves_state_and_resumes_exactly(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tiny_train_config("target-only", iters=8)
    run_training(cfg, tmp_path / "full", dataset=ds, progress=False)

    def hit_ctrl_c(ctx: Any, values: dict[str, Any]) -> None:
        if ctx.global_step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match="continue with") as err:
        run_training(cfg, tmp_path / "part", dataset=ds, progress=False, on_step=hit_ctrl_c)
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    assert err.value.saved and load_training_state(tmp_path / "part" / "training_state.pt")["global_step"] == 3
    run_training(cfg, tmp_path / "part", dataset=ds, progress=False, resume=True)
    assert_same_weights(weights(tmp_path / "full"), weights(tmp_path / "part"))


# -- errors ---------------------------------------------------------------------------------------
def test_nan_stops_with_clear_error(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tiny_train_config("target-only", iters=20, optim={"lr": 1e30, "schedule": "constant"})
    with pytest.raises(NonFiniteError) as err:
        run_training(cfg, tmp_path / "nan", dataset=ds, progress=False)
    msg = str(err.value)
    assert "stage 'target'" in msg and "lower the learning rate" in msg and "\n" not in msg


def test_run_folder_refusals(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tiny_train_config("target-only", iters=2)
    run = tmp_path / "run"
    with pytest.raises(CheckpointError, match="nothing to resume"):
        run_training(cfg, run, dataset=ds, progress=False, resume=True)
    run_training(cfg, run, dataset=ds, progress=False)
    stamp = (run / "model.safetensors").stat().st_mtime_ns
    with pytest.raises(ConfigError, match="already exists"):
        run_training(cfg, run, dataset=ds, progress=False)
    assert (run / "model.safetensors").stat().st_mtime_ns == stamp  # nothing overwritten
    with pytest.raises(ConfigError, match="iters"):
        run_training(cfg.model_copy(update={"iters": 3}), run, dataset=ds, progress=False, resume=True)


def test_run_folder_contents(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tiny_train_config("finetune", iters=3, eval_every=2, eval_images=2)
    run = tmp_path / "run"
    metrics = run_training(cfg, run, dataset=ds, progress=False)
    for name in (
        "config.yaml",
        "model.safetensors",
        "model.json",
        "metrics.json",
        "log.csv",
        "eval.csv",
        "training_state.pt",
    ):
        assert (run / name).is_file(), name
    assert load_config(run / "config.yaml") == cfg
    on_disk = json.loads((run / "metrics.json").read_text())
    assert on_disk["psnr"] == pytest.approx(metrics["psnr"]) and on_disk["target"] == "a"
    assert on_disk["n_test"] == len(on_disk["images"]) > 0 and set(on_disk["per_sensor"]) == {"a"}
    for key in ("psnr", "ssim", "psnr_noisy", "ssim_noisy"):
        assert isinstance(on_disk[key], float)
    assert on_disk["iterations"] == {"total": 6, "stages": {"source-pretrain": 3, "target-finetune": 3}}
    assert on_disk["timings"]["train_seconds"] > 0
    model, meta = load_model(run)
    assert meta["strategy"] == "finetune" and meta["target"] == "a" and meta["complete"] is True
    assert meta["sensors"] == ["a", "b", "c"] and meta["train_config"]["iters"] == 3
    rows = log_rows(run)
    assert list(rows[0])[:7] == ["step", "stage", "stage_step", "loss", "lr", "step_time", "data_time"]
    assert [r["stage"] for r in rows] == ["source-pretrain"] * 3 + ["target-finetune"] * 3
    with open(run / "eval.csv", newline="") as fh:
        ev = list(csv.DictReader(fh))
    assert [r["step"] for r in ev] == ["2", "4"] and all(r["n"] == "2" for r in ev)


def test_custom_stage_extra_log_keys(ds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A new stage plugs in through the registry; new log keys widen log.csv."""

    class Counting(SupervisedStage):
        def step(self, ctx, i):  # type: ignore[no-untyped-def]
            out = super().step(ctx, i)
            if i >= 2:
                out["accepted"] = float(i % 2)
            return out

        def finish(self, ctx):  # type: ignore[no-untyped-def]
            return {"custom": True}

    def build(config, data):  # type: ignore[no-untyped-def]
        return [
            Counting(
                "count",
                {data.target: data.target_pool},
                4,
                lr=config.optim.lr,
                optim=config.optim,
                patch=16,
                batch=2,
                seed=config.seed,
            )
        ]

    register_strategy("custom", build, description="test")
    try:
        metrics = run_training(tiny_train_config("custom"), tmp_path / "run", dataset=ds, progress=False)
    finally:
        STRATEGIES.unregister("custom")
    rows = log_rows(tmp_path / "run")
    assert "accepted" in rows[0] and [r["accepted"] for r in rows] == ["", "", "0", "1"]
    assert metrics["stages"] == {"count": {"custom": True}}


def test_lr_schedule_shapes() -> None:
    from rawadapt.train.schedule import LRSchedule

    cos = LRSchedule(1.0, 11, "cosine", warmup=0, min_factor=0.1)
    lrs = [cos.lr_at(i) for i in range(11)]
    assert lrs[0] == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.1) and lrs[5] == pytest.approx(0.55)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    warm = LRSchedule(2.0, 10, "constant", warmup=4)
    assert [warm.lr_at(i) for i in range(6)] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])
    assert LRSchedule(1.0, 1, "cosine").lr_at(0) == pytest.approx(1.0)


@pytest.mark.parametrize("arch, kwargs", [("dncnn", {"depth": 3, "width": 8}), ("unet", {"width": 4, "depth": 2})])
def test_pretrain_on_srgb(tmp_path: Path, arch: str, kwargs: dict[str, Any]) -> None:
    srgb = make_multisensor_dataset(sensors=("p", "q"), per_sensor=8, size=24, space="srgb")
    cfg = tiny_train_config("pretrain", target=None, iters=3, model={"arch": arch, "kwargs": kwargs})
    metrics = run_training(cfg, tmp_path / "pre", dataset=srgb, progress=False)
    assert metrics["space"] == "srgb" and set(metrics["per_sensor"]) == {"p", "q"}
    model, meta = load_model(tmp_path / "pre")
    assert meta["space"] == "srgb" and model.in_channels == 3 and meta["sensors"] == ["p", "q"]
