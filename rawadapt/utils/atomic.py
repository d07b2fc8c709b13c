"""Atomic file writes: write to a temporary file in the same folder, then ``os.replace``.

A reader never sees a half-written output or checkpoint, and an interrupted write leaves the
previous version intact. An ``OSError`` while writing (full disk, read-only folder...) becomes an
:class:`~rawadapt.errors.OutputFileError` naming the destination. A process killed mid-write
leaves a ``.NAME.tmp-XXXX.SUFFIX`` file behind; :func:`remove_stale_temporaries` removes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rawadapt.errors import OutputFileError

#: glob of the temporary files :func:`atomic_path` creates (``.NAME.tmp-XXXX.SUFFIX``)
TEMP_GLOB = ".*.tmp-*"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    Parameters
    ----------
    path
        Final destination. Its parent folder is created if needed.
    suffix
        Suffix of the temporary file (default: the destination's suffix, so writers that
        dispatch on the extension keep working).

    Examples
    --------
    >>> with atomic_path("out.png") as tmp:  # doctest: +SKIP
    ...     image.save(tmp)
    """
    dest = Path(path)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # The temporary name keeps the destination's suffix so that writers which dispatch on
        # the extension (PIL, tifffile, np.save) write the right format.
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{dest.name}.tmp-",
            suffix=dest.suffix if suffix is None else suffix,
            dir=dest.parent,
        )
    except OSError as exc:
        raise OutputFileError(f"cannot write: {exc.strerror or exc}", dest) from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600 files; give the output the permissions a plain open() would (umask)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)
        yield tmp
        os.replace(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno is not None:
            # ENOSPC, EDQUOT, EFBIG, EROFS, EACCES, EISDIR... while writing: name the destination
            raise OutputFileError(f"cannot write: {exc.strerror or exc}", dest) from None
        raise


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files a killed :func:`atomic_path` write left in ``folder``.

    Only call this while no other process writes into ``folder`` (e.g. under its run lock).

    Parameters
    ----------
    folder
        The folder to clean (not recursive).

    Returns
    -------
    The removed paths.
    """
    removed = []
    for p in sorted(Path(folder).glob(TEMP_GLOB)):
        if p.is_file() and not p.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (fsync before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (non-finite floats become ``null``)."""
    write_text(path, json.dumps(_finite(obj), indent=indent, sort_keys=False) + "\n")


def _finite(obj: Any) -> Any:
    """Replace NaN/Inf floats by None so the JSON is standard (json.dumps would write NaN)."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
