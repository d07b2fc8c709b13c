"""PMN's shot-noise augmentation (SNA) of real paired data (Feng et al., ACM MM 2022 / TPAMI 2023).

PMN's "learnability enhancement" reforms paired real data with the noise model. SNA creates new
VALID pairs from a real pair: Poisson noise is additive in the photon count, so adding
``Δx = aug · x`` to the clean signal and ``K · Poisson(Δx / K)`` to the noisy image gives a pair
whose shot noise is exactly that of the brighter clean image ``x + Δx`` (same gain K, same read
noise) — more data at new brightness levels without any noise synthesis of the read/pattern
components. PMN's second technique, dark shading correction, needs dark frames the benchmark
protocol does not provide; it is not implemented.

In the loaders' brightness-matched normalised units (``noisy`` already multiplied by the
exposure ratio) the shot-noise variance of a RAW pixel is ``g · clean`` with the per-plane
gain ``g = K_c(ISO) · ratio / span_c``
(:meth:`~rawadapt.baselines.pool_calibration.PoolCalibration.normalised_gain`), so::

    dy = clean · aug            (per plane)
    dn = g · Poisson(dy / g)
    noisy' = clip(noisy + dn, 0, 1),  clean' = clean + dy

Augmentation factors follow PMN's code: with probability 3/4 a patch is augmented; a scale
``u ∈ {0.25, 0.5}``; green ``aug_g = clip(N(0, u), 0, 4u)``, red/blue
``clip((1 + N(0, u)) (1 + aug_g) − 1, 0, 4u)`` (a white-balance-like variation), planes
``(R, G1, G2, B) = (r, g, g, b)``. Deviations (documented choices): factors are capped so that
the augmented clean patch stays <= 1 (a real sensor saturates), and the augmented noisy patch is
clipped to [0, 1] like the loaders' data (PMN keeps unclipped values).

Where it applies (``pmn`` = ADL + SNA, ADL paper Table 3): :class:`SNAPatchSampler` replaces the
target-pool samplers of ADL's target pretraining and fine-tuning stages and the T_train
sampler of the adaptive stage; the dynamic validation set V' is never augmented (it is the
accept/reject yardstick on real target data).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from rawadapt.data.patches import Batch, PatchSampler
from rawadapt.data.sample import Sample

#: probability that a patch is augmented (PMN: ``np.random.randint(4) != 0``)
P_APPLY = 0.75
#: PMN's scale choices ``u`` (``randint(2) * 0.25 + 0.25``)
SCALES = (0.25, 0.5)

GainFn = Callable[[Sample], np.ndarray]


def shot_noise_augment(
    noisy: torch.Tensor,
    clean: torch.Tensor,
    gain: torch.Tensor,
    aug: torch.Tensor,
    generator: torch.Generator,
    *,
    clip: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Brighten pairs by ``1 + aug`` with exact extra shot noise (see the module docstring).

    Parameters
    ----------
    noisy, clean
        ``(B, C, h, w)`` normalised pairs.
    gain
        ``(B, C)`` shot-noise gains in the same units (variance = gain × clean).
    aug
        ``(B, C)`` brightness increments (>= 0; 0 leaves a plane unchanged).
    generator
        Torch generator of the Poisson draws.
    clip
        Clip the augmented noisy image to [0, 1].

    Returns
    -------
    (noisy', clean')
    """
    g = gain.to(clean.dtype).clamp_min(1e-12)[..., None, None]
    dy = clean.clamp_min(0.0) * aug.to(clean.dtype)[..., None, None]
    dn = torch.poisson(dy / g, generator=generator) * g
    out = noisy + dn
    if clip:
        out = out.clamp(0.0, 1.0)
    return out, clean + dy


def sna_factors(
    rng: np.random.Generator, n: int, channels: int = 4, *, p_apply: float = P_APPLY, scales: Sequence[float] = SCALES
) -> np.ndarray:
    """PMN's per-patch, per-plane augmentation factors ``(n, channels)`` (module docstring)."""
    out = np.zeros((n, channels))
    for i in range(n):
        u = float(scales[int(rng.integers(0, len(scales)))])
        if rng.random() >= p_apply:
            continue
        g = float(np.clip(rng.normal(0.0, u), 0.0, 4 * u))
        r = float(np.clip((1 + rng.normal(0.0, u)) * (1 + g) - 1, 0.0, 4 * u))
        b = float(np.clip((1 + rng.normal(0.0, u)) * (1 + g) - 1, 0.0, 4 * u))
        out[i] = [r, g, g, b] if channels == 4 else ([r, g, b] + [g] * (channels - 3))[:channels]
    return out


class SNAPatchSampler(PatchSampler):
    """A :class:`~rawadapt.data.patches.PatchSampler` whose patches get PMN's shot-noise
    augmentation; every draw comes from the sampler's own generator (exact resume).

    Parameters
    ----------
    samples
        Real target pairs (packed RAW).
    gain
        ``gain(sample) -> (4,)`` normalised shot-noise gain of a sample (calibrated).
    p_apply, scales
        PMN's augmentation probability and scales.
    patch, batch, augment, seed, domain
        As for :class:`~rawadapt.data.patches.PatchSampler` (``seed`` may be a generator, to
        continue another sampler's stream).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        gain: GainFn,
        *,
        patch: int,
        batch: int,
        augment: bool = True,
        seed: int | np.random.Generator | None = 0,
        domain: str | None = None,
        p_apply: float = P_APPLY,
        scales: Sequence[float] = SCALES,
    ) -> None:
        super().__init__(samples, patch=patch, batch=batch, augment=augment, seed=seed, domain=domain)
        self.gain = gain
        self.p_apply = float(p_apply)
        self.scales = tuple(float(s) for s in scales)
        self._gains = {id(s): np.asarray(gain(s), dtype=np.float64) for s in self.samples}

    @classmethod
    def from_sampler(cls, sampler: PatchSampler, gain: GainFn, **kwargs: Any) -> SNAPatchSampler:
        """The same sampler (samples, patch, batch, generator — shared, not copied) with SNA."""
        return cls(
            sampler.samples,
            gain,
            patch=sampler.patch,
            batch=sampler.batch,
            augment=sampler.augment,
            seed=sampler.rng,
            domain=sampler.domain,
            **kwargs,
        )

    def draw(self, n: int | None = None, indices: Sequence[int] | None = None) -> Batch:
        if indices is None:  # the parent's own index draw, made here to know the samples
            n = self.batch if n is None else int(n)
            indices = self.rng.integers(0, len(self.samples), size=n).tolist()
        base = super().draw(indices=indices)
        k = len(base)
        aug = sna_factors(self.rng, k, int(base.clean.shape[1]), p_apply=self.p_apply, scales=self.scales)
        peak = base.clean.flatten(2).amax(2).double().numpy()  # (k, C)
        aug = np.minimum(aug, np.maximum(1.0 / np.maximum(peak, 1e-6) - 1.0, 0.0))  # clean' <= 1
        gains = np.stack([self._gains[id(self.samples[int(i)])] for i in indices])
        gen = torch.Generator().manual_seed(int(self.rng.integers(0, 2**62)))
        if not np.any(aug > 0):
            return base
        noisy, clean = shot_noise_augment(base.noisy, base.clean, torch.from_numpy(gains), torch.from_numpy(aug), gen)
        return Batch(noisy.float(), clean.float(), base.sensor, base.iso, base.sample_ids, base.domains)
