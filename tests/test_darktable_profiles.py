"""``rawadapt profiles import-darktable``: darktable's noiseprofiles.json -> ``nlf`` profiles whose
simulated noise has darktable's variance ``a y + b``, interpolation between ISOs, one-line errors.

The fixture ``tests/fixtures/darktable_noiseprofiles.json`` is in darktable's format (version 0)
with illustrative numbers: Canon EOS 5D Mark II (a repeated ISO, a ``skip`` entry), Canon EOS
Kiss X4, Sony ILCE-7M3 (a negative b, one malformed entry) and a camera whose only entry is
malformed.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from rawadapt.cli.main import main

FIXTURE = Path(__file__).parent / "fixtures" / "darktable_noiseprofiles.json"
#: green a, b per ISO of the fixture's Canon EOS 5D Mark II (ISO 400: mean of its two entries)
EOS5D2 = {100: (3.0e-6, 2.5e-8), 400: (1.2e-5, 7.0e-8), 1600: (4.8e-5, 4.0e-7)}


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "user_profiles"
    monkeypatch.setenv("RAWADAPT_USER_PROFILES", str(d))
    return d


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    from rawadapt.noise.darktable import import_darktable

    out = tmp_path / "dt"
    import_darktable(FIXTURE, out)
    return out


def test_import_fixture(tmp_path: Path) -> None:
    from rawadapt.noise.darktable import import_darktable
    from rawadapt.noise.profiles import load_profile

    res = import_darktable(FIXTURE, tmp_path / "out")
    assert res.cameras == ["Canon EOS 5D Mark II", "Canon EOS Kiss X4", "Sony ILCE-7M3"]
    assert res.isos == 3 + 3 + 2  # the skip entry, the malformed ones and their camera left out
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == [
        "darktable-Canon-EOS-5D-Mark-II.yaml",
        "darktable-Canon-EOS-Kiss-X4.yaml",
        "darktable-Sony-ILCE-7M3.yaml",
    ]
    assert any("PowerShot Broken" in w for w in res.warnings)
    assert any("ILCE-7M3 iso 800 malformed" in w for w in res.warnings)
    prof = load_profile(tmp_path / "out" / "darktable-Canon-EOS-5D-Mark-II.yaml")
    assert prof.kind == "nlf" and prof.name == "Canon EOS 5D Mark II"
    assert prof.black_level == (0.0, 0.0, 0.0, 0.0) and prof.white_level == 65535.0
    assert prof.channel_k == (1.0,) * 4 and prof.fixed_pattern.enabled is False and prof.row_fraction == 0
    assert [r[0] for r in prof.nlf] == [100, 400, 1600]
    for iso, a, b in prof.nlf:
        assert a == pytest.approx(EOS5D2[int(iso)][0], rel=1e-9) and b == pytest.approx(EOS5D2[int(iso)][1], rel=1e-9)
    sony = load_profile(tmp_path / "out" / "darktable-Sony-ILCE-7M3.yaml")
    assert sony.nlf[0] == (100.0, 2.0e-6, 0.0)  # negative b clamped
    assert "clamped" in sony.source


def test_cli_import_into_user_folder(user_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rawadapt.noise.profiles import list_profiles, load_profile, match_profile

    code, out, err = run_cli(["profiles", "import-darktable", str(FIXTURE)], capsys)
    assert code == 0, err
    assert out.strip() == f"imported 3 cameras (8 ISO settings) from {FIXTURE} into {user_dir}"
    assert "PowerShot Broken" in err  # warnings on stderr
    assert not list(user_dir.glob(".*tmp*"))  # atomic writes leave no temporary behind
    assert {"Canon EOS 5D Mark II", "Canon EOS Kiss X4", "Sony ILCE-7M3"} <= set(list_profiles())
    assert load_profile("canon eos 5d mark ii").name == "Canon EOS 5D Mark II"
    # a RAW file names the camera by EXIF make and model, spelled in many ways
    assert match_profile(["SONY ILCE-7M3"]) == "Sony ILCE-7M3"
    assert match_profile([None, "Canon EOS Kiss X4"]) == "Canon EOS Kiss X4"

    code, out, _ = run_cli(["profiles", "--json"], capsys)
    listing = json.loads(out.strip().splitlines()[-1])
    assert str(user_dir) in listing["folders"]
    assert "Sony ILCE-7M3" in [p["name"] for p in listing["profiles"]]


def test_cli_camera_filter_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "only"
    code, out, err = run_cli(
        ["profiles", "import-darktable", str(FIXTURE), "--out", str(out_dir), "--camera", "kiss", "--json"], capsys
    )
    assert code == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["cameras"] == 1 and res["isos"] == 3 and res["names"] == ["Canon EOS Kiss X4"]
    assert [Path(f).name for f in res["files"]] == ["darktable-Canon-EOS-Kiss-X4.yaml"]
    assert res["warnings"] == []  # the other cameras' problems are not this import's
    assert [p.name for p in out_dir.iterdir()] == ["darktable-Canon-EOS-Kiss-X4.yaml"]
    code, _, err = run_cli(
        ["profiles", "import-darktable", str(FIXTURE), "--out", str(out_dir), "--camera", "leica"], capsys
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "leica" in err


def _flat_variance(prof, iso: float, level: float, seed: int) -> float:
    """Sample variance of a simulated flat patch of ``level`` (normalised) at ``iso``."""
    from rawadapt.noise.model import add_noise, sample_noise_params

    clean = np.full((4, 256, 256), level, dtype=np.float32)
    params = sample_noise_params(prof, iso=iso, rng=seed)
    noisy = add_noise(clean, prof, params, seed=seed, clip=False)
    return float(np.var(np.asarray(noisy, dtype=np.float64) - level))


@pytest.mark.parametrize("iso", [100, 400, 1600])
def test_simulated_variance_is_a_y_plus_b(imported: Path, iso: int) -> None:
    from rawadapt.noise.conditioning import noise_line
    from rawadapt.noise.profiles import load_profile

    prof = load_profile(imported / "darktable-Canon-EOS-5D-Mark-II.yaml")
    a, b = EOS5D2[iso]
    # the noise line a network is given (quantisation adds 1/12 DN^2 = 2e-11 normalised)
    la, lb = noise_line(prof, iso)
    assert la == pytest.approx(a, rel=1e-9) and lb == pytest.approx(b, rel=1e-3)
    # the simulator: 262144 samples per level, std error of a variance ~0.3 %
    for k, y in enumerate((0.02, 0.5)):
        expected = a * y + b
        assert _flat_variance(prof, iso, y, seed=k) == pytest.approx(expected, rel=0.02)


def test_interpolation_between_isos(imported: Path) -> None:
    from rawadapt.noise.conditioning import noise_line
    from rawadapt.noise.profiles import load_profile

    prof = load_profile(imported / "darktable-Canon-EOS-5D-Mark-II.yaml")
    # ISO 800 is the log-midpoint of 400 and 1600: a and b are their geometric means
    (a1, b1), (a2, b2) = EOS5D2[400], EOS5D2[1600]
    a, b = math.sqrt(a1 * a2), math.sqrt(b1 * b2)
    la, lb = noise_line(prof, 800)
    assert la == pytest.approx(a, rel=1e-6) and lb == pytest.approx(b, rel=1e-3)
    # between 100 and 400 at 200, and monotonic on the way
    lines = [noise_line(prof, iso) for iso in (100, 200, 400, 800, 1600)]
    assert all(x[0] < y[0] and x[1] < y[1] for x, y in zip(lines, lines[1:]))
    assert lines[1][0] == pytest.approx(math.sqrt(EOS5D2[100][0] * EOS5D2[400][0]), rel=1e-6)
    assert _flat_variance(prof, 800, 0.3, seed=7) == pytest.approx(a * 0.3 + b, rel=0.02)


def test_missing_default_file_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    import rawadapt.noise.darktable as dt

    missing = tmp_path / "usr" / "share" / "darktable" / "noiseprofiles.json"
    monkeypatch.setattr(dt, "DEFAULT_PATH", missing)
    code, out, err = run_cli(["profiles", "import-darktable", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and out == ""
    assert err == f"error: darktable noise profiles not found at {missing}; install darktable or pass the file\n"
    code, _, err = run_cli(["profiles", "import-darktable", str(tmp_path / "nope.json")], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "nope.json" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"version": 0, "noiseprofiles": [', "invalid JSON"),
        ('{"version": 0, "profiles": []}', "no 'noiseprofiles' list"),
        ('{"version": 1, "noiseprofiles": []}', "version 1 is not supported"),
        ('{"version": 0, "noiseprofiles": []}', "no usable camera profile"),
    ],
)
def test_malformed_file_is_one_line_naming_it(
    tmp_path: Path, user_dir: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bad = tmp_path / "noiseprofiles.json"
    bad.write_text(content)
    code, out, err = run_cli(["profiles", "import-darktable", str(bad)], capsys)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {bad}: ") and message in err
    assert not user_dir.exists()  # nothing written


def test_import_overwrites_previous_import(tmp_path: Path) -> None:
    """Re-importing (e.g. after a darktable update) replaces the files in place."""
    from rawadapt.noise.darktable import import_darktable
    from rawadapt.noise.profiles import load_profile

    src = tmp_path / "np.json"
    shutil.copy(FIXTURE, src)
    import_darktable(src, tmp_path / "o", camera="5D Mark II")
    doc = json.loads(src.read_text())
    doc["noiseprofiles"][0]["models"][0]["profiles"][0]["a"][1] = 5.0e-6
    src.write_text(json.dumps(doc))
    import_darktable(src, tmp_path / "o", camera="5D Mark II")
    prof = load_profile(tmp_path / "o" / "darktable-Canon-EOS-5D-Mark-II.yaml")
    assert prof.nlf[0][1] == pytest.approx(5.0e-6)
