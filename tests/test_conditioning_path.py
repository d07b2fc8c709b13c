"""The metadata a modulated model sees really reaches it: ``rawadapt denoise --iso`` and
``--sensor`` change the pixels of a model whose modulation is not the identity (the old CLI
tests used a zero-initialised modulation, under which deleting the ISO hand-over kept them green)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rawadapt.cli.main import main
from rawadapt.models import build_model
from rawadapt.models.checkpoint import save_model


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> int:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    capsys.readouterr()
    return code


@pytest.fixture()
def modulated_run(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    m = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["CamA", "CamB"]})
    assert m.modulation is not None
    for mlp in (m.modulation.mlp_gamma, m.modulation.mlp_beta):  # a trained, non-identity modulation
        torch.nn.init.normal_(mlp[-1].weight, std=0.5)
    save_model(tmp_path / "run", m)
    return tmp_path / "run"


def _denoise(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> np.ndarray:
    src = tmp_path / "in.npy"
    if not src.exists():
        np.save(src, np.random.default_rng(0).random((4, 20, 18), dtype=np.float32))
    dst = tmp_path / f"out_{'_'.join(extra).replace('-', '')}.npy"
    assert _run(["denoise", str(run), str(src), "-o", str(dst), "--tile", "0", *extra], capsys) == 0
    return np.load(dst)


def test_iso_changes_pixels(modulated_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _denoise(modulated_run, tmp_path, capsys, "--sensor", "CamA", "--iso", "400")
    b = _denoise(modulated_run, tmp_path, capsys, "--sensor", "CamA", "--iso", "1600")
    again = _denoise(modulated_run, tmp_path, capsys, "--sensor", "CamA", "--iso", "400")
    assert not np.allclose(a, b, atol=1e-6)
    np.testing.assert_array_equal(a, again)


def test_sensor_changes_pixels(modulated_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _denoise(modulated_run, tmp_path, capsys, "--sensor", "CamA", "--iso", "800")
    b = _denoise(modulated_run, tmp_path, capsys, "--sensor", "CamB", "--iso", "800")
    assert not np.allclose(a, b, atol=1e-6)


def test_resolver_rules() -> None:
    from rawadapt.errors import MetadataError, UnknownSensorError
    from rawadapt.eval.conditioning import FileMetadata, resolve_conditioning

    m = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["NikonD850", "CamB"]})
    c = resolve_conditioning(m, FileMetadata(camera="Nikon D850", iso=800.0))
    assert (c.sensor, c.sensor_source, c.iso, c.iso_source) == ("NikonD850", "file metadata", 800.0, "file metadata")
    assert c.network_kwargs() == {"sensor": "NikonD850", "iso": 800.0, "noise": None}
    c = resolve_conditioning(m, FileMetadata(camera="Nikon D850", iso=800.0), sensor="CamB", iso=3200)
    assert (c.sensor, c.iso, c.iso_source) == ("CamB", 3200.0, "--iso")
    with pytest.raises(MetadataError, match="positive"):
        resolve_conditioning(m, FileMetadata(), iso=float("nan"))
    with pytest.raises(UnknownSensorError, match="vocabulary"):
        resolve_conditioning(m, FileMetadata(camera="Other Cam"))
    c = resolve_conditioning(m, FileMetadata(camera="Other Cam"), unknown_sensor="average")
    assert c.sensor is None and c.unknown_sensor == "average" and c.iso_source == "unknown"
    noisy = build_model(
        {"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["CamB"], "use_noise": True}
    )
    c = resolve_conditioning(noisy, FileMetadata(camera="Sony SonyA7S2", iso=1600.0), sensor="SonyA7S2")
    assert c.unknown_sensor == "iso-only" and c.noise is not None and c.noise_source == "camera:SonyA7S2"
