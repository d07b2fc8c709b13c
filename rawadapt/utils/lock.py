"""Exclusive lock on a folder: ``FOLDER/.lock`` held with ``fcntl.flock`` by one process at a time.

The lock file holds the PID of its holder. The kernel releases the lock when the holder exits,
however it exits (``kill -9`` included); a ``.lock`` file left behind by a killed process is
therefore harmless and is taken over by the next process. A clean release removes the file.
On systems without ``fcntl`` (Windows) the lock is a no-op.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from rawadapt.errors import OutputFileError, RunLockedError

LOCK_NAME = ".lock"


def _read_pid(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


class FolderLock:
    """Hold ``folder/.lock`` exclusively (a context manager; :meth:`acquire`/:meth:`release`).

    Parameters
    ----------
    folder
        The folder to lock; created if missing.

    Raises
    ------
    RunLockedError
        (from :meth:`acquire`) another process holds the lock; the message names the folder
        and the holder's PID.
    OutputFileError
        (from :meth:`acquire`) the folder or its lock file cannot be created.

    Examples
    --------
    >>> with FolderLock("runs/a"):  # doctest: +SKIP
    ...     train()
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock without waiting and write this process's PID into the lock file."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return
        while True:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputFileError(
                    f"cannot create the lock file {LOCK_NAME}: {exc.strerror or exc}", self.folder
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pid = _read_pid(fd)
                os.close(fd)
                raise RunLockedError(
                    f"in use by another rawadapt process (PID {pid}, lock file {LOCK_NAME}); "
                    "wait for it to finish or stop it",
                    self.folder,
                ) from None
            # the previous holder may have removed the file between our open and our lock
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and release the lock (no-op when not held)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                self.path.unlink()
        os.close(fd)  # releases the flock

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
