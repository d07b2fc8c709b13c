"""Reliability promises: no input is ever overwritten, no run folder gets stuck, bad input always
gets exit 2 with one line naming the file (items 1-8 of the reliability issue)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import rawpy
import torch
from fixtures_data import make_multisensor_dataset, tiny_train_config

from rawadapt.cli.main import main
from rawadapt.data import registry
from rawadapt.errors import (
    CheckpointError,
    InputFileError,
    OutputFileError,
    RunLockedError,
)
from rawadapt.io.dng import rational, write_dng
from rawadapt.io.images import read_image, write_image
from rawadapt.models import build_model
from rawadapt.models.checkpoint import load_model, save_model
from rawadapt.train.api import run_training
from rawadapt.train.engine import STATE_NAME, Engine
from rawadapt.utils.guard import check_outputs, same_file
from rawadapt.utils.lock import LOCK_NAME, FolderLock

CANON = "raw/colorchart_CanonEOSKissX4_MagicLantern.dng"
NIKON_RAW = "raw/mushfiqulalam_DSC_1339_768x512_rggb_u16le.raw"
DNCNN_RAW = {"arch": "dncnn", "in_channels": 4, "depth": 3, "width": 8}
DNCNN_SRGB = {"arch": "dncnn", "in_channels": 3, "depth": 3, "width": 8}


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, *names: str) -> str:
    """The single stderr line of an exit-2 refusal; it must name one of ``names``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and any(n in lines[0] for n in names), err
    return lines[0]


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def model_dir(tmp_path: Path, cfg: dict, name: str) -> Path:
    torch.manual_seed(0)
    save_model(tmp_path / name, build_model(cfg))
    return tmp_path / name


def small_dng(path: Path, black: float | list[float] = 64, white: int = 4095) -> Path:
    rng = np.random.default_rng(0)
    lo = int(max(np.atleast_1d(black))) + 10
    m = rng.integers(lo, white - 10, (48, 64)).astype(np.uint16)
    return write_dng(path, m, "RGGB", black_level=black, white_level=white, make="Acme", model="Cam1", iso=800)


def rgb_png(path: Path, h: int = 40, w: int = 48) -> Path:
    rng = np.random.default_rng(1)
    write_image(path, rng.random((3, h, w)).astype(np.float32))
    return path


# --------------------------------------------------------------------------------------------
# 1. no input is overwritten: one shared guard in every writer
# --------------------------------------------------------------------------------------------


def test_same_file_spellings_and_links(tmp_path: Path) -> None:
    a = tmp_path / "a.dng"
    a.write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    os.symlink(a, tmp_path / "sym.dng")
    os.link(a, tmp_path / "hard.dng")
    for other in (
        tmp_path / "." / "a.dng",
        tmp_path / "sub" / ".." / "a.dng",
        tmp_path / "sym.dng",
        tmp_path / "hard.dng",
    ):
        assert same_file(a, other), other
    assert not same_file(a, tmp_path / "b.dng")
    assert same_file(tmp_path / "new.png", tmp_path / "sub" / ".." / "new.png")  # neither exists
    with pytest.raises(OutputFileError, match="refusing to overwrite the input"):
        check_outputs([tmp_path / "hard.dng"], [a])
    with pytest.raises(OutputFileError, match="same file"):
        check_outputs([tmp_path / "o.png", tmp_path / "sub" / ".." / "o.png"], [a])


def test_calibrate_refuses_to_overwrite_its_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = small_dng(tmp_path / "in.dng")
    before = sha(src)
    os.symlink(src, tmp_path / "link.dng")
    os.link(src, tmp_path / "hard.dng")
    for out in (src, tmp_path / "." / "in.dng", tmp_path / "link.dng", tmp_path / "hard.dng"):
        code, _, err = run_cli(["calibrate", str(src), "-o", str(out)], capsys)
        assert code == 2
        assert "refusing to overwrite the input" in one_error_line(err, out.name)
    assert sha(src) == before


@pytest.mark.parametrize("kind", ["dng", "npy", "jpg"])
def test_simulate_refuses_to_overwrite_its_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    if kind == "dng":
        src = small_dng(tmp_path / "in.dng")
    elif kind == "npy":
        src = tmp_path / "in.npy"
        np.save(src, np.random.default_rng(0).random((4, 8, 8)).astype(np.float32))
    else:
        src = tmp_path / "in.jpg"
        write_image(src, np.random.default_rng(0).random((3, 16, 16)).astype(np.float32))
    before = sha(src)
    code, _, err = run_cli(["simulate", "--profile", "SonyA7S2", "--iso", "3200", str(src), str(src)], capsys)
    assert code == 2 and "refusing to overwrite the input" in one_error_line(err, src.name)
    assert sha(src) == before


def test_adapt_refuses_to_overwrite_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = model_dir(tmp_path, DNCNN_SRGB, "run")
    src = tmp_path / "in.jpg"
    write_image(src, np.random.default_rng(0).random((3, 16, 16)).astype(np.float32))
    before = sha(src)
    code, _, err = run_cli(["adapt", str(run), str(src), "--method", "lan", "--iters", "2", "-o", str(src)], capsys)
    assert code == 2 and "refusing to overwrite the input" in one_error_line(err, "in.jpg")
    assert sha(src) == before
    # the first input's output would be the second input, before that one is read
    sub = tmp_path / "sub"
    x, x_lan = rgb_png(sub / "x.png"), rgb_png(sub / "x_lan.png", 24, 24)
    hashes = sha(x), sha(x_lan)
    code, _, err = run_cli(["adapt", str(run), str(x), str(x_lan), "--iters", "1", "-o", str(sub)], capsys)
    assert code == 2 and "refusing to overwrite the input" in one_error_line(err, "x_lan.png")
    assert (sha(x), sha(x_lan)) == hashes and sorted(p.name for p in sub.iterdir()) == ["x.png", "x_lan.png"]


def test_denoise_refuses_links_to_the_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = model_dir(tmp_path, DNCNN_RAW, "run")
    src = small_dng(tmp_path / "in.dng")
    before = sha(src)
    os.link(src, tmp_path / "hard.dng")
    os.symlink(src, tmp_path / "sym.dng")
    for out in ("hard.dng", "sym.dng"):
        code, _, err = run_cli(["denoise", str(run), str(src), "-o", str(tmp_path / out)], capsys)
        assert code == 2 and "refusing to overwrite the input" in one_error_line(err, out)
    code, _, err = run_cli(
        ["denoise", str(run), str(src), "-o", str(tmp_path / "o.dng"), "--preview", str(tmp_path / "hard.dng")], capsys
    )
    assert code == 2 and "refusing" in one_error_line(err, "hard.dng")
    assert sha(src) == before


def test_meta_init_and_report_refuse_their_inputs(tmp_path: Path) -> None:
    from rawadapt.adapt.meta import meta_pretrain
    from rawadapt.eval.report import write_report

    run = model_dir(tmp_path, DNCNN_SRGB, "run")
    before = sha(run / "model.safetensors")
    with pytest.raises(OutputFileError, match="refusing to overwrite the input"):
        meta_pretrain(run, [], tmp_path / "sub" / ".." / "run")
    assert sha(run / "model.safetensors") == before
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "results.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(OutputFileError, match="refusing to overwrite the input"):
        write_report(bench, bench / "results.json")
    assert json.loads((bench / "results.json").read_text()) == {"rows": []}
    assert write_report(bench).name == "report.html"


# --------------------------------------------------------------------------------------------
# 2. non-finite input and weights
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])
def test_denoise_refuses_non_finite_npy(tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: float) -> None:
    run = model_dir(tmp_path, DNCNN_RAW, "run")
    a = np.random.default_rng(0).random((4, 16, 16))
    a[1, 3, 4] = bad
    src = tmp_path / "in.npy"
    np.save(src, a if bad == 1e300 else a.astype(np.float32))  # float64 beyond float32's range, or NaN/Inf
    out = tmp_path / "out.npy"
    code, _, err = run_cli(["denoise", str(run), str(src), "-o", str(out)], capsys)
    assert code == 2 and "NaN or Inf" in one_error_line(err, "in.npy")
    assert not out.exists()


def test_model_with_non_finite_weights_is_refused(tmp_path: Path) -> None:
    m = build_model(DNCNN_RAW)
    with torch.no_grad():
        next(m.parameters())[0].fill_(float("nan"))
    save_model(tmp_path / "nan", m)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: weights hold NaN or Inf"):
        load_model(tmp_path / "nan")


# --------------------------------------------------------------------------------------------
# 3. run folder lock
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ds():  # type: ignore[no-untyped-def]
    return make_multisensor_dataset(sensors=("a", "b", "c"), per_sensor=12, size=24)


HOLDER = textwrap.dedent("""
    import sys, time
    from rawadapt.utils.lock import FolderLock
    lock = FolderLock(sys.argv[1])
    lock.acquire()
    print("locked", flush=True)
    time.sleep(60)
""")


def test_second_training_in_a_locked_folder_is_refused(
    ds,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        cfg = tiny_train_config("target-only", iters=2)
        for resume in (False, True):
            with pytest.raises(RunLockedError) as err:
                run_training(cfg, run, dataset=ds, progress=False, resume=resume)
            assert f"PID {holder.pid}" in str(err.value) and str(run) in str(err.value)
        monkeypatch.setitem(registry.NAMED, "multisensor", "fixtures_data:make_multisensor_dataset")
        code, _, err_text = run_cli(
            ["train", "target-only", "--data", "multisensor", "--target", "a", "--out", str(run), "--no-progress"],
            capsys,
        )
        assert code == 2 and f"PID {holder.pid}" in one_error_line(err_text, str(run))
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # nothing written by the refused runs
    finally:
        holder.kill()  # like kill -9: the kernel drops the lock, the .lock file stays
        holder.wait()
    assert (run / LOCK_NAME).is_file()
    run_training(tiny_train_config("target-only", iters=2), run, dataset=ds, progress=False)
    assert (run / "model.safetensors").is_file() and not (run / LOCK_NAME).exists()


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    with FolderLock(tmp_path / "r") as lock:
        assert (tmp_path / "r" / LOCK_NAME).read_text().strip() == str(os.getpid())
        with pytest.raises(RunLockedError, match=f"PID {os.getpid()}"):
            FolderLock(tmp_path / "r").acquire()  # flock: a second open file conflicts even in-process
        assert lock.held
    assert not (tmp_path / "r" / LOCK_NAME).exists()
    FolderLock(tmp_path / "r").acquire()


# --------------------------------------------------------------------------------------------
# 4. a run killed before its first checkpoint can be resumed; stale temporaries are removed
# --------------------------------------------------------------------------------------------


class _Killed(BaseException):
    """Stands for kill -9: not an Exception, so nothing catches it on the way out."""


def test_run_killed_before_first_state_resumes_from_step_0(
    ds,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = tiny_train_config("target-only", iters=3)
    run = tmp_path / "run"

    def killed(self, *a, **k):  # type: ignore[no-untyped-def]
        raise _Killed

    with monkeypatch.context() as m:
        m.setattr(Engine, "save", killed)
        with pytest.raises(_Killed):
            run_training(cfg, run, dataset=ds, progress=False)
    assert (run / "config.yaml").is_file() and not (run / STATE_NAME).exists()
    stale = [run / ".training_state.pt.tmp-k1ll3d.pt", run / ".model.json.tmp-abc.json"]
    for s in stale:
        s.write_bytes(b"half written")
    (run / LOCK_NAME).write_text("999999\n")  # left by the killed process
    with pytest.raises(Exception, match="not empty"):
        run_training(cfg, run, dataset=ds, progress=False)  # a plain run still refuses
    assert not any(s.exists() for s in stale)  # but the stale temporaries are gone
    metrics = run_training(cfg, run, dataset=ds, progress=False, resume=True)
    assert metrics["iterations"]["total"] == 3 and (run / STATE_NAME).is_file()
    ref = run_training(cfg, tmp_path / "ref", dataset=ds, progress=False)
    assert metrics["psnr"] == pytest.approx(ref["psnr"])  # from step 0: the same run


def test_folder_with_only_stale_temporaries_is_fresh(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    run.mkdir()
    (run / ".config.yaml.tmp-x1y2.yaml").write_text("strat")  # killed while writing config.yaml
    (run / LOCK_NAME).write_text("")
    run_training(tiny_train_config("target-only", iters=1), run, dataset=ds, progress=False)
    assert not list(run.glob(".*.tmp-*")) and (run / "metrics.json").is_file()


# --------------------------------------------------------------------------------------------
# 5. DNG rationals for large black levels; outputs checked before computing; full disk
# --------------------------------------------------------------------------------------------


def test_dng_with_black_level_above_4295(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rational(5000.0) == (5000, 1) and rational(2056.5) == (4113, 2)
    num, den = rational(-0.7654321, signed=True)
    assert abs(num / den + 0.7654321) < 1e-9
    src = small_dng(tmp_path / "in.dng", black=[5000, 5001, 5002, 5003], white=65535)
    with rawpy.imread(str(src)) as r:
        assert sorted(r.black_level_per_channel) == [5000, 5001, 5002, 5003]
    run = model_dir(tmp_path, DNCNN_RAW, "run")
    out = tmp_path / "out.dng"
    code, _, err = run_cli(["denoise", str(run), str(src), "-o", str(out)], capsys)
    assert code == 0, err
    with rawpy.imread(str(out)) as r:
        assert sorted(r.black_level_per_channel) == [5000, 5001, 5002, 5003] and r.white_level == 65535


def test_unwritable_outputs_are_refused_before_computing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rawadapt.eval import inference

    def no_compute(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("denoised although an output cannot be written")

    monkeypatch.setattr(inference, "denoise_image", no_compute)
    run = model_dir(tmp_path, DNCNN_RAW, "run")
    src = small_dng(tmp_path / "in.dng")
    (tmp_path / "folder.dng").mkdir()
    (tmp_path / "afile").write_text("x")
    cases = [
        ["-o", str(tmp_path / "folder.dng")],
        ["-o", str(tmp_path / "afile" / "o.dng")],
        ["-o", str(tmp_path / "afile" / "deeper" / "o.dng")],
        ["-o", str(tmp_path / "ok.dng"), "--preview", str(tmp_path / "afile" / "p.png")],
        ["-o", str(tmp_path / "ok.dng"), "--preview", str(tmp_path / "folder.dng")],
    ]
    if os.geteuid() != 0:  # root writes into read-only folders
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        cases.append(["-o", str(ro / "o.dng")])
    for extra in cases:
        code, _, err = run_cli(["denoise", str(run), str(src), *extra], capsys)
        named = extra[-1].split("/")[-1]
        assert code == 2, err
        one_error_line(err, named)
    assert not (tmp_path / "ok.dng").exists() and not list(tmp_path.glob(".*.tmp-*"))


def test_full_disk_names_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = model_dir(tmp_path, DNCNN_RAW, "run")
    src = tmp_path / "in.npy"
    np.save(src, np.random.default_rng(0).random((4, 8, 8)).astype(np.float32))

    def full(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "save", full)
    out = tmp_path / "out" / "den.npy"
    code, _, err = run_cli(["denoise", str(run), str(src), "-o", str(out)], capsys)
    assert code == 2 and "No space left" in one_error_line(err, "den.npy")
    assert not out.exists() and not list(out.parent.glob(".*.tmp-*"))


# --------------------------------------------------------------------------------------------
# 6. memory bounds: model files and large images
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def no_real_build(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every model built outside PyTorch's meta device while loading."""
    import rawadapt.models.checkpoint as ckpt

    built: list[str] = []
    real = ckpt.build_model

    def recording(cfg):  # type: ignore[no-untyped-def]
        if torch.empty(0).device.type != "meta":
            built.append(str(cfg.get("arch")))
        return real(cfg)

    monkeypatch.setattr(ckpt, "build_model", recording)
    return built


@pytest.mark.parametrize("change", [{"width": 512}, {"depth": 60}, {"width": 100000}, {"depth": 6}])
def test_oversized_model_config_is_refused_before_building(
    tmp_path: Path, no_real_build: list[str], change: dict
) -> None:
    run = model_dir(tmp_path, {"arch": "unet", "in_channels": 4, "width": 4, "depth": 2}, "run")
    js = run / "model.json"
    meta = json.loads(js.read_text())
    js.write_text(json.dumps({**meta, "config": {**meta["config"], **change}}))
    with pytest.raises(CheckpointError, match=r"model\.(json|safetensors): (invalid model config|weights do not fit)"):
        load_model(run)
    assert no_real_build == []


def test_untrusted_model_json_limits(tmp_path: Path, no_real_build: list[str]) -> None:
    run = model_dir(tmp_path, DNCNN_RAW, "run")
    js = run / "model.json"
    meta = json.loads(js.read_text())
    js.write_text(json.dumps({**meta, "config": {**meta["config"], "sensors": [f"s{i}" for i in range(2_000_000)]}}))
    with pytest.raises(CheckpointError, match="exceeds the limit"):
        load_model(run)
    js.write_text(json.dumps({**meta, "config": {**meta["config"], "sensors": [f"s{i}" for i in range(5000)]}}))
    with pytest.raises(CheckpointError, match="sensors"):
        load_model(run)
    js.write_text('{"format": "rawadapt-model", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(CheckpointError, match=r"model\.json: unreadable"):
        load_model(run)
    js.write_text(json.dumps({**meta, "config": {**meta["config"], "depth": {"nested": [1, [2]]}}}))
    with pytest.raises(CheckpointError, match="invalid model config"):
        load_model(run)
    assert no_real_build == []


def test_weights_file_is_checked_from_its_header(tmp_path: Path) -> None:
    run = model_dir(tmp_path, DNCNN_RAW, "run")
    w = run / "model.safetensors"
    blob = w.read_bytes()
    meta = json.loads((run / "model.json").read_text())
    del meta["tensors_sha256"]
    (run / "model.json").write_text(json.dumps(meta))
    w.write_bytes(blob + b"\0" * 64)  # padded: the header does not account for every byte
    with pytest.raises(CheckpointError, match="accounts for"):
        load_model(run)
    n = int.from_bytes(blob[:8], "little")
    w.write_bytes((10**12).to_bytes(8, "little") + blob[8:])  # absurd header length
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(run)
    with open(w, "wb") as fh:  # a sparse 6 GB file is refused from its size, never read
        fh.write(blob[: 8 + n])
        fh.truncate(6 * 2**30)
    with pytest.raises(CheckpointError, match="exceeds the limit"):
        load_model(run)


def _png_header_only(path: Path, w: int, h: int) -> Path:
    def chunk(t: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    )
    return path


def test_huge_declared_images_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = model_dir(tmp_path, DNCNN_SRGB, "run")
    bomb = _png_header_only(tmp_path / "bomb.png", 12000, 12000)
    jpg = tmp_path / "huge.jpg"
    write_image(jpg, np.zeros((3, 16, 16), np.float32))
    data = bytearray(jpg.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)  # height, width of the frame
    jpg.write_bytes(bytes(data))
    for src in (bomb, jpg):
        for argv in (["info", str(src)], ["denoise", str(run), str(src), "-o", str(tmp_path / "o.png")]):
            code, _, err = run_cli(argv, capsys)
            assert code == 2 and "exceeds the limit of 100 megapixels" in one_error_line(err, src.name)
    small = rgb_png(tmp_path / "small.png", 64, 64)
    monkeypatch.setenv("RAWADAPT_MAX_PIXELS", "1000")
    code, _, err = run_cli(["info", str(small)], capsys)
    assert code == 2 and "RAWADAPT_MAX_PIXELS" in one_error_line(err, "small.png")
    monkeypatch.setenv("RAWADAPT_MAX_PIXELS", "5000")
    assert run_cli(["info", str(small)], capsys)[0] == 0


def test_srgb_read_and_write_make_no_full_size_float_copies(tmp_path: Path) -> None:
    src = rgb_png(tmp_path / "in.png", 1200, 1600)
    float_bytes = 3 * 1200 * 1600 * 4
    tracemalloc.start()
    try:
        img = read_image(src)
        _, peak_read = tracemalloc.get_traced_memory()
        assert img.dtype == np.float32
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        write_image(tmp_path / "out.png", img)
        _, peak_write = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_read < 1.5 * float_bytes  # the result plus the 8-bit pixels, no float64
    assert peak_write - base < 0.6 * float_bytes  # 8-bit result plus small row blocks
    assert np.array_equal(read_image(tmp_path / "out.png"), read_image(src))


# --------------------------------------------------------------------------------------------
# 7. exit 1 "internal error" -> exit 2 naming the file
# --------------------------------------------------------------------------------------------


def _npy_variants(tmp_path: Path) -> dict[str, Path]:
    good = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32)
    out = {}
    p = tmp_path / "big_endian.npy"
    np.save(p, good.astype(">f4"))
    out["big_endian"] = p
    p = tmp_path / "archive.npy"
    with open(p, "wb") as fh:
        np.savez(fh, a=good)
    out["npz"] = p
    p = tmp_path / "empty.npy"
    np.save(p, np.zeros((4, 0, 0), np.float32))
    out["empty"] = p
    p = tmp_path / "huge.npy"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 100000, 100000), }"
    header += " " * (118 - 10 - len(header) - 1) + "\n"
    p.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 4096)
    out["huge"] = p
    np.save(tmp_path / "flip.npy", good)
    data = bytearray((tmp_path / "flip.npy").read_bytes())
    data[30] ^= 0x40  # inside the header dict
    (tmp_path / "flip.npy").write_bytes(bytes(data))
    out["flip"] = tmp_path / "flip.npy"
    return out


def test_bad_npy_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = model_dir(tmp_path, DNCNN_RAW, "run")
    files = _npy_variants(tmp_path)
    for name, src in files.items():
        for argv in (["info", str(src)], ["denoise", str(run), str(src), "-o", str(tmp_path / "o.npy")]):
            code, _, err = run_cli(argv, capsys)
            if name == "big_endian" and code == 0:
                continue  # read in native byte order: fine
            assert code == 2, (name, err)
            one_error_line(err, src.name)
    code, _, err = run_cli(["denoise", str(run), str(files["big_endian"]), "-o", str(tmp_path / "be.npy")], capsys)
    assert code == 0, err


def test_dng_renamed_tif_exits_2(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "canon.tif"
    shutil.copyfile(shared_data / CANON, src)
    run = model_dir(tmp_path, DNCNN_SRGB, "run")
    for argv in (["info", str(src)], ["denoise", str(run), str(src), "-o", str(tmp_path / "o.png")]):
        code, _, err = run_cli(argv, capsys)
        assert code == 2, err
        one_error_line(err, "canon.tif")


# --------------------------------------------------------------------------------------------
# 8. garbage LibRaw would only guess at, corrupt DNG headers, non-finite levels
# --------------------------------------------------------------------------------------------


def test_headerless_dump_renamed_dng_is_refused(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for ext in (".dng", ".nef", ".cr2"):
        src = tmp_path / f"dump{ext}"
        shutil.copyfile(shared_data / NIKON_RAW, src)
        code, _, err = run_cli(["info", str(src)], capsys)
        assert code == 2 and "not a camera RAW file" in one_error_line(err, src.name)


def _set_bps(src: Path, dst: Path, bps: int) -> Path:
    """Copy a DNG whose IFD0 is the CFA image, with another BitsPerSample (tag 258)."""
    data = bytearray(src.read_bytes())
    e = "<" if data[:2] == b"II" else ">"
    off = struct.unpack(e + "I", data[4:8])[0]
    for i in range(struct.unpack(e + "H", data[off : off + 2])[0]):
        q = off + 2 + 12 * i
        if struct.unpack(e + "H", data[q : q + 2])[0] == 258:
            data[q + 8 : q + 10] = struct.pack(e + "H", bps)
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("bps", [0, 1, 8, 12])
def test_dng_with_wrong_bits_per_sample_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bps: int
) -> None:
    src = _set_bps(small_dng(tmp_path / "ok.dng"), tmp_path / f"bps{bps}.dng", bps)
    code, _, err = run_cli(["info", str(src)], capsys)
    assert code == 2 and "corrupt DNG header" in one_error_line(err, src.name)
    assert run_cli(["info", str(tmp_path / "ok.dng")], capsys)[0] == 0


def test_real_dng_with_wrong_bits_per_sample(shared_data: Path, tmp_path: Path) -> None:
    from rawadapt.io.raw import read_raw

    assert read_raw(shared_data / CANON).white_level == 15000  # the real file passes the checks
    for bps in (0, 1, 8, 12, 16):
        with pytest.raises(InputFileError, match="corrupt DNG header"):
            read_raw(_set_bps(shared_data / CANON, tmp_path / f"c{bps}.dng", bps))


@pytest.mark.parametrize(
    "levels",
    [
        ["--white", "nan"],
        ["--white", "inf"],
        ["--white", "70000"],
        ["--white", "15520", "--black", "nan"],
        ["--white", "15520", "--black", "-5"],
    ],
)
def test_info_refuses_non_finite_or_out_of_range_levels(
    shared_data: Path, capsys: pytest.CaptureFixture[str], levels: list[str]
) -> None:
    src = shared_data / NIKON_RAW
    code, _, err = run_cli(["info", str(src), "--width", "768", "--height", "512", "--cfa", "RGGB", *levels], capsys)
    assert code == 2 and "level" in one_error_line(err, src.name)
