"""LAN: Learning to Adapt Noise (Kim, Kim & Baik, CVPR 2024; LAN paper, the LAN paper).

Per image, the pretrained denoiser ``f`` is frozen and a learnable offset ``phi`` with the
input's shape, initialised to zero, is added to the noisy image; ``phi`` is optimised with a
self-supervised loss and the result is ``f(y + tanh(phi))``.

What the authors' code does (``chjinny/LAN`` ``main.py`` and ``adapt/*.py``, read through its
public forks ``zhongmocaipan/glan`` at commit 05530ab and
``Thebestruiwen/LAN-Learning-to-Adapt-Noise-for-Image-Denoising-``):

* ``class Lan``: ``phi = Parameter(zeros(lq.shape))``, ``forward(x) = x + tanh(phi)``;
  a NEW ``Lan`` per image (and a freshly loaded model per image).
* ``model.eval()`` once at load time; ``requires_grad = False`` on every network parameter for
  LAN; ``Adam(lan.parameters(), lr=5e-4)`` (``5e-6`` over all parameters for fine-tuning).
* ``inner_loop = 20``; at each iteration ``adapted_lq = lan(lq)``, the logged prediction is
  ``model(adapted_lq).clip(0, 1)`` computed BEFORE the update, then
  ``loss = loss_func(adapted_lq, model, i, inner_loop)`` — i.e. the self-supervised loss is
  applied to the ADAPTED noisy image with the frozen network, and its gradient reaches only
  ``phi`` (through ``adapted_lq``) — then ``loss.backward(); optimizer.step()``. A final
  prediction after the loop makes ``inner_loop + 1`` logged values. :mod:`rawadapt.adapt.common`
  follows the same convention (entry ``k`` = after ``k`` updates).
* The adapted input is not clipped; the offset is bounded to (-1, 1) by the tanh.

``bound="none"`` gives an unbounded offset ``y + phi`` (an ablation; same optimiser).

Noise-scaled offset (``offset_scale="noise"``, method ``lan-scaled``; beyond the LAN paper)
-----------------------------------------------------------------------------------------
Adam moves ``phi`` by about ``lr`` per iteration whatever the gradient's size, so 20 iterations
at 5e-4 move each pixel by up to ~0.01 of the data range, in absolute units: a fraction of the
noise on PolyU-like sRGB (std ~0.013), but more than the whole noise of a dark or nearly clean
RAW image (std ~0.001-0.005), where it can only add error. With ``offset_scale="noise"`` the
offset is expressed relative to the image's estimated noise std ``sigma``
(:func:`rawadapt.models.noise_std.estimate_noise_std`, or a given ``noise_std``)::

    input = y + s * tanh(phi)     (bound "tanh")      or   y + s * phi   (bound "none")
    s     = max(sigma, SIGMA_FLOOR) / noise_ref

so both the step (~``lr * s`` per iteration) and the tanh range (``s``) follow the noise:
at ``sigma == noise_ref`` this is the paper's offset exactly; 20 steps at the default lr reach
at most ``20 * lr / noise_ref`` = 0.5 ``sigma`` (``NOISE_REF = 0.02``). ``phi = 0`` at the
start, so iteration 0 is still the frozen network's output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from rawadapt.adapt.common import (
    AdaptResult,
    RequiresGradState,
    freeze_all_but,
    model_fn,
    run_adaptation,
    to_batch,
)
from rawadapt.adapt.losses import SelfSupervisedLoss, make_loss
from rawadapt.errors import ConfigError, ShapeError
from rawadapt.models.base import Denoiser
from rawadapt.models.noise_std import estimate_noise_std

#: LAN's defaults (authors' code)
LAN_LR = 5e-4
LAN_ITERS = 20
BOUNDS = ("tanh", "none")
#: how the LAN offset is bounded (see :meth:`LANAdapter.offset_fn`)
Bound = Literal["tanh", "none"]
OFFSET_SCALES = ("none", "noise")
#: the offset's unit: absolute (``"none"``, the paper) or the image's noise std (``"noise"``)
OffsetScale = Literal["none", "noise"]
#: noise std at which the noise-scaled offset equals the paper's (``s = sigma / NOISE_REF``)
NOISE_REF = 0.02
#: smallest noise std used for the scale (a clean or constant image still gets a tiny step)
SIGMA_FLOOR = 1e-4


class LANAdapter:
    """Test-time noise adaptation of a frozen denoiser, one fresh offset per image.

    Parameters
    ----------
    model
        Pretrained denoiser; never modified (its weights stay bit-identical).
    loss
        ``"zsn2n"``, ``"nbr2nbr"`` or a loss object (:mod:`rawadapt.adapt.losses`).
    iters
        Adaptation iterations (the paper reports 5, 10, 20; default 20).
    lr
        Adam learning rate for the offset (default 5e-4).
    bound
        ``"tanh"`` (authors: input = y + tanh(phi)) or ``"none"`` (y + phi).
    track_ssim
        Compute SSIM at every iteration when a clean image is given.
    loss_options
        Options for :func:`~rawadapt.adapt.losses.make_loss` (e.g. ``{"gamma_max": 0.1}``).
    offset_scale
        ``"none"`` (the paper: offset in absolute units) or ``"noise"`` (offset in units of
        ``sigma / noise_ref``, see the module docstring; the method is then ``lan-scaled``).
    noise_ref
        Reference noise std of ``offset_scale="noise"`` (default :data:`NOISE_REF`).
    noise_std
        The images' noise std for ``offset_scale="noise"`` (e.g. from a sensor profile), the
        same for every image; None (default) = estimated from each noisy image.

    Examples
    --------
    >>> from rawadapt.models import build_model
    >>> net = build_model({"arch": "dncnn", "in_channels": 3, "depth": 3, "width": 8})
    >>> res = LANAdapter(net, iters=2).adapt(np.random.rand(3, 16, 16).astype("float32"))
    >>> res.denoised.shape, len(res.loss)
    ((3, 16, 16), 2)
    """

    method = "lan"

    def __init__(
        self,
        model: Denoiser,
        *,
        loss: str | SelfSupervisedLoss = "zsn2n",
        iters: int = LAN_ITERS,
        lr: float = LAN_LR,
        bound: Bound = "tanh",
        track_ssim: bool = True,
        loss_options: dict[str, Any] | None = None,
        offset_scale: OffsetScale = "none",
        noise_ref: float = NOISE_REF,
        noise_std: float | None = None,
    ) -> None:
        if bound not in BOUNDS:
            raise ConfigError(f"LAN offset bound must be one of {BOUNDS}, got {bound!r}")
        if offset_scale not in OFFSET_SCALES:
            raise ConfigError(f"LAN offset scale must be one of {OFFSET_SCALES}, got {offset_scale!r}")
        if not float(noise_ref) > 0:
            raise ConfigError(f"noise_ref must be positive, got {noise_ref}")
        if noise_std is not None and not float(noise_std) >= 0:
            raise ConfigError(f"noise_std must be >= 0, got {noise_std}")
        if int(iters) < 0:
            raise ConfigError(f"iterations must be >= 0, got {iters}")
        if not float(lr) > 0:
            raise ConfigError(f"learning rate must be positive, got {lr}")
        self.model = model
        self.loss = make_loss(loss, **(loss_options or {})) if isinstance(loss, str) else loss
        self.iters, self.lr, self.bound, self.track_ssim = int(iters), float(lr), bound, bool(track_ssim)
        self.offset_scale: OffsetScale = offset_scale
        self.noise_ref = float(noise_ref)
        self.noise_std = None if noise_std is None else float(noise_std)
        if offset_scale == "noise":
            self.method = "lan-scaled"

    def offset_fn(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``phi -> tanh(phi)`` or the identity (``bound="none"``)."""
        return torch.tanh if self.bound == "tanh" else (lambda p: p)

    def offset_gain(self, y: torch.Tensor) -> tuple[float, float | None]:
        """``(s, sigma)``: the factor on the bounded offset for image ``y`` and the noise std it
        came from (``(1.0, None)`` for ``offset_scale="none"``)."""
        if self.offset_scale == "none":
            return 1.0, None
        sigma = self.noise_std if self.noise_std is not None else estimate_noise_std(y)
        return max(sigma, SIGMA_FLOOR) / self.noise_ref, sigma

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
        """Adapt a fresh offset to ONE image ``(C, H, W)`` and denoise it.

        ``sensor``, ``iso``, ``cfa`` and ``noise`` (the image's noise line ``(a, b)``, used by
        noise-conditioned models only) are what the frozen network is told about the image.

        Returns
        -------
        :class:`~rawadapt.adapt.common.AdaptResult` with ``adapted_input = y + tanh(phi)``
        (``y + s tanh(phi)`` noise-scaled; ``details`` then holds ``noise_std`` and
        ``offset_gain`` ``s``).

        Raises
        ------
        ShapeError
            Wrong channels or an image below the loss's minimum size.
        """
        y = to_batch(noisy, self.model)
        c = None if clean is None else to_batch(clean, self.model, what="clean image")
        if c is not None and c.shape != y.shape:
            raise ShapeError(f"noisy {tuple(y.shape[1:])} and clean {tuple(c.shape[1:])} sizes differ")
        gain, sigma = self.offset_gain(y)  # before touching the model: may raise ShapeError (< 3x3)
        state = RequiresGradState(self.model)
        freeze_all_but(self.model, [])  # frozen network, eval mode
        phi = torch.zeros_like(y, requires_grad=True)
        bound = self.offset_fn()
        scaled = self.offset_scale != "none"

        def make_input() -> torch.Tensor:
            return y + gain * bound(phi) if scaled else y + bound(phi)  # unscaled: the paper's, bit for bit

        try:
            res = run_adaptation(
                f=model_fn(self.model, sensor=sensor, iso=iso, cfa=cfa, noise=noise),
                make_input=make_input,
                params=[phi],
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
            state.restore()
        if self.offset_scale != "none":
            res.details = {"offset_scale": self.offset_scale, "noise_std": sigma, "offset_gain": gain}
        return res


def lan_adapt(
    model: Denoiser,
    noisy: np.ndarray | torch.Tensor,
    *,
    loss: str = "zsn2n",
    iters: int = LAN_ITERS,
    lr: float = LAN_LR,
    bound: Bound = "tanh",
    clean: np.ndarray | torch.Tensor | None = None,
    sensor: str | None = None,
    iso: float | None = None,
    cfa: str | None = None,
    seed: int = 0,
    offset_scale: OffsetScale = "none",
) -> AdaptResult:
    """One-call LAN on one image (see :class:`LANAdapter`)."""
    return LANAdapter(model, loss=loss, iters=iters, lr=lr, bound=bound, offset_scale=offset_scale).adapt(
        noisy, clean=clean, sensor=sensor, iso=iso, cfa=cfa, seed=seed
    )
