"""Concatenate paired datasets into one, e.g. real PolyU cameras plus the simulated ``synth-srgb``
sensors as extra source domains: ``open_dataset("polyu:../shared/data/polyu+synth-srgb")``.

Rules
-----
* All parts must be in the same space (``raw`` or ``srgb``): a model is trained on one space.
* Records keep their order (part by part) and their metadata, split roles included, so
  :func:`rawadapt.data.splits.leave_one_sensor_out` treats each part as it would alone.
* Sample ids stay as they are when they are unique across the parts (results of a single
  dataset and of the combination then name the same image the same way); when two parts share
  an id, EVERY record of the later parts that collides is prefixed with ``"<part name>/"`` (and a
  part index if the names collide as well), deterministically.
* Sensor names are NOT renamed: two parts with the same sensor name form one domain (the same
  camera seen twice). Name the parts' sensors differently if that is not what you want.
* Each record is decoded by the loader of the part it came from (dispatch by sample id), so the
  parts' own decode caches keep working; the combination has its own in-memory LRU cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rawadapt.data.base import PairDataset
from rawadapt.data.sample import Sample, SampleRecord
from rawadapt.errors import DatasetError


def _unique_prefix(name: str, index: int, used: set[str]) -> str:
    prefix = name or f"part{index}"
    if prefix in used:
        prefix = f"{prefix}{index}"
    used.add(prefix)
    return prefix


def concat_datasets(parts: Sequence[PairDataset], *, name: str | None = None) -> PairDataset:
    """One :class:`PairDataset` holding the records of every part (see the module docstring).

    Parameters
    ----------
    parts
        Two or more datasets of the same space (one is returned as is).
    name
        Name of the combination (default: the parts' names joined by ``+``).

    Returns
    -------
    PairDataset
        Records of ``parts[0]``, then ``parts[1]``... ; ``root`` is the first part's root.

    Raises
    ------
    DatasetError
        No parts, or parts of different spaces.

    Examples
    --------
    >>> both = concat_datasets([open_dataset("polyu:data/polyu"),
    ...                         open_dataset("synth-srgb")])  # doctest: +SKIP
    """
    parts = list(parts)
    if not parts:
        raise DatasetError("concat_datasets needs at least one dataset")
    spaces = sorted({p.space for p in parts})
    if len(spaces) > 1:
        detail = ", ".join(f"{p.name} ({p.space})" for p in parts)
        raise DatasetError(f"cannot combine datasets of different spaces: {detail}")
    if len(parts) == 1:
        return parts[0]
    records: list[SampleRecord] = []
    #: new sample id -> (part index, the part's own record)
    origin: dict[str, tuple[int, SampleRecord]] = {}
    used_prefixes: set[str] = set()
    for k, part in enumerate(parts):
        prefix: str | None = None
        for rec in part.records:
            new = rec
            if rec.sample_id in origin:
                if prefix is None:
                    prefix = _unique_prefix(part.name, k, used_prefixes)
                new = replace(rec, sample_id=f"{prefix}/{rec.sample_id}")
                if new.sample_id in origin:  # pathological: the prefixed id exists too
                    new = replace(rec, sample_id=f"{prefix}#{k}/{rec.sample_id}")
            origin[new.sample_id] = (k, rec)
            records.append(new)

    def load(record: SampleRecord) -> Sample:
        k, own = origin[record.sample_id]
        sample = parts[k].loader(own)
        if sample.sample_id != record.sample_id:
            sample = replace(sample, sample_id=record.sample_id)
        return sample

    return PairDataset(
        records,
        load,
        name=name or "+".join(p.name for p in parts),
        space=parts[0].space,
        root=parts[0].root,
        memory_cache=max(p.memory_cache for p in parts),
    )
