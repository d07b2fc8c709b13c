"""Calibration-based (calib-ft, calib-adl), LED-style and PMN-style baselines (issue 7)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_data import make_multisensor_dataset, smooth_image

from rawadapt.baselines.base import (
    BENCH_METHODS,
    Budget,
    make_method,
    make_task,
    method_class,
)
from rawadapt.data.base import PairDataset
from rawadapt.data.sample import Sample, SampleRecord
from rawadapt.errors import ConfigError
from rawadapt.utils.seed import derive_seed

RAW_METHODS = ("calib-ft", "calib-adl", "led", "pmn")
_BASE = {"lr": 3e-3, "batch": 8, "patch": 32, "width": 8}
#: budgets at which each method reliably beats the noisy input on the physics data below (the
#: default "tiny" preset only checks that they run); LED's virtual-camera pretraining needs
#: more steps to leave the identity it starts from
LEARN = {
    "calib-ft": {"iters": 40, "pretrain_iters": 20, "finetune_iters": 20, **_BASE},
    "calib-adl": {"iters": 40, "pretrain_iters": 20, "finetune_iters": 20, **_BASE},
    "pmn": {"iters": 60, "pretrain_iters": 30, "finetune_iters": 30, **_BASE},
    "led": {"iters": 90, "pretrain_iters": 30, "finetune_iters": 30, **_BASE},
}


def make_physics_dataset(
    *,
    sensors: tuple[str, ...] = ("SonyA7S2", "NikonD850", "CanonEOS70D"),
    size: int = 32,
    seed: int = 0,
    isos: tuple[float, ...] = (400, 800, 1600),
    ratio: float = 100.0,
) -> PairDataset:
    """A lazy RAW dataset simulated with the built-in ELD profiles (levels, ISO, exposure ratio:
    the units the calibration must get right), low light (x100) so the noise is unmistakable."""
    from rawadapt.noise.model import add_noise, sample_noise_params
    from rawadapt.noise.profiles import load_profile

    counts = {"source": 4, "target": 4, "test": 2}
    records = []
    for si, sensor in enumerate(sensors):
        k = 0
        for role, n in counts.items():
            for _ in range(n):
                sid = f"{sensor}-{role}-{k:03d}"
                records.append(
                    SampleRecord(
                        sample_id=sid,
                        sensor=sensor,
                        iso=float(isos[(k + si) % len(isos)]),
                        scene=f"{sensor}-scene{k:03d}",
                        noisy_path=f"mem://phys/{sid}",
                        ratio=ratio,
                        split=role,
                    )
                )
                k += 1

    def load(rec: SampleRecord) -> Sample:
        prof = load_profile(rec.sensor)
        rng = np.random.default_rng(derive_seed(seed, "phys", rec.sample_id))
        clean = smooth_image(rng, 4, size)
        params = sample_noise_params(prof, iso=rec.iso, rng=rng)
        gen = torch.Generator().manual_seed(derive_seed(seed, "phys-noise", rec.sample_id))
        noisy = add_noise(clean, prof, params, ratio=rec.ratio, generator=gen)
        return Sample(
            noisy=noisy,
            clean=clean,
            sensor=rec.sensor,
            iso=rec.iso,
            ratio=rec.ratio,
            space="raw",
            scene=rec.scene,
            cfa="RGGB",
            black_level=prof.black_level,
            white_level=prof.white_level,
            sample_id=rec.sample_id,
            extra={"split": rec.split},
        ).validate()

    return PairDataset(records, load, name="physics", space="raw")


def _task(tmp: Path):  # type: ignore[no-untyped-def]
    return make_task("physics", "CanonEOS70D", dataset=make_physics_dataset(), target_pairs=4, work_dir=tmp, threads=1)


def _errors(method, task) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    den = [float(np.mean((method.denoise(s) - s.clean) ** 2)) for s in task.test]
    noisy = [float(np.mean((s.noisy - s.clean) ** 2)) for s in task.test]
    return float(np.mean(den)), float(np.mean(noisy))


# -- registry ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", RAW_METHODS)
def test_registry_names_resolve(name: str) -> None:
    from rawadapt.models.registry import MODELS
    from rawadapt.train.strategies import STRATEGIES

    cls = method_class(name)
    assert cls.name == name and BENCH_METHODS.target(name).endswith(cls.__name__)
    assert cls.spaces == ("raw",)
    assert name in STRATEGIES and "led-unet" in MODELS


# -- calibration ---------------------------------------------------------------------------------
def _simulated_pool(alpha: float = 9.563e-4, read: float = 6.0, levels: bool = True) -> list[Sample]:
    from rawadapt.noise.model import NoiseParams, add_noise
    from rawadapt.noise.profiles import load_profile

    prof = load_profile("SonyA7S2")
    rng = np.random.default_rng(0)
    out = []
    for i, (iso, ratio) in enumerate([(800, 1.0), (800, 10.0), (3200, 1.0), (3200, 10.0)] * 2):
        clean = smooth_image(rng, 4, 64)
        params = NoiseParams.poisson_gaussian(alpha * iso, read * math.sqrt(iso / 800), iso=iso)
        noisy = add_noise(clean, prof, params, ratio=ratio, seed=i, fixed_pattern=False)
        out.append(
            Sample(
                noisy=noisy,
                clean=clean,
                sensor="x",
                iso=iso,
                ratio=ratio,
                cfa="RGGB",
                black_level=prof.black_level if levels else None,
                white_level=prof.white_level if levels else None,
            )
        )
    return out


def test_calibration_recovers_gain_in_dn() -> None:
    from rawadapt.baselines.pool_calibration import calibrate_pool

    alpha = 9.563e-4  # Sony A7S2: K = 9.563e-4 x ISO (ELD, Wei et al. CVPR 2020)
    cal = calibrate_pool(_simulated_pool(alpha))
    assert cal.levels_known and cal.profile.white_level == 16383 and cal.profile.ratios == (1.0, 10.0)
    for iso in (800, 1600, 3200):
        assert cal.gain(iso) == pytest.approx(alpha * iso, rel=0.05)
    assert cal.profile.iso_to_k(3200) == pytest.approx(cal.gain(3200), rel=1e-6)
    assert cal.k_slope == pytest.approx(1.0, abs=0.05)
    # read noise 6 DN at ISO 800 (+ 1/12 DN^2 of quantisation)
    assert math.exp(cal.read_slope * math.log(cal.gain(800)) + cal.read_intercept) == pytest.approx(6.0, rel=0.15)


def test_calibration_normalised_gain_matches_data_units() -> None:
    """The gain PMN needs: shot variance of the brightness-matched noisy image = gain x clean."""
    from rawadapt.baselines.pool_calibration import calibrate_pool

    pool = _simulated_pool()
    cal = calibrate_pool(pool)
    s = next(p for p in pool if p.iso == 3200 and p.ratio == 10.0)
    expect = 9.563e-4 * 3200 * 10.0 / (16383 - 512)
    np.testing.assert_allclose(cal.normalised_gain(s), expect, rtol=0.06)
    # without levels: virtual 16-bit DN, same normalised gain
    cal_v = calibrate_pool(_simulated_pool(levels=False))
    assert not cal_v.levels_known and any("virtual" in n for n in cal_v.notes)
    np.testing.assert_allclose(cal_v.normalised_gain(s), expect, rtol=0.06)


def test_calibration_without_levels_on_fixture() -> None:
    from rawadapt.baselines.pool_calibration import calibrate_pool

    ds = make_multisensor_dataset(
        sensors=("a",), per_sensor={"source": 0, "target": 8, "test": 0}, size=64, isos=(800, 1600)
    )
    cal = calibrate_pool(list(ds))
    gain = ds.records[0].extra["gain"]  # shot variance = gain x ISO/100 x clean
    for s in ds:
        np.testing.assert_allclose(cal.normalised_gain(s), gain * s.iso / 100, rtol=0.15)


def test_calibration_refuses_bad_input() -> None:
    from rawadapt.baselines.pool_calibration import calibrate_pool

    with pytest.raises(ConfigError, match="pair"):
        calibrate_pool([])
    srgb = list(
        make_multisensor_dataset(sensors=("a",), per_sensor={"source": 0, "target": 2, "test": 0}, space="srgb")
    )
    with pytest.raises(ConfigError, match="RAW"):
        calibrate_pool(srgb)


# -- PMN shot-noise augmentation -----------------------------------------------------------------
def test_sna_variance_follows_gain_at_new_brightness() -> None:
    from rawadapt.baselines.sna import shot_noise_augment

    g, sigma = 2e-3, 0.01  # normalised gain and read noise
    levels = torch.tensor([0.05, 0.15, 0.3])
    clean = levels.view(1, 3, 1, 1).expand(1, 3, 256, 256).contiguous()
    gen = torch.Generator().manual_seed(0)
    noisy = torch.poisson(clean / g, generator=gen) * g + sigma * torch.randn(clean.shape, generator=gen)
    aug = torch.tensor([[1.0, 1.0, 0.5]])  # brightness x2, x2, x1.5
    n2, c2 = shot_noise_augment(noisy, clean, torch.full((1, 3), g), aug, gen, clip=False)
    new = (levels * (1 + aug[0])).tolist()
    for c in range(3):
        assert float(c2[0, c].mean()) == pytest.approx(new[c], rel=1e-6)
        var = float((n2[0, c] - c2[0, c]).var())
        assert var == pytest.approx(g * new[c] + sigma**2, rel=0.05), c
        assert abs(float((n2[0, c] - c2[0, c]).mean())) < 3 * math.sqrt(var / 256**2) + 1e-6


def test_sna_sampler_deterministic_resumable_and_valid() -> None:
    from rawadapt.baselines.sna import SNAPatchSampler, sna_factors

    samples = list(make_physics_dataset())[:6]
    gain = lambda s: np.full(4, 1e-3)  # noqa: E731
    a = SNAPatchSampler(samples, gain, patch=16, batch=8, seed=3)
    b = SNAPatchSampler(samples, gain, patch=16, batch=8, seed=3)
    first = a.draw()
    torch.testing.assert_close(first.noisy, b.draw().noisy)
    state = a.state_dict()
    nxt = a.draw()
    b.load_state_dict(json.loads(json.dumps(state)))
    torch.testing.assert_close(nxt.clean, b.draw().clean)
    assert float(first.clean.max()) <= 1.0 + 1e-6 and float(first.noisy.min()) >= 0.0
    f = sna_factors(np.random.default_rng(0), 400)
    assert f.min() >= 0 and f.max() <= 2.0 and 0.3 < (f.sum(1) > 0).mean() < 0.75
    np.testing.assert_array_equal(f[:, 1], f[:, 2])  # both greens alike


# -- synthetic pairs -----------------------------------------------------------------------------
def test_synthetic_sampler_deterministic_and_labelled() -> None:
    from rawadapt.baselines.synthetic_pairs import (
        ProfileNoise,
        SyntheticPatchSampler,
        clean_only,
    )
    from rawadapt.noise.profiles import load_profile

    clean = clean_only(list(make_physics_dataset())[:4])
    noise = ProfileNoise(load_profile("NikonD850"), label="target", iso_range=(800, 3200), ratios=(1.0, 10.0))
    a = SyntheticPatchSampler(clean, noise, patch=16, batch=6, seed=1)
    b = SyntheticPatchSampler(clean, noise, patch=16, batch=6, seed=1)
    x, y = a.draw(), b.draw()
    torch.testing.assert_close(x.noisy, y.noisy)
    assert x.sensor == ["target"] * 6 and not torch.equal(x.noisy, x.clean)
    assert bool(((x.iso >= 800) & (x.iso <= 32000)).all())  # effective ISO = ISO x ratio
    state = a.state_dict()
    nxt = a.draw()
    b.load_state_dict(state)
    torch.testing.assert_close(nxt.noisy, b.draw().noisy)


# -- LED -----------------------------------------------------------------------------------------
def test_led_virtual_cameras_span_the_family() -> None:
    from rawadapt.baselines.led_net import VirtualCameraNoise, VirtualFamily

    fam = VirtualFamily.from_profiles()
    assert fam.k_range == (0.1, 30.0)
    assert fam.lambda_range[0] == pytest.approx(-0.243, abs=1e-3) and fam.lambda_range[1] == pytest.approx(0.2)
    # ELD's table: min..max over the five DSLRs
    assert fam.read_slope == pytest.approx((0.4621, 0.6559)) and fam.read_bias == pytest.approx((-0.0904, 1.5370))
    assert fam.row_slope == pytest.approx((0.4483, 0.7292)) and fam.row_bias == pytest.approx((-1.7977, -0.5917))
    cams = fam.cameras(5)
    lams = [c.tukey_lambda for c in cams]
    assert min(lams) == pytest.approx(fam.lambda_range[0]) and max(lams) == pytest.approx(fam.lambda_range[1])
    assert len(set(lams)) == 5  # coverage: evenly spaced, distinct
    for c in cams:
        assert fam.read_slope[0] <= c.read[0] <= fam.read_slope[1]
        assert fam.row_bias[0] <= c.row[1] <= fam.row_bias[1]
        assert all(fam.color_bias[0] <= v <= fam.color_bias[1] for v in c.bias)
    noise = VirtualCameraNoise(cams, fam, ratios=(1.0, 100.0))
    rng = np.random.default_rng(0)
    ks, used = [], set()
    for _ in range(400):
        used.add(noise.begin_batch(rng))
        ks.append(noise.draw(rng).params.K)
    assert used == set(range(5))
    assert 0.1 <= min(ks) < 0.2 and 15 < max(ks) <= 30.0


def test_led_reparameterisation_is_exact() -> None:
    from rawadapt.baselines.led_net import LEDUNet

    torch.manual_seed(0)
    model = LEDUNet(4, width=4, depth=2, cameras=3)
    with torch.no_grad():
        for p in model.parameters():  # non-trivial alignments and OMNR branches
            p.add_(0.05 * torch.randn_like(p))
    model.enable_aux(True)
    model.eval()
    x = torch.rand(2, 4, 20, 24)
    plain = model.deploy()
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model(x), rtol=1e-5, atol=1e-5)
        model.set_branch(1)
        torch.testing.assert_close(model.deploy(branch=1)(x), model(x), rtol=1e-5, atol=1e-5)
    assert type(plain).__name__ == "UNet" and not plain.uses_metadata


def test_led_finetuning_trains_only_alignment_and_omnr(tmp_path: Path) -> None:
    from rawadapt.baselines.calib import LED
    from rawadapt.train.api import run_training

    task = _task(tmp_path)
    method = LED(budget=Budget.preset("tiny", finetune_iters=6))
    cfg = method.config(task)
    n_pre = cfg.stage_iters("pretrain")
    snaps: dict[int, dict[str, torch.Tensor]] = {}

    def on_step(ctx, values) -> None:  # type: ignore[no-untyped-def]
        if ctx.global_step in (n_pre, n_pre + 4):
            snaps[ctx.global_step] = {k: v.detach().clone() for k, v in ctx.model.named_parameters()}

    run_training(cfg, tmp_path / "run", dataset=task.dataset, progress=False, on_step=on_step)
    from rawadapt.models.checkpoint import load_model

    final, _ = load_model(tmp_path / "run")

    def changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> set[str]:
        return {k for k in a if not torch.equal(a[k], b[k])}

    align = changed(snaps[n_pre], snaps[n_pre + 4])  # led-align: 4 steps
    assert align and all(k.endswith(("align_weights.5", "align_biases.5")) for k in align), sorted(align)
    omnr = changed(snaps[n_pre + 4], dict(final.named_parameters()))  # led-omnr: 2 steps
    assert any(k.endswith("aux_weight") for k in omnr)
    assert all(k.endswith(("align_weights.5", "align_biases.5", "aux_weight", "aux_bias")) for k in omnr)
    assert all(bool(m.aux_on) for m in final.repnr_layers())


# -- the methods ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", RAW_METHODS)
def test_method_lowers_error(tmp_path: Path, name: str) -> None:
    task = _task(tmp_path)
    method = make_method(name, budget=Budget.preset("tiny", **LEARN[name]))
    method.run_fit(task)
    den, noisy = _errors(method, task)
    assert den < 0.98 * noisy, (name, den, noisy)


@pytest.mark.parametrize("name", RAW_METHODS)
def test_method_deterministic(tmp_path: Path, name: str) -> None:
    outs = []
    for run in ("one", "two"):
        task = _task(tmp_path / run)
        method = make_method(name, budget=Budget.preset("tiny"))
        method.run_fit(task)
        outs.append(method.denoise(task.test[0]))
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("name", RAW_METHODS)
def test_method_refuses_srgb(tmp_path: Path, name: str) -> None:
    ds = make_multisensor_dataset(sensors=("a", "b"), per_sensor=6, space="srgb")
    task = make_task("multisensor", "a", dataset=ds, target_pairs=2, work_dir=tmp_path)
    with pytest.raises(ConfigError, match="needs RAW data"):
        make_method(name, budget=Budget.preset("tiny")).run_fit(task)


def test_strategy_refuses_srgb_directly(tmp_path: Path) -> None:
    import rawadapt.baselines.calib  # noqa: F401  (registers the strategies)
    from rawadapt.train.api import run_training
    from rawadapt.train.config import config_from_dict

    ds = make_multisensor_dataset(sensors=("a", "b"), per_sensor=6, space="srgb")
    cfg = config_from_dict(
        {
            "strategy": "calib-ft",
            "data": {"target": "a", "target_pairs": 2},
            "iters": 1,
            "eval_every": 0,
            "tensorboard": False,
        }
    )
    with pytest.raises(ConfigError, match="needs RAW data"):
        run_training(cfg, tmp_path / "run", dataset=ds, progress=False)


def test_calib_ft_on_synth_records_calibration(tmp_path: Path) -> None:
    """On the built-in benchmark (real levels, exposure ratios): the run records the calibrated
    profile, whose gains are close to the target's true profile."""
    from rawadapt.noise.profiles import load_profile

    task = make_task("synth", "GP", target_pairs=6, work_dir=tmp_path, threads=1)
    method = make_method("calib-ft", budget=Budget.preset("tiny"))
    method.run_fit(task)
    noise = json.loads((method.run_dir / "calib-pretrain_noise.json").read_text())
    cal = noise["calibration"]
    assert noise["label"] == "GP" and cal["levels_known"] and cal["white_level"] == 1023
    true = load_profile("GP")
    errs = [abs(g["K"] / true.iso_to_k(g["iso"]) - 1) for g in cal["groups"]]
    assert errs and float(np.median(errs)) < 0.15, cal["groups"]
    assert method.metrics["stages"]["calib-pretrain"]["synthetic"]["label"] == "GP"


@pytest.mark.parametrize(("name", "stop"), [("calib-ft", 4), ("led", 9), ("led", 10), ("pmn", 5)])
def test_interrupted_run_resumes_exactly(tmp_path: Path, name: str, stop: int) -> None:
    """Synthetic, SNA and LED stages keep all their randomness in saved generator states."""
    from rawadapt.models.checkpoint import load_model
    from rawadapt.train.api import run_training
    from rawadapt.train.engine import TrainingInterrupted

    task = _task(tmp_path)
    cfg = make_method(name, budget=Budget.preset("tiny")).config(task)
    run_training(cfg, tmp_path / "full", dataset=task.dataset, progress=False)
    with pytest.raises(TrainingInterrupted):
        run_training(cfg, tmp_path / "cut", dataset=task.dataset, progress=False, stop_after=stop)
    run_training(cfg, tmp_path / "cut", dataset=task.dataset, progress=False, resume=True)
    a, _ = load_model(tmp_path / "full")
    b, _ = load_model(tmp_path / "cut")
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k


def test_calib_ft_and_calib_adl_share_the_calibration_model(tmp_path: Path) -> None:
    """Table 2(a) compares FT and ADL from the SAME calibration model θ0."""
    from rawadapt.train.api import run_training

    task = _task(tmp_path)
    theta0 = {}
    for name in ("calib-ft", "calib-adl"):
        cfg = make_method(name, budget=Budget.preset("tiny")).config(task)
        n_pre = cfg.stage_iters("pretrain")

        def on_step(ctx, values, name=name, n_pre=n_pre) -> None:  # type: ignore[no-untyped-def]
            if ctx.global_step == n_pre:
                theta0[name] = {k: v.detach().clone() for k, v in ctx.model.state_dict().items()}

        run_training(cfg, tmp_path / name, dataset=task.dataset, progress=False, on_step=on_step)
    for k, v in theta0["calib-ft"].items():
        assert torch.equal(v, theta0["calib-adl"][k]), k
