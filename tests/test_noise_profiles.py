"""Camera profiles: data files, loading, user extension, ISO <-> K, and `rawadapt profiles`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from rawadapt.errors import ConfigError, InputFileError, UnknownSensorError
from rawadapt.noise.profiles import (
    BUILTIN_ORDER,
    ELD_CAMERAS,
    SIDD_PHONES,
    list_profiles,
    load_profile,
    profile_from_dict,
    round_iso,
    save_profile,
)


def test_ten_builtin_profiles_load() -> None:
    names = list_profiles()
    assert names[:10] == list(BUILTIN_ORDER)
    for n in ELD_CAMERAS:
        p = load_profile(n)
        assert p.kind == "eld" and p.bits == 14 and p.read_model == "tukey"
        assert p.sigma_tl and p.sigma_row and p.sigma_gauss and p.tukey_lambdas
        assert 0.0 not in p.tukey_lambdas
        kmin, kmax = p.gain_range
        assert math.isclose(kmax / kmin, 64.0, rel_tol=1e-3)  # ELD's K ranges span 64x
    for n in SIDD_PHONES:
        p = load_profile(n)
        assert p.kind == "nlf" and p.bits == 10 and p.white_level == 1023 and p.nlf
    assert load_profile("SonyA7S2").black_level == (512.0,) * 4
    assert load_profile("S6").cfa == "GRBG"  # the real SIDD metadata file says GRBG
    # published numbers reach the profile unchanged (ELD, Wei et al. CVPR 2020)
    sony = load_profile("SonyA7S2")
    assert (sony.sigma_tl.a, sony.sigma_tl.b, sony.sigma_tl.sigma) == (0.4621, 0.5657, 0.2634)
    assert sony.gain_range == (0.0939, 6.0106)
    gp = load_profile("GP")
    assert gp.nlf[-1] == (3200.0, 7.029e-3, 1.79e-4)


def test_sensors_differ() -> None:
    profs = [load_profile(n) for n in BUILTIN_ORDER]
    sigs = {(p.cfa, p.black_level, p.white_level, p.gain_range, p.fixed_pattern.seed) for p in profs}
    assert len(sigs) == len(profs)
    assert len({p.cfa for p in profs}) >= 3


def test_iso_k_mapping() -> None:
    sony = load_profile("SonyA7S2")
    for iso in (100, 3200, 25600):
        assert math.isclose(sony.iso_to_k(iso), 9.563e-4 * iso, rel_tol=1e-6)
        assert math.isclose(sony.k_to_iso(sony.iso_to_k(iso)), iso, rel_tol=1e-6)
    gp = load_profile("GP")
    span = 1023 - 64
    assert math.isclose(gp.iso_to_k(800), 1.764e-3 * span, rel_tol=1e-9)
    # between table ISOs: interpolated in log-log space
    mid = gp.iso_to_k(math.sqrt(800 * 1600))
    assert math.isclose(mid, math.sqrt(1.764e-3 * 3.519e-3) * span, rel_tol=1e-6)
    ip = load_profile("IP")  # non-monotonic NLF: inverse falls back to the nearest ISO in range
    assert 100 <= ip.k_to_iso(ip.iso_to_k(400)) <= 1600
    assert round_iso(1234) == 1250 and round_iso(90) == 100


def test_unknown_profile_lists_known_ones() -> None:
    with pytest.raises(UnknownSensorError) as err:
        load_profile("NoSuchCam")
    assert "SonyA7S2" in str(err.value) and "G4" in str(err.value)
    assert load_profile("sonya7s2").name == "SonyA7S2"  # case-insensitive
    with pytest.raises(InputFileError):
        load_profile("/nonexistent/profile.yaml")


def test_user_profiles_folder_and_save_roundtrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_profile("N6").to_dict()
    data["name"] = "MyPhone"
    data["fixed_pattern"]["seed"] = 999
    save_profile(data, tmp_path / "myphone.yaml")
    monkeypatch.setenv("RAWADAPT_PROFILES", str(tmp_path))
    assert "MyPhone" in list_profiles()
    p = load_profile("MyPhone")
    assert p.nlf == load_profile("N6").nlf and p.fixed_pattern.seed == 999
    assert load_profile(tmp_path / "myphone.yaml").name == "MyPhone"


def test_invalid_profiles_are_refused(tmp_path: Path) -> None:
    good = load_profile("G4").to_dict()
    for key, value in (("cfa", "XYZW"), ("kind", "other"), ("white_level", 10), ("bogus_key", 1)):
        bad = dict(good, **{key: value})
        with pytest.raises(ConfigError):
            profile_from_dict(bad)
    bad = dict(good)
    del bad["nlf"]
    with pytest.raises(ConfigError):
        profile_from_dict(bad)
    f = tmp_path / "broken.yaml"
    f.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError):
        load_profile(f)
    eld = load_profile("SonyA7S2").to_dict()
    eld["tukey_lambdas"] = [-0.7]
    with pytest.raises(ConfigError):
        profile_from_dict(eld)


def test_profile_yaml_is_plain_data() -> None:
    from rawadapt.noise.profiles import PROFILE_DIR

    for f in PROFILE_DIR.glob("*.yaml"):
        doc = yaml.safe_load(f.read_text())
        assert doc["name"] == f.stem
        assert profile_from_dict(doc).name == f.stem


def test_cli_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    from rawadapt.cli.main import main

    with pytest.raises(SystemExit) as ex:
        main(["profiles", "--json"])
    assert ex.value.code in (0, None)
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [p["name"] for p in out["profiles"]][:10] == list(BUILTIN_ORDER)
    with pytest.raises(SystemExit):
        main(["profiles"])
    text = capsys.readouterr().out
    assert "CanonEOS70D" in text and "GRBG" in text
