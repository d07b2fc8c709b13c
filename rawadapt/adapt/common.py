"""What every test-time adaptation method shares: input checks, the model call with metadata,
the result record, the optimisation loop with per-iteration metrics, and the in-place weight
snapshot that restores a model between images.

Iteration convention (as in LAN's ``main.py``): the metrics list holds ``iters + 1`` entries;
entry ``k`` is the denoised output after ``k`` updates, so entry 0 is the pretrained (not yet
adapted) result and entry ``iters`` the final one. The self-loss list holds ``iters`` entries,
the loss that drove each update.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rawadapt.adapt.losses import MIN_SIZE, SelfSupervisedLoss, check_input
from rawadapt.errors import NonFiniteError, ShapeError
from rawadapt.io.bayer import deunify_pad, unify_pad
from rawadapt.metrics import evaluate_pair
from rawadapt.models.base import Denoiser

Denoise = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameter-less module)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def min_input_size(model: Denoiser) -> int:
    """Smallest image side a self-supervised loss accepts for ``model``.

    The 2x2 sub-samplers halve the image, and the model must accept the half-size image
    (``model.min_input_size`` when a model declares one, else 1 pixel).
    """
    return max(MIN_SIZE, 2 * int(getattr(model, "min_input_size", 1)))


def to_batch(image: np.ndarray | torch.Tensor, model: Denoiser, *, what: str = "noisy image") -> torch.Tensor:
    """A ``(C, H, W)`` (or ``(1, C, H, W)``) image as a float32 ``(1, C, H, W)`` tensor on the
    model's device, after checking channels, size and finiteness.

    Raises
    ------
    ShapeError
        Wrong number of dimensions or channels, or an image below the minimum size.
    NonFiniteError
        NaN/Inf values.
    """
    t = torch.as_tensor(np.ascontiguousarray(image) if isinstance(image, np.ndarray) else image)
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3:
        raise ShapeError(f"{what} must be (C, H, W), got shape {tuple(t.shape)}")
    if t.shape[0] != model.in_channels:
        kind = "packed RAW (4 planes R, G1, G2, B)" if model.in_channels == 4 else "sRGB (3 planes)"
        raise ShapeError(
            f"{what} has {t.shape[0]} channels but the {model.arch} model expects {model.in_channels}: {kind}"
        )
    t = t.detach().to(device=model_device(model), dtype=torch.float32)[None]
    check_input(t, min_size=min_input_size(model), what=what)
    if not torch.isfinite(t).all():
        raise NonFiniteError(f"{what} holds {int((~torch.isfinite(t)).sum())} NaN/Inf values")
    return t


def model_fn(
    model: Denoiser,
    *,
    sensor: str | None = None,
    iso: float | None = None,
    cfa: str | None = None,
    noise: tuple[float, float] | None = None,
) -> Denoise:
    """``f(x) = model(x, sensor, iso)`` for any batch size (metadata repeated per item).

    For a RAW model and an input of Bayer phase ``cfa`` other than the model's ``raw_phase``,
    ``f`` pads the input to that phase and removes the padding after the network
    (:func:`rawadapt.io.bayer.unify_pad`, differentiable). It also holds for the losses'
    half-size sub-images: every packed pixel is still one CFA cell of phase ``cfa``.

    ``f.averaged(k)`` is the same denoiser for an input that is the mean of ``k`` independent
    noisy pixels (ZS-N2N's sub-images, ``k = 2``): a noise-conditioned model is told the line
    ``(a / k, b / k)``, since averaging ``k`` pixels of variance ``a x + b`` divides it by ``k``
    (beyond the LAN paper, whose backbones are not noise-conditioned); other models are unchanged.
    """
    f = _model_fn(model, sensor=sensor, iso=iso, cfa=cfa, noise=noise)
    conditioned = noise is not None and getattr(model, "uses_noise", False)
    made: dict[float, Denoise] = {1.0: f}  # one closure per k for the whole adaptation

    def averaged(k: float) -> Denoise:
        # the ISO input (if any) is left as it is: only the noise line describes the averaging
        if not k > 0:
            raise ValueError(f"averaged(k) needs k > 0, got {k}")
        if not conditioned:
            return f
        assert noise is not None
        if float(k) not in made:
            made[float(k)] = _model_fn(model, sensor=sensor, iso=iso, cfa=cfa, noise=(noise[0] / k, noise[1] / k))
        return made[float(k)]

    f.averaged = averaged  # type: ignore[attr-defined]
    return f


def _model_fn(
    model: Denoiser,
    *,
    sensor: str | None,
    iso: float | None,
    cfa: str | None,
    noise: tuple[float, float] | None,
) -> Denoise:
    dev = model_device(model)
    sid = model.sensor_ids([sensor], device=dev) if model.uses_metadata else None
    iso_t = None if iso is None else torch.tensor([float(iso)], dtype=torch.float32, device=dev)
    noise_t = (
        torch.tensor([list(noise)], dtype=torch.float32, device=dev)
        if noise is not None and getattr(model, "uses_noise", False)
        else None
    )
    unify = (
        cfa is not None
        and model.in_channels == 4
        and getattr(model, "raw_phase", None) == "RGGB"
        and cfa.upper() != "RGGB"
    )

    def f(x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        s = None if sid is None else sid.expand(b)
        i = None if iso_t is None else iso_t.expand(b)
        kw = {} if noise_t is None else {"noise": noise_t.expand(b, 2)}
        if unify:
            return deunify_pad(model(unify_pad(x, cfa), s, i, **kw), cfa)  # type: ignore[arg-type]
        return model(x, s, i, **kw)

    return f


# --------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------


@dataclass
class AdaptResult:
    """Outcome of adapting to one image.

    Attributes
    ----------
    method, loss_name
        Adaptation method (``lan``, ``full``, ``first-layer``, ``last-layer``, ``meta``) and
        self-supervised loss.
    iters, lr, seed
        Settings used.
    denoised
        Final denoised image ``(C, H, W)`` float32 (not clipped).
    adapted_input
        What the network finally saw: ``y + tanh(phi)`` for LAN, ``y`` for the others.
    loss
        Self-loss of each update (``iters`` values).
    psnr, ssim
        With a clean image: ``iters + 1`` values, entry ``k`` after ``k`` updates (entry 0 =
        pretrained output). Empty otherwise.
    psnr_noisy, ssim_noisy
        Metrics of the noisy input itself (None without a clean image).
    seconds
        Wall time of the ``iters`` updates (metric tracking excluded).
    trainable
        Number of optimised values (offset size for LAN, parameters for fine-tuning).
    details
        Method-specific values, merged into :meth:`to_dict` (noise-scaled LAN: ``offset_scale``,
        ``noise_std``, ``offset_gain``); empty for the others.
    """

    method: str
    loss_name: str
    iters: int
    lr: float
    seed: int
    denoised: np.ndarray
    adapted_input: np.ndarray
    loss: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    psnr_noisy: float | None = None
    ssim_noisy: float | None = None
    seconds: float = 0.0
    trainable: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def psnr_before(self) -> float | None:
        """PSNR of the pretrained output (before any update)."""
        return self.psnr[0] if self.psnr else None

    @property
    def psnr_after(self) -> float | None:
        return self.psnr[-1] if self.psnr else None

    @property
    def ssim_before(self) -> float | None:
        return self.ssim[0] if self.ssim else None

    @property
    def ssim_after(self) -> float | None:
        return self.ssim[-1] if self.ssim else None

    @property
    def seconds_per_iter(self) -> float:
        return self.seconds / self.iters if self.iters else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no image arrays)."""
        return {
            "method": self.method,
            "loss_name": self.loss_name,
            "iters": self.iters,
            "lr": self.lr,
            "seed": self.seed,
            "trainable": self.trainable,
            "seconds": self.seconds,
            "seconds_per_iter": self.seconds_per_iter,
            "psnr_noisy": self.psnr_noisy,
            "ssim_noisy": self.ssim_noisy,
            "psnr_before": self.psnr_before,
            "psnr_after": self.psnr_after,
            "ssim_before": self.ssim_before,
            "ssim_after": self.ssim_after,
            "loss": list(self.loss),
            "psnr": list(self.psnr),
            "ssim": list(self.ssim),
            **self.details,
        }


def _metrics(pred: torch.Tensor, clean: torch.Tensor, with_ssim: bool) -> tuple[float, float]:

    m = evaluate_pair(pred[0], clean[0], with_ssim=with_ssim)
    return m["psnr"], m.get("ssim", math.nan)


# --------------------------------------------------------------------------------------------
# The optimisation loop
# --------------------------------------------------------------------------------------------


def run_adaptation(
    *,
    f: Denoise,
    make_input: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    lr: float,
    iters: int,
    loss: SelfSupervisedLoss,
    clean: torch.Tensor | None,
    noisy: torch.Tensor,
    method: str,
    seed: int,
    track_ssim: bool = True,
    callback: Callable[[int, float], None] | None = None,
) -> AdaptResult:
    """Adam on ``params`` for ``iters`` steps of ``loss(f, make_input(), step, iters)``.

    Parameters
    ----------
    f
        The (frozen or trainable) network call.
    make_input
        Builds the network input from the current parameters (``y + tanh(phi)`` for LAN).
    params
        Tensors to optimise (requires_grad already set by the caller).
    lr, iters
        Adam learning rate and number of updates (``iters >= 0``).
    loss
        Self-supervised loss object; re-seeded here with ``seed`` (fresh per image).
    clean
        Clean reference ``(1, C, H, W)`` for per-iteration PSNR/SSIM, or None.
    noisy
        The noisy batch (for its own metrics).
    method, seed
        Recorded in the result.
    track_ssim
        Also compute SSIM at every iteration (PSNR alone is cheaper).
    callback
        ``callback(step, loss_value)`` after every update.

    Raises
    ------
    NonFiniteError
        The self-loss became NaN/Inf (the step is not applied).
    """
    if iters < 0:
        raise ValueError(f"iterations must be >= 0, got {iters}")
    loss.reset(seed)
    opt = torch.optim.Adam(list(params), lr=float(lr)) if iters > 0 else None
    losses: list[float] = []
    psnrs: list[float] = []
    ssims: list[float] = []
    psnr_noisy = ssim_noisy = None
    if clean is not None:
        psnr_noisy, ssim_noisy = _metrics(noisy, clean, track_ssim)
    seconds = 0.0
    for step in range(iters):
        if clean is not None:  # the output BEFORE this update (entry 0 = pretrained)
            with torch.no_grad():
                p, s = _metrics(f(make_input()), clean, track_ssim)
            psnrs.append(p)
            ssims.append(s)
        t0 = time.perf_counter()
        assert opt is not None
        opt.zero_grad(set_to_none=True)
        value = loss(f, make_input(), step, iters)
        v = float(value.detach())
        if not math.isfinite(v):
            raise NonFiniteError(
                f"{method}: self-supervised loss became {v} at iteration {step + 1}; lower the learning rate"
            )
        value.backward()
        opt.step()
        seconds += time.perf_counter() - t0
        losses.append(v)
        if callback is not None:
            callback(step, v)
    with torch.no_grad():
        x_in = make_input()
        out = f(x_in)
    if clean is not None:
        p, s = _metrics(out, clean, track_ssim)
        psnrs.append(p)
        ssims.append(s)
    n_train = sum(int(t.numel()) for t in params)
    return AdaptResult(
        method=method,
        loss_name=getattr(loss, "name", type(loss).__name__),
        iters=int(iters),
        lr=float(lr),
        seed=int(seed),
        denoised=out[0].detach().float().cpu().numpy(),
        adapted_input=x_in[0].detach().float().cpu().numpy(),
        loss=losses,
        psnr=psnrs,
        ssim=ssims if track_ssim else [],
        psnr_noisy=psnr_noisy,
        ssim_noisy=ssim_noisy if track_ssim else None,
        seconds=seconds,
        trainable=n_train,
    )


# --------------------------------------------------------------------------------------------
# Restoring weights between images
# --------------------------------------------------------------------------------------------


class WeightSnapshot:
    """A preallocated copy of some tensors, restored in place (no reallocation, no reload).

    Parameters
    ----------
    tensors
        Parameters and buffers to protect (e.g. ``list(model.parameters()) +
        list(model.buffers())``).
    """

    def __init__(self, tensors: Iterable[torch.Tensor]) -> None:
        seen: set[int] = set()
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        for t in tensors:
            if id(t) in seen:
                continue
            seen.add(id(t))
            self._pairs.append((t, t.detach().clone()))

    @classmethod
    def of_model(cls, model: torch.nn.Module) -> WeightSnapshot:
        """All parameters and buffers of ``model``."""
        return cls(list(model.parameters()) + list(model.buffers()))

    def restore(self) -> None:
        """Copy the saved values back into the live tensors."""
        with torch.no_grad():
            for live, saved in self._pairs:
                live.copy_(saved)

    def capture(self) -> None:
        """Overwrite the saved copies with the live values (in place, no reallocation)."""
        with torch.no_grad():
            for live, saved in self._pairs:
                saved.copy_(live)

    def pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(live, saved)`` tensor pairs, in the order given."""
        return list(self._pairs)

    def matches(self) -> bool:
        """Whether every live tensor equals its saved copy bit for bit."""
        return all(torch.equal(live, saved) for live, saved in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)


class RequiresGradState:
    """Remember every parameter's ``requires_grad`` flag and the training mode; put them back."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.flags = [(p, p.requires_grad) for p in model.parameters()]
        self.training = model.training

    def restore(self) -> None:
        for p, flag in self.flags:
            p.requires_grad_(flag)
        self.model.train(self.training)


def freeze_all_but(model: torch.nn.Module, trainable: Sequence[torch.nn.Parameter]) -> None:
    """``requires_grad`` True for ``trainable`` only; the model in eval mode.

    Eval mode for every method, as in LAN's code (``get_model()`` calls ``model.eval()`` and
    nothing calls ``train()``): adaptation sees ONE image, so BatchNorm must use its running
    statistics rather than those of a batch of one.
    """
    keep = {id(p) for p in trainable}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    model.eval()
