"""``rawadapt profiles``, ``rawadapt simulate``, ``rawadapt calibrate`` and ``rawadapt data build``.

Thin wrappers over :mod:`rawadapt.noise`: parse, call the library, print (``--json``: one line
of JSON on stdout, human messages on stderr).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import typer

from rawadapt.cli.common import info, print_json
from rawadapt.errors import ConfigError, InputFileError, ShapeError

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


# --------------------------------------------------------------------------------------------
# File helpers
# --------------------------------------------------------------------------------------------


def _load_npy(path: Path) -> np.ndarray:
    from rawadapt.io.images import read_array

    return read_array(path)


def read_dn_planes(
    path: str | Path, *, cfa: str | None = None, black: list[float] | None = None, white: float | None = None
) -> dict[str, Any]:
    """A RAW file or ``.npy`` array as packed DN planes ``(4, h, w)`` float64 plus levels.

    ``.npy``: ``(4, h, w)`` packed canonical DN planes or an ``(H, W)`` mosaic (``cfa`` needed);
    levels must be given. RAW containers: through :func:`rawadapt.io.raw.read_raw`.
    """
    from rawadapt.io.bayer import pack

    p = Path(path)
    if not p.is_file():
        raise InputFileError("file not found", p)
    if p.suffix.lower() == ".npy":
        a = _load_npy(p)
        if a.ndim == 2:
            if cfa is None:
                raise ConfigError(f"{p.name}: a 2-D mosaic needs --cfa")
            a = pack(a, cfa)
        if a.ndim != 3 or a.shape[0] != 4:
            raise ShapeError(f"expected packed DN planes (4, h, w) or a mosaic (H, W), got {a.shape}", p)
        if black is None or white is None:
            raise ConfigError(f"{p.name}: .npy input needs --black and --white (levels in DN)")
        return {"planes": a.astype(np.float64), "cfa": cfa, "black": black, "white": float(white), "iso": None}
    from rawadapt.io.raw import read_raw

    img = read_raw(p, clip=False)
    return {
        "planes": pack(img.mosaic, img.cfa).astype(np.float64),
        "cfa": img.cfa,
        "black": black if black is not None else list(img.black_level),
        "white": float(white if white is not None else img.white_level),
        "iso": img.meta.iso,
    }


def _parse_black(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        vals = [float(v) for v in value.replace(",", " ").split()]
    except ValueError:
        raise ConfigError(f"--black must be one or four numbers, got {value!r}") from None
    if len(vals) not in (1, 4):
        raise ConfigError(f"--black must be one or four numbers, got {value!r}")
    return vals * 4 if len(vals) == 1 else vals


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def profiles_cmd(json_: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """List the camera noise profiles (built-in and $RAWADAPT_PROFILES)."""
    from rawadapt.noise.profiles import profile_dirs, profile_summaries

    rows = profile_summaries()
    if json_:
        print_json({"profiles": rows, "folders": [str(d) for d in profile_dirs()]})
        return
    w = max([14, *(len(r["name"]) for r in rows)])  # imported profiles have long names
    typer.echo(
        f"{'name':<{w}} {'kind':<4} {'cfa':<5} {'bits':>4} {'black':>6} {'white':>6} "
        f"{'ISO range':>12} {'K range (DN/e-)':>17}  read"
    )
    for r in rows:
        kmin, kmax = r["k_range"]
        typer.echo(
            f"{r['name']:<{w}} {r['kind']:<4} {r['cfa']:<5} {r['bits']:>4} {r['black_level'][0]:>6g} "
            f"{r['white_level']:>6g} {r['iso_range'][0]:>5g}-{r['iso_range'][1]:<6g} "
            f"{kmin:>8.3g}-{kmax:<8.3g}  {r['read_model']}"
        )


def simulate_cmd(
    src: Path = typer.Argument(
        ..., help="Clean input: a RAW file, .npy packed planes in [0, 1] (4, h, w), or an sRGB image (PNG/JPEG/TIFF)."
    ),
    dst: Path = typer.Argument(..., help="Output: .dng (RAW input), .npy (packed planes) or an image."),
    profile: str = typer.Option(..., "--profile", help="Profile name (see `rawadapt profiles`) or YAML path."),
    iso: float = typer.Option(..., "--iso", help="ISO of the simulated capture."),
    ratio: float = typer.Option(
        1.0,
        "--ratio",
        help="Exposure ratio (low light): the capture is this many "
        "times darker; .npy/image outputs are brightened back.",
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same noise)."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Add a profile's noise to a clean file."""
    from dataclasses import replace

    import torch

    from rawadapt.noise.model import add_noise, sample_noise_params
    from rawadapt.noise.profiles import load_profile
    from rawadapt.utils.guard import check_output_paths

    prof = load_profile(profile)
    if not (ratio > 0 and math.isfinite(ratio)):
        raise ConfigError(f"--ratio must be positive, got {ratio}")
    if not src.is_file():
        raise InputFileError("input file not found", src)
    check_output_paths([dst], [src])
    rng = np.random.default_rng(seed)
    params = sample_noise_params(prof, iso=iso, rng=rng)
    gen = torch.Generator().manual_seed(seed)
    suffix = src.suffix.lower()
    out_suffix = dst.suffix.lower()
    if suffix in _IMAGE_SUFFIXES:
        from PIL import Image

        from rawadapt.io.images import read_image
        from rawadapt.noise.pipeline import render_srgb, to_uint8_hwc, unprocess

        rgb = read_image(src, gray="replicate")
        rgb = np.pad(rgb, ((0, 0), (0, rgb.shape[1] % 2), (0, rgb.shape[2] % 2)), mode="edge")
        planes, meta = unprocess(rgb, prof, rng, exposure=1.0)
        noisy = add_noise(planes, prof, params, ratio=ratio, generator=gen)
        out = render_srgb(noisy, prof.cfa, wb=meta["wb"], ccm=meta["ccm"])
        if out_suffix == ".npy":
            _save_npy(dst, out)
        else:
            from rawadapt.utils.atomic import atomic_path

            with atomic_path(dst) as tmp:
                Image.fromarray(to_uint8_hwc(out)).save(tmp)
        kind = "srgb"
    else:
        if suffix == ".npy":
            clean = _load_npy(src).astype(np.float32)
            if clean.ndim != 3 or clean.shape[0] != 4:
                raise ShapeError(f"expected packed planes (4, h, w) in [0, 1], got {clean.shape}", src)
            cfa = prof.cfa
        else:
            from rawadapt.io.raw import read_raw

            img = read_raw(src)
            clean, cfa = img.planes, img.cfa
        sim = replace(prof, cfa=cfa)  # noise geometry follows the actual mosaic
        if out_suffix == ".dng":
            from rawadapt.io.bayer import unpack
            from rawadapt.io.dng import write_dng

            dn = add_noise(clean, sim, params, ratio=ratio, generator=gen, quantization="round", output="dn")
            mosaic = unpack(np.clip(np.rint(dn), 0, 65535).astype(np.uint16), cfa)
            write_dng(
                dst,
                mosaic,
                cfa,
                black_level=list(prof.black_level),
                white_level=int(prof.white_level),
                model=f"simulated {prof.name}",
                iso=iso,
                color_matrix=np.asarray(prof.color_matrix).reshape(3, 3),
            )
        elif out_suffix == ".npy":
            _save_npy(dst, add_noise(clean, sim, params, ratio=ratio, generator=gen))
        else:
            raise ConfigError(f"RAW output must be .dng or .npy, got {dst.name}")
        kind = "raw"
    result = {
        "input": str(src),
        "output": str(dst),
        "profile": prof.name,
        "space": kind,
        "ratio": ratio,
        "seed": seed,
        "params": params.to_dict(),
    }
    if json_:
        print_json(result)
    else:
        info(f"wrote {dst} ({prof.name}, ISO {iso:g}, K {params.K:.4g} DN/e-, ratio {ratio:g})")


def _save_npy(path: Path, arr: np.ndarray) -> None:
    from rawadapt.utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        np.save(tmp, np.asarray(arr, dtype=np.float32))


def calibrate_cmd(
    files: list[Path] = typer.Argument(
        ..., help="Noisy frames (RAW files or .npy DN planes); with --dark they are the flat frames."
    ),
    out: Path = typer.Option(..., "-o", "--out", help="Output profile YAML."),
    clean: list[Path] = typer.Option(None, "--clean", help="Clean references, one per noisy file (pairs method)."),
    dark: list[Path] = typer.Option(None, "--dark", help="Dark frames (photon-transfer method)."),
    name: str | None = typer.Option(None, "--name", help="Profile name (default: output file stem)."),
    iso: float | None = typer.Option(None, "--iso", help="ISO of the data (default: from the files, else 100)."),
    cfa: str | None = typer.Option(None, "--cfa", help="CFA of .npy mosaics / planes (e.g. RGGB)."),
    black: str | None = typer.Option(None, "--black", help="Black level(s) in DN (1 or 4 canonical values)."),
    white: float | None = typer.Option(None, "--white", help="White level in DN."),
    ratio: float = typer.Option(1.0, "--ratio", help="Pairs: exposure ratio clean/noisy."),
    block: int = typer.Option(8, "--block", help="Block side (packed pixels) for flat-region statistics."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Fit a per-channel Poisson-Gaussian noise profile from data and write it as YAML."""
    from rawadapt.noise import calibrate as cal
    from rawadapt.noise.profiles import save_profile
    from rawadapt.utils.guard import check_output_paths

    t0 = time.perf_counter()
    check_output_paths([out], [*files, *(clean or []), *(dark or [])])
    blk = _parse_black(black)
    noisy = [read_dn_planes(f, cfa=cfa, black=blk, white=white) for f in files]
    first = noisy[0]
    levels = {"black_level": first["black"], "white_level": first["white"], "cfa": first["cfa"] or cfa}
    file_iso = iso if iso is not None else next((n["iso"] for n in noisy if n["iso"]), None)
    if clean:
        if len(clean) != len(files):
            raise ConfigError(f"--clean needs one file per noisy file ({len(files)}), got {len(clean)}")
        refs = [read_dn_planes(f, cfa=cfa, black=blk or first["black"], white=white or first["white"]) for f in clean]
        res = cal.calibrate_pairs(
            [n["planes"] for n in noisy], [r["planes"] for r in refs], ratio=ratio, iso=file_iso, **levels
        )
    elif dark:
        darks = [read_dn_planes(f, cfa=cfa, black=blk, white=white)["planes"] for f in dark]
        res = cal.calibrate_dark_flat(darks, [n["planes"] for n in noisy], block=block, iso=file_iso, **levels)
    else:
        res = cal.calibrate_flat_regions([n["planes"] for n in noisy], block=block, iso=file_iso, **levels)
    pname = name or out.stem
    prof = cal.calibration_profile(
        res, name=pname, iso=file_iso, source=f"rawadapt calibrate ({res.method}) of {', '.join(f.name for f in files)}"
    )
    save_profile(prof, out)
    summary = {**res.summary(), "profile": str(out), "name": pname, "seconds": round(time.perf_counter() - t0, 3)}
    if json_:
        print_json(summary)
    else:
        ks = ", ".join(f"{k:.4g}" for k in res.K)
        ss = ", ".join(f"{math.sqrt(v):.3g}" for v in res.read_var)
        info(f"{res.method}: K (DN/e-) per channel R,G1,G2,B = {ks}; read std (DN) = {ss}")
        info(f"wrote profile {pname!r} to {out}")


def build_cmd(
    name: str = typer.Argument(
        "synth", help="synth (RAW, capture regimes v2), synth-wide (RAW, wide) or synth-srgb (camera JPEG plan)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Destination folder (default: the cache folder)."),
    seed: int = typer.Option(0, "--seed", help="Master seed."),
    tiny: bool = typer.Option(False, "--tiny", help="Tiny size (seconds; for tests)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if a complete build exists."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Build the built-in multi-sensor benchmark (deterministic; cached)."""
    from rawadapt.noise.synth_dataset import build_synth, dataset_summary

    spaces = {"synth": ("raw", "v2"), "synth-wide": ("raw", "wide"), "synth-srgb": ("srgb", "camera")}
    if name not in spaces:
        raise ConfigError(f"unknown built-in dataset {name!r}; expected one of {', '.join(spaces)}")
    t0 = time.perf_counter()
    space, variant = spaces[name]
    root = build_synth(
        out,
        seed=seed,
        size="tiny" if tiny else None,
        progress=not json_,
        space=space,
        force=force,
        variant=variant,
    )
    summary = {**dataset_summary(root), "seconds": round(time.perf_counter() - t0, 2)}
    if json_:
        print_json(summary)
    else:
        mb = (summary.get("bytes") or 0) / 1e6
        info(f"{name}: {summary.get('pairs')} pairs, {mb:.1f} MB in {root}")


def register(app: typer.Typer) -> None:
    """Attach the noise commands (and ``data build`` when the data sub-app exists); ``profiles``
    is a group of its own (:mod:`rawadapt.cli.profiles_cmd`, listing with :func:`profiles_cmd`)."""
    app.command("simulate")(simulate_cmd)
    app.command("calibrate")(calibrate_cmd)
    try:
        from rawadapt.cli.data_cmd import data_app
    except ImportError:  # pragma: no cover - the data sub-app ships with the package
        return
    data_app.command("build")(build_cmd)
