"""ADL settings (papers/001 §3.1; REFERENCE.md §1 lists what the paper leaves open).

Every choice the paper does not make is a field here, with its default justified below and in
the README's ADL section.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Harmful source domains (Table 5) are a data option shared by all strategies: DataConfig.harmful.


class ADLConfig(BaseModel):
    """Settings of ADL's source adaptive learning stage.

    Attributes
    ----------
    criterion
        ``"queue"``: the paper's eq. 2 — accept θ' iff Eval(V', θ') > mean of the queue Q of
        the M best PSNRs. ``"paired"`` (beyond the paper): accept iff θ' beats θ_{t−1} on the
        SAME V' by ``paired_margin`` dB, removing the subset-to-subset variance the queue works
        around. ``"none"``: accept every step (the "without ADL" ablation, Table 4).
    queue_size
        M. Not given by the paper. 8: large enough that one lucky V' does not set the bar,
        small enough that the bar follows the model's progress within a few dozen accepts.
    val_start, val_end, val_schedule
        |V'| grows from 20 % to 50 % of |T_adp| (the paper); the growth shape is not given:
        linear in the iteration by default.
    validation
        ``"dynamic"`` (the paper: a new random V' every iteration) or ``"fixed"`` (ablation
        "without dynamic validation": one V' of the initial size, drawn once).
    diverse_iso, diverse_iso_below
        Choose V' spanning diverse ISOs (system gains) when |T_adp| < 10 (the paper, after
        LED); ``"auto"`` applies that rule, True/False force it.
    domain_sampling, explore, temperature
        How the source domain S_i of an iteration is chosen: ``"uniform"`` (default; the paper
        says "some domain"), ``"round-robin"``, or ``"score"`` (beyond the paper: favour
        domains whose batches keep being accepted, with an exploration floor).
    restore_optimizer
        On a reject restore the optimizer state as well as the parameters (default): the
        rejected batch then leaves no trace, which is what θ_t = θ_{t−1} means for Adam.
    target_batch
        How many T_train patches are merged into each source batch (S' = T_train + S').
        The paper merges T_train; one patch from each of up to this many T_train images.
    val_crop
        Side (packed pixels) of the fixed centred crop of each target image used for
        validation; None = full images. 64 keeps an ADL iteration within 1.3x of a plain step
        at the CPU defaults (bench/bench_adl_cost.py).
    grad_clip
        Gradient-norm clip of the candidate step (None = off).
    lr_factor
        Peak LR of the adaptive stage = ``optim.lr * lr_factor``.
    continue_optimizer
        Stages 2 and 3 continue stage 1's AdamW state (Algorithm 1 is one optimisation) instead
        of starting fresh optimizers.
    """

    model_config = ConfigDict(extra="forbid")

    criterion: Literal["queue", "paired", "none"] = "queue"
    queue_size: int = Field(8, ge=1)
    paired_margin: float = 0.0
    val_start: float = Field(0.2, gt=0.0, lt=1.0)
    val_end: float = Field(0.5, gt=0.0, lt=1.0)
    val_schedule: Literal["linear", "cosine", "fixed"] = "linear"
    validation: Literal["dynamic", "fixed"] = "dynamic"
    diverse_iso: Literal["auto"] | bool = "auto"
    diverse_iso_below: int = Field(10, ge=1)
    domain_sampling: Literal["uniform", "round-robin", "score"] = "uniform"
    explore: float = Field(0.2, ge=0.0, le=1.0)
    temperature: float = Field(0.5, gt=0.0)
    restore_optimizer: bool = True
    target_batch: int = Field(8, ge=0)
    val_crop: int | None = Field(64, ge=8)
    grad_clip: float | None = None
    lr_factor: float = Field(1.0, gt=0.0)
    continue_optimizer: bool = True

    @field_validator("val_end")
    @classmethod
    def _end_after_start(cls, v: float, info):  # type: ignore[no-untyped-def]
        start = info.data.get("val_start", 0.2)
        if v < start:
            raise ValueError(f"val_end ({v}) must be >= val_start ({start})")
        return v
