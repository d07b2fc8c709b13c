"""A supervised stage that trains only some parameters (AIN transfer, LED fine-tuning).

:class:`PartialStage` sets ``requires_grad`` from a predicate on parameter NAMES before the
stage's fresh AdamW is built (:func:`rawadapt.train.schedule.make_optimizer` takes the
trainable parameters only, so frozen ones get neither updates nor weight decay), and restores
``requires_grad=True`` everywhere when the stage finishes. ``on_setup`` runs on the model
first (e.g. LED switching its OMNR branches on); it must be idempotent, because a resumed run
calls ``setup`` again on weights that already went through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rawadapt.errors import ConfigError
from rawadapt.train.stages import SupervisedStage

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.data.sample import Sample
    from rawadapt.train.config import OptimConfig
    from rawadapt.train.context import TrainContext

NamePredicate = Callable[[str], bool]


class PartialStage(SupervisedStage):
    """:class:`~rawadapt.train.stages.SupervisedStage` over the parameters ``trainable(name)``.

    Parameters
    ----------
    name, domains, iters, lr, optim, patch, batch, augment, seed
        See :class:`~rawadapt.train.stages.SupervisedStage`.
    trainable
        Predicate on ``model.named_parameters()`` names.
    what
        Short description of the trainable set (recorded in the stage summary).
    on_setup
        Called with the model before the optimizer is built (idempotent).
    """

    def __init__(
        self,
        name: str,
        domains: Mapping[str, Sequence[Sample]],
        iters: int,
        *,
        lr: float,
        optim: OptimConfig,
        patch: int,
        batch: int,
        trainable: NamePredicate,
        what: str = "",
        augment: bool = True,
        seed: int = 0,
        on_setup: Callable[[Any], None] | None = None,
    ) -> None:
        super().__init__(name, domains, iters, lr=lr, optim=optim, patch=patch, batch=batch, augment=augment, seed=seed)
        self.trainable = trainable
        self.what = what
        self.on_setup = on_setup
        self.n_trainable = 0

    def setup(self, ctx: TrainContext) -> None:
        if self.on_setup is not None:
            self.on_setup(ctx.model)
        names = []
        for name, p in ctx.model.named_parameters():
            keep = bool(self.trainable(name))
            p.requires_grad_(keep)
            if keep:
                names.append(name)
        if not names:
            raise ConfigError(
                f"stage {self.name!r}: no parameter matches the trainable set ({self.what or 'predicate'})"
            )
        self.n_trainable = sum(p.numel() for p in ctx.model.parameters() if p.requires_grad)
        super().setup(ctx)

    def finish(self, ctx: TrainContext) -> dict[str, Any]:
        for p in ctx.model.parameters():
            p.requires_grad_(True)
        total = sum(p.numel() for p in ctx.model.parameters())
        return {
            **super().finish(ctx),
            "trainable": self.what,
            "trainable_parameters": self.n_trainable,
            "total_parameters": total,
        }
