"""``rawadapt report``: one self-contained HTML file, checked in a REAL headless Chromium (the
page loads without console errors, shows the tables with the results.json numbers, its images
decode, and the screenshot is not blank). Skipped, with the reason, only when no Chromium can
be found (``make test`` installs Debian's ``chromium`` first)."""

from __future__ import annotations

import base64
import html.parser
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rawadapt.cli.main import main

pytestmark = pytest.mark.browser


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(
        "headless Chromium not installed (`make browser` installs Debian's chromium; apt-get "
        "install -y chromium as root)"
    )


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny crossval run (2 targets, noisy / finetune / adl) with its report."""
    from fixtures_data import make_multisensor_dataset

    from rawadapt.eval.protocols import BenchSettings, run_protocol

    out = tmp_path_factory.mktemp("report") / "bench"
    run_protocol(
        BenchSettings(
            "crossval",
            data="multisensor",
            out=str(out),
            targets=["a", "b"],
            methods=["noisy", "finetune", "adl"],
            budget="tiny",
            threads=1,
            crops=2,
        ),
        progress=False,
        dataset=make_multisensor_dataset(),
    )
    return out


class _Collector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.links: list[str] = []
        self.scripts = 0
        self.tables = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        elif tag in ("link", "iframe", "object", "embed"):
            self.links.append(tag)
        elif tag == "script":
            self.scripts += 1
        elif tag == "table":
            self.tables += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _decode_png(uri: str) -> Any:
    from PIL import Image

    assert uri.startswith("data:image/png;base64,"), uri[:40]
    im = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1], validate=True)))
    im.load()
    return im


def test_report_is_self_contained(bench_dir: Path) -> None:
    page = (bench_dir / "report.html").read_text()
    p = _Collector()
    p.feed(page)
    assert p.scripts == 0 and not p.links  # nothing to load, nothing to run
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)
    assert p.imgs and all(_decode_png(u).size[0] > 0 for u in p.imgs)
    res = json.loads((bench_dir / "results.json").read_text())
    text = " ".join(p.text)
    for row in res["rows"]:
        assert f"{row['psnr']:.2f}" in text and row["method"] in text
    # a crop row per stored test image: noisy, 2 methods, clean + 3 error maps + scale
    assert len(p.imgs) >= len(res["plots"]) + 2 * 2 * (4 + 3 + 1)


def test_report_cli_writes_elsewhere(bench_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "x" / "page.html"
    with pytest.raises(SystemExit) as exc:
        main(["report", str(bench_dir), "-o", str(dest), "--images", "1", "--json"])
    assert exc.value.code in (0, None)
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["report"] == str(dest) and dest.stat().st_size == info["bytes"]
    assert dest.read_text().count("— a-test-") == 1  # one image of target a


def test_report_renders_in_headless_chromium(bench_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    exe = chromium()
    report = (bench_dir / "report.html").resolve()
    shot = tmp_path / "shot.png"
    common = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    run = subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file(), run.stderr[-2000:]
    dom = subprocess.run([*common, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # no JavaScript/console errors and no failed resource loads
    logs = run.stderr + dom.stderr
    bad = [
        ln
        for ln in logs.splitlines()
        if ("CONSOLE" in ln and ("error" in ln.lower() or "uncaught" in ln.lower()))
        or "Uncaught" in ln
        or "Failed to load resource" in ln
        or "ERR_FILE_NOT_FOUND" in ln
    ]
    assert not bad, bad
    # the DOM the browser built shows the tables with results.json's numbers and decodable images
    p = _Collector()
    p.feed(dom.stdout)
    res = json.loads((bench_dir / "results.json").read_text())
    text = " ".join(p.text)
    assert p.tables >= 3
    for m in res["methods"]:
        assert m in text
    for row in res["rows"]:
        assert f"{row['psnr']:.2f}" in text
    for a in res["acceptance"]:
        for rate in a["domains"].values():
            assert f"{rate:.2f}" in text
    assert len(p.imgs) > 10 and all(_decode_png(u).size[0] > 0 for u in p.imgs)
    # the screenshot shows something: not one flat colour
    arr = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert arr.shape[1] == 1280 and arr.std() > 10.0, arr.std()


def test_report_of_another_benchmark_is_generic(tmp_path: Path) -> None:
    """A results.json of another benchmark (e.g. `bench lan`) gets its rows as a table and its
    figures embedded."""
    from PIL import Image

    from rawadapt.eval.report import write_report

    (tmp_path / "figures").mkdir()
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(tmp_path / "figures" / "fig5.png")
    rows = [
        {"method": "lan", "loss": "zsn2n", "psnr": 39.2812, "iters": 20},
        {"method": "full", "loss": "zsn2n", "psnr": float("nan"), "iters": 20},
    ]
    (tmp_path / "results.json").write_text(json.dumps({"settings": {}, "rows": rows}))
    page = write_report(tmp_path).read_text()
    p = _Collector()
    p.feed(page)
    text = " ".join(p.text)
    assert "39.28" in text and "lan" in text and "zsn2n" in text and p.tables == 1
    assert len(p.imgs) == 1 and _decode_png(p.imgs[0]).size == (8, 8)
