"""Transfer learning with adaptive instance normalisation (Kim, Soh, Park, Cho, "Transfer Learning
from Synthetic to Real-Noise Denoising with Adaptive Instance Normalization", CVPR 2020) — the
"Transfer learning" row of the ADL paper's Table 1 (ADL paper §4.1).

Network (:class:`AINUNet`, registered as ``ain-unet``)
------------------------------------------------------
* a **noise-level estimator**: two 3x3 convs, 4x average pooling, two convs, 2x pooling, a conv
  to a ``C``-channel non-negative noise-level map at 1/8 resolution, bilinear up-sampling, plus
  a full-resolution refinement blended 0.8 / 0.2 (Kim et al. Fig. 2 and their code);
* a **reconstruction U-Net** whose levels are AIN residual blocks ``h + conv(act(AIN(conv(act(
  AIN(h))))))``; :class:`AIN` instance-normalises a feature map and re-scales / shifts it with
  ``γ, β`` predicted from the noise-level map (average-pooled to the feature's resolution):
  ``IN(h) ⊙ (1 + γ) + β``, ``γ, β = conv(relu(conv(map)))``;
* down-sampling by 2x2 average pooling + conv, up-sampling by 2x2 transposed conv + skip
  concatenation; a final 1x1 conv; residual output ``x + f(x)``.

CPU-scale choices: widths ``width · 2^level`` (the paper: 64 · s) and ONE AIN block per level
(the paper: two), LeakyReLU(0.2) like the project's U-Net (the paper: PReLU), estimator width
16 (the paper: 32).

Noise-level supervision: Kim et al. (after CBDNet) train the estimator on synthetic data with
an asymmetric loss against the known noise-level map (under-estimation penalised more,
``α = 0.3``) plus a total-variation term. The sources here are real PAIRS, so the target map
is measured: the RMS of ``noisy − clean`` over the estimator's 8x8 cells. The loss of the
pretraining stage is ``L1(denoised) + λ_est (asym-L1(map) + λ_TV TV(map))`` with the
asymmetric term in L1 form (``|α − 1[σ̂ < σ]| · |σ̂ − σ|``) to match the scale of the L1
reconstruction loss (CBDNet pairs squared terms with an MSE reconstruction loss);
:data:`EST_WEIGHT`, :data:`ASYM_ALPHA`, :data:`TV_WEIGHT`.

Transfer (strategy ``ain-transfer``)
------------------------------------
1. ``source-pretrain``: all parameters on all source domains (batches per domain; L1 plus the
   noise-level supervision above), the "synthetic-noise denoiser" of Kim et al. whose role the
   sources play here;
2. ``ain-transfer``: only the AIN modules and the last convolution are updated on the target
   pool; the estimator and all other convolutions stay frozen (Kim et al.'s transfer-learning
   scheme: the convolutions hold the general denoising features, AIN adapts to the new noise
   statistics).

Iterations: ``pretrain_iters + iters`` source steps (like fine-tuning) + ``finetune_iters``.
Works on RAW (4 planes) and sRGB (3 channels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from rawadapt.baselines.partial_stage import PartialStage
from rawadapt.baselines.trained import TrainedMethod
from rawadapt.errors import ConfigError, NonFiniteError
from rawadapt.models.ain_unet import (  # noqa: F401  (re-exported: the network lives in models/)
    AIN,
    ESTIMATOR_STRIDE,
    AINResBlock,
    AINUNet,
    NoiseLevelEstimator,
)
from rawadapt.train.builders import source_domains, target_pool
from rawadapt.train.stages import StepValues, SupervisedStage

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.train.config import TrainConfig
    from rawadapt.train.context import TrainContext, TrainData
    from rawadapt.train.stages import Stage

#: asymmetric estimator loss: over-estimates weigh α, under-estimates 1 − α (CBDNet / Kim et al.)
ASYM_ALPHA = 0.3
#: weight of the estimator loss in source pretraining (CBDNet's λ_asymm)
EST_WEIGHT = 0.5
#: total-variation weight of the estimated map (CBDNet's λ_TV)
TV_WEIGHT = 0.05


def noise_level_target(noisy: torch.Tensor, clean: torch.Tensor, cell: int = ESTIMATOR_STRIDE) -> torch.Tensor:
    """Measured noise level of pairs: RMS of ``noisy − clean`` per ``cell x cell`` block and plane."""
    return F.avg_pool2d((noisy - clean).pow(2), cell, ceil_mode=True).sqrt()


def estimator_loss(
    est_map: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float = ASYM_ALPHA,
    tv_weight: float = TV_WEIGHT,
    cell: int = ESTIMATOR_STRIDE,
) -> torch.Tensor:
    """Asymmetric L1 between the estimated map (pooled to ``cell`` blocks) and the measured
    noise level, plus total variation of the pooled map (module docstring)."""
    est = F.avg_pool2d(est_map, cell, ceil_mode=True)
    weight = torch.where(est < target, 1.0 - alpha, alpha)
    asym = (weight * (est - target).abs()).mean()
    tv = est.new_zeros(())
    if est.shape[-1] > 1:
        tv = tv + (est[..., :, 1:] - est[..., :, :-1]).abs().mean()
    if est.shape[-2] > 1:
        tv = tv + (est[..., 1:, :] - est[..., :-1, :]).abs().mean()
    return asym + tv_weight * tv


class AINPretrainStage(SupervisedStage):
    """Source pretraining of :class:`AINUNet`: L1 reconstruction + supervised noise-level map."""

    def step(self, ctx: TrainContext, i: int) -> StepValues:
        import math
        import time

        lr = self.set_lr(ctx, i)
        t0 = time.perf_counter()
        batch, domain = self.draw()
        data_time = time.perf_counter() - t0
        model = ctx.model
        opt = ctx.optimizer
        assert opt is not None
        model.train()
        opt.zero_grad(set_to_none=True)
        x, y = batch.noisy.to(ctx.device), batch.clean.to(ctx.device)
        out, est = model.forward_with_map(x)  # type: ignore[operator]
        rec = (out - y).abs().mean()
        est_loss = estimator_loss(est, noise_level_target(x, y))
        loss = rec + EST_WEIGHT * est_loss
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteError(f"training loss became {value}; lower the learning rate")
        loss.backward()
        if self.comm is not None:
            self.comm.average_gradients(model)
        if self.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.optim.grad_clip)
        opt.step()
        return {
            "loss": float(rec.detach()),
            "est_loss": float(est_loss.detach()),
            "lr": lr,
            "data_time": data_time,
            "domain": domain,
        }

    def finish(self, ctx: TrainContext) -> dict[str, Any]:
        return {
            **super().finish(ctx),
            "estimator_loss": {"weight": EST_WEIGHT, "alpha": ASYM_ALPHA, "tv_weight": TV_WEIGHT},
        }


def is_transfer_parameter(name: str) -> bool:
    """Parameters updated by the transfer stage: every AIN module and the last convolution."""
    parts = name.split(".")
    return any(p.startswith("ain") for p in parts) or parts[0] == "head"


# -- strategy ---------------------------------------------------------------------------------------
def build_ain_transfer(config: TrainConfig, data: TrainData) -> list[Stage]:
    """Source pretraining, then AIN + last-layer transfer on the target pool."""

    if config.model.arch != "ain-unet":
        raise ConfigError(f"strategy 'ain-transfer' needs model.arch 'ain-unet', got {config.model.arch!r}")
    pool = target_pool(data)
    d = config.data
    return [
        AINPretrainStage(
            "source-pretrain",
            source_domains(data),
            config.stage_iters("pretrain"),
            lr=config.optim.lr,
            optim=config.optim,
            patch=d.patch,
            batch=d.batch,
            augment=d.augment,
            seed=config.seed,
            rule=d.mixing,
        ),
        PartialStage(
            "ain-transfer",
            pool,
            config.stage_iters("finetune"),
            lr=config.resolved_finetune_lr(),
            optim=config.optim,
            patch=d.patch,
            batch=d.batch,
            augment=d.augment,
            seed=config.seed,
            trainable=is_transfer_parameter,
            what="AIN modules + last convolution (Kim et al. transfer learning)",
        ),
    ]


class TransferAIN(TrainedMethod):
    """Transfer learning with AIN (Kim et al. CVPR 2020): see the module docstring."""

    name = "ain"
    description = "AIN U-Net pretrained on the sources; AIN modules + last layer transferred to the target pool"
    reference = "Kim et al. CVPR 2020; ADL paper Table 1 'Transfer learning'"
    strategy = "ain-transfer"
    spaces = ("raw", "srgb")
    overrides: ClassVar[dict[str, Any]] = {"model": {"arch": "ain-unet"}}

    def iterations(self) -> dict[str, int]:
        b = self.budget
        return {"pretrain_iters": b.pretrain_iters + b.iters, "iters": b.iters, "finetune_iters": b.finetune_iters}
