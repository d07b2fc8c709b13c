"""Transfer-learning (AIN, Kim et al. 2020) and MZSR-style meta-transfer baselines (issue 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_data import make_multisensor_dataset

from rawadapt.baselines.base import (
    BENCH_METHODS,
    Budget,
    make_method,
    make_task,
    method_class,
)

#: budgets at which the methods reliably beat the noisy input on the fixture data (the default
#: "tiny" preset only checks that they run); AIN's steps cost ~3x a U-Net step, it needs fewer
LEARN = {
    "ain": {"iters": 20, "pretrain_iters": 10, "finetune_iters": 10, "lr": 3e-3, "batch": 8, "patch": 32, "width": 8},
    "mzsr": {"iters": 60, "pretrain_iters": 30, "finetune_iters": 30, "lr": 3e-3, "batch": 8, "patch": 32, "width": 8},
}


def _dataset(space: str):  # type: ignore[no-untyped-def]
    return make_multisensor_dataset(
        sensors=("a", "b", "c"), per_sensor={"source": 4, "target": 4, "test": 2}, size=32, space=space
    )


def _task(tmp: Path, space: str = "raw"):  # type: ignore[no-untyped-def]
    return make_task("multisensor", "a", dataset=_dataset(space), target_pairs=3, work_dir=tmp, threads=1)


def _errors(method, task) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    den = [float(np.mean((method.denoise(s) - s.clean) ** 2)) for s in task.test]
    noisy = [float(np.mean((s.noisy - s.clean) ** 2)) for s in task.test]
    return float(np.mean(den)), float(np.mean(noisy))


@pytest.mark.parametrize("name", ["ain", "mzsr"])
def test_registry_names_resolve(name: str) -> None:
    cls = method_class(name)
    assert cls.name == name and BENCH_METHODS.target(name).endswith(cls.__name__)
    assert set(cls.spaces) == {"raw", "srgb"}


def test_models_and_strategies_registered() -> None:
    import rawadapt.baselines.ain  # noqa: F401
    import rawadapt.baselines.mzsr  # noqa: F401
    from rawadapt.models.registry import MODELS, build_model
    from rawadapt.train.strategies import STRATEGIES

    assert "ain-transfer" in STRATEGIES and "mzsr" in STRATEGIES
    assert "ain-unet" in MODELS
    model = build_model({"arch": "ain-unet", "in_channels": 3, "width": 4, "depth": 2, "sensors": ["a"]})
    x = torch.rand(1, 3, 20, 28)  # any size: padded internally
    y, noise_map = model.forward_with_map(x)
    assert y.shape == x.shape and noise_map.shape == x.shape and bool((noise_map >= 0).all())


@pytest.mark.parametrize(("name", "space"), [("ain", "raw"), ("ain", "srgb"), ("mzsr", "raw"), ("mzsr", "srgb")])
def test_method_lowers_error(tmp_path: Path, name: str, space: str) -> None:
    task = _task(tmp_path, space)
    method = make_method(name, budget=Budget.preset("tiny", **LEARN[name]))
    method.run_fit(task)
    den, noisy = _errors(method, task)
    assert den < 0.98 * noisy, (name, space, den, noisy)
    assert method.info()["fit_seconds"] > 0


@pytest.mark.parametrize("name", ["ain", "mzsr"])
def test_method_deterministic(tmp_path: Path, name: str) -> None:
    outs = []
    for run in ("one", "two"):
        task = _task(tmp_path / run)
        method = make_method(name, budget=Budget.preset("tiny"))
        method.run_fit(task)
        outs.append(method.denoise(task.test[0]))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_ain_transfer_updates_only_ain_and_last_layer(tmp_path: Path) -> None:
    from rawadapt.baselines.ain import TransferAIN, is_transfer_parameter
    from rawadapt.models.checkpoint import load_model
    from rawadapt.train.api import run_training

    task = _task(tmp_path)
    method = TransferAIN(budget=Budget.preset("tiny"))
    cfg = method.config(task)
    n_pre = cfg.stage_iters("pretrain")
    snap: dict[str, torch.Tensor] = {}

    def on_step(ctx, values) -> None:  # type: ignore[no-untyped-def]
        if ctx.global_step == n_pre:  # the last source-pretraining iteration
            snap.update({k: v.detach().clone() for k, v in ctx.model.named_parameters()})

    run = tmp_path / "run"
    run_training(cfg, run, dataset=task.dataset, progress=False, on_step=on_step)
    final, meta = load_model(run)
    assert meta["arch"] == "ain-unet"
    changed = {k for k, v in final.named_parameters() if not torch.equal(v.detach(), snap[k])}
    assert changed, "the transfer stage changed nothing"
    assert all(is_transfer_parameter(k) for k in changed), sorted(k for k in changed if not is_transfer_parameter(k))
    assert any(".ain" in k for k in changed) and any(k.startswith("head.") for k in changed)
    assert not any(k.startswith("estimator.") for k in changed)
    summary = json_load(run / "metrics.json")["stages"]["ain-transfer"]
    assert 0 < summary["trainable_parameters"] < summary["total_parameters"]


def test_ain_checkpoint_reloads_exactly(tmp_path: Path) -> None:
    from rawadapt.models.checkpoint import load_model

    task = _task(tmp_path)
    method = make_method("ain", budget=Budget.preset("tiny"))
    method.run_fit(task)
    again, _ = load_model(method.run_dir)
    x = torch.from_numpy(task.test[0].noisy)[None]
    with torch.no_grad():
        np.testing.assert_array_equal(method.model(x).numpy(), again(x).numpy())


def test_ain_estimator_loss_is_asymmetric() -> None:
    from rawadapt.baselines.ain import estimator_loss

    target = torch.full((1, 1, 2, 2), 0.1)
    under = estimator_loss(torch.full((1, 1, 16, 16), 0.05), target, tv_weight=0.0)
    over = estimator_loss(torch.full((1, 1, 16, 16), 0.15), target, tv_weight=0.0)
    assert float(under) > float(over) > 0  # under-estimating the noise costs more (alpha = 0.3)


def test_mzsr_meta_stage_runs_first_order_maml(tmp_path: Path) -> None:
    from rawadapt.baselines.mzsr import MZSR, meta_iterations

    task = _task(tmp_path)
    method = MZSR(budget=Budget.preset("tiny", iters=12))
    method.run_fit(task)
    stages = method.metrics["stages"]
    assert list(stages) == ["source-pretrain", "meta-transfer", "target-finetune"]
    assert stages["meta-transfer"]["algorithm"] == "first-order MAML"
    assert method.metrics["iterations"]["stages"]["meta-transfer"] == meta_iterations(6) == 1
    assert method.info()["meta"]["meta_updates"] == 1
    log = (method.run_dir / "log.csv").read_text()
    assert "support_loss" in log


def json_load(path: Path):  # type: ignore[no-untyped-def]
    import json

    return json.loads(path.read_text())


@pytest.mark.parametrize(("name", "stop"), [("ain", 16), ("mzsr", 11)])
def test_interrupted_run_resumes_exactly(tmp_path: Path, name: str, stop: int) -> None:
    from rawadapt.models.checkpoint import load_model
    from rawadapt.train.api import run_training
    from rawadapt.train.engine import TrainingInterrupted

    task = _task(tmp_path)
    cfg = make_method(name, budget=Budget.preset("tiny", iters=12)).config(task)
    run_training(cfg, tmp_path / "full", dataset=task.dataset, progress=False)
    with pytest.raises(TrainingInterrupted):
        run_training(cfg, tmp_path / "cut", dataset=task.dataset, progress=False, stop_after=stop)
    run_training(cfg, tmp_path / "cut", dataset=task.dataset, progress=False, resume=True)
    a, _ = load_model(tmp_path / "full")
    b, _ = load_model(tmp_path / "cut")
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
