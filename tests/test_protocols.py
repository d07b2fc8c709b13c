"""``rawadapt bench`` protocols: tables from cell files, agreement with the runs' metrics files,
resume, refusals, every protocol end to end at a tiny size, dataset combination."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rawadapt.cli.main import main
from rawadapt.data import registry
from rawadapt.errors import ConfigError, DatasetError

TINY = ["--data", "multisensor", "--budget", "tiny", "--threads", "1", "--crops", "1"]


@pytest.fixture(autouse=True)
def _multisensor_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--data multisensor`` opens the in-memory test dataset (sensors a, b, c)."""
    monkeypatch.setitem(registry.NAMED, "multisensor", "fixtures_data:make_multisensor_dataset")


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def last_json(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


def read_cells(out: Path) -> dict[tuple[str, str, int, str], dict[str, Any]]:
    res = json.loads((out / "results.json").read_text())
    cells = {}
    for rel in res["cells"]:
        c = json.loads((out / rel).read_text())
        k = c["key"]
        cells[(k["variant"], k["target"], k["seed"], k["method"])] = c
    return cells


def check_tables(out: Path) -> dict[str, Any]:
    """results.csv/json/md agree with each other and with the cell files (recomputed here)."""
    res = json.loads((out / "results.json").read_text())
    cells = read_cells(out)
    assert cells, "no cells"
    with open(out / "results.csv", newline="") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert len(csv_rows) == len(res["rows"])
    md = (out / "results.md").read_text()
    for row, crow in zip(res["rows"], csv_rows):
        assert crow["method"] == row["method"] and crow["target"] == row["target"]
        assert float(crow["psnr"]) == pytest.approx(row["psnr"], abs=1e-6)
        if row["target"] == "average":
            parts = [
                np.mean([cells[(row["variant"], t, s, row["method"])]["psnr"] for t in row["targets"]])
                for s in row["seeds"]
            ]
        else:
            parts = []
            for s in row["seeds"]:
                c = cells[(row["variant"], row["target"], s, row["method"])]
                per_image = [i["psnr"] for i in c["images"]]
                assert c["psnr"] == pytest.approx(np.mean(per_image), abs=1e-9)  # per-image mean
                assert c["n_images"] == len(per_image) > 0
                parts.append(c["psnr"])
        assert row["psnr"] == pytest.approx(np.mean(parts), abs=1e-9)
        assert row["psnr_min"] == pytest.approx(min(parts)) and row["psnr_max"] == pytest.approx(max(parts))
        if len(parts) > 1:
            assert row["psnr_std"] == pytest.approx(float(np.std(parts, ddof=1)), abs=1e-9)
        else:
            assert row["psnr_std"] is None
        assert f"{row['psnr']:.2f}" in md
    return res


def check_metrics_files(out: Path) -> int:
    """Trained cells' per-image PSNRs equal their run's metrics.json (same model, same images)."""
    checked = 0
    for c in read_cells(out).values():
        if not c.get("metrics_file"):
            continue
        m = json.loads((out / c["metrics_file"]).read_text())
        run_psnr = {i["sample_id"]: i["psnr"] for i in m["images"]}
        for i in c["images"]:
            assert i["psnr"] == pytest.approx(run_psnr[i["sample_id"]], abs=1e-4)
        assert c["psnr"] == pytest.approx(m["psnr"], abs=1e-4)
        checked += 1
    return checked


def test_crossval_cli_tables_match_cells_and_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cv"
    code, stdout, err = cli(
        [
            "bench",
            "crossval",
            *TINY,
            "--targets",
            "a,b",
            "--seeds",
            "0,1",
            "--out",
            str(out),
            "--methods",
            "noisy,finetune,adl",
            "--json",
            "--no-report",
        ],
        capsys,
    )
    assert code == 0, err
    summary = last_json(stdout)
    assert summary["computed"] == 2 * 2 * 3 and summary["skipped"] == 0 and summary["failed"] == 0
    res = check_tables(out)
    assert res["targets"] == ["a", "b"] and res["methods"] == ["noisy", "finetune", "adl"]
    assert {r["target"] for r in res["rows"]} == {"a", "b", "average"}
    assert all(r["n_seeds"] == 2 for r in res["rows"])
    assert check_metrics_files(out) == 2 * 2 * 2  # every trained cell matches its run's metrics.json
    noisy = [r for r in res["rows"] if r["method"] == "noisy"]
    assert all(r["psnr"] == pytest.approx(r["psnr_noisy"]) for r in noisy)  # the reference row is the input
    # ADL acceptance per source domain, in the cell, the JSON and the Markdown
    acc = [a for a in res["acceptance"] if a["method"] == "adl"]
    assert {a["target"] for a in acc} == {"a", "b"}
    assert set(acc[0]["domains"]) <= {"a", "b", "c"} and acc[0]["target"] not in acc[0]["domains"]
    cell = read_cells(out)[("default", "a", 0, "adl")]
    assert cell["acceptance"] and cell["info"]["adl"]["domains"]
    assert cell["fit_seconds"] > 0 and cell["denoise_seconds_per_image"] > 0
    assert "acceptance rate" in (out / "results.md").read_text()
    # stored crops and plots
    assert (out / cell["run_dir"] / "adl_log.csv").is_file()
    crop = cell["crops"][0]
    cdir = out / "cells/default/a/seed0/adl"
    den = np.load(cdir / crop["denoised"])
    assert den.shape[0] == 4 and den.shape[1] == crop["box"][2]
    with np.load(cdir / crop["inputs"]) as z:
        assert z["noisy"].shape == den.shape == z["clean"].shape
    for p in res["plots"]:
        assert (out / p).read_bytes()[:4] == b"\x89PNG"
    assert any("acceptance_adl" in p for p in res["plots"])
    assert not (out / "report.html").exists()  # --no-report


def test_resume_skips_finished_cells_and_refuses_changed_settings(tmp_path: Path) -> None:
    from fixtures_data import make_multisensor_dataset

    from rawadapt.baselines.base import make_method
    from rawadapt.eval.protocols import BenchSettings, run_protocol

    ds = make_multisensor_dataset()
    fits: list[str] = []

    def factory(name: str, budget: Any) -> Any:
        m = make_method(name, budget=budget)
        orig = m.fit

        def fit(task: Any) -> None:
            fits.append(f"{task.target}/{name}")
            orig(task)

        m.fit = fit  # type: ignore[method-assign]
        return m

    out = tmp_path / "r"
    base = {
        "protocol": "crossval",
        "data": "multisensor",
        "out": str(out),
        "targets": ["a", "b"],
        "methods": ["noisy", "finetune"],
        "budget": "tiny",
        "threads": 1,
        "report": False,
        "plots": False,
    }
    r1 = run_protocol(BenchSettings(**base), progress=False, dataset=ds, method_factory=factory)
    assert r1["computed"] == 4 and sorted(fits) == ["a/finetune", "a/noisy", "b/finetune", "b/noisy"]
    first = (out / "results.json").read_text()
    fits.clear()
    r2 = run_protocol(BenchSettings(**base), progress=False, dataset=ds, method_factory=factory)
    assert r2["computed"] == 0 and r2["skipped"] == 4 and fits == []
    assert json.loads(first)["rows"] == json.loads((out / "results.json").read_text())["rows"]
    # an interrupted cell (its result missing) is the only one recomputed
    (out / "cells/default/b/seed0/finetune/result.json").unlink()
    r3 = run_protocol(BenchSettings(**base), progress=False, dataset=ds, method_factory=factory)
    assert r3["computed"] == 1 and fits == ["b/finetune"]
    # extending the run (another method) computes only the new cells
    fits.clear()
    r4 = run_protocol(
        BenchSettings(**{**base, "methods": ["noisy", "finetune", "target-only"]}),
        progress=False,
        dataset=ds,
        method_factory=factory,
    )
    assert r4["computed"] == 2 and sorted(fits) == ["a/target-only", "b/target-only"]
    # other settings for finished cells: refused (nothing computed), or recomputed on request
    fits.clear()
    with pytest.raises(ConfigError, match=r"4 finished cell\(s\) were computed with other settings.*target_pairs"):
        run_protocol(BenchSettings(**{**base, "target_pairs": 2}), progress=False, dataset=ds, method_factory=factory)
    assert fits == []
    r5 = run_protocol(
        BenchSettings(**{**base, "target_pairs": 2, "on_change": "recompute"}),
        progress=False,
        dataset=ds,
        method_factory=factory,
    )
    assert r5["computed"] == 4 and len(fits) == 4
    cell = json.loads((out / "cells/default/a/seed0/finetune/result.json").read_text())
    assert cell["settings"]["target_pairs"] == 2 and len(cell["split"]["target_pool"]) == 2


def test_unknown_protocol_method_target_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, msg in (
        (["bench", "nope", "--out", str(tmp_path / "x")], "unknown protocol 'nope'"),
        (
            ["bench", "crossval", *TINY, "--out", str(tmp_path / "x"), "--methods", "noisy,magic"],
            "unknown method 'magic'",
        ),
        (["bench", "crossval", *TINY, "--out", str(tmp_path / "x"), "--targets", "zz"], "unknown target sensor"),
        (["bench", "crossval", *TINY, "--out", str(tmp_path / "x"), "--budget", "huge"], "unknown budget"),
        (["bench", "crossval", *TINY, "--out", str(tmp_path / "x"), "--seeds", "0,x"], "--seeds"),
        (["report", str(tmp_path / "missing")], "results.json"),
    ):
        code, _, err = cli(argv, capsys)
        assert code == 2, (argv, err)
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and msg in lines[0], err
    assert not (tmp_path / "x" / "results.json").exists()


def test_keep_going_records_a_failing_cell(tmp_path: Path) -> None:
    from fixtures_data import make_multisensor_dataset

    from rawadapt.baselines.base import make_method
    from rawadapt.errors import NonFiniteError
    from rawadapt.eval.protocols import BenchSettings, run_protocol

    def factory(name: str, budget: Any) -> Any:
        m = make_method(name, budget=budget)
        if name == "target-only":

            def boom(task: Any) -> None:
                raise NonFiniteError("diverged")

            m.fit = boom  # type: ignore[method-assign]
        return m

    s = {
        "protocol": "crossval",
        "data": "multisensor",
        "out": str(tmp_path / "k"),
        "targets": ["a"],
        "methods": ["noisy", "target-only"],
        "budget": "tiny",
        "report": False,
        "plots": False,
    }
    ds = make_multisensor_dataset()
    with pytest.raises(NonFiniteError):
        run_protocol(BenchSettings(**s), progress=False, dataset=ds, method_factory=factory)
    r = run_protocol(BenchSettings(**s, keep_going=True), progress=False, dataset=ds, method_factory=factory)
    assert r["failed"] == 1 and r["skipped"] == 1  # the noisy cell of the first run was kept
    res = r["result"]
    assert [f["key"]["method"] for f in res["failures"]] == ["target-only"]
    assert {row["method"] for row in res["rows"]} == {"noisy"}
    assert "Failed cells" in (tmp_path / "k" / "results.md").read_text()


@pytest.mark.parametrize(
    "protocol,methods,extra",
    [
        ("ablation", None, ["--targets", "b"]),
        ("harmful", "noisy,finetune,adl", ["--targets", "b", "--harmful-count", "4", "--test-pairs", "2"]),
        ("target-size", "noisy,finetune,adl", ["--targets", "a", "--sizes", "2,3,50"]),
    ],
)
def test_protocols_end_to_end(
    protocol: str, methods: str | None, extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / protocol
    argv = ["bench", protocol, *TINY, "--out", str(out), "--json", "--no-report", *extra]
    if protocol != "target-size":  # target_size.png is checked; the other plots are the crossval test's
        argv.append("--no-plots")
    if methods:
        argv += ["--methods", methods]
    code, stdout, err = cli(argv, capsys)
    assert code == 0, err
    res = check_tables(out)
    assert check_metrics_files(out) > 0
    variants = [v["label"] for v in res["variants"]]
    if protocol == "ablation":
        assert res["methods"] == [
            "noisy",
            "adl",
            "adl-no-adl",
            "adl-no-iso",
            "adl-no-type",
            "adl-no-pretrain",
            "adl-fixed-val",
            "adl-noise",
            "adl-ksigma",
            "adl-no-mod",
            "adl-stratified",
            "adl-gain",
        ]
        cells = read_cells(out)
        assert cells[("default", "b", 0, "adl-no-pretrain")]["info"]["iterations"]["pretrain_iters"] == 0
        assert cells[("default", "b", 0, "adl-no-adl")]["acceptance"]  # logged, every step accepted
        assert set(cells[("default", "b", 0, "adl-no-adl")]["acceptance"].values()) == {1.0}
    elif protocol == "harmful":
        assert variants == ["base", "+harmful1", "+harmful2"]
        cells = read_cells(out)
        assert "harmful2" in cells[("harmful2", "b", 0, "adl")]["acceptance"]  # harmful data is a domain
        assert "harmful1" not in cells[("base", "b", 0, "adl")]["acceptance"]
        cfg = (out / cells[("harmful1", "b", 0, "finetune")]["run_dir"] / "config.yaml").read_text()
        assert "harmful1" in cfg and "harmful_count: 4" in cfg
        assert "Summary over variants" in (out / "results.md").read_text()
    else:
        # the multisensor fixture has 4 target-pool pairs per sensor: 50 is clamped to 4
        assert variants == ["n=2", "n=3", "n=4"]
        assert any("clamped" in n for n in res["notes"])
        assert "plots/target_size.png" in res["plots"] and (out / "plots/target_size.png").is_file()
        cells = read_cells(out)
        assert len(cells[("n3", "a", 0, "adl")]["split"]["target_pool"]) == 3


def test_calibration_protocol_methods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rawadapt.eval.protocols.plan import method_available, resolve_methods
    from rawadapt.eval.protocols.settings import PROTOCOLS, BenchSettings

    spec = PROTOCOLS["calibration"]
    avail = [m for m in spec.methods if method_available(m)[0] is not None]
    s = BenchSettings("calibration", data="multisensor", out=str(tmp_path))
    if not any(m in avail for m in spec.optional_methods):
        with pytest.raises(ConfigError, match="needs at least one of"):
            resolve_methods(s, spec, "raw")
        pytest.skip("no calibration method is available in this install")
    methods, _ = resolve_methods(s, spec, "raw")
    assert methods == avail
    # explicitly requested unknown method: a clear error
    with pytest.raises(ConfigError, match="unknown method"):
        resolve_methods(BenchSettings("calibration", data="x", out="y", methods=["calib-nope"]), spec, "raw")
    out = tmp_path / "cal"
    calib = [m for m in spec.optional_methods if m in avail]  # calib-ft, calib-adl, led: Table 2(a)
    code, _, err = cli(
        [
            "bench",
            "calibration",
            *TINY,
            "--out",
            str(out),
            "--targets",
            "a",
            "--no-report",
            "--methods",
            ",".join(["noisy", *calib]),
        ],
        capsys,
    )
    assert code == 0, err
    res = check_tables(out)
    assert [r["method"] for r in res["rows"] if r["target"] == "a"] == ["noisy", *calib]
    assert check_metrics_files(out) == len(calib)  # every trained row equals its run's metrics.json
    cells = read_cells(out)
    if "calib-adl" in calib:  # "multiple": ADL over the calibrated-synthetic domain AND the real sources
        assert {"b", "c"} <= set(cells[("default", "a", 0, "calib-adl")]["acceptance"])


def test_crossval_on_polyu_real_srgb_noise(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sRGB side of Table 1 on real noise: a PolyU camera held out, the others as sources."""
    polyu = shared_data / "polyu"
    if not polyu.is_dir():
        pytest.skip(f"{polyu} not found")
    out = tmp_path / "polyu"
    code, stdout, err = cli(
        [
            "bench",
            "crossval",
            "--data",
            f"polyu:{polyu}",
            "--budget",
            "tiny",
            "--threads",
            "1",
            "--crops",
            "1",
            "--targets",
            "Sony",
            "--target-pairs",
            "3",
            "--test-pairs",
            "2",
            "--methods",
            "noisy,wavelet,finetune,adl",
            "--out",
            str(out),
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    res = check_tables(out)
    assert check_metrics_files(out) == 2
    cells = read_cells(out)
    adl = cells[("default", "Sony", 0, "adl")]
    assert set(adl["acceptance"]) == {"Canon5D2", "Canon600D", "Canon80D", "NikonD800"}
    assert len(adl["split"]["target_pool"]) == 3 and adl["n_images"] == 2
    # the test scenes of the held-out camera are never in its pool
    scene = {r.sample_id: r.scene for r in _polyu_records(polyu)}
    pool = {scene[i] for i in adl["split"]["target_pool"]}
    assert not pool & {scene[i["sample_id"]] for i in adl["images"]}
    wavelet = cells[("default", "Sony", 0, "wavelet")]
    assert wavelet["psnr"] > wavelet["psnr_noisy"]  # real JPEG noise, a J-invariant-tuned denoiser
    assert res["space"] == "srgb" and (out / "report.html").is_file()


def _polyu_records(root: Path) -> list[Any]:
    from rawadapt.data.registry import open_dataset

    return list(open_dataset(f"polyu:{root}").records)


def test_budgets() -> None:
    from rawadapt.baselines.base import Budget
    from rawadapt.eval.protocols import budget_names, resolve_budget
    from rawadapt.eval.protocols.settings import EXTRA_BUDGETS

    assert set(budget_names()) >= {"tiny", "quick", "default", "demo"}
    demo = resolve_budget("demo")
    base, overrides = EXTRA_BUDGETS["demo"]
    assert demo.name == "demo" and base == "quick"
    quick = Budget.preset("quick").to_dict()
    assert demo.to_dict() == {**quick, **overrides, "name": "demo"}
    assert resolve_budget("tiny") == Budget.preset("tiny")
    with pytest.raises(ConfigError, match="unknown budget 'x'; known: tiny, quick, default, demo"):
        resolve_budget("x")


def test_default_targets_and_pairs() -> None:
    from fixtures_data import make_multisensor_dataset

    from rawadapt.eval.protocols.plan import (
        default_target_pairs,
        max_pool_pairs,
        resolve_targets,
    )
    from rawadapt.eval.protocols.settings import PROTOCOLS, BenchSettings

    ds = make_multisensor_dataset(sensors=("x", "SonyA7S2", "y"))
    s = BenchSettings("crossval", data="multisensor", out="o")
    assert resolve_targets(s, PROTOCOLS["crossval"], ds) == ["SonyA7S2", "x", "y"]
    assert resolve_targets(s, PROTOCOLS["ablation"], ds) == ["SonyA7S2"]  # the paper's sensor
    s.quick = True
    assert len(resolve_targets(s, PROTOCOLS["crossval"], ds)) == 2
    assert max_pool_pairs(ds, "x") == 4 and default_target_pairs(ds, ["x"]) == 4  # 20 is not available
    # scene mode (no split roles): all pairs but one scene
    nosplit = ds.filter(lambda r: r.sensor == "x")
    from dataclasses import replace

    from rawadapt.data.base import PairDataset

    recs = [replace(r, split=None) for r in nosplit.records]
    plain = PairDataset(recs, nosplit.loader, name="plain", space="raw")
    assert max_pool_pairs(plain, "x") == len(recs) - 1


def test_concat_datasets_and_combined_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    from fixtures_data import make_multisensor_dataset

    from rawadapt.data.combine import concat_datasets
    from rawadapt.data.registry import open_dataset

    a = make_multisensor_dataset(sensors=("a", "b"), name="one")
    b = make_multisensor_dataset(sensors=("b", "c"), name="two", seed=5)
    both = concat_datasets([a, b])
    assert len(both) == len(a) + len(b) and both.name == "one+two" and both.sensors == ["a", "b", "c"]
    ids = [r.sample_id for r in both.records]
    assert len(set(ids)) == len(ids)
    assert ids[: len(a)] == [r.sample_id for r in a.records]  # the first part keeps its ids
    clash = [i for i in ids[len(a) :] if i.startswith("two/")]
    assert clash and all(i.split("/", 1)[1].startswith("b-") for i in clash)  # only colliding ids renamed
    assert "c-source-000" in ids  # unique ids stay as they are
    # loader dispatch: each record decoded by its own part, under the new id
    k = ids.index(clash[0])
    s = both[k]
    own = b[[r.sample_id for r in b.records].index(clash[0].split("/", 1)[1])]
    assert s.sample_id == clash[0] and np.array_equal(s.noisy, own.noisy) and np.array_equal(s.clean, own.clean)
    assert np.array_equal(both[0].noisy, a[0].noisy)
    with pytest.raises(DatasetError, match="different spaces"):
        concat_datasets([a, make_multisensor_dataset(space="srgb")])
    # "A+B" specs through the registry
    monkeypatch.setitem(registry.NAMED, "ms-one", "fixtures_data:make_multisensor_dataset")
    combo = open_dataset("multisensor+ms-one")
    assert len(combo) == 2 * len(make_multisensor_dataset()) and combo.name == "multisensor+ms-one"
    with pytest.raises(DatasetError, match="empty part"):
        open_dataset("multisensor+")


def test_polyu_plus_synth_srgb(shared_data: Path) -> None:
    """The real PolyU cameras with the simulated sRGB sensors as extra sources."""
    from rawadapt.data.registry import open_dataset
    from rawadapt.eval.protocols.plan import default_target_pairs, primary_sensors

    polyu = shared_data / "polyu"
    if not polyu.is_dir():
        pytest.skip(f"{polyu} not found")
    spec = f"polyu:{polyu}+synth-srgb"
    ds = open_dataset(spec)
    cams = primary_sensors(spec, ds)
    assert "Sony" in cams and "SonyA7S2" not in cams and "SonyA7S2" in ds.sensors
    assert ds.space == "srgb"
    assert default_target_pairs(ds, cams) == 6
    assert math.isfinite(float(ds[0].noisy.mean()))
    with pytest.raises(DatasetError, match="different spaces"):
        open_dataset("synth+synth-srgb")


def test_combined_spec_never_splits_an_existing_path(tmp_path: Path) -> None:
    from rawadapt.data.registry import is_combined_spec

    odd = tmp_path / "a+b"
    odd.mkdir()
    assert not is_combined_spec(str(odd)) and not is_combined_spec(f"polyu:{odd}")
    assert is_combined_spec(f"polyu:{tmp_path / 'x'}+synth-srgb") and not is_combined_spec("synth")


def test_auto_threads_is_a_valid_count() -> None:
    import torch

    from rawadapt.eval.protocols.threads import auto_threads

    before = torch.get_num_threads()
    n = auto_threads()
    assert n in (1, before) and torch.get_num_threads() == before  # decides, changes nothing
