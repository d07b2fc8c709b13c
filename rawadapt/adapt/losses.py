"""Self-supervised denoising losses shared by the whole package: Zero-Shot Noise2Noise and
Neighbor2Neighbor (the LAN paper; LAN paper).

Every loss takes a callable ``f(x) -> denoised`` (batch in, batch out) and the noisy batch
``y`` of shape ``(B, C, H, W)``. The same function therefore serves

* LAN (a frozen network applied to ``y + tanh(phi)``: pass the adapted input as ``y`` and let
  gradients flow to ``phi`` through it),
* fine-tuning (gradients flow to the network's parameters),
* a small self-supervised network trained from scratch (the ZS-N2N baseline).

Inputs are 3-plane sRGB or 4-plane packed RAW (R, G1, G2, B). On RAW the 2x2 sub-sampling acts
on the packed planes, never on the Bayer mosaic: all planes of a cell are sub-sampled together
(same neighbour choice), so each sub-image is again a packed Bayer image of the same CFA.

Odd sizes: both losses work on 2x2 cells, so an odd height or width is cropped to the even size
below it (the last row/column is dropped) before anything else, including ``f(y)`` in the
regularisers. Inputs smaller than 2x2 after that crop (or than ``min_size``) raise
:class:`~rawadapt.errors.ShapeError`.

Zero-Shot Noise2Noise (Mansour & Heckel, CVPR 2023), as in LAN's code: fixed depthwise 2x2
stride-2 kernels ``[[0, .5], [.5, 0]]`` and ``[[.5, 0], [0, .5]]`` give ``D1(y), D2(y)``::

    L = 1/2 [ |D1y - f(D2y)|^2 + |D2y - f(D1y)|^2 ] + 1/2 [ |f(D1y) - D1 f(y)|^2 + |f(D2y) - D2 f(y)|^2 ]

with ``|.|^2`` the MEAN squared error and ``f(y)`` WITH gradient (as in the original and in
LAN's ``adapt/zsn2n.py``; ``f`` outputs the clean image, the residual being inside the model).

Neighbor2Neighbor (Huang et al., CVPR 2021): per 2x2 cell one of the 8 ordered neighbour pairs
``(0,1) (0,2) (1,3) (2,3) (1,0) (2,0) (3,1) (3,2)`` (cell positions 0 = top-left, 1 = top-right,
2 = bottom-left, 3 = bottom-right; only horizontal/vertical neighbours) gives ``g1(y), g2(y)``::

    L = |f(g1y) - g2y|^2 + gamma |f(g1y) - g2y - (g1 f(y) - g2 f(y))|^2,   f(y) without gradient

``gamma`` ramps linearly with the step: ``gamma = gamma_max * step / total_steps``. The original
paper ramps to 2.0 over training (``preset="original"``); LAN's code (``adapt/nbr2nbr.py``:
``Lambda = tmp_iter / max_iter * 0.1``) ramps to 0.1 over the adaptation iterations and clips
both network outputs to [0, 1] (``preset="lan"``, the default here).

Randomness: the neighbour choice is drawn on the CPU from a seeded ``torch.Generator`` and moved
to the data's device, so a seed gives the same sub-images on CPU and GPU. (The original draws
on a CUDA generator re-seeded with a global counter at every call.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch
import torch.nn.functional as F

from rawadapt.errors import ConfigError, ShapeError

Denoise = Callable[[torch.Tensor], torch.Tensor]

#: names accepted by :func:`make_loss`
LOSSES: tuple[str, ...] = ("zsn2n", "nbr2nbr")

#: the 8 ordered neighbour pairs of Neighbor2Neighbor (cell positions 0..3, row-major)
NEIGHBOUR_PAIRS: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 3), (2, 3), (1, 0), (2, 0), (3, 1), (3, 2))

#: smallest spatial size (after cropping to even) the 2x2 sub-samplers accept
MIN_SIZE = 2


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def crop_even(x: torch.Tensor) -> torch.Tensor:
    """Crop the last two axes down to even sizes (drops the last row/column when odd)."""
    h, w = x.shape[-2:]
    return x[..., : h - h % 2, : w - w % 2]


def check_input(y: torch.Tensor, *, min_size: int = MIN_SIZE, what: str = "image") -> None:
    """Raise :class:`ShapeError` unless ``y`` is a ``(B, 3|4, H, W)`` batch of a usable size.

    Parameters
    ----------
    y
        The noisy batch.
    min_size
        Smallest side accepted after cropping to even (at least :data:`MIN_SIZE`; a model may
        need more).
    what
        Name used in the message.
    """
    if y.ndim != 4:
        raise ShapeError(f"{what} must be a (B, C, H, W) batch, got shape {tuple(y.shape)}")
    if y.shape[1] not in (3, 4):
        raise ShapeError(
            f"{what} must have 3 planes (sRGB) or 4 packed RAW planes (R, G1, G2, B), "
            f"got {y.shape[1]} channels; self-supervised losses never act on a Bayer mosaic, "
            "pack it first"
        )
    need = max(int(min_size), MIN_SIZE)
    h, w = (s - s % 2 for s in y.shape[-2:])
    if h < need or w < need:
        raise ShapeError(
            f"{what} of {y.shape[-2]}x{y.shape[-1]} pixels is too small: the 2x2 sub-samplers "
            f"need at least {need}x{need} (after cropping odd sizes to even)"
        )


# --------------------------------------------------------------------------------------------
# Zero-Shot Noise2Noise
# --------------------------------------------------------------------------------------------

_D1 = ((0.0, 0.5), (0.5, 0.0))
_D2 = ((0.5, 0.0), (0.0, 0.5))


def pair_downsample(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ZS-N2N's fixed pair downsampler: the two diagonal averages of every 2x2 cell.

    Depthwise 2x2 convolutions with stride 2 and kernels ``[[0, .5], [.5, 0]]`` (D1) and
    ``[[.5, 0], [0, .5]]`` (D2); odd sizes are cropped to even first. Differentiable.
    """
    x = crop_even(x)
    c = x.shape[1]
    k1 = torch.tensor(_D1, dtype=x.dtype, device=x.device).expand(c, 1, 2, 2)
    k2 = torch.tensor(_D2, dtype=x.dtype, device=x.device).expand(c, 1, 2, 2)
    return F.conv2d(x, k1, stride=2, groups=c), F.conv2d(x, k2, stride=2, groups=c)


def zsn2n_loss(f: Denoise, y: torch.Tensor, *, min_size: int = MIN_SIZE) -> torch.Tensor:
    """Zero-Shot Noise2Noise loss (residual + consistency terms, see the module docstring).

    Parameters
    ----------
    f
        ``f(x) -> denoised``, same shape in and out.
    y
        Noisy batch ``(B, 3|4, H, W)``; odd sizes are cropped to even.
    min_size
        Smallest accepted side (see :func:`check_input`).

    Returns
    -------
    Scalar tensor (differentiable w.r.t. whatever ``f`` and ``y`` depend on).
    """
    check_input(y, min_size=min_size)
    y = crop_even(y)
    n1, n2 = pair_downsample(y)
    # each sub-image pixel averages two noisy pixels: half the variance (rawadapt.adapt.common.model_fn)
    half = getattr(f, "averaged", None)
    f_sub = half(2) if half is not None else f
    p1, p2 = f_sub(n1), f_sub(n2)
    loss_res = 0.5 * (F.mse_loss(p2, n1) + F.mse_loss(p1, n2))
    d1, d2 = pair_downsample(f(y))
    loss_cons = 0.5 * (F.mse_loss(p1, d1) + F.mse_loss(p2, d2))
    return loss_res + loss_cons


# --------------------------------------------------------------------------------------------
# Neighbor2Neighbor
# --------------------------------------------------------------------------------------------


def _cells(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` (even) -> ``(B, C, H/2, W/2, 4)``, last axis = cell positions 0..3 row-major."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)


class NeighborSubsampler:
    """Neighbor2Neighbor's random neighbour sub-sampler with its own seeded generator.

    :meth:`draw` picks, for every 2x2 cell of every image, one of the 8 ordered neighbour pairs
    (:data:`NEIGHBOUR_PAIRS`); :meth:`apply` then takes the pair's first (``g1``) or second
    (``g2``) pixel of every cell, for ALL channels with the same choice (packed RAW planes stay
    together). Indices are drawn on the CPU and moved to the data's device.

    Parameters
    ----------
    seed
        Seed of the internal ``torch.Generator``; each :meth:`draw` advances it.

    Examples
    --------
    >>> s = NeighborSubsampler(seed=0)
    >>> y = torch.rand(1, 3, 8, 8)
    >>> idx = s.draw(y)
    >>> g1, g2 = s.apply(y, idx, 0), s.apply(y, idx, 1)
    >>> g1.shape
    torch.Size([1, 3, 4, 4])
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.generator = torch.Generator(device="cpu").manual_seed(self.seed)
        self._pairs = torch.tensor(NEIGHBOUR_PAIRS, dtype=torch.long)

    def reset(self, seed: int | None = None) -> None:
        """Re-seed (with ``seed`` or the initial seed)."""
        if seed is not None:
            self.seed = int(seed)
        self.generator.manual_seed(self.seed)

    def draw(self, y: torch.Tensor) -> torch.Tensor:
        """Random cell positions ``(B, H/2, W/2, 2)`` (long, on ``y``'s device) for ``y`` cropped to even."""
        b = y.shape[0]
        h, w = (s // 2 for s in y.shape[-2:])
        choice = torch.randint(0, len(NEIGHBOUR_PAIRS), (b, h, w), generator=self.generator)
        return self._pairs[choice].to(y.device)

    @staticmethod
    def apply(x: torch.Tensor, idx: torch.Tensor, which: int) -> torch.Tensor:
        """Sub-image ``g1`` (``which=0``) or ``g2`` (``which=1``) of ``x`` for the drawn ``idx``."""
        cells = _cells(crop_even(x))
        b, c, h, w, _ = cells.shape
        if idx.shape != (b, h, w, 2):
            raise ShapeError(f"neighbour indices {tuple(idx.shape)} do not fit an input of shape {tuple(x.shape)}")
        pos = idx[..., which].to(x.device)[:, None, :, :, None].expand(b, c, h, w, 1)
        return cells.gather(-1, pos).squeeze(-1)


def nbr2nbr_loss(
    f: Denoise,
    y: torch.Tensor,
    *,
    gamma: float,
    subsampler: NeighborSubsampler,
    clip: bool = False,
    min_size: int = MIN_SIZE,
) -> torch.Tensor:
    """Neighbor2Neighbor loss for one step (see the module docstring).

    Parameters
    ----------
    f
        ``f(x) -> denoised``.
    y
        Noisy batch ``(B, 3|4, H, W)``; odd sizes are cropped to even.
    gamma
        Weight of the regulariser at this step (use :meth:`Nbr2NbrLoss.gamma_at` for the ramp).
    subsampler
        Draws the neighbour pairs (its generator advances by one draw).
    clip
        Clip both network outputs to [0, 1] (LAN's code does; the original does not).
    min_size
        Smallest accepted side.
    """
    check_input(y, min_size=min_size)
    y = crop_even(y)
    idx = subsampler.draw(y)
    g1y, g2y = subsampler.apply(y, idx, 0), subsampler.apply(y, idx, 1)
    with torch.no_grad():
        fy = f(y)
        if clip:
            fy = fy.clamp(0, 1)
        exp_diff = subsampler.apply(fy, idx, 0) - subsampler.apply(fy, idx, 1)
    out = f(g1y)
    if clip:
        out = out.clamp(0, 1)
    diff = out - g2y
    loss = diff.pow(2).mean()
    if gamma:
        loss = loss + float(gamma) * (diff - exp_diff).pow(2).mean()
    return loss


# --------------------------------------------------------------------------------------------
# Loss objects: one call signature for every adaptation method
# --------------------------------------------------------------------------------------------


class SelfSupervisedLoss(Protocol):
    """What adaptation loops call: ``loss(f, y, step, total_steps) -> scalar tensor``."""

    name: str

    def __call__(self, f: Denoise, y: torch.Tensor, step: int = 0, total_steps: int = 1) -> torch.Tensor: ...

    def reset(self, seed: int | None = None) -> None: ...


@dataclass
class ZSN2NLoss:
    """Zero-Shot Noise2Noise loss object (deterministic; ``step`` is ignored)."""

    min_size: int = MIN_SIZE
    name: str = field(default="zsn2n", init=False)

    def __call__(self, f: Denoise, y: torch.Tensor, step: int = 0, total_steps: int = 1) -> torch.Tensor:
        return zsn2n_loss(f, y, min_size=self.min_size)

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset (no randomness)."""


@dataclass
class Nbr2NbrLoss:
    """Neighbor2Neighbor loss object with the regulariser's linear ramp.

    Parameters
    ----------
    gamma_max
        Regulariser weight reached at the end of the ramp (0.1 in LAN's code, 2.0 originally).
    clip
        Clip network outputs to [0, 1] inside the loss (LAN's code: True; original: False).
    seed
        Seed of the neighbour sub-sampler.
    min_size
        Smallest accepted side.
    """

    gamma_max: float = 0.1
    clip: bool = True
    seed: int = 0
    min_size: int = MIN_SIZE
    name: str = field(default="nbr2nbr", init=False)

    def __post_init__(self) -> None:
        self.subsampler = NeighborSubsampler(self.seed)

    @classmethod
    def preset(cls, which: Literal["lan", "original"], *, seed: int = 0) -> Nbr2NbrLoss:
        """``"lan"``: ramp to 0.1 over the adaptation, outputs clipped (LAN's ``adapt/nbr2nbr.py``);
        ``"original"``: ramp to 2.0 over training, no clipping (Huang et al.'s ``train.py``)."""
        if which == "lan":
            return cls(gamma_max=0.1, clip=True, seed=seed)
        if which == "original":
            return cls(gamma_max=2.0, clip=False, seed=seed)
        raise ConfigError(f"unknown Neighbor2Neighbor preset {which!r}; use 'lan' or 'original'")

    def gamma_at(self, step: int, total_steps: int) -> float:
        """``gamma_max * step / total_steps`` (0 at the first step, as both codes do)."""
        return self.gamma_max * float(step) / float(max(int(total_steps), 1))

    def __call__(self, f: Denoise, y: torch.Tensor, step: int = 0, total_steps: int = 1) -> torch.Tensor:
        return nbr2nbr_loss(
            f,
            y,
            gamma=self.gamma_at(step, total_steps),
            subsampler=self.subsampler,
            clip=self.clip,
            min_size=self.min_size,
        )

    def reset(self, seed: int | None = None) -> None:
        """Re-seed the sub-sampler (a fresh, reproducible sequence per image)."""
        if seed is not None:
            self.seed = int(seed)
        self.subsampler.reset(self.seed)


def make_loss(name: str, *, seed: int = 0, min_size: int = MIN_SIZE, **options: float | bool) -> SelfSupervisedLoss:
    """Build a loss object by name (``"zsn2n"`` or ``"nbr2nbr"``).

    ``options`` go to :class:`Nbr2NbrLoss` (``gamma_max``, ``clip``); ZS-N2N takes none.

    Raises
    ------
    ConfigError
        Unknown name or options.
    """
    key = str(name).lower().replace("-", "").replace("_", "")
    if key == "zsn2n":
        if options:
            raise ConfigError(f"the zsn2n loss takes no options, got {sorted(options)}")
        return ZSN2NLoss(min_size=min_size)
    if key in ("nbr2nbr", "neighbor2neighbor"):
        unknown = set(options) - {"gamma_max", "clip"}
        if unknown:
            raise ConfigError(f"unknown nbr2nbr options {sorted(unknown)}; known: gamma_max, clip")
        return Nbr2NbrLoss(seed=seed, min_size=min_size, **options)  # type: ignore[arg-type]
    raise ConfigError(f"unknown self-supervised loss {name!r}; choose one of {', '.join(LOSSES)}")
