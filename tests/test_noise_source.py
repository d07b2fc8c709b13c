"""``rawadapt denoise`` with a noise-conditioned model on a camera it never saw: the noise line
comes from ``--profile``, else the profile matching the file's EXIF make/model (built-in via its
aliases, or imported from darktable), else an estimate from the image; the source is one
``noise:`` line on stderr and ``noise_source`` in ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rawadapt.cli.main import main
from rawadapt.io.dng import write_dng
from rawadapt.models import build_model
from rawadapt.models.checkpoint import save_model

FIXTURE = Path(__file__).parent / "fixtures" / "darktable_noiseprofiles.json"
CANON_DNG = "raw/colorchart_CanonEOSKissX4_MagicLantern.dng"
BLACK, WHITE = 64, 4095


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def _noise_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("noise: ")]


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "user_profiles"
    monkeypatch.setenv("RAWADAPT_USER_PROFILES", str(d))
    return d


@pytest.fixture(scope="module")
def noise_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny noise-conditioned UNet trained on neither Canon nor the test cameras."""
    torch.manual_seed(0)
    m = build_model(
        {"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["NikonD850", "GP"], "use_noise": True}
    )
    run = tmp_path_factory.mktemp("noise_run") / "run"
    save_model(run, m)
    return run


def _dng(
    tmp_path: Path, make: str, model: str, iso: float | None, sigma_dn: float = 12.0, name: str = "in.dng"
) -> Path:
    """A flat grey frame (half of the range) with Gaussian noise of ``sigma_dn``."""
    rng = np.random.default_rng(0)
    level = BLACK + 0.5 * (WHITE - BLACK)
    m = np.clip(np.rint(level + rng.normal(0.0, sigma_dn, (96, 128))), 0, WHITE).astype(np.uint16)
    return write_dng(tmp_path / name, m, "RGGB", black_level=BLACK, white_level=WHITE, make=make, model=model, iso=iso)


def _denoise(run: Path, src: Path, tmp_path: Path, capsys, *extra: str) -> tuple[int, dict | None, str]:
    code, out, err = run_cli(["denoise", str(run), str(src), "-o", str(tmp_path / "o.npy"), "--json", *extra], capsys)
    return code, (_json(out) if code == 0 else None), err


# -- 1. --profile ----------------------------------------------------------------------------------
def test_source_profile_option(noise_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rawadapt.noise.conditioning import noise_line
    from rawadapt.noise.profiles import load_profile

    src = _dng(tmp_path, "Canon", "Canon EOS 5D Mark IV", iso=1600)  # its own profile exists: --profile wins
    code, res, err = _denoise(noise_run, src, tmp_path, capsys, "--profile", "SonyA7S2")
    assert code == 0, err
    assert res["noise_source"] == "profile:SonyA7S2"
    assert res["noise"] == pytest.approx(list(noise_line(load_profile("SonyA7S2"), 1600)))
    assert res["unknown_sensor"] == "iso-only"  # no type guess for a camera outside the vocabulary
    assert len(_noise_lines(err)) == 1 and _noise_lines(err)[0].startswith("noise: profile:SonyA7S2: ")
    # a profile file too; without any ISO it cannot be used: one line, exit 2
    prof_file = tmp_path / "mine.yaml"
    prof_file.write_text((Path(load_profile("G4").path)).read_text())
    code, res, err = _denoise(noise_run, src, tmp_path, capsys, "--profile", str(prof_file), "--iso", "400")
    assert code == 0 and res["noise_source"] == f"profile:{prof_file}"
    no_iso = _dng(tmp_path, "Acme", "Cam1", iso=None, name="noiso.dng")
    code, _, err = _denoise(noise_run, no_iso, tmp_path, capsys, "--profile", "SonyA7S2")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--iso" in err


# -- 2. the camera's profile -----------------------------------------------------------------------
def test_source_builtin_camera_profile_by_alias(
    noise_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rawadapt.noise.conditioning import noise_line
    from rawadapt.noise.profiles import load_profile

    # EXIF "Canon EOS 5D Mark IV" is the built-in CanonEOS5D4 through its aliases
    src = _dng(tmp_path, "Canon", "Canon EOS 5D Mark IV", iso=800)
    code, res, err = _denoise(noise_run, src, tmp_path, capsys)
    assert code == 0, err
    assert res["file_camera"] == "Canon EOS 5D Mark IV"
    assert res["noise_source"] == "camera:CanonEOS5D4"
    assert res["noise"] == pytest.approx(list(noise_line(load_profile("CanonEOS5D4"), 800)))
    assert res["sensor"] is None and res["unknown_sensor"] == "iso-only"
    assert _noise_lines(err) == [f"noise: camera:CanonEOS5D4: {res['noise_detail']} " + _ab(res)]


def _ab(res: dict) -> str:
    return f"(a {res['noise'][0]:.3g}, b {res['noise'][1]:.3g})"


def test_source_imported_darktable_profile(
    noise_run: Path, user_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["profiles", "import-darktable", str(FIXTURE)], capsys)
    assert code == 0, err
    src = _dng(tmp_path, "Canon", "Canon EOS 5D Mark II", iso=400)
    code, res, err = _denoise(noise_run, src, tmp_path, capsys)
    assert code == 0, err
    assert res["noise_source"] == "camera:Canon EOS 5D Mark II"
    # darktable's green a, b at ISO 400 (the file's mean of two entries)
    assert res["noise"][0] == pytest.approx(1.2e-5, rel=1e-6) and res["noise"][1] == pytest.approx(7e-8, rel=1e-3)
    # an imported profile named like the camera is preferred to a built-in one that has it as an alias
    from rawadapt.noise.darktable import camera_profile, read_darktable
    from rawadapt.noise.profiles import match_profile, save_profile

    cam = read_darktable(FIXTURE).cameras[0]
    cam.name = "Canon EOS 5D Mark IV"
    save_profile(camera_profile(cam), user_dir / "mine-5d4.yaml")
    assert match_profile(["Canon EOS 5D Mark IV"]) == "Canon EOS 5D Mark IV"
    assert match_profile(["canon eos-5d MARK iv"]) == "Canon EOS 5D Mark IV"
    (user_dir / "mine-5d4.yaml").unlink()
    assert match_profile(["CANON EOS 5D MARK IV"]) == "CanonEOS5D4"


def test_vocabulary_sensor_through_profile_alias() -> None:
    """A model trained on CanonEOS5D4 recognises a file naming its camera "Canon EOS 5D Mark IV"."""
    from rawadapt.eval.conditioning import FileMetadata, resolve_conditioning

    m = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["CanonEOS5D4", "GP"]})
    c = resolve_conditioning(m, FileMetadata(camera="Canon EOS 5D Mark IV", make="Canon", iso=800.0))
    assert c.sensor == "CanonEOS5D4" and c.sensor_source == "file metadata" and c.noise_source == "not used"


# -- 3. estimated from the image -------------------------------------------------------------------
def test_source_estimated(noise_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sigma = 12.0
    src = _dng(tmp_path, "Acme", "Cam1", iso=1600, sigma_dn=sigma)  # no profile anywhere for this camera
    code, res, err = _denoise(noise_run, src, tmp_path, capsys)
    assert code == 0, err
    assert res["noise_source"] == "estimated" and "no profile for camera 'Acme Cam1'" in res["noise_detail"]
    a, b = res["noise"]
    var = (sigma / (WHITE - BLACK)) ** 2  # Gaussian noise on a flat frame at y = 0.5
    assert a * 0.5 + b == pytest.approx(var, rel=0.2)
    assert len(_noise_lines(err)) == 1 and _noise_lines(err)[0].startswith("noise: estimated: ")
    # without --json the same line, once
    code, _, err = run_cli(["denoise", str(noise_run), str(src), "-o", str(tmp_path / "h.npy")], capsys)
    assert code == 0 and len(_noise_lines(err)) == 1


def test_estimate_uses_tiles_of_a_large_image() -> None:
    from rawadapt.eval.conditioning import ESTIMATE_MAX_TILES, ESTIMATE_TILE, _estimation_sample, estimate_noise_line

    rng = np.random.default_rng(1)
    clean = np.linspace(0.1, 0.8, 1200, dtype=np.float32)[None, None, :].repeat(1100, axis=1).repeat(4, axis=0)
    a, b = 4e-4, 2e-6
    noisy = clean + rng.normal(0.0, 1.0, clean.shape).astype(np.float32) * np.sqrt(a * clean + b)
    sample = _estimation_sample(noisy)
    assert sample.shape == (4 * ESTIMATE_MAX_TILES, ESTIMATE_TILE, ESTIMATE_TILE)
    ea, eb = estimate_noise_line(noisy)
    assert ea == pytest.approx(a, rel=0.1)
    assert ea * 0.45 + eb == pytest.approx(a * 0.45 + b, rel=0.1)
    assert _estimation_sample(noisy[:, :300, :300]).shape == (4, 300, 300)  # small: the whole image


def test_model_without_noise_conditioning_says_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2})
    save_model(tmp_path / "plain", m)
    src = _dng(tmp_path, "Acme", "Cam1", iso=100)
    code, res, err = _denoise(tmp_path / "plain", src, tmp_path, capsys, "--unknown-sensor", "average")
    assert code == 0, err
    assert res["noise_source"] == "not used" and res["noise"] is None and _noise_lines(err) == []


# -- the real Canon DNG (EXIF "Canon EOS Kiss X4", no ISO recorded) --------------------------------
def test_real_canon_dng_sources(
    noise_run: Path, shared_data: Path, user_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = shared_data / CANON_DNG
    if not src.is_file():
        pytest.skip(f"{src} not found")
    # no profile for this camera: estimated. docs/noise.md's fit of this frame: var ~ 2.13 DN + 145 DN^2
    code, res, err = _denoise(noise_run, src, tmp_path, capsys)
    assert code == 0, err
    assert res["file_camera"] == "Canon EOS Kiss X4" and res["iso"] is None
    assert res["noise_source"] == "estimated"
    span = 15000 - 2056
    a, b = res["noise"]
    assert a == pytest.approx(2.13 / span, rel=0.25) and b == pytest.approx(145 / span**2, rel=0.5)

    # with darktable's profiles imported: the camera's profile, once the ISO is known
    code, _, err = run_cli(["profiles", "import-darktable", str(FIXTURE)], capsys)
    assert code == 0, err
    code, res, err = _denoise(noise_run, src, tmp_path, capsys)
    assert code == 0, err
    assert res["noise_source"] == "estimated"  # the file records no ISO
    assert "profile Canon EOS Kiss X4" in res["noise_detail"] and "--iso" in res["noise_detail"]
    code, res, err = _denoise(noise_run, src, tmp_path, capsys, "--iso", "400")
    assert code == 0, err
    assert res["noise_source"] == "camera:Canon EOS Kiss X4"
    assert res["noise"][0] == pytest.approx(4.0e-5, rel=1e-6)
    assert _noise_lines(err) and _noise_lines(err)[0].startswith("noise: camera:Canon EOS Kiss X4: ")
    # --profile still wins
    code, res, err = _denoise(noise_run, src, tmp_path, capsys, "--iso", "400", "--profile", "CanonEOS700D")
    assert code == 0 and res["noise_source"] == "profile:CanonEOS700D"


def test_resolve_noise_order_and_tiny_image() -> None:
    from rawadapt.errors import MetadataError
    from rawadapt.eval.conditioning import resolve_noise

    m = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["GP"], "use_noise": True})
    img = np.full((4, 16, 16), 0.25, dtype=np.float32)
    assert resolve_noise(m, "G4", ["Canon EOS 5D Mark IV"], 400.0, img).source == "profile:G4"
    assert resolve_noise(m, None, [None, "Canon EOS 5D Mark IV"], 400.0, img).source == "camera:CanonEOS5D4"
    no_iso = resolve_noise(m, None, ["Canon EOS 5D Mark IV"], None, img)
    assert no_iso.source == "estimated" and "CanonEOS5D4" in no_iso.detail
    assert resolve_noise(m, None, ["Acme Cam1"], 400.0, None).source == "unknown"
    tiny = resolve_noise(m, None, ["Acme Cam1"], 400.0, img[:, :2, :2])
    assert tiny.source == "unknown" and tiny.noise is None
    with pytest.raises(MetadataError, match="--iso"):
        resolve_noise(m, "G4", [], None, img)
