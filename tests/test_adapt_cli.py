"""``rawadapt adapt`` (sRGB, RAW DNG, meta), its errors, and ``rawadapt bench lan-cost``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rawadapt.cli.main import main
from rawadapt.models import build_model
from rawadapt.models.checkpoint import save_model


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture
def srgb_run(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = build_model({"arch": "dncnn", "in_channels": 3, "depth": 3, "width": 8})
    run = tmp_path / "run"
    save_model(run, model, extra={"strategy": "pretrain"})
    return run


def _pngs(tmp_path: Path, n: int, size: tuple[int, int] = (20, 24)) -> tuple[list[Path], list[Path]]:
    from rawadapt.io.images import write_image

    rng = np.random.default_rng(0)
    noisy, clean = [], []
    for i in range(n):
        c = rng.random((3, *size)).astype(np.float32) * 0.5 + 0.25
        y = np.clip(c + 0.05 * rng.standard_normal(c.shape), 0, 1)
        noisy.append(write_image(tmp_path / f"img{i}_real.png", y))
        clean.append(write_image(tmp_path / f"img{i}_mean.png", c))
    return noisy, clean


def test_adapt_srgb_json(tmp_path: Path, srgb_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noisy, clean = _pngs(tmp_path, 2)
    out = tmp_path / "out"
    code, stdout, err = _run(
        [
            "adapt",
            str(srgb_run),
            *map(str, noisy),
            "-o",
            str(out),
            "--method",
            "lan",
            "--loss",
            "nbr2nbr",
            "--iters",
            "3",
            "--clean",
            str(clean[0]),
            "--clean",
            str(clean[1]),
            "--save-adapted",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads(stdout.strip().splitlines()[-1])
    assert res["method"] == "lan" and res["loss"] == "nbr2nbr" and res["iters"] == 3 and len(res["images"]) == 2
    for img in res["images"]:
        for key in ("psnr_before", "psnr_after", "ssim_before", "ssim_after"):
            assert isinstance(img[key], float)
        assert len(img["loss"]) == 3 and len(img["psnr"]) == 4 and len(img["ssim"]) == 4
        assert img["psnr"][0] == img["psnr_before"] and img["psnr"][-1] == img["psnr_after"]
        assert Path(img["output"]).is_file() and Path(img["adapted_input"]).is_file()
    assert Path(res["images"][0]["output"]).name == "img0_real_lan.png"
    # one input: -o may name the output file; no clean image -> no metrics
    single = tmp_path / "single.png"
    code, stdout, err = _run(
        [
            "adapt",
            str(srgb_run / "model.safetensors"),
            str(noisy[0]),
            "-o",
            str(single),
            "--method",
            "last-layer",
            "--iters",
            "1",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    assert single.is_file()
    img = json.loads(stdout.strip().splitlines()[-1])["images"][0]
    assert img["psnr"] == [] and img["psnr_after"] is None and len(img["loss"]) == 1


@pytest.mark.parametrize("case", ["channels", "small", "clean_count", "missing", "meta", "method"])
def test_adapt_errors(tmp_path: Path, srgb_run: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    noisy, clean = _pngs(tmp_path, 2)
    args = ["adapt", str(srgb_run), str(noisy[0]), "-o", str(tmp_path / "o"), "--iters", "1"]
    expect = {
        "channels": "denoises packed RAW",
        "small": "too small",
        "clean_count": "--clean was given 2 times",
        "missing": "no such file",
        "meta": "needs a meta-initialised model",
        "method": "--method must be",
    }[case]
    if case == "channels":
        raw_model = build_model({"arch": "dncnn", "in_channels": 4, "depth": 3, "width": 8})
        save_model(tmp_path / "raw_run", raw_model)
        args[1] = str(tmp_path / "raw_run")
    elif case == "small":
        tiny, _ = _pngs(tmp_path / "tiny", 1, size=(1, 9))
        args[2] = str(tiny[0])
    elif case == "clean_count":
        args += ["--clean", str(clean[0]), "--clean", str(clean[1])]
    elif case == "missing":
        args[2] = str(tmp_path / "nope.png")
    elif case == "meta":
        args += ["--method", "meta"]
    elif case == "method":
        args += ["--method", "bogus"]
    code, _, err = _run(args, capsys)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines[-1].startswith("error:") and expect in lines[-1] and "Traceback" not in err


def test_adapt_raw_dng_roundtrip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rawadapt.io.dng import write_dng
    from rawadapt.io.raw import read_raw

    rng = np.random.default_rng(1)
    mosaic = (512 + rng.random((32, 40)) * 3000).astype(np.uint16)
    src = write_dng(tmp_path / "shot.dng", mosaic, "RGGB", black_level=512, white_level=16383, iso=1600)
    torch.manual_seed(0)
    model = build_model(
        {"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "use_sensor": False, "use_iso": False}
    )
    save_model(tmp_path / "raw_run", model)
    out = tmp_path / "shot_lan.dng"
    code, stdout, err = _run(
        ["adapt", str(tmp_path / "raw_run"), str(src), "-o", str(out), "--iters", "2", "--json"], capsys
    )
    assert code == 0, err
    back = read_raw(out)
    assert back.planes.shape == (4, 16, 20) and back.cfa == "RGGB" and back.meta.iso == 1600
    # .npy packed planes in, .npy out
    planes = read_raw(src).planes
    np.save(tmp_path / "planes.npy", planes)
    code, stdout, err = _run(
        [
            "adapt",
            str(tmp_path / "raw_run"),
            str(tmp_path / "planes.npy"),
            "-o",
            str(tmp_path / "res"),
            "--method",
            "first-layer",
            "--iters",
            "1",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads(stdout.strip().splitlines()[-1])
    assert np.load(res["images"][0]["output"]).shape == planes.shape


def test_adapt_meta_from_meta_init(tmp_path: Path, srgb_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rawadapt.adapt.meta import MetaConfig, meta_pretrain
    from rawadapt.data.sample import Sample

    rng = np.random.default_rng(0)
    c = (rng.random((3, 24, 24)) * 0.5 + 0.25).astype(np.float32)
    samples = [
        Sample(
            noisy=np.clip(c + 0.05 * rng.standard_normal(c.shape), 0, 1).astype(np.float32),
            clean=c,
            sensor="s",
            space="srgb",
        )
    ]
    meta_dir = meta_pretrain(
        srgb_run,
        samples,
        tmp_path / "meta",
        MetaConfig(meta_iters=1, inner_steps=1, patch=16, tasks_per_batch=1, inner_lr=1e-5),
    )
    assert json.loads((meta_dir / "model.json").read_text())["meta_init"]["inner_lr"] == 1e-5
    noisy, clean = _pngs(tmp_path, 1)
    code, stdout, err = _run(
        [
            "adapt",
            str(srgb_run),
            str(noisy[0]),
            "-o",
            str(tmp_path / "m.png"),
            "--method",
            "meta",
            "--meta-run",
            str(meta_dir),
            "--iters",
            "2",
            "--clean",
            str(clean[0]),
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads(stdout.strip().splitlines()[-1])
    assert res["method"] == "meta" and res["lr"] == 1e-5 and len(res["images"][0]["psnr"]) == 3


def test_cost_measurement_runs_in_its_own_process() -> None:
    from rawadapt.eval.protocols.lan_cost import _run_one

    res = _run_one(
        [
            "--backbone",
            "dncnn",
            "--method",
            "lan",
            "--loss",
            "nbr2nbr",
            "--quick",
            "--size",
            "32",
            "--iters",
            "2",
            "--warmup",
            "1",
            "--threads",
            "1",
        ],
        timeout=300,
    )
    assert res["method"] == "lan" and res["size"] == 32 and len(res["times_s"]) == 2
    assert res["time_per_iter_s"] > 0 and res["memory_mb"] >= 0 and res["peak_mb"] >= res["baseline_mb"]


def test_bench_lan_cost_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import rawadapt.eval.protocols.lan_cost as cost

    calls: list[list[str]] = []

    def in_process(args: list[str], timeout: float) -> dict:
        # same arguments as the subprocess would get, measured here to keep the test fast
        calls.append(args)
        get = dict(zip(args[::2], args[1::2]))
        return cost.measure(
            backbone=get["--backbone"],
            method=get["--method"],
            loss=get["--loss"],
            size=int(get["--size"]),
            iters=int(get["--iters"]),
            warmup=int(get["--warmup"]),
            quick="--quick" in args,
            seed=int(get["--seed"]),
            tune_malloc=False,
        )

    monkeypatch.setattr(cost, "_run_one", in_process)
    out = tmp_path / "cost"
    code, stdout, err = _run(
        [
            "bench",
            "lan-cost",
            "--out",
            str(out),
            "--quick",
            "--backbones",
            "dncnn",
            "--losses",
            "zsn2n",
            "--size",
            "32",
            "--iters",
            "1",
            "--warmup",
            "0",
            "--repeats",
            "2",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    assert len(calls) == 4  # 2 methods x 2 repeats, one process each
    res = json.loads(stdout.strip().splitlines()[-1])
    (row,) = res["rows"]
    assert row["backbone"] == "dncnn" and row["loss"] == "zsn2n" and row["repeats"] == 2
    assert row["lan_time_s"] > 0 and row["full_time_s"] > 0
    assert row["time_ratio"] == pytest.approx(row["lan_time_s"] / row["full_time_s"])
    assert (out / "results.csv").read_text().startswith("backbone,loss,size,")
    assert "| dncnn | zsn2n |" in (out / "results.md").read_text()
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert {r["method"] for r in runs} == {"lan", "full"} and all(r["memory_mb"] >= 0 for r in runs)
    assert "<table" in (out / "report.html").read_text()  # `rawadapt report` reads the folder too

    # resume: a second run measures nothing and gives the same table
    calls.clear()
    code, stdout, err = _run(
        [
            "bench",
            "lan-cost",
            "--out",
            str(out),
            "--quick",
            "--backbones",
            "dncnn",
            "--losses",
            "zsn2n",
            "--size",
            "32",
            "--iters",
            "1",
            "--warmup",
            "0",
            "--repeats",
            "2",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    again = json.loads(stdout.strip().splitlines()[-1])
    assert calls == [] and again["reused"] == 4 and again["rows"] == res["rows"]
    # other arguments (more timed iterations) are measured anew, never mixed with old runs
    code, stdout, err = _run(
        [
            "bench",
            "lan-cost",
            "--out",
            str(out),
            "--quick",
            "--backbones",
            "dncnn",
            "--losses",
            "zsn2n",
            "--size",
            "32",
            "--iters",
            "2",
            "--warmup",
            "0",
            "--repeats",
            "2",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    assert len(calls) == 4 and json.loads(stdout.strip().splitlines()[-1])["computed"] == 4
