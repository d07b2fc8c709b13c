"""Helpers shared by CLI commands: JSON output, messages, option parsing."""

from __future__ import annotations

import json
import sys
from typing import Any

from rawadapt.errors import ConfigError
from rawadapt.utils.atomic import _finite


def print_json(obj: Any) -> None:
    """Print ``obj`` as ONE line of standard JSON on stdout (the last line of a --json run)."""
    sys.stdout.write(json.dumps(_finite(obj), default=str) + "\n")
    sys.stdout.flush()


def info(msg: str) -> None:
    """A human message on stderr (keeps stdout clean for --json)."""
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def split_list(value: str | None) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]`` (None or empty -> [])."""
    if not value:
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_int_list(value: str | None, what: str) -> list[int]:
    try:
        return [int(v) for v in split_list(value)]
    except ValueError:
        raise ConfigError(f"{what} must be a comma-separated list of integers, got {value!r}") from None


PRECISION_HELP = "Network precision: auto (bf16 where the CPU has AMX/AVX512-BF16 or on CUDA, else fp32), fp32 or bf16."


def use_precision(value: str | None) -> str:
    """Validate ``--precision`` and make it the process default; returns the requested value.

    A concrete choice (fp32/bf16) is also exported as ``RAWADAPT_PRECISION`` so that the worker
    processes a command starts (``bench lan-cost`` measurements) compute in the same precision.
    """
    import os

    from rawadapt.utils.compute import ENV_VAR, PRECISIONS, set_default_precision

    if value is None:
        value = "auto"
    if value not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {value!r}")
    set_default_precision(value)
    if value != "auto":
        os.environ[ENV_VAR] = value
    return value
