"""What a benchmark protocol run is: :class:`BenchSettings`, the protocols' definitions
(:data:`PROTOCOLS`) and the iteration budgets they run at.

Budgets
-------
``tiny`` (tests, seconds), ``quick`` (minutes), ``default`` (GPU-scale comparisons) are
:class:`rawadapt.baselines.base.Budget` presets; ``demo`` (:data:`EXTRA_BUDGETS`) is the
``make demo`` size: ``quick`` with more iterations and a wider network, measured to finish with
noisy / BM3D / fine-tuning / ADL in under 10 minutes on 2 cores including the ``synth`` build
(numbers in docs/benchmarks.md); ``medium`` is the size of BENCHMARKS.md's core comparison (the
default U-Net, 1000 steps per method).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import Field

from rawadapt.errors import ConfigError
from rawadapt.utils.compute import PRECISIONS
from rawadapt.utils.settings import Settings

#: budgets beyond the Budget presets: name -> (base preset, overrides)
EXTRA_BUDGETS: dict[str, tuple[str, dict[str, Any]]] = {
    # make demo: quick's network a little wider (12) and 1.2x its steps: fine-tuning 600 steps,
    # ADL 100 + 400 + 100, sized so that `make demo` stays under 10 minutes on 2 cores with a fresh
    # cache (timings in BENCHMARKS.md); adl-paired is opt-in (`rawadapt demo --paired`).
    "demo": (
        "quick",
        {"iters": 400, "pretrain_iters": 100, "finetune_iters": 100, "patch": 48, "batch": 8, "width": 12, "depth": 3},
    ),
    # BENCHMARKS.md's core comparison: the default U-Net (width 16, depth 4) for 1000 steps per
    # method (ADL 200 + 600 + 200). `quick` (width 8, 500 steps) leaves every network within
    # ~0.5 dB of the noisy input on synth, too little to rank methods; this is the smallest size
    # at which the learned methods clearly separate from the input on 2 CPU cores (~4 min a cell).
    "medium": (
        "quick",
        {
            "iters": 600,
            "pretrain_iters": 200,
            "finetune_iters": 200,
            "patch": 48,
            "batch": 8,
            "width": 16,
            "depth": 4,
            "per_image_iters": 200,
            "selfsup_iters": 1000,
        },
    ),
}

#: sizes of the target-size protocol (ADL paper Figure 3)
TARGET_SIZES: tuple[int, ...] = (2, 5, 10, 20, 50)

#: the paper's single-sensor studies (Tables 4, 5, Figure 3) used Sony: default target there
PAPER_SENSOR = "SonyA7S2"

#: targets of ``crossval --quick`` when none are given (first two of these the data has)
QUICK_TARGETS: tuple[str, ...] = ("SonyA7S2", "IP", "NikonD850", "GP", "Sony", "Canon80D")


def budget_names() -> list[str]:
    """Every budget name ``--budget`` accepts."""
    from rawadapt.baselines.base import Budget

    return list(Budget.PRESETS) + list(EXTRA_BUDGETS)


def resolve_budget(name: str) -> Any:
    """The :class:`~rawadapt.baselines.base.Budget` of a name (preset or :data:`EXTRA_BUDGETS`).

    Raises
    ------
    ConfigError
        Unknown name (the known ones are listed).
    """
    from rawadapt.baselines.base import Budget

    if name in EXTRA_BUDGETS:
        base, overrides = EXTRA_BUDGETS[name]
        return replace(Budget.preset(base, **overrides), name=name)
    if name not in Budget.PRESETS:
        raise ConfigError(f"unknown budget {name!r}; known: {', '.join(budget_names())}")
    return Budget.preset(name)


@dataclass(frozen=True)
class ProtocolSpec:
    """One protocol: its name, the paper table it reproduces and its default methods.

    Attributes
    ----------
    name
        CLI name (``rawadapt bench NAME``).
    title
        Heading of its tables and report.
    paper
        The table/figure of the ADL paper it mirrors.
    methods
        Default methods (``--methods`` overrides).
    optional_methods
        Default methods that are dropped (with a note) when not available in this install,
        instead of failing (``calibration``: whatever calibration methods exist).
    single_target
        Default targets: the paper's sensor (True) or every sensor of the data (False).
    """

    name: str
    title: str
    paper: str
    methods: tuple[str, ...]
    optional_methods: tuple[str, ...] = ()
    single_target: bool = False


PROTOCOLS: dict[str, ProtocolSpec] = {
    "crossval": ProtocolSpec(
        "crossval",
        "Leave-one-sensor-out cross-validation",
        "ADL paper Table 1",
        ("noisy", "target-only", "finetune", "joint", "adl", "adl-paired"),
    ),
    "ablation": ProtocolSpec(
        "ablation",
        "ADL ablation",
        "ADL paper Table 4",
        (
            "noisy",
            "adl",
            "adl-no-adl",
            "adl-no-iso",
            "adl-no-type",
            "adl-no-pretrain",
            "adl-fixed-val",
            "adl-noise",
            "adl-ksigma",
            "adl-no-mod",
            "adl-stratified",
            "adl-gain",
        ),
        single_target=True,
    ),
    "harmful": ProtocolSpec(
        "harmful",
        "Harmful source data",
        "ADL paper Table 5",
        ("noisy", "finetune", "adl", "adl-paired"),
        single_target=True,
    ),
    "target-size": ProtocolSpec(
        "target-size",
        "PSNR vs target-set size |T_adp|",
        "ADL paper Figure 3",
        ("noisy", "finetune", "adl", "adl-fixed-val"),
        single_target=True,
    ),
    "calibration": ProtocolSpec(
        "calibration",
        "Calibration-based training, single vs multiple sensors",
        "ADL paper Table 2(a)",
        ("noisy", "calib-ft", "calib-adl", "finetune", "adl", "led"),
        optional_methods=("calib-ft", "calib-adl", "led"),
        single_target=True,
    ),
}


def protocol_spec(name: str) -> ProtocolSpec:
    """The :class:`ProtocolSpec` of ``name``.

    Raises
    ------
    ConfigError
        Unknown protocol (the known ones are listed).
    """
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}, lan, lan-cost")
    return PROTOCOLS[name]


ON_CHANGE = ("refuse", "recompute")


class BenchSettings(Settings):
    """Everything that defines a protocol run (``rawadapt bench PROTOCOL ...``).

    Attributes
    ----------
    protocol
        A name of :data:`PROTOCOLS`.
    data
        Dataset spec (``synth``, ``polyu:PATH``, ``polyu:PATH+synth-srgb``...).
    out
        Output folder.
    targets
        Held-out sensors (None: every sensor of the data's first part for ``crossval``, the
        paper's sensor for the single-sensor protocols; with ``quick`` at most two).
    methods
        Method names (None: the protocol's defaults; ``["all"]``: every registered method).
    budget
        Budget name (None: ``quick`` with ``quick``, else ``default``).
    quick
        A minutes-size run (budget ``quick``, fewer default targets).
    seeds
        Seeds (split + training); several give mean, std and min-max over seeds.
    target_pairs
        |T_adp| (None: 20, or 6 when a target has fewer pairs than that, e.g. PolyU).
    test_pairs
        Cap on the target test images (None: all).
    sources
        Restrict the source sensors (None: every other sensor).
    sizes
        ``target-size``: the |T_adp| values (clamped per target to what the data has).
    max_pool_fraction
        ``target-size``: a size above this fraction of the target's images is DROPPED (not
        clamped), so that most of a small camera stays for testing (PolyU leave-one-camera-out:
        0.5, "never more than half of its images").
    harmful_count
        ``harmful``: pairs per harmful domain (None: the median real source-domain size).
    harmful_only
        ``harmful``: the paper's Table 5 protocol — no real source sensors; base = the target's
        pairs only, ``+harmful`` = the harmful set as the only source (methods that need sources
        are skipped in the base variant).
    harmful_label
        ``harmful``: ``own`` (the harmful pairs carry a sensor type of their own) or ``target``
        (they claim the target's type, a mislabelled dataset; see ``TrainConfig.data.harmful_label``).
    threads
        Torch threads (None: torch's default).
    precision
        ``auto`` | ``fp32`` | ``bf16`` (:mod:`rawadapt.utils.compute`); the RESOLVED precision is
        part of every cell's settings (it changes the numbers), ``auto`` is not.
    crops
        Test images per target whose crops are stored for the report (first ones).
    crop
        Side of the stored crops in displayed pixels (RAW: ``crop / 2`` packed pixels).
    on_change
        A finished cell whose settings differ from this run's: ``refuse`` (error, nothing
        computed) or ``recompute``.
    keep_going
        A failing cell is recorded (``error.json``) and the run goes on, instead of stopping.
    plots
        Draw ``plots/*.png`` at the end (the report shows them).
    report
        Write ``report.html`` at the end.
    """

    protocol: str
    data: str
    out: str
    targets: list[str] | None = None
    methods: list[str] | None = None
    budget: str | None = None
    quick: bool = False
    seeds: list[int] = Field(default_factory=lambda: [0])
    target_pairs: int | None = None
    test_pairs: int | None = None
    sources: list[str] | None = None
    sizes: list[int] = Field(default_factory=lambda: list(TARGET_SIZES))
    max_pool_fraction: float | None = Field(default=None, gt=0.0, le=1.0)
    harmful_count: int | None = None
    harmful_label: Literal["own", "target"] = "own"
    harmful_only: bool = False
    threads: int | None = None
    precision: str = "auto"
    crops: int = 2
    crop: int = 128
    on_change: str = "refuse"
    keep_going: bool = False
    plots: bool = True
    report: bool = True

    def __init__(self, protocol: str | None = None, /, **data: Any) -> None:
        """``BenchSettings("crossval", data=..., out=...)``: the protocol may come first."""
        if protocol is not None:
            data["protocol"] = protocol
        super().__init__(**data)

    def validate(self) -> BenchSettings:  # type: ignore[override]
        """Check the settings; return self.

        Raises
        ------
        ConfigError
            Unknown protocol/budget/policy, empty or duplicate seeds, bad sizes.
        """
        protocol_spec(self.protocol)
        resolve_budget(self.budget_name)
        if not self.seeds:
            raise ConfigError("--seeds needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"duplicate seeds in {self.seeds}")
        if self.target_pairs is not None and self.target_pairs < 1:
            raise ConfigError(f"--target-pairs must be at least 1, got {self.target_pairs}")
        if self.test_pairs is not None and self.test_pairs < 1:
            raise ConfigError(f"--test-pairs must be at least 1, got {self.test_pairs}")
        if not self.sizes or any(n < 1 for n in self.sizes):
            raise ConfigError(f"--sizes must be positive integers, got {self.sizes}")
        if self.on_change not in ON_CHANGE:
            raise ConfigError(f"unknown policy {self.on_change!r}; expected one of {', '.join(ON_CHANGE)}")
        if self.crops < 0 or self.crop < 16:
            raise ConfigError("crops must be >= 0 and the crop side >= 16 pixels")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.targets is not None and len(set(self.targets)) != len(self.targets):
            raise ConfigError(f"duplicate targets in {self.targets}")
        return self

    @property
    def budget_name(self) -> str:
        return self.budget or ("quick" if self.quick else "default")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
