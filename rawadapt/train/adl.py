"""ADL stage 2, source adaptive learning (ADL paper §3.1.2, Algorithm 1 lines 2-13).

Per iteration t:

1. choose a source domain S_i (:class:`~rawadapt.train.adl_parts.DomainChooser`) and draw a
   batch S' from it;
2. draw the dynamic validation set V' ⊂ T_adp of size k(t) (20 % → 50 %), uniformly or spanning
   diverse ISOs when |T_adp| < 10; T_train = T_adp − V'; merge S' += patches of T_train;
3. snapshot θ_{t−1} in place, take one optimizer step on L1(S') → θ';
4. Eval(V', θ') = mean per-image PSNR of θ' on V' (under ``torch.inference_mode``);
5. accept iff Eval(V', θ') > mean(Q) (``criterion="queue"``, the paper's eq. 2, Q seeded with
   Eval(V'_1, θ0)), or iff it beats θ_{t−1} on the SAME V' by ``paired_margin`` dB
   (``criterion="paired"``, beyond the paper); ``criterion="none"`` accepts everything
   (the "without ADL" ablation); on reject restore θ_{t−1} (and the optimizer state).

Validation runs on a fixed crop of each target image (``val_crop`` packed pixels, centred) so
that an ADL iteration costs little more than a plain fine-tuning iteration (the ratio is
measured by bench/bench_adl_cost.py, BENCHMARKS.md §8). ``val_crop=None`` validates on full images.

Every iteration is appended to ``adl_log.csv`` (step, domain, source sample ids, |V'|, PSNR,
threshold, accepted...), from which ``valuation.json`` and the plots are derived
(:mod:`rawadapt.train.valuation`).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rawadapt.data.patches import Batch, PatchSampler
from rawadapt.data.sample import Sample
from rawadapt.errors import ConfigError, NonFiniteError
from rawadapt.io.bayer import unify_crop
from rawadapt.models.base import Denoiser
from rawadapt.train.adl_parts import (
    DomainChooser,
    PSNRQueue,
    Snapshot,
    choose_validation,
    validation_size,
)
from rawadapt.train.step import l1_loss, sample_line
from rawadapt.utils.atomic import atomic_path

ADL_LOG_FIELDS = [
    "step",
    "domain",
    "k",
    "val_ids",
    "loss",
    "psnr",
    "threshold",
    "baseline_psnr",
    "delta",
    "accepted",
    "source_ids",
]


class Comm:
    """Collective operations for data-parallel ADL; the single-process default is a no-op.

    :class:`rawadapt.train.distributed.TorchComm` implements it with ``torch.distributed``.
    """

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def average_gradients(self, model: torch.nn.Module) -> None:
        return None


@dataclass
class ValidationSet:
    """Fixed validation crops of the target pool, stacked once (noisy, clean, metadata)."""

    noisy: list[torch.Tensor]
    clean: list[torch.Tensor]
    sensors: list[str]
    isos: list[float | None]
    ids: list[str]
    noise: list[tuple[float, float] | None] | None = None

    @staticmethod
    def from_samples(samples: Sequence[Sample], crop: int | None) -> ValidationSet:

        noisy, clean = [], []
        for s in samples:
            if s.clean is None:
                raise ConfigError(f"target sample {s.sample_id} has no clean image; ADL needs pairs", s.path)
            n, c = s.noisy, s.clean
            unify = s.space == "raw" and s.cfa is not None
            if crop is not None:
                # one more packed pixel where unification will drop one (RAW models see RGGB phase)
                ch, cw = min(crop + unify, s.height), min(crop + unify, s.width)
                top, left = (s.height - ch) // 2, (s.width - cw) // 2
                n, c = n[:, top : top + ch, left : left + cw], c[:, top : top + ch, left : left + cw]
            if unify:
                assert s.cfa is not None
                n, c = unify_crop(n, s.cfa), unify_crop(c, s.cfa)
                if crop is not None:
                    n, c = n[:, :crop, :crop], c[:, :crop, :crop]
            noisy.append(torch.from_numpy(np.ascontiguousarray(n, dtype=np.float32)))
            clean.append(torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32)))

        return ValidationSet(
            noisy,
            clean,
            [s.sensor for s in samples],
            [s.effective_iso for s in samples],
            [s.sample_id for s in samples],
            [sample_line(s) for s in samples],
        )

    def __len__(self) -> int:
        return len(self.ids)


@torch.inference_mode()
def validation_psnrs(model: Denoiser, vs: ValidationSet, indices: Sequence[int], device: Any = "cpu") -> list[float]:
    """Per-image PSNR (dB, prediction clipped to [0, 1]) of ``model`` on crops ``indices``.

    Same-sized crops go through the network as one batch.
    """
    was_training = model.training
    model.eval()
    out: dict[int, float] = {}
    groups: dict[tuple[int, ...], list[int]] = {}
    for i in indices:
        groups.setdefault(tuple(vs.noisy[i].shape), []).append(i)
    for idx in groups.values():
        x = torch.stack([vs.noisy[i] for i in idx]).to(device)
        y = torch.stack([vs.clean[i] for i in idx]).to(device)
        sensor = model.sensor_ids([vs.sensors[i] for i in idx], device=device) if model.uses_metadata else None
        iso = (
            torch.tensor(
                [math.nan if (v := vs.isos[i]) is None else float(v) for i in idx], dtype=torch.float32, device=device
            )
            if model.uses_metadata
            else None
        )
        extra = {}
        if getattr(model, "uses_noise", False) and vs.noise is not None:
            extra["noise"] = torch.tensor(
                [list(vs.noise[i] or (math.nan, math.nan)) for i in idx], dtype=torch.float32, device=device
            )
        pred = model(x, sensor, iso, **extra).clamp_(0.0, 1.0)
        mse = (pred - y).pow(2).flatten(1).mean(1).double()
        psnr = (10.0 * torch.log10(1.0 / mse.clamp_min(1e-20))).tolist()
        out.update(zip(idx, psnr))
    if was_training:
        model.train()
    return [out[i] for i in indices]


def noisy_psnrs(vs: ValidationSet) -> list[float]:
    """Per-image PSNR (dB) of the NOISY validation crops against their clean ones."""
    out = []
    for n, c in zip(vs.noisy, vs.clean):
        mse = float((n.clamp(0.0, 1.0).double() - c.double()).pow(2).mean())
        out.append(10.0 * math.log10(1.0 / max(mse, 1e-20)))
    return out


class AdaptiveLearning:
    """Runs ADL's source adaptive learning one iteration at a time.

    Parameters
    ----------
    model, optimizer
        The network (after target pretraining, θ0) and its optimizer.
    sources
        One patch sampler per source domain (name → sampler).
    target_pool
        T_adp, the target pairs.
    target_sampler
        Patch sampler over ``target_pool`` (T_train patches are drawn from it by index).
    total_iters
        Number of iterations T of this stage (the V' schedule spans it).
    cfg
        An :class:`~rawadapt.train.config.ADLConfig`-like object (attributes documented there).
    seed
        Seed of the shared decisions (domain choice, V'); identical on every rank.
    log_path
        ``adl_log.csv`` (appended; only rank 0 writes), or None.
    comm
        Collectives for data-parallel runs.
    """

    def __init__(
        self,
        model: Denoiser,
        optimizer: torch.optim.Optimizer,
        *,
        sources: dict[str, PatchSampler],
        target_pool: Sequence[Sample],
        target_sampler: PatchSampler,
        total_iters: int,
        cfg: Any,
        seed: int,
        device: Any = "cpu",
        log_path: str | os.PathLike[str] | None = None,
        comm: Comm | None = None,
        scheduler_step: Callable[[], None] | None = None,
    ) -> None:
        self.model, self.optimizer = model, optimizer
        self.sources = dict(sources)
        self.pool = list(target_pool)
        self.target_sampler = target_sampler
        self.total = int(total_iters)
        self.cfg = cfg
        self.device = device
        self.comm = comm or Comm()
        self.scheduler_step = scheduler_step
        self.log_path = Path(log_path) if log_path is not None else None
        n = len(self.pool)
        if n < 2:
            raise ConfigError(f"ADL needs at least 2 target pairs, got {n}")
        self.val = ValidationSet.from_samples(self.pool, cfg.val_crop)
        self.isos = [s.effective_iso for s in self.pool]  # system gain ∝ ISO x ratio
        diverse = cfg.diverse_iso
        self.diverse_iso = (n < cfg.diverse_iso_below) if diverse == "auto" else bool(diverse)
        self.queue = PSNRQueue(cfg.queue_size)
        self.chooser = DomainChooser(
            sorted(self.sources), mode=cfg.domain_sampling, explore=cfg.explore, temperature=cfg.temperature
        )
        self.snapshot = Snapshot(model, optimizer, with_optimizer=cfg.restore_optimizer)
        self.rng = np.random.default_rng(seed)  # shared decisions: same stream on every rank
        self.step_index = 0
        self._fixed_val: list[int] | None = None
        # paired criterion: per-image PSNR of the current θ, valid until θ changes
        self._cache: dict[int, float] = {}
        # relative queue criterion: per-image PSNR of θ0 (the model entering the stage)
        self._reference: list[float] | None = None
        self.accepted_total = 0

    # ------------------------------------------------------------------ decisions
    def _validation_indices(self, t: int) -> list[int]:
        n = len(self.pool)
        if self.cfg.validation == "fixed":
            if self._fixed_val is None:
                k = validation_size(
                    0, self.total, n, start=self.cfg.val_start, end=self.cfg.val_start, schedule="fixed"
                )
                self._fixed_val = choose_validation(self.rng, self.isos, k, diverse_iso=self.diverse_iso)
            return self._fixed_val
        k = validation_size(
            t, self.total, n, start=self.cfg.val_start, end=self.cfg.val_end, schedule=self.cfg.val_schedule
        )
        return choose_validation(self.rng, self.isos, k, diverse_iso=self.diverse_iso)

    def _eval(self, indices: Sequence[int]) -> tuple[float, list[float]]:
        """Mean PSNR over ``indices`` with the work sharded over ranks (sums all-reduced)."""
        mine = list(indices)[self.comm.rank :: self.comm.world_size]
        values = validation_psnrs(self.model, self.val, mine, self.device) if mine else []
        packed = torch.tensor([sum(values), float(len(values))], dtype=torch.float64)
        total = self.comm.all_reduce_sum(packed)
        return float(total[0] / total[1]), values

    def _eval_cached(self, indices: Sequence[int]) -> float:
        """Mean PSNR of the CURRENT θ on ``indices`` using the per-image cache where valid.

        Single-process only (the cache is per image); data-parallel runs evaluate directly.
        """
        if self.comm.world_size > 1:
            return self._eval(indices)[0]
        missing = [i for i in indices if i not in self._cache]
        if missing:
            self._cache.update(zip(missing, validation_psnrs(self.model, self.val, missing, self.device)))
        return float(np.mean([self._cache[i] for i in indices]))

    @property
    def _relative(self) -> bool:
        cfg = self.cfg
        return cfg.criterion == "queue" and bool(getattr(cfg, "relative", False) or cfg.gain_over_noisy)

    def _reference_mean(self, indices: Sequence[int]) -> float:
        """Mean reference PSNR on ``indices`` (θ0's, or the noisy input's with
        ``gain_over_noisy``), else 0."""
        if self._reference is None:
            return 0.0
        return float(np.mean([self._reference[i] for i in indices]))

    def initialise(self) -> None:
        """Seed Q with Eval(V', θ0) on an initial V' (Algorithm 1's start of stage 2)."""
        if self._relative and self._reference is None:
            if self.cfg.gain_over_noisy:
                self._reference = noisy_psnrs(self.val)
            else:
                # every rank holds the same θ0: each computes all images itself (no collective needed)
                self._reference = validation_psnrs(self.model, self.val, range(len(self.val)), self.device)
        if len(self.queue) == 0 and self.cfg.criterion == "queue":
            v0 = self._validation_indices(0)
            self.queue.push(self._eval(v0)[0] - self._reference_mean(v0))

    # ------------------------------------------------------------------ one iteration
    def _merged_batch(self, domain: str, train_idx: Sequence[int]) -> Batch:
        src = self.sources[domain].draw()
        k = min(len(train_idx), self.cfg.target_batch)
        if k == 0:
            return src
        rng = self.target_sampler.rng
        chosen = rng.choice(np.asarray(train_idx), size=k, replace=False).tolist()
        tgt = self.target_sampler.draw(indices=chosen)
        tgt.domains = ["target"] * len(tgt)
        return Batch.cat([src, tgt])

    def _target_step(self, train_idx: Sequence[int]) -> None:
        """One plain optimiser step on T_train patches (``on_reject="target-step"``)."""
        rng = self.target_sampler.rng
        chosen = rng.choice(np.asarray(train_idx), size=self.target_sampler.batch, replace=True).tolist()
        self._optimizer_step(self.target_sampler.draw(indices=chosen))

    def _optimizer_step(self, batch: Any, check: Any = None) -> float:
        """Forward, L1, backward, gradient averaging and clipping, one optimiser step; returns
        the loss. ``check(loss_value)`` runs before the backward pass (the candidate step's
        finiteness check)."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = l1_loss(self.model, batch, self.device)
        value = float(loss.detach())
        if check is not None:
            check(value)
        loss.backward()
        self.comm.average_gradients(self.model)
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return value

    def step(self) -> dict[str, Any]:
        """One ADL iteration; returns the logged values."""
        if self.step_index == 0:
            self.truncate_log()  # a fresh stage (not a resume) starts a fresh log
            self.initialise()
        t = self.step_index
        domain = self.chooser.choose(self.rng)
        val_idx = self._validation_indices(t)
        train_idx = [i for i in range(len(self.pool)) if i not in set(val_idx)]
        batch = self._merged_batch(domain, train_idx)

        paired = self.cfg.criterion == "paired"
        baseline = self._eval_cached(val_idx) if paired else math.nan

        self.snapshot.save()

        def finite(value: float) -> None:
            if not math.isfinite(value):
                raise NonFiniteError(f"ADL loss became {value} at step {t} (domain {domain}); lower the learning rate")

        loss_value = self._optimizer_step(batch, finite)

        values: list[float]
        if self.cfg.criterion == "none":
            psnr, values, threshold, accepted = math.nan, [], math.nan, True
        else:
            psnr, values = self._eval(val_idx)
            if paired:
                threshold = baseline + self.cfg.paired_margin
                accepted = psnr > threshold
            else:
                # relative: the queue holds gains over θ0; the threshold is logged in absolute
                # PSNR on this V' so that accepted == (psnr > threshold) in both forms
                reference = self._reference_mean(val_idx)
                threshold = self.queue.mean() + reference
                accepted = self.queue.offer(psnr - reference)
                if self._relative:
                    baseline = reference
        if accepted:
            self.accepted_total += 1
            if paired:
                # θ changed: only V' images have a valid cached PSNR (θ' was just evaluated there)
                self._cache = dict(zip(list(val_idx)[self.comm.rank :: self.comm.world_size], values))
        else:
            self.snapshot.restore()
            if self.cfg.on_reject == "target-step" and train_idx:
                self._target_step(train_idx)
                self._cache = {}  # θ moved: no cached PSNR is valid any more
        if self.scheduler_step is not None:
            self.scheduler_step()
        self.chooser.record(domain, accepted)
        self.step_index += 1

        row = {
            "step": t,
            "domain": domain,
            "k": len(val_idx),
            "val_ids": ";".join(self.val.ids[i] for i in val_idx),
            "loss": loss_value,
            "psnr": psnr,
            "threshold": threshold,
            "baseline_psnr": baseline,
            "delta": (psnr - baseline) if paired else (psnr - threshold),  # > 0 iff accepted
            "accepted": int(accepted),
            "source_ids": ";".join(i for i, d in zip(batch.sample_ids, batch.domains) if d != "target"),
        }
        self._log(row)
        return {
            "loss": loss_value,
            "val_psnr": psnr,
            "accepted": float(accepted),
            "accept_rate": self.accepted_total / self.step_index,
            "domain": domain,
        }

    # ------------------------------------------------------------------ log and state
    def _log(self, row: dict[str, Any]) -> None:
        if self.log_path is None or not self.comm.is_main:
            return
        new = not self.log_path.exists() or self.log_path.stat().st_size == 0
        with open(self.log_path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=ADL_LOG_FIELDS)
            if new:
                w.writeheader()
            w.writerow(row)

    def truncate_log(self) -> None:
        """Drop log rows after ``step_index`` (rows written after the last checkpoint)."""
        if self.log_path is None or not self.comm.is_main or not self.log_path.exists():
            return
        with open(self.log_path, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["step"]) < self.step_index]

        with atomic_path(self.log_path) as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=ADL_LOG_FIELDS)
                w.writeheader()
                w.writerows(rows)

    def state_dict(self) -> dict[str, Any]:
        return {
            "step_index": self.step_index,
            "queue": self.queue.state_dict(),
            "chooser": self.chooser.state_dict(),
            "rng": _rng_state_to_json(self.rng),
            "fixed_val": self._fixed_val,
            "accepted_total": self.accepted_total,
            "reference": self._reference,
            "cache": {str(k): v for k, v in self._cache.items()},
            "sources": {d: _rng_state_to_json(s.rng) for d, s in self.sources.items()},
            "target_sampler": _rng_state_to_json(self.target_sampler.rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_index = int(state["step_index"])
        self.queue.load_state_dict(state["queue"])
        self.chooser.load_state_dict(state["chooser"])
        _rng_state_from_json(self.rng, state["rng"])
        self._fixed_val = state.get("fixed_val")
        ref = state.get("reference")
        self._reference = None if ref is None else [float(v) for v in ref]
        self.accepted_total = int(state.get("accepted_total", 0))
        self._cache = {int(k): float(v) for k, v in state.get("cache", {}).items()}
        for d, st in state.get("sources", {}).items():
            if d in self.sources:
                _rng_state_from_json(self.sources[d].rng, st)
        if "target_sampler" in state:
            _rng_state_from_json(self.target_sampler.rng, state["target_sampler"])
        self.truncate_log()


def _rng_state_to_json(rng: np.random.Generator) -> str:
    import json

    return json.dumps(rng.bit_generator.state)


def _rng_state_from_json(rng: np.random.Generator, text: str) -> None:
    import json

    rng.bit_generator.state = json.loads(text)
