"""bench/fill_benchmarks.py: BENCHMARKS.md tables are copied from the run's results.md, never typed."""

from __future__ import annotations

import pytest

from tests.bench_loader import load_bench_script


@pytest.fixture(scope="module")
def fb():
    return load_bench_script("fill_benchmarks")


RESULTS = """# Protocol

Intro | not a table line because it does not start with a bar.

## PSNR (dB) per target

| method | A | average |
|---|---|---|
| noisy | 40.00 | 40.00 |
| adl | 41.25 | 41.25 |

## SSIM per target

| method | A |
|---|---|
| adl | 0.9000 |
"""


def test_marker_is_filled_from_the_named_section_and_rest_untouched(fb, tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "results.md").write_text(RESULTS)
    doc = "before\n<!-- BEGIN p/results.md#PSNR -->\nold stale numbers\n<!-- END -->\nafter\n"
    new, problems, n = fb.fill(doc, tmp_path)
    assert problems == [] and n == 1
    assert "old stale numbers" not in new
    assert "| adl | 41.25 | 41.25 |" in new
    assert "0.9000" not in new  # the SSIM section is another heading
    assert new.startswith("before\n") and new.endswith("after\n")
    # idempotent: filling the filled document changes nothing
    assert fb.fill(new, tmp_path) == (new, [], 1)


def test_whole_file_and_missing_file(fb, tmp_path):
    (tmp_path / "results.md").write_text(RESULTS)
    doc = "<!-- BEGIN results.md -->\n<!-- END -->\n<!-- BEGIN nowhere/results.md#PSNR -->\nkeep\n<!-- END -->\n"
    new, problems, n = fb.fill(doc, tmp_path)
    assert n == 2
    assert "| noisy | 40.00 | 40.00 |" in new and "| adl | 0.9000 |" in new
    assert "keep" in new  # a missing file leaves its block as it was ...
    assert len(problems) == 1 and "nowhere/results.md" in problems[0]  # ... and is reported


def test_cli_writes_atomically_and_fails_on_problems(fb, tmp_path):
    (tmp_path / "results.md").write_text(RESULTS)
    doc = tmp_path / "B.md"
    doc.write_text("<!-- BEGIN results.md#SSIM -->\n<!-- END -->\n")
    assert fb.main(["--runs", str(tmp_path), "--doc", str(doc)]) == 0
    assert "| adl | 0.9000 |" in doc.read_text()
    doc.write_text("<!-- BEGIN gone.md -->\n<!-- END -->\n")
    assert fb.main(["--runs", str(tmp_path), "--doc", str(doc), "--check"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["B.md", "results.md"]  # no temp file left
