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

Images are sRGB float32 ``(3, H, W)`` in [0, 1]. Every function takes an explicit NumPy
generator or seed.
"""

from __future__ import annotations

import functools
import importlib.util
import math
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
    """
    gen = numpy_rng(rng)
    h, w = (size, size) if isinstance(size, int) else size
    r_max = float(r_max if r_max is not None else min(h, w) / 3.0)
    r_min = float(min(r_min, r_max))
    n = int(n_shapes if n_shapes is not None else 1000 * h * w / 65536.0)
    # a per-image palette of natural colours (pixels of real photographs) keeps an image's
    # colours coherent, as in a real scene; leaves jitter around the palette entries
    full = colour_pool()
    pool = full[gen.integers(0, len(full), 24)]
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
) -> Scene:
    """A random clean scene: a crop of a bundled image of ``split`` ("train", "test", "all"),
    or a dead-leaves image with probability ``dead_leaves_fraction`` (always when the bundled
    images are unavailable)."""
    gen = numpy_rng(rng)
    names = available_images()
    allowed = names if split == "all" else [n for n in SCENE_SPLITS[split] if n in names]
    if not allowed or gen.random() < dead_leaves_fraction:
        return Scene(dead_leaves(size, gen), "deadleaves", "deadleaves")
    name = allowed[int(gen.integers(0, len(allowed)))]
    return Scene(bundled_crop(name, size, gen), "skimage", Path(name).stem)
