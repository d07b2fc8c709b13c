"""The sRGB training data keeps colours (issue #18): synth-srgb pairs carry no colour offset where
nothing clips, the content reaches the sRGB gamut edge, the capture plan is normal light, the
RAW builds are untouched, and the colour-fidelity check of a model works."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rawadapt.noise.model import _bias_at, add_noise, sample_noise_params
from rawadapt.noise.pipeline import (
    clip_free_mask,
    reduce_noise,
    render_camera_pair,
    render_srgb,
    unprocess,
)
from rawadapt.noise.profiles import BUILTIN_ORDER, load_profile
from rawadapt.noise.scenes import (
    colorchecker,
    sample_scene,
    saturated_colours,
    saturated_scene,
)
from rawadapt.noise.synth_dataset import (
    SIZES,
    SPLITS,
    STAMP,
    build_synth,
    dataset_name,
    default_variant,
    generate_pairs,
    read_stamp,
    srgb_images,
)

TINY = SIZES["tiny"]
#: issue #18: |mean(noisy - clean)| per channel where nothing clips (8-bit units)
MAX_OFFSET = 1.0
#: fresh noise draws per pair for the expected offset
DRAWS = 8


@pytest.fixture(scope="module")
def tiny_srgb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_synth(tmp_path_factory.mktemp("srgb") / "synth-srgb", space="srgb", size="tiny", progress=False)


def _rows(root: Path) -> list[dict[str, str]]:
    with (root / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0


def _pairs(variant: str = "camera") -> Iterator[tuple[Any, Any]]:
    for name in BUILTIN_ORDER:
        prof = load_profile(name)
        for split in SPLITS:
            for pair in generate_pairs(name, split, TINY, 0, variant):
                yield prof, pair


def _noise_std(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """Per-plane heteroscedastic noise std ``sqrt(a x + b)`` fitted to the pair itself."""
    sd = np.empty_like(clean)
    for p in range(clean.shape[0]):
        x = clean[p].ravel().astype(np.float64)
        r2 = ((noisy[p] - clean[p]).ravel().astype(np.float64)) ** 2
        a, b = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), r2, rcond=None)[0]
        sd[p] = np.sqrt(np.maximum(a * clean[p] + b, 1e-12))
    return sd


def _clip_free(prof: Any, pair: Any) -> np.ndarray:
    """Pixels of the pair's sRGB images where no stage of the camera clips (3-sigma, on the
    clean signal, noise std after the camera's noise reduction)."""
    span = prof.span.astype(np.float32)[:, None, None]
    black = np.asarray(prof.black_level, np.float32)[:, None, None]
    bias = np.asarray(_bias_at(prof, pair.meta["K"]), np.float32)[:, None, None]
    noisy01 = (pair.noisy_dn.astype(np.float32) - black - bias) / span
    kw = {"wb": pair.meta["wb"], "ccm": pair.meta["ccm"], "gain": 1.0 / pair.meta["exposure"]}
    info = render_camera_pair(pair.clean_planes, noisy01, prof.cfa, noise_reduction=True, **kw)[2]
    sd = _noise_std(pair.clean_planes, noisy01)
    reach = int(np.ceil(3 * info.get("blur", 0.0)))
    floor = (-black - bias) / span
    return clip_free_mask(pair.clean_planes, sd, prof.cfa, floor=floor, nr=info.get("luma", 1.0), spread=reach, **kw)


# --------------------------------------------------------------------------------------------
# The build
# --------------------------------------------------------------------------------------------


def test_srgb_default_plan_is_normal_light_camera(tiny_srgb: Path) -> None:
    assert default_variant("srgb") == "camera" and default_variant("raw") == "v2"
    assert dataset_name("srgb") == "synth-srgb" and dataset_name("srgb", "wide") == "synth-srgb-wide"
    stamp = read_stamp(tiny_srgb)
    assert stamp is not None and stamp["variant"] == "camera" and stamp["srgb_pipeline"] >= 2
    rows = _rows(tiny_srgb)
    assert len(rows) == len(BUILTIN_ORDER) * (TINY.source + TINY.target + TINY.test)
    for r in rows:
        prof = load_profile(r["sensor"])
        assert r["ratio"] == "1" and prof.iso_range[0] <= int(r["iso"]) <= prof.iso_range[1]
        assert r["clean"].endswith(".png")  # clean images lossless
    kinds = {Path(r["noisy"]).suffix for r in rows}
    assert kinds == {".png", ".jpg"}  # some noisy images are camera JPEGs, some are not
    for sensor in BUILTIN_ORDER:  # ISOs spread over the sensor's range
        assert len({r["iso"] for r in rows if r["sensor"] == sensor}) > 3


def test_stored_files_are_the_pipeline_output(tiny_srgb: Path) -> None:
    """What the build stores is :func:`srgb_images` of the RAW pair (8-bit exact), and the build
    is deterministic."""
    rows = {r["sample_id"]: r for r in _rows(tiny_srgb)}
    checked = 0
    for prof, pair in _pairs():
        if prof.name not in ("SonyA7S2", "S6"):
            continue
        img = srgb_images(pair, prof, "camera", 0)
        row = rows[pair.sample_id]
        assert (Path(row["noisy"]).suffix == ".jpg") == (img.jpeg is not None)
        np.testing.assert_array_equal(_read(tiny_srgb / row["noisy"]), img.noisy)
        np.testing.assert_array_equal(_read(tiny_srgb / row["clean"]), img.clean)
        checked += 1
    assert checked == 2 * (TINY.source + TINY.target + TINY.test)


def _redraw(prof: Any, pair: Any, k: int) -> Any:
    """The pair with a fresh noise draw ``k`` (same scene, ISO, white balance, exposure)."""
    params = sample_noise_params(prof, iso=pair.iso, rng=np.random.default_rng(k))
    dn = add_noise(
        pair.clean_planes,
        prof,
        params,
        ratio=pair.ratio,
        generator=torch.Generator().manual_seed(k),
        quantization="none",
        clip=False,
        output="dn",
    )
    noisy = np.clip(np.rint(dn), 0, prof.white_level).astype(np.uint16)
    return dataclasses.replace(pair, noisy_dn=noisy, meta={**pair.meta, "K": params.K})


def test_pairs_have_no_colour_offset_where_nothing_clips(tiny_srgb: Path) -> None:
    """Issue #18: |mean(noisy - clean)| <= 1/255 per channel on pixels where nothing clips.

    * The build's files, pooled over all pairs (what a network trained on them learns): within
      half of that.
    * The offset the pipeline puts into a pair, in expectation over the noise (DRAWS fresh
      noise draws of every pair of the build): pooled per sensor within 1/255, and per pair
      (where the check covers at least a tenth of the image) within 1/255 plus three standard
      errors. A single 64x64 crop of a noisy phone image has a mean that wanders by a few /255
      by itself: that is noise, not a colour shift, so single pairs are not held to 1/255.
    """
    rows = {r["sample_id"]: r for r in _rows(tiny_srgb)}
    total, n_total = np.zeros(3), 0
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    covered = []
    for prof, pair in _pairs():
        row = rows[pair.sample_id]
        mask = _clip_free(prof, pair)
        covered.append(mask.mean())
        if mask.sum() < 64:
            continue
        d = (_read(tiny_srgb / row["noisy"]) - _read(tiny_srgb / row["clean"])) * 255.0
        total += d[:, mask].sum(axis=1)
        n_total += int(mask.sum())
        draws = []
        for k in range(DRAWS):
            img = srgb_images(_redraw(prof, pair, k), prof, "camera", 0)
            draws.append(((img.noisy - img.clean) * 255.0)[:, mask].mean(axis=1))
        draws = np.array(draws)
        mean, se = draws.mean(axis=0), draws.std(axis=0, ddof=1) / np.sqrt(DRAWS)
        if mask.mean() >= 0.1:
            assert np.all(np.abs(mean) <= MAX_OFFSET + 3.0 * se), (pair.sample_id, mean, se)
        sums[prof.name] = sums.get(prof.name, np.zeros(3)) + mean * mask.sum()
        counts[prof.name] = counts.get(prof.name, 0) + int(mask.sum())
    assert np.mean(covered) > 0.3  # the check sees a good part of the images
    build = total / n_total
    assert np.all(np.abs(build) <= 0.5 * MAX_OFFSET), build
    for name in BUILTIN_ORDER:
        pooled = sums[name] / counts[name]
        assert np.all(np.abs(pooled) <= MAX_OFFSET), (name, pooled)


def test_saturated_content_reaches_the_gamut_edge(tiny_srgb: Path) -> None:
    rows = _rows(tiny_srgb)
    cleans = sorted({r["clean"] for r in rows})
    edge = hues = 0
    dominant: set[int] = set()
    n = 0
    for rel in cleans:
        img = _read(tiny_srgb / rel)
        mx, mn = img.max(axis=0), img.min(axis=0)
        on_edge = (mn <= 3 / 255) & (mx >= 0.5)  # one channel ~0, another bright: the gamut edge
        edge += int(on_edge.sum())
        n += mx.size
        if on_edge.any():
            hues += 1
            dominant |= set(np.unique(img.argmax(axis=0)[on_edge]).tolist())
    assert edge / n > 0.01 and hues >= 5
    assert dominant == {0, 1, 2}  # red-, green- and blue-dominated saturated colours
    assert any("-chart" in r["scene"] or "-patches" in r["scene"] or "-satleaves" in r["scene"] for r in rows)


def test_saturated_scenes() -> None:
    cols = saturated_colours(400, 0)
    assert cols.shape == (400, 3) and cols.min() >= 0 and cols.max() <= 1
    assert np.mean(cols.min(axis=1) == 0) > 0.3  # on the gamut edge
    for seed in range(6):
        sc = saturated_scene(64, seed)
        assert sc.kind == "saturated" and sc.image.shape == (3, 64, 64) and sc.image.dtype == np.float32
        assert np.array_equal(sc.image, saturated_scene(64, seed).image)
    img, boxes, names = colorchecker((96, 144))
    assert len(boxes) == len(names) == 24 and img.shape == (3, 96, 144)
    t, left, b, r = boxes[14]  # "red"
    assert names[14] == "red" and np.allclose(img[:, (t + b) // 2, (left + r) // 2] * 255, (175, 54, 60))
    # without saturated_fraction the scene stream is the one the RAW builds always used
    a, b2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(sample_scene(32, a).image, sample_scene(32, b2, saturated_fraction=0.0).image)
    assert a.random() == b2.random()


# --------------------------------------------------------------------------------------------
# The camera pipeline
# --------------------------------------------------------------------------------------------


def test_camera_pair_renders_both_images_alike() -> None:
    """Same input -> same output; the clean image is render_srgb's; noise reduction keeps the
    local mean of the noise and reaches the requested std."""
    prof = load_profile("S6")
    img = saturated_scene(64, 1).image
    planes, meta = unprocess(img, prof, 0)
    kw = {"wb": meta["wb"], "ccm": meta["ccm"], "gain": 1.0 / meta["exposure"]}
    clean, same, info = render_camera_pair(planes, planes, prof.cfa, noise_reduction=True, **kw)
    np.testing.assert_array_equal(clean, same)
    assert info == {}  # nothing to reduce
    np.testing.assert_allclose(clean, render_srgb(planes, prof.cfa, **kw), atol=1e-6)
    rng = np.random.default_rng(0)
    c = np.full((3, 96, 96), 0.4, np.float32)
    n = c + rng.normal(0, 0.05, c.shape).astype(np.float32)
    out = reduce_noise(c, n, luma=0.5, chroma=0.25)
    y_in, y_out = (n - c).mean(axis=0), (out - c).mean(axis=0)
    np.testing.assert_allclose((out - c).mean(axis=(1, 2)), (n - c).mean(axis=(1, 2)), atol=2e-4)
    assert 0.4 < y_out.std() / y_in.std() < 0.6
    rg_in, rg_out = (n[0] - n[1]), (out[0] - out[1])
    assert rg_out.std() / rg_in.std() < 0.35


# --------------------------------------------------------------------------------------------
# RAW builds are untouched
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["v2", "wide"])
def test_raw_builds_never_use_the_srgb_camera(variant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RAW files come from the RAW code path alone: the sRGB camera (saturated scenes, camera
    rendering, JPEG) is never called, and every stored array is the RAW pair's."""
    import rawadapt.noise.pipeline as pipeline
    import rawadapt.noise.scenes as scenes
    import rawadapt.noise.synth_dataset as sd

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("RAW build used the sRGB camera")

    for mod, name in (
        (scenes, "saturated_scene"),
        (sd, "render_camera_pair"),
        (sd, "jpeg_roundtrip"),
        (sd, "srgb_images"),
        (pipeline, "reduce_noise"),
    ):
        monkeypatch.setattr(mod, name, boom)
    sensors = ["SonyA7S2", "S6"]
    root = build_synth(tmp_path / variant, size="tiny", progress=False, sensors=sensors, variant=variant)
    stamp = read_stamp(root)
    assert stamp is not None and "srgb_pipeline" not in stamp
    rows = {r["sample_id"]: r for r in _rows(root)}
    for name in sensors:
        prof = load_profile(name)
        span = prof.span.astype(np.float32)[:, None, None]
        blk = np.asarray(prof.black_level, dtype=np.float32)[:, None, None]
        for split in SPLITS:
            for pair in generate_pairs(name, split, TINY, 0, variant):
                row = rows[pair.sample_id]
                noisy = np.load(root / row["noisy"])
                np.testing.assert_array_equal(noisy, pair.noisy_dn)
                clean = np.load(root / row["clean"])
                if row["clean"].endswith(f"{pair.scene}_clean.npy"):
                    expected = np.clip(np.rint(pair.clean_planes * span + blk), 0, prof.white_level)
                    np.testing.assert_array_equal(clean, expected.astype(np.uint16))
    again = build_synth(tmp_path / f"{variant}-again", size="tiny", progress=False, sensors=sensors, variant=variant)
    for f in sorted(root.rglob("*.npy")):
        assert f.read_bytes() == (again / f.relative_to(root)).read_bytes()
    assert (root / STAMP).is_file()


# --------------------------------------------------------------------------------------------
# Colour fidelity of a model
# --------------------------------------------------------------------------------------------


def test_colour_fidelity_identity_and_shifting_models() -> None:
    from rawadapt.eval.colour import FLAT_PATCHES, TOLERANCE, colour_fidelity
    from rawadapt.models.base import Denoiser

    class Identity(Denoiser):
        arch = "identity"

        def forward(self, x: torch.Tensor, sensor: Any = None, iso: Any = None) -> torch.Tensor:
            return x

        def config(self) -> dict[str, Any]:
            return {}

    res = colour_fidelity(Identity(3))
    assert len(res.patches) == len(FLAT_PATCHES) + 24
    assert res.ok() and res.max_shift < 0.8, res.failing()  # the noise's own mean only
    assert [p.name for p in res.patches[:3]] == ["green", "blue", "cyan"]
    assert res.patches[0].colour == (40, 180, 40)

    def greyish(x: torch.Tensor) -> torch.Tensor:  # what the issue saw: saturated colours pulled to grey
        grey = x.mean(dim=1, keepdim=True)
        return x + 0.4 * (grey - x)

    bad = colour_fidelity(greyish)
    assert not bad.ok()
    green = bad.patches[0]
    assert green.shift[0] > 15 and green.shift[1] < -30  # R up, G down (toward grey)
    grey = next(p for p in bad.patches if p.name == "grey")
    assert grey.max_abs <= TOLERANCE  # a grey patch stays grey
    d = bad.to_dict()
    assert d["max_shift"] == bad.max_shift and len(d["patches"]) == len(bad.patches)

    def offset(x: torch.Tensor) -> torch.Tensor:  # a small constant colour cast
        return x + torch.tensor([3.0, 0.0, -3.0]).reshape(1, 3, 1, 1) / 255

    cast = colour_fidelity(offset, chart=False)
    assert not cast.ok() and all(2.5 < p.shift[0] < 3.5 for p in cast.patches)
