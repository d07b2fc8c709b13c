"""The ADL paper's evaluation protocols on data we have (``rawadapt bench PROTOCOL``).

* ``crossval`` (Table 1): leave-one-sensor-out over the chosen targets, every method;
* ``ablation`` (Table 4): ADL and its ablation switches;
* ``harmful`` (Table 5): base sources, + harmful1, + harmful2;
* ``target-size`` (Figure 3): PSNR vs |T_adp| in {2, 5, 10, 20, 50};
* ``calibration`` (Table 2a): calibration-based training, single vs multiple sensors.

(LAN's tables are :mod:`rawadapt.eval.protocols.lan` and :mod:`rawadapt.eval.protocols.lan_cost`.)

Usage::

    from rawadapt.eval.protocols import BenchSettings, run_protocol
    res = run_protocol(BenchSettings("crossval", data="synth", out="runs/bench", quick=True))
    res["result"]["rows"]          # also in runs/bench/results.{csv,json,md}
"""

from typing import Any

from rawadapt.eval.protocols.runner import run_protocol as _run
from rawadapt.eval.protocols.settings import (
    EXTRA_BUDGETS,
    PROTOCOLS,
    BenchSettings,
    ProtocolSpec,
    budget_names,
    protocol_spec,
    resolve_budget,
)

__all__ = [
    "BenchSettings",
    "ProtocolSpec",
    "PROTOCOLS",
    "EXTRA_BUDGETS",
    "budget_names",
    "protocol_spec",
    "resolve_budget",
    "run_protocol",
]


def run_protocol(settings: BenchSettings, **kwargs: Any) -> dict[str, Any]:
    """See :func:`rawadapt.eval.protocols.runner.run_protocol` (imported lazily: it pulls torch)."""

    return _run(settings, **kwargs)
