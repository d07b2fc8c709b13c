"""The built-in benchmark `synth` / `synth-srgb` at tiny size: counts, metadata, arrays, caching,
atomicity, determinism, the registry and the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from rawadapt.errors import ConfigError
from rawadapt.noise.profiles import BUILTIN_ORDER, load_profile
from rawadapt.noise.synth_dataset import (
    SIZES,
    STAMP,
    V2_DSLR_ISOS,
    V2_DSLR_RATIOS,
    build_synth,
    open_synth,
    open_synth_srgb,
    synth_root,
)

TINY = SIZES["tiny"]


@pytest.fixture(scope="module")
def tiny_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_synth(tmp_path_factory.mktemp("synth") / "synth", size="tiny", progress=False)


def test_v2_and_wide_capture_plans(tmp_path: Path) -> None:
    """v2 puts a DSLR's pairs in one low-light regime (x100-x300) and phones at x1; wide mixes
    x1-x100 over the whole ISO range; both are deterministic and differ."""
    from rawadapt.data.adapters.manifest import open as open_manifest

    wide = build_synth(tmp_path / "wide", size="tiny", progress=False, variant="wide", sensors=["SonyA7S2", "G4"])
    v2 = build_synth(tmp_path / "v2", size="tiny", progress=False, sensors=["SonyA7S2", "G4"])
    dw, dv = open_manifest(wide, name="w"), open_manifest(v2, name="v")
    sony_w = [r for r in dw.records if r.sensor == "SonyA7S2"]
    sony_v = [r for r in dv.records if r.sensor == "SonyA7S2"]
    assert {r.ratio for r in sony_v} <= set(V2_DSLR_RATIOS) and min(r.ratio for r in sony_v) >= 100
    assert {r.ratio for r in sony_w} <= {1.0, 10.0, 100.0} and min(r.ratio for r in sony_w) == 1
    # v2: every (ISO, ratio) combination equally often (within one) over a split
    from collections import Counter

    counts = Counter((r.iso, r.ratio) for r in sony_v if r.split == "target")
    assert max(counts.values()) - min(counts.values()) <= 1
    assert {r.ratio for r in dv.records if r.sensor == "G4"} == {1.0}
    # noisier and narrower on the DSLR in v2: all its noisy images below 40 dB PSNR
    for i, r in enumerate(dv.records):
        if r.sensor == "SonyA7S2":
            s = dv[i]
            assert 10 * np.log10(1 / np.mean((s.noisy - s.clean) ** 2)) < 40
    with pytest.raises(ConfigError, match="variant"):
        build_synth(tmp_path / "x", size="tiny", progress=False, variant="nope")


def test_tiny_build_counts_and_metadata(tiny_raw: Path) -> None:
    from rawadapt.data.adapters.manifest import open as open_manifest

    ds = open_manifest(tiny_raw, name="synth")
    assert ds.name == "synth" and ds.space == "raw"
    assert ds.sensors == sorted(BUILTIN_ORDER)
    assert len(ds) == len(BUILTIN_ORDER) * (TINY.source + TINY.target + TINY.test)
    for sensor, idx in ds.by_sensor().items():
        prof = load_profile(sensor)
        recs = [ds.records[i] for i in idx]
        splits = {s: [r for r in recs if r.split == s] for s in ("source", "target", "test")}
        assert [len(splits[s]) for s in ("source", "target", "test")] == [TINY.source, TINY.target, TINY.test]
        # test scenes disjoint from training scenes
        train_scenes = {r.scene for r in splits["source"] + splits["target"]}
        assert train_scenes.isdisjoint({r.scene for r in splits["test"]})
        for r in recs:  # the v2 capture regimes (SID/ELD low light for DSLRs, SIDD for phones)
            if prof.kind == "eld":
                assert r.iso in V2_DSLR_ISOS and r.ratio in V2_DSLR_RATIOS
            else:
                assert prof.iso_range[0] <= r.iso <= prof.iso_range[1] and r.ratio == 1
        assert len({r.iso for r in recs}) > 2  # ISOs spread over the regime
    for rec, s in zip(ds.records, ds):
        size = TINY.test_patch if rec.split == "test" else TINY.patch
        assert s.noisy.shape == s.clean.shape == (4, size, size)
        for a in (s.noisy, s.clean):
            assert a.dtype == np.float32 and np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1
        prof = load_profile(s.sensor)
        assert s.cfa == prof.cfa and tuple(s.black_level) == prof.black_level and s.white_level == prof.white_level
    stamp = json.loads((tiny_raw / STAMP).read_text())
    assert stamp["size"] == "tiny" and stamp["pairs"] == len(ds)


def test_raw_files_are_uint16_dn(tiny_raw: Path) -> None:
    f = next((tiny_raw / "raw" / "SonyA7S2" / "target").glob("*_noisy.npy"))
    a = np.load(f, allow_pickle=False)
    assert a.dtype == np.uint16 and a.shape == (4, TINY.patch, TINY.patch) and a.max() <= 16383


def test_build_is_deterministic_and_cached(tiny_raw: Path, tmp_path: Path) -> None:
    again = build_synth(tmp_path / "again", size="tiny", progress=False)

    def digest(root: Path) -> str:
        h = hashlib.sha256()
        for f in sorted(root.rglob("*")):
            if f.is_file() and f.name != STAMP:
                h.update(f.relative_to(root).as_posix().encode() + f.read_bytes())
        return h.hexdigest()

    assert digest(again) == digest(tiny_raw)
    mtime = (again / STAMP).stat().st_mtime_ns
    assert build_synth(tmp_path / "again", size="tiny", progress=False) == again
    assert (again / STAMP).stat().st_mtime_ns == mtime  # reused, not rebuilt
    other = build_synth(tmp_path / "seed1", size="tiny", seed=1, progress=False)
    assert digest(other) != digest(tiny_raw)


def test_interrupted_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rawadapt.noise.synth_dataset as sd

    def boom(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sd, "_write_build", boom)
    with pytest.raises(KeyboardInterrupt):
        build_synth(tmp_path / "x", size="tiny", progress=False)
    assert not (tmp_path / "x").exists()
    assert not any(p.name.startswith(".x.") for p in tmp_path.iterdir())


def test_named_datasets_resolve_in_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from rawadapt.data.registry import open_dataset

    monkeypatch.setenv("RAWADAPT_SYNTH_SIZE", "tiny")
    ds = open_dataset("synth", progress=False)
    assert ds.name == "synth" and ds.space == "raw"
    assert Path(ds.root) == synth_root("raw", size="tiny")
    assert open_synth(progress=False).root == ds.root  # second call reuses the cache
    srgb = open_dataset("synth-srgb", progress=False)
    assert srgb.space == "srgb" and srgb.name == "synth-srgb" and len(srgb) == len(ds)
    wide = open_dataset("synth-wide", progress=False)
    assert wide.name == "synth-wide" and Path(wide.root) == synth_root("raw", size="tiny", variant="wide")
    assert Path(wide.root) != Path(ds.root)
    s = srgb[0]
    raw_ids = {r.sample_id: r for r in wide.records}
    assert raw_ids[s.sample_id].iso == s.iso  # same scenes, ISOs and sensors as synth-wide
    assert s.noisy.shape == (3, 2 * TINY.patch, 2 * TINY.patch) and s.noisy.max() <= 1
    assert open_synth_srgb(progress=False).root == srgb.root


def test_cli_data_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("rawadapt.cli.data_cmd")
    from rawadapt.cli.main import main

    with pytest.raises(SystemExit) as ex:
        main(["data", "build", "synth", "--tiny", "--out", str(tmp_path / "s"), "--seed", "3", "--json"])
    assert ex.value.code in (0, None)
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["pairs"] == len(BUILTIN_ORDER) * (TINY.source + TINY.target + TINY.test)
    assert out["counts"]["S6"] == {"source": TINY.source, "target": TINY.target, "test": TINY.test}
    assert (tmp_path / "s" / "manifest.csv").is_file()
    with pytest.raises(SystemExit) as ex:
        main(["data", "build", "nope", "--tiny"])
    assert ex.value.code == 2
