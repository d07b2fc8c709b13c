"""``zoo-zs``: the shipped RAW zoo model zero-shot, given the same calibrated noise line as BM3D."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rawadapt.baselines.base import Budget, make_method, make_task
from rawadapt.baselines.noise_level import sample_noise_level
from rawadapt.errors import ConfigError
from rawadapt.metrics import evaluate_pair
from rawadapt.models.inference import denoise_image


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    # NikonD850 in synth v2: x100-x300 low light, where the EFFECTIVE ISO (ISO x ratio) matters
    return make_task(
        "synth", "NikonD850", target_pairs=6, work_dir=tmp_path_factory.mktemp("zs"), threads=1, test_pairs=2
    )


def test_zero_shot_uses_the_pool_calibration_and_the_effective_iso(task) -> None:  # type: ignore[no-untyped-def]
    m = make_method("zoo-zs", budget=Budget.preset("tiny"))
    m.run_fit(task)
    assert m.pool is not None  # "auto" with target pairs: the pool's fitted noise model, as bm3d
    s = task.test[0]
    crop = s.crop(0, 0, 64, 64)
    out = m.denoise(crop)
    assert out.shape == crop.noisy.shape and np.isfinite(out).all()
    level = sample_noise_level(crop, "pool", pool=m.pool)
    assert m.last_info["noise_line"] == pytest.approx([float(np.mean(level.a)), float(np.mean(level.b))])
    # the same as calling the network with the effective ISO and that line, and it denoises
    ref = denoise_image(
        m.model, crop.noisy, iso=crop.effective_iso, cfa=crop.cfa, noise=tuple(m.last_info["noise_line"])
    )
    assert np.allclose(out, ref, atol=1e-6)
    assert evaluate_pair(out, crop.clean)["psnr"] > evaluate_pair(crop.noisy, crop.clean)["psnr"] + 1.0
    assert m.info()["zoo"] == "zoo:raw-unet-any" and m.info()["noise_source"] == "auto"


def test_zero_shot_options_and_errors(task) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="noise_source"):
        make_method("zoo-zs", noise_source="bogus")
    with pytest.raises(ConfigError, match="unknown options"):
        make_method("zoo-zs", lr=1.0)
    m = make_method("zoo-zs", noise_source="profile")
    m.run_fit(task)
    assert m.pool is None
    m.denoise(task.test[0].crop(0, 0, 32, 32))
    assert m.last_info["noise"]["source"] == "profile"


def test_zero_shot_on_srgb_uses_the_blind_srgb_model(tmp_path: Path) -> None:
    from fixtures_data import make_multisensor_dataset

    ds = make_multisensor_dataset(sensors=("a", "b"), per_sensor=6, space="srgb")
    t = make_task("multisensor", "a", dataset=ds, target_pairs=2, work_dir=tmp_path)
    m = make_method("zoo-zs")
    m.run_fit(t)
    assert m.zoo_ref == "zoo:srgb-unet-m" and m.pool is None
    s = t.test[0]
    out = m.denoise(s)
    assert out.shape == s.noisy.shape and np.isfinite(out).all() and "noise_line" not in m.last_info
    with pytest.raises(ConfigError, match="denoises raw images"):
        make_method("zoo-zs", zoo="zoo:raw-unet-any").run_fit(t)


def test_zoo_ft_starts_from_the_zoo_model_of_the_task_space(task, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fixtures_data import make_multisensor_dataset

    m = make_method("zoo-ft", budget=Budget.preset("tiny"))
    cfg = m.config(task)
    assert cfg.init == "zoo:raw-unet-any" and cfg.model.arch == "unet"
    ds = make_multisensor_dataset(sensors=("a", "b"), per_sensor=6, space="srgb")
    t = make_task("multisensor", "a", dataset=ds, target_pairs=2, work_dir=tmp_path)
    cfg = m.config(t)
    assert cfg.init == "zoo:srgb-unet-m" and cfg.model.kwargs.get("width") == 24
    assert cfg.strategy == "target-only"


def test_zoo_ft_low_is_zoo_ft_at_a_tenth_of_the_learning_rate(task) -> None:  # type: ignore[no-untyped-def]
    ft = make_method("zoo-ft", budget=Budget.preset("tiny")).config(task)
    low = make_method("zoo-ft-low", budget=Budget.preset("tiny")).config(task)
    assert low.optim.lr == pytest.approx(ft.optim.lr / 10) and low.init == ft.init == "zoo:raw-unet-any"
    assert low.model_dump(exclude={"optim"}) == ft.model_dump(exclude={"optim"})
