"""bench/merge_tables.py: cross-validation tables of several runs joined by method, never typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_loader import load_bench_script


@pytest.fixture(scope="module")
def mt():
    return load_bench_script("merge_tables")


def results(targets: list[str], rows: dict[str, list[str]], ssim: dict[str, list[str]] | None = None) -> str:
    """A results.md text in the crossval protocol's layout (times columns included)."""

    def table(values: dict[str, list[str]], times: bool) -> str:
        extra = ["fit s", "denoise s/img"] if times else []
        head = ["method", *targets, "average", *extra]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for m, v in values.items():
            lines.append("| " + " | ".join([m, *v, "0.00", *(["1.0", "2.0"] if times else [])]) + " |")
        return "\n".join(lines)

    ssim = ssim or {m: ["0.9000"] * len(targets) for m in rows}
    return (
        f"# Protocol\n\nintro\n\n## PSNR (dB) per target\n\n{table(rows, True)}\n\n"
        f"## SSIM per target\n\n{table(ssim, False)}\n\n## ADL: acceptance\n\n| variant | x |\n|---|---|\n| - | 1 |\n"
    )


def test_merge_joins_targets_by_method_and_recomputes_the_average(mt, tmp_path: Path) -> None:
    a = tmp_path / "a.md"
    b = tmp_path / "b.md"
    a.write_text(results(["S", "I"], {"noisy": ["40.00", "42.00"], "adl": ["41.00", "43.50"]}))
    b.write_text(results(["N", "G"], {"noisy": ["38.00", "39.00"], "bm3d": ["40.00", "41.00"]}))
    out = tmp_path / "m.md"
    assert mt.main(["--out", str(out), str(a), str(b)]) == 0
    text = out.read_text()
    psnr = text.split("## PSNR (dB) per target")[1].split("##")[0]
    assert "| method | S | I | N | G | average |" in psnr
    assert "| noisy | 40.00 | 42.00 | 38.00 | 39.00 | 39.75 |" in psnr
    # a cell no input has stays "-" and the row gets no average (not a 2-target mean)
    assert "| adl | 41.00 | 43.50 | - | - | - |" in psnr
    assert "| bm3d | - | - | 40.00 | 41.00 | - |" in psnr
    assert "fit s" not in text and "| method | S | I | N | G | average |" in text.split("## SSIM per target")[1]


def test_merge_accepts_agreeing_overlap_and_refuses_a_conflict(mt, tmp_path: Path) -> None:
    full = (["S", "N"], {"noisy": ["40.00", "38.00"], "ft": ["42.00", "40.00"]})
    extra = (["S", "N"], {"noisy": ["40.00", "38.00"], "b2u": ["35.00", "33.00"]})
    table = mt.merge([full, extra], 2)
    assert "| b2u | 35.00 | 33.00 | 34.00 |" in table and table.count("| noisy |") == 1
    with pytest.raises(ValueError, match="noisy on N: 38.00 in one input, 37.99 in another"):
        mt.merge([full, (["N"], {"noisy": ["37.99"]})], 2)


def test_merge_reads_a_filled_document_block(mt, tmp_path: Path) -> None:
    doc = tmp_path / "DOC.md"
    doc.write_text(
        "text\n<!-- BEGIN run/results-x.md#PSNR -->\n| method | S | average | fit s |\n|---|---|---|---|\n"
        "| noisy | 40.00 | 40.00 | 0.1 |\n<!-- END -->\n\n<!-- BEGIN run/results-x.md#SSIM -->\n"
        "| method | S | average |\n|---|---|---|\n| noisy | 0.9000 | 0.9000 |\n<!-- END -->\n"
    )
    b = tmp_path / "b.md"
    b.write_text(results(["N"], {"noisy": ["38.00"]}, {"noisy": ["0.8000"]}))
    names, rows = mt.load(f"{doc}::run/results-x.md#PSNR", "SSIM")
    assert names == ["S"] and rows == {"noisy": ["0.9000"]}
    out = tmp_path / "m.md"
    assert mt.main(["--out", str(out), f"{doc}::run/results-x.md#PSNR", str(b)]) == 0
    assert "| noisy | 0.9000 | 0.8000 | 0.8500 |" in out.read_text()


def test_merge_errors_are_one_line_and_write_nothing(mt, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.md"
    assert mt.main(["--out", str(out), str(tmp_path / "missing.md")]) == 1
    assert mt.main(["--out", str(out), f"{tmp_path / 'missing.md'}::x#PSNR"]) == 1
    empty = tmp_path / "e.md"
    empty.write_text("# nothing\n")
    assert mt.main(["--out", str(out), str(empty)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("merge_tables: ") for line in err)
    assert not out.exists()
