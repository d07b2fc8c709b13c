"""PolyU (real data) and the generic pairs-folder adapter; registry auto-detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rawadapt.data.adapters import pairs, polyu
from rawadapt.data.registry import open_dataset
from rawadapt.errors import DatasetError, MetadataError, ShapeError
from rawadapt.io.bayer import pack
from rawadapt.io.dng import write_dng
from rawadapt.io.images import write_image

POLYU_COUNTS = {"Canon5D2": 29, "Canon600D": 11, "Canon80D": 15, "NikonD800": 33, "Sony": 12}


# --------------------------------------------------------------------------------------------
# PolyU
# --------------------------------------------------------------------------------------------


def test_polyu_real_folder(shared_data: Path) -> None:
    root = shared_data / "polyu"
    assert polyu.detect(root)
    ds = open_dataset(root)  # auto-detected before the generic pairs adapter
    assert ds.name == "polyu" and ds.space == "srgb" and len(ds) == 100
    assert {s: len(i) for s, i in ds.by_sensor().items()} == POLYU_COUNTS
    assert all(r.iso is not None and 800 <= r.iso <= 12800 for r in ds.records)
    rec = {r.sample_id: r for r in ds.records}
    chair = [r for r in ds.records if r.sensor == "Canon5D2" and r.scene == "chair"]
    assert len(chair) == 3  # crops 5, 11, 14 share one scene id
    r = rec["Canon600D_3-5_125_1600_waterhouse_10"]
    assert r.iso == 1600 and r.extra["aperture"] == 3.5 and r.extra["exposure_time"] == pytest.approx(1 / 125)
    assert rec["NikonD800_6-3_125_5000_plant__4"].scene == "plant"
    assert [r.sample_id for r in ds.records] == sorted(rec)
    s = ds[0]
    assert s.noisy.shape == s.clean.shape == (3, 512, 512) and s.space == "srgb"
    mse = float(np.mean((s.noisy - s.clean) ** 2))
    assert 20 < 10 * np.log10(1 / mse) < 50  # real noise, not identical images


def test_polyu_names_and_strictness(tmp_path: Path) -> None:
    d = polyu.parse_name("Canon5D2_5_160_3200_chair_11_real.JPG")
    assert (d["camera"], d["aperture"], d["iso"], d["scene"], d["index"], d["kind"]) == (
        "Canon5D2",
        5.0,
        3200.0,
        "chair",
        11,
        "real",
    )
    img = np.full((3, 8, 8), 0.5, np.float32)
    write_image(tmp_path / "Sony_4_200_3200_door_10_real.png", img)
    write_image(tmp_path / "Sony_4_200_3200_door_10_mean.png", img)
    write_image(tmp_path / "Sony_door_oops_real.png", img)
    with pytest.raises(MetadataError, match="Sony_door_oops_real.png"):
        polyu.open(tmp_path)
    ds = polyu.open(tmp_path, strict=False)
    assert len(ds) == 1 and ds.skipped == ["Sony_door_oops_real.png"]
    (tmp_path / "Sony_door_oops_real.png").unlink()
    write_image(tmp_path / "Sony_4_200_3200_door_11_real.png", img)
    with pytest.raises(DatasetError, match="_mean"):
        polyu.open(tmp_path)


# --------------------------------------------------------------------------------------------
# Generic pairs
# --------------------------------------------------------------------------------------------


def test_pairs_suffix_layout_with_regex(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / "myphone"
    for cam, iso, scene, i in [("CamA", 100, "desk", 1), ("CamA", 400, "desk", 2), ("CamB", 800, "tree", 1)]:
        clean = rng.random((3, 10, 12)).astype(np.float32)
        write_image(root / f"{cam}-{iso}-{scene}-{i}_mean.png", clean)
        write_image(root / f"{cam}-{iso}-{scene}-{i}_real.png", np.clip(clean + 0.05, 0, 1))
    assert pairs.detect(root) and not polyu.detect(root)
    ds = open_dataset(root, regex=r"(?P<camera>[^-]+)-(?P<iso>\d+)-(?P<scene>[a-z]+)-\d+")
    assert ds.name == "myphone" and ds.space == "srgb" and ds.sensors == ["CamA", "CamB"]
    assert [(r.sensor, r.iso, r.scene) for r in ds.records] == [
        ("CamA", 100, "desk"),
        ("CamA", 400, "desk"),
        ("CamB", 800, "tree"),
    ]
    s = ds[2]
    assert s.noisy.shape == (3, 10, 12) and float(np.mean(s.noisy - s.clean)) > 0.03
    # no regex: one sensor named after the folder, scene = pair id
    plain = pairs.open(root)
    assert plain.sensors == ["myphone"] and plain.records[0].scene == "CamA-100-desk-1"
    with pytest.raises(MetadataError, match="does not match"):
        pairs.open(root, regex=r"^nomatch(?P<camera>x)")


def test_pairs_subfolders_with_raw(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    root = tmp_path / "rawpairs"
    mos = {}
    for name in ("a", "sub/b"):
        clean = rng.integers(600, 8000, (32, 48)).astype(np.uint16)
        noisy = np.clip(clean.astype(int) + rng.integers(-50, 50, clean.shape), 0, 16383).astype(np.uint16)
        (root / "noisy" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "gt" / name).parent.mkdir(parents=True, exist_ok=True)
        write_dng(root / "noisy" / f"{name}.dng", noisy, "GBRG", black_level=600, white_level=15520, iso=1600)
        write_dng(root / "gt" / f"{name}.dng", clean, "GBRG", black_level=600, white_level=15520, iso=100)
        mos[name] = (noisy, clean)
    assert pairs.detect(root)
    ds = open_dataset(root, sensor="D850")
    assert ds.space == "raw" and [r.sample_id for r in ds.records] == ["a", "sub/b"]
    assert ds.sensors == ["D850"] and ds.records[0].iso is None
    s = ds[1]
    assert s.cfa == "GBRG" and s.iso == 1600  # from the noisy file's EXIF
    np.testing.assert_allclose(s.clean, np.clip((pack(mos["sub/b"][1], "GBRG") - 600.0) / 14920.0, 0, 1), rtol=1e-5)
    np.testing.assert_allclose(s.noisy, np.clip((pack(mos["sub/b"][0], "GBRG") - 600.0) / 14920.0, 0, 1), rtol=1e-5)


def test_pairs_npy_arrays_and_errors(tmp_path: Path) -> None:
    root = tmp_path / "arr"
    (root / "noisy").mkdir(parents=True)
    (root / "clean").mkdir()
    np.save(root / "noisy" / "x.npy", np.full((4, 6, 8), 0.3, np.float32))
    np.save(root / "clean" / "x.npy", np.full((4, 6, 8), 0.25, np.float32))
    ds = pairs.open(root)
    assert ds.space == "raw" and ds[0].noisy.shape == (4, 6, 8)
    np.save(root / "clean" / "x.npy", np.full((4, 6, 10), 0.25, np.float32))
    with pytest.raises(ShapeError, match="differ"):
        pairs.open(root)[0]
    np.save(root / "noisy" / "y.npy", np.full((4, 6, 8), 0.3, np.float32))
    with pytest.raises(DatasetError, match="clean partner"):
        pairs.open(root)
    assert pairs.open(root, allow_unpaired=True)[1].clean is None
    with pytest.raises(DatasetError):
        pairs.open(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not pairs.detect(empty)
    with pytest.raises(DatasetError, match="no noisy/clean pairs"):
        pairs.open(empty)


def test_registry_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="known names"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "lonely.txt").write_text("x")
    with pytest.raises(DatasetError, match="no dataset adapter"):
        open_dataset(tmp_path)
