"""Training config: validation errors are one-line ConfigErrors naming the file; YAML round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from rawadapt.errors import ConfigError
from rawadapt.train.config import (
    TrainConfig,
    config_diff,
    config_from_dict,
    load_config,
    with_overrides,
)


def test_defaults_round_trip_through_yaml(tmp_path: Path) -> None:
    cfg = TrainConfig()
    p = tmp_path / "c.yaml"
    p.write_text(cfg.to_yaml())
    again = load_config(p)
    assert again == cfg and config_diff(cfg, again) == []
    # every section is spelled out in the saved file (it fully describes the run)
    text = p.read_text()
    for key in ("strategy:", "seed:", "data:", "model:", "optim:", "iters:", "finetune_lr_factor:", "adl:"):
        assert key in text


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    p = tmp_path / "empty.yaml"
    p.write_text("")
    assert load_config(p) == TrainConfig()


@pytest.mark.parametrize(
    "text, needle",
    [
        ("strategy: finetune\ndata: {patchh: 32}\n", "data.patchh: unknown setting"),
        ("iters: -3\n", "iters:"),
        ("data: {batch: many}\n", "data.batch:"),
        ("strategy: magic\n", "unknown strategy 'magic'"),
        ("optim: {schedule: linear}\n", "optim.schedule:"),
        ("model: {arch: unet, kwargs: {in_channels: 3}}\n", "set from the data by the engine"),
        ("data: {sources: []}\n", "data.sources:"),
        ("optim: {betas: [0.9, 1.5]}\n", "betas must lie in [0, 1)"),
        ("adl: {anything: 1}\n", "adl.anything: unknown setting"),
    ],
)
def test_invalid_settings(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert needle in msg and str(p) in msg and "\n" not in msg


def test_yaml_syntax_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("data: {patch: 32\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")
    p.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(p)


def test_overrides_and_resolved_values() -> None:
    cfg = config_from_dict({"strategy": "finetune", "iters": 100, "optim": {"lr": 2e-3}})
    assert cfg.stage_iters("pretrain") == 100 and cfg.stage_iters("finetune") == 100
    assert cfg.resolved_finetune_lr() == pytest.approx(2e-3 * cfg.finetune_lr_factor)
    cfg2 = with_overrides(
        cfg, {"data": {"patch": 32}, "finetune_iters": 7, "finetune_lr": 1e-4, "model": {"kwargs": {"width": 8}}}
    )
    assert cfg2.data.patch == 32 and cfg2.data.batch == cfg.data.batch  # nested merge keeps siblings
    assert cfg2.stage_iters("finetune") == 7 and cfg2.resolved_finetune_lr() == 1e-4
    assert set(config_diff(cfg, cfg2)) == {"data.patch", "finetune_iters", "finetune_lr", "model.kwargs"}
    with pytest.raises(ConfigError, match="data.patch"):
        with_overrides(cfg, {"data": {"patch": 1}})
