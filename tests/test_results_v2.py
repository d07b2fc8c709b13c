"""Benchmark v2 additions to the result tables: noise bands, paired tests, the PolyU size cap and
the equal-target-steps fine-tuning split."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rawadapt.eval.results import band_label, band_labels, noise_bands, paired_tests


def _cell(method: str, target: str, seed: int, psnr: float, images: list[tuple[float, float]]) -> dict:
    return {
        "key": {"variant": "default", "target": target, "seed": seed, "method": method},
        "psnr": psnr,
        "images": [{"psnr_noisy": a, "psnr": b} for a, b in images],
    }


def test_band_labels_cover_the_line() -> None:
    assert band_label(12.0) == "<20" and band_label(20.0) == "20-25" and band_label(39.99) == "35-40"
    assert band_label(40.0) == ">=40" and band_labels()[0] == "<20" and band_labels()[-1] == ">=40"


def test_noise_bands_pool_images_by_their_noisy_psnr() -> None:
    cells = [
        _cell("a", "T1", 0, 0.0, [(18.0, 25.0), (22.0, 30.0), (41.0, 41.5)]),
        _cell("a", "T2", 0, 0.0, [(19.0, 27.0)]),
    ]
    rows = {(r["method"], r["band"]): r for r in noise_bands(cells)}
    low = rows[("a", "<20")]
    assert low["n_images"] == 2 and low["psnr"] == pytest.approx(26.0) and low["psnr_gain"] == pytest.approx(7.5)
    assert rows[("a", ">=40")]["psnr_gain"] == pytest.approx(0.5)
    assert [r["band"] for r in noise_bands(cells)] == ["<20", "20-25", ">=40"]  # noisiest first


def test_paired_test_matches_scipy_and_counts_wins() -> None:
    from scipy import stats

    rng = np.random.default_rng(0)
    a, b = rng.normal(40, 1, 6), rng.normal(39.5, 1, 6)
    cells = []
    for k in range(6):
        cells.append(_cell("adl", f"T{k % 3}", k // 3, float(a[k]), []))
        cells.append(_cell("finetune", f"T{k % 3}", k // 3, float(b[k]), []))
    cells.append(_cell("finetune", "T9", 0, 10.0, []))  # unpaired: ignored
    (row,) = [r for r in paired_tests(cells) if (r["first"], r["second"]) == ("adl", "finetune")]
    ref = stats.ttest_rel(a, b)
    assert row["n"] == 6 and row["mean_diff"] == pytest.approx(float(np.mean(a - b)))
    assert row["t"] == pytest.approx(float(ref.statistic)) and row["p"] == pytest.approx(float(ref.pvalue))
    assert row["wins"] == int((a > b).sum())


def test_paired_test_single_pair_has_no_p() -> None:
    cells = [_cell("adl", "T", 0, 40.0, []), _cell("finetune", "T", 0, 39.0, [])]
    (row,) = paired_tests(cells, [("adl", "finetune")])
    assert row["n"] == 1 and row["p"] is None and row["std_diff"] is None and math.isclose(row["mean_diff"], 1.0)


def test_finetune_eqt_has_the_target_steps_of_target_only() -> None:
    from rawadapt.baselines.base import Budget, make_method

    b = Budget.preset("quick")
    total = b.pretrain_iters + b.iters + b.finetune_iters
    eqt = make_method("finetune-eqt", budget=b).iterations()
    ft = make_method("finetune", budget=b).iterations()
    assert eqt["finetune_iters"] == total and eqt["pretrain_iters"] == ft["pretrain_iters"]
    assert ft["finetune_iters"] < total


def test_max_pool_fraction_drops_sizes_above_half(tmp_path) -> None:
    from dataclasses import replace

    from fixtures_data import make_multisensor_dataset

    from rawadapt.data.base import PairDataset
    from rawadapt.eval.protocols.plan import build_plan
    from rawadapt.eval.protocols.settings import BenchSettings, protocol_spec

    ds = make_multisensor_dataset(sensors=("x", "y"), per_sensor=22)
    recs = [replace(r, split=None, scene=f"s{i}") for i, r in enumerate(ds.records)]  # PolyU-like: no roles
    ds = PairDataset(recs, ds.loader, name="plain", space="raw")
    n_x = len(ds.by_sensor()["x"])
    settings = BenchSettings(
        protocol="target-size",
        data="x",
        out=str(tmp_path),
        targets=["x"],
        sizes=[2, 5, n_x // 2 + 1],
        max_pool_fraction=0.5,
    )
    plan = build_plan(settings, protocol_spec("target-size"), ds)
    assert sorted({tp.target_pairs for tp in plan.tasks}) == [2, 5]
    assert any(f"{n_x // 2 + 1} not run" in n for n in plan.notes)
