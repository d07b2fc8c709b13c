"""Clean scene content without downloads: scikit-image's bundled images and dead leaves.

* Bundled images: only the files that ship INSIDE the scikit-image wheel
  (``skimage/data/*.png|jpg``), read directly with Pillow; no fetcher is ever called (the
  fetchers download). Grayscale textures are coloured with a random duotone. Random crops at
  random scales (anti-aliased resampling), flips and 90-degree rotations.
* Dead leaves: a procedural occlusion model (discs, ellipses and rectangles with a power-law
  size distribution ``p(r) ~ r^-3``, painted back to front with anti-aliased edges), leaf
  colours drawn from the pixels of the bundled colour images (natural colour statistics) and
  per-leaf shading gradients and gratings for texture; optional defocus blur. Unlimited,
  seeded content.
* Saturated content (:func:`saturated_scene`, used by the sRGB camera plan of ``synth-srgb``):
  natural images rarely reach the edge of the sRGB gamut, and a denoiser that never saw a
  saturated colour treats its chroma as noise (issue #18: a green patch (40, 180, 40) came out
  grey-beige). Three procedural kinds, all reaching the gamut edge (one channel at 0, pure
  primaries and secondaries): dead leaves with a saturated palette (:func:`saturated_colours`),
  flat patches, and a colour chart (ColorChecker Classic values plus the gamut corners,
  :func:`colour_chart`) on a dead-leaves background. :func:`sample_scene` draws them only when
  asked (``saturated_fraction > 0``); otherwise its random stream is unchanged, so the RAW
  ``synth`` builds keep their files.

Images are sRGB float32 ``(3, H, W)`` in [0, 1]. Every function takes an explicit NumPy
generator or seed.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rawadapt.errors import MissingDependencyError
from rawadapt.utils.seed import numpy_rng

#: colour images shipped in the scikit-image wheel
COLOR_IMAGES: tuple[str, ...] = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "retina.jpg",
    "rocket.jpg",
)
#: grayscale textures shipped in the wheel (coloured with a duotone)
GRAY_IMAGES: tuple[str, ...] = ("brick.png", "camera.png", "grass.png", "gravel.png", "moon.png", "coins.png")

#: Which bundled images may be used by which split: test scenes never share content with
#: training scenes (the two motorcycle views stay together on the training side).
SCENE_SPLITS: dict[str, tuple[str, ...]] = {
    "train": (
        "astronaut.png",
        "chelsea.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "motorcycle_left.png",
        "motorcycle_right.png",
        "retina.jpg",
        "brick.png",
        "camera.png",
        "gravel.png",
        "moon.png",
    ),
    "test": ("coffee.png", "rocket.jpg", "grass.png", "coins.png"),
}


def skimage_data_dir() -> Path | None:
    """The ``skimage/data`` folder of the installed wheel (found without importing skimage)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "data"
    return d if d.is_dir() else None


def available_images() -> list[str]:
    """Bundled image files that are present (colour first)."""
    d = skimage_data_dir()
    if d is None:
        return []
    return [n for n in COLOR_IMAGES + GRAY_IMAGES if (d / n).is_file()]


@functools.lru_cache(maxsize=32)
def _load(name: str) -> np.ndarray:
    from PIL import Image

    d = skimage_data_dir()
    if d is None or not (d / name).is_file():
        raise MissingDependencyError(
            f"bundled image {name!r} not found: install scikit-image (it ships the sample images)"
        )
    with Image.open(d / name) as im:
        if name in GRAY_IMAGES:
            arr = np.asarray(im.convert("L"), dtype=np.float32)[None] / 255.0
        else:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0
    arr = np.ascontiguousarray(arr)
    arr.setflags(write=False)
    return arr


def load_bundled(name: str) -> np.ndarray:
    """A bundled image as float32 ``(C, H, W)`` in [0, 1] (C = 3 colour, 1 grayscale).

    Raises
    ------
    MissingDependencyError
        scikit-image (which ships the files) is not installed.
    """
    return _load(name)


@functools.lru_cache(maxsize=1)
def colour_pool() -> np.ndarray:
    """``(N, 3)`` sRGB colours sampled from the bundled colour images (natural statistics).

    Falls back to a small fixed palette when scikit-image is absent.
    """
    rng = np.random.default_rng(20240601)
    cols = []
    for name in COLOR_IMAGES:
        try:
            img = _load(name)
        except MissingDependencyError:
            continue
        flat = img.reshape(3, -1).T
        cols.append(flat[rng.integers(0, flat.shape[0], 4000)])
    if not cols:
        base = np.array(
            [
                [0.55, 0.45, 0.35],
                [0.25, 0.35, 0.2],
                [0.4, 0.5, 0.65],
                [0.8, 0.75, 0.7],
                [0.15, 0.12, 0.1],
                [0.7, 0.3, 0.2],
                [0.3, 0.3, 0.35],
                [0.9, 0.85, 0.6],
            ],
            np.float32,
        )
        cols = [np.clip(base[rng.integers(0, len(base), 4000)] + rng.normal(0, 0.08, (4000, 3)), 0, 1)]
    pool = np.concatenate(cols).astype(np.float32)
    pool.setflags(write=False)
    return pool


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Anti-aliased bilinear resize of ``(C, H, W)`` to ``size = (H', W')``."""
    import torch
    import torch.nn.functional as F

    if img.shape[1:] == tuple(size):
        return np.ascontiguousarray(img, dtype=np.float32)
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None]
    out = F.interpolate(t, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    return out[0].clamp_(0, 1).numpy()


def _augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(0, 4))
    out = np.rot90(img, k, axes=(1, 2))
    if rng.random() < 0.5:
        out = out[:, :, ::-1]
    return np.ascontiguousarray(out)


def duotone(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour a ``(1, H, W)`` grayscale image between a dark and a light natural colour."""
    pool = colour_pool()
    lum = pool @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    dark = pool[lum < 0.25]
    light = pool[lum > 0.6]
    c0 = dark[rng.integers(0, len(dark))] if len(dark) else np.zeros(3, np.float32)
    c1 = light[rng.integers(0, len(light))] if len(light) else np.ones(3, np.float32)
    return (c0[:, None, None] + (c1 - c0)[:, None, None] * gray).astype(np.float32)


def bundled_crop(
    name: str,
    size: int | tuple[int, int],
    rng: np.random.Generator | int | None = None,
    *,
    scale_range: tuple[float, float] = (0.8, 3.0),
) -> np.ndarray:
    """A random crop of a bundled image, resampled to ``size``.

    The crop window is ``scale`` times the output size (``scale`` log-uniform in
    ``scale_range``, limited by the image size), then flipped / rotated at random.
    """
    gen = numpy_rng(rng)
    oh, ow = (size, size) if isinstance(size, int) else size
    img = _load(name)
    _, h, w = img.shape
    lo, hi = scale_range
    hi = max(min(hi, h / oh, w / ow), 1e-3)
    lo = min(lo, hi)
    scale = math.exp(gen.uniform(math.log(lo), math.log(hi)))
    ch, cw = min(h, max(2, round(oh * scale))), min(w, max(2, round(ow * scale)))
    top = int(gen.integers(0, h - ch + 1))
    left = int(gen.integers(0, w - cw + 1))
    crop = img[:, top : top + ch, left : left + cw]
    if crop.shape[0] == 1:
        crop = duotone(crop, gen)
    return _augment(_resize(crop, (oh, ow)), gen) if oh == ow else _resize(crop, (oh, ow))


def dead_leaves(
    size: int | tuple[int, int],
    rng: np.random.Generator | int | None = None,
    *,
    n_shapes: int | None = None,
    r_min: float = 3.0,
    r_max: float | None = None,
    texture: bool = True,
    blur: float | None = None,
    palette: np.ndarray | None = None,
) -> np.ndarray:
    """A dead-leaves image ``(3, H, W)`` in [0, 1].

    Parameters
    ----------
    size
        Output size (int or (H, W)).
    rng
        NumPy generator or seed (same seed, same image).
    n_shapes
        Number of leaves (default: 1000 per 256x256, which covers ~94 % of the background).
    r_min, r_max
        Radius range in pixels of the ``r^-3`` size law (default ``r_max = min(H, W) / 3``).
    texture
        Shade leaves with linear gradients and, for some large ones, sinusoidal gratings.
    blur
        Gaussian defocus std in pixels; None draws it in [0, 1.2] (half the images sharp).
    palette
        ``(N, 3)`` sRGB leaf colours; None (default) draws 24 natural colours from
        :func:`colour_pool` (the random stream of the default is unchanged by this option).
    """
    gen = numpy_rng(rng)
    h, w = (size, size) if isinstance(size, int) else size
    r_max = float(r_max if r_max is not None else min(h, w) / 3.0)
    r_min = float(min(r_min, r_max))
    n = int(n_shapes if n_shapes is not None else 1000 * h * w / 65536.0)
    # a per-image palette of natural colours (pixels of real photographs) keeps an image's
    # colours coherent, as in a real scene; leaves jitter around the palette entries
    if palette is None:
        full = colour_pool()
        pool = full[gen.integers(0, len(full), 24)]
    else:
        pool = np.asarray(palette, dtype=np.float32).reshape(-1, 3)
    # background: a large shaded leaf
    bg = pool[gen.integers(0, len(pool))]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gy, gx = gen.normal(0, 0.3 / max(h, w), 2)
    canvas = (bg[:, None, None] * (1.0 + gy * (yy - h / 2) + gx * (xx - w / 2))[None]).astype(np.float32)
    # all random numbers drawn up front (vectorised), shapes painted back to front
    u = gen.random(n)
    a, b = r_min**-2, r_max**-2
    radii = (a - u * (a - b)) ** -0.5
    cy = gen.uniform(-radii, h + radii)
    cx = gen.uniform(-radii, w + radii)
    kinds = gen.choice(3, size=n, p=[0.6, 0.25, 0.15])  # disc, ellipse, rectangle
    aspect = gen.uniform(0.35, 1.0, n)
    theta = gen.uniform(0, np.pi, n)
    colours = np.clip(pool[gen.integers(0, len(pool), n)] * gen.normal(1.0, 0.08, (n, 1)), 0, 1)
    shade = gen.normal(0, 0.25, (n, 2))
    grating = (gen.random(n) < 0.25) & (radii > 6)
    freq = gen.uniform(0.08, 0.45, n)
    phase = gen.uniform(0, 2 * np.pi, n)
    amp = gen.uniform(0.05, 0.3, n)
    # Leaves smaller than SMALL_R (the majority under the r^-3 law) are painted as hard-edged
    # discs in vectorised batches; larger ones one by one on their bounding box. Both follow the
    # back-to-front order chunk by chunk.
    small = radii < SMALL_R
    offs = np.arange(-int(SMALL_R) - 1, int(SMALL_R) + 2)
    grid_y, grid_x = np.meshgrid(offs, offs, indexing="ij")
    oy, ox = grid_y.reshape(-1), grid_x.reshape(-1)
    for chunk in np.array_split(np.arange(n), 8):
        for i in chunk[~small[chunk]]:  # a loop over large leaves (bounding boxes only)
            _paint_leaf(
                canvas,
                yy,
                xx,
                i,
                radii,
                cy,
                cx,
                kinds,
                aspect,
                theta,
                colours,
                shade,
                grating,
                freq,
                phase,
                amp,
                texture,
            )
        sm = chunk[small[chunk]]
        if len(sm):
            py = np.rint(cy[sm])[:, None].astype(np.int64) + oy[None]
            px = np.rint(cx[sm])[:, None].astype(np.int64) + ox[None]
            inside = (py - cy[sm, None]) ** 2 + (px - cx[sm, None]) ** 2 <= radii[sm, None] ** 2
            inside &= (py >= 0) & (py < h) & (px >= 0) & (px < w)
            rows, cols = np.nonzero(inside)  # row-major: later leaves last, so they win
            canvas[:, py[rows, cols], px[rows, cols]] = colours[sm][rows].T
    np.clip(canvas, 0.0, 1.0, out=canvas)
    sigma = float(gen.uniform(0, 1.2) if gen.random() < 0.5 else 0.0) if blur is None else float(blur)
    if sigma > 0.05:
        from scipy.ndimage import gaussian_filter

        canvas = gaussian_filter(canvas, sigma=(0, sigma, sigma), mode="reflect")
    return np.clip(canvas, 0.0, 1.0).astype(np.float32)


SMALL_R = 4.0


def _paint_leaf(
    canvas: np.ndarray,
    yy: np.ndarray,
    xx: np.ndarray,
    i: int,
    radii: np.ndarray,
    cy: np.ndarray,
    cx: np.ndarray,
    kinds: np.ndarray,
    aspect: np.ndarray,
    theta: np.ndarray,
    colours: np.ndarray,
    shade: np.ndarray,
    grating: np.ndarray,
    freq: np.ndarray,
    phase: np.ndarray,
    amp: np.ndarray,
    texture: bool,
) -> None:
    """Alpha-blend leaf ``i`` (anti-aliased edge, optional shading) onto ``canvas`` in place."""
    h, w = canvas.shape[1:]
    r = radii[i]
    y0, y1 = max(int(cy[i] - r - 1), 0), min(int(cy[i] + r + 2), h)
    x0, x1 = max(int(cx[i] - r - 1), 0), min(int(cx[i] + r + 2), w)
    if y0 >= y1 or x0 >= x1:
        return
    dy = yy[y0:y1, x0:x1] - cy[i]
    dx = xx[y0:y1, x0:x1] - cx[i]
    if kinds[i] == 0:
        dist = np.sqrt(dy * dy + dx * dx) - r
    else:
        c, s = math.cos(theta[i]), math.sin(theta[i])
        u1 = dx * c + dy * s
        v1 = (-dx * s + dy * c) / aspect[i]
        if kinds[i] == 1:
            dist = (np.sqrt(u1 * u1 + v1 * v1) - r) * aspect[i] ** 0.5
        else:
            dist = np.maximum(np.abs(u1) - r, (np.abs(v1) - r) * aspect[i])
    alpha = np.clip(0.5 - dist, 0.0, 1.0)
    val = colours[i][:, None, None]
    if texture:
        mod = 1.0 + (shade[i, 0] * dy + shade[i, 1] * dx) * (0.5 / max(r, 1.0))
        if grating[i]:
            mod = mod + amp[i] * np.sin(
                (2 * np.pi * freq[i]) * (dx * math.cos(theta[i]) + dy * math.sin(theta[i])) + phase[i]
            )
        val = val * mod[None]
    region = canvas[:, y0:y1, x0:x1]
    region += alpha[None] * (val - region)


@dataclass(frozen=True)
class Scene:
    """One clean sRGB scene and where it came from."""

    image: np.ndarray
    kind: str  # "skimage" or "deadleaves"
    source: str  # bundled file stem, or "deadleaves"


def sample_scene(
    size: int | tuple[int, int],
    rng: np.random.Generator | int | None = None,
    *,
    split: str = "train",
    dead_leaves_fraction: float = 0.5,
    saturated_fraction: float = 0.0,
) -> Scene:
    """A random clean scene: a crop of a bundled image of ``split`` ("train", "test", "all"),
    or a dead-leaves image with probability ``dead_leaves_fraction`` (always when the bundled
    images are unavailable).

    With ``saturated_fraction > 0`` that share of the scenes is :func:`saturated_scene` content
    (colours up to the sRGB gamut edge); with the default 0 no extra random number is drawn,
    so the scenes are exactly those of earlier versions."""
    gen = numpy_rng(rng)
    if saturated_fraction > 0 and gen.random() < saturated_fraction:
        return saturated_scene(size, gen)
    names = available_images()
    allowed = names if split == "all" else [n for n in SCENE_SPLITS[split] if n in names]
    if not allowed or gen.random() < dead_leaves_fraction:
        return Scene(dead_leaves(size, gen), "deadleaves", "deadleaves")
    name = allowed[int(gen.integers(0, len(allowed)))]
    return Scene(bundled_crop(name, size, gen), "skimage", Path(name).stem)


# --------------------------------------------------------------------------------------------
# Saturated content: colours up to the sRGB gamut edge
# --------------------------------------------------------------------------------------------

#: ColorChecker Classic, the 24 patches row by row (4 rows x 6 columns), 8-bit sRGB (D65): the
#: widely published reference values (X-Rite / BabelColor sRGB tables, rounded).
COLORCHECKER_SRGB: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("dark skin", (115, 82, 68)),
    ("light skin", (194, 150, 130)),
    ("blue sky", (98, 122, 157)),
    ("foliage", (87, 108, 67)),
    ("blue flower", (133, 128, 177)),
    ("bluish green", (103, 189, 170)),
    ("orange", (214, 126, 44)),
    ("purplish blue", (80, 91, 166)),
    ("moderate red", (193, 90, 99)),
    ("purple", (94, 60, 108)),
    ("yellow green", (157, 188, 64)),
    ("orange yellow", (224, 163, 46)),
    ("blue", (56, 61, 150)),
    ("green", (70, 148, 73)),
    ("red", (175, 54, 60)),
    ("yellow", (231, 199, 31)),
    ("magenta", (187, 86, 149)),
    ("cyan", (8, 133, 161)),
    ("white", (243, 243, 242)),
    ("neutral 8", (200, 200, 200)),
    ("neutral 6.5", (160, 160, 160)),
    ("neutral 5", (122, 122, 121)),
    ("neutral 3.5", (85, 85, 85)),
    ("black", (52, 52, 52)),
)
#: the corners of the sRGB gamut other than black and white: primaries and secondaries
GAMUT_CORNERS_SRGB: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 0),
    (0, 255, 255),
    (255, 0, 255),
)

Box = tuple[int, int, int, int]  # top, left, bottom, right (exclusive)


def hsv_to_rgb(hue: np.ndarray, sat: np.ndarray, val: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB: arrays in [0, 1] of one shape ``S`` -> ``S + (3,)`` float32."""
    h6 = (np.asarray(hue, dtype=np.float64) % 1.0) * 6.0
    s = np.asarray(sat, dtype=np.float64)
    v = np.asarray(val, dtype=np.float64)
    i = np.floor(h6).astype(np.int64) % 6
    f = h6 - np.floor(h6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = np.stack(
        [
            np.stack([v, t, p], -1),
            np.stack([q, v, p], -1),
            np.stack([p, v, t], -1),
            np.stack([p, q, v], -1),
            np.stack([t, p, v], -1),
            np.stack([v, p, q], -1),
        ]
    )
    out = np.take_along_axis(table, i[None, ..., None].repeat(3, -1), 0)[0]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def saturated_colours(
    n: int, rng: np.random.Generator | int | None = None, *, edge_fraction: float = 0.5
) -> np.ndarray:
    """``(n, 3)`` saturated sRGB colours in [0, 1].

    Hue uniform, value (largest channel) in [0.25, 1]; a share ``edge_fraction`` lies exactly on
    the gamut edge (HSV saturation 1: the smallest channel is 0), the others have saturation in
    [0.55, 1].
    """
    gen = numpy_rng(rng)
    hue = gen.random(n)
    sat = np.where(gen.random(n) < edge_fraction, 1.0, gen.uniform(0.55, 1.0, n))
    val = gen.uniform(0.25, 1.0, n)
    return hsv_to_rgb(hue, sat, val)


def chart_boxes(h: int, w: int, rows: int, cols: int, *, margin: float = 0.05, gap: float = 0.2) -> list[Box]:
    """Patch boxes of a ``rows x cols`` chart filling an ``(h, w)`` area, row by row.

    ``margin`` (fraction of the side) frames the chart; ``gap`` is the fraction of a cell left
    between patches (the chart's dark frame shows through)."""
    boxes: list[Box] = []
    y0, x0 = margin * h, margin * w
    ch, cw = (1 - 2 * margin) * h / rows, (1 - 2 * margin) * w / cols
    for r in range(rows):
        for c in range(cols):
            top = round(y0 + (r + gap / 2) * ch)
            left = round(x0 + (c + gap / 2) * cw)
            bottom = round(y0 + (r + 1 - gap / 2) * ch)
            right = round(x0 + (c + 1 - gap / 2) * cw)
            boxes.append((top, left, max(bottom, top + 1), max(right, left + 1)))
    return boxes


def colour_chart(
    size: int | tuple[int, int],
    colours: np.ndarray | Sequence[Sequence[float]],
    *,
    rows: int,
    cols: int,
    frame: float | Sequence[float] = 0.1,
    margin: float = 0.05,
    gap: float = 0.2,
) -> tuple[np.ndarray, list[Box]]:
    """A flat colour chart ``(3, H, W)``: ``rows x cols`` patches of ``colours`` (sRGB in [0, 1],
    row by row) on a ``frame`` background; returns the image and the patch boxes."""
    h, w = (size, size) if isinstance(size, int) else size
    cols_arr = np.asarray(colours, dtype=np.float32).reshape(-1, 3)
    if len(cols_arr) < rows * cols:
        raise ValueError(f"a {rows}x{cols} chart needs {rows * cols} colours, got {len(cols_arr)}")
    img = np.empty((3, h, w), np.float32)
    img[:] = np.asarray(frame, dtype=np.float32).reshape(-1, 1, 1)
    boxes = chart_boxes(h, w, rows, cols, margin=margin, gap=gap)
    for (t, lft, b, r), col in zip(boxes, cols_arr):
        img[:, t:b, lft:r] = col[:, None, None]
    return img, boxes


def colorchecker(size: int | tuple[int, int] = (256, 384)) -> tuple[np.ndarray, list[Box], list[str]]:
    """The ColorChecker Classic (:data:`COLORCHECKER_SRGB`) as a 4 x 6 chart: image, boxes, names."""
    cols = np.array([c for _, c in COLORCHECKER_SRGB], np.float32) / 255.0
    img, boxes = colour_chart(size, cols, rows=4, cols=6, frame=0.08)
    return img, boxes, [n for n, _ in COLORCHECKER_SRGB]


def _shade(img: np.ndarray, gen: np.random.Generator, strength: float) -> np.ndarray:
    """Multiply by a gentle linear illumination ramp in [1 - strength, 1] (hue kept)."""
    h, w = img.shape[1:]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = gen.uniform(0, 2 * np.pi)
    ramp = (np.cos(ang) * yy / max(h - 1, 1) + np.sin(ang) * xx / max(w - 1, 1)) / np.sqrt(2)
    ramp = ramp - ramp.min()
    ramp = ramp / max(float(ramp.max()), 1e-6)
    return (img * (1.0 - strength * ramp)[None]).astype(np.float32)


def chart_scene(size: int | tuple[int, int], rng: np.random.Generator | int | None = None) -> np.ndarray:
    """A colour chart (ColorChecker colours, gamut corners and random saturated colours, shuffled)
    at a random position and scale on a natural dead-leaves background."""
    gen = numpy_rng(rng)
    h, w = (size, size) if isinstance(size, int) else size
    img = dead_leaves((h, w), gen)
    rows, cols = ((4, 6), (6, 6), (5, 7))[int(gen.integers(0, 3))]
    n = rows * cols
    cc = np.array([c for _, c in COLORCHECKER_SRGB], np.float32) / 255.0
    corners = np.array(GAMUT_CORNERS_SRGB, np.float32) / 255.0
    extra = saturated_colours(max(n - len(cc) - len(corners), 0), gen)
    pool = np.concatenate([cc, corners, extra])
    colours = pool[gen.permutation(len(pool))[:n]]
    scale = gen.uniform(0.6, 1.0)
    ch, cw = max(8, round(h * scale)), max(8, round(w * scale))
    chart, _ = colour_chart((ch, cw), colours, rows=rows, cols=cols, frame=gen.uniform(0.05, 0.2), gap=0.15)
    chart = _shade(chart, gen, gen.uniform(0.0, 0.2))
    top, left = int(gen.integers(0, h - ch + 1)), int(gen.integers(0, w - cw + 1))
    img[:, top : top + ch, left : left + cw] = chart
    return _augment(img, gen) if h == w else img


def patches_scene(size: int | tuple[int, int], rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Large flat patches (a random grid of 2-4 x 2-4 cells), mostly saturated colours up to the
    gamut edge, some natural ones, with gentle shading and optional defocus."""
    gen = numpy_rng(rng)
    h, w = (size, size) if isinstance(size, int) else size
    ny, nx = int(gen.integers(2, 5)), int(gen.integers(2, 5))
    ys = np.concatenate([[0], np.sort(gen.integers(1, h, ny - 1)), [h]])
    xs = np.concatenate([[0], np.sort(gen.integers(1, w, nx - 1)), [w]])
    sat = saturated_colours(ny * nx, gen)
    nat = colour_pool()[gen.integers(0, len(colour_pool()), ny * nx)]
    colours = np.where((gen.random(ny * nx) < 0.8)[:, None], sat, nat)
    img = np.empty((3, h, w), np.float32)
    for i in range(ny):
        for j in range(nx):
            img[:, ys[i] : ys[i + 1], xs[j] : xs[j + 1]] = colours[i * nx + j][:, None, None]
    img = _shade(img, gen, gen.uniform(0.0, 0.15))
    if gen.random() < 0.5:
        from scipy.ndimage import gaussian_filter

        img = gaussian_filter(img, sigma=(0, *(2 * [gen.uniform(0.3, 1.0)])), mode="reflect")
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def saturated_leaves(size: int | tuple[int, int], rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Dead leaves whose palette is two thirds saturated colours, one third natural ones."""
    gen = numpy_rng(rng)
    pool = colour_pool()
    palette = np.concatenate([saturated_colours(16, gen), pool[gen.integers(0, len(pool), 8)]])
    return dead_leaves(size, gen, palette=palette)


#: kinds of saturated scenes and how often :func:`saturated_scene` draws each
SATURATED_KINDS: tuple[tuple[str, float], ...] = (("satleaves", 0.5), ("chart", 0.25), ("patches", 0.25))


def saturated_scene(size: int | tuple[int, int], rng: np.random.Generator | int | None = None) -> Scene:
    """A scene with colours up to the sRGB gamut edge: saturated dead leaves, a colour chart or
    flat patches (:data:`SATURATED_KINDS`)."""
    gen = numpy_rng(rng)
    names = [k for k, _ in SATURATED_KINDS]
    kind = names[int(gen.choice(len(names), p=[p for _, p in SATURATED_KINDS]))]
    make = {"satleaves": saturated_leaves, "chart": chart_scene, "patches": patches_scene}[kind]
    return Scene(make(size, gen), "saturated", kind)
