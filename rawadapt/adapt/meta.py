"""Meta-learned initialisation baseline of LAN's Table 1 (LAN paper, "meta-learning").

A pretrained denoiser is meta-trained so that a FEW steps of per-image self-supervised
fine-tuning (the test-time procedure of :class:`~rawadapt.adapt.finetune.FineTuneAdapter`) work
well from it. Each task is one random noisy/clean patch of the pretraining data:

* inner loop: ``inner_steps`` Adam steps (fresh optimiser, lr ``inner_lr``) of the
  self-supervised loss on the NOISY patch only — exactly what happens at test time;
* outer update, two algorithms:

  - ``"fomaml"`` (first-order MAML, default): the supervised loss (L2, LAN's pretraining loss,
    or L1) of the ADAPTED network on the task's clean patch; its gradient at the adapted
    weights is applied to the initial weights (the first-order approximation drops the
    second derivatives through the inner loop);
  - ``"reptile"``: no clean data; the initial weights move towards the adapted ones, the
    difference ``theta - theta'`` serving as the gradient of the outer optimiser.

  Task gradients are averaged over ``tasks_per_batch`` tasks; the outer optimiser is Adam with
  lr ``outer_lr``.

The network stays in eval mode throughout (as at test time: BatchNorm uses running
statistics). The result is saved with :func:`rawadapt.models.checkpoint.save_model` and a
``"meta_init"`` entry in ``model.json`` recording these settings; ``rawadapt adapt --method meta``
and :func:`rawadapt.adapt.api.make_adapter` take the inner loss/lr from it unless told
otherwise.

With the default ``inner_lr = 5e-6`` (the fine-tuning rate of the authors' code) the inner loop
moves the weights very little and FOMAML is close to continued supervised training at the
adapted point; a larger ``inner_lr`` makes the meta-objective matter more (the same value must
then be used at test time, which the recorded settings ensure).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from rawadapt.adapt.common import (
    RequiresGradState,
    WeightSnapshot,
    freeze_all_but,
    model_device,
)
from rawadapt.adapt.losses import make_loss
from rawadapt.data.sample import Sample
from rawadapt.errors import ConfigError, NonFiniteError, ShapeError
from rawadapt.models.base import Denoiser
from rawadapt.models.checkpoint import META_NAME, WEIGHTS_NAME, load_model, resolve_model_files, save_model
from rawadapt.utils.atomic import write_json
from rawadapt.utils.guard import check_output_paths
from rawadapt.utils.log import logger
from rawadapt.utils.settings import Settings


class MetaConfig(Settings):
    """Settings of meta-training (see the module docstring).

    Attributes
    ----------
    algorithm
        ``"fomaml"`` or ``"reptile"``.
    loss
        Self-supervised inner loss (``"zsn2n"`` or ``"nbr2nbr"``).
    inner_steps
        Inner Adam steps per task (match the test-time iterations).
    inner_lr
        Inner Adam learning rate (the test-time fine-tuning lr).
    outer_lr
        Outer Adam learning rate.
    meta_iters
        Outer updates.
    tasks_per_batch
        Tasks (patches) averaged per outer update.
    patch
        Task patch side (pixels; packed pixels for RAW).
    outer_loss
        FOMAML's supervised loss: ``"l2"`` (LAN's pretraining loss) or ``"l1"``.
    seed
        Seeds the patch sampling and the inner losses.
    """

    algorithm: Literal["fomaml", "reptile"] = "fomaml"
    loss: str = "zsn2n"
    inner_steps: int = Field(default=5, ge=1)
    inner_lr: float = Field(default=5e-6, gt=0.0)
    outer_lr: float = Field(default=1e-5, gt=0.0)
    meta_iters: int = Field(default=200, ge=1)
    tasks_per_batch: int = Field(default=4, ge=1)
    patch: int = Field(default=64, ge=4)
    outer_loss: Literal["l2", "l1"] = "l2"
    seed: int = 0

    def validate(self) -> MetaConfig:  # type: ignore[override]
        """Checks beyond the field types (the loss name); returns self."""
        make_loss(self.loss)  # raises ConfigError for an unknown loss
        return self


def _draw_task(
    samples: Sequence[Sample], patch: int, rng: np.random.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    s = samples[int(rng.integers(len(samples)))]
    p = min(patch, s.height, s.width)
    p -= p % 2
    top = int(rng.integers(0, s.height - p + 1))
    left = int(rng.integers(0, s.width - p + 1))
    sl = (slice(None), slice(top, top + p), slice(left, left + p))
    noisy = torch.from_numpy(np.ascontiguousarray(s.noisy[sl], dtype=np.float32))[None].to(device)
    assert s.clean is not None
    clean = torch.from_numpy(np.ascontiguousarray(s.clean[sl], dtype=np.float32))[None].to(device)
    return noisy, clean


def meta_train(
    model: Denoiser,
    samples: Sequence[Sample],
    config: MetaConfig | None = None,
    *,
    callback: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Meta-train ``model`` in place on tasks drawn from ``samples``.

    Parameters
    ----------
    model
        Pretrained denoiser (modified in place: it becomes the meta-initialisation).
    samples
        Noisy/clean training pairs of the model's space (the pretraining data).
    config
        :class:`MetaConfig` (defaults if None).
    callback
        ``callback(iteration, outer_loss)`` after every outer update.

    Returns
    -------
    A log: ``{"outer_loss": [...], "inner_loss": [...], "seconds": s}`` (outer loss = mean
    supervised loss after adaptation for FOMAML, mean parameter displacement for Reptile).

    Raises
    ------
    ShapeError
        No samples, samples without clean images or of the wrong space.
    NonFiniteError
        A loss became NaN/Inf.
    ConfigError
        A noise-conditioned model (meta-training has no noise line to give it).
    """
    cfg = (config or MetaConfig()).validate()
    if not samples:
        raise ShapeError("meta-training needs at least one noisy/clean sample")
    for s in samples:
        if s.clean is None:
            raise ShapeError("meta-training samples need clean references", s.path)
        if s.noisy.shape[0] != model.in_channels:
            raise ShapeError(f"sample has {s.noisy.shape[0]} channels, the model expects {model.in_channels}", s.path)
    if getattr(model, "uses_noise", False):
        raise ConfigError(
            "meta-training cannot tell a noise-conditioned model each task's noise line; "
            "use a model without use_noise/ksigma"
        )
    device = model_device(model)
    rng = np.random.default_rng(cfg.seed)
    loss = make_loss(cfg.loss)
    params = list(model.parameters())
    state = RequiresGradState(model)
    freeze_all_but(model, params)  # all trainable, eval mode
    snapshot = WeightSnapshot(params)  # the current meta-initialisation
    outer_opt = torch.optim.Adam(params, lr=cfg.outer_lr)
    log: dict[str, Any] = {"outer_loss": [], "inner_loss": []}
    t0 = time.perf_counter()

    def f(x: torch.Tensor) -> torch.Tensor:
        return model(x)

    try:
        for it in range(cfg.meta_iters):
            snapshot.capture()
            meta_grads = [torch.zeros_like(p) for p in params]
            outer_vals, inner_vals = [], []
            for task in range(cfg.tasks_per_batch):
                snapshot.restore()
                noisy, clean = _draw_task(samples, cfg.patch, rng, device)
                loss.reset(cfg.seed * 1_000_003 + it * cfg.tasks_per_batch + task)
                inner_opt = torch.optim.Adam(params, lr=cfg.inner_lr)
                for step in range(cfg.inner_steps):
                    inner_opt.zero_grad(set_to_none=True)
                    li = loss(f, noisy, step, cfg.inner_steps)
                    if not torch.isfinite(li):
                        raise NonFiniteError(f"meta-training inner loss became {float(li)}; lower inner_lr")
                    li.backward()
                    inner_opt.step()
                    inner_vals.append(float(li.detach()))
                if cfg.algorithm == "fomaml":
                    for p in params:
                        p.grad = None
                    pred = model(noisy)
                    lo = F.mse_loss(pred, clean) if cfg.outer_loss == "l2" else F.l1_loss(pred, clean)
                    if not torch.isfinite(lo):
                        raise NonFiniteError(f"meta-training outer loss became {float(lo)}; lower outer_lr")
                    lo.backward()
                    for g, p in zip(meta_grads, params):
                        if p.grad is not None:
                            g.add_(p.grad)
                    outer_vals.append(float(lo.detach()))
                else:
                    with torch.no_grad():
                        disp = 0.0
                        for g, (live, saved) in zip(meta_grads, snapshot.pairs()):
                            d = saved - live
                            g.add_(d)
                            disp += float(d.pow(2).sum())
                    outer_vals.append(math.sqrt(disp))
            snapshot.restore()
            outer_opt.zero_grad(set_to_none=True)
            for g, p in zip(meta_grads, params):
                p.grad = g / cfg.tasks_per_batch
            outer_opt.step()
            value = float(np.mean(outer_vals))
            log["outer_loss"].append(value)
            log["inner_loss"].append(float(np.mean(inner_vals)))
            if callback is not None:
                callback(it, value)
    finally:
        for p in params:
            p.grad = None
        state.restore()
    log["seconds"] = time.perf_counter() - t0
    return log


def meta_pretrain(
    pretrained: str | Path,
    samples: Sequence[Sample],
    out_dir: str | Path,
    config: MetaConfig | None = None,
    *,
    progress: bool = False,
) -> Path:
    """Load a pretrained run, meta-train it and save the meta-initialised model in ``out_dir``.

    ``model.json`` gets ``"meta_init": {**config.model_dump(), "from": str(pretrained), "log": ...}``.
    Returns ``out_dir``.
    """

    cfg = (config or MetaConfig()).validate()
    out = Path(out_dir)
    check_output_paths([out / WEIGHTS_NAME, out / META_NAME, out / "meta_log.json"], resolve_model_files(pretrained))
    model, meta = load_model(pretrained)
    cb = None
    if progress:

        def cb(i: int, v: float) -> None:
            if (i + 1) % max(1, cfg.meta_iters // 10) == 0 or i == 0:
                logger.info(f"meta {cfg.algorithm}: iteration {i + 1}/{cfg.meta_iters} outer {v:.3g}")

    log = meta_train(model, samples, cfg, callback=cb)
    extra = {k: v for k, v in meta.items() if k in ("strategy",)}
    extra["meta_init"] = {**cfg.model_dump(), "from": str(pretrained), "seconds": log["seconds"]}
    save_model(out, model, extra=extra)
    write_json(out / "meta_log.json", log)
    return out


def meta_settings(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The ``meta_init`` entry of a ``model.json`` dict, or None for a plain pretrained model."""
    entry = meta.get("meta_init")
    return entry if isinstance(entry, dict) else None
