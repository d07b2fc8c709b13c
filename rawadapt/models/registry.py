"""Model registry: a plain dict from architecture name to a factory.

``build_model(config)`` rebuilds a model from the dict its ``config()`` returned (what
``model.json`` stores). Registering a new backbone = one line in ``MODELS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rawadapt.errors import ConfigError
from rawadapt.models.base import Denoiser


def _unet(**kw: Any) -> Denoiser:
    from rawadapt.models.unet import UNet

    return UNet(**kw)


def _dncnn(**kw: Any) -> Denoiser:
    from rawadapt.models.dncnn import DnCNN

    return DnCNN(**kw)


def _restormer(**kw: Any) -> Denoiser:
    from rawadapt.models.restormer import Restormer

    return Restormer(**kw)


def _pmrid(**kw: Any) -> Denoiser:
    from rawadapt.models.pmrid import PMRID

    return PMRID(**kw)


def _ain_unet(**kw: Any) -> Denoiser:
    from rawadapt.baselines.ain import _build_ain_unet

    return _build_ain_unet(**kw)


def _led_unet(**kw: Any) -> Denoiser:
    from rawadapt.baselines.led_net import _build_led_unet

    return _build_led_unet(**kw)


MODELS: dict[str, Callable[..., Denoiser]] = {
    "unet": _unet,
    "dncnn": _dncnn,
    "restormer": _restormer,
    "pmrid": _pmrid,
    # baselines' networks (transfer learning with AIN, LED), so their checkpoints reload anywhere
    "ain-unet": _ain_unet,
    "led-unet": _led_unet,
}


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
