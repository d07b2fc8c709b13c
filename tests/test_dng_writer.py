"""The DNG writer: LibRaw reads back the exact mosaic, CFA, levels, ISO and white balance."""

from __future__ import annotations

import numpy as np
import pytest
import rawpy

from rawadapt.errors import ShapeError
from rawadapt.io.bayer import BAYER_PATTERNS, pack, plane_offsets
from rawadapt.io.dng import write_dng


@pytest.mark.parametrize("cfa", BAYER_PATTERNS)
def test_round_trip_through_libraw(tmp_path, cfa: str) -> None:
    rng = np.random.default_rng(3)
    m = rng.integers(600, 15000, (34, 50)).astype(np.uint16)
    black = [600, 601, 602, 603]  # canonical R, G1, G2, B
    out = write_dng(
        tmp_path / "x.dng",
        m,
        cfa,
        black_level=black,
        white_level=15520,
        make="Acme",
        model="Cam1",
        iso=1600,
        exposure_time=0.01,
        as_shot_neutral=[0.5, 1.0, 0.8],
    )
    with rawpy.imread(str(out)) as r:
        np.testing.assert_array_equal(r.raw_image_visible, m)
        pattern = r.raw_pattern
        desc = r.color_desc.decode()
        got_cfa = "".join(desc[pattern[dy, dx]] for dy, dx in [(0, 0), (0, 1), (1, 0), (1, 1)])
        assert got_cfa.replace("G", "G") == cfa
        # per-position black levels land on the right colours
        per_colour = r.black_level_per_channel
        for k, (dy, dx) in enumerate(plane_offsets(cfa)):
            assert per_colour[pattern[dy, dx]] == black[k]
        assert r.white_level == 15520
        assert r.other.iso_speed == pytest.approx(1600)
        wb = r.camera_whitebalance
        assert wb[0] / wb[1] == pytest.approx(2.0, rel=1e-3) and wb[2] / wb[1] == pytest.approx(1.25, rel=1e-3)
        rgb = r.postprocess()
        assert rgb.shape == (34, 50, 3)
    # packing what LibRaw reads equals packing what we wrote
    np.testing.assert_array_equal(pack(m, cfa), pack(rawpy.imread(str(out)).raw_image_visible.copy(), cfa))


def test_rejects_bad_mosaics(tmp_path) -> None:
    with pytest.raises(ShapeError):
        write_dng(tmp_path / "a.dng", np.zeros((5, 4), np.uint16), "RGGB", black_level=0, white_level=1023)
    with pytest.raises(ShapeError):
        write_dng(tmp_path / "b.dng", np.zeros((4, 4), np.float32), "RGGB", black_level=0, white_level=1023)
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize("orientation,flip", [(1, 0), (3, 3), (6, 6), (8, 5)])
def test_orientation_reaches_libraw(tmp_path, orientation: int, flip: int) -> None:
    m = np.full((34, 50), 700, np.uint16)  # LibRaw refuses very small frames
    out = write_dng(tmp_path / "o.dng", m, "RGGB", black_level=600, white_level=4095, orientation=orientation)
    with rawpy.imread(str(out)) as r:
        assert r.sizes.flip == flip
    with pytest.raises(ShapeError):
        write_dng(tmp_path / "bad.dng", m, "RGGB", black_level=600, white_level=4095, orientation=9)
