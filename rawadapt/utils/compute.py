"""Precision and memory-layout policy, decided at run time from the CPU's features.

The machines this project runs on change from day to day (an Intel Xeon with AMX one day, an
AVX2-only AMD EPYC the next), and the fastest numeric format differs between them: with AMX or
AVX512-BF16, oneDNN runs bfloat16 convolutions faster than fp32; without them bf16 takes an
emulated path slower than fp32 (figures for each machine in BENCHMARKS.md). So the choice is
made here, when a network runs, never fixed in code or docs:

* ``"auto"`` (the default everywhere): ``"bf16"`` on a CUDA device that supports it and on a CPU
  whose ``/proc/cpuinfo`` flags include ``amx_bf16`` or ``avx512_bf16``; ``"fp32"`` otherwise.
  The environment variable ``RAWADAPT_PRECISION=fp32|bf16`` overrides what ``"auto"`` resolves
  to (the test suite pins ``fp32`` so that its numbers do not depend on the CPU a CI run draws).
* ``"bf16"``: bfloat16 autocast around the network's forward pass only. Master weights, optimizer
  state, the loss and the residual addition of the backbones (``x + f(x)``: the fp32 input plus
  the network's bf16 branch promotes to fp32) stay fp32; the network's output is returned as fp32.
* ``"fp32"``: plain float32.

Both run with channels-last (NHWC) inputs on CPU, where oneDNN's convolutions are faster.

The policy is applied in one place, :meth:`rawadapt.models.base.Denoiser.__call__`, so training,
ADL's validation passes, inference, LAN and every baseline that runs a :class:`Denoiser` follow
it. A model's own ``compute_precision`` (None by default) overrides the process-wide default set
by :func:`set_default_precision` / :func:`precision_scope` (the CLI's ``--precision``, a
training config's ``precision``, a benchmark task's precision).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
#: the /proc/cpuinfo flags that give native bfloat16 arithmetic (AMX tiles or AVX512-BF16 dot products)
BF16_FLAGS: tuple[str, ...] = ("amx_bf16", "avx512_bf16")
#: flags worth writing beside a timing (the ones that decide the speed of convolutions)
REPORTED_FLAGS: tuple[str, ...] = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)

_default: str = "auto"
ENV_VAR = "RAWADAPT_PRECISION"


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name and feature flags (empty when they cannot be read)."""

    model: str
    flags: frozenset[str]

    @property
    def native_bf16(self) -> bool:
        """Whether the CPU has AMX-BF16 or AVX512-BF16."""
        return any(f in self.flags for f in BF16_FLAGS)

    def reported_flags(self) -> list[str]:
        """The speed-relevant flags this CPU has, in :data:`REPORTED_FLAGS` order."""
        return [f for f in REPORTED_FLAGS if f in self.flags]


def _read_cpuinfo(path: str = "/proc/cpuinfo") -> CpuInfo:
    model, flags = "", frozenset[str]()
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = frozenset(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    return CpuInfo(model or platform.processor() or platform.machine(), flags)


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's :class:`CpuInfo` (read once per process)."""
    return _read_cpuinfo()


def check_precision(value: str) -> str:
    """``value`` if it is one of :data:`PRECISIONS`; ValueError otherwise."""
    if value not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {value!r}")
    return value


def resolve_precision(requested: str | None = None, device: Any = "cpu") -> str:
    """The precision that actually runs: ``"fp32"`` or ``"bf16"``.

    Parameters
    ----------
    requested
        ``"auto"``, ``"fp32"``, ``"bf16"``, or None (= the process default, see
        :func:`default_precision`).
    device
        The device the network runs on (a string or ``torch.device``).
    """
    req = check_precision(default_precision() if requested is None else requested)
    if req != "auto":
        return req
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in ("fp32", "bf16"):
        return forced
    dev_type = getattr(device, "type", None) or str(device).split(":")[0]
    if dev_type == "cuda":
        import torch

        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    if dev_type != "cpu":
        return "fp32"
    return "bf16" if cpu_info().native_bf16 else "fp32"


def default_precision() -> str:
    """The process-wide requested precision (``"auto"`` unless set)."""
    return _default


def set_default_precision(value: str) -> None:
    """Set the process-wide requested precision (``"auto"``, ``"fp32"`` or ``"bf16"``)."""
    global _default
    _default = check_precision(value)


@contextlib.contextmanager
def precision_scope(value: str | None) -> Iterator[None]:
    """Run a block with another process-wide precision (None = leave it as it is)."""
    global _default
    if value is None:
        yield
        return
    before = _default
    _default = check_precision(value)
    try:
        yield
    finally:
        _default = before


def autocast(precision: str, device: Any = "cpu") -> contextlib.AbstractContextManager[Any]:
    """A bfloat16 autocast context for ``precision == "bf16"``, a no-op otherwise."""
    if precision != "bf16":
        return contextlib.nullcontext()
    import torch

    dev_type = getattr(device, "type", None) or str(device).split(":")[0]
    return torch.autocast(dev_type, dtype=torch.bfloat16)


def policy_forward(fn: Any, x: Any, *args: Any, precision: str | None = None, **kwargs: Any) -> Any:
    """``fn(x, *args, **kwargs)`` under the compute policy: channels-last 4-D CPU input, bfloat16
    autocast when ``precision`` (None = the process default) resolves to ``"bf16"``, output
    returned as float32. Used for networks that are not :class:`~rawadapt.models.base.Denoiser`
    (DIP's and ZS-N2N's per-image networks); denoisers apply it in their ``__call__``."""
    import torch

    if x.ndim == 4 and x.device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    resolved = resolve_precision(precision, x.device)
    if resolved == "fp32":
        return fn(x, *args, **kwargs)
    with autocast(resolved, x.device):
        y = fn(x, *args, **kwargs)
    return y.float()


def compute_record(requested: str | None = None, device: Any = "cpu") -> dict[str, Any]:
    """What a run's config/metrics and a benchmark's machine line record about the compute:
    requested and resolved precision, layout, CPU model and its speed-relevant flags."""
    info = cpu_info()
    req = default_precision() if requested is None else check_precision(requested)
    return {
        "precision_requested": req,
        "precision": resolve_precision(req, device),
        "memory_format": "channels_last",
        "cpu": info.model,
        "cpu_flags": info.reported_flags(),
        "native_bf16": info.native_bf16,
    }


def machine_line(requested: str | None = None, device: Any = "cpu", threads: int | None = None) -> str:
    """One line for a benchmark table: CPU, flags, resolved precision, torch version, threads."""
    import torch

    rec = compute_record(requested, device)
    flags = " ".join(rec["cpu_flags"]) or "none of " + "/".join(REPORTED_FLAGS[:3])
    n = threads if threads is not None else torch.get_num_threads()
    return (
        f"{rec['cpu']} ({os.cpu_count()} logical CPUs; flags: {flags}); precision {rec['precision']} "
        f"({rec['precision_requested']}), channels-last; torch {torch.__version__}, {n} thread(s)"
    )
