"""The on-disk decode cache used by the adapters: a RAW file is decoded once."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import rawadapt.io.raw as rawmod
from rawadapt.data.cache import (
    cache_key,
    cached_decode,
    cached_json,
    decoded_dir,
    load_file,
    raw_planes_cached,
)
from rawadapt.errors import InputFileError
from rawadapt.io.dng import write_dng


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    c = tmp_path / "cache"
    monkeypatch.setenv("RAWADAPT_CACHE", str(c))
    monkeypatch.delenv("RAWADAPT_NO_DECODE_CACHE", raising=False)
    return c


def _counter(value: np.ndarray):
    calls = []

    def fn() -> np.ndarray:
        calls.append(1)
        return value

    return fn, calls


def test_decode_once_then_hit(cache: Path, tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(b"abc")
    fn, calls = _counter(np.arange(6, dtype=np.float32).reshape(2, 3))
    a = cached_decode(("r", 1), src, fn)
    b = cached_decode(("r", 1), src, fn)
    assert len(calls) == 1 and np.array_equal(a, b) and b.dtype == np.float32
    assert decoded_dir() == cache / "decoded"
    entries = list((cache / "decoded").rglob("*.npy"))
    assert len(entries) == 1 and not list((cache / "decoded").rglob("*.tmp*"))
    cached_decode(("r", 2), src, fn)  # other reader parameters: another entry
    assert len(calls) == 2
    src.write_bytes(b"abcd")  # the file changed: size (and mtime) enter the key
    cached_decode(("r", 1), src, fn)
    assert len(calls) == 3


def test_corrupt_entry_is_redecoded(cache: Path, tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(b"x")
    fn, calls = _counter(np.ones((2, 2), np.float32))
    cached_decode(("k",), src, fn)
    entry = next((cache / "decoded").rglob("*.npy"))
    entry.write_bytes(b"\x93NUMPY garbage")
    out = cached_decode(("k",), src, fn)
    assert len(calls) == 2 and np.array_equal(out, np.ones((2, 2)))
    assert np.array_equal(np.load(entry), np.ones((2, 2)))  # rewritten


def test_disabled_and_unwritable(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(b"x")
    fn, calls = _counter(np.zeros(3))
    monkeypatch.setenv("RAWADAPT_NO_DECODE_CACHE", "1")
    cached_decode(("k",), src, fn)
    cached_decode(("k",), src, fn)
    assert len(calls) == 2 and not cache.exists()
    monkeypatch.delenv("RAWADAPT_NO_DECODE_CACHE")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("RAWADAPT_CACHE", str(blocker))
    assert np.array_equal(cached_decode(("k",), src, fn), np.zeros(3))  # never fails a read
    with pytest.raises(InputFileError):
        cache_key(("k",), tmp_path / "missing")


def test_json_cache(cache: Path, tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(b"x")
    calls = []
    d1 = cached_json(("m",), src, lambda: calls.append(1) or {"iso": 100.0})
    d2 = cached_json(("m",), src, lambda: calls.append(1) or {"iso": 5.0})
    assert d1 == d2 == {"iso": 100.0} and len(calls) == 1


def test_raw_file_decoded_once(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = np.random.default_rng(0).integers(512, 16000, (32, 48)).astype(np.uint16)
    p = write_dng(tmp_path / "a.ARW", m, "BGGR", black_level=510, white_level=16383, iso=640, exposure_time=0.5)
    calls = []
    real = rawmod.read_raw

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(rawmod, "read_raw", counting)
    planes1, meta1 = raw_planes_cached(p)
    planes2, meta2 = raw_planes_cached(p)
    d = load_file(p)
    assert len(calls) == 1
    np.testing.assert_array_equal(planes1, planes2)
    np.testing.assert_array_equal(d.array, planes1)
    assert meta1 == meta2 and meta2["cfa"] == "BGGR" and meta2["iso"] == 640
    assert meta2["used_black_level"] == [510.0] * 4 and d.black_level == [510.0] * 4
    over, meta3 = raw_planes_cached(p, black_level=512, white_level=16383)
    assert len(calls) == 2 and meta3["used_black_level"] == [512.0] * 4 and meta3["black_level"] == [510.0] * 4
    assert not np.array_equal(over, planes1)
    os.utime(p, ns=(1, 1))  # touching the file invalidates its entries
    raw_planes_cached(p)
    assert len(calls) == 3
