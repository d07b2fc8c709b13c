"""Unprocessing, the camera pipeline and the scene generators."""

from __future__ import annotations

import numpy as np
import pytest

from rawadapt.errors import ShapeError
from rawadapt.noise.pipeline import (
    apply_ccm,
    demosaic_bilinear,
    inverse_tone_curve,
    linear_to_srgb,
    mosaic,
    render_srgb,
    srgb_to_linear,
    tone_curve,
    unprocess,
    unprocess_rgb,
)
from rawadapt.noise.profiles import BUILTIN_ORDER, load_profile
from rawadapt.noise.scenes import (
    SCENE_SPLITS,
    available_images,
    bundled_crop,
    dead_leaves,
    load_bundled,
    sample_scene,
)

#: stated round-trip errors (docs/noise.md): colour operations alone invert to float precision;
#: the full unprocess -> process round trip loses only what bilinear demosaicing loses.
POINT_OPS_MAX_ERR = 1e-5
ROUNDTRIP_PSNR_SHARP = 25.0  # dB, sharp natural photograph
ROUNDTRIP_PSNR_SMOOTH = 35.0  # dB, same image band-limited (Gaussian blur, sigma 1 px)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def _astronaut(n: int = 256) -> np.ndarray:
    if "astronaut.png" not in available_images():
        pytest.skip("scikit-image's bundled images are not installed")
    return np.ascontiguousarray(load_bundled("astronaut.png")[:, 100 : 100 + n, 150 : 150 + n])


def test_point_operations_invert() -> None:
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(tone_curve(inverse_tone_curve(x)), x, atol=1e-5)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)


@pytest.mark.parametrize("name", ["SonyA7S2", "S6", "GP"])
def test_unprocess_process_roundtrip(name: str) -> None:
    from scipy.ndimage import gaussian_filter

    prof = load_profile(name)
    img = _astronaut()
    planes, meta = unprocess(img, prof, 0, exposure=1.0)
    assert planes.shape == (4, 128, 128) and planes.dtype == np.float32
    assert planes.min() >= 0 and planes.max() <= 1
    # colour operations alone: exact inverse of the forward point operations
    cam = unprocess_rgb(img, meta["wb"], np.asarray(meta["ccm"]))
    gains = np.asarray(meta["wb"], np.float32).reshape(3, 1, 1)
    back = tone_curve(linear_to_srgb(np.clip(apply_ccm(np.clip(cam * gains, 0, 1), meta["ccm"]), 0, 1)))
    assert np.abs(back - img).max() < POINT_OPS_MAX_ERR
    # full round trip through mosaic + bilinear demosaic
    out = render_srgb(planes, prof.cfa, wb=meta["wb"], ccm=meta["ccm"])
    assert out.shape == img.shape
    assert _psnr(out, img) > ROUNDTRIP_PSNR_SHARP
    smooth = gaussian_filter(img, sigma=(0, 1, 1))
    p2, m2 = unprocess(smooth, prof, 0, exposure=1.0)
    assert _psnr(render_srgb(p2, prof.cfa, wb=m2["wb"], ccm=m2["ccm"]), smooth) > ROUNDTRIP_PSNR_SMOOTH
    # exposure scales the raw and the gain brings it back
    p3, m3 = unprocess(img, prof, 0, exposure=0.4)
    np.testing.assert_allclose(p3, planes * 0.4, atol=1e-6)
    np.testing.assert_allclose(render_srgb(p3, prof.cfa, wb=m3["wb"], ccm=m3["ccm"], gain=1 / 0.4), out, atol=2e-5)


def test_unprocess_draws_wb_and_exposure_in_profile_ranges() -> None:
    prof = load_profile("NikonD850")
    img = np.full((3, 8, 8), 0.5, np.float32)
    rng = np.random.default_rng(1)
    for _ in range(20):
        _, meta = unprocess(img, prof, rng)
        assert prof.wb_red[0] <= meta["wb"][0] <= prof.wb_red[1]
        assert prof.wb_blue[0] <= meta["wb"][2] <= prof.wb_blue[1]
        assert 0.3 <= meta["exposure"] <= 1.0
    a, _ = unprocess(img, prof, 5)
    b, _ = unprocess(img, prof, 5)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_mosaic_demosaic_consistent_for_every_cfa(cfa: str) -> None:
    rgb = np.stack([np.full((16, 16), v, np.float32) for v in (0.2, 0.5, 0.8)])
    planes = mosaic(rgb, cfa)
    assert np.allclose(planes[0], 0.2) and np.allclose(planes[1], 0.5) and np.allclose(planes[2], 0.5)
    assert np.allclose(planes[3], 0.8)
    np.testing.assert_allclose(demosaic_bilinear(planes, cfa), rgb, atol=1e-6)  # borders included
    # a smooth gradient is interpolated closely and known samples are kept exactly
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32) / 32
    grad = np.stack([xx, yy, 0.5 * (xx + yy)])
    dem = demosaic_bilinear(mosaic(grad, cfa), cfa)
    assert np.abs(dem - grad)[:, 2:-2, 2:-2].max() < 1e-5
    batch = demosaic_bilinear(np.stack([planes, planes]), cfa)
    assert batch.shape == (2, 3, 16, 16)


def test_render_srgb_shapes_and_errors() -> None:
    planes = np.random.default_rng(0).random((4, 8, 12)).astype(np.float32)
    out = render_srgb(planes, "RGGB")
    assert out.shape == (3, 16, 24) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    lin = render_srgb(planes, "RGGB", wb=(1, 1, 1), gamma=False)
    assert np.allclose(lin, np.clip(demosaic_bilinear(planes, "RGGB"), 0, 1))
    with pytest.raises(ShapeError):
        render_srgb(np.zeros((3, 8, 8), np.float32), "RGGB")
    with pytest.raises(ShapeError):
        unprocess(np.zeros((4, 8, 8), np.float32), "IP", 0)


def test_every_profile_has_a_valid_ccm() -> None:
    for name in BUILTIN_ORDER:
        ccm = load_profile(name).ccm
        np.testing.assert_allclose(ccm.sum(axis=1), 1.0, atol=1e-9)  # neutral stays neutral
        assert np.all(np.diag(ccm) > 0.9)


def test_bundled_images_only_from_the_wheel() -> None:
    names = available_images()
    if not names:
        pytest.skip("scikit-image not installed")
    assert set(SCENE_SPLITS["train"]).isdisjoint(SCENE_SPLITS["test"])
    for n in names:
        img = load_bundled(n)
        assert img.dtype == np.float32 and img.min() >= 0 and img.max() <= 1
    crop = bundled_crop("brick.png", 48, 0)  # grayscale -> duotone colour
    assert crop.shape == (3, 48, 48)
    assert np.array_equal(crop, bundled_crop("brick.png", 48, 0))


def test_dead_leaves_is_seeded_and_textured() -> None:
    a = dead_leaves(96, 3)
    assert a.shape == (3, 96, 96) and a.dtype == np.float32
    assert np.array_equal(a, dead_leaves(96, 3))
    assert not np.array_equal(a, dead_leaves(96, 4))
    assert a.min() >= 0 and a.max() <= 1
    # texture-rich: many distinct values and strong local gradients, natural (not grey) colours
    assert len(np.unique(np.round(a, 3))) > 500
    assert np.abs(np.diff(a, axis=2)).mean() > 0.01
    assert np.abs(a[0] - a[2]).mean() > 0.02
    rect = dead_leaves((40, 72), 1, blur=0.0)
    assert rect.shape == (3, 40, 72)


def test_sample_scene_respects_split() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        sc = sample_scene(32, rng, split="test", dead_leaves_fraction=0.3)
        if sc.kind == "skimage":
            assert sc.source + ".png" in SCENE_SPLITS["test"] or sc.source + ".jpg" in SCENE_SPLITS["test"]
        assert sc.image.shape == (3, 32, 32)
