"""Model registry: architecture name -> model class (:class:`rawadapt.utils.registry.Registry`).

``build_model(config)`` rebuilds a model from the dict its ``config()`` returned (what
``model.json`` stores). Registering a new backbone = one ``MODELS.register_lazy`` line here (or
``MODELS.register(name, cls)`` next to the class).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rawadapt.errors import ConfigError
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


def build_model(config: dict[str, Any]) -> Denoiser:
    """Build a model from ``{"arch": name, **kwargs}``.

    Raises
    ------
    ConfigError
        Unknown architecture or invalid arguments.
    """
    cfg = dict(config)
    arch = cfg.pop("arch", None)
    if arch not in MODELS:
        raise ConfigError(f"unknown model architecture {arch!r}; known: {', '.join(MODELS)}")
    try:
        return MODELS[arch](**cfg)
    except TypeError as exc:
        raise ConfigError(f"invalid arguments for model {arch!r}: {exc}") from None
