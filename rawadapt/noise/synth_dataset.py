"""The built-in multi-sensor benchmark ``synth`` (RAW) and ``synth-srgb`` (sRGB).

All ten built-in profiles (:data:`rawadapt.noise.profiles.BUILTIN_ORDER`: five ELD DSLRs, five
SIDD phones) are sensors. For each sensor the builder makes

* a **source** pool (what the sensor contributes when another sensor is the target),
* a **target** pool (>= 50 pairs at full size, for the 2/5/10/20/50 target-size protocol),
* a **test** set, disjoint BY SCENE from both pools: its scenes come from bundled images that
  training scenes never use (:data:`rawadapt.noise.scenes.SCENE_SPLITS`) or from dead-leaves
  images drawn from their own seeds;

Capture regimes (``variant``)
----------------------------
``v2`` (the default ``synth``, benchmark v2) builds each sensor like its real dataset, so that a
target's training pairs and test images share one capture regime while sources keep their own:

* the DSLRs (``kind: eld``) as SID/ELD low-light captures: exposure ratios x100/x200/x300 (SID,
  Chen et al. CVPR 2018: x100/x250/x300; ELD, Wei et al. CVPR 2020: x100/x200) at ISO
  200/400/800 (SID's short exposures are listed like ``ISO200``; ELD starts at ISO 800), every
  (ISO, ratio) combination equally often: noisy PSNR about 12-35 dB;
* the phones (``kind: nlf``) as SIDD: ISOs stratified log-uniformly over the phone's ISO range,
  ratio x1 (SIDD's normal- and low-light scenes differ by ISO, not by a dark-frame gain).

``wide`` (``synth-wide``, the first benchmark's data, kept as a stress variant) draws every sensor's
ISO log-uniformly over its whole range and cycles the profile's ``ratios`` (DSLRs x1/x10/x100):
near-clean and very noisy images mixed within one sensor (noisy PSNR 24-60 dB), the regime where
ADL's paired validation criterion matters.

``camera`` (the default ``synth-srgb``, ``synth-srgb-wide`` / ``synth-srgb-v2`` being the other
plans rendered to sRGB) is a camera's own sRGB output in normal light (issue #18): ratio x1 and
ISOs stratified log-uniformly over every sensor's range; the camera's black clamp removes the
noise model's colour bias, its noise reduction is as strong as the noise level calls for
(:func:`rawadapt.noise.pipeline.render_camera_pair`), half of the scenes are camera JPEGs
(quality 90-95, chroma 4:2:2 for the DSLRs and 4:2:0 for the phones; their clean images get
the same chroma subsampling through a near-lossless round trip and are stored as PNG), and a
third of the scenes are saturated content up to the sRGB gamut edge
(:func:`rawadapt.noise.scenes.saturated_scene`); see :data:`SRGB_CAMERA`. Noisy PSNR of the
full build (all splits, 130 pairs per sensor; min-max, median): SonyA7S2 32.4-51.3 (40.6),
NikonD850 32.5-49.8 (39.2), CanonEOS70D 31.3-46.0 (39.2), CanonEOS700D 29.0-45.3 (38.1),
CanonEOS5D4 31.9-47.8 (37.9), IP 33.0-40.7 (37.9), GP 27.6-41.8 (36.0), S6 25.5-40.4 (34.3),
N6 22.0-40.1 (33.9), G4 30.6-39.7 (35.1); all 1300 pairs: mean 37.2 dB, 5th-95th percentile
29.8-44.4 dB (real camera JPEGs: PolyU's 256^2 crops 36.4 dB). The sRGB data before it (the
``wide`` plan through the old rendering) averaged 23.3 dB on its test images, with colour
offsets; see :mod:`rawadapt.noise.pipeline` for that diagnosis.

Clean images are unprocessed scenes (:func:`rawadapt.noise.pipeline.unprocess`), noisy images
follow the sensor's full noise model (:func:`rawadapt.noise.model.add_noise`, fixed pattern
included) at the short exposure, quantised by rounding like an ADC.

On-disk format (read by :mod:`rawadapt.data.adapters.manifest`)
---------------------------------------------------------------
``manifest.csv`` with columns ``noisy, clean, sensor, iso, ratio, scene, split, space, cfa,
black_level, white_level, sample_id``; RAW arrays are ``uint16`` ``.npy`` packed canonical
planes ``(4, h, w)`` in the sensor's DN with its black level (noisy at its SHORT exposure: the
loader normalises, multiplies by ``ratio`` and clips); the sRGB builds store 8-bit images
rendered through one camera pipeline (noise added in RAW; :func:`srgb_images`): clean PNG, noisy
PNG or camera JPEG (``.jpg``). Several noisy images may share one
clean file (same scene, different ISO/ratio, like SIDD and ELD). ``synth.json`` is the stamp
(version, seed, size, profile hash, counts), written last.

Building is deterministic (same seed and size -> identical files) and atomic: everything goes
into a temporary folder renamed into place when complete, so an interrupted build never leaves
a half dataset that looks complete. ``open_synth`` builds on first use (progress bar on
stderr) and reuses the cache afterwards.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rawadapt.data.adapters.manifest import open as open_manifest
from rawadapt.errors import ConfigError, DatasetError
from rawadapt.noise.model import _bias_at, add_noise, sample_noise_params
from rawadapt.noise.pipeline import jpeg_roundtrip, render_camera_pair, to_uint8_hwc, unprocess
from rawadapt.noise.profiles import BUILTIN_ORDER, load_profile, round_iso
from rawadapt.noise.scenes import sample_scene
from rawadapt.utils.paths import cache_dir
from rawadapt.utils.seed import derive_seed

SYNTH_VERSION = 1
#: capture plans: see the module docstring
VARIANTS = ("v2", "wide", "camera")
#: version of the sRGB rendering of the pairs (stamped into sRGB builds only, so that an sRGB
#: cache made by an older renderer is rebuilt while RAW caches stay valid). 2: issue #18 (one
#: camera path for both images, black clamp, noise reduction and JPEG in ``camera``).
SRGB_PIPELINE = 2


@dataclass(frozen=True)
class SrgbCamera:
    """In-camera processing of a variant's sRGB noisy images (see the module docstring).

    ``saturated_fraction``: share of scenes with colours up to the gamut edge
    (:func:`rawadapt.noise.scenes.saturated_scene`); ``noise_reduction``: the camera's noise
    reduction (:func:`rawadapt.noise.pipeline.reduce_noise`); ``jpeg_fraction``: share of noisy
    images saved as camera JPEGs of quality drawn in ``jpeg_quality`` (inclusive), 4:2:2
    chroma for the DSLRs and 4:2:0 for the phones (the rest, and every clean image, as PNG).
    """

    saturated_fraction: float = 0.0
    noise_reduction: bool = False
    jpeg_fraction: float = 0.0
    jpeg_quality: tuple[int, int] = (90, 95)


#: in-camera processing per capture plan (sRGB builds; the RAW files never use it)
SRGB_CAMERA: dict[str, SrgbCamera] = {
    "camera": SrgbCamera(saturated_fraction=1 / 3, noise_reduction=True, jpeg_fraction=0.5),
}
#: SID/ELD-like low light of the DSLRs in ``v2``
V2_DSLR_ISOS = (200, 400, 800)
V2_DSLR_RATIOS = (100.0, 200.0, 300.0)
STAMP = "synth.json"
MANIFEST_COLUMNS = (
    "noisy",
    "clean",
    "sensor",
    "iso",
    "ratio",
    "scene",
    "split",
    "space",
    "cfa",
    "black_level",
    "white_level",
    "sample_id",
)
SPLITS = ("source", "target", "test")
ENV_SIZE = "RAWADAPT_SYNTH_SIZE"


@dataclass(frozen=True)
class SynthSize:
    """Counts and sizes per sensor. ``patch`` / ``test_patch`` are PACKED sizes (the mosaic and
    the sRGB images are twice as large); ``*_per_clean`` noisy images share one clean scene."""

    source: int
    target: int
    test: int
    patch: int
    test_patch: int
    source_per_clean: int = 2
    target_per_clean: int = 1
    test_per_clean: int = 2

    def count(self, split: str) -> int:
        return int(getattr(self, split))

    def per_clean(self, split: str) -> int:
        return int(getattr(self, f"{split}_per_clean"))

    def packed(self, split: str) -> int:
        return self.test_patch if split == "test" else self.patch


SIZES: dict[str, SynthSize] = {
    # 10 sensors x (64 source + 50 target + 16 test) = 1300 pairs; 128^2 packed (256^2 sRGB)
    # training crops, 192^2 packed (384^2 sRGB) test images.
    "full": SynthSize(source=64, target=50, test=16, patch=128, test_patch=192),
    # for tests: seconds
    "tiny": SynthSize(source=4, target=6, test=2, patch=32, test_patch=48),
}


def _size(size: str | None) -> tuple[str, SynthSize]:
    name = size or os.environ.get(ENV_SIZE) or "full"
    if name not in SIZES:
        raise ConfigError(f"unknown synth size {name!r}; expected one of {', '.join(SIZES)}")
    return name, SIZES[name]


def default_variant(space: str) -> str:
    """The capture plan of a space's built-in set: ``v2`` for RAW, ``camera`` for sRGB."""
    return "v2" if space == "raw" else "camera"


def dataset_name(space: str, variant: str | None = None) -> str:
    """``synth`` (RAW v2), ``synth-wide`` (RAW wide), ``synth-srgb`` (sRGB camera) or
    ``synth-srgb-<variant>`` (``synth-srgb-wide``, ``synth-srgb-v2``)."""
    variant = variant or default_variant(space)
    base = "synth" if space == "raw" else "synth-srgb"
    if variant == default_variant(space):
        return base
    return f"{base}-{variant}"


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ConfigError(f"unknown synth variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    return variant


def synth_root(space: str = "raw", *, size: str | None = None, seed: int = 0, variant: str | None = None) -> Path:
    """Cache folder of a synth build: ``cache_dir()/synth`` (``synth-wide``, ``synth-srgb``) for
    the default full build with seed 0, ``synth_<size>_seed<seed>`` (...) otherwise."""
    name, _ = _size(size)
    base = dataset_name(space, variant)
    if name == "full" and int(seed) == 0:
        return cache_dir() / base
    return cache_dir() / f"{base}_{name}_seed{int(seed)}"


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


@dataclass
class _Pair:
    sample_id: str
    sensor: str
    split: str
    scene: str
    iso: int
    ratio: float
    clean_planes: np.ndarray  # (4, h, w) float in [0, 1]
    noisy_dn: np.ndarray  # (4, h, w) uint16, short exposure
    meta: dict[str, Any]
    first_of_scene: bool


def _stratified_isos(lo: float, hi: float, n: int, rng: np.random.Generator) -> list[int]:

    u = (rng.permutation(n) + rng.random(n)) / max(n, 1)
    return [round_iso(math.exp(math.log(lo) + float(v) * (math.log(hi) - math.log(lo)))) for v in u]


def _balanced(values: Sequence[float], n: int, rng: np.random.Generator) -> list[float]:
    reps = [values[i % len(values)] for i in range(n)]
    return [float(reps[i]) for i in rng.permutation(n)]


def capture_plan(prof: Any, n: int, variant: str, rng: np.random.Generator) -> tuple[list[int], list[float]]:
    """The ISO and exposure ratio of each of ``n`` pairs of a sensor (see the module docstring).

    ``wide`` draws exactly as the first benchmark did (same random stream), so ``synth-wide``
    reproduces its files. ``camera`` (normal light) draws every sensor like ``v2`` draws the
    phones: ISOs stratified log-uniformly over the sensor's range, ratio x1.
    """
    if variant == "v2" and prof.kind == "eld":
        combos = [(iso, r) for iso in V2_DSLR_ISOS for r in V2_DSLR_RATIOS]
        order: list[tuple[int, float]] = []
        while len(order) < n:  # every combination once per round, each round shuffled
            order += [combos[i] for i in rng.permutation(len(combos))]
        return [int(i) for i, _ in order[:n]], [float(r) for _, r in order[:n]]
    isos = _stratified_isos(prof.iso_range[0], prof.iso_range[1], n, rng)
    ratios = [1.0] * n if variant in ("v2", "camera") else _balanced(prof.ratios, n, rng)
    return isos, ratios


def generate_pairs(profile_name: str, split: str, spec: SynthSize, seed: int, variant: str = "wide") -> Iterator[_Pair]:
    """The pairs of one sensor and split, deterministic in ``(seed, sensor, split, variant)``."""
    import torch

    prof = load_profile(profile_name)
    n, per = spec.count(split), spec.per_clean(split)
    size = spec.packed(split)
    plan = np.random.default_rng(derive_seed(seed, "synth-plan", prof.name, split))
    isos, ratios = capture_plan(prof, n, _check_variant(variant), plan)
    white = float(prof.white_level)
    scene_split = "test" if split == "test" else "train"
    for j in range(math.ceil(n / per)):
        rng = np.random.default_rng(derive_seed(seed, "synth-scene", prof.name, split, j))
        sat = SRGB_CAMERA.get(variant, SrgbCamera()).saturated_fraction
        scene = sample_scene(2 * size, rng, split=scene_split, saturated_fraction=sat)
        planes, meta = unprocess(scene.image, prof, rng)
        scene_id = f"{prof.name}-{split}-s{j:03d}-{scene.source}"
        for r in range(per):
            i = j * per + r
            if i >= n:
                break
            params = sample_noise_params(prof, iso=isos[i], rng=rng)
            gen = torch.Generator().manual_seed(derive_seed(seed, "synth-noise", prof.name, split, i))
            dn = add_noise(
                planes, prof, params, ratio=ratios[i], generator=gen, quantization="none", clip=False, output="dn"
            )
            noisy = np.clip(np.rint(dn), 0, white).astype(np.uint16)  # the ADC rounds
            yield _Pair(
                sample_id=f"{prof.name}-{split}-{i:03d}",
                sensor=prof.name,
                split=split,
                scene=scene_id,
                iso=int(isos[i]),
                ratio=float(ratios[i]),
                clean_planes=planes,
                noisy_dn=noisy,
                meta={**meta, "K": params.K},
                first_of_scene=(r == 0),
            )


def _profile_hash(names: Sequence[str]) -> str:

    h = hashlib.sha256()
    for n in names:
        d = load_profile(n).to_dict()
        d.pop("aliases", None)  # other names of the camera: they change no pixel
        h.update(json.dumps(d, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _stamp_params(space: str, size_name: str, seed: int, sensors: Sequence[str], variant: str) -> dict[str, Any]:
    srgb = {"srgb_pipeline": SRGB_PIPELINE} if space == "srgb" else {}  # RAW stamps unchanged
    return {
        **srgb,
        "name": dataset_name(space, variant),
        "version": SYNTH_VERSION,
        "variant": variant,
        "space": space,
        "size": size_name,
        "seed": int(seed),
        "sensors": list(sensors),
        "spec": asdict(SIZES[size_name]),
        "profiles": _profile_hash(sensors),
    }


def read_stamp(root: Path) -> dict[str, Any] | None:
    """The build stamp of a synth folder, or None if missing/unreadable."""
    try:
        return json.loads((Path(root) / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_complete(root: Path, params: dict[str, Any]) -> bool:
    """True when ``root`` holds a finished build made with exactly ``params``."""
    stamp = read_stamp(root)
    if not stamp or not (Path(root) / "manifest.csv").is_file():
        return False
    return all(stamp.get(k) == v for k, v in params.items())


def _save_png(path: Path, rgb01: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(to_uint8_hwc(rgb01)).save(path, compress_level=1)


@dataclass
class SrgbImages:
    """What an sRGB build stores for one pair: ``clean`` and ``noisy`` as decoded float
    ``(3, H, W)`` in [0, 1] (8-bit values), and the noisy image's JPEG file when it is one."""

    clean: np.ndarray
    noisy: np.ndarray
    jpeg: bytes | None = None


def srgb_pair(pair: _Pair, prof: Any, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """The clean and noisy sRGB images (float, before 8-bit storage and JPEG) of a RAW pair.

    The camera's black clamp subtracts the black level AND the sensor's colour bias (cameras
    measure their black on optical-black pixels), keeping negative values; then both images go
    through :func:`rawadapt.noise.pipeline.render_camera_pair` with the pair's white balance,
    colour matrix and exposure gain (noise reduction per :data:`SRGB_CAMERA`).
    """
    span = prof.span.astype(np.float32)[:, None, None]
    black = np.asarray(prof.black_level, dtype=np.float32)[:, None, None]
    bias = np.asarray(_bias_at(prof, float(pair.meta["K"])), dtype=np.float32)[:, None, None]
    noisy01 = (pair.noisy_dn.astype(np.float32) - black - bias) / span * np.float32(pair.ratio)
    cam = SRGB_CAMERA.get(variant, SrgbCamera())
    clean, noisy, _ = render_camera_pair(
        pair.clean_planes,
        noisy01,
        prof.cfa,
        wb=pair.meta["wb"],
        ccm=pair.meta["ccm"],
        gain=1.0 / pair.meta["exposure"],
        noise_reduction=cam.noise_reduction,
    )
    return clean, noisy


def jpeg_choice(pair: _Pair, prof: Any, variant: str, seed: int) -> tuple[int, int] | None:
    """``(quality, subsampling)`` when the pair's noisy image is a camera JPEG, else None.

    Decided per SCENE (all noisy images of one clean image alike, since the clean image carries
    the JPEG's chroma subsampling), quality per pair; deterministic in the seed and the ids."""
    cam = SRGB_CAMERA.get(variant, SrgbCamera())
    if cam.jpeg_fraction <= 0:
        return None
    if np.random.default_rng(derive_seed(seed, "synth-jpeg", pair.scene)).random() >= cam.jpeg_fraction:
        return None
    rng = np.random.default_rng(derive_seed(seed, "synth-jpeg-quality", pair.sample_id))
    quality = int(rng.integers(cam.jpeg_quality[0], cam.jpeg_quality[1] + 1))
    return quality, (1 if prof.kind == "eld" else 2)


def srgb_images(pair: _Pair, prof: Any, variant: str, seed: int) -> SrgbImages:
    """The stored sRGB images of a pair (:func:`srgb_pair`, then 8 bits and, for camera JPEGs,
    :func:`rawadapt.noise.pipeline.jpeg_roundtrip`).

    A JPEG's chroma subsampling is part of what the camera outputs for the noise-free signal
    too: the clean image of a JPEG scene gets the same subsampling through a quality-100
    round trip (near lossless: no quantisation to speak of) and is stored as PNG; the noisy one
    is the camera JPEG itself (quality 90-95: its quantisation error is part of the noise).
    """
    clean, noisy = srgb_pair(pair, prof, variant)
    jpeg = jpeg_choice(pair, prof, variant, seed)
    if jpeg is None:
        return SrgbImages(_quantise(clean), _quantise(noisy))
    decoded, data = jpeg_roundtrip(noisy, jpeg[0], subsampling=jpeg[1])
    return SrgbImages(jpeg_roundtrip(clean, 100, subsampling=jpeg[1])[0], decoded, data)


def _quantise(rgb01: np.ndarray) -> np.ndarray:
    return to_uint8_hwc(rgb01).transpose(2, 0, 1).astype(np.float32) / 255.0


def _write_build(
    tmp: Path, space: str, spec: SynthSize, seed: int, sensors: Sequence[str], progress: bool, variant: str
) -> dict[str, Any]:
    from tqdm import tqdm

    total = len(sensors) * sum(spec.count(s) for s in SPLITS)
    rows: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = {}
    nbytes = 0
    bar = tqdm(
        total=total,
        desc=f"building {dataset_name(space, variant)}",
        unit="pair",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        for name in sensors:
            prof = load_profile(name)
            black = " ".join(f"{b:g}" for b in prof.black_level)
            span = prof.span.astype(np.float32)[:, None, None]
            blk = np.asarray(prof.black_level, dtype=np.float32)[:, None, None]
            counts[prof.name] = {}
            for split in SPLITS:
                folder = tmp / space / prof.name / split
                folder.mkdir(parents=True, exist_ok=True)
                clean_rel = ""
                for pair in generate_pairs(prof.name, split, spec, seed, variant):
                    rel = Path(space) / prof.name / split
                    if space == "raw":
                        if pair.first_of_scene:
                            clean_rel = (rel / f"{pair.scene}_clean.npy").as_posix()
                            clean_dn = np.clip(np.rint(pair.clean_planes * span + blk), 0, prof.white_level)
                            np.save(tmp / clean_rel, clean_dn.astype(np.uint16))
                            nbytes += (tmp / clean_rel).stat().st_size
                        noisy_rel = (rel / f"{pair.sample_id}_noisy.npy").as_posix()
                        np.save(tmp / noisy_rel, pair.noisy_dn)
                    else:
                        img = srgb_images(pair, prof, variant, seed)
                        if pair.first_of_scene:
                            clean_rel = (rel / f"{pair.scene}_clean.png").as_posix()
                            _save_png(tmp / clean_rel, img.clean)
                            nbytes += (tmp / clean_rel).stat().st_size
                        noisy_rel = (rel / f"{pair.sample_id}_noisy.{'png' if img.jpeg is None else 'jpg'}").as_posix()
                        if img.jpeg is None:
                            _save_png(tmp / noisy_rel, img.noisy)
                        else:
                            (tmp / noisy_rel).write_bytes(img.jpeg)
                    nbytes += (tmp / noisy_rel).stat().st_size
                    raw = space == "raw"
                    rows.append(
                        {
                            "noisy": noisy_rel,
                            "clean": clean_rel,
                            "sensor": prof.name,
                            "iso": pair.iso,
                            "ratio": f"{pair.ratio:g}" if raw else "1",
                            "scene": pair.scene,
                            "split": split,
                            "space": space,
                            "cfa": prof.cfa if raw else "",
                            "black_level": black if raw else "",
                            "white_level": f"{prof.white_level:g}" if raw else "",
                            "sample_id": pair.sample_id,
                        }
                    )
                    counts[prof.name][split] = counts[prof.name].get(split, 0) + 1
                    bar.update(1)
    finally:
        bar.close()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(MANIFEST_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (tmp / "manifest.csv").write_text(buf.getvalue(), encoding="utf-8")
    return {"counts": counts, "pairs": len(rows), "bytes": nbytes}


def build_synth(
    out_dir: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    size: str | None = None,
    progress: bool = True,
    space: str = "raw",
    force: bool = False,
    sensors: Sequence[str] | None = None,
    variant: str | None = None,
) -> Path:
    """Build (or reuse) the ``synth`` benchmark and return its folder.

    Parameters
    ----------
    out_dir
        Destination folder; default :func:`synth_root` in the cache folder.
    seed
        Master seed (everything is derived from it).
    size
        ``"full"`` (default, or ``$RAWADAPT_SYNTH_SIZE``) or ``"tiny"`` (for tests).
    progress
        Show a progress bar on stderr.
    space
        ``"raw"`` (``synth``) or ``"srgb"`` (``synth-srgb``).
    force
        Rebuild even if a complete build with the same parameters exists.
    sensors
        Profile names (default: the ten built-in ones).
    variant
        Capture plan: ``"v2"`` (RAW default), ``"wide"`` (``synth-wide``) or ``"camera"`` (sRGB
        default); see the module docstring.

    Returns
    -------
    The dataset folder (holding ``manifest.csv``).
    """

    if space not in ("raw", "srgb"):
        raise ConfigError(f"space must be 'raw' or 'srgb', got {space!r}")
    size_name, spec = _size(size)
    variant = _check_variant(variant or default_variant(space))
    names = list(sensors) if sensors is not None else list(BUILTIN_ORDER)
    root = (
        Path(out_dir).expanduser()
        if out_dir is not None
        else synth_root(space, size=size_name, seed=seed, variant=variant)
    )
    params = _stamp_params(space, size_name, seed, names, variant)
    if not force and is_complete(root, params):
        return root
    if root.exists() and not root.is_dir():
        raise DatasetError("synth destination exists and is not a folder", root)
    if root.is_dir() and any(root.iterdir()) and read_stamp(root) is None:
        raise DatasetError(
            "synth destination is a non-empty folder that is not a synth build; choose another --out", root
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    t0 = time.perf_counter()
    try:
        with _torch_threads(1):
            info = _write_build(tmp, space, spec, seed, names, progress, variant)
        stamp = {**params, **info, "build_seconds": round(time.perf_counter() - t0, 2)}
        (tmp / STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        _install(tmp, root, params)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads: the build works on many small images, where
    thread hand-offs cost more than they give (and stall badly on a busy machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _install(tmp: Path, root: Path, params: dict[str, Any]) -> None:
    """Rename the finished ``tmp`` build onto ``root`` (replacing an older build)."""
    old = None
    if root.exists():
        if is_complete(root, params):  # built concurrently by another process: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
            return
        old = root.parent / f".{root.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(root, old)
    try:
        os.replace(tmp, root)
    except OSError:
        if is_complete(root, params):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _open(
    space: str,
    *,
    seed: int = 0,
    size: str | None = None,
    root: str | os.PathLike[str] | None = None,
    progress: bool = True,
    rebuild: bool = False,
    variant: str | None = None,
    **options: Any,
) -> Any:

    path = build_synth(root, seed=seed, size=size, progress=progress, space=space, force=rebuild, variant=variant)
    name = dataset_name(space, variant)
    options.pop("name", None)
    with contextlib.suppress(KeyError):
        options.pop("space")
    return open_manifest(path, name=name, **options)


def open_synth(**opts: Any) -> Any:
    """The built-in RAW benchmark as a :class:`~rawadapt.data.base.PairDataset` (built in the
    cache folder on first use).

    Keyword options: ``seed`` (0), ``size`` (``"full"``; ``$RAWADAPT_SYNTH_SIZE`` sets the default,
    e.g. ``tiny`` for fast test suites), ``root`` (another folder), ``progress``, ``rebuild``; the
    rest goes to the manifest adapter (``clip``, ``cache``...).
    """
    return _open("raw", **opts)


def open_synth_wide(**opts: Any) -> Any:
    """``synth-wide``: the RAW benchmark with the first benchmark's wide capture plan (near-clean
    and very noisy images within one sensor); see :func:`open_synth`."""
    return _open("raw", variant="wide", **opts)


def open_synth_srgb(**opts: Any) -> Any:
    """The built-in sRGB benchmark (same scenes through the camera pipeline); see :func:`open_synth`."""
    return _open("srgb", **opts)


def dataset_summary(root: Path) -> dict[str, Any]:
    """Counts, sizes and timings of a finished build (from its stamp), JSON-friendly."""
    stamp = read_stamp(root) or {}
    return {
        "root": str(root),
        **{
            k: stamp.get(k)
            for k in ("name", "variant", "space", "size", "seed", "pairs", "bytes", "build_seconds", "counts")
        },
    }
