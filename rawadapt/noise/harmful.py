"""Harmful source data (ADL paper §4.4, Table 5) to test that a method ignores it.

``harmful1``
    Bright clean images with naive additive Gaussian noise of std ``30/255`` (normalised units;
    in packed RAW for ``space="raw"``, on sRGB for ``space="srgb"``), clipped to [0, 1]. The
    paper builds it from SIDD ground truths captured in bright light; without ``clean_pool`` the
    clean images are built-in scenes unprocessed to RAW and brightened (99.5th percentile at
    0.9). Its noise level has nothing to do with any real sensor.
``harmful2``
    Misaligned pairs: a realistic noisy image (a random built-in profile's noise at a random
    ISO) whose "clean" image is, in turn, another scene (``other-scene``), the same scene
    shifted by 1/8 to 1/4 of the size (``shifted``), or black (``black``).

Both are lazy :class:`~rawadapt.data.base.PairDataset` s whose samples are generated on access,
deterministically from ``(kind, space, size, seed, index)``; sensor names are ``"harmful1"`` and
``"harmful2"``. Harmful1 has no physical ISO: its samples carry a nominal ISO of
:data:`HARMFUL1_NOMINAL_ISO` (``extra["nominal_iso"] = True``) so ISO-modulated models accept them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import numpy as np

from rawadapt.data.base import PairDataset
from rawadapt.data.sample import Sample, SampleRecord, Space
from rawadapt.errors import ConfigError, ShapeError
from rawadapt.noise.model import add_noise, gaussian_noise, sample_noise_params
from rawadapt.noise.pipeline import render_srgb, unprocess
from rawadapt.noise.profiles import BUILTIN_ORDER
from rawadapt.noise.scenes import sample_scene
from rawadapt.utils.seed import derive_seed

HARMFUL_KINDS = ("harmful1", "harmful2")
HARMFUL1_SIGMA = 30.0 / 255.0
HARMFUL1_NOMINAL_ISO = 3200.0
HARMFUL2_MODES = ("other-scene", "shifted", "black")


def _profiles() -> list[str]:

    return list(BUILTIN_ORDER)


def _pool_crop(
    pool: Sequence[np.ndarray], size: int, channels: int, rng: np.random.Generator, margin: int = 0
) -> np.ndarray:
    arr = np.asarray(pool[int(rng.integers(0, len(pool)))], dtype=np.float32)
    need = size + 2 * margin
    if arr.ndim != 3 or arr.shape[0] != channels:
        raise ShapeError(f"clean_pool images must be ({channels}, H, W) for this space, got {arr.shape}")
    if arr.shape[1] < need or arr.shape[2] < need:
        raise ShapeError(f"clean_pool image {arr.shape} is smaller than the {need}x{need} crop needed")
    top = int(rng.integers(0, arr.shape[1] - need + 1))
    left = int(rng.integers(0, arr.shape[2] - need + 1))
    return np.clip(arr[:, top : top + need, left : left + need], 0.0, 1.0)


def _scene_raw(
    size: int, rng: np.random.Generator, profile: str, margin: int = 0, *, bright: bool = False
) -> tuple[np.ndarray, dict[str, Any]]:
    """A built-in scene unprocessed to packed RAW of ``size + 2 margin`` (packed pixels)."""

    side = 2 * (size + 2 * margin)
    scene = sample_scene(side, rng, split="all")
    planes, meta = unprocess(scene.image, profile, rng, exposure=1.0 if bright else None)
    if bright:
        hi = float(np.percentile(planes, 99.5))
        planes = np.clip(planes * (0.9 / max(hi, 1e-3)), 0.0, 1.0)
    return planes, meta


def _crop(a: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    return np.ascontiguousarray(a[:, top : top + size, left : left + size])


class _Generator:
    """Builds sample ``i`` of one harmful dataset (picklable loader state)."""

    def __init__(self, kind: str, size: int, space: Space, seed: int, clean_pool: Sequence[np.ndarray] | None):
        self.kind, self.size, self.space, self.seed = kind, int(size), space, int(seed)
        self.pool = None if clean_pool is None else list(clean_pool)
        self.channels = 4 if space == "raw" else 3

    def rng(self, i: int, *what: str) -> np.random.Generator:
        return np.random.default_rng(derive_seed(self.seed, self.kind, self.space, self.size, i, *what))

    def plan(self, i: int) -> dict[str, Any]:
        """What sample ``i`` is, without pixels (profile, ISO, mode)."""

        rng = self.rng(i, "plan")
        names = _profiles()
        prof = names[int(rng.integers(0, len(names)))]
        out: dict[str, Any] = {"profile": prof}
        if self.kind == "harmful1":
            out["iso"] = HARMFUL1_NOMINAL_ISO
        else:
            params = sample_noise_params(prof, rng=rng)
            out.update(iso=float(round(params.iso or 0.0)), params=params, mode=HARMFUL2_MODES[i % 3])
        return out

    def record(self, i: int) -> SampleRecord:
        p = self.plan(i)
        extra: dict[str, Any] = {"generated": True, "profile": p["profile"]}
        if self.kind == "harmful1":
            extra["nominal_iso"] = True
        else:
            extra["mode"] = p["mode"]
        return SampleRecord(
            sample_id=f"{self.kind}-{i:05d}",
            sensor=self.kind,
            iso=p["iso"],
            scene=f"{self.kind}-{i:05d}",
            noisy_path=f"generated:{self.kind}/{self.space}/{self.seed}/{i}",
            clean_path=None,
            ratio=1.0,
            space=self.space,
            split="source",
            extra=extra,
        )

    # -- content ------------------------------------------------------------------------------
    def _clean(
        self, rng: np.random.Generator, profile: str, margin: int = 0, bright: bool = False
    ) -> tuple[np.ndarray, dict[str, Any] | None]:
        """Clean content in this dataset's space: (image, unprocess meta or None)."""
        if self.pool is not None:
            img = _pool_crop(self.pool, self.size, self.channels, rng, margin)
            if bright:
                img = np.clip(img * (0.9 / max(float(np.percentile(img, 99.5)), 1e-3)), 0, 1)
            return img, None
        if self.space == "raw":
            return _scene_raw(self.size, rng, profile, margin, bright=bright)

        img = sample_scene(self.size + 2 * margin, rng, split="all").image
        if bright:
            img = np.clip(img * (0.9 / max(float(np.percentile(img, 99.5)), 1e-3)), 0, 1)
        return img, None

    def _noisy(self, clean: np.ndarray, profile: str, params: Any, gen: Any) -> np.ndarray:
        """Realistic sensor noise on ``clean`` in this space (sRGB: noise added in RAW)."""

        if self.space == "raw":
            return add_noise(clean, profile, params, generator=gen)
        # sRGB: unprocess, add the noise in RAW, render back with the same pipeline
        planes, meta = unprocess(
            _even(clean), profile, np.random.default_rng(int(gen.initial_seed()) % (2**63)), exposure=1.0
        )
        noisy = add_noise(planes, profile, params, generator=gen)
        out = render_srgb(noisy, meta["cfa"], wb=meta["wb"], ccm=meta["ccm"])
        return _fit(out, clean.shape)

    def __call__(self, rec: SampleRecord) -> Sample:
        import torch

        i = int(rec.sample_id.rsplit("-", 1)[1])
        p = self.plan(i)
        rng = self.rng(i, "content")
        gen = torch.Generator().manual_seed(derive_seed(self.seed, self.kind, self.space, self.size, i, "noise"))
        cfa = None
        if self.kind == "harmful1":
            clean, meta = self._clean(rng, p["profile"], bright=True)
            noisy = gaussian_noise(clean, HARMFUL1_SIGMA, generator=gen)
            cfa = None if meta is None else meta["cfa"]
        else:
            mode = p["mode"]
            s = self.size
            margin = max(2, s // 4) if mode == "shifted" else 0
            scene_a, meta = self._clean(rng, p["profile"], margin=margin)
            cfa = None if meta is None else meta["cfa"]
            a = _crop(scene_a, margin, margin, s)
            if mode == "other-scene":
                clean, _ = self._clean(rng, p["profile"])
            elif mode == "shifted":
                lo = max(1, s // 8)
                dy, dx = (int(rng.integers(lo, margin + 1)) * int(rng.choice([-1, 1])) for _ in range(2))
                clean = _crop(scene_a, margin + dy, margin + dx, s)
            else:
                clean = np.zeros_like(a)
            noisy = self._noisy(a, p["profile"], p["params"], gen)
        return Sample(
            noisy=np.ascontiguousarray(noisy, dtype=np.float32),
            clean=np.ascontiguousarray(clean, dtype=np.float32),
            sensor=rec.sensor,  # the kind, or the sensor it claims (make_harmful(label=...))
            iso=rec.iso,
            ratio=1.0,
            space=self.space,
            scene=rec.scene,
            path=rec.noisy_path,
            cfa=cfa if self.space == "raw" else None,
            sample_id=rec.sample_id,
            extra=dict(rec.extra),
        ).validate()


def _even(img: np.ndarray) -> np.ndarray:
    """Pad an sRGB image to even size (edge) for unprocessing."""
    h, w = img.shape[1:]
    return np.pad(img, ((0, 0), (0, h % 2), (0, w % 2)), mode="edge")


def _fit(img: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.ascontiguousarray(img[:, : shape[1], : shape[2]])


def make_harmful(
    kind: str,
    *,
    n: int,
    size: int,
    space: str = "raw",
    seed: int = 0,
    clean_pool: Sequence[np.ndarray] | None = None,
    label: str | None = None,
) -> PairDataset:
    """A lazy dataset of harmful pairs (see the module docstring).

    Parameters
    ----------
    kind
        ``"harmful1"`` or ``"harmful2"``.
    n
        Number of pairs.
    size
        Side of each image: packed pixels for ``space="raw"`` (4 planes), pixels for ``"srgb"``.
    space
        ``"raw"`` or ``"srgb"``.
    seed
        Seed; the same seed gives the same pairs.
    clean_pool
        Optional clean images ``(C, H, W)`` in [0, 1] of this space (e.g. another dataset's
        ground truths) to draw the clean content from, instead of built-in scenes.
    label
        The sensor name the samples carry (None: ``kind``, a label of their own). A real sensor's
        name makes them a mislabelled dataset: the network cannot tell them apart by type.

    Returns
    -------
    PairDataset named ``kind`` with ``n`` samples of sensor ``kind``.

    Examples
    --------
    >>> ds = make_harmful("harmful2", n=8, size=64, space="raw", seed=1)  # doctest: +SKIP
    >>> ds[0].sensor, ds[0].extra["mode"]                                # doctest: +SKIP
    ('harmful2', 'other-scene')
    """
    kind = str(kind).strip().lower()
    if kind not in HARMFUL_KINDS:
        raise ConfigError(f"unknown harmful data kind {kind!r}; expected one of {', '.join(HARMFUL_KINDS)}")
    if space not in ("raw", "srgb"):
        raise ConfigError(f"space must be 'raw' or 'srgb', got {space!r}")
    if int(n) < 0 or int(size) < 8:
        raise ConfigError(f"need n >= 0 and size >= 8, got n={n}, size={size}")
    if clean_pool is not None and len(clean_pool) == 0:
        raise ConfigError("clean_pool is empty")
    gen = _Generator(kind, int(size), cast(Space, space), int(seed), clean_pool)  # space checked above
    records = [gen.record(i) for i in range(int(n))]
    if label is not None:
        records = [replace(r, sensor=str(label)) for r in records]
    return PairDataset(records, gen, name=kind, space=gen.space, root=None)
