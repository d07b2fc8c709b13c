"""Library code reports progress through :mod:`logging` (logger ``"rawadapt"``); the command line
decides what a person sees (:func:`cli_logging`: INFO and above, plain lines on stderr).

Used as ``from rawadapt.utils.log import logger; logger.info("...")``. A program embedding
rawadapt configures the ``"rawadapt"`` logger like any other.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

logger = logging.getLogger("rawadapt")


class _StderrHandler(logging.StreamHandler):
    """Writes to the CURRENT ``sys.stderr`` (test runners and the CLI's callers replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def cli_logging(level: int = logging.INFO) -> None:
    """Show the library's messages as plain lines on stderr (idempotent)."""
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
