"""Samples, dataset adapters, splits and patch sampling.

The light names are importable from here; adapters live in their own modules and are looked up
by :func:`rawadapt.data.registry.open_dataset`.
"""

from rawadapt.data.base import PairDataset
from rawadapt.data.sample import Sample, SampleRecord, check_image

__all__ = ["PairDataset", "Sample", "SampleRecord", "check_image"]
