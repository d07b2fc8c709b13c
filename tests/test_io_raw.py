"""RAW reading: real files (Canon DNG, Kodak KDC, headerless Nikon, Halide PNG mosaics), the
ExifTool stubs, synthetic DNGs for every CFA, odd sizes and non-Bayer sensors."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rawadapt.data.sample import sample_from_raw
from rawadapt.errors import (
    CFAError,
    EmptyFrameError,
    InputFileError,
    ShapeError,
    UnsupportedSensorError,
)
from rawadapt.io.bayer import BAYER_PATTERNS, pack, plane_offsets
from rawadapt.io.dng import (
    _ASCII,
    _BYTE,
    _LONG,
    _RATIONAL,
    _SHORT,
    _SRATIONAL,
    SRGB_TO_XYZ,
    _Ifd,
    write_dng,
)
from rawadapt.io.headerless import read_headerless, read_mosaic_image
from rawadapt.io.raw import (
    EMPTY_ZERO_FRACTION,
    RawMetadata,
    camera_name,
    exif_tags,
    planes_to_mosaic,
    read_raw,
    read_raw_metadata,
)

CANON = "raw/colorchart_CanonEOSKissX4_MagicLantern.dng"
KDC = "raw/RAW_KODAK_DC50.KDC"
NIKON_RAW = "raw/mushfiqulalam_DSC_1339_768x512_rggb_u16le.raw"
HALIDE = ("raw/halide_N900_bayer_2592x304_GRBG.png", "raw/halide_N900_bayer_small_GRBG.png")


# --------------------------------------------------------------------------------------------
# Real files
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def canon(shared_data: Path):
    """The Canon DNG decoded ONCE for the module (clip=False, so the inverse can be checked)."""
    return read_raw(shared_data / CANON, clip=False)


def test_canon_dng_facts(canon) -> None:
    m = canon.meta
    assert canon.cfa == m.cfa == "RGGB"
    assert canon.black_level == [2056.0] * 4 and m.black_level == [2056.0] * 4
    assert canon.white_level == m.white_level == 15000.0
    assert (m.raw_width, m.raw_height) == (1734, 1156)  # visible area, before the even crop
    assert (m.width, m.height) == (1734, 1156)  # already even
    assert canon.mosaic.shape == (1156, 1734) and canon.mosaic.dtype == np.uint16
    assert canon.planes.shape == (4, 578, 867) and canon.planes.dtype == np.float32
    assert m.camera == "Canon EOS Kiss X4" and m.make == "Canon"
    assert m.iso is None  # not recorded in this file
    assert m.color_matrix is not None and np.asarray(m.color_matrix).shape == (3, 3)


def test_canon_normalisation_and_exact_inverse(canon) -> None:
    # planes are (mosaic - black) / (white - black) at the canonical offsets
    expected_r = (canon.mosaic[0::2, 0::2].astype(np.float32) - 2056) / (15000 - 2056)
    np.testing.assert_allclose(canon.planes[0], expected_r, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(canon.planes[3], (canon.mosaic[1::2, 1::2] - 2056.0) / 12944.0, rtol=1e-6, atol=1e-7)
    assert canon.planes.min() < 0  # unclipped: dark noise below black stays negative
    back = planes_to_mosaic(canon.planes, canon.cfa, canon.black_level, canon.white_level)
    np.testing.assert_array_equal(back, canon.mosaic)
    clipped = np.clip(canon.planes, 0, 1)
    assert clipped.min() == 0.0 and clipped.max() <= 1.0


def test_canon_metadata_matches_decode(shared_data: Path, canon) -> None:
    m = read_raw_metadata(shared_data / CANON)
    assert m.to_dict() == canon.meta.to_dict()
    d = m.to_dict()
    assert RawMetadata.from_dict(d) == m
    import json

    json.dumps(d)  # JSON-friendly


def test_kodak_kdc_reads_as_grbg(shared_data: Path) -> None:
    img = read_raw(shared_data / KDC)
    assert img.cfa == "GRBG"
    assert img.planes.shape == (4, 256, 384)
    assert 0.0 <= img.planes.min() and img.planes.max() <= 1.0
    # canonical R of GRBG sits at (0, 1) of each cell
    np.testing.assert_allclose(img.planes[0], img.mosaic[0::2, 1::2] / 16383.0, rtol=1e-6)
    assert img.meta.iso == 84.0 and img.meta.exposure_time == pytest.approx(0.00435)
    s = sample_from_raw(img)
    assert s.space == "raw" and s.noisy is img.planes and s.clean is None and s.cfa == "GRBG"
    assert s.sensor == img.meta.camera and s.iso == 84.0
    assert sample_from_raw(img, sensor="dc50", iso=100).sensor == "dc50"


def test_headerless_nikon_with_given_parameters(shared_data: Path) -> None:
    path = shared_data / NIKON_RAW
    img = read_headerless(path, width=768, height=512, cfa="RGGB", black_level=600, white_level=15520)
    assert img.planes.shape == (4, 256, 384) and img.cfa == "RGGB"
    raw = np.fromfile(path, "<u2").reshape(512, 768)
    np.testing.assert_array_equal(img.mosaic, raw)
    np.testing.assert_allclose(img.planes[3], np.clip((raw[1::2, 1::2] - 600.0) / 14920.0, 0, 1), rtol=1e-6)
    # a wrong size is refused with both sizes in the message, never guessed
    with pytest.raises(InputFileError, match="786432 bytes"):
        read_headerless(path, width=1024, height=768, cfa="RGGB", black_level=600, white_level=15520)
    with pytest.raises(CFAError):
        read_headerless(path, width=768, height=512, cfa="RGBX", black_level=600, white_level=15520)


def test_headerless_is_never_read_by_libraw(shared_data: Path) -> None:
    # LibRaw would "identify" this file by its size as a 1024x768 camera frame
    with pytest.raises(InputFileError, match="headerless"):
        read_raw(shared_data / NIKON_RAW)


@pytest.mark.parametrize("name", HALIDE)
def test_halide_png_mosaics(shared_data: Path, name: str) -> None:
    img = read_mosaic_image(shared_data / name, cfa="GRBG", black_level=25, white_level=1023)
    from PIL import Image

    ref = np.array(Image.open(shared_data / name))
    h, w = ref.shape[0] // 2 * 2, ref.shape[1] // 2 * 2
    np.testing.assert_array_equal(img.mosaic, ref[:h, :w])  # all 16 bits kept, even crop
    assert img.mosaic.max() > 255  # really 10-bit data, not truncated to 8 bits
    assert img.planes.shape == (4, h // 2, w // 2) and img.cfa == "GRBG"
    np.testing.assert_allclose(img.planes[0], np.clip((ref[0:h:2, 1:w:2] - 25.0) / 998.0, 0, 1), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Stubs and errors
# --------------------------------------------------------------------------------------------


def test_stub_dng_all_zeros_is_refused(shared_data: Path, canon) -> None:
    # Decode a real file first: LibRaw then "decodes" the stripped stub into leftovers of its
    # buffers, which is why the size check runs before any pixel is looked at.
    assert canon.planes.size
    read_raw(shared_data / KDC)
    with pytest.raises(EmptyFrameError, match="stripped or truncated"):
        read_raw(shared_data / "raw_stubs/exiftool_DNG.dng")


def test_stub_rw2_mostly_zeros_is_refused(shared_data: Path) -> None:
    with pytest.raises(EmptyFrameError):
        read_raw(shared_data / "raw_stubs/exiftool_Panasonic.rw2")


def test_stub_nef_data_error_names_the_file(shared_data: Path) -> None:
    path = shared_data / "raw_stubs/exiftool_Nikon.nef"
    with pytest.raises(InputFileError) as ei:
        read_raw(path)
    assert "exiftool_Nikon.nef" in str(ei.value) and "corrupt" in str(ei.value)


def test_stub_cr2_unsupported(shared_data: Path) -> None:
    with pytest.raises(InputFileError, match="unsupported"):
        read_raw_metadata(shared_data / "raw_stubs/exiftool_CanonRaw.cr2")


def test_missing_and_non_raw_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_raw(tmp_path / "nope.dng")
    junk = tmp_path / "junk.nef"
    junk.write_bytes(b"not a raw file at all" * 10)
    with pytest.raises(InputFileError):
        read_raw(junk)
    with pytest.raises(InputFileError):
        read_raw(tmp_path)  # a folder


def test_truncated_dng(tmp_path: Path) -> None:
    m = np.full((64, 96), 1000, np.uint16)
    p = write_dng(tmp_path / "t.dng", m, "RGGB", black_level=100, white_level=4095)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 64 * 96])  # half the pixel data gone
    with pytest.raises((InputFileError, EmptyFrameError)):
        read_raw(p)


# --------------------------------------------------------------------------------------------
# Synthetic DNGs: every CFA, odd sizes, non-Bayer sensors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_every_cfa_round_trips_exactly(tmp_path: Path, cfa: str) -> None:
    rng = np.random.default_rng(7)
    black = [600.0, 601.0, 602.0, 603.0]
    m = rng.integers(600, 15520, (34, 50)).astype(np.uint16)
    p = write_dng(
        tmp_path / f"{cfa}.dng",
        m,
        cfa,
        black_level=black,
        white_level=15520,
        make="NIKON CORPORATION",
        model="NIKON D850",
        iso=1600,
        exposure_time=0.01,
    )
    img = read_raw(p)
    assert img.cfa == cfa and img.black_level == black and img.white_level == 15520
    for k, (dy, dx) in enumerate(plane_offsets(cfa)):
        np.testing.assert_allclose(img.planes[k], (m[dy::2, dx::2] - black[k]) / (15520 - black[k]), rtol=1e-6)
    np.testing.assert_array_equal(planes_to_mosaic(img.planes, cfa, black, 15520), m)
    assert img.meta.camera == "Nikon D850" and img.meta.iso == 1600
    assert img.meta.exposure_time == pytest.approx(0.01)
    # the same scene in another CFA gives the same colours in the same planes
    np.testing.assert_array_equal(pack(m, cfa)[0], m[plane_offsets(cfa)[0][0] :: 2, plane_offsets(cfa)[0][1] :: 2])


def test_clip_and_level_overrides(tmp_path: Path) -> None:
    m = np.tile(np.array([[500, 16383], [520, 9000]], np.uint16), (16, 24))  # LibRaw refuses tiny frames
    p = write_dng(tmp_path / "c.dng", m, "RGGB", black_level=512, white_level=16000)
    assert read_raw(p).planes.min() == 0.0 and read_raw(p).planes.max() == 1.0
    un = read_raw(p, clip=False).planes
    assert un.min() < 0 and un.max() > 1
    over = read_raw(p, black_level=0, white_level=16383)
    assert over.black_level == [0.0] * 4 and over.white_level == 16383.0
    assert over.planes.max() == pytest.approx(1.0)


def _tiny_tiff(
    path: Path,
    data: np.ndarray,
    *,
    photometric: int = 32803,
    spp: int = 1,
    cfa_dim: tuple[int, int] = (2, 2),
    cfa_pattern: tuple[int, ...] = (0, 1, 1, 2),
    width: int | None = None,
) -> Path:
    """A DNG with free photometric / CFA geometry (X-Trans, linear) or a lying width."""
    h, w = data.shape[:2]
    raw = np.ascontiguousarray(data.astype("<u2")).tobytes()
    ifd = _Ifd()
    for tag, typ, val in [
        (254, _LONG, [0]),
        (256, _LONG, [width or w]),
        (257, _LONG, [h]),
        (258, _SHORT, [16] * spp),
        (259, _SHORT, [1]),
        (262, _SHORT, [photometric]),
        (273, _LONG, [0]),
        (277, _SHORT, [spp]),
        (278, _LONG, [h]),
        (279, _LONG, [len(raw)]),
        (284, _SHORT, [1]),
        (50717, _LONG, [4095]),
        (50778, _SHORT, [21]),
        (50721, _SRATIONAL, np.linalg.inv(SRGB_TO_XYZ).reshape(-1).tolist()),
        (50728, _RATIONAL, [1, 1, 1]),
    ]:
        ifd.add(tag, typ, val)
    ifd.add(271, _ASCII, "Acme")
    ifd.add(272, _ASCII, "Test")
    ifd.add(50708, _ASCII, "Acme Test")
    ifd.add(50706, _BYTE, bytes([1, 4, 0, 0]))
    if photometric == 32803:
        ifd.add(33421, _SHORT, list(cfa_dim))
        ifd.add(33422, _BYTE, bytes(cfa_pattern))
    strip = 8 + ifd.size() + ifd.blob_size()
    strip += (-strip) % 16
    ifd.add(273, _LONG, [strip])
    out = bytearray(b"II*\x00" + struct.pack("<I", 8)) + ifd.serialise(8)
    out += b"\0" * (strip - len(out)) + raw
    path.write_bytes(bytes(out))
    return path


def test_odd_visible_size_is_even_cropped(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    d = rng.integers(100, 4000, (36, 48)).astype(np.uint16)
    p = _tiny_tiff(tmp_path / "odd.dng", d, width=47)  # LibRaw sees 36 rows of 47 pixels
    img = read_raw(p)
    visible = d.reshape(-1)[: 36 * 47].reshape(36, 47)
    assert (img.meta.raw_width, img.meta.raw_height) == (47, 36)
    assert (img.meta.width, img.meta.height) == (46, 36)
    np.testing.assert_array_equal(img.mosaic, visible[:, :46])  # last column dropped, top-left kept
    assert img.planes.shape == (4, 18, 23) and img.cfa == "RGGB"


def test_xtrans_is_refused(tmp_path: Path) -> None:
    xt = (1, 1, 0, 1, 1, 2, 1, 1, 2, 1, 1, 0, 2, 0, 1, 0, 2, 1, 1, 1, 2, 1, 1, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1, 2, 0, 1)
    d = np.random.default_rng(2).integers(100, 4000, (36, 48)).astype(np.uint16)
    p = _tiny_tiff(tmp_path / "xtrans.dng", d, cfa_dim=(6, 6), cfa_pattern=xt)
    with pytest.raises(UnsupportedSensorError, match="X-Trans"):
        read_raw_metadata(p)


def test_linear_dng_is_refused(tmp_path: Path) -> None:
    d = np.random.default_rng(3).integers(100, 4000, (64, 96, 3)).astype(np.uint16)
    p = _tiny_tiff(tmp_path / "linear.dng", d, photometric=34892, spp=3)
    with pytest.raises(UnsupportedSensorError, match="not a Bayer sensor"):
        read_raw(p)


def test_empty_threshold(tmp_path: Path) -> None:
    m = np.zeros((40, 40), np.uint16)
    n_nonzero = int(round((1 - EMPTY_ZERO_FRACTION) * m.size)) + 10  # just under 90 % zeros: accepted
    m.reshape(-1)[:n_nonzero] = 1000
    assert read_raw(write_dng(tmp_path / "ok.dng", m, "RGGB", black_level=0, white_level=4095)).planes.max() > 0
    m[:] = 0
    m.reshape(-1)[: n_nonzero - 30] = 1000  # just over 90 % zeros: refused
    with pytest.raises(EmptyFrameError):
        read_raw(write_dng(tmp_path / "bad.dng", m, "RGGB", black_level=0, white_level=4095))


def test_planes_to_mosaic_validates() -> None:
    with pytest.raises(ShapeError):
        planes_to_mosaic(np.zeros((3, 2, 2), np.float32), "RGGB", 0, 1023)
    with pytest.raises(CFAError):
        planes_to_mosaic(np.zeros((4, 2, 2), np.float32), "RGBG", 0, 1023)


def test_camera_names_and_tiff_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert camera_name("NIKON CORPORATION", "NIKON D70") == "Nikon D70"
    assert camera_name("Eastman Kodak Company", "Kodak DC50") == "Kodak DC50"
    assert camera_name("Acme Imaging Corp.", "X1") == "Acme X1"
    assert camera_name("", "") == "unknown"
    p = write_dng(
        tmp_path / "a.dng",
        np.full((32, 48), 700, np.uint16),
        "BGGR",
        black_level=512,
        white_level=16383,
        make="SONY",
        model="ILCE-7SM2",
        iso=3200,
        exposure_time=1 / 30,
    )
    with_exifread = exif_tags(p)
    import builtins

    real_import = builtins.__import__

    def no_exifread(name: str, *a, **k):
        if name == "exifread":
            raise ImportError("simulated: exifread not installed")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_exifread)
    builtin = exif_tags(p)  # the minimal TIFF parser
    assert builtin["make"] == with_exifread["make"] == "SONY"
    assert builtin["model"] == "ILCE-7SM2" and builtin["iso"] == 3200
    assert builtin["exposure_time"] == pytest.approx(1 / 30, rel=1e-5)


def test_import_rawadapt_does_not_load_decoders() -> None:
    code = (
        "import sys, rawadapt, rawadapt.data, rawadapt.data.splits, rawadapt.data.registry; "
        "bad = [m for m in ('rawpy', 'h5py', 'PIL', 'torch', 'scipy.io') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
