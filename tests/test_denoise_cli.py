"""``rawadapt denoise``: RAW -> DNG/TIFF/NPY readable by LibRaw with the original CFA and levels,
sRGB -> PNG, metadata rules, --json, and one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rawpy
import torch

from rawadapt.cli.main import main
from rawadapt.io.dng import write_dng
from rawadapt.models import build_model
from rawadapt.models.checkpoint import save_model

BLACK = [60, 61, 62, 63]  # canonical R, G1, G2, B
WHITE = 4095


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _model_dir(tmp_path: Path, cfg: dict, name: str, identity: bool = False) -> Path:
    torch.manual_seed(0)
    m = build_model(cfg)
    if identity:  # residual models with a zero last layer return their input exactly
        with torch.no_grad():
            m.last_layer().weight.zero_()
            if m.last_layer().bias is not None:
                m.last_layer().bias.zero_()
    save_model(tmp_path / name, m)
    return tmp_path / name


def _dng(tmp_path: Path, cfa: str = "GRBG", name: str = "in.dng", make: str = "Acme", model: str = "Cam1") -> Path:
    rng = np.random.default_rng(0)
    m = rng.integers(70, 4000, (38, 54)).astype(np.uint16)  # within [black, white]: no clipping
    return write_dng(
        tmp_path / name,
        m,
        cfa,
        black_level=BLACK,
        white_level=WHITE,
        make=make,
        model=model,
        iso=1600,
        exposure_time=0.02,
        as_shot_neutral=[0.5, 1.0, 0.8],
    )


def _cfa_of(r: rawpy.RawPy) -> str:
    desc = r.color_desc.decode()
    return "".join(desc[r.raw_pattern[dy, dx]] for dy, dx in [(0, 0), (0, 1), (1, 0), (1, 1)])


DNCNN_RAW = {"arch": "dncnn", "in_channels": 4, "depth": 3, "width": 8}
DNCNN_SRGB = {"arch": "dncnn", "in_channels": 3, "depth": 3, "width": 8}


def test_raw_to_dng_reads_back_with_libraw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _model_dir(tmp_path, DNCNN_RAW, "run")
    src = _dng(tmp_path)
    out = tmp_path / "out" / "den.dng"
    code, stdout, err = run_cli(
        ["denoise", str(run), str(src), "-o", str(out), "--json", "--tile", "8", "--overlap", "4"], capsys
    )
    assert code == 0, err
    res = json.loads(stdout.strip().splitlines()[-1])
    assert res["output"] == str(out) and res["space"] == "raw" and res["shape"] == [4, 19, 27]
    assert res["iso"] == 1600 and res["iso_source"] == "file metadata" and res["tile"] == 8
    with rawpy.imread(str(src)) as a, rawpy.imread(str(out)) as b:
        assert b.raw_image_visible.shape == a.raw_image_visible.shape == (38, 54)
        assert _cfa_of(b) == _cfa_of(a) == "GRBG"
        assert list(b.black_level_per_channel) == list(a.black_level_per_channel)
        assert b.white_level == a.white_level == WHITE
        assert b.other.iso_speed == pytest.approx(1600)
        wa, wb = a.camera_whitebalance, b.camera_whitebalance
        assert wb[0] / wb[1] == pytest.approx(wa[0] / wa[1], rel=1e-3)
        assert wb[2] / wb[1] == pytest.approx(wa[2] / wa[1], rel=1e-3)
        # LibRaw's camera -> sRGB matrix (derived from ColorMatrix1) survives the round trip
        np.testing.assert_allclose(b.color_matrix[:, :3], a.color_matrix[:, :3], atol=1e-4)
        assert np.abs(b.color_matrix[:, :3]).sum() > 0
        got = b.raw_image_visible.astype(np.int64)
        assert not np.array_equal(got, a.raw_image_visible)  # it did something
        assert got.max() <= WHITE
        assert b.postprocess().shape == (38, 54, 3)  # an editor-style render works


@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GBRG"])
def test_identity_model_round_trips_mosaic_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cfa: str
) -> None:
    """With an identity network the written mosaic equals the input DN for DN, whatever the CFA:
    levels, CFA phase and packing are all undone exactly (tiling included)."""
    run = _model_dir(tmp_path, DNCNN_RAW, "ident", identity=True)
    src = _dng(tmp_path, cfa)
    out = tmp_path / "same.dng"
    code, _, err = run_cli(["denoise", str(run), str(src), "-o", str(out), "--tile", "8", "--overlap", "4"], capsys)
    assert code == 0, err
    with rawpy.imread(str(src)) as a, rawpy.imread(str(out)) as b:
        np.testing.assert_array_equal(b.raw_image_visible, a.raw_image_visible)
        assert _cfa_of(b) == cfa


def test_raw_to_tiff_and_npy_and_preview(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tifffile
    from PIL import Image

    run = _model_dir(tmp_path, DNCNN_RAW, "ident", identity=True)
    src = _dng(tmp_path)
    code, _, err = run_cli(
        ["denoise", str(run), str(src), "-o", str(tmp_path / "m.tif"), "--preview", str(tmp_path / "p.png")], capsys
    )
    assert code == 0, err
    with rawpy.imread(str(src)) as a:
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "m.tif"), a.raw_image_visible)
    desc = json.loads(tifffile.TiffFile(tmp_path / "m.tif").pages[0].description)
    assert desc["cfa"] == "GRBG" and desc["black_level"] == BLACK and desc["white_level"] == WHITE
    with Image.open(tmp_path / "p.png") as im:
        assert im.size == (54, 38) and im.mode == "RGB"
    code, _, err = run_cli(["denoise", str(run), str(src), "-o", str(tmp_path / "planes.npy")], capsys)
    assert code == 0, err
    planes = np.load(tmp_path / "planes.npy")
    assert planes.shape == (4, 19, 27) and planes.dtype == np.float32
    # RAW output formats only; a PNG asks for --preview
    code, _, err = run_cli(["denoise", str(run), str(src), "-o", str(tmp_path / "x.png")], capsys)
    assert code == 2 and "--preview" in err and len(err.strip().splitlines()) == 1


def test_srgb_png_in_png_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    run = _model_dir(tmp_path, DNCNN_SRGB, "srgb")
    arr = np.random.default_rng(1).integers(0, 256, (21, 33, 3)).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "in.png")
    code, stdout, err = run_cli(
        ["denoise", str(run), str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), "--json"], capsys
    )
    assert code == 0, err
    res = json.loads(stdout.strip().splitlines()[-1])
    assert res["space"] == "srgb" and res["sensor_source"].startswith("not used")
    with Image.open(tmp_path / "o.png") as im:
        assert im.size == (33, 21) and im.mode == "RGB"
        assert not np.array_equal(np.asarray(im), arr)
    code, _, err = run_cli(
        ["denoise", str(run), str(tmp_path / "in.png"), "-o", str(tmp_path / "o16.png"), "--bits", "16"], capsys
    )
    assert code == 0, err
    from rawadapt.io.images import load_pixels

    assert load_pixels(tmp_path / "o16.png").dtype == np.uint16


def test_sensor_from_metadata_and_unknown_sensor_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = {"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["SonyA7S2", "AcmeCam1"]}
    run = _model_dir(tmp_path, cfg, "unet")
    src = _dng(tmp_path)  # camera "Acme Cam1" -> vocabulary entry "AcmeCam1"
    code, stdout, err = run_cli(["denoise", str(run), str(src), "-o", str(tmp_path / "a.dng"), "--json"], capsys)
    assert code == 0, err
    res = json.loads(stdout.strip().splitlines()[-1])
    assert res["sensor"] == "AcmeCam1" and res["sensor_source"] == "file metadata"
    # flags override the file
    code, stdout, err = run_cli(
        [
            "denoise",
            str(run),
            str(src),
            "-o",
            str(tmp_path / "b.dng"),
            "--json",
            "--sensor",
            "SonyA7S2",
            "--iso",
            "400",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads(stdout.strip().splitlines()[-1])
    assert (res["sensor"], res["sensor_source"], res["iso"], res["iso_source"]) == (
        "SonyA7S2",
        "--sensor",
        400.0,
        "--iso",
    )
    other = _dng(tmp_path, name="other.dng", make="Zeta", model="Z9")
    code, _, err = run_cli(["denoise", str(run), str(other), "-o", str(tmp_path / "c.dng")], capsys)
    assert code == 2 and "'Zeta Z9' is not in the model's vocabulary" in err and "--unknown-sensor" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "c.dng").exists()
    code, stdout, err = run_cli(
        ["denoise", str(run), str(other), "-o", str(tmp_path / "c.dng"), "--json", "--unknown-sensor", "average"],
        capsys,
    )
    assert code == 0, err
    assert json.loads(stdout.strip().splitlines()[-1])["sensor_source"] == "unknown (average)"


def test_refuses_to_overwrite_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _model_dir(tmp_path, DNCNN_RAW, "run")
    src = _dng(tmp_path)
    before = src.read_bytes()
    for target in (str(src), str(tmp_path / "." / "in.dng")):
        code, _, err = run_cli(["denoise", str(run), str(src), "-o", target], capsys)
        assert code == 2 and "refusing to overwrite the input" in err
    code, _, err = run_cli(
        ["denoise", str(run), str(src), "-o", str(tmp_path / "o.dng"), "--preview", str(src)], capsys
    )
    assert code == 2 and "refusing" in err
    assert src.read_bytes() == before


def test_bad_checkpoint_and_wrong_space_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _dng(tmp_path)
    run = _model_dir(tmp_path, DNCNN_RAW, "run")
    blob = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(blob[:100])
    code, _, err = run_cli(["denoise", str(run), str(src), "-o", str(tmp_path / "o.dng")], capsys)
    assert code == 2 and "model.safetensors" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["denoise", str(tmp_path / "nowhere"), str(src), "-o", str(tmp_path / "o.dng")], capsys)
    assert code == 2 and "nowhere" in err
    srgb = _model_dir(tmp_path, DNCNN_SRGB, "srgb")
    code, _, err = run_cli(["denoise", str(srgb), str(src), "-o", str(tmp_path / "o.dng")], capsys)
    assert code == 2 and "denoises srgb images" in err
    code, _, err = run_cli(["denoise", str(srgb), str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.png")], capsys)
    assert code == 2 and "missing.png" in err
    assert not (tmp_path / "o.dng").exists() and not (tmp_path / "o.png").exists()


def test_color_matrix_derived_from_camera_to_srgb_survives_libraw(tmp_path: Path) -> None:
    """A file with only a camera->sRGB matrix (LibRaw rgb_cam) gets a ColorMatrix1 from which
    LibRaw recovers the same camera->sRGB matrix."""
    from rawadapt.eval.denoise_file import wb_gains, xyz_to_camera

    rgb_cam = np.array([[1.818, -0.9643, 0.1463], [-0.2289, 1.7738, -0.5449], [-0.01954, -0.4681, 1.48764]])
    gains = wb_gains([1.0, 0.4037, 0.684, 0.0])
    assert gains == pytest.approx((1 / 0.4037, 1.0, 0.684 / 0.4037))
    cm = xyz_to_camera(None, rgb_cam, gains)
    m = np.random.default_rng(0).integers(100, 4000, (38, 54)).astype(np.uint16)
    write_dng(
        tmp_path / "c.dng",
        m,
        "RGGB",
        black_level=0,
        white_level=4095,
        color_matrix=cm,
        as_shot_neutral=[1 / g for g in gains],
    )
    with rawpy.imread(str(tmp_path / "c.dng")) as r:
        np.testing.assert_allclose(r.color_matrix[:, :3], rgb_cam, atol=2e-3)
    assert xyz_to_camera(None, None, gains) is None and wb_gains(None) is None
