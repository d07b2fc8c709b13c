"""Checkpoints: safetensors + JSON round trips, clear errors on bad files, exact training resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import rawadapt
from rawadapt.errors import CheckpointError, ShapeError
from rawadapt.models import build_model
from rawadapt.models.checkpoint import (
    load_model,
    load_training_state,
    restore_numpy_generator,
    save_model,
    save_training_state,
)

CONFIGS = {
    "unet-mod": {"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["SonyA7S2", "NikonD850"]},
    "unet-plain-srgb": {
        "arch": "unet",
        "in_channels": 3,
        "width": 4,
        "depth": 2,
        "use_sensor": False,
        "use_iso": False,
    },
    "dncnn": {"arch": "dncnn", "in_channels": 4, "depth": 4, "width": 8},
    "restormer": {"arch": "restormer", "in_channels": 3, "dim": 8, "num_blocks": [1, 1], "heads": [1, 2]},
}


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Random values everywhere (modulation MLPs start at zero; BN stats at 0/1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))


def _saved(tmp_path: Path, key: str = "unet-mod") -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    m = build_model(CONFIGS[key])
    _randomise(m)
    save_model(tmp_path / "run", m, extra={"strategy": "test"})
    return m, tmp_path / "run"


@pytest.mark.parametrize("key", list(CONFIGS))
def test_save_load_identical_outputs(tmp_path: Path, key: str) -> None:
    m, run = _saved(tmp_path, key)
    m.eval()
    loaded, meta = load_model(run)
    assert not loaded.training and type(loaded) is type(m)
    c = CONFIGS[key]["in_channels"]
    x = torch.rand(2, c, 13, 18)
    sensor = torch.tensor([0, 1]) if m.uses_metadata else None
    iso = torch.tensor([200.0, 3200.0])
    with torch.no_grad():
        assert torch.equal(m(x, sensor, iso), loaded(x, sensor, iso))
    assert meta["arch"] == CONFIGS[key]["arch"] and meta["config"] == m.config()
    assert meta["space"] == ("raw" if c == 4 else "srgb") and meta["strategy"] == "test"
    assert meta["format"] == "rawadapt-model" and meta["format_version"] == 1
    assert meta["package_version"] == rawadapt.__version__
    # every path form works
    for p in (run / "model.safetensors", run / "model.json"):
        again, _ = load_model(p)
        with torch.no_grad():
            assert torch.equal(again(x, sensor, iso), loaded(x, sensor, iso))


def test_metadata_of_modulated_model(tmp_path: Path) -> None:
    m, run = _saved(tmp_path)
    meta = json.loads((run / "model.json").read_text())
    assert meta["sensors"] == ["SonyA7S2", "NikonD850"] and meta["uses_metadata"] is True
    assert meta["iso_normalisation"]["type"] == "log2"
    assert meta["iso_normalisation"]["ref"] == 100.0 and meta["iso_normalisation"]["scale"] == 4.0
    assert meta["unknown_sensor"] == "error" and len(meta["tensors_sha256"]) == 64
    # the policy is stored and restored
    m.set_unknown_sensor_policy("average")
    save_model(run, m)
    loaded, _ = load_model(run)
    assert loaded.unknown_sensor == "average"
    with pytest.raises(ValueError, match="reserved"):
        save_model(tmp_path / "x", m, extra={"config": {}})
    with pytest.raises(ValueError, match="JSON"):
        save_model(tmp_path / "y", m, extra={"bad": object()})
    assert not (tmp_path / "y" / "model.safetensors").exists()


def test_tied_parameters_are_saved(tmp_path: Path) -> None:
    m = build_model(CONFIGS["dncnn"])
    # tie two same-shaped middle convolutions: safetensors' save_file would refuse shared storage
    m.body[5].weight = m.body[2].weight
    save_model(tmp_path / "tied", m)
    loaded, _ = load_model(tmp_path / "tied")
    assert torch.equal(loaded.body[5].weight, m.body[2].weight)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such run folder"):
        load_model(tmp_path / "nope")
    _, run = _saved(tmp_path)
    (run / "model.json").unlink()
    with pytest.raises(CheckpointError, match="model.json"):
        load_model(run)
    _, run = _saved(tmp_path)
    (run / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_model(run)


def test_truncated_and_corrupt_weights(tmp_path: Path) -> None:
    _, run = _saved(tmp_path)
    w = run / "model.safetensors"
    blob = w.read_bytes()
    w.write_bytes(blob[: len(blob) // 2])
    # the header is checked against the file size before the file is read (and checksummed)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: corrupt or truncated") as e:
        load_model(run)
    assert "\n" not in str(e.value)
    # a flipped byte inside the tensor data: only the checksum can see it
    bad = bytearray(blob)
    bad[-5] ^= 0xFF
    w.write_bytes(bytes(bad))
    with pytest.raises(CheckpointError, match="checksum"):
        load_model(run)
    # without a checksum, a truncated file is still caught by safetensors
    meta = json.loads((run / "model.json").read_text())
    del meta["tensors_sha256"]
    (run / "model.json").write_text(json.dumps(meta))
    w.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: corrupt or truncated"):
        load_model(run)
    w.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(run)


def test_bad_json(tmp_path: Path) -> None:
    _, run = _saved(tmp_path)
    js = run / "model.json"
    good = json.loads(js.read_text())
    js.write_text("{not json")
    with pytest.raises(CheckpointError, match=r"model\.json: unreadable"):
        load_model(run)
    js.write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="not a rawadapt model"):
        load_model(run)
    js.write_text(json.dumps({**good, "format_version": 99}))
    with pytest.raises(CheckpointError, match="newer rawadapt"):
        load_model(run)
    js.write_text(json.dumps({**good, "config": {**good["config"], "arch": "transformer9000"}}))
    with pytest.raises(CheckpointError, match=r"model\.json: unknown model architecture"):
        load_model(run)
    # a config that does not fit the stored tensors (shape mismatch)
    js.write_text(json.dumps({**good, "config": {**good["config"], "width": 8}}))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: weights do not fit"):
        load_model(run)


def test_srgb_model_on_raw_input_is_a_shape_error(tmp_path: Path) -> None:
    m = build_model(CONFIGS["unet-plain-srgb"])
    save_model(tmp_path / "srgb", m)
    loaded, meta = load_model(tmp_path / "srgb")
    assert meta["space"] == "srgb"
    with pytest.raises(ShapeError, match="'srgb'"):
        loaded(torch.rand(1, 4, 16, 16))


# ------------------------------------------------------------------ training state


def _train(model, opt, sched, steps: int, gen: np.random.Generator) -> None:
    for _ in range(steps):
        x = torch.rand(2, 4, 16, 16)  # torch global RNG
        noise = torch.from_numpy(gen.normal(0, 0.1, size=x.shape).astype(np.float32))  # numpy RNG
        loss = (model(x + noise, torch.tensor([0, 1]), torch.tensor([100.0, 800.0])) - x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def _fresh():
    torch.manual_seed(0)
    m = build_model(CONFIGS["unet-mod"]).train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)
    return m, opt, sched


def test_training_state_resumes_bit_exactly(tmp_path: Path) -> None:
    m, opt, sched = _fresh()
    gen = np.random.default_rng(123)
    torch.manual_seed(1)
    _train(m, opt, sched, 3, gen)
    save_training_state(
        tmp_path / "state.pt",
        {
            "model": m.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "step": 3,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": {"data": gen},
            "extra": {"best_psnr": 31.5, "tag": "x"},
        },
    )
    _train(m, opt, sched, 2, gen)  # the uninterrupted run
    reference = {k: v.clone() for k, v in m.state_dict().items()}

    m2, opt2, sched2 = _fresh()  # a new process would start like this
    torch.manual_seed(999)  # and with a different RNG state
    st = load_training_state(tmp_path / "state.pt")
    m2.load_state_dict(st["model"])
    opt2.load_state_dict(st["optimizer"])
    sched2.load_state_dict(st["scheduler"])
    torch.set_rng_state(st["torch_rng"])
    gen2 = restore_numpy_generator(st["numpy_rng"]["data"])
    assert st["step"] == 3 and st["extra"] == {"best_psnr": 31.5, "tag": "x"}
    _train(m2, opt2, sched2, 2, gen2)
    for k, v in reference.items():
        assert torch.equal(v, m2.state_dict()[k]), k
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_training_state_is_never_unpickled(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(CheckpointError, match="safe loader"):
        save_training_state(tmp_path / "s.pt", {"x": Evil()})
    assert not (tmp_path / "s.pt").exists()
    # a file written by someone else with arbitrary objects is refused at load time
    torch.save({"format": "rawadapt-training-state", "state": {"x": Evil()}}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt: unreadable training state"):
        load_training_state(tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="missing"):
        load_training_state(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_training_state(tmp_path / "junk.pt")
    torch.save({"a": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a rawadapt training state"):
        load_training_state(tmp_path / "foreign.pt")
