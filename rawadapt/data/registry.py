"""Find the right adapter for a dataset name or folder: ``open_dataset("synth")``,
``open_dataset("polyu:../shared/data/polyu")``, ``open_dataset("/data/SIDD_Medium_Raw")``.

Specs
-----
* ``NAME`` for a built-in named dataset (``synth``, ``synth-srgb``): resolved in the cache folder
  (``$RAWADAPT_CACHE``), built on first use.
* ``ADAPTER:PATH`` to force an adapter (``polyu:``, ``sidd:``, ``sid:``, ``eld:``, ``pairs:``,
  ``manifest:``).
* ``PATH`` alone: the first adapter whose ``detect(path)`` accepts it (manifest files and
  folders holding ``manifest.csv``/``manifest.yaml`` first, then SIDD, SID, ELD, PolyU, pairs).
* ``SPEC+SPEC[+...]``: several datasets of the same space concatenated
  (:func:`rawadapt.data.combine.concat_datasets`), e.g. ``polyu:../shared/data/polyu+synth-srgb``
  (real PolyU cameras plus the simulated sensors as extra sources). A spec that names an
  existing path is never split, so folders with ``+`` in their names still open.

Adapters and named datasets live in :class:`rawadapt.utils.registry.Registry` instances,
registered by module path so nothing heavy is imported until used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rawadapt.data.base import PairDataset
from rawadapt.data.combine import concat_datasets
from rawadapt.errors import DatasetError
from rawadapt.utils.registry import Registry


@dataclass(frozen=True)
class AdapterInfo:
    """How to open one kind of dataset.

    ``module`` must define ``open(root: Path, **options) -> PairDataset`` and
    ``detect(root: Path) -> bool``; ``description`` is shown by ``rawadapt data list``.
    """

    name: str
    module: str
    description: str
    space: str

    def load(self) -> Any:
        return importlib.import_module(self.module)


#: adapter name -> info, in auto-detection order
ADAPTERS: Registry[AdapterInfo] = Registry("dataset adapter")

#: named built-in datasets -> function returning a PairDataset (built on first use). The
#: simulator that builds them lives above this layer, so they are registered by name only.
NAMED: Registry[Callable[..., PairDataset]] = Registry("named dataset")
NAMED.register_lazy("synth", "rawadapt.noise.synth_dataset:open_synth")
NAMED.register_lazy("synth-wide", "rawadapt.noise.synth_dataset:open_synth_wide")
NAMED.register_lazy("synth-srgb", "rawadapt.noise.synth_dataset:open_synth_srgb")


def register_adapter(info: AdapterInfo) -> None:
    """Add (or replace) an adapter."""
    ADAPTERS.register(info.name, info, replace=True)


for _info in (
    AdapterInfo(
        "manifest",
        "rawadapt.data.adapters.manifest",
        "CSV/YAML manifest: noisy, clean, sensor, iso[, ratio, scene]",
        "raw|srgb",
    ),
    AdapterInfo(
        "sidd", "rawadapt.data.adapters.sidd", "SIDD raw (SSSS_NNN_CC_IIIII_... folders, HDF5 .MAT mosaics)", "raw"
    ),
    AdapterInfo("sid", "rawadapt.data.adapters.sid", "SID Sony (short/long .ARW, list files, ratio from names)", "raw"),
    AdapterInfo(
        "eld", "rawadapt.data.adapters.eld", "ELD (scene folders per camera, IMG_0001..0016, ratio from EXIF)", "raw"
    ),
    AdapterInfo("polyu", "rawadapt.data.adapters.polyu", "PolyU real-noise sRGB pairs (*_real / *_mean)", "srgb"),
    AdapterInfo(
        "pairs", "rawadapt.data.adapters.pairs", "generic folder: *_real/*_mean or noisy/ + gt/ (clean/)", "raw|srgb"
    ),
):
    register_adapter(_info)


def open_dataset(spec: str | Path, **options: Any) -> PairDataset:
    """Open a dataset from a name, ``adapter:path`` or a path (auto-detected).

    Raises
    ------
    DatasetError
        Unknown adapter, missing folder, or no adapter recognises the folder.
    """
    s = str(spec)
    if s in NAMED:
        return NAMED.get(s)(**options)
    if is_combined_spec(s):
        return _open_combined(s, **options)
    if ":" in s and s.split(":", 1)[0] in ADAPTERS:
        name, path = s.split(":", 1)
        root = Path(path).expanduser()
        if not root.exists():
            raise DatasetError("dataset path does not exist", root)
        return ADAPTERS[name].load().open(root, **options)
    root = Path(s).expanduser()
    if not root.exists():
        known = ", ".join(list(NAMED) + [f"{a}:PATH" for a in ADAPTERS])
        raise DatasetError(f"no such dataset or path (known names/forms: {known})", root)
    for info in ADAPTERS.values():
        mod = info.load()
        if mod.detect(root):
            return mod.open(root, **options)
    raise DatasetError(
        f"no dataset adapter recognises this path; use ADAPTER:PATH with one of {', '.join(ADAPTERS)}", root
    )


def is_combined_spec(spec: str) -> bool:
    """``A+B`` — unless the whole spec names an existing path (``ADAPTER:`` prefix or not)."""
    if "+" not in spec:
        return False
    path = spec.split(":", 1)[1] if ":" in spec and spec.split(":", 1)[0] in ADAPTERS else spec
    return not Path(path).expanduser().exists()


def _open_combined(spec: str, **options: Any) -> PairDataset:
    """``A+B+...``: open every part and concatenate them (same space required)."""

    parts = [p.strip() for p in spec.split("+")]
    if any(not p for p in parts):
        raise DatasetError(f"empty part in combined dataset spec {spec!r} (expected A+B)")
    return concat_datasets([open_dataset(p, **options) for p in parts], name=spec)


def adapter_for(name: str) -> Callable[..., PairDataset]:
    """The ``open`` function of a named adapter."""
    if name not in ADAPTERS:
        raise DatasetError(f"unknown adapter {name!r}; known: {', '.join(ADAPTERS)}")
    return ADAPTERS[name].load().open
