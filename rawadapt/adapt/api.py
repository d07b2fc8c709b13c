"""One interface for every test-time adaptation method.

>>> adapter = make_adapter(model, "lan", loss="zsn2n", iters=20)          # doctest: +SKIP
>>> result = adapter.adapt(noisy, clean=clean, seed=0)                     # doctest: +SKIP
>>> result = adapt_image(model, noisy, method="full", loss="nbr2nbr", iters=10)  # doctest: +SKIP

Methods (LAN paper Table 1):

========== ==================================================== =============
method     what is optimised per image                          default lr
========== ==================================================== =============
lan        an input offset phi, network frozen: f(y + tanh phi) 5e-4
lan-scaled LAN with the offset in units of the image's noise    5e-4
           std: f(y + s tanh phi), s = sigma / 0.02 (beyond
           the paper; :mod:`rawadapt.adapt.lan`)
full       all network parameters                               5e-6
first-layer ``model.first_layer()`` parameters                  5e-6
last-layer ``model.last_layer()`` parameters                    5e-6
meta       all parameters, from a meta-initialised model        from the
           (:mod:`rawadapt.adapt.meta`)                         checkpoint, else 5e-6
========== ==================================================== =============

Every adapter leaves the model unchanged after each image (LAN never touches it; the
fine-tuning adapters copy a preallocated snapshot back), so one adapter processes any number
of images independently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, cast

import numpy as np
import torch

from rawadapt.adapt.common import AdaptResult
from rawadapt.adapt.finetune import FINETUNE_LR, FineTuneAdapter, Scope
from rawadapt.adapt.lan import LAN_LR, OFFSET_SCALES, Bound, LANAdapter, OffsetScale
from rawadapt.adapt.losses import LOSSES, SelfSupervisedLoss
from rawadapt.errors import ConfigError
from rawadapt.models.base import Denoiser
from rawadapt.utils.registry import Registry

DEFAULT_LR: dict[str, float] = {
    "lan": LAN_LR,
    "lan-scaled": LAN_LR,
    "full": FINETUNE_LR,
    "first-layer": FINETUNE_LR,
    "last-layer": FINETUNE_LR,
    "meta": FINETUNE_LR,
}

__all__ = [
    "AdaptResult",
    "Adapter",
    "ADAPT_METHODS",
    "LOSSES",
    "DEFAULT_LR",
    "make_adapter",
    "adapt_image",
    "adapt_images",
]


class Adapter(Protocol):
    """What :func:`make_adapter` returns."""

    method: str

    def adapt(
        self,
        noisy: np.ndarray | torch.Tensor,
        *,
        clean: np.ndarray | torch.Tensor | None = None,
        sensor: str | None = None,
        iso: float | None = None,
        cfa: str | None = None,
        seed: int = 0,
        callback: Callable[[int, float], None] | None = None,
        noise: tuple[float, float] | None = None,
    ) -> AdaptResult: ...


#: test-time method name -> ``factory(model, *, method, bound, loss=, iters=, lr=, track_ssim=, loss_options=)``
#: (and ``offset_scale=`` when :func:`make_adapter` is given one)
ADAPT_METHODS: Registry[Callable[..., Adapter]] = Registry("adaptation method")


@ADAPT_METHODS.register("lan")
def _lan(model: Denoiser, *, method: str, bound: str, offset_scale: str = "none", **common: Any) -> Adapter:
    # bound and offset_scale validated by LANAdapter
    return LANAdapter(model, bound=cast(Bound, bound), offset_scale=cast(OffsetScale, offset_scale), **common)


@ADAPT_METHODS.register("lan-scaled")
def _lan_scaled(model: Denoiser, *, method: str, bound: str, offset_scale: str = "noise", **common: Any) -> Adapter:
    if offset_scale != "noise":
        raise ConfigError(f"lan-scaled is LAN with offset_scale='noise'; use method 'lan' for {offset_scale!r}")
    return LANAdapter(model, bound=cast(Bound, bound), offset_scale="noise", **common)


def _finetune(scope: Scope) -> Callable[..., Adapter]:
    def factory(model: Denoiser, *, method: str, bound: str, offset_scale: str = "none", **common: Any) -> Adapter:
        if offset_scale not in OFFSET_SCALES:
            raise ConfigError(f"offset scale must be one of {OFFSET_SCALES}, got {offset_scale!r}")
        return FineTuneAdapter(model, scope=scope, method=method, **common)  # bound, offset_scale: LAN only

    return factory


#: fine-tuning method name -> parameter scope (meta = full fine-tuning from a meta-initialised model)
_FINETUNE_SCOPES: tuple[tuple[str, Scope], ...] = (
    ("full", "full"),
    ("first-layer", "first-layer"),
    ("last-layer", "last-layer"),
    ("meta", "full"),
)
for _method, _scope in _FINETUNE_SCOPES:
    ADAPT_METHODS.register(_method, _finetune(_scope))


def make_adapter(
    model: Denoiser,
    method: str = "lan",
    *,
    loss: str | SelfSupervisedLoss = "zsn2n",
    iters: int = 20,
    lr: float | None = None,
    bound: str = "tanh",
    track_ssim: bool = True,
    loss_options: dict[str, Any] | None = None,
    meta_info: dict[str, Any] | None = None,
    offset_scale: str | None = None,
) -> Adapter:
    """Build the adapter of one method.

    Parameters
    ----------
    model
        The pretrained denoiser (for ``meta``: the META-INITIALISED one, see
        :func:`rawadapt.adapt.meta.meta_pretrain`).
    method
        One of :data:`ADAPT_METHODS`.
    loss
        ``"zsn2n"``, ``"nbr2nbr"`` or a loss object.
    iters
        Adaptation iterations.
    lr
        Adam learning rate (None = :data:`DEFAULT_LR`, or for ``meta`` the checkpoint's inner lr).
    bound
        LAN only: ``"tanh"`` or ``"none"``.
    track_ssim
        Per-iteration SSIM when a clean image is given.
    loss_options
        Extra options of the loss (e.g. ``{"gamma_max": 2.0, "clip": False}`` for Nbr2Nbr).
    meta_info
        The ``meta_init`` entry of the meta model's ``model.json`` (its ``inner_lr`` becomes the
        default lr).
    offset_scale
        LAN only: ``"none"`` (the paper's absolute offset) or ``"noise"`` (offset scaled to the
        image's noise std; method ``lan-scaled`` is ``lan`` with ``"noise"``); None = the
        method's own (``lan``: ``"none"``).

    Raises
    ------
    ConfigError
        Unknown method, loss or bad settings.
    """
    factory = ADAPT_METHODS.get(method)
    if lr is None:
        lr = DEFAULT_LR.get(method, FINETUNE_LR)
        if method == "meta" and meta_info and meta_info.get("inner_lr"):
            lr = float(meta_info["inner_lr"])
    extra: dict[str, Any] = {} if offset_scale is None else {"offset_scale": offset_scale}
    return factory(
        model,
        method=method,
        loss=loss,
        iters=iters,
        lr=lr,
        bound=bound,
        track_ssim=track_ssim,
        loss_options=loss_options,
        **extra,
    )


def adapt_image(
    model: Denoiser,
    noisy: np.ndarray | torch.Tensor,
    *,
    method: str = "lan",
    loss: str | SelfSupervisedLoss = "zsn2n",
    iters: int = 20,
    lr: float | None = None,
    clean: np.ndarray | torch.Tensor | None = None,
    sensor: str | None = None,
    iso: float | None = None,
    cfa: str | None = None,
    seed: int = 0,
    bound: str = "tanh",
    loss_options: dict[str, Any] | None = None,
    offset_scale: str | None = None,
    noise: tuple[float, float] | None = None,
) -> AdaptResult:
    """Adapt to ONE noisy image ``(C, H, W)`` (3 sRGB planes or 4 packed RAW planes) and denoise it.

    See :func:`make_adapter` for the parameters; ``clean`` adds per-iteration PSNR/SSIM; ``cfa``
    is the Bayer phase of packed RAW input (see :func:`rawadapt.adapt.common.model_fn`);
    ``noise`` the image's noise line ``(a, b)`` for noise-conditioned models; the model is left
    exactly as it was.
    """
    adapter = make_adapter(
        model, method, loss=loss, iters=iters, lr=lr, bound=bound, loss_options=loss_options, offset_scale=offset_scale
    )
    return adapter.adapt(noisy, clean=clean, sensor=sensor, iso=iso, cfa=cfa, seed=seed, noise=noise)


def adapt_images(
    model: Denoiser,
    images: Iterable[np.ndarray | torch.Tensor],
    *,
    method: str = "lan",
    loss: str = "zsn2n",
    iters: int = 20,
    lr: float | None = None,
    cleans: Iterable[np.ndarray | torch.Tensor | None] | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> list[AdaptResult]:
    """Adapt to each image independently (a fresh offset / restored weights per image)."""
    adapter = make_adapter(model, method, loss=loss, iters=iters, lr=lr, **kwargs)
    imgs = list(images)
    cl = list(cleans) if cleans is not None else [None] * len(imgs)
    if len(cl) != len(imgs):
        raise ConfigError(f"{len(imgs)} images but {len(cl)} clean references")
    return [adapter.adapt(y, clean=c, seed=seed) for y, c in zip(imgs, cl)]
