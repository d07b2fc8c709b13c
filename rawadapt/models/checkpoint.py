"""Checkpoints without pickle: model weights as safetensors + a JSON description, and the
training state for an exact resume.

Model files (a run folder holds both)
-------------------------------------
``model.safetensors``
    The ``state_dict`` (contiguous CPU tensors; tied tensors are stored once per name).
``model.json``
    ``{"format": "rawadapt-model", "format_version": 1, "package_version", "arch", "config"
    (what ``build_model`` needs), "space" ("raw"/"srgb"), "in_channels", "sensors",
    "uses_metadata", "iso_normalisation" ({"type": "log2", "ref", "scale"} for modulated models,
    else null), "unknown_sensor" (the policy), "num_parameters", "tensors_sha256", **extra}``.

Both are written atomically (temporary file + rename). ``tensors_sha256`` is the SHA-256 of the
safetensors file: a flipped byte in the tensor data (which the safetensors header cannot see) is
reported instead of silently giving a different model.

Loading untrusted files (:func:`load_model`) allocates nothing the weights file does not hold.
Before any model is built or the weights are read: ``model.json`` is at most
:data:`MAX_META_BYTES`, its ``sensors`` at most :data:`MAX_SENSORS` names, its ``config`` flat
(numbers, strings, short lists) with integers at most :data:`MAX_CONFIG_INT`; the weights file is
at most :data:`MAX_WEIGHTS_BYTES`, its header (8-byte little-endian length + JSON, at most
:data:`MAX_HEADER_BYTES`) accounts for exactly the file's size, and the model the config
describes, built on PyTorch's ``meta`` device (no memory), has exactly the header's tensor
names and shapes. Weights holding NaN/Inf are refused.

Training state
--------------
``save_training_state`` / ``load_training_state`` store a dict of tensors, numbers, strings,
lists and dicts with :func:`torch.save`, and load it ONLY with ``torch.load(weights_only=True)``,
which refuses arbitrary Python objects. NumPy generator states (whose 128-bit integers the
restricted unpickler does not take) are stored as JSON strings and decoded on load.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rawadapt
from rawadapt.errors import CheckpointError, RawAdaptError
from rawadapt.models.base import Denoiser
from rawadapt.models.registry import build_model
from rawadapt.models.zoo import resolve_run
from rawadapt.utils.atomic import write_bytes, write_json

MODEL_FORMAT = "rawadapt-model"
MODEL_FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
META_NAME = "model.json"
STATE_FORMAT = "rawadapt-training-state"
STATE_FORMAT_VERSION = 1

#: keys of model.json that ``extra`` may not override
_RESERVED = (
    "raw_phase",
    "format",
    "format_version",
    "package_version",
    "arch",
    "config",
    "space",
    "in_channels",
    "sensors",
    "uses_metadata",
    "iso_normalisation",
    "unknown_sensor",
    "num_parameters",
    "tensors_sha256",
)
_JSON_MARK = "__rawadapt_json__"

#: limits on untrusted model files (see the module docstring)
MAX_META_BYTES = 4 * 2**20
MAX_SENSORS = 4096
MAX_SENSOR_NAME = 256
MAX_CONFIG_INT = 1024
MAX_CONFIG_LIST = 16
MAX_WEIGHTS_BYTES = 2 * 2**30
MAX_HEADER_BYTES = 16 * 2**20
_ST_DTYPES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "U16": 2,
    "U32": 4,
    "U64": 8,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------------------------
# Model weights + description
# --------------------------------------------------------------------------------------------


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict as independent contiguous CPU tensors.

    Cloning gives every name its own storage, so tied/shared parameters (which
    ``safetensors.torch.save_file`` refuses) are simply stored under each of their names, and
    ``load_state_dict`` puts the same values back into the shared parameter.
    """
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def model_metadata(model: Denoiser) -> dict[str, Any]:
    """The ``model.json`` description of ``model`` (without ``tensors_sha256`` and extras)."""
    mod = getattr(model, "modulation", None)
    iso_norm = None
    if mod is not None:
        iso_norm = {
            "type": "log2",
            "ref": float(mod.iso_ref),
            "scale": float(mod.iso_scale),
            "formula": "log2(iso / ref) / scale; unknown ISO -> 0",
        }
    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "package_version": rawadapt.__version__,
        "arch": model.arch,
        "config": model.config(),
        "space": model.space,
        "in_channels": model.in_channels,
        "sensors": list(model.sensors),
        "uses_metadata": bool(model.uses_metadata),
        "iso_normalisation": iso_norm,
        "unknown_sensor": model.unknown_sensor,
        "raw_phase": getattr(model, "raw_phase", None),
        "num_parameters": int(model.num_parameters()),
    }


def save_model(run_dir: PathLike, model: Denoiser, *, extra: dict[str, Any] | None = None) -> None:
    """Write ``model.safetensors`` and ``model.json`` into ``run_dir`` (created if needed).

    Parameters
    ----------
    run_dir
        Destination folder.
    model
        Any registered :class:`~rawadapt.models.base.Denoiser`.
    extra
        JSON-serialisable entries merged into ``model.json`` (e.g. ``{"strategy": "adl",
        "target": "CanonEOS70D"}``); they may not replace the reserved keys.

    Raises
    ------
    ValueError
        ``extra`` tries to replace a reserved key or is not JSON-serialisable.
    """
    from safetensors.torch import save as st_save

    extra = dict(extra or {})
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise ValueError(f"extra may not override reserved model.json keys: {', '.join(clash)}")
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    blob = st_save(_cpu_state(model), metadata={"format": MODEL_FORMAT, "arch": model.arch})
    meta = model_metadata(model)
    meta["tensors_sha256"] = hashlib.sha256(blob).hexdigest()
    meta.update(extra)
    try:  # fail before writing anything if extra is not JSON-serialisable
        json.dumps(meta)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model.json entries must be JSON-serialisable: {exc}") from None
    # weights first: a crash between the two writes leaves a JSON whose checksum no longer
    # matches, which load_model reports, never a silently inconsistent pair
    write_bytes(run / WEIGHTS_NAME, blob)
    write_json(run / META_NAME, meta)


def resolve_model_files(path: PathLike) -> tuple[Path, Path]:
    """``(weights, json)`` paths for a run folder, a ``.safetensors`` file or a ``.json`` file.

    A weights file ``x.safetensors`` pairs with ``x.json`` beside it, else with ``model.json``.
    ``zoo:NAME`` is the shipped model's folder, its weights checked against the zoo index first
    (:func:`rawadapt.models.zoo.resolve_run`): every loader goes through here.
    """
    p = resolve_run(path)
    if p.is_dir():
        return p / WEIGHTS_NAME, p / META_NAME
    if p.suffix == ".safetensors":
        js = p.with_suffix(".json")
        return p, js if js.exists() else p.parent / META_NAME
    if p.suffix == ".json":
        w = p.with_suffix(".safetensors")
        return (w if w.exists() else p.parent / WEIGHTS_NAME), p
    if not p.exists():
        raise CheckpointError("no such run folder or model file", p)
    raise CheckpointError("not a run folder, .safetensors or model .json file", p)


def _read_meta(js: Path) -> dict[str, Any]:
    if not js.is_file():
        raise CheckpointError(f"missing {js.name} (the model description saved beside the weights)", js)
    try:
        size = js.stat().st_size
        if size > MAX_META_BYTES:
            raise CheckpointError(f"model description of {size} bytes exceeds the limit of {MAX_META_BYTES}", js)
        meta = json.loads(js.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"unreadable model description: {exc}", js) from None
    except RecursionError:
        raise CheckpointError("unreadable model description: nested too deeply", js) from None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise CheckpointError(f'not a rawadapt model description (no "format": "{MODEL_FORMAT}")', js)
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError("format_version missing or not an integer", js)
    if version > MODEL_FORMAT_VERSION:
        raise CheckpointError(
            f"written by a newer rawadapt (format_version {version} > {MODEL_FORMAT_VERSION}, "
            f"package {meta.get('package_version')}); upgrade rawadapt",
            js,
        )
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError('"config" missing or not an object', js)
    _check_config(meta["config"], js)
    return meta


def _check_config(config: dict[str, Any], js: Path) -> None:
    """Refuse configs that would build huge or deeply nested models (limits in the module docstring)."""

    def scalar(k: str, v: Any) -> None:
        if isinstance(v, bool) or v is None or (isinstance(v, str) and len(v) <= MAX_SENSOR_NAME):
            return
        if isinstance(v, int) and abs(v) <= MAX_CONFIG_INT:
            return
        if isinstance(v, float) and math.isfinite(v) and abs(v) <= 1e12:
            return
        raise CheckpointError(
            f"invalid model config: {k}={str(v)[:40]!r} is out of range (integers up to "
            f"{MAX_CONFIG_INT}, finite numbers, short strings)",
            js,
        )

    for k, v in config.items():
        if k == "sensors":
            if not isinstance(v, list) or len(v) > MAX_SENSORS:
                raise CheckpointError(
                    f'invalid model config: "sensors" must be a list of at most {MAX_SENSORS} names', js
                )
            for name in v:
                if not isinstance(name, str) or len(name) > MAX_SENSOR_NAME:
                    raise CheckpointError(
                        f"invalid model config: sensor names must be strings of at most {MAX_SENSOR_NAME} characters",
                        js,
                    )
        elif isinstance(v, list):
            if len(v) > MAX_CONFIG_LIST:
                raise CheckpointError(f"invalid model config: {k} has {len(v)} entries (at most {MAX_CONFIG_LIST})", js)
            for item in v:
                scalar(k, item)
            if sum(abs(i) for i in v if isinstance(i, int)) > MAX_CONFIG_INT:
                raise CheckpointError(f"invalid model config: {k} sums to more than {MAX_CONFIG_INT}", js)
        else:
            scalar(k, v)


def read_safetensors_header(path: PathLike) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor names -> ``(dtype, shape)`` from a safetensors header, checked against the file size.

    Reads only the header (8-byte little-endian length, then JSON).

    Raises
    ------
    CheckpointError
        File over :data:`MAX_WEIGHTS_BYTES`, header over :data:`MAX_HEADER_BYTES`, or a header
        that is malformed or does not account for exactly the file's bytes (truncated, padded).
    """
    p = Path(path)
    bad = "corrupt or truncated safetensors file"
    try:
        size = p.stat().st_size
        if size > MAX_WEIGHTS_BYTES:
            raise CheckpointError(
                f"weights file of {size / 2**30:.1f} GiB exceeds the limit of {MAX_WEIGHTS_BYTES / 2**30:g} GiB", p
            )
        with open(p, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{bad} ({size} bytes, no header)", p)
            n = int.from_bytes(head, "little")
            if n > MAX_HEADER_BYTES or 8 + n > size:
                raise CheckpointError(f"{bad} (header of {n} bytes in a file of {size})", p)
            header = json.loads(fh.read(n).decode("utf-8"))
    except CheckpointError:
        raise
    except OSError as exc:
        raise CheckpointError(f"cannot read weights: {exc.strerror or exc}", p) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{bad} (unreadable header: {type(exc).__name__})", p) from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{bad} (header is not an object)", p)
    data_bytes = size - 8 - n
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    end_max = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
            count = math.prod(int(d) for d in shape)
            ok = (
                dtype in _ST_DTYPES
                and all(isinstance(d, int) and d >= 0 for d in shape)
                and isinstance(begin, int)
                and isinstance(end, int)
                and 0 <= begin <= end <= data_bytes
                and end - begin == count * _ST_DTYPES[dtype]
            )
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise CheckpointError(f"{bad} (bad header entry for tensor {str(name)[:60]!r})", p)
        out[name] = (dtype, shape)
        end_max = max(end_max, end)
    if end_max != data_bytes:
        raise CheckpointError(
            f"{bad} (the header accounts for {end_max} bytes of tensor data, the file holds {data_bytes})", p
        )
    return out


def _check_architecture(
    config: dict[str, Any], tensors: dict[str, tuple[str, tuple[int, ...]]], js: Path, weights: Path
) -> None:
    """Build the config on the ``meta`` device (no memory) and compare with the header's tensors."""
    try:
        with torch.device("meta"):
            skeleton = build_model(config)
    except RawAdaptError as exc:
        raise CheckpointError(exc.message, js) from None
    except Exception as exc:  # noqa: BLE001 - ValueError, RuntimeError (size overflow)... from a bad config
        raise CheckpointError(f"invalid model config: {type(exc).__name__}: {str(exc)[:200]}", js) from None
    want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    del skeleton
    have = {k: shape for k, (_dtype, shape) in tensors.items()}
    if want != have:
        missing = sorted(set(want) - set(have))
        unexpected = sorted(set(have) - set(want))
        wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else ""))
        if unexpected:
            parts.append(
                f"unexpected {', '.join(str(u)[:60] for u in unexpected[:3])}" + (" ..." if len(unexpected) > 3 else "")
            )
        if wrong:
            parts.append(
                "size mismatch for "
                + ", ".join(f"{k}: {have[k]} vs {want[k]}" for k in wrong[:3])
                + (" ..." if len(wrong) > 3 else "")
            )
        raise CheckpointError(
            f"weights do not fit the {config.get('arch')} architecture in {js.name}: {'; '.join(parts)}", weights
        )


def load_model(path: PathLike, *, device: str | torch.device = "cpu") -> tuple[Denoiser, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model`; returns ``(model in eval mode, metadata)``.

    Parameters
    ----------
    path
        A run folder, its ``model.safetensors`` or its ``model.json``, or ``zoo:NAME`` (a shipped
        model, :mod:`rawadapt.models.zoo`; stored in float16, loaded as float32).
    device
        Where to put the model.

    Raises
    ------
    ConfigError
        ``zoo:NAME`` with an unknown name (the message lists the known ones).
    CheckpointError
        Missing or unreadable files, corrupt or truncated weights, checksum mismatch, unknown
        architecture, tensor names/shapes that do not fit the architecture, files or configs over
        the limits (module docstring), NaN/Inf weights, or a newer format. The message names the
        file.
    """
    from safetensors.torch import load as st_load

    weights, js = resolve_model_files(path)
    meta = _read_meta(js)
    if not weights.is_file():
        raise CheckpointError(f"missing {weights.name} (the model weights)", weights)
    # header, sizes and architecture first: nothing is allocated from untrusted numbers
    tensors = read_safetensors_header(weights)
    _check_architecture(meta["config"], tensors, js, weights)
    try:
        blob = weights.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read weights: {exc}", weights) from None
    digest = meta.get("tensors_sha256")
    if digest and hashlib.sha256(blob).hexdigest() != digest:
        raise CheckpointError(
            f"weights do not match the checksum in {js.name} (corrupted, truncated or replaced file)", weights
        )
    try:
        state = st_load(blob)
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for bad files
        raise CheckpointError(f"corrupt or truncated safetensors file ({type(exc).__name__}: {exc})", weights) from None
    del blob
    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"weights hold NaN or Inf values (tensor {name})", weights)
    try:
        model = build_model(meta["config"])
    except RawAdaptError as exc:
        raise CheckpointError(exc.message, js) from None
    except ValueError as exc:
        raise CheckpointError(f"invalid model config: {exc}", js) from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(s.strip() for s in first[:3])
        raise CheckpointError(
            f"weights do not fit the {meta['config'].get('arch')} architecture in {js.name}: {detail}", weights
        ) from None
    if model.in_channels == 4:
        # models saved before the phase convention was recorded were fed packed planes as is
        model.raw_phase = meta.get("raw_phase")
    policy = meta.get("unknown_sensor", "error")
    try:
        model.set_unknown_sensor_policy(policy)
    except ValueError:
        raise CheckpointError(f"invalid unknown_sensor policy {policy!r}", js) from None
    return model.to(device).eval(), meta


# --------------------------------------------------------------------------------------------
# Training state (exact resume)
# --------------------------------------------------------------------------------------------


def _encode(obj: Any) -> Any:
    """Make ``obj`` loadable by ``torch.load(weights_only=True)``.

    NumPy generators (or their ``bit_generator.state`` dicts) become JSON strings; NumPy arrays
    become tensors and NumPy scalars Python numbers.
    """
    if isinstance(obj, np.random.Generator):
        obj = obj.bit_generator.state
    if isinstance(obj, dict):
        if "bit_generator" in obj and "state" in obj:  # a NumPy bit-generator state
            return {_JSON_MARK: json.dumps(obj)}
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_encode(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_JSON_MARK}:
            return json.loads(obj[_JSON_MARK])
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_decode(v) for v in obj)
    return obj


def save_training_state(path: PathLike, state: dict[str, Any]) -> None:
    """Save a resumable training state atomically (``torch.save`` of plain data only).

    Parameters
    ----------
    path
        Destination file (e.g. ``run/state.pt``).
    state
        Typically ``{"model": model.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(), "step": n, "torch_rng": torch.get_rng_state(),
        "numpy_rng": {"data": generator}, ...}``. Values may be tensors, numbers, strings, None,
        lists/tuples/dicts of those, NumPy arrays, and NumPy generators or their
        ``bit_generator.state`` dicts (restore those with :func:`restore_numpy_generator`).

    Raises
    ------
    CheckpointError
        The state holds an object that the safe loader would refuse (checked before anything
        is written).
    """
    payload = {
        "format": STATE_FORMAT,
        "format_version": STATE_FORMAT_VERSION,
        "package_version": rawadapt.__version__,
        "state": _encode(dict(state)),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    buf.seek(0)
    try:  # refuse to write a file that load_training_state could not read
        torch.load(buf, weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"training state holds objects the safe loader refuses: {exc}", path) from None
    write_bytes(path, buf.getvalue())


def load_training_state(path: PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a state written by :func:`save_training_state` with ``torch.load(weights_only=True)``.

    Returns
    -------
    The ``state`` dict as saved (NumPy generator states come back as ``bit_generator.state``
    dicts, tensors on ``map_location``).

    Raises
    ------
    CheckpointError
        Missing, corrupt or foreign file, or one holding objects the safe loader refuses.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError("missing training state file", p)
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError, zip errors...
        raise CheckpointError(
            f"unreadable training state ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no detail'})",
            p,
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise CheckpointError("not a rawadapt training state", p)
    if int(payload.get("format_version", 0)) > STATE_FORMAT_VERSION:
        raise CheckpointError(f"training state written by a newer rawadapt ({payload.get('package_version')})", p)
    return _decode(payload["state"])


def restore_numpy_generator(state: dict[str, Any]) -> np.random.Generator:
    """A NumPy ``Generator`` in exactly the saved ``bit_generator.state``."""
    bitgen_cls = getattr(np.random, str(state["bit_generator"]))
    bitgen = bitgen_cls()
    bitgen.state = state
    return np.random.Generator(bitgen)
