"""The primitives every training strategy shares: one L1 optimisation step and evaluation.

Kept tiny and dependency-free so the plain training loop, ADL and the baselines all call the
same code (a fine-tuning step and an ADL candidate step are the same function).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rawadapt.data.patches import Batch
from rawadapt.data.sample import Sample
from rawadapt.errors import NonFiniteError
from rawadapt.metrics import evaluate_pair
from rawadapt.models.base import Denoiser
from rawadapt.models.inference import denoise_image
from rawadapt.noise.conditioning import noise_tensor, sample_noise_line


def model_inputs(model: Denoiser, batch: Batch, device: Any = "cpu") -> tuple[torch.Tensor, Any, Any]:
    """``(x, sensor_ids, iso)`` for ``model(x, sensor_ids, iso)`` from a batch."""
    x = batch.noisy.to(device)
    if not model.uses_metadata:
        return x, None, None
    return x, model.sensor_ids(batch.sensor, device=device), batch.iso.to(device)


def model_kwargs(model: Denoiser, batch: Batch, device: Any = "cpu") -> dict[str, Any]:
    """Keyword inputs beyond ``(x, sensor, iso)``: ``noise`` for noise-conditioned models, each
    item's line from its sensor's profile at its ISO and exposure ratio
    (:func:`rawadapt.noise.conditioning.sample_noise_line`; NaN = unknown)."""
    if not getattr(model, "uses_noise", False):
        return {}

    if batch.space != "raw":
        return {"noise": noise_tensor([(math.nan, math.nan)] * len(batch), device=device)}
    ratios = batch.ratios().tolist()
    isos = batch.iso.tolist()
    lines = [
        sample_noise_line(s, (e / r) if math.isfinite(e) else None, r) for s, e, r in zip(batch.sensor, isos, ratios)
    ]
    return {"noise": noise_tensor(lines, device=device)}


def l1_loss(model: Denoiser, batch: Batch, device: Any = "cpu") -> torch.Tensor:
    """Mean absolute error between ``model(noisy)`` and ``clean`` (the papers' pixel-wise L1),
    computed in fp32 whatever precision the network ran in."""
    x, s, iso = model_inputs(model, batch, device)
    return (model(x, s, iso, **model_kwargs(model, batch, device)) - batch.clean.to(device)).abs().mean()


def train_step(
    model: Denoiser,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    *,
    device: Any = "cpu",
    grad_clip: float | None = None,
    comm: Any = None,
) -> float:
    """One optimisation step on the L1 loss; returns the loss.

    ``comm`` (data-parallel runs, :class:`rawadapt.train.adl.Comm`) averages the gradients over
    ranks between the backward pass and the update.

    Raises
    ------
    NonFiniteError
        The loss is NaN/Inf (the step is NOT applied; parameters are untouched).
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = l1_loss(model, batch, device)
    value = float(loss.detach())
    if not math.isfinite(value):
        raise NonFiniteError(
            f"training loss became {value}; lower the learning rate or check the data "
            f"(batch samples: {', '.join(batch.sample_ids[:4])})"
        )
    loss.backward()
    if comm is not None:
        comm.average_gradients(model)
    if grad_clip is not None and grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return value


@dataclass
class EvalResult:
    """Per-image metrics of a model on samples, and of the noisy input for reference."""

    sample_ids: list[str] = field(default_factory=list)
    sensors: list[str] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    psnr_noisy: list[float] = field(default_factory=list)
    ssim_noisy: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def m(v: list[float]) -> float:
            finite = [x for x in v if not math.isnan(x)]
            return float(np.mean(finite)) if finite else math.nan

        return {
            "n": len(self.psnr),
            "psnr": m(self.psnr),
            "ssim": m(self.ssim),
            "psnr_noisy": m(self.psnr_noisy),
            "ssim_noisy": m(self.ssim_noisy),
        }

    def per_sensor(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for sensor in sorted(set(self.sensors)):
            idx = [i for i, s in enumerate(self.sensors) if s == sensor]
            sub = EvalResult(
                [self.sample_ids[i] for i in idx],
                [sensor] * len(idx),
                [self.psnr[i] for i in idx],
                [self.ssim[i] for i in idx],
                [self.psnr_noisy[i] for i in idx],
                [self.ssim_noisy[i] for i in idx],
            )
            out[sensor] = sub.summary()
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "per_sensor": self.per_sensor(),
            "images": [
                {"sample_id": i, "sensor": s, "psnr": p, "ssim": q, "psnr_noisy": pn, "ssim_noisy": qn}
                for i, s, p, q, pn, qn in zip(
                    self.sample_ids, self.sensors, self.psnr, self.ssim, self.psnr_noisy, self.ssim_noisy
                )
            ],
        }


def sample_line(sample: Sample) -> tuple[float, float] | None:
    """The sample's noise line ``(a, b)`` from its sensor's profile (RAW), else None."""
    if sample.space != "raw":
        return None

    return sample_noise_line(sample.sensor, sample.iso, sample.ratio)


def evaluate(
    model: Denoiser, samples: Sequence[Sample], *, tile: int | None = None, with_ssim: bool = True, device: Any = "cpu"
) -> EvalResult:
    """Denoise every sample (whole image, or tiled) and compute per-image PSNR/SSIM (data range 1,
    prediction clipped to [0, 1]); also the noisy input's metrics."""

    res = EvalResult()
    for s in samples:
        if s.clean is None:
            continue
        pred = denoise_image(
            model,
            s.noisy,
            sensor=s.sensor,
            iso=s.effective_iso,
            cfa=s.cfa,
            tile=tile,
            device=device,
            noise=sample_line(s),
        )
        after = evaluate_pair(pred, s.clean, with_ssim=with_ssim)
        before = evaluate_pair(s.noisy, s.clean, with_ssim=with_ssim)
        res.sample_ids.append(s.sample_id)
        res.sensors.append(s.sensor)
        res.psnr.append(after["psnr"])
        res.ssim.append(after.get("ssim", math.nan))
        res.psnr_noisy.append(before["psnr"])
        res.ssim_noisy.append(before.get("ssim", math.nan))
    return res
