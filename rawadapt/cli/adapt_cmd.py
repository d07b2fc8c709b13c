"""``rawadapt adapt``: test-time adaptation of a trained denoiser to single images (LAN and
its baselines), and ``rawadapt meta-init``: the meta-learned initialisation ``--method meta``
starts from.

Inputs: sRGB PNG/JPEG/TIFF (3 planes), camera RAW files (read with LibRaw, packed to 4 planes)
or ``.npy`` arrays ``(3|4, H, W)`` in [0, 1]. Outputs: PNG for sRGB (or the extension given),
DNG for RAW files (the file's own CFA, levels, ISO), ``.npy`` for arrays. With ``--json`` the
LAST stdout line is one JSON object; human messages go to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from rawadapt.cli.common import PRECISION_HELP, info, print_json, use_precision

_OUT_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dng", ".npy"}


def _load_input(path: Path, what: str) -> dict[str, Any]:
    """Read one input: ``{"array", "kind" ("srgb"/"raw"/"array"), "raw" (RawImage or None)}``."""
    import numpy as np

    from rawadapt.errors import InputFileError, ShapeError
    from rawadapt.io.readers import file_kind

    if not path.is_file():
        raise InputFileError(f"{what}: no such file", path)
    kind = file_kind(path)
    if kind == "image":
        from rawadapt.io.images import read_image

        return {"array": read_image(path), "kind": "srgb", "raw": None}
    if kind == "raw":
        from rawadapt.io.raw import read_raw

        raw = read_raw(path)
        return {"array": raw.planes, "kind": "raw", "raw": raw}
    if kind == "array":
        from rawadapt.io.images import read_array

        a = np.asarray(read_array(path), dtype=np.float32)
        if a.ndim != 3 or a.shape[0] not in (3, 4):
            raise ShapeError(
                f"{what}: a .npy input must be (3, H, W) sRGB or (4, H, W) packed RAW planes, got shape {a.shape}", path
            )
        return {"array": a, "kind": "array", "raw": None}
    raise InputFileError(f"{what}: unsupported file type (PNG/JPEG/TIFF, a camera RAW file or .npy)", path)


def _input_kind(path: Path) -> str:
    """The output kind of an input by its extension (as :func:`_load_input` decides)."""
    from rawadapt.io.readers import file_kind

    return {"image": "srgb", "raw": "raw", "array": "array"}.get(file_kind(path), "array")


def _output_path(out: Path, inp: Path, kind: str, single: bool, method: str) -> Path:
    if single and out.suffix.lower() in _OUT_SUFFIXES:
        return out
    ext = {"srgb": ".png", "raw": ".dng", "array": ".npy"}[kind]
    return out / f"{inp.stem}_{method}{ext}"


def _write_output(path: Path, array: Any, item: dict[str, Any]) -> None:
    import numpy as np

    from rawadapt.errors import InputFileError

    ext = path.suffix.lower()
    clipped = np.clip(array, 0.0, 1.0).astype(np.float32)
    if ext == ".npy":
        from rawadapt.utils.atomic import atomic_path

        with atomic_path(path) as tmp:
            np.save(tmp, clipped, allow_pickle=False)
        return
    if ext == ".dng":
        raw = item["raw"]
        if raw is None:
            raise InputFileError("DNG output needs a camera RAW input (CFA and levels); use .npy", path)
        _write_dng(path, clipped, raw)
        return
    if clipped.shape[0] != 3:
        raise InputFileError("a RAW result cannot be written as an sRGB image; use .dng or .npy", path)
    from rawadapt.io.images import write_image

    write_image(path, clipped, bits=8)


def _write_dng(path: Path, planes: Any, raw: Any) -> None:
    from rawadapt.io.dng import write_dng_like

    write_dng_like(path, planes, raw, software="rawadapt adapt")


def run_adapt(
    run: Path,
    inputs: list[Path],
    *,
    out: Path,
    method: str,
    loss: str,
    iters: int,
    clean: list[Path] | None,
    lr: float | None,
    seed: int,
    sensor: str | None,
    iso: float | None,
    meta_run: Path | None,
    bound: str,
    save_adapted: bool,
    device: str,
    unknown_sensor: str | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """The library side of ``rawadapt adapt`` (also used by tests).

    A noise-conditioned model (e.g. ``zoo:raw-unet-any``) is told each image's noise line as
    ``rawadapt denoise`` does (:func:`rawadapt.eval.conditioning.resolve_conditioning`:
    ``profile``, else the camera's profile, else an estimate from the image); each image's
    entry says which (``noise_source``).
    """
    from rawadapt.adapt.api import make_adapter
    from rawadapt.adapt.meta import meta_settings
    from rawadapt.errors import ConfigError, ShapeError
    from rawadapt.models.checkpoint import load_model
    from rawadapt.utils.guard import check_output_paths

    clean = list(clean or [])
    if clean and len(clean) != len(inputs):
        raise ConfigError(
            f"--clean was given {len(clean)} times for {len(inputs)} inputs; give one clean "
            "image per input, in the same order"
        )
    model_src = run
    if method == "meta":
        model_src = meta_run or run
    model, meta = load_model(model_src, device=device)
    if unknown_sensor is not None:
        try:
            model.set_unknown_sensor_policy(unknown_sensor)
        except ValueError as exc:
            raise ConfigError(f"--unknown-sensor: {exc}") from None
    minfo = meta_settings(meta)
    if method == "meta" and minfo is None:
        raise ConfigError(
            "--method meta needs a meta-initialised model: pass --meta-run DIR made by "
            "`rawadapt meta-init RUN --data ... --out DIR` (or `rawadapt bench lan`)",
            model_src,
        )
    if minfo is not None and method == "meta" and loss != minfo.get("loss", loss):
        info(f"note: the meta-initialisation was trained with the {minfo.get('loss')} loss; adapting with {loss}")
    adapter = make_adapter(model, method, loss=loss, iters=iters, lr=lr, bound=bound, meta_info=minfo)
    single = len(inputs) == 1
    if not (single and out.suffix.lower() in _OUT_SUFFIXES):
        if out.exists() and not out.is_dir():
            raise ConfigError("with several inputs -o must be a folder", out)
    # every output, decided up front: none may overwrite an input (a later input included) or
    # another output, and each must be writable before any adaptation runs
    dests = [_output_path(out, inp, _input_kind(inp), single, method) for inp in inputs]
    extra = [d.with_name(f"{d.stem}_adapted_input{d.suffix}") for d in dests] if save_adapted else []
    check_output_paths([*dests, *extra], [*inputs, *clean])
    images = []
    for k, inp in enumerate(inputs):
        item = _load_input(inp, "input")
        arr = item["array"]
        if arr.shape[0] != model.in_channels:
            have = "an sRGB image (3 planes)" if arr.shape[0] == 3 else "packed RAW (4 planes)"
            want = "packed RAW (4 planes)" if model.in_channels == 4 else "sRGB (3 planes)"
            raise ShapeError(f"input is {have} but the {model.arch} model in {model_src} denoises {want}", inp)
        ref = None
        if clean:
            citem = _load_input(clean[k], "clean image")
            ref = citem["array"]
            if ref.shape != arr.shape:
                raise ShapeError(f"clean image {tuple(ref.shape)} and input {tuple(arr.shape)} sizes differ", clean[k])
        iso_k = iso if iso is not None else (item["raw"].meta.iso if item["raw"] is not None else None)
        cfa_k = item["raw"].cfa if item["raw"] is not None else None
        sensor_k, noise_k, cond_info = sensor, None, {}
        if getattr(model, "uses_noise", False):
            from rawadapt.eval.conditioning import FileMetadata, resolve_conditioning

            fmeta = FileMetadata.from_raw(item["raw"]) if item["raw"] is not None else FileMetadata()
            cond = resolve_conditioning(
                model,
                fmeta,
                sensor=sensor,
                iso=iso_k,
                profile=profile,
                unknown_sensor=unknown_sensor,
                path=inp,
                image=arr,
            )
            sensor_k, iso_k, noise_k = cond.sensor, cond.iso, cond.noise
            cond_info = {"noise_source": cond.noise_source, "noise": list(cond.noise) if cond.noise else None}
        res = adapter.adapt(arr, clean=ref, sensor=sensor_k, iso=iso_k, cfa=cfa_k, seed=seed, noise=noise_k)
        dest = dests[k]
        _write_output(dest, res.denoised, item)
        entry: dict[str, Any] = {
            "input": str(inp),
            "output": str(dest),
            "clean": str(clean[k]) if clean else None,
            **cond_info,
            **res.to_dict(),
        }
        if save_adapted:
            adest = dest.with_name(f"{dest.stem}_adapted_input{dest.suffix}")
            _write_output(adest, res.adapted_input, item)
            entry["adapted_input"] = str(adest)
        images.append(entry)
        if ref is not None:
            info(
                f"{inp.name}: PSNR {res.psnr_before:.2f} -> {res.psnr_after:.2f} dB (noisy {res.psnr_noisy:.2f}), "
                f"{method}+{loss}, {iters} iterations, {res.seconds:.1f} s -> {dest}"
            )
        else:
            info(f"{inp.name}: {method}+{loss}, {iters} iterations, {res.seconds:.1f} s -> {dest}")

    def mean(key: str) -> float | None:
        vals = [i[key] for i in images if i.get(key) is not None]
        return sum(vals) / len(vals) if vals else None

    return {
        "run": str(model_src),
        "method": method,
        "loss": loss,
        "iters": iters,
        "lr": adapter_lr(adapter),
        "seed": seed,
        "n_images": len(images),
        "images": images,
        "summary": {k: mean(k) for k in ("psnr_noisy", "psnr_before", "psnr_after", "ssim_before", "ssim_after")},
    }


def adapter_lr(adapter: Any) -> float:
    return float(getattr(adapter, "lr", 0.0))


def register(app: typer.Typer) -> None:
    @app.command("adapt")
    def adapt(
        run: Path = typer.Argument(..., help="Trained model: a run folder, its model.safetensors, or zoo:NAME."),
        inputs: list[Path] = typer.Argument(..., help="Noisy image(s): sRGB PNG/JPEG/TIFF, camera RAW, or .npy."),
        out: Path = typer.Option(..., "--out", "-o", help="Output file (one input) or folder."),
        method: str = typer.Option("lan", "--method", "-m", help="lan | full | first-layer | last-layer | meta."),
        loss: str = typer.Option("zsn2n", "--loss", help="Self-supervised loss: zsn2n | nbr2nbr."),
        iters: int = typer.Option(20, "--iters", "-n", min=0, help="Adaptation iterations (paper: 5, 10, 20)."),
        clean: list[Path] = typer.Option(
            None, "--clean", help="Clean reference per input (repeat the option), for PSNR/SSIM per iteration."
        ),
        lr: float = typer.Option(None, "--lr", help="Adam learning rate (default: 5e-4 LAN, 5e-6 fine-tuning)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the Neighbor2Neighbor sub-sampler."),
        sensor: str = typer.Option(None, "--sensor", help="Sensor name for modulated models."),
        unknown_sensor: str = typer.Option(
            None,
            "--unknown-sensor",
            help="Modulated models, sensor not in the vocabulary: average | iso-only (default: the model's policy).",
        ),
        iso: float = typer.Option(None, "--iso", help="ISO for modulated models (default: the RAW file's)."),
        profile: str = typer.Option(
            None,
            "--profile",
            help="Noise profile (name or YAML) for noise-conditioned models "
            "(default: the camera's profile, else an estimate from the image).",
        ),
        meta_run: Path = typer.Option(
            None, "--meta-run", help="Meta-initialised model for --method meta (made by `rawadapt meta-init`)."
        ),
        bound: str = typer.Option("tanh", "--bound", help="LAN offset: tanh (authors) | none (unbounded)."),
        save_adapted: bool = typer.Option(False, "--save-adapted", help="Also write LAN's adapted input."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
        precision: str = typer.Option(None, "--precision", help=PRECISION_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last stdout line."),
    ) -> None:
        """Adapt a trained denoiser to each noisy image at test time and write the denoised result."""
        from rawadapt.adapt.api import ADAPT_METHODS
        from rawadapt.adapt.losses import LOSSES
        from rawadapt.errors import ConfigError

        use_precision(precision)
        if method not in ADAPT_METHODS:
            raise ConfigError(f"--method must be one of {', '.join(ADAPT_METHODS)}, got {method!r}")
        if loss not in LOSSES:
            raise ConfigError(f"--loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        res = run_adapt(
            run,
            list(inputs),
            out=out,
            method=method,
            loss=loss,
            iters=iters,
            clean=clean,
            lr=lr,
            seed=seed,
            sensor=sensor,
            iso=iso,
            meta_run=meta_run,
            bound=bound,
            save_adapted=save_adapted,
            device=device,
            unknown_sensor=unknown_sensor,
            profile=profile,
        )
        if as_json:
            print_json(res)
        else:
            s = res["summary"]
            if s.get("psnr_after") is not None:
                typer.echo(f"{res['n_images']} image(s): mean PSNR {s['psnr_before']:.2f} -> {s['psnr_after']:.2f} dB")
            else:
                typer.echo(f"{res['n_images']} image(s) written")

    @app.command("meta-init")
    def meta_init(
        run: Path = typer.Argument(..., help="Pretrained run folder to meta-train from."),
        data: str = typer.Option(..., "--data", help="Pretraining pairs: synth-srgb, synth, ADAPTER:PATH, folder."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for the meta-initialised model."),
        loss: str = typer.Option("zsn2n", "--loss", help="Inner self-supervised loss: zsn2n | nbr2nbr."),
        algorithm: str = typer.Option("fomaml", "--algorithm", help="fomaml | reptile."),
        meta_iters: int = typer.Option(200, "--meta-iters", min=1, help="Outer updates."),
        inner_steps: int = typer.Option(5, "--inner-steps", min=1, help="Inner adaptation steps per task."),
        inner_lr: float = typer.Option(5e-6, "--inner-lr", help="Inner Adam lr (= the test-time lr)."),
        outer_lr: float = typer.Option(1e-5, "--outer-lr", help="Outer Adam lr."),
        patch: int = typer.Option(64, "--patch", min=4, help="Task patch side."),
        images: int = typer.Option(32, "--images", min=1, help="Training images to draw tasks from."),
        seed: int = typer.Option(0, "--seed"),
        precision: str = typer.Option(None, "--precision", help=PRECISION_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last stdout line."),
    ) -> None:
        """Meta-train a pretrained model (first-order MAML / Reptile with a self-supervised inner loss)."""
        from rawadapt.adapt.meta import MetaConfig, meta_pretrain
        from rawadapt.data.registry import open_dataset
        from rawadapt.eval.protocols.lan import pretraining_samples

        use_precision(precision)
        cfg = MetaConfig(
            algorithm=algorithm,  # type: ignore[arg-type]
            loss=loss,
            inner_steps=inner_steps,
            inner_lr=inner_lr,
            outer_lr=outer_lr,
            meta_iters=meta_iters,
            patch=patch,
            seed=seed,
        ).validate()
        samples = pretraining_samples(open_dataset(data), images)
        dest = meta_pretrain(run, samples, out, cfg, progress=True)
        if as_json:
            print_json({"out": str(dest), "meta_init": cfg.model_dump()})
        else:
            typer.echo(f"meta-initialised model written to {dest}")
