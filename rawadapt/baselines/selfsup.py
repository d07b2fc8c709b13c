"""Self-supervised denoisers trained on the target pool's NOISY images only: Neighbor2Neighbor
and Blind2Unblind - the ADL paper's protocol for self-supervised baselines (§4.1: only the target
data, no source sensors, no clean targets).

Both train the project's U-Net (:class:`rawadapt.models.unet.UNet` without modulation,
``budget.width`` / ``budget.depth``) for ``budget.selfsup_iters`` Adam steps (lr ``budget.lr``,
halved at 20/40/60/80 % of training as the authors' ``MultiStepLR``) on random
``budget.patch`` crops (dihedral augmentation, CFA-aware on RAW) of the pool's noisy images;
the clean references are dropped before any patch is drawn. RAW works on the 4 packed planes.

Neighbor2Neighbor (Huang et al., CVPR 2021): :class:`rawadapt.adapt.losses.Nbr2NbrLoss` with
the original preset (regulariser weight ramped linearly to 2.0 over training, no clipping).

Blind2Unblind (Wang et al., "Blind2Unblind: Self-Supervised Image Denoising with Visible Blind
Spots", CVPR 2022), as the authors' code does it:

* global masker: 16 masked copies of each noisy patch, copy ``i`` blinds the pixels at position
  ``(i // 4, i % 4)`` of every 4x4 cell (so every pixel is blind in exactly one copy) by
  replacing them with the 3x3 weighted average of their neighbours
  (``[[.5, 1, .5], [1, 0, 1], [.5, 1, .5]] / 6``, per channel);
* global-aware mask mapper: the network runs on all 16 copies; the blind-spot output
  ``h(f(Omega_y))`` takes each pixel from the copy in which it was blind;
* re-visible loss: ``L = lambda1 |h - y|^2 + |h + beta f(y)_sg - (beta + 1) y|^2`` with
  ``f(y)_sg`` the visible (unmasked) output without gradient, ``lambda1 = 1`` and ``beta``
  ramped: 2 for the first 40 % of training, then linearly to 20 at the end
  (``Lambda2 = 2, increase_ratio = 20``);
* inference: the visible output ``f(y)``.

Simplifications (documented in docs/baselines.md): the CPU budget's U-Net, learning rate and
step count instead of the authors' 48-wide U-Net, 3e-4 (B2U RAW 1e-4) and 100 epochs;
Neighbor2Neighbor uses the residual U-Net (``x + net(x)``) with a zero-initialised last layer, so
it starts from the identity (the authors' network predicts the clean image, which does not
converge in CPU-budget step counts); Blind2Unblind keeps the non-residual network (an identity
path would hand ``y[p]`` to the visible output) - option ``base="interp"`` predicts a correction
to the masker's neighbour average instead; the masker's interpolation pads by reflection
instead of zeros (zero padding darkens the blind estimate on the border of small patches).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rawadapt.adapt.losses import Nbr2NbrLoss
from rawadapt.baselines.base import Method, Task
from rawadapt.baselines.perimage import check_sample, seeded_torch, torch_threads
from rawadapt.data.patches import PatchSampler
from rawadapt.errors import ConfigError, NonFiniteError, ShapeError
from rawadapt.models.base import Denoiser as _Denoiser
from rawadapt.models.inference import denoise_image
from rawadapt.models.registry import build_model
from rawadapt.models.unet import UNet
from rawadapt.utils.seed import derive_seed

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from rawadapt.data.sample import Sample
    from rawadapt.models.base import Denoiser

#: the authors' MultiStepLR milestones (fractions of training) and factor
LR_MILESTONES = (0.2, 0.4, 0.6, 0.8)
LR_GAMMA = 0.5

# --------------------------------------------------------------------------------------------
# Blind2Unblind's masker and mapper
# --------------------------------------------------------------------------------------------

#: cell side of the global masker (16 masked copies)
B2U_CELL = 4
_INTERP = ((0.5, 1.0, 0.5), (1.0, 0.0, 1.0), (0.5, 1.0, 0.5))


def b2u_masks(height: int, width: int, *, cell: int = B2U_CELL, device: Any = None) -> torch.Tensor:
    """The ``cell**2`` blind-spot masks ``(cell**2, 1, H, W)`` (float 0/1): mask ``i`` is 1 at
    the pixels whose position in their ``cell x cell`` block is ``(i // cell, i % cell)``.
    Every pixel is 1 in exactly one mask (any H, W)."""
    import torch

    r = torch.arange(height, device=device) % cell
    c = torch.arange(width, device=device) % cell
    pos = r[:, None] * cell + c[None, :]  # (H, W) index of the mask that blinds the pixel
    ids = torch.arange(cell * cell, device=device)[:, None, None]
    return (pos[None] == ids).float()[:, None]


def b2u_interpolate(y: torch.Tensor) -> torch.Tensor:
    """Each pixel replaced by the weighted mean of its 8 neighbours (its own value excluded),
    per channel, reflection padding."""
    import torch
    import torch.nn.functional as F

    b, c, h, w = y.shape
    k = torch.tensor(_INTERP, dtype=y.dtype, device=y.device)
    k = (k / k.sum()).expand(c, 1, 3, 3)
    mode = "reflect" if min(h, w) > 1 else "replicate"
    return F.conv2d(F.pad(y, (1, 1, 1, 1), mode=mode), k, groups=c)


def b2u_masked_inputs(y: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The global masker: ``(B, C, H, W)`` -> ``(B * M, C, H, W)`` where copy ``(b, i)`` has the
    pixels of mask ``i`` replaced by :func:`b2u_interpolate` (copies of one image consecutive)."""
    interp = b2u_interpolate(y)
    m = masks[None]  # (1, M, 1, H, W)
    out = y[:, None] * (1.0 - m) + interp[:, None] * m  # (B, M, C, H, W)
    return out.reshape(-1, *y.shape[1:])


def b2u_map(outputs: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The global-aware mask mapper: ``(B * M, C, H, W)`` network outputs -> ``(B, C, H, W)``,
    each pixel taken from the copy in which it was blind."""
    n_masks = masks.shape[0]
    out = outputs.reshape(-1, n_masks, *outputs.shape[1:])  # (B, M, C, H, W)
    return (out * masks[None]).sum(dim=1)


def b2u_beta(
    step: int,
    total: int,
    *,
    lambda2: float = 2.0,
    increase_ratio: float = 20.0,
    thread1: float = 0.4,
    thread2: float = 1.0,
) -> float:
    """The re-visible weight at ``step`` (0-based) of ``total``: ``lambda2`` until 40 % of
    training, then linear to ``increase_ratio`` at the end (the authors' schedule)."""
    t = (int(step) + 1) / max(int(total), 1)
    if t <= thread1:
        return float(lambda2)
    if t <= thread2:
        return float(lambda2 + (t - thread1) * (increase_ratio - lambda2) / (thread2 - thread1))
    return float(increase_ratio)


def b2u_loss(
    model: Any, y: torch.Tensor, *, beta: float, lambda1: float = 1.0, masks: torch.Tensor | None = None
) -> torch.Tensor:
    """Blind2Unblind's loss for one batch ``y`` (B, C, H, W) (module docstring)."""
    import torch

    if masks is None:
        masks = b2u_masks(y.shape[-2], y.shape[-1], device=y.device)
    blind = b2u_map(model(b2u_masked_inputs(y, masks)), masks)
    with torch.no_grad():
        visible = model(y)
    diff = blind - y
    exp_diff = visible - y
    return lambda1 * diff.pow(2).mean() + (diff + beta * exp_diff).pow(2).mean()


def interp_residual_net(inner: Denoiser) -> Denoiser:
    """``x -> b2u_interpolate(x) + inner(x)``: a network whose starting point (``inner``'s head
    zeroed) is the masker's own neighbour average - blind-spot consistent, unlike ``x + net(x)``
    whose identity path would hand ``y[p]`` straight to the visible output."""

    class InterpResidual(_Denoiser):
        arch = "b2u-interp-residual"

        def __init__(self, net: Denoiser) -> None:
            super().__init__(net.in_channels)
            self.inner = net

        def forward(self, x: torch.Tensor, sensor: Any = None, iso: Any = None) -> torch.Tensor:
            self.check_input(x)
            return b2u_interpolate(x) + self.inner(x)

        def config(self) -> dict[str, Any]:
            return {"arch": self.arch, "inner": self.inner.config()}

    return InterpResidual(inner)


# --------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------


class PoolSelfSupervised(Method):
    """A U-Net trained self-supervised on the target pool's noisy images (module docstring).

    Options
    -------
    iters
        Training steps (default ``budget.selfsup_iters``).
    lr, width, depth, patch, batch
        Default from the budget.
    residual
        U-Net predicts ``x + net(x)`` (Neighbor2Neighbor's default) or the clean image
        (Blind2Unblind's default, the authors' choice).
    zero_head
        Zero-initialise the U-Net's last 1x1 convolution (default: when ``residual``).
    progress
        A tqdm bar of the training steps on stderr (default False; ``rawadapt bench`` sets it).
    """

    uses_sources = False
    shows_progress = True
    #: patch sides are rounded down to a multiple of this
    patch_multiple: ClassVar[int] = 2
    #: U-Net predicts ``x + net(x)`` (True) or the clean image directly (False)
    default_residual: ClassVar[bool] = True
    known_options: ClassVar[tuple[str, ...]] = (
        "iters",
        "lr",
        "width",
        "depth",
        "patch",
        "batch",
        "residual",
        "zero_head",
        "progress",
    )

    def __init__(self, budget: Any = None, **options: Any) -> None:
        super().__init__(budget, **options)
        unknown = sorted(set(options) - set(self.known_options))
        if unknown:
            raise ConfigError(
                f"method {self.name!r}: unknown options {unknown}; known: {', '.join(self.known_options)}"
            )
        b = self.budget
        self.iters = int(options.get("iters", b.selfsup_iters))
        self.lr = float(options.get("lr", b.lr))
        self.width = int(options.get("width", b.width))
        self.depth = int(options.get("depth", b.depth))
        self.patch = int(options.get("patch", b.patch))
        self.batch = int(options.get("batch", b.batch))
        self.residual = bool(options.get("residual", self.default_residual))
        self.zero_head = bool(options.get("zero_head", self.residual))
        self.progress = bool(options.get("progress", False))
        if min(self.iters + 1, self.width, self.depth, self.batch) < 1 or self.lr <= 0 or self.patch < 4:
            raise ConfigError(
                f"{self.name}: invalid options iters={self.iters}, lr={self.lr}, width={self.width}, "
                f"depth={self.depth}, patch={self.patch}, batch={self.batch}"
            )
        self.model: Denoiser | None = None
        self.space: str | None = None
        self.threads: int | None = None
        self.losses: list[float] = []

    def loss(self, model: Denoiser, y: torch.Tensor, step: int, total: int) -> torch.Tensor:  # pragma: no cover
        """The self-supervised loss of one batch."""
        raise NotImplementedError

    def setup(self, seed: int) -> None:
        """Per-run state of the loss (seeded)."""

    def wrap(self, model: Denoiser) -> Denoiser:
        """The network actually trained (default: the U-Net itself)."""
        return model

    def fit(self, task: Task) -> None:
        """Train on patches of the target pool's noisy images (clean references dropped)."""
        import torch

        pool = task.target_pool
        if not pool:
            raise ConfigError(f"{self.name}: the target pool is empty (nothing to train on)")
        # noisy images only: each sample's "clean" slot holds its noisy image, so no clean
        # pixel can reach the loss (the sampler needs the slot filled)
        samples = [
            s.with_arrays(np.asarray(s.noisy, dtype=np.float32), np.asarray(s.noisy, dtype=np.float32)) for s in pool
        ]
        smallest = min(min(s.height, s.width) for s in samples)
        patch = min(self.patch, smallest)
        patch -= patch % self.patch_multiple
        if patch < max(self.patch_multiple, 4):
            raise ShapeError(f"{self.name}: pool images of {smallest} pixels are too small for training patches")
        self.space = task.space
        self.threads = task.threads
        channels = 4 if task.space == "raw" else 3
        sampler = PatchSampler(
            samples, patch=patch, batch=self.batch, seed=derive_seed(task.seed, self.name, "patches")
        )
        with seeded_torch(derive_seed(task.seed, self.name, "init")):
            model = build_model(
                {
                    "arch": "unet",
                    "in_channels": channels,
                    "width": self.width,
                    "depth": self.depth,
                    "use_sensor": False,
                    "use_iso": False,
                    "residual": self.residual,
                }
            )
        if self.zero_head:  # residual U-Net: start from the identity (see the module docstring)
            assert isinstance(model, UNet) and model.head.bias is not None
            torch.nn.init.zeros_(model.head.weight)
            torch.nn.init.zeros_(model.head.bias)
        model = self.wrap(model)
        self.setup(derive_seed(task.seed, self.name, "loss"))
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        milestones = sorted({max(1, int(round(f * self.iters))) for f in LR_MILESTONES})
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=LR_GAMMA)
        model.train()
        self.losses = []
        bar = None
        if self.progress:  # B2U runs 17 forward passes a step: tens of minutes on a CPU at `medium`
            from tqdm.auto import tqdm

            bar = tqdm(total=self.iters, desc=f"{self.name} fit", unit="it", leave=False, dynamic_ncols=True)
        for step in range(self.iters):
            y = sampler.draw().noisy
            loss = self.loss(model, y, step, self.iters)
            if not torch.isfinite(loss):
                raise NonFiniteError(f"{self.name}: training diverged at step {step} (loss {float(loss)})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            self.losses.append(float(loss.detach()))
            if bar is not None:
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{self.losses[-1]:.4g}", refresh=False)
        if bar is not None:
            bar.close()
        model.eval()
        self.model = model

    def denoise(self, sample: Sample) -> np.ndarray:

        if self.model is None:
            raise ConfigError(f"{self.name}: call fit(task) before denoise (it trains on the target pool)")
        noisy = check_sample(sample, (self.space or sample.space,), self.name)
        with torch_threads(self.threads):
            return denoise_image(self.model, noisy, cfa=sample.cfa, tile=self.budget.eval_tile)

    def info(self) -> dict[str, Any]:
        out = super().info()
        out.update(
            {
                "iters": self.iters,
                "final_loss": self.losses[-1] if self.losses else None,
                "model": {"arch": "unet", "width": self.width, "depth": self.depth},
            }
        )
        return out


class Neighbor2Neighbor(PoolSelfSupervised):
    """Neighbor2Neighbor trained on the target pool's noisy images.

    References
    ----------
    Huang, Li, Liu & Yan, "Neighbor2Neighbor: Self-Supervised Denoising from Single Noisy
    Images", CVPR 2021 (gamma ramp to 2.0); the LAN paper; ADL paper (ADL paper) §4.1.
    """

    name = "nbr2nbr"
    description = "Neighbor2Neighbor U-Net trained on the target pool's noisy images only"
    reference = "Huang et al. CVPR 2021; ADL paper §4.1 protocol"

    def setup(self, seed: int) -> None:

        self._loss = Nbr2NbrLoss.preset("original", seed=seed)

    def loss(self, model: Denoiser, y: torch.Tensor, step: int, total: int) -> torch.Tensor:
        return self._loss(lambda x: model(x), y, step, total)


class Blind2Unblind(PoolSelfSupervised):
    """Blind2Unblind trained on the target pool's noisy images (module docstring).

    Options (besides the common ones)
    ---------------------------------
    lambda1, lambda2, increase_ratio
        Loss weights (authors' defaults 1, 2, 20).
    base
        ``"none"`` (default, the authors' network predicts the clean image) or ``"interp"``
        (``interp(x) + net(x)`` with a zero-initialised last layer: training starts from the
        masker's neighbour average).

    References
    ----------
    Wang, Fu, Wang, Zhang & Zha, "Blind2Unblind: Self-Supervised Image Denoising with Visible
    Blind Spots", CVPR 2022; ADL paper (ADL paper) Table 1, §4.1.
    """

    name = "b2u"
    description = "Blind2Unblind U-Net (global masker + re-visible loss) on the target pool's noisy images"
    reference = "Wang et al. CVPR 2022; ADL paper Table 1"
    patch_multiple = B2U_CELL
    default_residual = False  # a residual path would hand y[p] straight to the visible output
    known_options = PoolSelfSupervised.known_options + ("lambda1", "lambda2", "increase_ratio", "base")

    def __init__(self, budget: Any = None, **options: Any) -> None:
        self.base = str(options.get("base", "none"))
        if self.base not in ("none", "interp"):
            raise ConfigError(f"b2u: base must be 'none' (the authors' U-Net) or 'interp', got {self.base!r}")
        if self.base == "interp":
            options.setdefault("zero_head", True)
        super().__init__(budget, **options)
        self.lambda1 = float(options.get("lambda1", 1.0))
        self.lambda2 = float(options.get("lambda2", 2.0))
        self.increase_ratio = float(options.get("increase_ratio", 20.0))

    def wrap(self, model: Denoiser) -> Denoiser:
        return interp_residual_net(model) if self.base == "interp" else model

    def loss(self, model: Denoiser, y: torch.Tensor, step: int, total: int) -> torch.Tensor:
        beta = b2u_beta(step, total, lambda2=self.lambda2, increase_ratio=self.increase_ratio)
        return b2u_loss(model, y, beta=beta, lambda1=self.lambda1)
