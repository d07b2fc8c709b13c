"""`rawadapt simulate` and the light import of rawadapt.noise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rawadapt.cli.main import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ex:
        main(args)
    out = capsys.readouterr()
    return int(ex.value.code or 0), out.out, out.err


def test_simulate_npy_roundtrip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = np.full((4, 32, 32), 0.2, np.float32)
    np.save(tmp_path / "clean.npy", clean)
    code, out, _ = _run(
        [
            "simulate",
            "--profile",
            "GP",
            "--iso",
            "1600",
            "--seed",
            "4",
            "--json",
            str(tmp_path / "clean.npy"),
            str(tmp_path / "noisy.npy"),
        ],
        capsys,
    )
    assert code == 0
    res = json.loads(out.strip().splitlines()[-1])
    assert res["profile"] == "GP" and res["params"]["iso"] == 1600
    noisy = np.load(tmp_path / "noisy.npy")
    assert noisy.shape == clean.shape and abs(float(noisy.mean()) - 0.2) < 0.01 and noisy.std() > 0.01
    _run(
        [
            "simulate",
            "--profile",
            "GP",
            "--iso",
            "1600",
            "--seed",
            "4",
            str(tmp_path / "clean.npy"),
            str(tmp_path / "again.npy"),
        ],
        capsys,
    )
    assert np.array_equal(np.load(tmp_path / "again.npy"), noisy)


def test_simulate_raw_to_dng(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rawadapt.io.bayer import unpack
    from rawadapt.io.dng import write_dng
    from rawadapt.io.raw import read_raw

    planes = np.full((4, 32, 48), 0.25, np.float32)
    mosaic = unpack((planes * (4095 - 64) + 64).astype(np.uint16), "GRBG")
    write_dng(tmp_path / "clean.dng", mosaic, "GRBG", black_level=64, white_level=4095)
    code, _, _ = _run(
        [
            "simulate",
            "--profile",
            "SonyA7S2",
            "--iso",
            "3200",
            "--ratio",
            "10",
            str(tmp_path / "clean.dng"),
            str(tmp_path / "noisy.dng"),
        ],
        capsys,
    )
    assert code == 0
    img = read_raw(tmp_path / "noisy.dng")
    assert img.cfa == "GRBG" and img.white_level == 16383 and img.black_level == [512.0] * 4
    # stored at the short exposure: mean ~ 0.25 / ratio
    assert abs(float(img.planes.mean()) - 0.025) < 0.003


def test_simulate_srgb_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    Image.fromarray(np.full((30, 40, 3), 128, np.uint8)).save(tmp_path / "in.png")
    code, _, _ = _run(
        ["simulate", "--profile", "N6", "--iso", "3200", str(tmp_path / "in.png"), str(tmp_path / "out.png")], capsys
    )
    assert code == 0
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (30, 40, 3) and out.std() > 2


def test_simulate_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "c.npy", np.zeros((4, 8, 8), np.float32))
    code, _, err = _run(
        ["simulate", "--profile", "Nope", "--iso", "100", str(tmp_path / "c.npy"), str(tmp_path / "o.npy")], capsys
    )
    assert code == 2 and err.startswith("error:") and "SonyA7S2" in err and "Traceback" not in err
    code, _, err = _run(
        ["simulate", "--profile", "IP", "--iso", "100", str(tmp_path / "missing.npy"), str(tmp_path / "o.npy")], capsys
    )
    assert code == 2 and "missing.npy" in err
    np.save(tmp_path / "bad.npy", np.zeros((3, 8, 8), np.float32))
    code, _, err = _run(
        ["simulate", "--profile", "IP", "--iso", "100", str(tmp_path / "bad.npy"), str(tmp_path / "o.npy")], capsys
    )
    assert code == 2 and "bad.npy" in err


def test_noise_package_import_is_light() -> None:
    code = (
        "import sys, rawadapt.noise, rawadapt.noise.profiles as p; p.list_profiles(); "
        "bad = [m for m in ('torch', 'skimage', 'matplotlib', 'scipy') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
