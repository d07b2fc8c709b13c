"""``rawadapt demo`` end to end at the tiny budget: synth built on first use (tiny in tests),
one sensor held out, the printed table equals the run's results.json, the report exists, and a
second run reuses every cell."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rawadapt.cli.main import main


def run_demo(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["demo", *argv])
    cap = capsys.readouterr()
    assert exc.value.code in (0, None), cap.err[-3000:]
    return cap.out, cap.err


def test_demo_tiny_prints_the_runs_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    stdout, err = run_demo(["--out", str(out), "--budget", "tiny", "--target", "IP", "--threads", "1"], capsys)
    res = json.loads((out / "results.json").read_text())
    assert res["targets"] == ["IP"] and res["data"] == "synth"
    assert {"noisy", "finetune", "adl"} <= set(res["methods"])
    rows = {r["method"]: r for r in res["rows"] if r["target"] == "IP"}
    printed = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\S+)\s+(\d+\.\d{2})\s+(\d\.\d{4})\s+([+-]\d+\.\d{2})\s", line)
        if m:
            printed[m.group(1)] = (float(m.group(2)), float(m.group(3)), float(m.group(4)))
    assert set(printed) == set(res["methods"]), stdout
    for name, (psnr, ssim, gain) in printed.items():
        assert psnr == pytest.approx(rows[name]["psnr"], abs=0.006)
        assert ssim == pytest.approx(rows[name]["ssim"], abs=6e-5)
        assert gain == pytest.approx(rows[name]["psnr_gain"], abs=0.006)
    # per-domain acceptance rates, printed from the same file
    adl = next(a for a in res["acceptance"] if a["method"] == "adl")
    lines = stdout.split("ADL acceptance rate per source domain", 1)[1].splitlines()
    line = next(ln for ln in lines if ln.startswith("adl "))
    for domain, rate in adl["domains"].items():
        assert f"{domain} {rate:.2f}" in line
    # the reading is computed from the same rows
    reading = stdout.split("Reading:", 1)[1].split("ADL acceptance rate", 1)[0]
    assert f"ADL vs fine-tuning: {rows['adl']['psnr'] - rows['finetune']['psnr']:+.2f} dB" in reading
    assert f"Best here: {max(rows, key=lambda m: rows[m]['psnr'])}," in reading
    assert "What it means:" in reading
    report = out / "report.html"
    assert report.is_file() and f"report: {report}" in stdout
    assert "building synth" in err or "synth" in err

    stdout2, _ = run_demo(["--out", str(out), "--budget", "tiny", "--target", "IP", "--threads", "1"], capsys)
    assert f"0 cells computed, {len(res['methods'])} reused" in stdout2
    assert json.loads((out / "results.json").read_text())["rows"] == res["rows"]


def test_demo_rejects_unknown_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(tmp_path / "d"), "--budget", "tiny", "--target", "Nokia3310"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "unknown target sensor 'Nokia3310'" in err[-1]
