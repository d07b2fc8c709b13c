"""One interface for every method a benchmark compares: "denoise this target test set given the
target pool (and the sources, where the method uses them)".

    method = make_method("adl", budget=Budget.preset("quick"))
    method.fit(task)                  # train on task.target_pool (+ task.sources)
    y = method.denoise(sample)        # (C, H, W) float32, for each test sample

A :class:`Task` is one leave-one-sensor-out split (the same for every method of a benchmark
cell); a :class:`Budget` scales every method's iterations so that a whole table fits a CPU time
budget (``tiny`` for tests, ``quick`` for minutes, ``default`` for the BENCHMARKS.md runs).

Methods are registered by module path in :data:`BENCH_METHODS` so nothing heavy is imported until a
method is used. Names are those of ``rawadapt bench crossval --methods``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rawadapt.data.registry import open_dataset
from rawadapt.errors import ConfigError
from rawadapt.train.config import config_from_dict
from rawadapt.train.datasets import prepare_data
from rawadapt.utils.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.data.base import PairDataset
    from rawadapt.data.sample import Sample
    from rawadapt.train.context import TrainData


@dataclass(frozen=True)
class Budget:
    """Iteration budget shared by all methods of a benchmark.

    Attributes
    ----------
    name
        Preset name (recorded in results).
    iters
        Main-stage iterations of trained methods (ADL's adaptive stage, joint, target-only,
        the source pretraining of fine-tuning is ``pretrain_iters + iters`` so that fine-tuning
        and ADL take the same number of steps).
    pretrain_iters, finetune_iters
        ADL's target pretraining / target fine-tuning; fine-tuning's target stage.
    patch, batch
        Training patches (packed pixels for RAW).
    width, depth
        U-Net size.
    lr
        Peak AdamW learning rate.
    per_image_iters
        Iterations of per-image methods (ZS-N2N, DIP) — their papers' 2000-3000 at GPU scale.
    selfsup_iters
        Iterations of methods trained self-supervised on the target pool (Nbr2Nbr, B2U).
    eval_tile
        Tiled inference for big test images (None = whole image).
    """

    name: str = "default"
    iters: int = 2000
    pretrain_iters: int = 500
    finetune_iters: int = 500
    patch: int = 64
    batch: int = 8
    width: int = 16
    depth: int = 4
    lr: float = 1e-3
    per_image_iters: int = 500
    selfsup_iters: int = 1500
    eval_tile: int | None = None

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {
            "iters": 6,
            "pretrain_iters": 3,
            "finetune_iters": 3,
            "patch": 16,
            "batch": 2,
            "width": 4,
            "depth": 2,
            "per_image_iters": 5,
            "selfsup_iters": 6,
        },
        "quick": {
            "iters": 300,
            "pretrain_iters": 100,
            "finetune_iters": 100,
            "patch": 48,
            "batch": 8,
            "width": 8,
            "depth": 3,
            "per_image_iters": 100,
            "selfsup_iters": 300,
        },
        "default": {},
    }

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> Budget:
        """A named preset (``tiny``, ``quick``, ``default``) with optional overrides."""
        if name not in cls.PRESETS:
            raise ConfigError(f"unknown budget {name!r}; known: {', '.join(cls.PRESETS)}")
        return replace(cls(name=name, **cls.PRESETS[name]), **overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Task:
    """One benchmark cell's data: a leave-one-sensor-out split of a dataset.

    Attributes
    ----------
    data_spec
        The dataset spec (``"synth"``, ``"polyu:PATH"``...), recorded and used by trained
        methods to rebuild the identical split.
    dataset
        The opened dataset.
    data
        The split (sources per domain, target pool, target test set, vocabulary), as built by
        :func:`rawadapt.train.datasets.prepare_data` — the same function every trained method
        uses, so all methods of a cell see the same pool and test images.
    target_pairs
        |T_adp|.
    seed
        Split and training seed.
    work_dir
        Folder where methods may write runs and caches (``work_dir/<method>``).
    threads
        Torch threads for the methods (None = default).
    precision
        Compute precision of the methods' networks (``auto``/``fp32``/``bf16``,
        :mod:`rawadapt.utils.compute`); applied around fit and denoise by the cell runner.
    test_pairs
        Cap on the target test set the split was built with (trained methods use the same cap, so
        their own metrics.json scores the same images).
    """

    data_spec: str
    dataset: PairDataset
    data: TrainData
    target_pairs: int
    seed: int
    work_dir: Path
    threads: int | None = None
    precision: str = "auto"
    test_pairs: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        assert self.data.target is not None
        return self.data.target

    @property
    def space(self) -> str:
        return self.data.space

    @property
    def target_pool(self) -> list[Sample]:
        assert self.data.target_pool is not None
        return self.data.target_pool.materialize()

    @property
    def test(self) -> list[Sample]:
        return self.data.test.materialize()


def make_task(
    data_spec: str,
    target: str,
    *,
    target_pairs: int = 20,
    seed: int = 0,
    work_dir: str | Path,
    dataset: PairDataset | None = None,
    sources: list[str] | None = None,
    test_pairs: int | None = None,
    threads: int | None = None,
    precision: str = "auto",
) -> Task:
    """Open the dataset and build the leave-one-sensor-out split of ``target``."""

    ds = open_dataset(data_spec) if dataset is None else dataset
    cfg = config_from_dict(
        {
            "strategy": "finetune",
            "seed": seed,
            "data": {
                "data": data_spec,
                "target": target,
                "target_pairs": target_pairs,
                "sources": sources,
                "test_pairs": test_pairs,
            },
        }
    )
    data = prepare_data(cfg, ds)
    return Task(
        data_spec=data_spec,
        dataset=ds,
        data=data,
        target_pairs=target_pairs,
        seed=seed,
        work_dir=Path(work_dir),
        threads=threads,
        precision=precision,
        test_pairs=test_pairs,
    )


class Method:
    """Base class of all benchmark methods.

    Subclasses set the class attributes and implement :meth:`fit` (may be a no-op) and
    :meth:`denoise`. ``self.fit_seconds`` is filled by :meth:`run_fit`.

    Attributes
    ----------
    name
        Registry name.
    description
        One line for tables and ``--help``.
    reference
        The paper/section its defaults come from.
    uses_sources
        Whether the method trains on source domains (self-supervised baselines do not: the ADL
        paper's protocol, §4.1).
    spaces
        Spaces the method supports.
    shows_progress
        Whether ``fit`` draws a training progress bar when given ``progress=True`` (what
        ``rawadapt bench`` passes to such methods).
    """

    name: ClassVar[str] = "method"
    description: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    uses_sources: ClassVar[bool] = False
    spaces: ClassVar[tuple[str, ...]] = ("raw", "srgb")
    shows_progress: ClassVar[bool] = False

    def __init__(self, budget: Budget | None = None, **options: Any) -> None:
        self.budget = budget or Budget()
        self.options = dict(options)
        self.fit_seconds = 0.0
        self.seed = 0

    def check_task(self, task: Task) -> None:
        if task.space not in self.spaces:
            raise ConfigError(
                f"method {self.name!r} does not support space {task.space!r} (supports {', '.join(self.spaces)})"
            )

    def fit(self, task: Task) -> None:  # pragma: no cover - default no-op
        """Train on the task's target pool (and sources). Default: nothing to train."""

    def run_fit(self, task: Task) -> None:
        """:meth:`fit` with the task checked, threads set and the time recorded."""
        import torch

        self.check_task(task)
        self.seed = task.seed
        prev = torch.get_num_threads()
        if task.threads:
            torch.set_num_threads(task.threads)
        t0 = time.perf_counter()
        try:
            self.fit(task)
        finally:
            self.fit_seconds = time.perf_counter() - t0
            torch.set_num_threads(prev)

    def denoise(self, sample: Sample) -> np.ndarray:  # pragma: no cover - abstract
        """The denoised ``(C, H, W)`` float32 image of ``sample.noisy`` (not clipped)."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """What to record next to the results."""
        return {
            "method": self.name,
            "description": self.description,
            "reference": self.reference,
            "uses_sources": self.uses_sources,
            "fit_seconds": self.fit_seconds,
            "budget": self.budget.name,
            "options": self.options,
        }


#: benchmark method name -> its Method class (imported on first use)
BENCH_METHODS: Registry[type[Method]] = Registry("method")
# training strategies (rawadapt.train), wrapped
BENCH_METHODS.register_lazy("target-only", "rawadapt.baselines.trained:TargetOnly")
BENCH_METHODS.register_lazy("finetune", "rawadapt.baselines.trained:FineTune")
BENCH_METHODS.register_lazy("joint", "rawadapt.baselines.trained:Joint")
BENCH_METHODS.register_lazy("adl", "rawadapt.baselines.trained:ADL")
BENCH_METHODS.register_lazy("adl-paired", "rawadapt.baselines.trained:ADLPaired")
BENCH_METHODS.register_lazy("adl-score", "rawadapt.baselines.trained:ADLScore")
# ADL ablations (paper Table 4)
BENCH_METHODS.register_lazy("adl-no-adl", "rawadapt.baselines.trained:ADLNoADL")
BENCH_METHODS.register_lazy("adl-no-iso", "rawadapt.baselines.trained:ADLNoISO")
BENCH_METHODS.register_lazy("adl-no-type", "rawadapt.baselines.trained:ADLNoType")
BENCH_METHODS.register_lazy("adl-no-pretrain", "rawadapt.baselines.trained:ADLNoPretrain")
BENCH_METHODS.register_lazy("adl-fixed-val", "rawadapt.baselines.trained:ADLFixedVal")
BENCH_METHODS.register_lazy("adl-ts", "rawadapt.baselines.trained:ADLTargetStep")
BENCH_METHODS.register_lazy("adl-paired-ts", "rawadapt.baselines.trained:ADLPairedTargetStep")
BENCH_METHODS.register_lazy("zoo-ft", "rawadapt.baselines.trained:ZooTargetOnly")
BENCH_METHODS.register_lazy("zoo-ft-low", "rawadapt.baselines.trained:ZooTargetOnlyLowLR")
BENCH_METHODS.register_lazy("zoo-zs", "rawadapt.baselines.zoo_zero_shot:ZooZeroShot")
BENCH_METHODS.register_lazy("finetune-eqt", "rawadapt.baselines.trained:FineTuneEqualTarget")
# conditioning rows of the ablation: paper (adl), + noise parameters, k-sigma, none
BENCH_METHODS.register_lazy("adl-noise", "rawadapt.baselines.trained:ADLNoise")
BENCH_METHODS.register_lazy("adl-ksigma", "rawadapt.baselines.trained:ADLKSigma")
BENCH_METHODS.register_lazy("adl-no-mod", "rawadapt.baselines.trained:ADLNoMod")
# validation draw and queue beyond the paper
BENCH_METHODS.register_lazy("adl-stratified", "rawadapt.baselines.trained:ADLStratified")
BENCH_METHODS.register_lazy("adl-gain", "rawadapt.baselines.trained:ADLGain")
# classical and per-image baselines
BENCH_METHODS.register_lazy("noisy", "rawadapt.baselines.trained:Identity")
BENCH_METHODS.register_lazy("bm3d", "rawadapt.baselines.bm3d:BM3D")
BENCH_METHODS.register_lazy("nlm", "rawadapt.baselines.classical:NLMeans")
BENCH_METHODS.register_lazy("wavelet", "rawadapt.baselines.classical:Wavelet")
BENCH_METHODS.register_lazy("zsn2n", "rawadapt.baselines.zsn2n:ZSN2N")
BENCH_METHODS.register_lazy("dip", "rawadapt.baselines.dip:DIP")
# self-supervised on the target pool
BENCH_METHODS.register_lazy("nbr2nbr", "rawadapt.baselines.selfsup:Neighbor2Neighbor")
BENCH_METHODS.register_lazy("b2u", "rawadapt.baselines.selfsup:Blind2Unblind")
# transfer / meta / calibration
BENCH_METHODS.register_lazy("ain", "rawadapt.baselines.ain:TransferAIN")
BENCH_METHODS.register_lazy("mzsr", "rawadapt.baselines.mzsr:MZSR")
BENCH_METHODS.register_lazy("calib-ft", "rawadapt.baselines.calib:CalibFineTune")
BENCH_METHODS.register_lazy("calib-adl", "rawadapt.baselines.calib:CalibADL")
BENCH_METHODS.register_lazy("led", "rawadapt.baselines.calib:LED")
BENCH_METHODS.register_lazy("pmn", "rawadapt.baselines.calib:PMN")


def method_class(name: str) -> type[Method]:
    """The class of a registered method.

    Raises
    ------
    ConfigError
        Unknown name (the message lists the known ones).
    """
    return BENCH_METHODS.get(name)


def make_method(name: str, *, budget: Budget | None = None, **options: Any) -> Method:
    """An instance of a registered method."""
    return method_class(name)(budget=budget, **options)
