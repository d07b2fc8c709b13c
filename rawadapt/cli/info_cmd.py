"""``rawadapt info FILE``: what a file is (camera, CFA, levels, ISO, size), human or ``--json``.

Dispatch by extension (:mod:`rawadapt.io.readers`):

* RAW containers (.dng .nef .arw .cr2 ...): LibRaw metadata, plus a pixel check (decodes the
  frame to refuse empty/stripped files and report pixel statistics; ``--meta-only`` skips it);
* ``.raw``/``.bin`` headerless dumps: need ``--width --height --cfa`` (and ``--black``,
  ``--white``; defaults 0 and 65535);
* PNG/PGM/TIFF: with ``--cfa`` a Bayer mosaic (levels as above), else an sRGB image (size,
  channels, bit depth);
* ``.npy``: shape, dtype, value range;
* SIDD ``.MAT``: metadata files (CFA, ISO, noise profile) or HDF5 mosaics (size, range).

Bad input raises a typed :class:`~rawadapt.errors.RawAdaptError`; the CLI prints one line and
exits with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import typer

from rawadapt.cli.common import print_json
from rawadapt.errors import ConfigError, InputFileError


class _Levels(TypedDict):
    """The CFA and levels a headerless mosaic reader takes."""

    cfa: str
    black_level: list[float] | float
    white_level: float


def _parse_black(value: str | None) -> list[float] | float:
    if value is None or value == "":
        return 0.0
    try:
        vals = [float(v) for v in value.replace(",", " ").split()]
    except ValueError:
        raise ConfigError(
            f"--black must be one number or four comma-separated numbers (R,G1,G2,B), got {value!r}"
        ) from None
    if len(vals) not in (1, 4):
        raise ConfigError(f"--black needs 1 or 4 values (canonical R,G1,G2,B), got {len(vals)}")
    return vals[0] if len(vals) == 1 else vals


def _pixel_stats(mosaic: Any, white: float) -> dict[str, Any]:
    import numpy as np

    m = np.asarray(mosaic)
    return {
        "min_dn": int(m.min()),
        "max_dn": int(m.max()),
        "mean_dn": float(m.mean()),
        "zero_fraction": float(1.0 - np.count_nonzero(m) / m.size),
        "saturated_fraction": float(np.count_nonzero(m >= white) / m.size),
    }


def describe(
    path: Path,
    *,
    cfa: str | None = None,
    black: str | None = None,
    white: float | None = None,
    width: int | None = None,
    height: int | None = None,
    dtype: str = "<u2",
    offset: int = 0,
    meta_only: bool = False,
) -> dict[str, Any]:
    """The information ``rawadapt info`` prints, as a JSON-friendly dict."""
    from rawadapt.io.readers import file_kind

    if not path.exists():
        raise InputFileError("no such file", path)
    kind = file_kind(path)
    if kind == "raw" and (white is not None or black is not None or cfa is not None):
        # the level/CFA flags describe headerless or PNG mosaics; a RAW file has its own
        raise ConfigError(
            "--cfa/--black/--white describe headerless or PNG mosaics; a camera RAW file carries its own", path
        )
    if kind == "raw":
        from rawadapt.io.raw import read_raw, read_raw_metadata

        if meta_only:
            info = read_raw_metadata(path).to_dict()
        else:
            img = read_raw(path)
            info = img.meta.to_dict()
            info["pixels"] = _pixel_stats(img.mosaic, img.white_level)
        return {"kind": "raw", **info}
    if kind == "headerless" or (kind == "image" and cfa is not None):
        from rawadapt.io.headerless import read_headerless, read_mosaic_image

        if cfa is None:
            raise ConfigError("a headerless file needs --width, --height and --cfa (and --black/--white)", path)
        levels: _Levels = {
            "cfa": cfa,
            "black_level": _parse_black(black),
            "white_level": 65535.0 if white is None else white,
        }
        if kind == "headerless":
            if width is None or height is None:
                raise ConfigError("a headerless file needs --width and --height", path)
            img = read_headerless(path, width=width, height=height, dtype=dtype, offset=offset, **levels)
        else:
            img = read_mosaic_image(path, **levels)
        info = img.meta.to_dict()
        info["pixels"] = _pixel_stats(img.mosaic, img.white_level)
        return {"kind": "mosaic", **info}
    if kind == "image":
        from rawadapt.io.images import load_pixels

        arr = load_pixels(path)
        ch = 1 if arr.ndim == 2 else int(arr.shape[-1])
        return {
            "kind": "image",
            "path": str(path),
            "camera": None,
            "cfa": None,
            "black_level": None,
            "white_level": None,
            "iso": None,
            "width": int(arr.shape[1]),
            "height": int(arr.shape[0]),
            "channels": ch,
            "dtype": str(arr.dtype),
            "bits": 8 * arr.dtype.itemsize,
            "hint": "single-channel: pass --cfa (and --black/--white) to read it as a Bayer mosaic"
            if ch == 1
            else None,
        }
    if kind == "array":
        from rawadapt.io.images import read_array

        a = read_array(path)
        stats = {"min": float(a.min()), "max": float(a.max())} if a.size and a.dtype.kind in "uif" else {}
        return {
            "kind": "array",
            "path": str(path),
            "camera": None,
            "cfa": None,
            "black_level": None,
            "white_level": None,
            "iso": None,
            "shape": list(a.shape),
            "dtype": str(a.dtype),
            "width": int(a.shape[-1]) if a.ndim >= 2 else None,
            "height": int(a.shape[-2]) if a.ndim >= 2 else None,
            **stats,
        }
    if kind == "mat":
        import h5py

        from rawadapt.io.mat import read_sidd_metadata, read_sidd_mosaic

        if h5py.is_hdf5(path):  # a SIDD NOISY/GT mosaic (MATLAB v7.3)
            m = read_sidd_mosaic(path)
            return {
                "kind": "sidd-mosaic",
                "path": str(path),
                "camera": None,
                "cfa": None,
                "black_level": None,
                "white_level": 1.0,
                "iso": None,
                "width": int(m.shape[1]),
                "height": int(m.shape[0]),
                "min": float(m.min()),
                "max": float(m.max()),
                "hint": "the CFA is in the *_METADATA_RAW_*.MAT file beside it",
            }
        md = read_sidd_metadata(path)
        md.pop("tags", None)
        return {"kind": "sidd-metadata", "path": str(path), "camera": f"{md['make']} {md['model']}".strip(), **md}
    raise InputFileError(f"unsupported file type {path.suffix!r}", path)


_ORDER = (
    "kind",
    "camera",
    "make",
    "model",
    "cfa",
    "black_level",
    "white_level",
    "iso",
    "exposure_time",
    "width",
    "height",
    "raw_width",
    "raw_height",
    "channels",
    "bits",
    "dtype",
    "shape",
)


def _human(info: dict[str, Any]) -> str:
    lines = []
    keys = [k for k in _ORDER if k in info] + [k for k in info if k not in _ORDER]
    for k in keys:
        v = info[k]
        if v is None or k == "extra":
            continue
        if k == "pixels" and isinstance(v, dict):
            v = ", ".join(f"{a}={b:.4g}" if isinstance(b, float) else f"{a}={b}" for a, b in v.items())
        elif k == "black_level" and isinstance(v, list):
            v = " ".join(f"{b:g}" for b in v) + "  (R G1 G2 B)"
        elif isinstance(v, list) and v and isinstance(v[0], list):
            v = "; ".join(" ".join(f"{x:.4g}" for x in row) for row in v)
        elif isinstance(v, list):
            v = " ".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in v)
        elif isinstance(v, float):
            v = f"{v:g}"
        lines.append(f"{k:>22}: {v}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("info")
    def info(
        file: Path = typer.Argument(
            ...,
            help="RAW file (.dng .nef .arw .cr2 ...), headerless .raw/.bin, "
            "PNG/PGM/TIFF (mosaic with --cfa, else sRGB), .npy or SIDD .MAT.",
        ),
        json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
        cfa: str | None = typer.Option(None, "--cfa", help="CFA of a headerless/PNG mosaic, e.g. RGGB."),
        black: str | None = typer.Option(None, "--black", help="Black level: one value or R,G1,G2,B (default 0)."),
        white: float | None = typer.Option(None, "--white", help="White level in DN (default 65535)."),
        width: int | None = typer.Option(None, "--width", help="Headerless: pixels per row."),
        height: int | None = typer.Option(None, "--height", help="Headerless: rows."),
        dtype: str = typer.Option("<u2", "--dtype", help="Headerless: NumPy dtype of a pixel."),
        offset: int = typer.Option(0, "--offset", help="Headerless: bytes to skip."),
        meta_only: bool = typer.Option(False, "--meta-only", help="RAW: metadata only, do not decode pixels."),
    ) -> None:
        """Show what a file is: camera, CFA, black/white levels, ISO, exposure, size."""
        d = describe(
            file,
            cfa=cfa,
            black=black,
            white=white,
            width=width,
            height=height,
            dtype=dtype,
            offset=offset,
            meta_only=meta_only,
        )
        if json_:
            print_json(d)
        else:
            typer.echo(f"{file}")
            typer.echo(_human(d))
