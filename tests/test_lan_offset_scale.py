"""LAN's noise-scaled offset (``offset_scale="noise"``, method ``lan-scaled``), its noise estimate,
and the ``lan-scaled`` row of the Table-1 protocol and of ``rawadapt adapt``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rawadapt.adapt.api import ADAPT_METHODS, adapt_image, make_adapter
from rawadapt.adapt.lan import LAN_ITERS, LAN_LR, NOISE_REF, LANAdapter
from rawadapt.errors import ConfigError, ShapeError
from rawadapt.models import build_model
from rawadapt.models.noise_std import estimate_noise_std


def _fields(n: int, ch: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """Smooth fields with a few flat rectangles, in [0, 1]."""
    low = torch.rand(n, ch, 6, 6, generator=gen)
    img = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    for i in range(n):
        for _ in range(3):
            r0, c0 = torch.randint(0, size - 8, (2,), generator=gen).tolist()
            h, w = torch.randint(4, size // 2, (2,), generator=gen).tolist()
            img[i, :, r0 : r0 + h, c0 : c0 + w] = torch.rand(ch, 1, 1, generator=gen)
    return img.clamp(0, 1)


def _dark_raw(seed: int = 0, size: int = 48) -> tuple[torch.Tensor, torch.Tensor, float]:
    """A dark, nearly clean packed RAW image (4 planes): Poisson-Gaussian noise of std ~0.002."""
    gen = torch.Generator().manual_seed(seed)
    clean = _fields(1, 4, size, gen)[0] * 0.05 + 0.01
    noisy = clean + (2e-5 * clean + 3e-6).sqrt() * torch.randn(clean.shape, generator=gen)
    return noisy, clean, float((noisy - clean).std())


@pytest.fixture(scope="module")
def raw_net() -> torch.nn.Module:
    """A tiny frozen packed-RAW network (untrained: the offset's size does not depend on it)."""
    torch.manual_seed(0)
    net = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "use_sensor": False, "use_iso": False})
    net.set_precision("fp32")
    return net.eval()


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------------------------
# The noise estimate
# --------------------------------------------------------------------------------------------


def test_noise_std_estimate_white_noise_and_quantised() -> None:
    from rawadapt.baselines.noise_level import estimate_gaussian_sigma

    gen = torch.Generator().manual_seed(1)
    clean = _fields(1, 3, 96, gen)[0] * 0.6 + 0.2
    for sigma in (0.002, 0.01, 0.05):
        noisy = clean + sigma * torch.randn(clean.shape, generator=gen)
        est = estimate_noise_std(noisy)
        assert est == pytest.approx(sigma, rel=0.2)
        assert est == pytest.approx(estimate_gaussian_sigma(noisy.numpy()), rel=0.25)  # the project's estimator
        assert estimate_noise_std(noisy.numpy()) == est and estimate_noise_std(noisy[None]) == est
    # 8-bit sRGB at low noise: most details are 0 (up to float rounding); the estimate stays > 0
    q = (torch.round((clean + 0.002 * torch.randn(clean.shape, generator=gen)) * 255) / 255).clamp(0, 1)
    assert 1e-4 < estimate_noise_std(q) < 0.01
    assert 0 <= estimate_noise_std(torch.full((3, 8, 8), 0.5)) < 1e-6  # constant image: 0
    with pytest.raises(ShapeError, match="too small"):
        estimate_noise_std(torch.rand(3, 2, 8))
    with pytest.raises(ShapeError, match=r"\(C, H, W\)"):
        estimate_noise_std(torch.rand(8, 8))


# --------------------------------------------------------------------------------------------
# The offset
# --------------------------------------------------------------------------------------------


def test_scaled_offset_stays_within_a_few_sigma_on_dark_raw(raw_net: torch.nn.Module) -> None:
    noisy, clean, sigma = _dark_raw()
    assert sigma < 0.003
    plain = LANAdapter(raw_net, iters=LAN_ITERS, track_ssim=False).adapt(noisy, clean=clean)
    scaled = LANAdapter(raw_net, iters=LAN_ITERS, track_ssim=False, offset_scale="noise").adapt(noisy, clean=clean)
    phi_plain = float(np.abs(plain.adapted_input - noisy.numpy()).max())
    phi_scaled = float(np.abs(scaled.adapted_input - noisy.numpy()).max())
    # the paper's offset: Adam moves it ~lr per step, in absolute units -> ~0.01, several sigma here
    assert phi_plain > 0.5 * LAN_ITERS * LAN_LR and phi_plain > 3 * sigma
    # noise-scaled: ~iters * lr * sigma_hat / NOISE_REF = 0.5 sigma_hat at most (x1.5: Adam's steps may exceed lr)
    sigma_hat = scaled.details["noise_std"]
    assert sigma_hat == pytest.approx(sigma, rel=0.35)
    assert scaled.details["offset_gain"] == pytest.approx(sigma_hat / NOISE_REF)
    assert 0 < phi_scaled <= 1.5 * LAN_ITERS * LAN_LR * sigma_hat / NOISE_REF <= 3 * sigma
    assert scaled.method == "lan-scaled" and plain.method == "lan"
    assert set(scaled.to_dict()) >= {"offset_scale", "noise_std", "offset_gain"}
    assert "noise_std" not in plain.to_dict() and not plain.details


def test_zero_offset_at_start_is_the_frozen_network(raw_net: torch.nn.Module) -> None:
    noisy, clean, _ = _dark_raw(seed=3)
    before = _state(raw_net)
    with torch.no_grad():
        frozen = raw_net(noisy[None])[0].numpy()
    for scale in ("none", "noise"):
        for bound in ("tanh", "none"):
            r0 = LANAdapter(raw_net, iters=0, bound=bound, offset_scale=scale).adapt(noisy, clean=clean)
            assert np.array_equal(r0.denoised, frozen) and np.array_equal(r0.adapted_input, noisy.numpy())
            r = LANAdapter(raw_net, iters=3, bound=bound, offset_scale=scale, track_ssim=False).adapt(
                noisy, clean=clean
            )
            assert r.psnr[0] == r0.psnr[0]  # entry 0 = the frozen network's output
    assert all(torch.equal(v, before[k]) for k, v in _state(raw_net).items())  # the network never changes


def test_scaled_lan_is_deterministic(raw_net: torch.nn.Module) -> None:
    noisy, clean, _ = _dark_raw(seed=4)
    runs = [
        adapt_image(raw_net, noisy, clean=clean, method="lan-scaled", loss=loss, iters=5, seed=2)
        for loss in ("nbr2nbr", "nbr2nbr", "zsn2n", "zsn2n")
    ]
    for a, b in (runs[:2], runs[2:]):
        assert np.array_equal(a.denoised, b.denoised) and np.array_equal(a.adapted_input, b.adapted_input)
        assert a.psnr == b.psnr and a.loss == b.loss and a.details == b.details
    # lan + offset_scale="noise" is the same method as lan-scaled
    same = adapt_image(raw_net, noisy, clean=clean, method="lan", offset_scale="noise", loss="zsn2n", iters=5, seed=2)
    assert np.array_equal(same.denoised, runs[2].denoised)


def test_api_options_and_errors(raw_net: torch.nn.Module) -> None:
    assert "lan-scaled" in ADAPT_METHODS
    noisy, _, _ = _dark_raw(seed=5, size=16)
    r = make_adapter(raw_net, "lan", offset_scale="noise").adapt(noisy)
    assert r.method == "lan-scaled" and r.iters == LAN_ITERS and r.lr == LAN_LR
    given = LANAdapter(raw_net, iters=2, offset_scale="noise", noise_std=0.004).adapt(noisy)
    assert given.details["noise_std"] == 0.004 and given.details["offset_gain"] == pytest.approx(0.004 / NOISE_REF)
    assert make_adapter(raw_net, "full", offset_scale="none").method == "full"  # accepted, LAN only
    with pytest.raises(ConfigError, match="offset scale"):
        make_adapter(raw_net, "lan", offset_scale="pixel")
    with pytest.raises(ConfigError, match="lan-scaled is LAN"):
        make_adapter(raw_net, "lan-scaled", offset_scale="none")
    with pytest.raises(ConfigError, match="noise_ref"):
        LANAdapter(raw_net, offset_scale="noise", noise_ref=0.0)
    with pytest.raises(ConfigError, match="noise_std"):
        LANAdapter(raw_net, offset_scale="noise", noise_std=-1.0)


# --------------------------------------------------------------------------------------------
# Where it is exposed: the Table-1 protocol and `rawadapt adapt`
# --------------------------------------------------------------------------------------------


def _mem_dataset(space: str, sensors: list[str], per_sensor: int, size: int, sigma: float, seed: int) -> object:
    from rawadapt.data.base import PairDataset
    from rawadapt.data.sample import Sample, SampleRecord

    rng = np.random.default_rng(seed)
    ch = 3 if space == "srgb" else 4
    samples: dict[str, Sample] = {}
    records = []
    for s in sensors:
        for i in range(per_sensor):
            yy, xx = np.mgrid[0:size, 0:size] / size
            clean = np.stack([0.2 + 0.6 * (yy * rng.random() + xx * rng.random()) / 2 for _ in range(ch)])
            clean = clean.astype(np.float32)
            noisy = np.clip(clean + sigma * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
            sid = f"{s}-{i}"
            split = "test" if i == per_sensor - 1 else "train"
            samples[sid] = Sample(
                noisy=noisy, clean=clean, sensor=s, iso=800.0, space=space, scene=f"sc{i}", sample_id=sid
            )  # type: ignore[arg-type]
            records.append(
                SampleRecord(
                    sample_id=sid, sensor=s, iso=800.0, scene=f"sc{i}", noisy_path="", space=space, split=split
                )
            )  # type: ignore[arg-type]
    return PairDataset(records, lambda r: samples[r.sample_id], name=f"mem-{space}", space=space)  # type: ignore[arg-type]


def test_protocol_shows_lan_scaled_beside_lan(tmp_path: Path) -> None:
    from rawadapt.eval.protocols.lan import LanProtocolSettings, ProtocolData, run_lan_protocol

    srgb = _mem_dataset("srgb", ["s1", "s2"], 2, 20, 0.05, 0)
    raw = _mem_dataset("raw", ["r1", "r2"], 2, 20, 0.01, 1)
    tests = [s.crop(0, 0, 16, 16) for s in srgb]  # type: ignore[attr-defined]
    settings = LanProtocolSettings(
        out=str(tmp_path / "lan"),
        quick=True,
        backbones=["dncnn"],
        raw_backbones=["dncnn"],
        iters=[1, 2],
        losses=["zsn2n"],
        methods=["lan", "lan-scaled"],
        images=1,
        crop=16,
        pretrain_iters=2,
        threads=1,
        figures=False,
    )
    res = run_lan_protocol(settings, data=ProtocolData(srgb_pretrain=srgb, srgb_test=tests[:1], raw_pretrain=raw))
    rows = {(r["space"], r["method"], r["iters"]) for r in res["rows"]}
    for space in ("srgb", "raw"):
        assert {(space, m, n) for m in ("lan", "lan-scaled") for n in (1, 2)} <= rows
    md = (tmp_path / "lan" / "results.md").read_text()
    assert md.count("| lan-scaled | 2 |") == 2 and md.index("| lan | 2 |") < md.index("| lan-scaled | 1 |")
    cell = json.loads((tmp_path / "lan" / "cells" / "raw-dncnn-lan-scaled-zsn2n-it2.json").read_text())
    assert cell["images"][0]["offset_scale"] == "noise" and cell["images"][0]["noise_std"] > 0


def test_adapt_cli_method_lan_scaled(tmp_path: Path, raw_net: torch.nn.Module) -> None:
    from rawadapt.cli.adapt_cmd import run_adapt
    from rawadapt.models.checkpoint import save_model

    run = tmp_path / "run"
    save_model(run, raw_net, extra={"strategy": "pretrain"})
    noisy, clean, _ = _dark_raw(seed=6, size=16)
    np.save(tmp_path / "y.npy", noisy.numpy())
    np.save(tmp_path / "c.npy", clean.numpy())
    res = run_adapt(
        run,
        [tmp_path / "y.npy"],
        out=tmp_path / "out",
        method="lan-scaled",
        loss="zsn2n",
        iters=2,
        clean=[tmp_path / "c.npy"],
        lr=None,
        seed=0,
        sensor=None,
        iso=None,
        meta_run=None,
        bound="tanh",
        save_adapted=False,
        device="cpu",
    )
    img = res["images"][0]
    assert img["method"] == "lan-scaled" and img["offset_scale"] == "noise" and res["lr"] == LAN_LR
    assert Path(img["output"]).name == "y_lan-scaled.npy" and Path(img["output"]).is_file()
