"""The sRGB zoo goal's references on the LAN protocol's PolyU crops: noisy, BM3D given each
image's TRUE noise sigma, BM3D with a blind sigma estimate, and zoo models as they are.

    python bench/bench_srgb_reference.py --models zoo:srgb-unet-m,zoo:srgb-dncnn-s \
        --polyu ../shared/data/polyu --crop 256 --out bench/results/.../srgb_reference.json

The crops are those of ``rawadapt bench lan`` (every PolyU pair, top-left ``--crop``), so the
numbers sit beside its ``pretrained`` rows. "True sigma" is the std of ``noisy - clean`` over the
crop (an oracle no real user has: the upper reference of the zoo issue's goal); the blind
estimate is scikit-image's wavelet estimate (:func:`rawadapt.baselines.noise_level.
estimate_gaussian_sigma`), what the ``bm3d`` bench row uses on sRGB without target pairs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rawadapt.baselines.bm3d import bm3d_srgb
from rawadapt.baselines.noise_level import estimate_gaussian_sigma
from rawadapt.data.registry import open_dataset
from rawadapt.errors import RawAdaptError
from rawadapt.metrics import evaluate_pair
from rawadapt.models.checkpoint import load_model
from rawadapt.models.inference import denoise_image
from rawadapt.models.zoo import get_entry, is_zoo_ref, sha256_file
from rawadapt.utils.atomic import write_json, write_text
from rawadapt.utils.compute import compute_record


def markdown(res: dict[str, Any]) -> str:
    """The summary as a Markdown table (``## Summary``), for BENCHMARKS.md's fill script."""
    lines = [
        "# sRGB references on the PolyU crops",
        "",
        f"{res['images']} PolyU pairs, top-left {res['crop']}x{res['crop']} crops (the LAN protocol's).",
        "",
        "## Summary",
        "",
        "| method | PSNR (dB) | gain over noisy (dB) | images above noisy | s/image |",
        "|---|---|---|---|---|",
    ]
    noisy = np.asarray(res["per_image"]["noisy"])
    for k, v in res["summary"].items():
        above = int(np.sum(np.asarray(res["per_image"][k]) > noisy)) if k != "noisy" else 0
        sec = v.get("seconds_per_image")
        lines.append(
            f"| {k} | {v['psnr']:.2f} | {v['gain_over_noisy']:+.2f} | {above if k != 'noisy' else '-'} | "
            f"{'-' if not sec else f'{sec:.2f}'} |"
        )
    return "\n".join(lines) + "\n"


def _weights_sha256(ref: str) -> str | None:
    """The SHA-256 of a model's weights (zoo:NAME or a run folder); None when missing."""
    if is_zoo_ref(ref):  # the index's hash, which loading checks the files against
        try:
            return get_entry(ref[len("zoo:") :]).get("sha256")
        except RawAdaptError:  # no longer shipped
            return None
    path = Path(ref) / "model.safetensors"
    return sha256_file(path) if path.is_file() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="zoo:srgb-unet-m", help="comma-separated zoo:NAME or run folders ('' = none)")
    ap.add_argument("--polyu", default="../shared/data/polyu")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--images", type=int, default=0, help="0 = every pair")
    ap.add_argument("--bm3d", choices=["none", "true", "both"], default="true", help="BM3D rows (12 s per crop each)")
    ap.add_argument(
        "--out", type=Path, required=True, help="JSON file (its Markdown summary is written beside it as STEM.md)"
    )
    ap.add_argument("--render", action="store_true", help="only write the Markdown of an existing --out JSON")
    ap.add_argument(
        "--keep-from",
        type=Path,
        default=None,
        help="an earlier JSON of the same crops: its rows not computed now (e.g. BM3D) are copied, not rerun",
    )
    args = ap.parse_args()
    md_path = args.out.with_name(args.out.stem + ".md")
    if args.render:
        write_text(md_path, markdown(json.loads(args.out.read_text())))
        return
    ds = open_dataset(f"polyu:{args.polyu}")
    n = len(ds) if not args.images else min(args.images, len(ds))
    idx = np.linspace(0, len(ds) - 1, n).round().astype(int)
    models = {m: load_model(m)[0] for m in args.models.split(",") if m}
    rows: dict[str, list[float]] = {"noisy": [], **{m: [] for m in models}}
    sigmas = {"none": (), "true": ("bm3d-true-sigma",), "both": ("bm3d-true-sigma", "bm3d-blind-sigma")}[args.bm3d]
    rows |= {k: [] for k in sigmas}
    ids, secs = [], {k: 0.0 for k in rows}
    t0 = time.perf_counter()
    for i in idx:
        s = ds[int(i)]
        c = args.crop or max(s.height, s.width)
        y, x = s.noisy[:, :c, :c], s.clean[:, :c, :c]
        ids.append(s.sample_id)
        rows["noisy"].append(evaluate_pair(y, x)["psnr"])
        for name, model in models.items():
            t = time.perf_counter()
            out = denoise_image(model, y, tile=512)
            secs[name] += time.perf_counter() - t
            rows[name].append(evaluate_pair(np.clip(out, 0, 1), x)["psnr"])
        for name in sigmas:
            sigma = float(np.std(y - x)) if name == "bm3d-true-sigma" else float(estimate_gaussian_sigma(y))
            t = time.perf_counter()
            out = bm3d_srgb(y, sigma)
            secs[name] += time.perf_counter() - t
            rows[name].append(evaluate_pair(np.clip(out, 0, 1), x)["psnr"])
    hashes = {m: _weights_sha256(m) for m in models}
    if args.keep_from is not None:
        kept = json.loads(args.keep_from.read_text())
        if (
            kept["per_image"]["sample_id"] != ids
            or kept["crop"] != args.crop
            or kept.get("polyu", args.polyu) != args.polyu
        ):
            raise SystemExit(f"{args.keep_from}: other images, crop or PolyU folder than this run; rows cannot be kept")
        for k, v in kept["per_image"].items():
            if k in rows or k == "sample_id":
                continue
            if not k.startswith("bm3d-"):  # a model's row: only with the same weights
                sha = kept.get("models_sha256", {}).get(k)
                if sha is None or sha != _weights_sha256(k):
                    print(f"not keeping {k}: its weights changed or are not recorded")
                    continue
                hashes[k] = sha
            rows[k] = v
            secs[k] = kept["summary"][k]["seconds_per_image"] * len(v)
    noisy = np.asarray(rows["noisy"])
    summary = {
        k: {
            "psnr": float(np.mean(v)),
            "gain_over_noisy": float(np.mean(np.asarray(v) - noisy)),
            "seconds_per_image": secs[k] / len(v) if v else None,
        }
        for k, v in rows.items()
    }
    res = {
        "images": len(ids),
        "crop": args.crop,
        "summary": summary,
        "per_image": {"sample_id": ids, **rows},
        "polyu": args.polyu,
        "models_sha256": hashes,
        "kept_from": None if args.keep_from is None else str(args.keep_from),
        "compute": compute_record(),
        "seconds": time.perf_counter() - t0,
    }
    write_json(args.out, res)
    write_text(md_path, markdown(res))
    for k, v in summary.items():
        print(f"{k:20s} {v['psnr']:.2f} dB ({v['gain_over_noisy']:+.2f} over noisy)")


if __name__ == "__main__":
    main()
