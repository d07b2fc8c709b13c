"""SID Sony and ELD adapters on DNG stand-ins (written by rawadapt.io.dng.write_dng, named
.ARW/.nef/.CR2: LibRaw identifies DNG content whatever the extension)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rawadapt.data.adapters import eld, sid
from rawadapt.data.registry import open_dataset
from rawadapt.errors import DatasetError, MetadataError
from rawadapt.io.bayer import pack
from rawadapt.io.dng import write_dng

H, W = 32, 48  # LibRaw refuses much smaller frames


def _dng(
    path: Path,
    level: float,
    *,
    cfa: str = "RGGB",
    black: float = 512,
    white: int = 16383,
    iso: float | None = None,
    exposure: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = np.clip(black + level * (white - black) + rng.normal(0, 20, (H, W)), 0, white).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_dng(
        path,
        m,
        cfa,
        black_level=black,
        white_level=white,
        make="SONY",
        model="ILCE-7SM2",
        iso=iso,
        exposure_time=exposure,
    )
    return m


# --------------------------------------------------------------------------------------------
# SID
# --------------------------------------------------------------------------------------------


@pytest.fixture
def sid_root(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path / "SID"
    mos = {}
    for name, level, iso, t in [
        ("short/00001_00_0.1s", 0.004, 200, 0.1),
        ("short/00001_01_0.04s", 0.002, 200, 0.04),
        ("long/00001_00_10s", 0.4, 200, 10.0),
        ("short/10003_00_0.04s", 0.001, 800, 0.04),
        ("long/10003_00_30s", 0.5, 800, 30.0),
        ("short/20005_00_0.1s", 0.003, 400, 0.1),
        ("long/20005_00_10s", 0.3, 400, 10.0),
    ]:
        mos[name] = _dng(root / "Sony" / f"{name}.ARW", level, iso=iso, exposure=t, seed=len(mos))
    (root / "Sony_train_list.txt").write_text(
        "./Sony/short/00001_00_0.1s.ARW ./Sony/long/00001_00_10s.ARW ISO200 F9\n"
        "./Sony/short/00001_01_0.04s.ARW ./Sony/long/00001_00_10s.ARW ISO200 F9\n"
    )
    (root / "Sony_test_list.txt").write_text("./Sony/short/10003_00_0.04s.ARW ./Sony/long/10003_00_30s.ARW ISO800 F4\n")
    (root / "Sony_val_list.txt").write_text("./Sony/short/20005_00_0.1s.ARW ./Sony/long/20005_00_10s.ARW ISO400 F8\n")
    return root, mos


def test_sid_names() -> None:
    assert sid.parse_name("10019_00_0.033s.ARW") == {"scene": "10019", "burst": 0, "exposure": 0.033, "split": "test"}
    assert sid.parse_name("./Sony/long/20005_00_10s.ARW")["split"] == "val"
    with pytest.raises(MetadataError):
        sid.parse_name("IMG_0001.ARW")


def test_sid_from_lists(sid_root) -> None:
    root, mos = sid_root
    assert sid.detect(root) and sid.detect(root / "Sony")
    ds = open_dataset(root)
    assert ds.name == "sid" and ds.sensors == ["SonyA7S2"] and len(ds) == 4
    recs = {r.sample_id: r for r in ds.records}
    assert recs["00001_00_0.1s"].ratio == pytest.approx(100.0) and recs["00001_00_0.1s"].iso == 200
    assert recs["00001_01_0.04s"].ratio == pytest.approx(250.0)
    assert recs["10003_00_0.04s"].ratio == pytest.approx(300.0)  # 750 capped at 300
    assert {r.sample_id: r.split for r in ds.records} == {
        "00001_00_0.1s": "train",
        "00001_01_0.04s": "train",
        "10003_00_0.04s": "test",
        "20005_00_0.1s": "val",
    }
    assert recs["00001_01_0.04s"].scene == "00001"
    i = [r.sample_id for r in ds.records].index("00001_00_0.1s")
    s = ds[i]
    noisy_dn = pack(mos["short/00001_00_0.1s"].astype(np.float32), "RGGB")
    np.testing.assert_allclose(s.noisy, np.clip((noisy_dn - 512) / (16383 - 512) * 100.0, 0, 1), rtol=1e-5, atol=1e-6)
    clean_dn = pack(mos["long/00001_00_10s"].astype(np.float32), "RGGB")
    np.testing.assert_allclose(s.clean, np.clip((clean_dn - 512) / (16383 - 512), 0, 1), rtol=1e-5, atol=1e-6)
    assert s.ratio == 100.0 and s.cfa == "RGGB" and s.black_level == (512.0,) * 4 and s.white_level == 16383.0
    assert len(sid.open(root, splits=["train"])) == 2


def test_sid_scan_fallback_and_missing(sid_root) -> None:
    root, _ = sid_root
    for lf in root.glob("*_list.txt"):
        lf.unlink()
    ds = sid.open(root)
    assert len(ds) == 4 and all(r.iso is None for r in ds.records)
    assert {r.extra["pairs_from"] for r in ds.records} == {"scan"}
    ds2 = sid.open(root, iso_from_exif=True)
    assert {r.sample_id: r.iso for r in ds2.records}["10003_00_0.04s"] == 800
    (root / "Sony_train_list.txt").write_text("./Sony/short/00009_00_0.1s.ARW ./Sony/long/00009_00_10s.ARW ISO100 F9\n")
    with pytest.raises(DatasetError, match="does not exist"):
        sid.open(root)
    assert len(sid.open(root, strict=False)) == 4  # the bad list gives nothing: folders are scanned


# --------------------------------------------------------------------------------------------
# ELD
# --------------------------------------------------------------------------------------------


@pytest.fixture
def eld_root(tmp_path: Path) -> Path:
    root = tmp_path / "ELD"
    # SonyA7S2: references ISO 100, 10 s; noisy 2-5 ISO 800, 7-10 ISO 1600, 12-15 ISO 3200
    for k in range(1, 17):
        if k in eld.REFERENCE_IDS:
            iso, t = 100, 10.0
        else:
            iso = 800 if k < 6 else 1600 if k < 11 else 3200
            t = 1.0 / (10 * k)
        _dng(
            root / "SonyA7S2" / "scene-1" / f"IMG_{k:04d}.ARW",
            0.02 if k not in eld.REFERENCE_IDS else 0.4,
            iso=iso,
            exposure=t,
            seed=k,
        )
    for k, iso, t in [(1, 64, 5.0), (2, 800, 0.1), (6, 64, 5.0), (7, 1600, 0.05)]:
        _dng(
            root / "NikonD850" / "scene-2" / f"IMG_{k:04d}.nef",
            0.3,
            cfa="BGGR",
            black=0,
            white=16383,
            iso=iso,
            exposure=t,
            seed=100 + k,
        )
    return root


def test_eld_pairing_rules() -> None:
    assert [eld.reference_for(i) for i in range(2, 16) if i not in eld.REFERENCE_IDS] == [
        1,
        1,
        6,
        6,
        6,
        6,
        11,
        11,
        11,
        11,
        16,
        16,
    ]
    assert [eld.reference_for(i, "block") for i in range(2, 16) if i not in eld.REFERENCE_IDS] == [
        1,
        1,
        1,
        1,
        6,
        6,
        6,
        6,
        11,
        11,
        11,
        11,
    ]
    with pytest.raises(ValueError):
        eld.reference_for(3, "other")  # type: ignore[arg-type]


def test_eld_adapter(eld_root: Path) -> None:
    assert eld.detect(eld_root) and eld.detect(eld_root / "SonyA7S2")
    ds = open_dataset(eld_root)
    assert ds.name == "eld" and ds.sensors == ["NikonD850", "SonyA7S2"]
    assert len(ds) == 12 + 2
    recs = {r.sample_id: r for r in ds.records}
    r2 = recs["SonyA7S2_scene-1_0002"]
    assert r2.extra["reference_id"] == 1 and r2.iso == 800 and r2.scene == "scene-1"
    assert r2.ratio == pytest.approx((100 * 10.0) / (800 * (1 / 20)), rel=1e-4)  # = 25
    r14 = recs["SonyA7S2_scene-1_0014"]
    assert r14.extra["reference_id"] == 16
    assert r14.ratio == pytest.approx(1000.0 / (3200 / 140), rel=1e-4)
    nik = recs["NikonD850_scene-2_0007"]
    assert nik.extra["reference_id"] == 6 and nik.ratio == pytest.approx(64 * 5.0 / (1600 * 0.05), rel=1e-4)
    s = ds[[r.sample_id for r in ds.records].index("NikonD850_scene-2_0002")]
    assert s.cfa == "BGGR" and s.noisy.shape == (4, 16, 24) and s.sensor == "NikonD850"
    assert s.noisy.max() == 1.0  # 0.3 x ratio 4 saturates after the brightness match
    block = eld.open(eld_root, pairing="block")
    assert {r.sample_id: r for r in block.records}["SonyA7S2_scene-1_0014"].extra["reference_id"] == 11


def test_eld_missing_reference(eld_root: Path) -> None:
    (eld_root / "NikonD850" / "scene-2" / "IMG_0001.nef").unlink()
    with pytest.raises(DatasetError, match="IMG_0001"):
        eld.open(eld_root)
    assert len(eld.open(eld_root, strict=False)) == 12 + 1
