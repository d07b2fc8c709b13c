"""Per-image (ZS-N2N, DIP) and pool self-supervised (Neighbor2Neighbor, Blind2Unblind)
baselines (issue 7): they denoise on RAW and sRGB, are deterministic by seed, lower the error on
synthetic data, DIP's stopping rule triggers, B2U's masker is a true blind spot, and the
self-supervised methods never need a clean image."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rawadapt.baselines.base import Budget, make_method, make_task
from rawadapt.baselines.dip import build_skip_net, fit_dip
from rawadapt.baselines.selfsup import (
    b2u_beta,
    b2u_interpolate,
    b2u_loss,
    b2u_map,
    b2u_masked_inputs,
    b2u_masks,
)
from rawadapt.data.sample import Sample
from rawadapt.errors import ConfigError, ShapeError
from rawadapt.metrics import psnr
from tests.fixtures_data import make_multisensor_dataset
from tests.test_baselines_classical import gain_db, noisy_sample

PER_IMAGE = Budget.preset("tiny", per_image_iters=150)


@pytest.mark.parametrize("space", ["raw", "srgb"])
def test_zsn2n_lowers_error(space: str) -> None:
    s = noisy_sample(space)
    assert gain_db(make_method("zsn2n", budget=PER_IMAGE), s) > 1.0


def test_zsn2n_is_deterministic_by_seed() -> None:
    s = noisy_sample("srgb", size=16)
    m = make_method("zsn2n", iters=5)
    out = m.denoise(s)
    np.testing.assert_array_equal(out, m.denoise(s))  # same seed, same image -> same output
    m.seed = 1
    assert not np.array_equal(out, m.denoise(s))  # the seed matters


def test_zsn2n_odd_size_and_errors() -> None:
    m = make_method("zsn2n", budget=Budget.preset("tiny"))
    s = noisy_sample("raw", size=9, width=13)
    assert m.denoise(s).shape == (4, 9, 13)
    with pytest.raises(ShapeError):
        m.denoise(noisy_sample("srgb", size=1, width=5))
    with pytest.raises(ConfigError):
        make_method("zsn2n", iters=-1)


# --------------------------------------------------------------------------------------------
# DIP
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", ["raw", "srgb"])
def test_dip_lowers_error_and_stops_by_discrepancy(space: str) -> None:
    s = noisy_sample(space)
    m = make_method("dip", budget=Budget.preset("tiny", per_image_iters=300), noise_source="image")
    assert gain_db(m, s) > 3.0
    info = m.last_info
    # the stopping rule triggered before the cap: data-fit MSE fell to the estimated noise variance
    assert info["reason"] == "discrepancy" and info["stopped_at"] < 300
    assert info["final_mse"] <= info["target_mse"]


def test_dip_is_deterministic_by_seed() -> None:
    s = noisy_sample("raw", size=16)
    m = make_method("dip", iters=4, tau=0.0, channels=8, scales=2)
    out = m.denoise(s)
    np.testing.assert_array_equal(out, m.denoise(s))
    m.seed = 1
    assert not np.array_equal(out, m.denoise(s))


def test_dip_rule_off_runs_to_the_cap_and_odd_sizes() -> None:
    s = noisy_sample("raw", size=11, width=14)
    res = fit_dip(s.noisy, iters=7, noise_var=1.0, tau=0.0, channels=8, scales=2)
    assert res.reason == "max_iters" and res.stopped_at == 7 and len(res.losses) == 7
    assert res.image.shape == (4, 11, 14)
    tiny = fit_dip(s.noisy[:, :5, :3], iters=2, noise_var=0.0, channels=4, scales=4)  # code padded to 32x32
    assert tiny.image.shape == (4, 5, 3)
    # a huge noise variance stops at the very first step
    assert fit_dip(s.noisy, iters=7, noise_var=10.0, channels=8, scales=2).stopped_at == 1
    net = build_skip_net(32, 3, channels=8, scales=3)
    assert net(torch.rand(1, 32, 16, 24)).shape == (1, 3, 16, 24)
    with pytest.raises(ConfigError):
        make_method("dip", tau=-1.0)


def test_dip_early_stop_returns_the_output_that_passed_the_rule() -> None:
    # a stop within the moving average's first steps must not return an average still made of the
    # random network's first output (a 22 dB image came out at 12.5 dB that way)
    s = noisy_sample("raw", size=16)
    free = fit_dip(s.noisy, iters=6, noise_var=1.0, tau=0.0, channels=8, scales=2, seed=3)
    res = fit_dip(s.noisy, iters=200, noise_var=free.losses[3], channels=8, scales=2, seed=3)
    assert res.reason == "discrepancy" and 1 < res.stopped_at <= 4
    mse = float(np.mean((res.image.astype(np.float64) - s.noisy) ** 2))
    assert mse == pytest.approx(res.losses[-1], rel=1e-4) and mse <= res.target_mse * (1 + 1e-4)


# --------------------------------------------------------------------------------------------
# Blind2Unblind's masker / mapper
# --------------------------------------------------------------------------------------------


def test_b2u_masks_partition_the_image() -> None:
    m = b2u_masks(9, 10)
    assert m.shape == (16, 1, 9, 10)
    assert torch.equal(m.sum(0), torch.ones(1, 9, 10))  # every pixel blind in exactly one copy
    # mask i blinds position (i // 4, i % 4) of every 4x4 cell
    assert m[6, 0, 1, 2] == 1 and m[6, 0, 5, 6] == 1 and m[6, 0, 1, 3] == 0
    rows, cols = torch.nonzero(m[5, 0], as_tuple=True)  # position (1, 1): rows 1, 5 x cols 1, 5, 9
    assert set(rows.tolist()) == {1, 5} and set(cols.tolist()) == {1, 5, 9} and len(rows) == 6


def test_b2u_masked_inputs_and_identity_mapper() -> None:
    y = torch.rand(2, 4, 8, 12)
    masks = b2u_masks(8, 12)
    x = b2u_masked_inputs(y, masks)
    assert x.shape == (2 * 16, 4, 8, 12)
    interp = b2u_interpolate(y)
    # copy (b, i): blind pixels hold the interpolation, the others the image
    for b, i in ((0, 0), (1, 7)):
        copy = x[b * 16 + i]
        mk = masks[i].bool().expand(4, -1, -1)
        assert torch.allclose(copy[mk], interp[b][mk]) and torch.equal(copy[~mk], y[b][~mk])
    # with the identity as network, the mapped blind-spot output is the interpolation
    assert torch.allclose(b2u_map(x, masks), interp)


def test_b2u_blind_spot_holds_for_any_network() -> None:
    """d blind[:, p] / d y[:, p] = 0 for every pixel p (all planes of p are blinded together)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(8, 4, 3, padding=1))
    h = w = 8
    masks = b2u_masks(h, w)

    def blind(flat: torch.Tensor) -> torch.Tensor:
        return b2u_map(net(b2u_masked_inputs(flat.reshape(1, 4, h, w), masks)), masks).reshape(-1)

    jac = torch.autograd.functional.jacobian(blind, torch.rand(4 * h * w)).reshape(4, h * w, 4, h * w)
    diag = jac[:, torch.arange(h * w), :, torch.arange(h * w)]  # (h*w, 4, 4) blocks at the same pixel
    assert float(diag.abs().max()) == 0.0
    assert float(jac.abs().max()) > 0  # but it does depend on the neighbours


def test_b2u_beta_schedule_and_loss() -> None:
    assert b2u_beta(0, 100) == 2.0 and b2u_beta(39, 100) == 2.0
    assert b2u_beta(99, 100) == pytest.approx(20.0)
    assert b2u_beta(69, 100) == pytest.approx(2.0 + 0.3 / 0.6 * 18.0)
    betas = [b2u_beta(i, 50) for i in range(50)]
    assert all(a <= b for a, b in zip(betas, betas[1:]))
    # identity network on a constant image: blind = visible = y, the loss vanishes
    y = torch.full((1, 3, 8, 8), 0.3)
    assert float(b2u_loss(lambda x: x, y, beta=5.0)) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------------------------
# Neighbor2Neighbor and Blind2Unblind on the target pool
# --------------------------------------------------------------------------------------------

POOL_BUDGET = {
    "nbr2nbr": Budget.preset("tiny", selfsup_iters=120, patch=16, batch=4, width=8, depth=2, lr=3e-3),
    "b2u": Budget.preset("tiny", selfsup_iters=200, patch=16, batch=4, width=8, depth=2, lr=3e-3),
}
SHORT_BUDGET = Budget.preset("tiny", selfsup_iters=3, patch=16, batch=2, width=4, depth=2)


def pool_task(space: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Target "a" of a 2-sensor dataset with strong noise (~15-20 dB): 4 pool pairs, 2 test images."""
    ds = make_multisensor_dataset(
        sensors=("a", "b"),
        per_sensor={"source": 1, "target": 4, "test": 2},
        size=32,
        space=space,
        gain_range=(1.6e-2, 3.2e-2),
        read_noise=0.04,
        seed=0,
    )
    return make_task("multisensor", "a", target_pairs=4, work_dir=tmp_path, dataset=ds, threads=1)


@pytest.mark.parametrize("name", ["nbr2nbr", "b2u"])
@pytest.mark.parametrize("space", ["raw", "srgb"])
def test_pool_selfsup_lowers_error(name: str, space: str, tmp_path: Path) -> None:
    task = pool_task(space, tmp_path)
    m = make_method(name, budget=POOL_BUDGET[name])
    m.run_fit(task)
    gains = []
    for s in task.test:
        out = m.denoise(s)
        assert out.shape == s.noisy.shape and out.dtype == np.float32
        gains.append(psnr(np.clip(out, 0, 1), s.clean) - psnr(s.noisy, s.clean))
    assert np.mean(gains) > 1.0, gains  # at this tiny budget B2U can still lose ~0.5 dB on the cleaner image
    assert m.info()["final_loss"] is not None and len(m.losses) == POOL_BUDGET[name].selfsup_iters


@pytest.mark.parametrize("name", ["nbr2nbr", "b2u"])
def test_pool_selfsup_is_deterministic_by_seed(name: str, tmp_path: Path) -> None:
    task = pool_task("srgb", tmp_path)
    outs = []
    for _ in range(2):
        m = make_method(name, budget=SHORT_BUDGET)
        m.run_fit(task)
        outs.append(m.denoise(task.test[0]))
    np.testing.assert_array_equal(outs[0], outs[1])
    task.seed = 1
    m.run_fit(task)
    assert not np.array_equal(outs[0], m.denoise(task.test[0]))


@pytest.mark.parametrize("name", ["nbr2nbr", "b2u"])
def test_pool_selfsup_progress_bar_shows_steps_and_changes_nothing(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = pool_task("raw", tmp_path)
    quiet = make_method(name, budget=SHORT_BUDGET)
    quiet.run_fit(task)
    assert f"{name} fit" not in capsys.readouterr().err
    shown = make_method(name, budget=SHORT_BUDGET, progress=True)
    shown.run_fit(task)
    err = capsys.readouterr().err
    assert f"{name} fit" in err and f"/{SHORT_BUDGET.selfsup_iters}" in err  # tqdm may skip the last redraw
    np.testing.assert_array_equal(quiet.denoise(task.test[0]), shown.denoise(task.test[0]))


@pytest.mark.parametrize("name", ["nbr2nbr", "b2u"])
def test_pool_selfsup_never_needs_a_clean_image(name: str, tmp_path: Path) -> None:
    """Trained with the pool's clean references removed: same model as with them."""
    task = pool_task("raw", tmp_path)
    budget = SHORT_BUDGET
    with_clean = make_method(name, budget=budget)
    with_clean.fit(task)
    pool = [s.with_arrays(s.noisy, None) for s in task.target_pool]
    fake = SimpleNamespace(target_pool=pool, space="raw", seed=task.seed, threads=1, target="a")
    without = make_method(name, budget=budget)
    without.fit(fake)  # type: ignore[arg-type]
    s = task.test[0]
    np.testing.assert_array_equal(with_clean.denoise(s), without.denoise(s))


def test_b2u_interp_base_starts_from_the_neighbour_average(tmp_path: Path) -> None:
    task = pool_task("raw", tmp_path)
    m = make_method("b2u", budget=SHORT_BUDGET, base="interp", iters=0)
    m.run_fit(task)
    s = task.test[0]
    expected = b2u_interpolate(torch.from_numpy(s.noisy)[None])[0].numpy()
    np.testing.assert_allclose(m.denoise(s), expected, atol=1e-6)
    with pytest.raises(ConfigError, match="base"):
        make_method("b2u", base="other")


def test_pool_selfsup_errors(tmp_path: Path) -> None:
    m = make_method("nbr2nbr", budget=Budget.preset("tiny"))
    with pytest.raises(ConfigError, match="fit"):
        m.denoise(noisy_sample("raw"))
    task = pool_task("raw", tmp_path)
    m.run_fit(task)
    with pytest.raises(ConfigError):  # fitted on RAW, given sRGB
        m.denoise(noisy_sample("srgb"))
    bad = Sample(noisy=np.zeros((4, 8), np.float32), clean=None, sensor="a", space="raw")
    with pytest.raises(ShapeError):
        m.denoise(bad)
    with pytest.raises(ConfigError):
        make_method("b2u", patch=2)
