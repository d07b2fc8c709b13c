"""``rawadapt report DIR``: one self-contained HTML page of a benchmark folder.

Everything comes from files the protocol wrote — ``results.json`` (tables), ``plots/*.png``, the
ADL runs' valuation plots, and the crops stored in the cell folders — so a report never
retrains or re-denoises anything. Images are embedded as base64 PNG data URIs, the style is
inline CSS, there is no script and no external resource: the file can be mailed or archived
alone. Written atomically.

Sections: settings; result tables (summary over variants, PSNR and SSIM per target with the
average, time, ADL per-domain acceptance); plots; ADL data valuation per run; for the first
``images`` test images of every target, crops of noisy / each method / clean (RAW rendered
through the camera pipeline, :mod:`rawadapt.eval.errormaps`) over their error maps on a shared
scale. A folder of another benchmark (e.g. ``bench lan``) gets a generic page: its rows as a
table and its figures.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rawadapt.errors import InputFileError
from rawadapt.eval.errormaps import (
    colorbar,
    colorize,
    display_for,
    error_map,
    load_crop_sets,
    png_bytes,
    render,
    shared_vmax,
)
from rawadapt.eval.plots import load_cells, main_variant
from rawadapt.eval.results import fmt_psnr, fmt_seconds, fmt_ssim, lookup
from rawadapt.utils.atomic import write_text
from rawadapt.utils.guard import check_output_paths

CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1400px;
       color: #1d1d1f; background: #fff; padding: 0 16px; }
h1 { font-size: 1.6em; margin-bottom: 4px; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; }
h3 { margin-top: 22px; font-size: 1.05em; }
.meta { color: #555; font-size: 0.9em; }
table.results { border-collapse: collapse; margin: 10px 0 18px; font-size: 0.88em; }
table.results th, table.results td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
table.results th { background: #f2f2f2; } table.results td.name, table.results th.name { text-align: left; }
table.results tr.noisy td { color: #777; } td.best { font-weight: bold; background: #eef7ee; }
figure { display: inline-block; margin: 6px 10px 12px 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.8em; color: #444; text-align: center; max-width: 640px; }
.grid { border-collapse: collapse; margin-bottom: 16px; }
.grid td { padding: 2px 4px; text-align: center; vertical-align: top; font-size: 0.75em; }
.grid img { width: 160px; height: 160px; image-rendering: pixelated; border: 1px solid #ccc; display: block; }
.scale img { width: 160px; height: 10px; } .note { color: #8a5300; font-size: 0.9em; }
code { background: #f4f4f4; padding: 1px 4px; }
"""


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _img(png: bytes, alt: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<img{c} alt="{html.escape(alt)}" src="{data_uri(png)}">'


def _file_img(path: Path, caption: str) -> str:
    try:
        png = path.read_bytes()
    except OSError:
        return ""
    if not png.startswith(b"\x89PNG"):
        return ""
    return f"<figure>{_img(png, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _table(
    header: Sequence[str],
    body: Sequence[Sequence[str]],
    *,
    classes: Sequence[str] | None = None,
    best: Sequence[set[int]] | None = None,
) -> str:
    """An HTML table; first column left-aligned; ``best[i]`` = columns to highlight in row i."""
    out = ['<table class="results"><thead><tr>']
    out += [f'<th class="{"name" if j == 0 else ""}">{html.escape(h)}</th>' for j, h in enumerate(header)]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(body):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        out.append(f"<tr{cls}>")
        for j, cell in enumerate(row):
            c = "name" if j == 0 else ("best" if best and j in best[i] else "")
            out.append(f'<td class="{c}">{html.escape(str(cell))}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _best_columns(rows: list[list[dict[str, Any] | None]]) -> list[set[int]]:
    """Per method row, the columns where it has the best PSNR (ignoring the noisy input)."""
    best: list[set[int]] = [set() for _ in rows]
    ncol = max((len(r) for r in rows), default=0)
    for j in range(ncol):
        vals = [
            (cell["psnr"], i)
            for i, r in enumerate(rows)
            if j < len(r) and (cell := r[j]) is not None and cell.get("psnr") is not None and cell["method"] != "noisy"
        ]
        if vals:
            best[max(vals)[1]].add(j + 1)
    return best


def _results_tables(result: dict[str, Any]) -> str:

    idx = lookup(result["rows"])
    variants, methods, targets = result["variants"], result["methods"], result["targets"]
    parts: list[str] = []

    def avg(v: str, m: str, fmt: Any) -> str:
        r = idx.get((v, "average", m))
        if r is None:
            return "-"
        return fmt(r) + ("" if r.get("complete", True) else f" ({r['n_targets']} targets)")

    if len(variants) > 1:
        parts.append("<h3>Summary (PSNR dB, average over targets)</h3>")
        cells = [[idx.get((v["key"], "average", m)) for v in variants] for m in methods]
        parts.append(
            _table(
                ["method"] + [v["label"] for v in variants],
                [[m] + [avg(v["key"], m, fmt_psnr) for v in variants] for m in methods],
                classes=["noisy" if m == "noisy" else "" for m in methods],
                best=_best_columns(cells),
            )
        )
    for v in variants:
        vt = [t for t in targets if any((v["key"], t, m) in idx for m in methods)]
        ms = [m for m in methods if (v["key"], "average", m) in idx]
        if not vt or not ms:
            continue
        suffix = "" if len(variants) == 1 else f" — {v['label']}"
        parts.append(f"<h3>PSNR (dB) per target{html.escape(suffix)}</h3>")
        cells = [[idx.get((v["key"], t, m)) for t in vt + ["average"]] for m in ms]
        body = [
            [m]
            + [fmt_psnr(idx.get((v["key"], t, m))) for t in vt]
            + [
                avg(v["key"], m, fmt_psnr),
                fmt_seconds(idx[(v["key"], "average", m)].get("fit_seconds")),
                fmt_seconds(idx[(v["key"], "average", m)].get("denoise_seconds_per_image")),
            ]
            for m in ms
        ]
        parts.append(
            _table(
                ["method"] + vt + ["average", "fit s", "denoise s/img"],
                body,
                classes=["noisy" if m == "noisy" else "" for m in ms],
                best=_best_columns(cells),
            )
        )
        parts.append(f"<h3>SSIM per target{html.escape(suffix)}</h3>")
        body = [[m] + [fmt_ssim(idx.get((v["key"], t, m))) for t in vt] + [avg(v["key"], m, fmt_ssim)] for m in ms]
        parts.append(_table(["method"] + vt + ["average"], body, classes=["noisy" if m == "noisy" else "" for m in ms]))
    acc = result.get("acceptance", [])
    if acc:
        labels = {v["key"]: v["label"] for v in variants}
        domains = sorted({d for a in acc for d in a["domains"]})
        parts.append("<h3>ADL: acceptance rate of source batches per domain</h3>")
        body = [
            [labels.get(a["variant"], a["variant"]), a["target"], a["method"]]
            + [f"{a['domains'][d]:.2f}" if a["domains"].get(d) is not None else "-" for d in domains]
            for a in acc
        ]
        parts.append(_table(["variant", "target", "method"] + domains, body))
    return "\n".join(parts)


def _image_section(out: Path, result: dict[str, Any], images: int) -> str:

    if images <= 0:
        return ""
    v = main_variant(result)
    seed = result["settings"]["seeds"][0]
    cells_all = load_cells(out, result)
    parts: list[str] = []
    for t in result["targets"]:
        sel = [
            (rel, c)
            for rel, c in cells_all
            if c["key"]["variant"] == v and c["key"]["target"] == t and c["key"]["seed"] == seed
        ]
        order = {m: i for i, m in enumerate(result["methods"])}
        sel.sort(key=lambda rc: order.get(rc[1]["key"]["method"], 99))
        crops = load_crop_sets(out, [c for _, c in sel], [r for r, _ in sel], limit=images)
        for crop in crops:
            disp = display_for(crop.clean, crop.space, cfa=crop.cfa, sensor=crop.sensor)
            panels = [("noisy", crop.noisy)] + [(m, o) for m, o in crop.outputs.items() if m != "noisy"]
            maps = [error_map(img, crop.clean, crop.space) for _, img in panels]
            vmax = shared_vmax(maps, reference=maps[0])
            top = ["<tr>"]
            for name, img in panels + [("clean", crop.clean)]:
                p = crop.psnr.get(name)
                cap = name + (f" · {p:.2f} dB" if p is not None and math.isfinite(p) else "")
                top.append(f"<td>{_img(png_bytes(render(img, disp)), name)}{html.escape(cap)}</td>")
            top.append("</tr><tr>")
            for (name, _), m in zip(panels, maps):
                top.append(f"<td>{_img(png_bytes(colorize(m, vmax)), 'error ' + name)}|error| {html.escape(name)}</td>")
            top.append(f'<td class="scale">{_img(png_bytes(colorbar(vmax)), "error scale")}0 … {vmax:.4f}</td></tr>')
            what = "RAW through the camera pipeline" if crop.space == "raw" else "sRGB"
            parts.append(
                f"<h3>{html.escape(t)} — {html.escape(crop.sample_id)}</h3>"
                f'<p class="meta">{what}; PSNR on the whole test image; error maps share one scale '
                f"(0 … {vmax:.4f}, the noisy input's 99th percentile).</p>"
                f'<table class="grid">{"".join(top)}</table>'
            )
    if not parts:
        return ""
    return "<h2>Images</h2>\n" + "\n".join(parts)


def _valuation_section(out: Path, result: dict[str, Any]) -> str:

    v = main_variant(result)
    seed = result["settings"]["seeds"][0]
    parts: list[str] = []
    for _, c in load_cells(out, result):
        k = c["key"]
        if not c.get("acceptance") or not c.get("run_dir") or k["seed"] != seed:
            continue
        if k["variant"] != v and result["protocol"] != "harmful":
            continue
        run = out / c["run_dir"]
        label = f"{k['target']} / {k['method']}" + ("" if k["variant"] in ("default",) else f" / {k['variant']}")
        figs = [
            _file_img(run / "adl_contribution.png", f"{label}: per-domain acceptance over training"),
            _file_img(run / "adl_acceptance.png", f"{label}: cumulative acceptance"),
        ]
        if any(figs):
            parts.append(f"<h3>{html.escape(label)}</h3>" + "".join(figs))
    if not parts:
        return ""
    return (
        '<h2>ADL data valuation</h2><p class="meta">Which source data helped: the share of each '
        "source domain's candidate steps that ADL accepted, over the adaptive stage.</p>" + "\n".join(parts)
    )


CAPTIONS = {
    "target_size": "PSNR vs target-set size |T_adp| (ADL paper Fig. 3)",
    "psnr_gain": "PSNR gain over the noisy input per target",
    "acceptance": "ADL acceptance rate per source domain",
    "adl_threshold": "ADL acceptance threshold (queue mean PSNR on V') over iterations",
    "noise_hist": "Noise and residual distributions",
    "errormaps": "Crops and error maps",
}


def _caption(rel: str) -> str:
    stem = Path(rel).stem
    for k, c in CAPTIONS.items():
        if stem.startswith(k):
            rest = stem[len(k) :].strip("_")
            return f"{c}{' — ' + rest if rest else ''}"
    return stem


def _settings_block(result: dict[str, Any]) -> str:
    s, b, m = result["settings"], result["budget"], result.get("machine", {})
    items = [
        ("protocol", f"{result['protocol']} ({result['paper']})"),
        ("data", f"{s['data']} ({result['space']})"),
        ("targets", ", ".join(result["targets"])),
        ("methods", ", ".join(result["methods"])),
        ("|T_adp|", "per variant (n=…)" if result["protocol"] == "target-size" else str(result["target_pairs"])),
        ("seeds", ", ".join(map(str, s["seeds"]))),
        (
            "budget",
            f"{b['name']}: iters {b['iters']}, pretrain {b['pretrain_iters']}, finetune "
            f"{b['finetune_iters']}, patch {b['patch']}, batch {b['batch']}, width {b['width']}, "
            f"depth {b['depth']}",
        ),
        (
            "machine",
            f"{m.get('host', '?')}, {m.get('cpus', '?')} CPUs, {m.get('threads', '?')} threads, "
            f"torch {m.get('torch', '?')}",
        ),
        ("created", result.get("created", "?")),
    ]
    lis = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in items)
    notes = "".join(f'<li class="note">{html.escape(n)}</li>' for n in result.get("notes", []))
    fails = "".join(
        f'<li class="note">failed: {html.escape(json.dumps(f["key"]))}: {html.escape(f["error"])}</li>'
        for f in result.get("failures", [])
    )
    return f'<ul class="meta">{lis}{notes}{fails}</ul><p class="meta">{html.escape(result["metric_note"])}</p>'


def _generic_html(out: Path, result: dict[str, Any]) -> str:
    """Page for results.json files of other benchmarks (rows → one table, figures)."""
    rows = result.get("rows", [])
    cols = list(dict.fromkeys(k for r in rows for k, v in r.items() if not isinstance(v, (dict, list))))

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "-" if not math.isfinite(v) else f"{v:.4g}"
        return "-" if v is None else str(v)

    table = _table(cols, [[fmt(r.get(c)) for c in cols] for r in rows]) if rows else "<p>(no rows)</p>"
    figs = "".join(_file_img(p, p.stem) for d in ("plots", "figures") for p in sorted((out / d).glob("*.png")))
    return f"<h2>Results</h2>{table}" + (f"<h2>Figures</h2>{figs}" if figs else "")


def build_html(out: str | Path, *, images: int = 2) -> str:
    """The report page of a benchmark folder (see the module docstring).

    Raises
    ------
    InputFileError
        No readable ``results.json`` in ``out``.
    """
    out = Path(out)
    path = out / "results.json"
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputFileError(
            f"no readable results.json ({type(exc).__name__}); run `rawadapt bench ...` into this folder first", out
        ) from None
    if result.get("schema") == 1 and "variants" in result and "methods" in result:
        title = f"{result['title']} — {result['paper']}"
        plots = "".join(_file_img(out / rel, _caption(rel)) for rel in result.get("plots", []))
        body = (
            f"<h1>{html.escape(title)}</h1>{_settings_block(result)}"
            f"<h2>Results</h2>{_results_tables(result)}"
            + (f"<h2>Plots</h2>{plots}" if plots else "")
            + _valuation_section(out, result)
            + _image_section(out, result, images)
        )
    else:
        title = f"rawadapt benchmark: {out.name}"
        body = f"<h1>{html.escape(title)}</h1>" + _generic_html(out, result)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f'<body>{body}<p class="meta">Generated by rawadapt report from {html.escape(str(out))}.</p>'
        f"</body></html>\n"
    )


def write_report(out: str | Path, path: str | Path | None = None, *, images: int = 2) -> Path:
    """Write the report of ``out`` to ``path`` (default ``out/report.html``) atomically."""

    dest = Path(path) if path is not None else Path(out) / "report.html"
    # the report reads results and images under `out`: never write over one of them
    sources = (
        [f for f in Path(out).rglob("*") if f.is_file() and f.suffix.lower() != ".html"]
        if dest.exists() and Path(out).is_dir()
        else []
    )
    check_output_paths([dest], sources)
    write_text(dest, build_html(out, images=images))
    # the atomic write's temporary file is private (0600); a report is meant to be shared
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(dest, 0o666 & ~umask)
    return dest
