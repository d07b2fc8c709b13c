"""Manifest adapter (CSV/YAML), in the layout the built-in synth benchmark writes."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest

from rawadapt.data.adapters import manifest
from rawadapt.data.registry import open_dataset
from rawadapt.errors import DatasetError, MetadataError
from rawadapt.io.dng import write_dng
from rawadapt.io.images import write_image

COLUMNS = [
    "noisy",
    "clean",
    "sensor",
    "iso",
    "ratio",
    "scene",
    "split",
    "space",
    "cfa",
    "black_level",
    "white_level",
    "sample_id",
]


def _write_csv(path: Path, rows: list[dict], columns: list[str] = COLUMNS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def synth_like(tmp_path: Path) -> tuple[Path, dict]:
    """uint16 packed DN planes (.npy) like rawadapt's synth benchmark writes."""
    root = tmp_path / "synth"
    (root / "raw").mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    rows = []
    for i, (sensor, split) in enumerate([("CamA", "source"), ("CamA", "target"), ("CamB", "test")]):
        clean = rng.integers(512, 9000, (4, 6, 8)).astype(np.uint16)
        noisy = rng.integers(512, 2000, (4, 6, 8)).astype(np.uint16)
        np.save(root / "raw" / f"{i}_noisy.npy", noisy)
        np.save(root / "raw" / f"{i}_clean.npy", clean)
        arrays[f"s{i}"] = (noisy, clean)
        rows.append(
            {
                "noisy": f"raw/{i}_noisy.npy",
                "clean": f"raw/{i}_clean.npy",
                "sensor": sensor,
                "iso": 100 * (i + 1),
                "ratio": 2 if i == 0 else 1,
                "scene": f"scene{i}",
                "split": split,
                "space": "raw",
                "cfa": "GRBG",
                "black_level": "512" if i else "512 513 514 515",
                "white_level": 16383,
                "sample_id": f"s{i}",
            }
        )
    _write_csv(root / "manifest.csv", rows)
    return root, arrays


def test_synth_style_manifest(synth_like) -> None:
    root, arrays = synth_like
    assert manifest.detect(root) and manifest.detect(root / "manifest.csv")
    ds = manifest.open(root, name="synth")
    assert ds.name == "synth" and ds.space == "raw" and len(ds) == 3
    assert [r.split for r in ds.records] == ["source", "target", "test"]
    assert ds.records[0].ratio == 2.0 and ds.records[0].scene == "scene0" and ds.records[2].iso == 300
    s0 = ds[0]
    noisy, clean = arrays["s0"]
    black = np.array([512, 513, 514, 515], np.float32)[:, None, None]
    np.testing.assert_allclose(s0.clean, (clean - black) / (16383 - black), rtol=1e-6)
    np.testing.assert_allclose(s0.noisy, np.clip((noisy - black) / (16383 - black) * 2, 0, 1), rtol=1e-6)
    assert s0.cfa == "GRBG" and s0.black_level == (512, 513, 514, 515) and s0.white_level == 16383
    assert s0.extra["split"] == "source"
    assert open_dataset(root).name == "synth"  # auto-detected, named after the folder


def test_unknown_and_missing_columns(tmp_path: Path) -> None:
    p = _write_csv(
        tmp_path / "m.csv",
        [{"noisy": "a.npy", "clean": "b.npy", "sensor": "x", "iso": 1, "isoo": 2}],
        ["noisy", "clean", "sensor", "iso", "isoo"],
    )
    with pytest.raises(MetadataError, match=r"unknown manifest column.*isoo.*allowed: noisy"):
        manifest.open(p)
    p = _write_csv(tmp_path / "m2.csv", [{"noisy": "a.npy", "clean": "b.npy", "iso": 1}], ["noisy", "clean", "iso"])
    with pytest.raises(MetadataError, match="sensor"):
        manifest.open(p)


def test_bad_values_name_the_row(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((3, 4, 4), np.float32))
    base = {"noisy": "a.npy", "clean": "a.npy", "sensor": "x", "iso": "100"}
    cases = [
        ({"iso": "high"}, "row 1: cannot parse iso"),
        ({"cfa": "XYZW"}, "row 1: unknown CFA"),
        ({"black_level": "1 2"}, "1 or 4 values"),
        ({"ratio": "-1"}, "positive"),
        ({"space": "rgb"}, "space"),
    ]
    for change, msg in cases:
        p = _write_csv(tmp_path / "m.csv", [{**base, **change}], COLUMNS)
        with pytest.raises(MetadataError, match=msg):
            manifest.open(p)
    p = _write_csv(tmp_path / "m.csv", [{**base, "noisy": "missing.npy"}], COLUMNS)
    with pytest.raises(DatasetError, match="does not exist"):
        manifest.open(p)
    p = _write_csv(tmp_path / "m.csv", [{**base, "sample_id": "d"}, {**base, "sample_id": "d"}], COLUMNS)
    with pytest.raises(DatasetError, match="duplicate"):
        manifest.open(p)
    p = _write_csv(tmp_path / "m.csv", [{**base, "noisy": "b.npy"}], COLUMNS)
    np.save(tmp_path / "b.npy", np.zeros((4, 4, 4), np.uint16))
    with pytest.raises(MetadataError, match="black_level and white_level"):
        manifest.open(p)[0]


def test_yaml_mixed_files_and_space_filter(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    img = rng.random((3, 8, 8)).astype(np.float32)
    write_image(tmp_path / "img" / "n.png", img)
    write_image(tmp_path / "img" / "c.png", img)
    m = rng.integers(600, 4000, (32, 48)).astype(np.uint16)
    write_dng(tmp_path / "raw" / "n.dng", m, "RGGB", black_level=600, white_level=4095, iso=400)
    import yaml

    doc = {
        "name": "mixed",
        "samples": [
            {"noisy": "img/n.png", "clean": "img/c.png", "sensor": "phone", "iso": 50, "scene": "s1"},
            {"noisy": "raw/n.dng", "clean": "raw/n.dng", "sensor": "cam", "iso": None, "exposure": 0.5},
        ],
    }
    (tmp_path / "manifest.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(DatasetError, match="mixes spaces"):
        manifest.open(tmp_path)
    srgb = manifest.open(tmp_path, space="srgb")
    assert srgb.name == "mixed" and len(srgb) == 1 and srgb[0].noisy.shape == (3, 8, 8)
    raw = manifest.open(tmp_path, space="raw")
    s = raw[0]
    assert s.space == "raw" and s.cfa == "RGGB" and s.iso == 400 and s.extra["exposure"] == 0.5
    assert raw.records[0].iso is None and raw.records[0].sample_id == "raw/n"
    (tmp_path / "manifest.yaml").write_text(
        yaml.safe_dump([{"noisy": "img/n.png", "clean": "", "sensor": "p", "iso": 1, "colour": "red"}])
    )
    with pytest.raises(MetadataError, match="colour"):
        manifest.open(tmp_path)


def test_clean_may_be_empty(tmp_path: Path) -> None:
    write_image(tmp_path / "n.png", np.zeros((3, 4, 4), np.float32))
    p = _write_csv(tmp_path / "m.csv", [{"noisy": "n.png", "clean": "", "sensor": "x", "iso": ""}], COLUMNS)
    ds = manifest.open(p)
    assert ds.records[0].clean_path is None and ds[0].clean is None and ds.records[0].iso is None
    assert ds.name == "m"


def test_large_manifest_opens_fast(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((4, 4, 4), np.uint16))
    rows = [
        {
            "noisy": "a.npy",
            "clean": "a.npy",
            "sensor": f"s{i % 5}",
            "iso": 100,
            "ratio": 1,
            "scene": f"sc{i}",
            "split": "source",
            "space": "raw",
            "cfa": "RGGB",
            "black_level": 0,
            "white_level": 1023,
            "sample_id": f"id{i}",
        }
        for i in range(1500)
    ]
    p = _write_csv(tmp_path / "manifest.csv", rows)
    t0 = time.perf_counter()
    ds = manifest.open(p, name="synth")
    elapsed = time.perf_counter() - t0
    assert len(ds) == 1500 and len(ds.sensors) == 5
    assert elapsed < 1.0, f"opening 1500 rows took {elapsed:.2f} s"
