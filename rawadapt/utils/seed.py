"""Seeding helpers. Every random call in rawadapt takes an explicit generator or seed."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (for code we do not control)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def torch_generator(seed: int | None, device: str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (random seed when None)."""
    import torch

    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def numpy_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy ``Generator`` from a seed (or pass a Generator through)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def derive_seed(seed: int, *keys: object) -> int:
    """A stable 63-bit seed derived from ``seed`` and any hashable keys (e.g. a sensor name).

    Uses BLAKE2 rather than ``hash()`` so the value is identical across processes and runs.
    """
    import hashlib

    h = hashlib.blake2b(repr((int(seed),) + tuple(str(k) for k in keys)).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") >> 1
