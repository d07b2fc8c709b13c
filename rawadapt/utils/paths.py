"""Where rawadapt keeps its cache (decoded arrays, the built-in ``synth`` benchmark)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder: ``$RAWADAPT_CACHE`` if set, else ``~/.cache/rawadapt``."""
    env = os.environ.get("RAWADAPT_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "rawadapt"
    return root


def shared_data_dir() -> Path | None:
    """The real-data folder ``../shared/data`` beside the repository, if present.

    ``$RAWADAPT_SHARED_DATA`` overrides it. Used by tests and benchmarks only; nothing in the
    library requires it.
    """
    env = os.environ.get("RAWADAPT_SHARED_DATA")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    p = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return p if p.is_dir() else None
