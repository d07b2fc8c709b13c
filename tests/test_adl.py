"""ADL end to end through the engine: outputs, V' schedule, harmful data, ablation switches,
exact resume, data-parallel (2 processes, gloo) and the CLI."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixtures_data import make_multisensor_dataset, tiny_train_config

from rawadapt.train.adl_parts import validation_size
from rawadapt.train.api import run_training
from rawadapt.train.engine import TrainingInterrupted

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset():  # type: ignore[no-untyped-def]
    return make_multisensor_dataset(sensors=("a", "b", "c"), per_sensor={"source": 10, "target": 8, "test": 4}, size=32)


def _cfg(**over):  # type: ignore[no-untyped-def]
    base = {
        "iters": 24,
        "pretrain_iters": 8,
        "finetune_iters": 4,
        "data": {"target_pairs": 8, "patch": 16},
        "adl": {"val_crop": 32},
        "checkpoint_every": 5,
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v
    return tiny_train_config("adl", target="a", **base)


def _log(run: Path) -> list[dict[str, str]]:
    with open(run / "adl_log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_adl_run_writes_log_valuation_and_follows_schedule(tmp_path: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    m = run_training(_cfg(), tmp_path / "run", dataset=dataset, progress=False)
    run = tmp_path / "run"
    for name in (
        "adl_log.csv",
        "valuation.json",
        "adl_contribution.png",
        "adl_acceptance.png",
        "model.safetensors",
        "metrics.json",
    ):
        assert (run / name).is_file(), name
    rows = _log(run)
    assert len(rows) == 24
    # |V'| follows the 20 % -> 50 % schedule of the 8-pair pool, and V' never overlaps itself
    assert [int(r["k"]) for r in rows] == [validation_size(t, 24, 8) for t in range(24)]
    assert all(len(set(r["val_ids"].split(";"))) == int(r["k"]) for r in rows)
    val = json.loads((run / "valuation.json").read_text())
    assert set(val["domains"]) == {"b", "c"}
    assert all(0.0 <= d["acceptance_rate"] <= 1.0 for d in val["domains"].values())
    assert sum(d["tried"] for d in val["domains"].values()) == 24
    assert val["accepted"] == sum(int(r["accepted"]) for r in rows)
    assert [s for s in m["stages"]] == ["target-pretrain", "adaptive", "target-finetune"]
    # every accepted row beat its threshold, every rejected one did not (the queue rule)
    for r in rows:
        assert (float(r["psnr"]) > float(r["threshold"])) == bool(int(r["accepted"]))


@pytest.mark.parametrize("criterion", ["queue", "paired"])
def test_harmful_domain_is_rejected(tmp_path: Path, dataset, criterion: str) -> None:  # type: ignore[no-untyped-def]
    """Harmful2 (black or misaligned targets) must be accepted clearly less than clean sources.

    As in the paper, source adaptation starts from a model pretrained on the target (here 300
    steps: ~+3 dB over the noisy input). From an under-trained model every merged batch helps
    through its T_train half, whatever the source, and the test would measure nothing.
    """
    torch.set_num_threads(1)
    cfg = _cfg(
        iters=80,
        pretrain_iters=300,
        finetune_iters=0,
        data={"patch": 32, "harmful": ["harmful2"], "harmful_count": 8, "harmful_size": 32},
        model={"arch": "unet", "kwargs": {"width": 8, "depth": 2}},
        adl={"criterion": criterion},
        log_every=1000,
        checkpoint_every=1000,
    )
    m = run_training(cfg, tmp_path / "run", dataset=dataset, progress=False)
    assert m["psnr"] > m["psnr_noisy"] + 1.0  # the pretrained starting point is a real denoiser
    rates = {d: v["acceptance_rate"] for d, v in m["stages"]["adaptive"]["domains"].items()}
    clean = (rates["b"] + rates["c"]) / 2
    assert clean >= 0.1, rates
    assert rates["harmful2"] < 0.25 * clean, rates


def test_ablation_switches(tmp_path: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    # fixed validation set: the same V' every iteration
    run_training(_cfg(iters=10, adl={"validation": "fixed"}), tmp_path / "fixed", dataset=dataset, progress=False)
    rows = _log(tmp_path / "fixed")
    assert len({r["val_ids"] for r in rows}) == 1 and {int(r["k"]) for r in rows} == {validation_size(0, 10, 8)}
    # without ADL: every step accepted; without target pretraining: no first stage
    m = run_training(
        _cfg(iters=10, pretrain_iters=0, adl={"criterion": "none"}), tmp_path / "none", dataset=dataset, progress=False
    )
    assert list(m["stages"]) == ["adaptive", "target-finetune"]
    assert all(r["accepted"] == "1" for r in _log(tmp_path / "none"))
    # without ISO / sensor type: the model has the switch off
    from rawadapt.models.checkpoint import load_model

    run_training(
        _cfg(iters=4, model={"arch": "unet", "kwargs": {"width": 4, "depth": 2, "use_iso": False}}),
        tmp_path / "noiso",
        dataset=dataset,
        progress=False,
    )
    model, _ = load_model(tmp_path / "noiso")
    assert model.use_iso is False and model.use_sensor is True


def test_relative_queue_judges_gains_over_theta0(tmp_path: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    """``relative``: the queue holds PSNR gains over θ0 on the same V' (θ0's PSNR is logged as
    baseline_psnr); replaying eq. 2 on the logged gains reproduces every threshold and decision."""
    from rawadapt.train.adl_parts import PSNRQueue

    cfg = _cfg(iters=16, finetune_iters=0, adl={"relative": True, "queue_size": 3})
    run_training(cfg, tmp_path / "rel", dataset=dataset, progress=False)
    rows = _log(tmp_path / "rel")
    baseline_of: dict[frozenset[str], float] = {}
    q = PSNRQueue(3)
    q.push(0.0)  # Eval(V', θ0) − Eval(V', θ0)
    for r in rows:
        base, psnr, thr = float(r["baseline_psnr"]), float(r["psnr"]), float(r["threshold"])
        # θ0 is fixed during the stage: the same V' always has the same baseline
        key = frozenset(r["val_ids"].split(";"))
        assert baseline_of.setdefault(key, base) == pytest.approx(base, abs=1e-9)
        assert thr == pytest.approx(q.mean() + base, abs=1e-6)  # logged values: ~1e-7 rounding
        assert q.offer(psnr - base) == bool(int(r["accepted"]))
    assert len(baseline_of) > 1 and len({round(v, 6) for v in baseline_of.values()}) > 1


@pytest.mark.parametrize("adl", [{"criterion": "paired"}, {"criterion": "queue", "relative": True}])
def test_resume_mid_adl_continues_the_same_decisions(tmp_path: Path, dataset, adl) -> None:  # type: ignore[no-untyped-def]
    cfg = _cfg(adl=adl)
    run_training(cfg, tmp_path / "full", dataset=dataset, progress=False)
    with pytest.raises(TrainingInterrupted):
        run_training(cfg, tmp_path / "cut", dataset=dataset, progress=False, stop_after=8 + 13)  # mid-stage 2
    run_training(cfg, tmp_path / "cut", dataset=dataset, progress=False, resume=True)
    a, b = _log(tmp_path / "full"), _log(tmp_path / "cut")
    assert [(r["step"], r["domain"], r["accepted"], r["val_ids"]) for r in a] == [
        (r["step"], r["domain"], r["accepted"], r["val_ids"]) for r in b
    ]
    from safetensors.torch import load_file

    wa, wb = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_identical_decisions_and_weights(tmp_path: Path) -> None:
    out = tmp_path / "ranks"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(REPO / "tests" / "ddp_worker.py"),
        str(tmp_path / "run"),
        str(out),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((out / "rank0.json").read_text())
    r1 = json.loads((out / "rank1.json").read_text())
    assert r0["world"] == r1["world"] == 2
    assert len(r0["decisions"]) == 12 and r0["decisions"] == r1["decisions"]
    assert r0["weights"] == r1["weights"]
    # only rank 0 wrote the run folder: one log with one row per ADL iteration
    assert len(_log(tmp_path / "run")) == 12


@pytest.mark.slow
def test_torchrun_cli_entry_two_processes(tmp_path: Path) -> None:
    """The documented entry ``torchrun -m rawadapt.train adl ...`` (2 gloo processes on CPU)."""
    from rawadapt.data.registry import open_dataset

    open_dataset("synth")  # build the tiny synth here, not twice in parallel inside the ranks
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "rawadapt.train",
        "adl",
        "--data",
        "synth",
        "--target",
        "GP",
        "--target-pairs",
        "6",
        "--sources",
        "IP,S6",
        "--iters",
        "6",
        "--pretrain-iters",
        "2",
        "--finetune-iters",
        "2",
        "--patch",
        "16",
        "--batch",
        "2",
        "--width",
        "4",
        "--val-crop",
        "16",
        "--out",
        str(tmp_path / "run"),
        "--threads",
        "1",
        "--json",
        "--no-progress",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    json_lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(json_lines) == 1  # only rank 0 prints
    out = json.loads(json_lines[0])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert out["world_size"] == metrics["world_size"] == 2
    assert set(out["valuation"]["domains"]) == {"IP", "S6"}
    assert len(_log(tmp_path / "run")) == 6  # one row per ADL iteration, written once


def test_cli_adl_json_includes_valuation(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "rawadapt",
        "train",
        "adl",
        "--data",
        "synth",
        "--target",
        "GP",
        "--target-pairs",
        "6",
        "--sources",
        "IP,S6",
        "--iters",
        "6",
        "--pretrain-iters",
        "3",
        "--finetune-iters",
        "2",
        "--patch",
        "16",
        "--batch",
        "2",
        "--width",
        "4",
        "--val-crop",
        "16",
        "--criterion",
        "paired",
        "--add-harmful",
        "harmful2",
        "--out",
        str(tmp_path / "run"),
        "--threads",
        "1",
        "--json",
        "--no-progress",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out["valuation"]["domains"]) == {"IP", "S6", "harmful2"}
    assert all("acceptance_rate" in v for v in out["valuation"]["domains"].values())
    assert out["target"] == "GP" and out["psnr"] > 0
    assert "per source domain" in proc.stderr


def test_gain_over_noisy_queue_uses_the_noisy_psnr_of_each_draw(tmp_path: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    """``gain_over_noisy``: the reference of each V' is its noisy input's mean PSNR (no network),
    the threshold is that reference plus the queue mean, and accepted == (psnr > threshold)."""
    from rawadapt.train.adl import ValidationSet, noisy_psnrs

    cfg = _cfg(iters=16, finetune_iters=0, adl={"gain_over_noisy": True, "queue_size": 3})
    run_training(cfg, tmp_path / "g", dataset=dataset, progress=False)
    rows = _log(tmp_path / "g")
    by_id = {s.sample_id: s for s in dataset if s.sensor == "a"}
    refs = set()
    for r in rows:
        ids = r["val_ids"].split(";")
        vs = ValidationSet.from_samples([by_id[i] for i in ids], crop=32)
        expected = sum(noisy_psnrs(vs)) / len(ids)
        assert float(r["baseline_psnr"]) == pytest.approx(expected, abs=1e-4)
        assert bool(int(r["accepted"])) == (float(r["psnr"]) > float(r["threshold"]))
        refs.add(round(expected, 4))
    assert len(refs) > 1  # different draws, different references


def test_harmful_pairs_can_claim_the_target_type(tmp_path: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    """``data.harmful_label: target``: the harmful pairs carry the target's sensor name (a
    mislabelled dataset), the vocabulary gets no entry of their own, and ADL still trains."""
    from rawadapt.train.datasets import prepare_data

    own = _cfg(data={"harmful": ["harmful2"], "harmful_count": 4})
    claimed = _cfg(data={"harmful": ["harmful2"], "harmful_count": 4, "harmful_label": "target"})
    d_own, d_claim = prepare_data(own, dataset), prepare_data(claimed, dataset)
    assert "harmful2" in d_own.sensors and "harmful2" not in d_claim.sensors
    assert "harmful2" in d_claim.sources  # still its own source DOMAIN for ADL's choice and statistics
    assert {s.sensor for s in d_claim.sources["harmful2"].materialize()} == {"a"}
    m = run_training(claimed, tmp_path / "h", dataset=dataset, progress=False)
    assert m["sensors"] == sorted(d_claim.sensors) and "harmful2" in m["stages"]["adaptive"]["domains"]


def test_bench_passes_the_harmful_label_to_the_run(tmp_path: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    from rawadapt.baselines.base import Budget, make_method, make_task

    task = make_task("multisensor", "a", target_pairs=4, work_dir=tmp_path, dataset=dataset)
    task.extra.update({"harmful": ["harmful1"], "harmful_count": 4, "harmful_label": "target"})
    cfg = make_method("finetune", budget=Budget()).config(task)
    assert cfg.data.harmful == ["harmful1"] and cfg.data.harmful_label == "target"
    task.extra.pop("harmful_label")
    assert make_method("adl", budget=Budget()).config(task).data.harmful_label == "own"


def test_harmful_only_protocol_has_no_real_sources(tmp_path: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    """The ADL paper's Table 5 protocol: base = target pairs only; +harmful = the harmful set as
    the ONLY source; methods that need sources are skipped (not failed) in the base variant."""
    from rawadapt.baselines.base import Budget, make_method, make_task
    from rawadapt.eval.protocols.plan import TaskPlan, Variant, cell_applies
    from rawadapt.train.datasets import prepare_data

    cfg = _cfg(data={"harmful": ["harmful2"], "harmful_count": 4, "real_sources": False})
    data = prepare_data(cfg, dataset)
    assert list(data.sources) == ["harmful2"] and data.sensors == ["a", "harmful2"]
    m = run_training(cfg, tmp_path / "h", dataset=dataset, progress=False)
    assert set(m["stages"]["adaptive"]["domains"]) == {"harmful2"}

    task = make_task("multisensor", "a", target_pairs=4, work_dir=tmp_path, dataset=dataset)
    task.extra.update({"real_sources": False, "harmful": ["harmful2"], "harmful_count": 4})
    c = make_method("joint", budget=Budget()).config(task)
    assert c.data.real_sources is False and c.data.sources is None and c.data.harmful == ["harmful2"]
    base = TaskPlan(variant=Variant("base", "base"), target="a", seed=0, target_pairs=4, extra={"real_sources": False})
    plus = TaskPlan(
        variant=Variant("harmful2", "+harmful2", harmful=("harmful2",)),
        target="a",
        seed=0,
        target_pairs=4,
        extra={"real_sources": False, "harmful": ["harmful2"]},
    )
    assert not cell_applies(base, "adl") and not cell_applies(base, "joint") and cell_applies(base, "target-only")
    assert cell_applies(plus, "adl") and cell_applies(plus, "joint")


def test_on_reject_target_step_trains_on_the_target_when_everything_is_rejected(tmp_path: Path, dataset) -> None:  # type: ignore[no-untyped-def]
    """With an impossible acceptance bar every candidate is rejected: the paper's rule leaves θ
    where stage 1 left it (the same V' always scores the same), ``target-step`` keeps training
    on T_train (the score of the same V' moves) while accepting nothing."""
    adl = {"validation": "fixed", "criterion": "paired", "paired_margin": 1e6}
    finals = {}
    for mode in ("restore", "target-step"):
        run = tmp_path / mode
        run_training(
            _cfg(iters=8, finetune_iters=0, adl={**adl, "on_reject": mode}), run, dataset=dataset, progress=False
        )
        rows = _log(run)
        assert not any(int(r["accepted"]) for r in rows)
        finals[mode] = {round(float(r["baseline_psnr"]), 6) for r in rows}
    assert len(finals["restore"]) == 1
    assert len(finals["target-step"]) > 1


def test_cli_on_reject_flag_reaches_the_config() -> None:
    from rawadapt.cli.train_cmd import _overrides
    from rawadapt.errors import ConfigError
    from rawadapt.train.config import config_from_dict

    over = _overrides(adl_on_reject="target-step", adl_criterion=None)
    assert over == {"adl": {"on_reject": "target-step"}}
    assert config_from_dict({"strategy": "adl", **over}).adl.on_reject == "target-step"
    with pytest.raises((ConfigError, ValueError)):
        config_from_dict({"strategy": "adl", "adl": {"on_reject": "skip"}})


def test_resume_from_the_initial_state_records_real_training_time(tmp_path: Path, dataset, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The resumable state saved before the first step must hold ~0 s of training (it once held
    the process clock); a run killed right after it and resumed records its own time."""
    from rawadapt.models.checkpoint import load_training_state
    from rawadapt.train import engine as engine_mod

    run = tmp_path / "run"

    def die(self, resume=None):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt  # the process is killed before the first step

    with monkeypatch.context() as mp:
        mp.setattr(engine_mod.Engine, "run", die)
        with pytest.raises(BaseException):
            run_training(_cfg(iters=8), run, dataset=dataset, progress=False)
    state = load_training_state(run / "training_state.pt")
    assert state["global_step"] == 0 and state["train_seconds"] < 60
    m = run_training(_cfg(iters=8), run, dataset=dataset, progress=False, resume=True)
    assert m["timings"]["train_seconds"] < 120
