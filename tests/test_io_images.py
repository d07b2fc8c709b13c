"""sRGB images and arrays: 8/16-bit PNG, JPEG, TIFF, PNM; all PNG filters; safe .npy loading."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from rawadapt.errors import InputFileError, NonFiniteError, ShapeError
from rawadapt.io.headerless import read_mosaic_image
from rawadapt.io.images import (
    encode_png16,
    load_pixels,
    png_unfilter,
    read_array,
    read_image,
    read_png16,
    read_pnm,
    write_image,
)


def _encode_png16_with_filters(a: np.ndarray, filters: np.ndarray) -> bytes:
    """Reference PNG encoder (16-bit RGB/RGBA) using the given filter type per row (0..4)."""
    h, w, ch = a.shape
    x = a.astype(">u2").view(np.uint8).reshape(h, w, 2 * ch).astype(np.int16)
    left = np.zeros_like(x)
    left[:, 1:] = x[:, :-1]
    up = np.zeros_like(x)
    up[1:] = x[:-1]
    ul = np.zeros_like(x)
    ul[1:, 1:] = x[:-1, :-1]
    p = left + up - ul
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - ul)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, ul))
    preds = np.stack([np.zeros_like(x), left, up, (left + up) >> 1, paeth])
    out = ((x - preds[filters, np.arange(h)]) & 255).astype(np.uint8)
    rows = np.concatenate([filters.astype(np.uint8)[:, None], out.reshape(h, -1)], axis=1)

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, {3: 2, 4: 6}[ch], 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows.tobytes()))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("channels", [3, 4])
def test_png16_decoder_all_filter_types(tmp_path: Path, channels: int) -> None:
    rng = np.random.default_rng(channels)
    a = rng.integers(0, 65536, (23, 31, channels)).astype(np.uint16)
    filters = np.arange(23) % 5  # every filter type, in mixed order
    p = tmp_path / "f.png"
    p.write_bytes(_encode_png16_with_filters(a, filters))
    np.testing.assert_array_equal(read_png16(p), a)
    got = read_image(p)
    np.testing.assert_allclose(got, np.moveaxis(a[..., :3], -1, 0) / 65535.0, rtol=1e-6)  # alpha dropped


def test_png_unfilter_fast_path_matches_wavefront() -> None:
    rng = np.random.default_rng(0)
    f = rng.integers(0, 256, (9, 11, 6)).astype(np.uint8)
    fast = png_unfilter(f, np.array([0, 1, 2, 1, 2, 0, 1, 1, 2]))
    # the same filters with one Paeth row forces the anti-diagonal path; compare the rows above it
    slow = png_unfilter(np.concatenate([f, f[:1]]), np.array([0, 1, 2, 1, 2, 0, 1, 1, 2, 4]))
    np.testing.assert_array_equal(fast, slow[:9])


def test_pillow_would_truncate_16bit_rgb_but_we_do_not(tmp_path: Path) -> None:
    a = (np.arange(4 * 5 * 3).reshape(4, 5, 3) * 997 % 65536).astype(np.uint16)
    p = tmp_path / "x.png"
    p.write_bytes(encode_png16(a))
    from PIL import Image

    assert np.array(Image.open(p)).dtype == np.uint8  # Pillow loses the low byte
    np.testing.assert_array_equal(load_pixels(p), a)


@pytest.mark.parametrize(
    "ext,bits,tol",
    [
        ("png", 8, 0.5 / 255 + 1e-6),
        ("png", 16, 0.5 / 65535 + 1e-7),
        ("tif", 16, 0.5 / 65535 + 1e-7),
        ("tif", 8, 0.5 / 255 + 1e-6),
    ],
)
def test_write_read_round_trip(tmp_path: Path, ext: str, bits: int, tol: float) -> None:
    x = np.random.default_rng(bits).random((3, 17, 29)).astype(np.float32)
    out = write_image(tmp_path / f"o.{ext}", x, bits=bits)
    y = read_image(out)
    assert y.shape == (3, 17, 29) and y.dtype == np.float32
    assert np.abs(y - x).max() <= tol
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"o.{ext}"]  # atomic: no temp file left
    again = tmp_path / f"again.{ext}"
    write_image(again, y, bits=bits)
    np.testing.assert_array_equal(read_image(again), y)  # quantised values are stable


def test_jpeg_and_gray(tmp_path: Path) -> None:
    x = np.full((3, 16, 16), 0.5, np.float32)
    y = read_image(write_image(tmp_path / "a.jpg", x))
    assert np.abs(y - 0.5).max() < 0.02
    g = write_image(tmp_path / "g.png", np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8))
    with pytest.raises(ShapeError, match="grayscale"):
        read_image(g)
    rep = read_image(g, gray="replicate")
    assert rep.shape == (3, 8, 8) and np.array_equal(rep[0], rep[2])
    with pytest.raises(ShapeError):
        write_image(tmp_path / "b.jpg", x, bits=16)
    with pytest.raises(NonFiniteError):
        write_image(tmp_path / "n.png", np.full((3, 4, 4), np.nan, np.float32))
    assert not (tmp_path / "n.png").exists()


def test_rgba_8bit_alpha_dropped(tmp_path: Path) -> None:
    from PIL import Image

    a = np.random.default_rng(0).integers(0, 256, (6, 7, 4)).astype(np.uint8)
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_allclose(read_image(tmp_path / "a.png"), np.moveaxis(a[..., :3], -1, 0) / 255.0, rtol=1e-6)


def test_real_polyu_jpeg(shared_data: Path) -> None:
    img = read_image(shared_data / "polyu/Canon5D2_5_160_3200_chair_11_real.JPG")
    assert img.shape == (3, 512, 512) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0 and img.std() > 0.01


def test_pgm_keeps_raw_values(tmp_path: Path) -> None:
    a = (np.arange(6 * 8).reshape(6, 8) * 20).astype(np.uint16)  # 10-bit data, maxval 1023
    p = tmp_path / "m.pgm"
    p.write_bytes(b"P5\n# a comment\n8 6\n1023\n" + a.astype(">u2").tobytes())
    arr, maxval = read_pnm(p)
    np.testing.assert_array_equal(arr, a)
    assert maxval == 1023
    img = read_mosaic_image(p, cfa="BGGR", black_level=0, white_level=1023)
    np.testing.assert_array_equal(img.mosaic, a)  # Pillow would have rescaled to 16 bits
    np.testing.assert_allclose(img.planes[3], a[0::2, 0::2] / 1023.0, rtol=1e-6)  # B at (0, 0) in BGGR
    ppm = tmp_path / "c.ppm"
    ppm.write_bytes(b"P6 2 1 255 " + bytes([255, 0, 0, 0, 0, 255]))
    np.testing.assert_array_equal(read_image(ppm)[:, 0, :], [[1, 0], [0, 0], [0, 1]])


def test_corrupt_and_missing_images(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_image(tmp_path / "none.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(InputFileError):
        read_image(bad)
    trunc = tmp_path / "t.png"
    trunc.write_bytes(encode_png16(np.ones((40, 40, 3), np.uint16))[:60])
    with pytest.raises(InputFileError):
        read_image(trunc)
    jpg = tmp_path / "x.jpg"
    jpg.write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(InputFileError):
        read_image(jpg)


def test_read_array_never_unpickles(tmp_path: Path) -> None:
    good = tmp_path / "a.npy"
    np.save(good, np.arange(12, dtype=np.uint16).reshape(3, 2, 2))
    assert read_array(good).dtype == np.uint16
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputFileError, match="pickle"):
        read_array(evil)
    with pytest.raises(InputFileError):
        read_array(tmp_path / "missing.npy")
    (tmp_path / "junk.npy").write_bytes(b"nope")
    with pytest.raises(InputFileError):
        read_array(tmp_path / "junk.npy")
