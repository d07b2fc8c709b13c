"""Output guards shared by every command that writes files.

* :func:`same_file`: two paths name one file (same inode when both exist, which covers ``./``
  and ``..`` spellings, symbolic and hard links; the same resolved path otherwise).
* :func:`check_outputs`: no output may land on an input of the same command, nor two outputs
  on one file.
* :func:`check_writable`: an output can be created (not an existing folder or special file, no
  parent that is a file, a writable folder), checked before any computation.

All raise :class:`~rawadapt.errors.OutputFileError` (exit code 2) naming the output.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from rawadapt.errors import OutputFileError

PathLike = str | os.PathLike[str]


def _resolved(p: Path) -> Path:
    return Path(os.path.abspath(p)).resolve(strict=False)


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file.

    Parameters
    ----------
    a, b
        Paths; either may not exist.

    Returns
    -------
    True when both exist and share device and inode (hard or symbolic links, any spelling), or
    when their fully resolved paths are equal.

    Examples
    --------
    >>> same_file("a/../b.png", "b.png")
    True
    """
    pa, pb = Path(a), Path(b)
    try:
        sa, sb = os.stat(pa), os.stat(pb)
    except OSError:
        return _resolved(pa) == _resolved(pb)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_outputs(outputs: Iterable[PathLike | None], inputs: Iterable[PathLike | None]) -> None:
    """Refuse outputs that would overwrite an input, or two outputs on the same file.

    Parameters
    ----------
    outputs
        Every file the command will write (None entries are ignored).
    inputs
        Every file the command reads (None entries are ignored).

    Raises
    ------
    OutputFileError
        An output is one of the inputs, or two outputs are one file.
    """
    outs = [Path(o) for o in outputs if o is not None]
    ins = [Path(i) for i in inputs if i is not None]
    for o in outs:
        for i in ins:
            if same_file(o, i):
                raise OutputFileError(f"this output is the input file {i}; refusing to overwrite the input", o)
    for k, o in enumerate(outs):
        for o2 in outs[k + 1 :]:
            if same_file(o, o2):
                raise OutputFileError(f"two outputs of this command are the same file ({o2}); refusing", o)


def check_writable(path: PathLike) -> None:
    """Refuse an output path that cannot be written, before anything is computed.

    Creates nothing that stays: the folder is probed with an unnamed temporary file.

    Parameters
    ----------
    path
        The output file (its folders may not exist yet; they are created when it is written).

    Raises
    ------
    OutputFileError
        The path is an existing folder or a special file, a parent is a file, or the nearest
        existing folder is not writable.
    """
    p = Path(path)
    if p.is_dir():
        raise OutputFileError("is an existing folder; give a file name", p)
    if p.exists() and not p.is_file():
        raise OutputFileError("exists and is not a regular file", p)
    folder = Path(os.path.abspath(p)).parent
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputFileError(f"cannot create it: {folder} is not a folder", p)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputFileError(f"the folder {folder} is not writable", p)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputFileError(f"cannot write in {folder}: {exc.strerror or exc}", p) from None


def check_output_paths(outputs: Iterable[PathLike | None], inputs: Iterable[PathLike | None]) -> None:
    """:func:`check_outputs` then :func:`check_writable` for every output: the one call commands make."""
    outs = [o for o in outputs if o is not None]
    check_outputs(outs, inputs)
    for o in outs:
        check_writable(o)
