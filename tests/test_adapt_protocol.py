"""The Table-1 protocol at tiny size: well-formed tables, resume skips finished cells, figures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from rawadapt.data.base import PairDataset
from rawadapt.data.sample import Sample, SampleRecord
from rawadapt.errors import ConfigError
from rawadapt.eval.protocols.lan import (
    CSV_COLUMNS,
    LanProtocolSettings,
    ProtocolData,
    run_lan_protocol,
)


def _dataset(space: str, sensors: list[str], per_sensor: int, size: int, sigma: float, seed: int) -> PairDataset:
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
                noisy=noisy,
                clean=clean,
                sensor=s,
                iso=800.0,
                space=space,  # type: ignore[arg-type]
                scene=f"scene{i}",
                sample_id=sid,
            )
            records.append(
                SampleRecord(
                    sample_id=sid, sensor=s, iso=800.0, scene=f"scene{i}", noisy_path="", space=space, split=split
                )
            )  # type: ignore[arg-type]
    return PairDataset(records, lambda r: samples[r.sample_id], name=f"mem-{space}", space=space)  # type: ignore[arg-type]


def _settings(out: Path, **kw: object) -> LanProtocolSettings:
    base = dict(
        out=str(out),
        quick=True,
        backbones=["dncnn"],
        iters=[1, 2],
        losses=["zsn2n", "nbr2nbr"],
        methods=["lan", "last-layer", "meta"],
        images=2,
        crop=16,
        pretrain_iters=3,
        meta_iters=1,
        raw_backbones=["dncnn"],
        threads=1,
    )
    base.update(kw)
    return LanProtocolSettings(**base)  # type: ignore[arg-type]


def test_protocol_tiny_tables_resume_and_figures(tmp_path: Path) -> None:
    srgb = _dataset("srgb", ["s1", "s2"], 3, 24, 0.05, 0)
    raw = _dataset("raw", ["r1", "r2", "r3"], 3, 24, 0.03, 1)
    tests = [s.crop(0, 0, 16, 16) for s in _dataset("srgb", ["polyu"], 2, 20, 0.1, 2)]
    data = ProtocolData(srgb_pretrain=srgb, srgb_test=tests, raw_pretrain=raw)
    out = tmp_path / "lan"
    res = run_lan_protocol(_settings(out), data=data, progress=False)
    n_cells = 2 * 3 * 2  # spaces x methods x losses
    assert res["computed"] == n_cells and res["skipped"] == 0

    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    # per space: a pretrained row + methods x losses x iteration counts
    assert len(rows) == 2 * (1 + 3 * 2 * 2)
    assert {r["space"] for r in rows} == {"srgb", "raw"}
    assert {r["dataset"] for r in rows if r["space"] == "raw"} == {"synth:r3"}  # held-out = last sensor
    for r in rows:
        assert np.isfinite(float(r["psnr"])) and 0 < float(r["ssim"]) <= 1
        assert int(r["n_images"]) == (2 if r["space"] == "srgb" else 1)  # r3 has one "test" record
    pre = {r["space"]: float(r["psnr"]) for r in rows if r["method"] == "pretrained"}
    for r in rows:  # delta is relative to the pretrained row of its space
        assert float(r["delta_psnr"]) == pytest.approx(float(r["psnr"]) - pre[r["space"]], abs=1e-3)
    md = (out / "results.md").read_text()
    assert "| method | iters | zsn2n PSNR / SSIM | nbr2nbr PSNR / SSIM | s/iter |" in md
    assert md.count("| pretrained |") == 2 and "| lan | 2 |" in md
    js = json.loads((out / "results.json").read_text())
    assert len(js["rows"]) == len(rows)
    assert (out / "pretrain" / "srgb-dncnn" / "model.json").is_file()
    assert (out / "meta" / "raw-dncnn-nbr2nbr" / "model.json").is_file()
    figs = {Path(p).name for p in res["figures"]}
    assert {"fig4_srgb_dncnn.png", "fig6_raw_dncnn.png", "fig5_srgb_dncnn_zsn2n.png"} <= figs
    assert (out / "figures" / "fig4_srgb_dncnn.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # resume: nothing is recomputed; extending the method list computes only the new cells
    mtime = (out / "cells" / "srgb-dncnn-lan-zsn2n-it2.json").stat().st_mtime_ns
    res2 = run_lan_protocol(_settings(out, figures=False), data=data, progress=False)
    assert res2["computed"] == 0 and res2["skipped"] == n_cells
    assert (out / "cells" / "srgb-dncnn-lan-zsn2n-it2.json").stat().st_mtime_ns == mtime
    res3 = run_lan_protocol(
        _settings(out, figures=False, methods=["lan", "last-layer", "meta", "first-layer"], raw=False),
        data=data,
        progress=False,
    )
    assert res3["computed"] == 2 and res3["skipped"] == 6
    # different result-defining settings are refused
    with pytest.raises(ConfigError, match="different settings"):
        run_lan_protocol(_settings(out, crop=12), data=data, progress=False)


def test_protocol_settings_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="methods"):
        _settings(tmp_path, methods=["lan", "bogus"]).validate()
    with pytest.raises(ConfigError, match="iters"):
        _settings(tmp_path, iters=[0, 5]).validate()
    s = _settings(tmp_path, iters=[20, 5, 10, 5]).validate()
    assert s.iters == [5, 10, 20]


def test_bench_lan_cli_on_real_polyu_and_synth(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``rawadapt bench lan`` end to end: pretraining on the (tiny) built-in synth-srgb/synth
    through run_training, the real PolyU pairs cropped top-left, and the CLI's tables."""
    from rawadapt.cli.main import main

    polyu = shared_data / "polyu"
    if not polyu.is_dir():
        pytest.skip(f"{polyu} not found")
    out = tmp_path / "lan"
    argv = [
        "bench",
        "lan",
        "--quick",
        "--out",
        str(out),
        "--polyu",
        str(polyu),
        "--backbones",
        "dncnn",
        "--losses",
        "zsn2n",
        "--methods",
        "lan,full",
        "--iters",
        "1,2",
        "--images",
        "2",
        "--crop",
        "32",
        "--pretrain-iters",
        "3",
        "--raw-target",
        "S6",
        "--raw-sources",
        "GP,IP",
        "--threads",
        "1",
        "--no-figures",
        "--json",
    ]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    cap = capsys.readouterr()
    assert int(exc.value.code or 0) == 0, cap.err
    res = json.loads(cap.out.strip().splitlines()[-1])
    assert res["computed"] == 2 * 2  # (srgb, raw) x (lan, full)
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    srgb = [r for r in rows if r["space"] == "srgb"]
    assert srgb and all(r["dataset"].startswith("polyu") and int(r["n_images"]) == 2 for r in srgb)
    assert {r["dataset"] for r in rows if r["space"] == "raw"} == {"synth:S6"}
    cell = json.loads((out / "cells" / "srgb-dncnn-lan-zsn2n-it2.json").read_text())
    assert all(len(i["psnr"]) == 3 for i in cell["images"])  # iteration 0, 1, 2
    # the pretraining runs are real run folders of the built-in simulator's data
    cfg = (out / "pretrain" / "srgb-dncnn" / "config.yaml").read_text()
    assert "synth-srgb" in cfg and "pretrain" in cfg
