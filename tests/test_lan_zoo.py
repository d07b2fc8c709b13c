"""LAN on shipped zoo models: the protocol's ``zoo:NAME`` backbones, and the noise line that a
noise-conditioned model (zoo:raw-unet-any) is told during test-time adaptation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rawadapt.adapt.api import adapt_image
from rawadapt.adapt.meta import MetaConfig, meta_train
from rawadapt.data.base import PairDataset
from rawadapt.data.sample import Sample, SampleRecord
from rawadapt.errors import ConfigError
from rawadapt.eval.protocols.lan import LanProtocolSettings, ProtocolData, run_lan_protocol
from rawadapt.metrics import evaluate_pair
from rawadapt.models.checkpoint import load_model
from rawadapt.models.inference import denoise_image
from rawadapt.noise.conditioning import sample_noise_line


def _raw_sample(seed: int, size: int = 32) -> Sample:
    """A dark packed-RAW crop of the simulated SonyA7S2 at ISO 800, x100 (noise from its profile)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    clean = np.stack([0.05 + 0.2 * (yy * rng.random() + xx * rng.random()) for _ in range(4)]).astype(np.float32)
    a, b = sample_noise_line("SonyA7S2", 800.0, 100.0)
    noisy = clean + np.sqrt(a * clean + b) * rng.standard_normal(clean.shape)
    return Sample(
        noisy=np.clip(noisy, 0, 1).astype(np.float32),
        clean=clean,
        sensor="SonyA7S2",
        iso=800.0,
        ratio=100.0,
        space="raw",
        cfa="RGGB",
        sample_id=f"raw{seed}",
    )


def _srgb_sample(seed: int, size: int = 32) -> Sample:
    rng = np.random.default_rng(seed)
    clean = (0.3 + 0.4 * rng.random((3, 1, 1)) * np.ones((3, size, size))).astype(np.float32)
    noisy = np.clip(clean + 0.03 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
    return Sample(noisy=noisy, clean=clean, sensor="cam", space="srgb", sample_id=f"srgb{seed}")


def test_adaptation_tells_a_noise_conditioned_model_the_noise_line() -> None:
    """Iteration 0 of LAN is the frozen network: with the noise line it must equal
    ``denoise_image(..., noise=line)``, and differ from the model run without it."""
    model, _ = load_model("zoo:raw-unet-any")
    assert model.uses_noise
    s = _raw_sample(0)
    line = sample_noise_line(s.sensor, s.iso, s.ratio)
    ref_with = evaluate_pair(denoise_image(model, s.noisy, iso=s.effective_iso, cfa=s.cfa, noise=line), s.clean)
    r = adapt_image(model, s.noisy, clean=s.clean, iso=s.effective_iso, cfa=s.cfa, iters=1, noise=line)
    assert r.psnr[0] == pytest.approx(ref_with["psnr"], abs=0.05)
    r0 = adapt_image(model, s.noisy, clean=s.clean, iso=s.effective_iso, cfa=s.cfa, iters=1)
    assert abs(r0.psnr[0] - r.psnr[0]) > 0.05  # the line changes the output: it is really passed


def test_meta_training_refuses_a_noise_conditioned_model() -> None:
    model, _ = load_model("zoo:raw-unet-any")
    with pytest.raises(ConfigError, match="noise-conditioned"):
        meta_train(model, [_raw_sample(1)], MetaConfig(meta_iters=1, patch=16))


def test_protocol_runs_zoo_backbones_without_pretraining(tmp_path: Path) -> None:
    out = tmp_path / "lan"
    settings = LanProtocolSettings(
        out=str(out),
        quick=True,
        backbones=["zoo:srgb-unet-m"],
        raw_backbones=["zoo:raw-unet-any"],
        iters=[1],
        losses=["zsn2n"],
        methods=["lan", "meta"],
        images=2,
        crop=32,
        meta_iters=1,
        threads=1,
        figures=False,
    )
    data = ProtocolData(
        srgb_pretrain=_pairs([_srgb_sample(7), _srgb_sample(8)]),
        srgb_test=[_srgb_sample(2), _srgb_sample(3)],
        raw_pretrain=_FakeRaw(),
        raw_test=[_raw_sample(4), _raw_sample(5)],
    )
    res = run_lan_protocol(settings, data=data, progress=False)
    assert not (out / "pretrain").exists()  # shipped models are used as they are
    cells = sorted(p.name for p in (out / "cells").iterdir())
    # sRGB: lan + meta; RAW: lan only (no meta row for a noise-conditioned model)
    assert cells == [
        "raw-zoo-raw-unet-any-lan-zsn2n-it1.json",
        "raw-zoo-raw-unet-any-pretrained.json",
        "srgb-zoo-srgb-unet-m-lan-zsn2n-it1.json",
        "srgb-zoo-srgb-unet-m-meta-zsn2n-it1.json",
        "srgb-zoo-srgb-unet-m-pretrained.json",
    ]
    assert res["computed"] == 3
    # the pretrained row and LAN's iteration 0 both see the noise line: each equals the network
    # called with the sample's profile line, and the line is recorded
    pre = json.loads((out / "cells" / "raw-zoo-raw-unet-any-pretrained.json").read_text())
    lan = json.loads((out / "cells" / "raw-zoo-raw-unet-any-lan-zsn2n-it1.json").read_text())
    model, _ = load_model("zoo:raw-unet-any")
    for s, p, q in zip(data.raw_test or [], pre["images"], lan["images"]):
        line = sample_noise_line(s.sensor, s.iso, s.ratio)
        ref = evaluate_pair(denoise_image(model, s.noisy, iso=s.effective_iso, cfa=s.cfa, noise=line), s.clean)
        assert p["psnr"] == pytest.approx(ref["psnr"], abs=0.05)
        assert q["psnr"][0] == pytest.approx(ref["psnr"], abs=0.05)
        assert q["noise"] == pytest.approx(list(line)) and p["noise"] == pytest.approx(list(line))
    assert lan["model_sha256"] and lan["model_sha256"] == pre["model_sha256"]
    # a cell made with other weights is not reused: it is recomputed
    lan["model_sha256"] = "0" * 64
    (out / "cells" / "raw-zoo-raw-unet-any-lan-zsn2n-it1.json").write_text(json.dumps(lan))
    res2 = run_lan_protocol(settings, data=data, progress=False)
    assert res2["computed"] == 1 and res2["skipped"] == 2
    # a ZS-N2N cell of the noise-conditioned model made before the sub-images' halved line is
    # recomputed; the blind sRGB model's cells do not depend on that rule
    for name in ("raw-zoo-raw-unet-any-lan-zsn2n-it1.json", "srgb-zoo-srgb-unet-m-lan-zsn2n-it1.json"):
        c = json.loads((out / "cells" / name).read_text())
        assert c.pop("subimage_line") == "halved"
        (out / "cells" / name).write_text(json.dumps(c))
    res3 = run_lan_protocol(settings, data=data, progress=False)
    assert res3["computed"] == 1 and res3["skipped"] == 2
    md = (out / "results.md").read_text()
    assert "## srgb: zoo:srgb-unet-m" in md and "## raw: zoo:raw-unet-any" in md
    assert "zoo:raw-unet-any is the shipped model" in md


def test_protocol_refuses_zoo_models_of_the_wrong_space_or_unknown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a srgb model"):
        LanProtocolSettings(out=str(tmp_path), backbones=["zoo:raw-unet-any"]).validate()
    with pytest.raises(ConfigError, match="unknown zoo model|known"):
        LanProtocolSettings(out=str(tmp_path), raw_backbones=["zoo:no-such-model"]).validate()


def _pairs(samples: list[Sample]) -> PairDataset:
    """Meta-training tasks for the sRGB zoo model (the protocol draws them from its pretraining data)."""
    by_id = {s.sample_id: s for s in samples}
    records = [
        SampleRecord(sample_id=s.sample_id, sensor=s.sensor, iso=None, scene=s.sample_id, noisy_path="", space="srgb")
        for s in samples
    ]
    return PairDataset(records, lambda r: by_id[r.sample_id], name="mem-srgb", space="srgb")


class _FakeRaw:
    """The RAW pretraining dataset's role for a zoo backbone: only its sensor list (the split)."""

    name = "fake-synth"
    sensors = ["CanonEOS5D4", "SonyA7S2"]
    records: list[object] = []

    def __len__(self) -> int:
        return 0


def test_adapt_cli_tells_a_noise_model_where_its_noise_came_from(tmp_path: Path) -> None:
    from rawadapt.cli.adapt_cmd import run_adapt

    s = _raw_sample(6)
    np.save(tmp_path / "y.npy", s.noisy)
    kw = dict(
        method="lan",
        loss="zsn2n",
        iters=1,
        clean=None,
        lr=None,
        seed=0,
        sensor=None,
        meta_run=None,
        bound="tanh",
        save_adapted=False,
        device="cpu",
    )
    res = run_adapt(
        Path("zoo:raw-unet-any"), [tmp_path / "y.npy"], out=tmp_path / "a", iso=80000.0, profile="SonyA7S2", **kw
    )
    img = res["images"][0]
    assert img["noise_source"].startswith("profile:") and len(img["noise"]) == 2
    res = run_adapt(Path("zoo:raw-unet-any"), [tmp_path / "y.npy"], out=tmp_path / "b", iso=None, **kw)
    assert res["images"][0]["noise_source"] == "estimated"
    assert torch.isfinite(torch.from_numpy(np.load(res["images"][0]["output"]))).all()


def test_cost_bench_measures_a_zoo_model(tmp_path: Path) -> None:
    from rawadapt.eval.protocols.lan_cost import run_cost_bench

    res = run_cost_bench(
        tmp_path / "cost",
        backbones=["zoo:srgb-unet-m"],
        losses=["zsn2n"],
        size=32,
        iters=1,
        warmup=0,
        repeats=1,
        threads=1,
        progress=False,
    )
    (row,) = res["rows"]
    assert row["backbone"] == "zoo:srgb-unet-m" and row["lan_time_s"] > 0 and row["full_time_s"] > 0
    runs = json.loads((tmp_path / "cost" / "results.json").read_text())["runs"]
    assert {r["parameters"] for r in runs} == {4365915}  # the shipped network, not a random default one
    assert (tmp_path / "cost" / "cells" / "zoo-srgb-unet-m-zsn2n-lan-r0.json").is_file()
    with pytest.raises(ConfigError, match="unknown zoo model|known"):
        run_cost_bench(tmp_path / "c2", backbones=["zoo:nope"], progress=False)
