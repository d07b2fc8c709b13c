"""Training pairs synthesised on the fly: clean patches + a physics noise model.

Shared by the calibration-based baselines (``calib-ft``, ``calib-adl``: a Poisson-Gaussian
profile calibrated on the target pool, ADL paper §4.3 / Table 2(a)) and the LED-style baseline
(``led``: "virtual cameras" spanning the DSLR profile family, Jin et al. ICCV 2023).

* A **noise source** (:class:`NoiseSource`) draws the noise of one image: its
  :class:`~rawadapt.noise.model.NoiseParams`, exposure ratio and ISO, and optionally a
  per-batch "branch" (LED's virtual-camera index, -1 when unused). Its ``profile`` gives the
  levels (black/white, DN), the CFA and the label written into batches.
* :class:`SyntheticPatchSampler` is a :class:`~rawadapt.data.patches.PatchSampler` over
  CLEAN images whose ``draw`` returns batches whose noisy half is simulated with
  :func:`rawadapt.noise.model.add_noise` (ELD: clean → DN at the short exposure,
  shot, read, row, colour bias, quantisation, back to normalised units × ratio, clipped to
  [0, 1] like the data loaders). Every random draw (patch, noise parameters, the torch
  generator's seed) comes from the sampler's own NumPy generator, so its ``state_dict`` is the
  whole state: an interrupted run resumes with the very same synthetic batches.
* :class:`SyntheticStage` is a :class:`~rawadapt.train.stages.SupervisedStage` (L1, fresh
  AdamW and schedule) training on such batches; before each step it selects the batch's
  branch on models that have one (``model.set_branch``).

Clean content: :func:`clean_pool` takes the clean images of the real source domains and of the
target pool (only their clean halves: the sources' NOISE is never used by these methods). The
fixed-pattern noise of the simulator is off: a calibrated Poisson-Gaussian model does not know
it (the domain gap §4.3 of the ADL paper discusses), and LED's virtual cameras have none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import numpy as np

from rawadapt.data.patches import Batch, PatchSampler
from rawadapt.data.sample import Sample
from rawadapt.errors import ConfigError
from rawadapt.noise.model import add_noise, sample_noise_params
from rawadapt.train.stages import BaseStage, StepValues, SupervisedStage
from rawadapt.train.step import train_step
from rawadapt.utils.atomic import write_json

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.noise.model import NoiseParams
    from rawadapt.noise.profiles import Profile
    from rawadapt.train.config import OptimConfig
    from rawadapt.train.context import TrainContext, TrainData

#: quantisation of simulated pairs (ELD: additive U(-1/2, 1/2) DN)
QUANTIZATION = "uniform"


@dataclass(frozen=True)
class NoiseDraw:
    """The noise of one simulated image.

    Attributes
    ----------
    params
        Simulator parameters (DN).
    ratio
        Exposure ratio (the noisy image is ``ratio`` times shorter and brightened back).
    iso
        ISO the gain corresponds to (None when unknown); batches carry ``iso * ratio``, the
        effective ISO the modulated models see (:attr:`rawadapt.data.Sample.effective_iso`).
    """

    params: NoiseParams
    ratio: float = 1.0
    iso: float | None = None


@runtime_checkable
class NoiseSource(Protocol):
    """What :class:`SyntheticPatchSampler` needs from a noise model."""

    #: levels, CFA and name used by the simulator
    profile: Profile
    #: sensor name written into the batches (the modulation's one-hot)
    label: str

    def begin_batch(self, rng: np.random.Generator) -> int:
        """Called once per batch; returns the batch's branch (LED camera index, -1 = none)."""
        ...

    def draw(self, rng: np.random.Generator) -> NoiseDraw:
        """The noise of one image of the current batch."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description (written to the run folder and metrics.json)."""
        ...


class ProfileNoise:
    """ELD-style per-image draws from a profile (the calibration-based baselines).

    Parameters
    ----------
    profile
        The (calibrated) profile.
    label
        Sensor name written into batches (the target sensor: the synthetic pairs stand for it).
    iso_range
        ISOs are drawn log-uniformly in this range (default: the profile's ``iso_range``).
    ratios
        Exposure ratios, drawn uniformly (default: the profile's ``ratios``).
    info
        Extra entries for :meth:`describe` (e.g. the calibration summary).
    """

    def __init__(
        self,
        profile: Profile,
        *,
        label: str,
        iso_range: tuple[float, float] | None = None,
        ratios: Sequence[float] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.profile = profile
        self.label = str(label)
        lo, hi = iso_range if iso_range is not None else profile.iso_range
        if not 0 < lo <= hi:
            raise ConfigError(f"bad ISO range {lo}..{hi}")
        self.iso_range = (float(lo), float(hi))
        self.ratios = tuple(float(r) for r in (ratios if ratios is not None else profile.ratios))
        if not self.ratios or min(self.ratios) <= 0:
            raise ConfigError(f"exposure ratios must be positive, got {self.ratios}")
        self.info = dict(info or {})

    def begin_batch(self, rng: np.random.Generator) -> int:
        return -1

    def draw(self, rng: np.random.Generator) -> NoiseDraw:

        lo, hi = self.iso_range
        iso = lo if hi <= lo else math.exp(rng.uniform(math.log(lo), math.log(hi)))
        params = sample_noise_params(self.profile, iso=iso, rng=rng)
        ratio = self.ratios[int(rng.integers(0, len(self.ratios)))]
        return NoiseDraw(params=params, ratio=ratio, iso=iso)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "profile",
            "profile": self.profile.name,
            "label": self.label,
            "iso_range": list(self.iso_range),
            "ratios": list(self.ratios),
            **self.info,
        }


# --------------------------------------------------------------------------------------------
# Clean images
# --------------------------------------------------------------------------------------------


def clean_only(samples: Sequence[Sample]) -> list[Sample]:
    """Samples whose noisy half is their clean image (same array, no copy): what a
    :class:`SyntheticPatchSampler` crops from (its noisy patches are simulated)."""
    out = []
    for s in samples:
        if s.clean is None:
            continue
        out.append(s.with_arrays(s.clean, s.clean))
    return out


def clean_pool(data: TrainData, *, include_sources: bool = True, include_target: bool = True) -> list[Sample]:
    """Clean images for synthetic training: the clean halves of the REAL source domains
    (harmful domains excluded) and of the target pool.

    Raises
    ------
    ConfigError
        No clean image at all.
    """
    samples: list[Sample] = []
    if include_sources:
        for name in sorted(data.sources):
            if name.startswith("harmful"):
                continue
            samples.extend(clean_only(list(data.sources[name])))
    if include_target and data.target_pool is not None:
        samples.extend(clean_only(list(data.target_pool)))
    if not samples:
        raise ConfigError("no clean images to synthesise training pairs from")
    return samples


def require_raw(data: TrainData, what: str) -> None:
    """Raise a clear :class:`ConfigError` unless the data are packed RAW."""
    if data.space != "raw":
        raise ConfigError(
            f"{what} needs RAW data: its noise model is physical (shot + read noise in raw "
            f"digital numbers), which sRGB images (after demosaicking, tone curve and "
            f"compression) do not follow; got space {data.space!r}"
        )


# --------------------------------------------------------------------------------------------
# Sampler and stage
# --------------------------------------------------------------------------------------------


class SyntheticPatchSampler(PatchSampler):
    """Random clean patches with simulated noise (see the module docstring).

    Parameters
    ----------
    samples
        Clean-only samples (:func:`clean_only`), packed RAW.
    noise
        The noise source.
    patch, batch, augment, seed, domain
        As for :class:`~rawadapt.data.patches.PatchSampler`.
    quantization
        Quantisation of the simulator (:data:`QUANTIZATION`).

    Attributes
    ----------
    branch
        The branch of the last drawn batch (-1 = none).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        noise: NoiseSource,
        *,
        patch: int,
        batch: int,
        augment: bool = True,
        seed: int | np.random.Generator | None = 0,
        domain: str | None = None,
        quantization: str = QUANTIZATION,
    ) -> None:
        super().__init__(samples, patch=patch, batch=batch, augment=augment, seed=seed, domain=domain)
        if self.space != "raw":
            raise ConfigError("synthetic pairs are simulated on packed RAW planes only")
        self.noise = noise
        self.quantization = quantization
        self.branch = -1

    def draw(self, n: int | None = None, indices: Sequence[int] | None = None) -> Batch:
        import torch

        base = super().draw(n, indices)
        self.branch = int(self.noise.begin_batch(self.rng))
        noisy, isos = [], []
        for i in range(len(base)):
            d = self.noise.draw(self.rng)
            gen = torch.Generator().manual_seed(int(self.rng.integers(0, 2**62)))
            noisy.append(
                add_noise(
                    base.clean[i],
                    self.noise.profile,
                    d.params,
                    ratio=d.ratio,
                    generator=gen,
                    quantization=self.quantization,
                    clip=True,
                    fixed_pattern=False,
                )
            )
            isos.append(math.nan if d.iso is None else float(d.iso) * float(d.ratio))
        label = self.noise.label
        return Batch(
            torch.stack(noisy),
            base.clean,
            [label] * len(base),
            torch.tensor(isos, dtype=torch.float32),
            base.sample_ids,
            [self.domain or "synthetic"] * len(base),
        )


def set_branch(model: Any, branch: int) -> None:
    """``model.set_branch(branch)`` on models that have branches (LED); a no-op otherwise."""
    fn = getattr(model, "set_branch", None)
    if fn is not None:
        fn(int(branch))


class SyntheticStage(SupervisedStage):
    """Supervised L1 training on synthetic pairs (one noise source, clean images of any sensor).

    Parameters
    ----------
    name, iters, lr, optim, patch, batch, augment, seed
        See :class:`~rawadapt.train.stages.SupervisedStage`.
    clean
        Clean-only samples (:func:`clean_pool`).
    noise
        The noise source.
    """

    def __init__(
        self,
        name: str,
        clean: Sequence[Sample],
        noise: NoiseSource,
        iters: int,
        *,
        lr: float,
        optim: OptimConfig,
        patch: int,
        batch: int,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(
            name, {noise.label: clean}, iters, lr=lr, optim=optim, patch=patch, batch=batch, augment=augment, seed=seed
        )
        self.clean = clean
        self.noise = noise

    def setup(self, ctx: TrainContext) -> None:
        BaseStage.setup(self, ctx)
        self._rank = ctx.rank if getattr(ctx, "world_size", 1) > 1 else None
        self.comm = getattr(ctx, "extra", {}).get("comm")
        clean = list(self.clean)
        patch = min(self.patch, min(min(s.height, s.width) for s in clean))
        self.samplers = {
            self.noise.label: SyntheticPatchSampler(
                clean,
                self.noise,
                patch=patch,
                batch=self.batch,
                augment=self.augment,
                seed=self._seed("synthetic"),
                domain="synthetic",
            )
        }
        self.anchor_sampler = None
        self.choice_rng = np.random.default_rng(self._seed("choice"))
        if getattr(ctx, "is_main", False) and getattr(ctx, "run_dir", None) is not None:
            ctx.run_dir.mkdir(parents=True, exist_ok=True)
            write_json(ctx.run_dir / f"{self.name}_noise.json", self.noise.describe())

    def step(self, ctx: TrainContext, i: int) -> StepValues:
        import time

        lr = self.set_lr(ctx, i)
        t0 = time.perf_counter()
        sampler = cast(SyntheticPatchSampler, self.samplers[self.noise.label])  # built by setup()
        batch = sampler.draw()
        data_time = time.perf_counter() - t0
        assert ctx.optimizer is not None
        set_branch(ctx.model, sampler.branch)
        try:
            loss = train_step(
                ctx.model, ctx.optimizer, batch, device=ctx.device, grad_clip=self.optim.grad_clip, comm=self.comm
            )
        finally:
            set_branch(ctx.model, -1)
        out: StepValues = {"loss": loss, "lr": lr, "data_time": data_time, "domain": "synthetic"}
        if sampler.branch >= 0:
            out["camera"] = sampler.branch
        return out

    def finish(self, ctx: TrainContext) -> dict[str, Any]:
        return {"synthetic": self.noise.describe(), "clean_images": len(self.clean)}
