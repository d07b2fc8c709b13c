"""Fuzzing the CLI with seeded mutations of the real files in ../shared/data.

About 100 mutants (truncation, bit flips, header edits, renamed extensions, and combinations) of
the real RAW files, the ExifTool stubs, PolyU JPEGs, PNG mosaics, the headerless dump, the SIDD
metadata file and .npy arrays made from them go through ``rawadapt info`` and ``rawadapt
denoise`` in-process. Every run must exit 0, or exit 2 with exactly one stderr line naming the
file; never exit 1, never a traceback; no input may change. A failure prints the case (seeded:
rerun it with the same index).
"""

from __future__ import annotations

import hashlib
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from rawadapt.cli.main import main
from rawadapt.io.dng import write_dng_like
from rawadapt.io.raw import read_raw
from rawadapt.models import build_model
from rawadapt.models.checkpoint import save_model

SEED = 20261206
RAW_MODEL = {"arch": "unet", "in_channels": 4, "width": 4, "depth": 2}
SRGB_MODEL = {"arch": "dncnn", "in_channels": 3, "depth": 3, "width": 8}
RENAMES = (".dng", ".nef", ".cr3", ".arw", ".tif", ".png", ".jpg", ".npy", ".raw", ".mat", ".xyz")
OUTPUT = {"raw": ".dng", "image": ".png", "array": ".npy"}


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# Mutations (each takes the bytes and a seeded Random)
# --------------------------------------------------------------------------------------------


def truncate(data: bytes, rng: random.Random) -> bytes:
    cut = rng.choice([rng.randrange(0, min(len(data), 4096)), rng.randrange(0, len(data))])
    return data[:cut]


def bitflip(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def header_flip(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(min(len(b), 1024))] ^= 1 << rng.randrange(8)
    return bytes(b)


def header_edit(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    at = rng.randrange(min(len(b), 512))
    value = rng.choice(
        [
            b"\x00\x00\x00\x00",
            b"\xff\xff\xff\xff",
            b"\x7f\xff\xff\xff",
            b"\x00\x00\x01\x00",
            bytes(rng.randrange(256) for _ in range(4)),
        ]
    )
    b[at : at + len(value)] = value
    return bytes(b[: len(data)])


def keep(data: bytes, rng: random.Random) -> bytes:
    return data


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncate": truncate,
    "bitflip": bitflip,
    "header-flip": header_flip,
    "header-edit": header_edit,
    "rename": keep,
}


# --------------------------------------------------------------------------------------------
# Seeds: real files and arrays made from them
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeds(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int]]:
    """Seed files -> number of mutants each (about 100 in all)."""
    work = tmp_path_factory.mktemp("fuzz_seeds")
    raw = shared_data / "raw"
    polyu = sorted((shared_data / "polyu").glob("*_real.JPG"))
    canon = read_raw(raw / "colorchart_CanonEOSKissX4_MagicLantern.dng")
    # a small DNG from the real Canon frame (a 128 x 96 crop, its metadata): cheap enough to denoise often
    write_dng_like(work / "canon_crop.dng", canon.planes[:, 200:248, 300:364], canon)
    kodak = read_raw(raw / "RAW_KODAK_DC50.KDC")
    np.save(work / "kodak_planes.npy", kodak.planes[:, :64, :64])
    from rawadapt.io.images import read_image, write_image

    jpg = read_image(polyu[0])
    np.save(work / "polyu.npy", jpg[:, :64, :64])
    write_image(work / "polyu_crop.png", jpg[:, :96, :96])
    return {
        "canon_full": (raw / "colorchart_CanonEOSKissX4_MagicLantern.dng", 6),
        "canon_crop": (work / "canon_crop.dng", 16),
        "kodak": (raw / "RAW_KODAK_DC50.KDC", 12),
        "halide": (raw / "halide_N900_bayer_small_GRBG.png", 6),
        "headerless": (raw / "mushfiqulalam_DSC_1339_768x512_rggb_u16le.raw", 5),
        "polyu_a": (polyu[0], 8),
        "polyu_b": (polyu[-1], 6),
        "polyu_png": (work / "polyu_crop.png", 8),
        "stub_dng": (shared_data / "raw_stubs" / "exiftool_DNG.dng", 4),
        "stub_nef": (shared_data / "raw_stubs" / "exiftool_Nikon.nef", 3),
        "stub_rw2": (shared_data / "raw_stubs" / "exiftool_Panasonic.rw2", 3),
        "stub_cr2": (shared_data / "raw_stubs" / "exiftool_CanonRaw.cr2", 3),
        "sidd_mat": (shared_data / "metadata" / "SIDD_0001_METADATA_RAW_010.MAT", 3),
        "npy_raw": (work / "kodak_planes.npy", 9),
        "npy_srgb": (work / "polyu.npy", 8),
    }


def cases(seeds: dict[str, tuple[Path, int]]) -> list[tuple[str, Path, str, str]]:
    """``(seed name, source, mutation, extension)`` per mutant, drawn from :data:`SEED`."""
    rng = random.Random(SEED)
    out = []
    for name, (src, n) in seeds.items():
        for i in range(n):
            mutation = list(MUTATIONS)[i % len(MUTATIONS)]
            ext = src.suffix
            if mutation == "rename" or rng.random() < 0.15:
                ext = rng.choice([e for e in RENAMES if e != src.suffix.lower()])
            out.append((name, src, mutation, ext))
    return out


def run_cli(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int | str, str]:
    try:
        main(argv)
        code: int | str = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else str(exc.code))
    out, err = capfd.readouterr()  # file-descriptor level: LibRaw's own messages included
    return code, out + err if code not in (0, 2) else err


def test_fuzzed_files_exit_0_or_2_with_one_line(
    seeds: dict[str, tuple[Path, int]], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    save_model(tmp_path / "model_raw", build_model(RAW_MODEL))
    save_model(tmp_path / "model_srgb", build_model(SRGB_MODEL))
    originals = {src: sha(src) for src, _ in seeds.values()}
    from rawadapt.io.readers import file_kind

    todo = cases(seeds)
    assert 90 <= len(todo) <= 110
    failures = []
    for k, (name, src, mutation, ext) in enumerate(todo):
        rng = random.Random(SEED * 1000 + k)
        data = MUTATIONS[mutation](src.read_bytes(), rng)
        case_dir = tmp_path / f"case{k:03d}"
        case_dir.mkdir()
        inp = case_dir / f"{name}_{mutation}{ext}"
        inp.write_bytes(data)
        digest = sha(inp)
        kind = file_kind(inp)
        model = tmp_path / (
            "model_srgb" if kind == "image" or (name == "npy_srgb" and kind == "array") else "model_raw"
        )
        out = case_dir / f"out{OUTPUT.get(kind, '.npy')}"
        runs = [
            ["info", str(inp)],
            ["denoise", str(model), str(inp), "-o", str(out), "--unknown-sensor", "iso-only", "--precision", "fp32"],
        ]
        for argv in runs:
            code, err = run_cli(argv, capfd)
            lines = err.strip().splitlines()
            ok = code in (0, 2) and "Traceback" not in err
            if code == 2:
                ok = (
                    ok
                    and len(lines) == 1
                    and lines[0].startswith("error: ")
                    and (inp.name in lines[0] or out.name in lines[0])
                )
            if not ok:
                failures.append(f"case {k} ({name}, {mutation}, {ext}) {argv[0]}: exit {code}: {err.strip()[:300]}")
        if sha(inp) != digest:
            failures.append(f"case {k} ({name}, {mutation}, {ext}): the input changed")
        shutil.rmtree(case_dir)
    assert {src: sha(src) for src, _ in seeds.values()} == originals
    assert not failures, "\n".join(failures)
