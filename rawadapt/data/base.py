"""A lazy paired dataset: records (metadata) up front, pixels decoded on first access."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from rawadapt.data.sample import Sample, SampleRecord, Space
from rawadapt.errors import DatasetError

Loader = Callable[[SampleRecord], Sample]


class PairDataset(Sequence[Sample]):
    """A sequence of :class:`Sample`, described by :class:`SampleRecord` metadata.

    Adapters build one from their records and a ``loader`` that decodes a record into a
    :class:`Sample` (adapters put their on-disk decode cache inside the loader). Subsets share
    the loader and the in-memory cache.

    Parameters
    ----------
    records
        Metadata of every pair, in a deterministic order.
    loader
        Decodes one record.
    name
        Dataset name (``"polyu"``, ``"synth"``, a folder name...).
    space
        ``"raw"`` or ``"srgb"``.
    memory_cache
        How many decoded samples to keep in memory (LRU). 0 disables it.
    """

    def __init__(
        self,
        records: Sequence[SampleRecord],
        loader: Loader,
        *,
        name: str,
        space: Space,
        root: str | None = None,
        memory_cache: int = 256,
        _shared_cache: OrderedDict[str, Sample] | None = None,
    ) -> None:
        self.records: list[SampleRecord] = list(records)
        self.loader = loader
        self.name = name
        self.space: Space = space
        self.root = root
        self.memory_cache = int(memory_cache)
        self._cache: OrderedDict[str, Sample] = OrderedDict() if _shared_cache is None else _shared_cache
        ids = [r.sample_id for r in self.records]
        if len(set(ids)) != len(ids):
            raise DatasetError(f"dataset {name!r} has duplicate sample ids", root)

    # -- Sequence ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("use subset(indices) to take a slice of a PairDataset")
        rec = self.records[index]
        hit = self._cache.get(rec.sample_id)
        if hit is not None:
            self._cache.move_to_end(rec.sample_id)
            return hit
        sample = self.loader(rec)
        if self.memory_cache > 0:
            self._cache[rec.sample_id] = sample
            while len(self._cache) > self.memory_cache:
                self._cache.popitem(last=False)
        return sample

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"PairDataset(name={self.name!r}, space={self.space!r}, n={len(self)}, sensors={self.sensors})"

    # -- views ------------------------------------------------------------------------------
    def subset(self, indices: Iterable[int], *, name: str | None = None) -> PairDataset:
        """A view on some records (same loader and memory cache)."""
        return PairDataset(
            [self.records[i] for i in indices],
            self.loader,
            name=name or self.name,
            space=self.space,
            root=self.root,
            memory_cache=self.memory_cache,
            _shared_cache=self._cache,
        )

    def filter(self, predicate: Callable[[SampleRecord], bool], *, name: str | None = None) -> PairDataset:
        """A view on the records for which ``predicate(record)`` is true."""
        return self.subset([i for i, r in enumerate(self.records) if predicate(r)], name=name)

    @property
    def sensors(self) -> list[str]:
        """Sorted sensor (domain) names."""
        return sorted({r.sensor for r in self.records})

    def by_sensor(self) -> dict[str, list[int]]:
        """Record indices grouped by sensor, each list in dataset order."""
        out: dict[str, list[int]] = {}
        for i, r in enumerate(self.records):
            out.setdefault(r.sensor, []).append(i)
        return dict(sorted(out.items()))

    def summary(self) -> dict[str, Any]:
        """Counts and ISOs per sensor (JSON-friendly)."""
        per: dict[str, Any] = {}
        for sensor, idx in self.by_sensor().items():
            isos = sorted({iso for i in idx if (iso := self.records[i].iso) is not None})
            splits: dict[str, int] = {}
            for i in idx:
                key = self.records[i].split or "-"
                splits[key] = splits.get(key, 0) + 1
            per[sensor] = {
                "count": len(idx),
                "isos": isos,
                "scenes": len({self.records[i].scene for i in idx}),
                "splits": splits,
            }
        return {"name": self.name, "space": self.space, "root": self.root, "count": len(self), "sensors": per}

    def materialize(self) -> list[Sample]:
        """Decode every sample (small datasets: target pools, test sets)."""
        return [self[i] for i in range(len(self))]
