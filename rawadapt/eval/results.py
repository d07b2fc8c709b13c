"""Benchmark tables from the cell files: aggregation over seeds and targets, and the
``results.csv`` / ``results.json`` / ``results.md`` writers.

Every number in the tables is computed here FROM the cells' ``result.json`` files (never from
in-memory state of the run that produced them), so the tables always agree with the per-cell
metrics, also after a resumed or extended run.

Aggregation
-----------
* A cell's score is the mean over the target's test images of the per-image PSNR/SSIM
  (docs/benchmarks.md).
* A row (variant, target, method) takes the cells of every seed: ``psnr`` is the mean over
  seeds, ``psnr_std`` the sample standard deviation over seeds (ddof 1; None with one seed),
  ``psnr_min``/``psnr_max`` the range. Same for SSIM.
* The ``average`` row of (variant, method) averages the per-target scores of each seed over
  the targets (the paper's "Avg" column), then takes the same statistics over seeds. Only seeds
  present for every target count; ``complete`` says whether the method has every target that
  any method of the variant has (an incomplete average is shown with the count).
* **Noise bands** (:func:`noise_bands`): every test image of every cell of a (variant, method),
  pooled over targets and seeds, grouped by its noisy input's PSNR (:data:`NOISE_BAND_EDGES`);
  mean PSNR per band. A mean over images of very different noise hides where a method wins.
* **Paired tests** (:func:`paired_tests`): for two methods, the per-(target, seed) differences of
  the cell scores, their mean, sample std, the paired t statistic with its two-sided p-value, and
  how many pairs the first method wins.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from rawadapt.eval.tables import markdown_table
from rawadapt.utils.atomic import write_json, write_text

AVERAGE = "average"
#: upper edges (dB of the noisy input) of the noise bands; the last band is open
NOISE_BAND_EDGES = (20.0, 25.0, 30.0, 35.0, 40.0)
#: the comparisons :func:`paired_tests` makes when both methods are present (first vs second)
PAIRED_COMPARISONS = (
    ("adl", "finetune"),
    ("adl-paired", "finetune"),
    ("adl", "target-only"),
    ("adl", "joint"),
    ("finetune", "target-only"),
    ("adl", "bm3d"),
    ("finetune", "bm3d"),
    ("target-only", "bm3d"),
    ("adl-gain", "adl"),
    ("adl-stratified", "adl"),
    ("adl-paired", "adl"),
    ("adl-ts", "target-only"),
    ("adl-ts", "finetune"),
    ("adl-paired-ts", "target-only"),
    ("adl-paired-ts", "finetune"),
    ("finetune-eqt", "target-only"),
    ("calib-ft", "finetune"),
    # the ablation (ADL paper Table 4): each component's effect = ADL - ADL without it
    ("adl", "adl-no-adl"),
    ("adl", "adl-no-iso"),
    ("adl", "adl-no-type"),
    ("adl", "adl-no-pretrain"),
    ("adl", "adl-fixed-val"),
    ("adl", "adl-no-mod"),
    ("adl-noise", "adl"),
    ("adl-ksigma", "adl"),
    # the zoo rows
    ("zoo-zs", "bm3d"),
    ("zoo-ft", "target-only"),
    ("zoo-ft", "bm3d"),
    ("zoo-ft-low", "zoo-ft"),
    ("zoo-ft-low", "target-only"),
)

CSV_COLUMNS = (
    "protocol",
    "variant",
    "target",
    "method",
    "n_seeds",
    "seeds",
    "n_targets",
    "n_images",
    "psnr",
    "psnr_std",
    "psnr_min",
    "psnr_max",
    "ssim",
    "ssim_std",
    "ssim_min",
    "ssim_max",
    "psnr_noisy",
    "ssim_noisy",
    "psnr_gain",
    "fit_seconds",
    "denoise_seconds_per_image",
)


def seed_stats(values: Sequence[float]) -> dict[str, float | None]:
    """Mean, sample std (None for one value), min and max of finite values."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {
        "mean": float(np.mean(v)),
        "std": float(np.std(v, ddof=1)) if len(v) > 1 else None,
        "min": float(np.min(v)),
        "max": float(np.max(v)),
    }


def _num(x: Any) -> float:
    return float(x) if x is not None and isinstance(x, (int, float)) and math.isfinite(float(x)) else math.nan


def _row(
    protocol: str,
    variant: str,
    target: str,
    method: str,
    per_seed: dict[int, dict[str, float]],
    n_targets: int,
    n_images: int | None,
) -> dict[str, Any]:
    seeds = sorted(per_seed)
    stats = {m: seed_stats([per_seed[s][m] for s in seeds]) for m in ("psnr", "ssim")}
    mean = {
        m: seed_stats([per_seed[s][m] for s in seeds])["mean"]
        for m in ("psnr_noisy", "ssim_noisy", "fit_seconds", "denoise_seconds_per_image")
    }
    gain = (
        stats["psnr"]["mean"] - mean["psnr_noisy"]
        if stats["psnr"]["mean"] is not None and mean["psnr_noisy"] is not None
        else None
    )
    return {
        "protocol": protocol,
        "variant": variant,
        "target": target,
        "method": method,
        "n_seeds": len(seeds),
        "seeds": seeds,
        "n_targets": n_targets,
        "n_images": n_images,
        "psnr": stats["psnr"]["mean"],
        "psnr_std": stats["psnr"]["std"],
        "psnr_min": stats["psnr"]["min"],
        "psnr_max": stats["psnr"]["max"],
        "ssim": stats["ssim"]["mean"],
        "ssim_std": stats["ssim"]["std"],
        "ssim_min": stats["ssim"]["min"],
        "ssim_max": stats["ssim"]["max"],
        "psnr_noisy": mean["psnr_noisy"],
        "ssim_noisy": mean["ssim_noisy"],
        "psnr_gain": gain,
        "fit_seconds": mean["fit_seconds"],
        "denoise_seconds_per_image": mean["denoise_seconds_per_image"],
        "per_seed": {str(s): per_seed[s] for s in seeds},
    }


def _cell_scores(cell: dict[str, Any]) -> dict[str, float]:
    return {
        k: _num(cell.get(k))
        for k in ("psnr", "ssim", "psnr_noisy", "ssim_noisy", "fit_seconds", "denoise_seconds_per_image")
    }


def aggregate(
    cells: Iterable[dict[str, Any]],
    *,
    protocol: str,
    variants: Sequence[str],
    targets: Sequence[str],
    methods: Sequence[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Table rows and per-domain acceptance from cell records (see the module docstring).

    Returns
    -------
    rows
        One row per (variant, target, method) with cells, then one ``average`` row per
        (variant, method), in the given orders.
    acceptance
        Per (variant, target, method) with ADL acceptance: mean rate per source domain over
        seeds and the per-seed rates.
    """
    index: dict[tuple[str, str, str], dict[int, dict[str, Any]]] = {}
    for c in cells:
        k = c["key"]
        index.setdefault((k["variant"], k["target"], k["method"]), {})[int(k["seed"])] = c
    rows: list[dict[str, Any]] = []
    averages: list[dict[str, Any]] = []
    acceptance: list[dict[str, Any]] = []
    for v in variants:
        present = [t for t in targets if any((v, t, m) in index for m in methods)]
        for m in methods:
            per_target: dict[str, dict[int, dict[str, float]]] = {}
            for t in targets:
                got = index.get((v, t, m))
                if not got:
                    continue
                per_seed = {s: _cell_scores(c) for s, c in got.items()}
                per_target[t] = per_seed
                n_img = sorted({int(c.get("n_images", 0)) for c in got.values()})
                rows.append(_row(protocol, v, t, m, per_seed, 1, n_img[0] if len(n_img) == 1 else None))
                acc = {s: c["acceptance"] for s, c in got.items() if c.get("acceptance")}
                if acc:
                    domains = sorted({d for a in acc.values() for d in a})
                    acceptance.append(
                        {
                            "variant": v,
                            "target": t,
                            "method": m,
                            "domains": {d: seed_stats([acc[s].get(d) for s in sorted(acc)])["mean"] for d in domains},
                            "per_seed": {str(s): acc[s] for s in sorted(acc)},
                        }
                    )
            if not per_target:
                continue
            common = sorted(set.intersection(*(set(p) for p in per_target.values())))
            avg_seed = {
                s: {
                    k: float(np.nanmean([per_target[t][s][k] for t in per_target]))
                    if any(math.isfinite(per_target[t][s][k]) for t in per_target)
                    else math.nan
                    for k in ("psnr", "ssim", "psnr_noisy", "ssim_noisy", "fit_seconds", "denoise_seconds_per_image")
                }
                for s in common
            }
            row = _row(protocol, v, AVERAGE, m, avg_seed, len(per_target), None)
            row["complete"] = len(per_target) == len(present)
            row["targets"] = list(per_target)
            averages.append(row)
    return rows + averages, acceptance


def band_label(psnr_noisy: float) -> str:
    """The noise band of an image from its noisy input's PSNR, e.g. ``"25-30"``, ``"<20"``, ``">=40"``."""
    edges = NOISE_BAND_EDGES
    if psnr_noisy < edges[0]:
        return f"<{edges[0]:g}"
    for lo, hi in zip(edges, edges[1:], strict=False):
        if psnr_noisy < hi:
            return f"{lo:g}-{hi:g}"
    return f">={edges[-1]:g}"


def band_labels() -> list[str]:
    """Every band label, noisiest first."""
    e = NOISE_BAND_EDGES
    return [f"<{e[0]:g}"] + [f"{lo:g}-{hi:g}" for lo, hi in zip(e, e[1:], strict=False)] + [f">={e[-1]:g}"]


def noise_bands(cells: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean PSNR per (variant, method, noise band) over every test image of the cells (pooled
    over targets and seeds); rows with ``n_images``, ``psnr_noisy``, ``psnr`` and ``psnr_gain``."""
    pool: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for c in cells:
        k = c["key"]
        for im in c.get("images") or []:
            pn, p = _num(im.get("psnr_noisy")), _num(im.get("psnr"))
            if math.isfinite(pn) and math.isfinite(p):
                pool.setdefault((k["variant"], k["method"], band_label(pn)), []).append((pn, p))
    rows = []
    for (v, m, b), vals in pool.items():
        arr = np.asarray(vals, dtype=np.float64)
        rows.append(
            {
                "variant": v,
                "method": m,
                "band": b,
                "n_images": len(vals),
                "psnr_noisy": float(arr[:, 0].mean()),
                "psnr": float(arr[:, 1].mean()),
                "psnr_gain": float((arr[:, 1] - arr[:, 0]).mean()),
            }
        )
    order = {b: i for i, b in enumerate(band_labels())}
    return sorted(rows, key=lambda r: (r["variant"], r["method"], order[r["band"]]))


def paired_tests(
    cells: Iterable[dict[str, Any]], comparisons: Sequence[tuple[str, str]] = PAIRED_COMPARISONS
) -> list[dict[str, Any]]:
    """Paired comparison of two methods over the (target, seed) cells both have, per variant.

    Returns
    -------
    One row per (variant, first, second) with ``n`` pairs, ``mean_diff`` (first - second, dB),
    ``std_diff``, ``t``, two-sided ``p`` (paired t-test; None below 2 pairs or with zero spread)
    and ``wins`` (pairs where the first is higher).
    """
    score: dict[tuple[str, str], dict[tuple[str, int], float]] = {}
    for c in cells:
        k = c["key"]
        p = _num(c.get("psnr"))
        if math.isfinite(p):
            score.setdefault((k["variant"], k["method"]), {})[(k["target"], int(k["seed"]))] = p
    out = []
    for v in sorted({v for v, _ in score}):
        for a, b in comparisons:
            sa, sb = score.get((v, a)), score.get((v, b))
            if not sa or not sb:
                continue
            common = sorted(set(sa) & set(sb))
            if not common:
                continue
            d = np.asarray([sa[k] - sb[k] for k in common], dtype=np.float64)
            sd = float(d.std(ddof=1)) if len(d) > 1 else None
            t = pval = None
            if sd:
                from scipy import stats

                t = float(d.mean() / (sd / math.sqrt(len(d))))
                pval = float(2 * stats.t.sf(abs(t), df=len(d) - 1))
            out.append(
                {
                    "variant": v,
                    "first": a,
                    "second": b,
                    "n": len(d),
                    "mean_diff": float(d.mean()),
                    "std_diff": sd,
                    "t": t,
                    "p": pval,
                    "wins": int((d > 0).sum()),
                }
            )
    return out


# -- writers -----------------------------------------------------------------------------------
def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.10g}"
    if isinstance(v, (list, tuple)):
        return ";".join(str(x) for x in v)
    return v


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV (one line per row, :data:`CSV_COLUMNS`; empty = not available)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_value(r.get(k)) for k in CSV_COLUMNS})
    return buf.getvalue()


def fmt_psnr(row: dict[str, Any] | None, *, spread: bool = True) -> str:
    """``"43.21"``, with several seeds ``"43.21 ± 0.12 (43.05–43.33)"``; ``-`` when missing."""
    if row is None or row.get("psnr") is None:
        return "-"
    s = f"{row['psnr']:.2f}"
    if spread and row.get("psnr_std") is not None:
        s += f" ± {row['psnr_std']:.2f} ({row['psnr_min']:.2f}–{row['psnr_max']:.2f})"
    return s


def fmt_ssim(row: dict[str, Any] | None) -> str:
    if row is None or row.get("ssim") is None:
        return "-"
    s = f"{row['ssim']:.4f}"
    if row.get("ssim_std") is not None:
        s += f" ± {row['ssim_std']:.4f}"
    return s


def fmt_seconds(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    if x < 0.01:
        return f"{x:.4f}"
    return f"{x:.3g}" if x < 10 else f"{x:.0f}"


def _avg_cell(row: dict[str, Any] | None, fmt: Any) -> str:
    if row is None:
        return "-"
    s = fmt(row)
    if not row.get("complete", True):
        s += f" ({row['n_targets']} targets)"
    return s


def lookup(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """``(variant, target, method) -> row``."""
    return {(r["variant"], r["target"], r["method"]): r for r in rows}


def markdown(result: dict[str, Any]) -> str:
    """``results.md``: per variant a Table-1-shaped PSNR table (methods x targets + average, fit
    and denoise time), an SSIM table, a summary over variants when there are several, and the
    ADL per-domain acceptance rates."""
    rows = result["rows"]
    idx = lookup(rows)
    variants = result["variants"]
    methods = result["methods"]
    targets = result["targets"]
    s = result["settings"]
    b = result["budget"]
    lines = [f"# {result['title']} — {result['paper']}", ""]
    pairs = "per column" if result["protocol"] == "target-size" else str(result["target_pairs"])
    lines.append(
        f"Data `{s['data']}` ({result['space']}), |T_adp| = {pairs}, seeds "
        f"{', '.join(map(str, s['seeds']))}, budget `{b['name']}` (iters {b['iters']}, pretrain "
        f"{b['pretrain_iters']}, finetune {b['finetune_iters']}, patch {b['patch']}, batch {b['batch']}, "
        f"U-Net width {b['width']} depth {b['depth']})."
    )
    lines.append("")
    machine = (result.get("machine") or {}).get("line")
    if machine:
        lines += [f"Machine: {machine}.", ""]
    lines.append(result["metric_note"])
    lines.append("")
    for note in result.get("notes", []):
        lines.append(f"- note: {note}")
    if result.get("notes"):
        lines.append("")
    if len(variants) > 1:
        lines += [
            f"## Summary over {'sizes' if result['protocol'] == 'target-size' else 'variants'} "
            "(PSNR dB, average over targets)",
            "",
        ]
        header = ["method"] + [v["label"] for v in variants]
        body = [[m] + [_avg_cell(idx.get((v["key"], "average", m)), fmt_psnr) for v in variants] for m in methods]
        lines += markdown_table(header, body) + [""]
    for v in variants:
        vt = [t for t in targets if any((v["key"], t, m) in idx for m in methods)]
        if not vt:
            continue
        title = "" if len(variants) == 1 else f" — {v['label']}"
        lines += [f"## PSNR (dB) per target{title}", ""]
        header = ["method"] + vt + ["average", "fit s", "denoise s/img"]
        body = []
        for m in methods:
            avg = idx.get((v["key"], "average", m))
            if avg is None:
                continue
            body.append(
                [m]
                + [fmt_psnr(idx.get((v["key"], t, m))) for t in vt]
                + [
                    _avg_cell(avg, fmt_psnr),
                    fmt_seconds(avg.get("fit_seconds")),
                    fmt_seconds(avg.get("denoise_seconds_per_image")),
                ]
            )
        lines += markdown_table(header, body) + [""]
        lines += [f"## SSIM per target{title}", ""]
        body = [
            [m]
            + [fmt_ssim(idx.get((v["key"], t, m))) for t in vt]
            + [_avg_cell(idx.get((v["key"], "average", m)), fmt_ssim)]
            for m in methods
            if (v["key"], "average", m) in idx
        ]
        lines += markdown_table(["method"] + vt + ["average"], body) + [""]
    lines += _bands_markdown(result, variants, methods)
    lines += _paired_markdown(result, variants)
    acc = result.get("acceptance", [])
    if acc:
        domains = sorted({d for a in acc for d in a["domains"]})
        lines += [
            "## ADL: acceptance rate of source batches per domain",
            "",
            "Share of the candidate steps drawn from each source domain that were accepted (mean over seeds).",
            "",
        ]
        header = ["variant", "target", "method"] + domains
        body = [
            [next((v["label"] for v in variants if v["key"] == a["variant"]), a["variant"]), a["target"], a["method"]]
            + [f"{a['domains'][d]:.2f}" if a["domains"].get(d) is not None else "-" for d in domains]
            for a in acc
        ]
        lines += markdown_table(header, body) + [""]
    fails = result.get("failures", [])
    if fails:
        lines += ["## Failed cells", ""]
        lines += [
            f"- {f['key']['variant']} / {f['key']['target']} / seed {f['key']['seed']} / "
            f"{f['key']['method']}: {f['error']}"
            for f in fails
        ] + [""]
    return "\n".join(lines)


def _label(variants: Sequence[dict[str, Any]], key: str) -> str:
    return next((v["label"] for v in variants if v["key"] == key), key)


def _bands_markdown(result: dict[str, Any], variants: Sequence[dict[str, Any]], methods: Sequence[str]) -> list[str]:
    bands = result.get("bands") or []
    if not bands:
        return []
    lines = [
        "## PSNR (dB) per noise band",
        "",
        "Every test image of every target and seed, grouped by its noisy input's PSNR; "
        "mean PSNR of the method (images in the band).",
        "",
    ]
    idx = {(r["variant"], r["method"], r["band"]): r for r in bands}
    for v in variants:
        present = [b for b in band_labels() if any((v["key"], m, b) in idx for m in methods)]
        if not present:
            continue
        if len(variants) > 1:
            lines += [f"### {v['label']}", ""]
        body = []
        for m in methods:
            if not any((v["key"], m, b) in idx for b in present):
                continue
            body.append(
                [m]
                + [
                    f"{idx[(v['key'], m, b)]['psnr']:.2f} ({idx[(v['key'], m, b)]['n_images']})"
                    if (v["key"], m, b) in idx
                    else "-"
                    for b in present
                ]
            )
        lines += markdown_table(["method"] + [f"noisy {b} dB" for b in present], body) + [""]
    return lines


def _paired_markdown(result: dict[str, Any], variants: Sequence[dict[str, Any]]) -> list[str]:
    paired = result.get("paired") or []
    if not paired:
        return []
    lines = [
        "## Paired comparisons over targets x seeds",
        "",
        "Difference of the cell PSNRs (first − second) over the (target, seed) cells both have; "
        "paired t-test, two-sided.",
        "",
    ]
    body = [
        [
            _label(variants, r["variant"]),
            f"{r['first']} − {r['second']}",
            r["n"],
            f"{r['mean_diff']:+.2f}",
            f"{r['std_diff']:.2f}" if r["std_diff"] is not None else "-",
            f"{r['t']:.2f}" if r["t"] is not None else "-",
            f"{r['p']:.3g}" if r["p"] is not None else "-",
            f"{r['wins']}/{r['n']}",
        ]
        for r in paired
    ]
    return lines + markdown_table(["variant", "comparison", "n", "mean dB", "std", "t", "p", "wins"], body) + [""]


def write_results(out: Any, result: dict[str, Any]) -> list[str]:
    """Write ``results.csv``, ``results.json`` and ``results.md`` atomically; return the paths."""
    from pathlib import Path

    out = Path(out)
    write_text(out / "results.csv", to_csv(result["rows"]))
    write_json(out / "results.json", result)
    write_text(out / "results.md", markdown(result))
    return [str(out / n) for n in ("results.csv", "results.json", "results.md")]
