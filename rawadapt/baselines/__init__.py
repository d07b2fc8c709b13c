"""The ADL paper's baselines behind one interface.

Importing this package registers the baselines' training strategies (lazily: a builder's module
is imported when a run uses it), so that ``rawadapt train led ...``, ``--resume`` and
``rawadapt evaluate`` of their runs work in a fresh process; the CLI imports it at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rawadapt.train.strategies import STRATEGIES, register_strategy

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.train.strategies import Builder


def _lazy(target: str) -> Builder:
    module, attr = target.split(":")

    def build(config: Any, data: Any) -> Any:
        return getattr(importlib.import_module(module), attr)(config, data)

    build.__qualname__ = build.__name__ = attr
    return build


#: (name, "module:builder", description) of the baselines' strategies
BASELINE_STRATEGIES: tuple[tuple[str, str, str], ...] = (
    (
        "ain-transfer",
        "rawadapt.baselines.ain:build_ain_transfer",
        "AIN U-Net: source pretraining, transfer of the AIN modules + last layer (Kim et al. 2020)",
    ),
    (
        "mzsr",
        "rawadapt.baselines.mzsr:build_mzsr",
        "MZSR-style meta-transfer: source pretraining, first-order MAML over sources, target fine-tuning",
    ),
    (
        "calib-ft",
        "rawadapt.baselines.calib:build_calib_ft",
        "pretraining on pairs from a profile calibrated on the target pool, then target fine-tuning "
        "(ADL paper Table 2(a) 'Single FT')",
    ),
    (
        "calib-adl",
        "rawadapt.baselines.calib:build_calib_adl",
        "calibration pretraining as theta0, then ADL with the real sources (ADL paper Table 2(a) 'Multiple ADL')",
    ),
    (
        "led",
        "rawadapt.baselines.calib:build_led",
        "LED: virtual-camera pretraining, alignment + OMNR fine-tuning on the pool (Jin et al. 2023)",
    ),
    (
        "pmn",
        "rawadapt.baselines.calib:build_pmn",
        "ADL with PMN's shot-noise augmentation of target patches (ADL paper Table 3)",
    ),
)

for _name, _target, _desc in BASELINE_STRATEGIES:
    if _name not in STRATEGIES:
        register_strategy(_name, _lazy(_target), description=_desc)
