"""Random patches and CFA-safe augmentation, collated into torch batches.

A :class:`PatchSampler` draws ``batch`` random crops of ``patch x patch`` (packed pixels for
RAW) from a list of samples, each with a random dihedral transform (flips, transposes). For
packed RAW the transform goes through :func:`rawadapt.io.bayer.packed_dihedral`, so each plane
keeps its colour (a transpose swaps G1 and G2) exactly as if the mosaic had been transformed
and re-packed; the transform changes the CFA phase, so the patch is then unified to the RGGB
phase by dropping one mosaic row/column (:func:`rawadapt.io.bayer.unify_crop`: Bayer-preserving
augmentation, Liu et al. 2019). Every RAW training patch thus has one phase whatever the sensor
or augmentation, which is what RAW models expect (``Denoiser.raw_phase``). The sampler's state is
its NumPy generator state (JSON-friendly), so an
interrupted training run resumes with the very same batches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rawadapt.data.sample import Sample
from rawadapt.errors import ShapeError
from rawadapt.io.bayer import image_dihedral, packed_dihedral, unify_crop


@dataclass
class Batch:
    """A training batch.

    Attributes
    ----------
    noisy, clean
        ``torch.Tensor`` ``(B, C, h, w)`` float32.
    sensor
        Sensor names, one per item (models encode them with ``model.sensor_ids``).
    iso
        ``torch.Tensor`` ``[B]`` of effective ISO values (ISO x exposure ratio, see
        :attr:`Sample.effective_iso`), NaN where unknown.
    sample_ids
        Source sample ids (for data valuation).
    domains
        Domain of each item (the sensor, or a role such as ``"target"``).
    ratio
        ``torch.Tensor`` ``[B]`` of exposure ratios (1 for normal exposures), or None (= 1).
    space
        ``"raw"`` or ``"srgb"``.
    """

    noisy: Any
    clean: Any
    sensor: list[str]
    iso: Any
    sample_ids: list[str]
    domains: list[str] = field(default_factory=list)
    ratio: Any = None
    space: str = "raw"

    def __len__(self) -> int:
        return len(self.sensor)

    @staticmethod
    def cat(batches: Sequence[Batch]) -> Batch:
        """Concatenate batches (same patch size) along the batch axis."""
        import torch

        bs = [b for b in batches if b is not None and len(b) > 0]
        if not bs:
            raise ValueError("nothing to concatenate")
        return Batch(
            noisy=torch.cat([b.noisy for b in bs]),
            clean=torch.cat([b.clean for b in bs]),
            sensor=[s for b in bs for s in b.sensor],
            iso=torch.cat([b.iso for b in bs]),
            sample_ids=[s for b in bs for s in b.sample_ids],
            domains=[d for b in bs for d in b.domains],
            ratio=torch.cat([b.ratios() for b in bs]),
            space=bs[0].space,
        )

    def ratios(self) -> Any:
        """``[B]`` exposure ratios (ones where not recorded)."""
        import torch

        return self.ratio if self.ratio is not None else torch.ones(len(self), dtype=torch.float32)

    def to(self, device: Any) -> Batch:
        return Batch(
            self.noisy.to(device),
            self.clean.to(device),
            self.sensor,
            self.iso.to(device),
            self.sample_ids,
            self.domains,
            ratio=self.ratio,
            space=self.space,
        )


def augment_pair(
    noisy: np.ndarray, clean: np.ndarray | None, space: str, code: int, cfa: str | None = None
) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """Apply dihedral transform ``code`` (0..7) to a pair; RAW keeps colour identities."""
    if space == "raw":
        n, new_cfa = packed_dihedral(noisy, cfa, code)
        c = None if clean is None else packed_dihedral(clean, cfa, code)[0]
        return n, c, new_cfa
    return image_dihedral(noisy, code), None if clean is None else image_dihedral(clean, code), cfa


class PatchSampler:
    """Endless random patches from a list of samples.

    Parameters
    ----------
    samples
        Samples with clean references, all of one space.
    patch
        Patch side (packed pixels for RAW). Clamped to the smallest sample's side.
    batch
        Patches per batch.
    augment
        Random dihedral transforms (CFA-aware for RAW).
    seed
        Seed or NumPy generator.
    domain
        Domain label written into each batch (default: each sample's sensor).
    unify
        RAW only: unify every patch to the RGGB phase (default; needs each sample's ``cfa``).
        Off: patches keep their (augmented) phase.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        *,
        patch: int,
        batch: int,
        augment: bool = True,
        seed: int | np.random.Generator | None = 0,
        domain: str | None = None,
        unify: bool = True,
    ) -> None:
        if not samples:
            raise ShapeError("a patch sampler needs at least one sample")
        spaces = {s.space for s in samples}
        if len(spaces) != 1:
            raise ShapeError(f"samples mix spaces {sorted(spaces)}")
        for s in samples:
            if s.clean is None:
                raise ShapeError("training samples need a clean reference", s.path)
        self.samples = list(samples)
        self.space = self.samples[0].space
        self.unify = bool(unify) and self.space == "raw" and all(s.cfa for s in self.samples)
        smallest = min(min(s.height, s.width) for s in self.samples)
        # unification drops up to one packed row/column: draw one more and crop after
        self._extra = 1 if self.unify and smallest > 1 else 0
        self.patch = int(min(patch, smallest - self._extra))
        if self.patch < 1:
            raise ShapeError("patch size must be positive")
        self.batch = int(batch)
        self.augment = bool(augment)
        self.domain = domain
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def draw(self, n: int | None = None, indices: Sequence[int] | None = None) -> Batch:
        """Draw a batch of ``n`` (default ``batch``) patches, from ``indices`` if given
        (one patch per index), else from uniformly chosen samples."""
        import torch

        if indices is None:
            n = self.batch if n is None else int(n)
            indices = self.rng.integers(0, len(self.samples), size=n).tolist()
        noisy, clean, sensors, isos, ids, doms, ratios = [], [], [], [], [], [], []
        p = self.patch
        q = p + self._extra
        for i in indices:
            s = self.samples[int(i)]
            top = int(self.rng.integers(0, s.height - q + 1))
            left = int(self.rng.integers(0, s.width - q + 1))
            n_ = s.noisy[:, top : top + q, left : left + q]
            c_ = s.clean[:, top : top + q, left : left + q]  # type: ignore[index]
            cfa = s.cfa
            if self.augment:
                code = int(self.rng.integers(0, 8))
                n_, c_, cfa = augment_pair(n_, c_, s.space, code, cfa)
            if self.unify:
                n_ = unify_crop(n_, cfa)[:, :p, :p]  # type: ignore[arg-type]
                c_ = unify_crop(c_, cfa)[:, :p, :p]  # type: ignore[arg-type]
            noisy.append(np.ascontiguousarray(n_, dtype=np.float32))
            clean.append(np.ascontiguousarray(c_, dtype=np.float32))
            sensors.append(s.sensor)
            iso = s.effective_iso
            isos.append(math.nan if iso is None else iso)
            ids.append(s.sample_id)
            doms.append(self.domain or s.sensor)
            ratios.append(float(s.ratio or 1.0))
        return Batch(
            torch.from_numpy(np.stack(noisy)),
            torch.from_numpy(np.stack(clean)),
            sensors,
            torch.tensor(isos, dtype=torch.float32),
            ids,
            doms,
            ratio=torch.tensor(ratios, dtype=torch.float32),
            space=self.space,
        )

    def state_dict(self) -> dict[str, Any]:
        """JSON-friendly generator state (for exact resume)."""
        return {"bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["bit_generator"]
