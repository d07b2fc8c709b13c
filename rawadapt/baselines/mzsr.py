"""MZSR-style meta-transfer learning (Soh, Cho, Cho, "Meta-Transfer Learning for Zero-Shot
Super-Resolution", CVPR 2020) adapted to cross-sensor denoising as in the ADL paper's Table 1
(ADL paper §2.2, §4.1): "utilize the MAML algorithm ... to obtain a model with better
initialization implicitly from the source domain, then fine-tune it to fit the target domain".

Strategy ``mzsr`` — three stages
--------------------------------
1. ``source-pretrain`` — MZSR's "large-scale training": supervised L1 on all source domains
   (batches per domain).
2. ``meta-transfer`` — first-order MAML (Finn et al. 2017, first-order variant), one engine
   iteration = one meta-update: for each of :data:`META_TASKS` tasks a source domain is drawn
   (task = one sensor, as MZSR's task = one blur kernel); from θ, :data:`INNER_STEPS` plain
   gradient steps (lr :data:`INNER_LR` = MZSR's α) on a support batch of that domain give θ';
   the L1 loss of θ' on a query batch of the same domain gives the task gradient at θ' (first
   order: no second derivatives). The averaged task gradients update θ with the stage's AdamW
   (MZSR's meta-optimizer is Adam) at the fine-tuning LR.
3. ``target-finetune`` — adaptation to the target: the ADL paper describes the MZSR baseline as
   "obtain a model with better initialization implicitly from the source domain, then
   fine-tune it to fit the target domain" (§2.2); it is fine-tuned on the target pool like the
   fine-tuning baseline (AdamW, ``finetune_iters``, fine-tuning LR). MZSR's own meta-test takes
   a few plain gradient steps of α on the test image itself (zero-shot, self-supervised by
   down-sampling); here the pool HAS clean references, so the adaptation is supervised (L1), as
   the inner loop was.

Budget: the meta stage is about ``iters // 2 + iters % 2`` forward/backward passes
(``max(1, round(passes / (META_TASKS * (INNER_STEPS + 1))))`` meta-updates) and the source
pretraining gets ``pretrain_iters + iters // 2`` steps, so the total compute matches the
fine-tuning baseline (``pretrain_iters + iters`` source steps + ``finetune_iters``).

With α = 0.01 (MZSR's value) the inner steps move the weights little at this scale, so the
meta stage is close to continued multi-domain training on query batches (the first-order
meta-gradient is the query gradient at the slightly adapted weights).

Works on RAW and sRGB. Everything draws from the stages' own seeded generators (exact resume).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch

from rawadapt.baselines.trained import TrainedMethod
from rawadapt.errors import ConfigError, NonFiniteError
from rawadapt.train.builders import source_domains, supervised, target_pool
from rawadapt.train.stages import StepValues, SupervisedStage
from rawadapt.train.step import l1_loss

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.train.config import TrainConfig
    from rawadapt.train.context import TrainContext, TrainData
    from rawadapt.train.stages import Stage

#: tasks (source domains) per meta-update
META_TASKS = 2
#: inner gradient steps per task (MZSR meta-training: 5 at GPU scale)
INNER_STEPS = 2
#: inner learning rate α (MZSR: 0.01)
INNER_LR = 1e-2


def meta_iterations(iters: int, tasks: int = META_TASKS, inner_steps: int = INNER_STEPS) -> int:
    """Meta-updates whose cost is about ``iters`` forward/backward passes."""
    if iters <= 0:
        return 0
    return max(1, round(iters / (tasks * (inner_steps + 1))))


class MetaTransferStage(SupervisedStage):
    """First-order MAML over source domains (see the module docstring).

    Parameters
    ----------
    name, domains, iters, lr, optim, patch, batch, augment, seed
        See :class:`~rawadapt.train.stages.SupervisedStage`; ``lr`` is the meta (outer) LR.
    tasks, inner_steps, inner_lr
        Tasks per meta-update, inner steps per task and α.
    """

    def __init__(
        self,
        name: str,
        domains: Any,
        iters: int,
        *,
        lr: float,
        optim: Any,
        patch: int,
        batch: int,
        augment: bool = True,
        seed: int = 0,
        tasks: int = META_TASKS,
        inner_steps: int = INNER_STEPS,
        inner_lr: float = INNER_LR,
    ) -> None:
        super().__init__(
            name,
            domains,
            iters,
            lr=lr,
            optim=optim,
            patch=patch,
            batch=batch,
            augment=augment,
            seed=seed,
            rule="domain",
        )
        if tasks < 1 or inner_steps < 1 or not inner_lr > 0:
            raise ConfigError("meta-transfer needs tasks >= 1, inner_steps >= 1 and inner_lr > 0")
        self.tasks, self.inner_steps, self.inner_lr = int(tasks), int(inner_steps), float(inner_lr)

    def step(self, ctx: TrainContext, i: int) -> StepValues:

        lr = self.set_lr(ctx, i)
        model = ctx.model
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        theta = [p.detach().clone() for p in params]
        meta = [torch.zeros_like(p) for p in params]
        t_data = 0.0
        support_losses, query_losses, domains = [], [], []
        for _ in range(self.tasks):
            t0 = time.perf_counter()
            domain = self.choose_domain()
            support = self.samplers[domain].draw()
            query = self.samplers[domain].draw()
            t_data += time.perf_counter() - t0
            with torch.no_grad():
                for p, s in zip(params, theta):
                    p.copy_(s)
            for _k in range(self.inner_steps):
                loss = l1_loss(model, support, ctx.device)
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                with torch.no_grad():
                    for p, g in zip(params, grads):
                        if g is not None:
                            p.sub_(g, alpha=self.inner_lr)
                support_losses.append(float(loss.detach()))
            q = l1_loss(model, query, ctx.device)
            if not torch.isfinite(q):
                raise NonFiniteError(f"meta-transfer query loss became {float(q)}; lower the inner learning rate")
            grads = torch.autograd.grad(q, params, allow_unused=True)
            for m, g in zip(meta, grads):
                if g is not None:
                    m.add_(g)
            query_losses.append(float(q.detach()))
            domains.append(domain)
        assert ctx.optimizer is not None
        ctx.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for p, s, m in zip(params, theta, meta):
                p.copy_(s)
                p.grad = m / self.tasks
        if self.comm is not None:
            self.comm.average_gradients(model)
        if self.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, self.optim.grad_clip)
        ctx.optimizer.step()
        return {
            "loss": sum(query_losses) / len(query_losses),
            "support_loss": sum(support_losses) / max(1, len(support_losses)),
            "lr": lr,
            "data_time": t_data,
            "domain": ",".join(domains),
        }

    def finish(self, ctx: TrainContext) -> dict[str, Any]:
        return {
            **super().finish(ctx),
            "algorithm": "first-order MAML",
            "tasks": self.tasks,
            "inner_steps": self.inner_steps,
            "inner_lr": self.inner_lr,
        }


def build_mzsr(config: TrainConfig, data: TrainData) -> list[Stage]:
    """The three MZSR stages (module docstring)."""

    pool = target_pool(data)
    sources = source_domains(data)
    d = config.data
    stages: list[Stage] = []
    pre = config.stage_iters("pretrain")
    if pre > 0:
        stages.append(supervised(config, "source-pretrain", sources, pre))
    meta = meta_iterations(config.stage_iters("main"))
    if meta > 0:
        stages.append(
            MetaTransferStage(
                "meta-transfer",
                sources,
                meta,
                lr=config.resolved_finetune_lr(),
                optim=config.optim,
                patch=d.patch,
                batch=d.batch,
                augment=d.augment,
                seed=config.seed,
            )
        )
    fin = config.stage_iters("finetune")
    if fin > 0:
        stages.append(supervised(config, "target-finetune", pool, fin, lr=config.resolved_finetune_lr()))
    return stages


class MZSR(TrainedMethod):
    """MZSR-style meta-transfer learning (module docstring)."""

    name = "mzsr"
    description = "source pretraining, first-order MAML over source sensors, target fine-tuning"
    reference = "Soh et al. CVPR 2020 (MZSR); ADL paper Table 1 'MZSR'"
    strategy = "mzsr"
    spaces = ("raw", "srgb")

    def iterations(self) -> dict[str, int]:
        b = self.budget
        half = b.iters // 2
        return {"pretrain_iters": b.pretrain_iters + half, "iters": b.iters - half, "finetune_iters": b.finetune_iters}

    def info(self) -> dict[str, Any]:
        out = super().info()
        out["meta"] = {
            "tasks": META_TASKS,
            "inner_steps": INNER_STEPS,
            "inner_lr": INNER_LR,
            "meta_updates": meta_iterations(self.iterations()["iters"]),
        }
        return out
