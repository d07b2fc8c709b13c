"""Shared fixtures. Real data comes from ../shared/data (never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RAWADAPT_SHARED_DATA", REPO.parent / "shared" / "data"))

# "auto" precision resolves to fp32 in the suite, whatever CPU runs it (bf16 has its own tests)
os.environ.setdefault("RAWADAPT_PRECISION", "fp32")

# Under pytest-xdist each worker gets one thread: 2 workers x 1 thread on 2 cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:  # pragma: no cover
            pass


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip (with the reason) when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} not found")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test uses a private RAWADAPT_CACHE (and the tiny synth build) unless it sets its own."""
    cache = tmp_path_factory.getbasetemp() / "rawadapt_cache"
    monkeypatch.setenv("RAWADAPT_CACHE", str(cache))
    # profiles a user imported (~/.config/rawadapt/profiles) must not change what tests see
    monkeypatch.setenv("RAWADAPT_USER_PROFILES", str(tmp_path_factory.getbasetemp() / "rawadapt_user_profiles"))
    # `synth` opened without an explicit size builds the tiny variant (seconds, not minutes)
    monkeypatch.setenv("RAWADAPT_SYNTH_SIZE", "tiny")
