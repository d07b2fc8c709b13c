"""Fine-tuning baselines of LAN's Table 1 (LAN paper): per image, optimise the network's
weights with the self-supervised loss, then put the pretrained weights back.

Scopes: ``full`` (all parameters), ``first-layer`` (``model.first_layer()``), ``last-layer``
(``model.last_layer()``). The meta-learned initialisation baseline is ``full`` fine-tuning
started from a meta-trained checkpoint (:mod:`rawadapt.adapt.meta`).

Settings from the authors' code: Adam, lr 5e-6, batch of one image, the network in eval mode
(``get_model()`` calls ``model.eval()``; nothing calls ``train()``), so BatchNorm keeps using its
running statistics — statistics of a single image would be a different network. The paper does
not give separate learning rates for the first/last-layer variants; they use 5e-6 as well here.

Restoring: a :class:`~rawadapt.adapt.common.WeightSnapshot` of the trainable tensors is
allocated once per adapter and copied back in place after every image (also on errors).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from rawadapt.adapt.common import (
    AdaptResult,
    RequiresGradState,
    WeightSnapshot,
    freeze_all_but,
    model_fn,
    run_adaptation,
    to_batch,
)
from rawadapt.adapt.losses import SelfSupervisedLoss, make_loss
from rawadapt.errors import ConfigError, ShapeError
from rawadapt.models.base import Denoiser

#: authors' fine-tuning learning rate
FINETUNE_LR = 5e-6
SCOPES = ("full", "first-layer", "last-layer")
#: the parameter scopes a :class:`FineTuneAdapter` trains
Scope = Literal["full", "first-layer", "last-layer"]


def trainable_parameters(model: Denoiser, scope: str) -> list[torch.nn.Parameter]:
    """The parameters a scope trains.

    Raises
    ------
    ConfigError
        Unknown scope, or a model without ``first_layer()``/``last_layer()``.
    """
    if scope == "full":
        return list(model.parameters())
    if scope in ("first-layer", "last-layer"):
        getter = getattr(model, scope.replace("-", "_"), None)
        if getter is None:
            raise ConfigError(f"the {model.arch} model has no {scope.replace('-', '_')}() handle")
        return list(getter().parameters())
    raise ConfigError(f"unknown fine-tuning scope {scope!r}; choose one of {', '.join(SCOPES)}")


class FineTuneAdapter:
    """Per-image self-supervised fine-tuning (all, first-layer or last-layer parameters).

    Parameters
    ----------
    model
        Pretrained (or meta-initialised) denoiser. Its weights are restored after every image.
    scope
        ``"full"``, ``"first-layer"`` or ``"last-layer"``.
    loss, iters, lr, track_ssim, loss_options
        As for :class:`~rawadapt.adapt.lan.LANAdapter` (lr default 5e-6).
    method
        Name recorded in results (``"meta"`` for the meta-initialised baseline).
    """

    def __init__(
        self,
        model: Denoiser,
        *,
        scope: Scope = "full",
        loss: str | SelfSupervisedLoss = "zsn2n",
        iters: int = 20,
        lr: float = FINETUNE_LR,
        track_ssim: bool = True,
        loss_options: dict[str, Any] | None = None,
        method: str | None = None,
    ) -> None:
        if int(iters) < 0:
            raise ConfigError(f"iterations must be >= 0, got {iters}")
        if not float(lr) > 0:
            raise ConfigError(f"learning rate must be positive, got {lr}")
        self.model = model
        self.scope = scope
        self.params = trainable_parameters(model, scope)
        self.method = method or scope
        self.loss = make_loss(loss, **(loss_options or {})) if isinstance(loss, str) else loss
        self.iters, self.lr, self.track_ssim = int(iters), float(lr), bool(track_ssim)
        # preallocated once; restored in place after every image
        self.snapshot = WeightSnapshot(self.params)

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
    ) -> AdaptResult:
        """Fine-tune on ONE image, denoise it, restore the weights.

        ``noise`` is the image's noise line ``(a, b)`` for noise-conditioned models (else ignored).

        Raises
        ------
        ShapeError
            Wrong channels or an image below the loss's minimum size.
        """
        y = to_batch(noisy, self.model)
        c = None if clean is None else to_batch(clean, self.model, what="clean image")
        if c is not None and c.shape != y.shape:
            raise ShapeError(f"noisy {tuple(y.shape[1:])} and clean {tuple(c.shape[1:])} sizes differ")
        state = RequiresGradState(self.model)
        freeze_all_but(self.model, self.params)
        try:
            return run_adaptation(
                f=model_fn(self.model, sensor=sensor, iso=iso, cfa=cfa, noise=noise),
                make_input=lambda: y,
                params=self.params,
                lr=self.lr,
                iters=self.iters,
                loss=self.loss,
                clean=c,
                noisy=y,
                method=self.method,
                seed=seed,
                track_ssim=self.track_ssim,
                callback=callback,
            )
        finally:
            self.snapshot.restore()
            state.restore()
