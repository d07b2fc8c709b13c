"""Precision/layout policy (rawadapt.utils.compute), the compact PMRID backbone and noise-aware
conditioning: bf16 changes no result that matters, ``auto`` follows the CPU's features, exact
resume holds within one precision, a camera outside the vocabulary runs from its profile."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_data import make_multisensor_dataset, tiny_train_config
from safetensors.torch import load_file

from rawadapt.metrics import evaluate_pair
from rawadapt.models import build_model
from rawadapt.models.checkpoint import load_model, save_model
from rawadapt.models.inference import denoise_image
from rawadapt.noise.conditioning import (
    ksigma_coefficients,
    noise_features,
    noise_line,
    sample_noise_line,
)
from rawadapt.noise.profiles import load_profile
from rawadapt.train.api import run_training
from rawadapt.train.engine import TrainingInterrupted
from rawadapt.utils import compute
from rawadapt.utils.compute import CpuInfo, precision_scope, resolve_precision


@pytest.fixture(scope="module")
def ds():  # type: ignore[no-untyped-def]
    return make_multisensor_dataset(sensors=("a", "b", "c"), per_sensor=12, size=24)


# -- auto picks from the CPU's features ------------------------------------------------------------
@pytest.mark.parametrize(
    "flags, expected",
    [
        ({"avx2", "fma"}, "fp32"),  # AVX2-only EPYC
        ({"avx2", "avx512f", "avx512_vnni"}, "fp32"),  # AVX-512 without bf16
        ({"avx2", "avx512f", "avx512_bf16"}, "bf16"),  # Cooper Lake / Zen 4
        ({"avx512f", "amx_tile", "amx_bf16"}, "bf16"),  # Sapphire Rapids
    ],
)
def test_auto_follows_cpu_flags(monkeypatch: pytest.MonkeyPatch, flags: set[str], expected: str) -> None:
    monkeypatch.delenv(compute.ENV_VAR, raising=False)
    monkeypatch.setattr(compute, "cpu_info", lambda: CpuInfo("mock CPU", frozenset(flags)))
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    rec = compute.compute_record("auto")
    assert rec["precision"] == expected and rec["cpu"] == "mock CPU"
    assert set(rec["cpu_flags"]) == flags & set(compute.REPORTED_FLAGS)
    assert "mock CPU" in compute.machine_line("auto") and f"precision {expected}" in compute.machine_line("auto")


def test_env_override_and_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute, "cpu_info", lambda: CpuInfo("amx", frozenset({"amx_bf16"})))
    monkeypatch.setenv(compute.ENV_VAR, "fp32")
    assert resolve_precision("auto") == "fp32"
    monkeypatch.delenv(compute.ENV_VAR)
    assert resolve_precision(None) == "bf16"  # process default is auto
    with precision_scope("fp32"):
        assert resolve_precision(None) == "fp32"
    assert compute.default_precision() == "auto"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16")


def test_cpuinfo_parser(tmp_path: Path) -> None:
    f = tmp_path / "cpuinfo"
    f.write_text(
        "processor\t: 0\nmodel name\t: Test Xeon\nflags\t\t: fpu avx2 amx_bf16 amx_tile\n\n"
        "processor\t: 1\nmodel name\t: Test Xeon\nflags\t\t: fpu avx2 amx_bf16 amx_tile\n"
    )
    info = compute._read_cpuinfo(str(f))
    assert info.model == "Test Xeon" and info.native_bf16 and "avx2" in info.flags
    assert not compute._read_cpuinfo(str(tmp_path / "missing")).native_bf16


# -- bf16 vs fp32 on a trained model ---------------------------------------------------------------
def _train(ds, tmp_path: Path, name: str, precision: str, **kw):  # type: ignore[no-untyped-def]
    cfg = tiny_train_config(
        "target-only", iters=kw.pop("iters", 60), optim={"lr": 3e-3}, model={"kwargs": {"width": 8, "depth": 2}}
    ).model_copy(update={"precision": precision})
    return run_training(cfg, tmp_path / name, dataset=ds, progress=False, **kw)


def test_bf16_inference_matches_fp32_on_trained_model(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _train(ds, tmp_path, "fp32", "fp32")
    model, _ = load_model(tmp_path / "fp32")
    gaps = []
    for s in [s for s in ds if s.sensor == "c"][:4]:
        p32 = denoise_image(model, s.noisy, sensor=s.sensor, iso=s.effective_iso, precision="fp32")
        p16 = denoise_image(model, s.noisy, sensor=s.sensor, iso=s.effective_iso, precision="bf16")
        assert not np.array_equal(p32, p16)  # bf16 really ran
        psnr16 = evaluate_pair(p16, s.clean, with_ssim=False)["psnr"]
        gaps.append(psnr16 - evaluate_pair(p32, s.clean, with_ssim=False)["psnr"])
    assert max(abs(g) for g in gaps) < 0.05, gaps
    assert model.compute_precision is None  # the per-call precision was not left on the model


def test_bf16_training_reaches_fp32_psnr(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    m32 = _train(ds, tmp_path, "t32", "fp32", iters=150)
    m16 = _train(ds, tmp_path, "t16", "bf16", iters=150)
    assert m16["compute"]["precision"] == "bf16" and m32["compute"]["precision"] == "fp32"
    assert m16["psnr"] > m16["psnr_noisy"] + 0.5 and m32["psnr"] > m32["psnr_noisy"] + 0.5  # both learned
    assert abs(m16["psnr"] - m32["psnr"]) < 0.1, (m16["psnr"], m32["psnr"])
    saved = json.loads((tmp_path / "t16" / "model.json").read_text())
    assert saved["compute"]["precision"] == "bf16" and "cpu_flags" in saved["compute"]


def test_exact_resume_in_bf16(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tiny_train_config("finetune", iters=6, data={"mixing": "domain"}).model_copy(update={"precision": "bf16"})
    run_training(cfg, tmp_path / "full", dataset=ds, progress=False)
    with pytest.raises(TrainingInterrupted):
        run_training(cfg, tmp_path / "part", dataset=ds, progress=False, stop_after=4)
    run_training(cfg, tmp_path / "part", dataset=ds, progress=False, resume=True)
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_output_is_fp32_and_grads_reach_input() -> None:
    m = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["a"]})
    m.set_precision("bf16")
    x = torch.rand(2, 4, 17, 13, requires_grad=True)
    y = m(x, torch.tensor([0, 0]), torch.tensor([100.0, 800.0]))
    assert y.dtype == torch.float32 and y.shape == x.shape
    y.abs().mean().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()
    assert all(p.dtype == torch.float32 for p in m.parameters())  # master weights stay fp32


# -- compact backbone ------------------------------------------------------------------------------
@pytest.mark.parametrize("h, w", [(16, 16), (17, 29), (5, 7)])
def test_pmrid_contract(h: int, w: int) -> None:
    m = build_model({"arch": "pmrid", "in_channels": 4, "sensors": ["a", "b"]})
    assert 0.8e6 < m.num_parameters() < 1.8e6  # PMRID class (~1 M)
    x = torch.rand(2, 4, h, w)
    with torch.no_grad():
        y = m(x, torch.tensor([0, 1]), torch.tensor([100.0, 3200.0]))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert m.first_layer() is m.stem and m.last_layer() is m.head and m.uses_metadata
    again = build_model(m.config())
    again.load_state_dict(m.state_dict())  # config round trip, same tensors
    assert json.loads(json.dumps(m.config()))["arch"] == "pmrid"


def test_pmrid_is_a_third_of_unet16_flops() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    def flops(cfg: dict) -> float:  # type: ignore[type-arg]
        m = build_model({**cfg, "in_channels": 4, "sensors": ["a"]})
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            m(torch.rand(1, 4, 64, 64), torch.tensor([0]), torch.tensor([100.0]))
        return fc.get_total_flops() / 64 / 64

    pm, un = flops({"arch": "pmrid"}), flops({"arch": "unet", "width": 16})
    assert 20e3 < pm < 40e3 and 0.2 < pm / un < 0.45, (pm, un)


def test_pmrid_modulation_changes_output_and_trains(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from rawadapt.train.config import ModelConfig

    cfg = tiny_train_config("target-only", iters=40).model_copy(
        update={"model": ModelConfig(arch="pmrid", kwargs={"width": 4})}
    )
    m = run_training(cfg, tmp_path / "p", dataset=ds, progress=False)
    assert m["arch"] == "pmrid" and math.isfinite(m["psnr"])
    model, _ = load_model(tmp_path / "p")
    x = torch.rand(1, 4, 16, 16)
    with torch.no_grad():
        assert not torch.equal(
            model(x, torch.tensor([0]), torch.tensor([100.0])), model(x, torch.tensor([0]), torch.tensor([6400.0]))
        )


# -- noise-aware conditioning ----------------------------------------------------------------------
def test_noise_line_physics() -> None:
    prof = load_profile("SonyA7S2")
    a1, b1 = noise_line(prof, 800)
    a2, b2 = noise_line(prof, 3200)
    assert 0 < a1 < a2 and 0 < b1 < b2  # more gain, more noise
    ar, br = noise_line(prof, 800, ratio=100)
    assert ar == pytest.approx(100 * a1) and br == pytest.approx(1e4 * b1)  # brightened x100
    assert sample_noise_line("not-a-camera", 800) == pytest.approx((math.nan,) * 2, nan_ok=True)
    assert sample_noise_line("SonyA7S2", None) == pytest.approx((math.nan,) * 2, nan_ok=True)
    f = noise_features(torch.tensor([[a1, b1], [math.nan, math.nan]]))
    assert torch.all(f[1] == 0) and torch.all(f[0].abs() < 3)


def test_ksigma_maps_noise_to_anchor_line() -> None:
    a, b = 2e-3, 4e-6
    c, d = ksigma_coefficients(torch.tensor([[a, b]]))
    x = torch.full((200_000,), 0.3, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    y = x + torch.randn(x.shape, generator=gen, dtype=torch.float64) * math.sqrt(a * 0.3 + b)
    yt = y * float(c) + float(d)
    a0, b0 = compute_anchor = (1e-2, 1e-4)
    assert compute_anchor == (1e-2, 1e-4)
    # Var[y'] = a0 * E[y'] + b0 on the anchor line
    assert float(yt.var()) == pytest.approx(a0 * float(yt.mean()) + b0, rel=0.02)
    c_u, d_u = ksigma_coefficients(torch.tensor([[math.nan, math.nan]]))
    assert float(c_u) == 1.0 and float(d_u) == 0.0


@pytest.mark.parametrize("arch", ["unet", "pmrid"])
def test_noise_conditioned_model_uses_noise(arch: str) -> None:
    kw = {"width": 4, "depth": 2} if arch == "unet" else {"width": 4}
    m = build_model({"arch": arch, "in_channels": 4, "sensors": ["a", "b"], "use_noise": True, "ksigma": True, **kw})
    assert m.uses_noise and m.config()["use_noise"] and m.config()["ksigma"]
    for mlp in (m.modulation.mlp_gamma, m.modulation.mlp_beta):  # make the modulation non-trivial
        torch.nn.init.normal_(mlp[-1].weight, std=0.5)
    x = torch.rand(1, 4, 16, 16)
    s, iso = torch.tensor([0]), torch.tensor([800.0])
    with torch.no_grad():
        y1 = m(x, s, iso, noise=torch.tensor([[1e-3, 1e-6]]))
        y2 = m(x, s, iso, noise=torch.tensor([[5e-2, 1e-3]]))
    assert not torch.allclose(y1, y2)
    plain = build_model({"arch": arch, "in_channels": 4, "sensors": ["a", "b"], **kw})
    assert "use_noise" not in plain.config() and not plain.uses_noise


def test_unseen_camera_runs_from_its_profile(tmp_path: Path) -> None:
    """A noise-conditioned model trained without SonyA7S2 denoises a SonyA7S2 frame: no one-hot
    guess, the noise parameters come from the profile, and they change the pixels."""
    from rawadapt.eval.denoise_file import denoise_file

    m = build_model(
        {"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["NikonD850", "GP"], "use_noise": True}
    )
    for mlp in (m.modulation.mlp_gamma, m.modulation.mlp_beta):
        torch.nn.init.normal_(mlp[-1].weight, std=0.5)
    save_model(tmp_path / "run", m)
    planes = np.random.default_rng(0).random((4, 24, 20), dtype=np.float32)
    np.save(tmp_path / "in.npy", planes)
    outs = []
    for iso in (400, 6400):
        res = denoise_file(
            tmp_path / "run",
            tmp_path / "in.npy",
            tmp_path / f"o{iso}.npy",
            sensor="SonyA7S2",
            iso=iso,
            profile="SonyA7S2",
            tile=0,
        )
        assert res["noise_source"] == "profile:SonyA7S2" and res["noise"] is not None
        outs.append(np.load(tmp_path / f"o{iso}.npy"))
    assert not np.allclose(outs[0], outs[1])


def test_finetune_starts_target_embedding_at_source_average() -> None:
    m = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["a", "b", "t"]})
    first = m.modulation.mlp_gamma[0]
    m.modulation.init_sensor_embedding(2, [0, 1, 2])
    assert torch.allclose(first.weight[:, 2], first.weight[:, :2].mean(dim=1))


def test_finetune_stage_initialises_target_embedding(ds) -> None:  # type: ignore[no-untyped-def]
    from rawadapt.train.datasets import prepare_data
    from rawadapt.train.strategies import get_strategy

    cfg = tiny_train_config("finetune")
    stages = get_strategy("finetune").build(cfg, prepare_data(cfg, ds))
    assert [getattr(s, "embed_from_sources", None) for s in stages] == [None, "a"]


def test_bench_method_passes_noise_to_noise_conditioned_model() -> None:
    """The benchmark's trained methods hand each test image's noise line to the network (a
    noise-conditioned model evaluated without it sees 'unknown noise' on every image)."""
    from rawadapt.baselines.base import Budget, make_method
    from rawadapt.data.sample import Sample

    m = build_model(
        {"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["SonyA7S2"], "use_noise": True}
    )
    for mlp in (m.modulation.mlp_gamma, m.modulation.mlp_beta):
        torch.nn.init.normal_(mlp[-1].weight, std=0.5)
    method = make_method("adl-noise", budget=Budget())
    method.model = m
    rng = np.random.default_rng(0)
    sample = Sample(
        sample_id="x",
        noisy=rng.random((4, 16, 16), dtype=np.float32),
        clean=None,
        sensor="SonyA7S2",
        iso=3200,
        ratio=10,
        space="raw",
        cfa="RGGB",
    )
    blind = denoise_image(m, sample.noisy, sensor="SonyA7S2", iso=sample.effective_iso, cfa="RGGB")
    seen = method.denoise(sample)
    line = denoise_image(
        m,
        sample.noisy,
        sensor="SonyA7S2",
        iso=sample.effective_iso,
        cfa="RGGB",
        noise=sample_noise_line("SonyA7S2", 3200, 10),
    )
    assert np.array_equal(seen, line) and not np.allclose(seen, blind)


def test_training_batches_give_each_patch_its_noise_line() -> None:
    from rawadapt.data.patches import Batch, PatchSampler
    from rawadapt.data.sample import Sample
    from rawadapt.train.step import model_kwargs

    rng = np.random.default_rng(0)
    samples = [
        Sample(
            sample_id=f"s{i}",
            noisy=rng.random((4, 20, 20), dtype=np.float32),
            clean=rng.random((4, 20, 20), dtype=np.float32),
            sensor=sensor,
            iso=iso,
            ratio=ratio,
            space="raw",
            cfa="RGGB",
        )
        for i, (sensor, iso, ratio) in enumerate([("SonyA7S2", 800, 100), ("NikonD850", 3200, 1)])
    ]
    m = build_model(
        {
            "arch": "unet",
            "in_channels": 4,
            "width": 4,
            "depth": 2,
            "sensors": ["SonyA7S2", "NikonD850"],
            "use_noise": True,
        }
    )
    batch = Batch.cat(
        [
            PatchSampler(samples, patch=8, batch=1).draw(indices=[0]),
            PatchSampler(samples, patch=8, batch=1).draw(indices=[1]),
        ]
    )
    noise = model_kwargs(m, batch)["noise"]
    assert torch.allclose(noise[0], torch.tensor(sample_noise_line("SonyA7S2", 800, 100)))
    assert torch.allclose(noise[1], torch.tensor(sample_noise_line("NikonD850", 3200, 1)))
    plain = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["SonyA7S2"]})
    assert model_kwargs(plain, batch) == {}
