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

Adapters are registered by module path so nothing heavy is imported until used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rawadapt.data.base import PairDataset
from rawadapt.errors import DatasetError


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
ADAPTERS: dict[str, AdapterInfo] = {}

#: named built-in datasets -> "module:function" returning a PairDataset (built on first use)
NAMED: dict[str, str] = {
    "synth": "rawadapt.noise.synth_dataset:open_synth",
    "synth-srgb": "rawadapt.noise.synth_dataset:open_synth_srgb",
}


def register_adapter(info: AdapterInfo) -> None:
    """Add (or replace) an adapter."""
    ADAPTERS[info.name] = info


for _info in (
    AdapterInfo("manifest", "rawadapt.data.adapters.manifest", "CSV/YAML manifest: noisy, clean, sensor, iso[, ratio, scene]", "raw|srgb"),
    AdapterInfo("sidd", "rawadapt.data.adapters.sidd", "SIDD raw (SSSS_NNN_CC_IIIII_... folders, HDF5 .MAT mosaics)", "raw"),
    AdapterInfo("sid", "rawadapt.data.adapters.sid", "SID Sony (short/long .ARW, list files, ratio from names)", "raw"),
    AdapterInfo("eld", "rawadapt.data.adapters.eld", "ELD (scene folders per camera, IMG_0001..0016, ratio from EXIF)", "raw"),
    AdapterInfo("polyu", "rawadapt.data.adapters.polyu", "PolyU real-noise sRGB pairs (*_real / *_mean)", "srgb"),
    AdapterInfo("pairs", "rawadapt.data.adapters.pairs", "generic folder: *_real/*_mean or noisy/ + gt/ (clean/)", "raw|srgb"),
):
    register_adapter(_info)


def _call(ref: str, **options: Any) -> PairDataset:
    mod, fn = ref.split(":")
    return getattr(importlib.import_module(mod), fn)(**options)


def open_dataset(spec: str | Path, **options: Any) -> PairDataset:
    """Open a dataset from a name, ``adapter:path`` or a path (auto-detected).

    Raises
    ------
    DatasetError
        Unknown adapter, missing folder, or no adapter recognises the folder.
    """
    s = str(spec)
    if s in NAMED:
        return _call(NAMED[s], **options)
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
    raise DatasetError("no dataset adapter recognises this path; use ADAPTER:PATH "
                       f"with one of {', '.join(ADAPTERS)}", root)


def adapter_for(name: str) -> Callable[..., PairDataset]:
    """The ``open`` function of a named adapter."""
    if name not in ADAPTERS:
        raise DatasetError(f"unknown adapter {name!r}; known: {', '.join(ADAPTERS)}")
    return ADAPTERS[name].load().open
