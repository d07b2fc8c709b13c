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
