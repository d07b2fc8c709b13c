"""``rawadapt train`` / ``rawadapt evaluate``: --json last line, refusals, resume, evaluate splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rawadapt.cli.main import main
from rawadapt.data import registry

TINY = [
    "--data",
    "multisensor",
    "--model",
    "unet",
    "--width",
    "4",
    "--patch",
    "16",
    "--batch",
    "4",
    "--target-pairs",
    "3",
    "--no-progress",
]


@pytest.fixture(autouse=True)
def _multisensor_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--data multisensor`` opens the in-memory test dataset."""
    monkeypatch.setitem(registry.NAMED, "multisensor", "fixtures_data:make_multisensor_dataset")


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_train_json_last_line_and_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model: {kwargs: {depth: 2}}\nlog_every: 2\ntensorboard: false\n")
    run = tmp_path / "run"
    code, out, err = cli(
        [
            "train",
            "finetune",
            "--target",
            "b",
            "--iters",
            "3",
            "--finetune-iters",
            "2",
            "--config",
            str(cfg),
            "--out",
            str(run),
            "--json",
            *TINY,
        ],
        capsys,
    )
    assert code == 0, err
    m = json.loads(out.strip().splitlines()[-1])
    assert m["strategy"] == "finetune" and m["target"] == "b" and m["iterations"]["total"] == 5
    for key in ("psnr", "ssim", "psnr_noisy", "ssim_noisy"):
        assert isinstance(m[key], float)
    assert "images" not in m and set(m["per_sensor"]) == {"b"}
    assert "PSNR" in err and "run folder" in err

    code, out, err = cli(["evaluate", str(run), "--split", "test", "--json"], capsys)
    assert code == 0, err
    ev = json.loads(out.strip().splitlines()[-1])
    assert ev["psnr"] == pytest.approx(m["psnr"]) and ev["n"] == m["n_test"]  # same split recreated
    code, out, _ = cli(["evaluate", str(run), "--split", "source", "--json"], capsys)
    assert code == 0 and set(json.loads(out.splitlines()[-1])["per_sensor"]) == {"a", "c"}
    code, out, _ = cli(["evaluate", str(run), "--split", "all"], capsys)  # human table on stdout
    assert code == 0 and "(all)" in out and all(f"  {s} " in out for s in "abc")
    code, _, err = cli(["evaluate", str(run), "--split", "nope"], capsys)
    assert code == 2 and "unknown split" in err

    # an existing run folder is never overwritten
    code, out, err = cli(["train", "finetune", "--target", "b", "--out", str(run), *TINY], capsys)
    assert code == 2 and "already exists" in err and "--resume" in err and "Traceback" not in err


def test_train_resume_errors_and_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(
        ["train", "finetune", "--target", "a", "--out", str(tmp_path / "none"), "--resume", *TINY], capsys
    )
    assert code == 2 and "nothing to resume" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {patchh: 3}\n")
    code, _, err = cli(["train", "finetune", "--config", str(bad), "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "data.patchh: unknown setting" in err and str(bad) in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = cli(["train", "finetune", "--target", "zz", "--out", str(tmp_path / "y"), *TINY], capsys)
    assert code == 2 and "'zz' not in the dataset" in err


def test_train_pretrain_then_resume_finished_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "pre"
    code, out, err = cli(["train", "pretrain", "--iters", "2", "--out", str(run), "--json", *TINY], capsys)
    assert code == 0, err
    first = json.loads(out.splitlines()[-1])
    assert first["target"] is None and set(first["per_sensor"]) == {"a", "b", "c"}
    # --resume of a finished run (strategy taken from its config.yaml) re-evaluates it, same result
    code, out, err = cli(["train", "--out", str(run), "--resume", "--json", "--no-progress"], capsys)
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["psnr"] == pytest.approx(first["psnr"])
