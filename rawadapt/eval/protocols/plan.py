"""From settings to the list of cells a protocol runs: targets, methods, variants, seeds.

A *cell* is one (variant, target, seed, method). Cells of the same (variant, target, seed)
share ONE :class:`~rawadapt.baselines.base.Task` (the same target pool and test images for
every method). Variants are what a protocol changes besides the method:

* ``crossval``, ``ablation``, ``calibration``: one variant (``default``);
* ``harmful``: ``base``, ``+harmful1``, ``+harmful2`` (ADL paper Table 5: each harmful set is
  added to the real sources on its own);
* ``target-size``: one variant per |T_adp| (``n=2`` ... ``n=50``), clamped per target to the
  pairs the data can give it (a clamped size is labelled by the size actually used).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rawadapt.baselines.base import BENCH_METHODS, make_task, method_class
from rawadapt.data.registry import is_combined_spec, open_dataset
from rawadapt.errors import ConfigError, DatasetError
from rawadapt.eval.protocols.settings import (
    PAPER_SENSOR,
    QUICK_TARGETS,
    BenchSettings,
    ProtocolSpec,
)

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.baselines.base import Task
    from rawadapt.data.base import PairDataset

#: the default |T_adp| (the paper's), and the fallback for data with few pairs per camera
DEFAULT_TARGET_PAIRS = 20
SMALL_TARGET_PAIRS = 6


@dataclass(frozen=True)
class Variant:
    """What a protocol changes besides the method (see the module docstring).

    Attributes
    ----------
    key
        Folder-safe name (``default``, ``base``, ``harmful1``, ``n20``).
    label
        Table label (``-``, ``base``, ``+harmful1``, ``n=20``).
    target_pairs
        |T_adp| of this variant (None: the run's).
    harmful
        Harmful source domains added (ADL paper Table 5).
    value
        Numeric value for plots (the target size), else None.
    """

    key: str
    label: str
    target_pairs: int | None = None
    harmful: tuple[str, ...] = ()
    value: float | None = None


@dataclass
class TaskPlan:
    """One (variant, target, seed): the task its methods share."""

    variant: Variant
    target: str
    seed: int
    target_pairs: int
    extra: dict[str, Any] = field(default_factory=dict)
    task: Task | None = None


@dataclass
class Plan:
    """Everything a protocol run does, in order."""

    spec: ProtocolSpec
    dataset: PairDataset
    targets: list[str]
    methods: list[str]
    target_pairs: int
    tasks: list[TaskPlan]
    notes: list[str] = field(default_factory=list)

    @property
    def variants(self) -> list[Variant]:
        seen: dict[str, Variant] = {}
        for t in self.tasks:
            seen.setdefault(t.variant.key, t.variant)
        return sorted(seen.values(), key=lambda v: (v.value if v.value is not None else -1.0, _order(v.key)))

    def n_cells(self) -> int:
        return len(self.tasks) * len(self.methods)


def _order(key: str) -> int:
    return {"default": 0, "base": 0, "harmful1": 1, "harmful2": 2}.get(key, 9)


# -- methods ---------------------------------------------------------------------------------
def method_available(name: str) -> tuple[type | None, str | None]:
    """The method's class, or None and why it cannot be used (unknown names raise)."""

    try:
        return method_class(name), None
    except ConfigError:
        raise
    except (ImportError, AttributeError) as exc:  # registered, but its module is not there (yet)
        return None, f"{type(exc).__name__}: {exc}"


def resolve_methods(settings: BenchSettings, spec: ProtocolSpec, space: str) -> tuple[list[str], list[str]]:
    """The methods to run and notes about dropped defaults.

    ``settings.methods`` None → the protocol's defaults (its ``optional_methods`` are dropped
    with a note when not available); ``["all"]`` → every registered method that is available
    and supports the data's space.

    Raises
    ------
    ConfigError
        An unknown or unavailable requested method (one line, the known names listed), a method
        that does not support the data's space, or a protocol left without the methods it is
        about (calibration without any calibration method).
    """

    notes: list[str] = []
    requested = settings.methods
    if requested and [m.lower() for m in requested] == ["all"]:
        out = []
        for name in BENCH_METHODS:
            cls, why = method_available(name)
            if cls is None:
                notes.append(f"{name}: not available ({why})")
            elif space not in cls.spaces:  # type: ignore[attr-defined]
                notes.append(f"{name}: does not support {space}")
            else:
                out.append(name)
        return out, notes
    names = list(requested) if requested else list(spec.methods)
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate methods in {names}")
    out = []
    for name in names:
        cls, why = method_available(name)
        if cls is None:
            if requested is None and name in spec.optional_methods:
                notes.append(f"{name}: skipped, not available in this install ({why})")
                continue
            raise ConfigError(f"method {name!r} is registered but not available: {why}")
        if space not in cls.spaces:  # type: ignore[attr-defined]
            raise ConfigError(f"method {name!r} does not support {space} data (supports {', '.join(cls.spaces)})")  # type: ignore[attr-defined]
        out.append(name)
    if spec.optional_methods and not any(m in out for m in spec.optional_methods):
        raise ConfigError(
            f"protocol {spec.name!r} needs at least one of {', '.join(spec.optional_methods)}; "
            f"none is available ({'; '.join(notes) or 'not requested'})"
        )
    return out, notes


# -- targets and sizes -----------------------------------------------------------------------
def primary_sensors(data_spec: str, dataset: PairDataset) -> list[str]:
    """Sensors of the first part of a combined spec (``polyu:P+synth-srgb`` → the PolyU
    cameras): the default targets; the other parts are extra sources."""

    if is_combined_spec(data_spec):
        return open_dataset(data_spec.split("+")[0].strip()).sensors
    return dataset.sensors


def max_pool_pairs(dataset: PairDataset, target: str) -> int:
    """The largest |T_adp| the split can give ``target`` (see :mod:`rawadapt.data.splits`)."""
    idx = dataset.by_sensor().get(target, [])
    recs = [dataset.records[i] for i in idx]
    roles = {r.split for r in recs}
    if roles & {"target", "test"}:
        cands = [r for r in recs if r.split == "target"] or [r for r in recs if r.split != "test"]
        return len(cands)
    scenes: dict[str, int] = {}
    for r in recs:
        scenes[r.scene] = scenes.get(r.scene, 0) + 1
    if len(scenes) < 2:
        return 0
    return len(recs) - min(scenes.values())  # at least one whole scene stays for testing


def resolve_targets(settings: BenchSettings, spec: ProtocolSpec, dataset: PairDataset) -> list[str]:
    """The held-out sensors (see :attr:`BenchSettings.targets`).

    Raises
    ------
    ConfigError
        A requested target is not a sensor of the data.
    """
    sensors = dataset.sensors
    if settings.targets:
        unknown = [t for t in settings.targets if t not in sensors]
        if unknown:
            raise ConfigError(
                f"unknown target sensor(s) {', '.join(unknown)}; the data's sensors: {', '.join(sensors)}"
            )
        return list(settings.targets)
    primary = primary_sensors(settings.data, dataset)
    if spec.single_target:
        return [PAPER_SENSOR if PAPER_SENSOR in primary else primary[0]]
    if settings.quick:
        picked = [t for t in QUICK_TARGETS if t in primary]
        return (picked + [t for t in primary if t not in picked])[:2]
    return primary


def default_target_pairs(dataset: PairDataset, targets: list[str]) -> int:
    """20 (the paper's |T_adp|) when every target has that many pool pairs, else 6 (at most what
    the smallest target allows): PolyU has 12-40 pairs per camera in 4-5 scenes."""
    most = min(max_pool_pairs(dataset, t) for t in targets)
    if most >= DEFAULT_TARGET_PAIRS:
        return DEFAULT_TARGET_PAIRS
    if most < 1:
        raise DatasetError(f"target(s) {', '.join(targets)} cannot give any pool pair and keep a test scene")
    return min(SMALL_TARGET_PAIRS, most)


def _variants(settings: BenchSettings, spec: ProtocolSpec, dataset: PairDataset, target: str) -> list[Variant]:
    if spec.name == "harmful":
        return [
            Variant("base", "base"),
            Variant("harmful1", "+harmful1", harmful=("harmful1",)),
            Variant("harmful2", "+harmful2", harmful=("harmful2",)),
        ]
    if spec.name == "target-size":
        most = max_pool_pairs(dataset, target)
        if settings.max_pool_fraction:
            most = min(most, _fraction_cap(settings, dataset, target))
            sizes = sorted({int(n) for n in settings.sizes if int(n) <= most})
            return [Variant(f"n{n}", f"n={n}", target_pairs=n, value=float(n)) for n in sizes]
        sizes = sorted({min(int(n), most) for n in settings.sizes if min(int(n), most) >= 1})
        return [Variant(f"n{n}", f"n={n}", target_pairs=n, value=float(n)) for n in sizes]
    return [Variant("default", "-")]


def _fraction_cap(settings: BenchSettings, dataset: PairDataset, target: str) -> int:
    return int(float(settings.max_pool_fraction or 1.0) * len(dataset.by_sensor().get(target, [])))


def harmful_count(settings: BenchSettings, dataset: PairDataset, target: str) -> int:
    """Pairs per harmful domain: ``settings.harmful_count`` or the median size of the real source
    domains (as large as a real sensor's share; ADL samples domains uniformly, so this mostly
    matters for how much the fine-tuning baseline sees of it), at least 8."""
    if settings.harmful_count:
        return int(settings.harmful_count)
    sizes = sorted(
        len([i for i in idx if dataset.records[i].split != "test"])
        for s, idx in dataset.by_sensor().items()
        if s != target
    )
    return max(8, sizes[len(sizes) // 2]) if sizes else 32


def build_plan(settings: BenchSettings, spec: ProtocolSpec, dataset: PairDataset) -> Plan:
    """The run's targets, methods and task list (no task is built yet: see :func:`build_task`)."""
    methods, notes = resolve_methods(settings, spec, dataset.space)
    targets = resolve_targets(settings, spec, dataset)
    tp = settings.target_pairs or default_target_pairs(dataset, targets)
    tasks: list[TaskPlan] = []
    for target in targets:
        for variant in _variants(settings, spec, dataset, target):
            extra: dict[str, Any] = {}
            if spec.name == "harmful" and settings.harmful_only:
                extra["real_sources"] = False
            if variant.harmful:
                extra.update(
                    {"harmful": list(variant.harmful), "harmful_count": harmful_count(settings, dataset, target)}
                )
                if settings.harmful_label != "own":
                    extra["harmful_label"] = settings.harmful_label
            for seed in settings.seeds:
                tasks.append(
                    TaskPlan(
                        variant=variant,
                        target=target,
                        seed=int(seed),
                        target_pairs=variant.target_pairs or tp,
                        extra=extra,
                    )
                )
    if spec.name == "target-size":
        for target in targets:
            most = max_pool_pairs(dataset, target)
            if settings.max_pool_fraction:
                cap = min(most, _fraction_cap(settings, dataset, target))
                dropped = [n for n in settings.sizes if n > cap]
                if dropped:
                    notes.append(
                        f"{target}: sizes {', '.join(map(str, dropped))} not run (more than "
                        f"{settings.max_pool_fraction:g} of its {len(dataset.by_sensor().get(target, []))} images)"
                    )
                continue
            clamped = [n for n in settings.sizes if n > most]
            if clamped:
                notes.append(f"{target}: sizes {', '.join(map(str, clamped))} clamped to {most} (all its pool pairs)")
    return Plan(spec=spec, dataset=dataset, targets=targets, methods=methods, target_pairs=tp, tasks=tasks, notes=notes)


def build_task(settings: BenchSettings, tp: TaskPlan, dataset: PairDataset, work_dir: Path) -> Task:
    """The shared :class:`~rawadapt.baselines.base.Task` of one (variant, target, seed)."""

    if tp.task is None:
        task = make_task(
            settings.data,
            tp.target,
            target_pairs=tp.target_pairs,
            seed=tp.seed,
            work_dir=work_dir,
            dataset=dataset,
            sources=settings.sources,
            test_pairs=settings.test_pairs,
            threads=settings.threads,
            precision=settings.precision,
        )
        task.extra.update(tp.extra)
        tp.task = task
    return tp.task


def cell_applies(tp: TaskPlan, method: str) -> bool:
    """False for a method that trains on source data in a task that has none (the base variant
    of the harmful protocol with ``harmful_only``): such a cell is skipped, not failed."""
    from rawadapt.baselines.base import method_class

    no_sources = tp.extra.get("real_sources", True) is False and not tp.extra.get("harmful")
    return not (no_sources and method_class(method).uses_sources)
