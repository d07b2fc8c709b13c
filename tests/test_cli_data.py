"""``rawadapt info`` and ``rawadapt data list``: JSON output and one-line errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rawadapt.cli.main import main
from rawadapt.io.images import write_image

REPO = Path(__file__).resolve().parents[1]


def _cli() -> list[str]:
    exe = Path(sys.executable).parent / "rawadapt"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "rawadapt"]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI in-process through main() (its error policy included)."""
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _json(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    return json.loads(lines[-1])


def test_info_json_real_dng(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["info", str(shared_data / "raw/RAW_KODAK_DC50.KDC"), "--json"], capsys)
    assert code == 0
    d = _json(out)
    for key in ("camera", "cfa", "black_level", "white_level", "iso", "width", "height"):
        assert key in d
    assert d["cfa"] == "GRBG" and d["black_level"] == [0, 0, 0, 0] and d["white_level"] == 16383
    assert d["iso"] == 84 and (d["width"], d["height"]) == (768, 512) and d["pixels"]["zero_fraction"] == 0


def test_info_human_and_meta_only(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dng = str(shared_data / "raw/colorchart_CanonEOSKissX4_MagicLantern.dng")
    code, out, _ = run(["info", dng, "--meta-only"], capsys)
    assert code == 0 and "RGGB" in out and "2056" in out and "1734" in out and "Canon EOS Kiss X4" in out


def test_info_headerless_and_png_mosaic(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = str(shared_data / "raw/mushfiqulalam_DSC_1339_768x512_rggb_u16le.raw")
    code, out, _ = run(
        [
            "info",
            raw,
            "--width",
            "768",
            "--height",
            "512",
            "--cfa",
            "RGGB",
            "--black",
            "600",
            "--white",
            "15520",
            "--json",
        ],
        capsys,
    )
    d = _json(out)
    assert code == 0 and d["cfa"] == "RGGB" and d["black_level"] == [600] * 4 and d["width"] == 768
    code, _, err = run(["info", raw, "--json"], capsys)
    assert code == 2 and "--width" in err and err.count("\n") == 1
    png = str(shared_data / "raw/halide_N900_bayer_small_GRBG.png")
    code, out, _ = run(["info", png, "--cfa", "GRBG", "--black", "25", "--white", "1023", "--json"], capsys)
    d = _json(out)
    assert code == 0 and d["kind"] == "mosaic" and d["cfa"] == "GRBG" and d["white_level"] == 1023
    assert (d["width"], d["height"]) == (256, 344)
    code, out, _ = run(["info", png, "--json"], capsys)
    d = _json(out)
    assert d["kind"] == "image" and d["channels"] == 1 and d["bits"] == 16 and "--cfa" in d["hint"]
    code, _, err = run(["info", raw, "--width", "768", "--height", "512", "--cfa", "RGGB", "--black", "1,2"], capsys)
    assert code == 2 and "--black" in err


def test_info_srgb_and_npy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write_image(tmp_path / "a.png", np.zeros((3, 5, 7), np.float32))
    code, out, _ = run(["info", str(p), "--json"], capsys)
    d = _json(out)
    assert code == 0 and (d["width"], d["height"], d["channels"], d["bits"]) == (7, 5, 3, 8)
    np.save(tmp_path / "x.npy", np.ones((4, 6, 8), np.uint16))
    code, out, _ = run(["info", str(tmp_path / "x.npy"), "--json"], capsys)
    d = _json(out)
    assert d["shape"] == [4, 6, 8] and d["dtype"] == "uint16" and (d["width"], d["height"]) == (8, 6)


@pytest.mark.parametrize(
    "stub,word", [("exiftool_DNG.dng", ""), ("exiftool_Panasonic.rw2", "0"), ("exiftool_CanonRaw.cr2", "unsupported")]
)
def test_info_refuses_stubs(shared_data: Path, capsys: pytest.CaptureFixture[str], stub: str, word: str) -> None:
    code, out, err = run(["info", str(shared_data / "raw_stubs" / stub)], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and stub in err and word in err and err.count("\n") == 1


def test_info_nef_stub_subprocess(shared_data: Path) -> None:
    """The real console script: exit 2, ONE stderr line naming the file, no traceback (LibRaw's
    own 'data corrupted' message is folded into that line)."""
    nef = shared_data / "raw_stubs/exiftool_Nikon.nef"
    r = subprocess.run(_cli() + ["info", str(nef)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "exiftool_Nikon.nef" in lines[0] and "Traceback" not in r.stderr


def test_info_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["info", str(tmp_path / "nope.dng")], capsys)
    assert code == 2 and "nope.dng" in err and "no such file" in err


def test_data_list_adapters(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["data", "list", "--json"], capsys)
    d = _json(out)
    assert code == 0
    assert [a["name"] for a in d["adapters"]] == ["manifest", "sidd", "sid", "eld", "polyu", "pairs"]
    assert {n["name"] for n in d["named"]} >= {"synth"}
    code, out, _ = run(["data", "list"], capsys)
    assert code == 0 and "polyu" in out and "synth" in out


def test_data_list_root(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(shared_data / "polyu")
    code, out, _ = run(["data", "list", root, "--json"], capsys)
    d = _json(out)
    assert (
        code == 0
        and d["count"] == 100
        and set(d["sensors"]) == {"Canon5D2", "Canon600D", "Canon80D", "NikonD800", "Sony"}
    )
    assert d["sensors"]["Canon80D"]["isos"] == [800, 3200, 6400, 12800]
    code, out, _ = run(["data", "list", root, "--adapter", "pairs"], capsys)
    assert code == 0 and "100 pairs" in out and "polyu" in out  # pairs adapter: one sensor named after the folder
    code, out, _ = run(["data", "list", root], capsys)
    assert code == 0 and "NikonD800" in out and "33" in out


def test_data_list_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["data", "list", str(tmp_path / "none")], capsys)
    assert code == 2 and err.count("\n") == 1 and "none" in err
    code, _, err = run(["data", "list", str(tmp_path), "--adapter", "bogus"], capsys)
    assert code == 2 and "bogus" in err
    (tmp_path / "manifest.csv").write_text("noisy,clean,sensor,iso,colour\n")
    code, _, err = run(["data", "list", str(tmp_path)], capsys)
    assert code == 2 and "colour" in err and "manifest.csv" in err and err.count("\n") == 1


def test_info_level_flags_on_a_raw_file_are_refused(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--white nan` (or any level/CFA flag) on a camera RAW file was silently ignored; now exit 2."""
    dng = str(shared_data / "raw" / "colorchart_CanonEOSKissX4_MagicLantern.dng")
    for flags in (["--white", "nan"], ["--black", "64"], ["--cfa", "RGGB"]):
        code, _, err = run(["info", dng, *flags], capsys)
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, (flags, err)
    assert run(["info", dng], capsys)[0] == 0
