"""Physics-based noise, camera profiles, unprocessing/camera pipeline, calibration, synth.

Submodules (imported lazily; ``import rawadapt.noise`` loads nothing heavy):

* :mod:`~rawadapt.noise.profiles` - camera profiles as YAML data (``load_profile``, ``list_profiles``)
* :mod:`~rawadapt.noise.model` - the noise model (``sample_noise_params``, ``add_noise``, ``SensorNoise``)
* :mod:`~rawadapt.noise.pipeline` - ``unprocess`` and ``render_srgb`` (demosaic, WB, CCM, gamma)
* :mod:`~rawadapt.noise.scenes` - bundled scikit-image scenes and dead leaves
* :mod:`~rawadapt.noise.calibrate` - Poisson-Gaussian fits from pairs, flat regions, dark+flat frames
* :mod:`~rawadapt.noise.harmful` - ADL's harmful data (``make_harmful``)
* :mod:`~rawadapt.noise.synth_dataset` - the built-in benchmark (``build_synth``, ``open_synth``)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_profile": "profiles",
    "list_profiles": "profiles",
    "Profile": "profiles",
    "NoiseParams": "model",
    "sample_noise_params": "model",
    "add_noise": "model",
    "SensorNoise": "model",
    "unprocess": "pipeline",
    "render_srgb": "pipeline",
    "dead_leaves": "scenes",
    "sample_scene": "scenes",
    "calibrate_pairs": "calibrate",
    "calibrate_flat_regions": "calibrate",
    "calibrate_dark_flat": "calibrate",
    "make_harmful": "harmful",
    "build_synth": "synth_dataset",
    "open_synth": "synth_dataset",
    "open_synth_srgb": "synth_dataset",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"rawadapt.noise.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'rawadapt.noise' has no attribute {name!r}")
