"""SIDD: .MAT readers (HDF5 v7.3 mosaics, v5 metadata; the real metadata file) and the adapter."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from rawadapt.data.adapters import sidd
from rawadapt.data.registry import open_dataset
from rawadapt.errors import (
    DatasetError,
    InputFileError,
    MetadataError,
    UnsupportedSensorError,
)
from rawadapt.io.bayer import pack
from rawadapt.io.mat import cfa_from_tag, read_sidd_metadata, read_sidd_mosaic

REAL_META = "metadata/SIDD_0001_METADATA_RAW_010.MAT"


def write_mat73(path: Path, matrix: np.ndarray, key: str = "x") -> Path:
    """A MATLAB v7.3 file as MATLAB writes it: HDF5 with a 512-byte MATLAB user block, the
    matrix stored column-major (h5py sees its transpose)."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        ds = f.create_dataset(key, data=np.asarray(matrix, dtype=np.float64).T)
        ds.attrs["MATLAB_class"] = np.bytes_("double")
    head = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(head.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02" + b"IM")
    return path


def write_metadata(
    path: Path,
    cfa_values: list[int],
    *,
    iso: int = 100,
    height: int = 8,
    width: int = 12,
    repeat: tuple[int, int] = (2, 2),
) -> Path:
    """A SIDD-like MATLAB v5 metadata file: a 'metadata' struct whose UnknownTags is a struct
    array with ID / Offset / Value fields, like the real file."""
    from scipy.io import savemat

    ut = np.empty((3, 1), dtype=[("ID", "O"), ("Offset", "O"), ("Value", "O")])
    ut[0, 0] = (33421, 0, np.array(repeat, np.uint8))
    ut[1, 0] = (33422, 0, np.array(cfa_values, np.uint8))
    ut[2, 0] = (51041, 25788, np.array([1e-3, 2e-6] * 3))
    md = {
        "Make": "Google",
        "Model": "Pixel",
        "ISOSpeedRatings": iso,
        "ExposureTime": 0.01,
        "BlackLevel": np.zeros(4, np.uint8),
        "WhiteLevel": 1023,
        "Width": width,
        "Height": height,
        "UnknownTags": ut,
    }
    savemat(path, {"metadata": md})
    return path


def test_real_metadata_file(shared_data: Path) -> None:
    md = read_sidd_metadata(shared_data / REAL_META)
    assert md["cfa"] == "GRBG"  # tag 33422 = [1 0 2 1]
    assert md["noise_profile"][:2] == pytest.approx([0.00047946, 0.0], rel=1e-4)
    assert md["iso"] == 100 and md["make"] == "samsung" and md["white_level"] == 1023
    assert md["exposure_time"] == pytest.approx(1 / 60, rel=1e-3)
    assert (md["height"], md["width"]) == (3000, 5328)
    import json

    json.dumps(md)


def test_cfa_tags() -> None:
    assert cfa_from_tag([1, 0, 2, 1]) == "GRBG"
    assert cfa_from_tag([0, 1, 1, 2]) == "RGGB"
    with pytest.raises(UnsupportedSensorError):
        cfa_from_tag([0, 1, 2, 3])
    with pytest.raises(UnsupportedSensorError):
        cfa_from_tag([0, 0, 1, 2])


def test_metadata_errors(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedSensorError):
        read_sidd_metadata(write_metadata(tmp_path / "a.MAT", [1] * 36, repeat=(6, 6)))
    from scipy.io import savemat

    savemat(tmp_path / "b.MAT", {"other": np.ones(3)})
    with pytest.raises(MetadataError):
        read_sidd_metadata(tmp_path / "b.MAT")
    (tmp_path / "c.MAT").write_bytes(b"junk")
    with pytest.raises(InputFileError):
        read_sidd_metadata(tmp_path / "c.MAT")


def test_mosaic_hdf5_orientation_and_nan(tmp_path: Path) -> None:
    m = np.random.default_rng(0).random((8, 12))
    m[3, 5] = np.nan
    p = write_mat73(tmp_path / "n.MAT", m)
    got = read_sidd_mosaic(p)
    assert got.shape == (8, 12) and got.dtype == np.float32  # transposed back from column-major
    assert got[3, 5] == 0.0 and np.isfinite(got).all()
    expect = np.nan_to_num(m).astype(np.float32)
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(read_sidd_mosaic(p, expected_shape=(8, 12)), expect)
    # a file stored already row-major is recognised by expected_shape
    p2 = write_mat73(tmp_path / "r.MAT", m.T)
    np.testing.assert_array_equal(read_sidd_mosaic(p2, expected_shape=(8, 12)), expect)
    with pytest.raises(InputFileError):
        read_sidd_mosaic(p, key="y")


def test_mosaic_v5_fallback(tmp_path: Path) -> None:
    from scipy.io import savemat

    m = np.random.default_rng(1).random((6, 10)).astype(np.float32)
    savemat(tmp_path / "v5.MAT", {"x": m})
    np.testing.assert_array_equal(read_sidd_mosaic(tmp_path / "v5.MAT"), m)
    with pytest.raises(InputFileError):
        read_sidd_mosaic(tmp_path / "missing.MAT")


@pytest.fixture
def sidd_root(tmp_path: Path, shared_data: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """Two cameras: S6 uses the REAL metadata file (GRBG), GP a written one (BGGR), two pairs."""
    rng = np.random.default_rng(5)
    data = tmp_path / "SIDD_Medium_Raw" / "Data"
    mosaics: dict[str, np.ndarray] = {}
    s6 = data / "0001_001_S6_00100_00060_3200_L"
    s6.mkdir(parents=True)
    os.symlink((shared_data / REAL_META).resolve(), s6 / "0001_METADATA_RAW_010.MAT")
    gp = data / "0002_002_GP_00400_00100_5500_N"
    gp.mkdir(parents=True)
    for nn in ("010", "011"):
        write_metadata(gp / f"0002_METADATA_RAW_{nn}.MAT", [2, 1, 1, 0], iso=400)
    for folder, inst, nns in ((s6, "0001", ("010",)), (gp, "0002", ("010", "011"))):
        for nn in nns:
            gt = rng.random((8, 12)) * 0.5
            noisy = gt + rng.normal(0, 0.02, gt.shape)
            noisy[0, 0] = np.nan
            write_mat73(folder / f"{inst}_GT_RAW_{nn}.MAT", gt)
            write_mat73(folder / f"{inst}_NOISY_RAW_{nn}.MAT", noisy)
            mosaics[f"{inst}_{nn}"] = noisy
            mosaics[f"{inst}_{nn}_gt"] = gt
    return tmp_path / "SIDD_Medium_Raw", mosaics


def test_sidd_adapter(sidd_root) -> None:
    root, mosaics = sidd_root
    assert sidd.detect(root) and sidd.detect(root / "Data")
    assert sidd.detect(root / "Data" / "0001_001_S6_00100_00060_3200_L")
    assert not sidd.detect(root.parent / "nothing")
    ds = open_dataset(root)  # auto-detected
    assert ds.name == "sidd" and ds.space == "raw" and len(ds) == 3
    assert [r.sample_id for r in ds.records] == ["0001_010", "0002_010", "0002_011"]
    assert ds.sensors == ["GP", "S6"]
    r0 = ds.records[0]
    assert r0.iso == 100 and r0.scene == "001" and r0.extra["exposure_time"] == pytest.approx(1 / 60)
    s6 = ds[0]
    assert s6.cfa == "GRBG" and s6.noisy.shape == (4, 4, 6) and s6.white_level == 1.0
    expect = np.clip(np.nan_to_num(mosaics["0001_010"]), 0, 1).astype(np.float32)
    np.testing.assert_array_equal(s6.noisy, pack(expect, "GRBG"))
    np.testing.assert_array_equal(s6.clean, pack(mosaics["0001_010_gt"].astype(np.float32), "GRBG"))
    assert s6.extra["noise_profile"][0] == pytest.approx(0.00047946, rel=1e-4)
    gp = ds[2]
    assert gp.cfa == "BGGR" and gp.sensor == "GP" and gp.iso == 400
    np.testing.assert_array_equal(gp.clean, pack(mosaics["0002_011_gt"].astype(np.float32), "BGGR"))
    summary = ds.summary()
    assert summary["sensors"]["GP"]["count"] == 2 and summary["sensors"]["S6"]["isos"] == [100.0]
    assert len(sidd.open(root, cameras=["S6"])) == 1


def test_sidd_missing_gt_and_metadata(sidd_root) -> None:
    root, _ = sidd_root
    folder = root / "Data" / "0002_002_GP_00400_00100_5500_N"
    (folder / "0002_GT_RAW_011.MAT").unlink()
    with pytest.raises(DatasetError, match="ground truth"):
        sidd.open(root)
    (folder / "0002_NOISY_RAW_011.MAT").unlink()
    for f in folder.glob("*METADATA*"):
        f.unlink()
    ds = sidd.open(root)
    with pytest.raises(MetadataError, match="CFA"):
        ds[1]
    assert sidd.open(root, cfa="RGGB")[1].cfa == "RGGB"


def test_sidd_srgb_and_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rawadapt.cli.main import main
    from rawadapt.io.images import write_image

    folder = tmp_path / "SIDD_Medium_Srgb" / "Data" / "0003_003_IP_00800_01000_3200_L"
    img = np.random.default_rng(2).random((3, 6, 9)).astype(np.float32)
    write_image(folder / "0003_GT_SRGB_010.PNG", img)
    write_image(folder / "0003_NOISY_SRGB_010.PNG", np.clip(img + 0.1, 0, 1))
    ds = sidd.open(tmp_path / "SIDD_Medium_Srgb")
    assert ds.space == "srgb" and ds.sensors == ["IP"] and ds.records[0].iso == 800
    s = ds[0]
    assert s.noisy.shape == (3, 6, 9) and s.clean.shape == (3, 6, 9)
    with pytest.raises(DatasetError, match="RAW"):
        sidd.open(tmp_path / "SIDD_Medium_Srgb", space="raw")
    p = write_mat73(tmp_path / "0001_GT_RAW_010.MAT", np.full((8, 12), 0.25))
    try:
        main(["info", str(p), "--json"])
    except SystemExit as exc:
        assert not exc.code
    import json

    d = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert d["kind"] == "sidd-mosaic" and (d["height"], d["width"]) == (8, 12) and d["max"] == 0.25
