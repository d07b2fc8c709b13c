"""ADL settings (ADL paper §3.1; the ADL paper lists what the paper leaves open).

Every choice the paper does not make is a field here, with its default justified below and in
the README's ADL section.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

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
    relative
        Queue criterion only (beyond the paper): Eval(V', θ) is the mean PSNR GAIN over θ0 (the
        model entering the stage) on the same images, Eval(V', θ) − Eval(V', θ0), instead of
        the absolute PSNR. The rule (accept iff above the mean of the M best values) is the
        paper's; what it removes is the image-difficulty variance between random subsets V':
        on synth the absolute PSNR of a 4-image V' varies by ±5 dB from draw to draw, so the
        queue fills with the PSNRs of easy subsets and later candidates are accepted only when
        an easy subset is drawn again (measured: 0-6 % acceptance per domain). θ0's per-image
        PSNRs are computed once, on the same validation crops. Measured (SonyA7S2, budget
        ``medium``, seed 0): it does NOT raise the acceptance (2.3 % vs 3.2 %; 42.87 dB either
        way): what starves the queue is its ratchet — the mean of the M best single-step results
        seen so far, each a maximum over noisy draws — more than the subset variance. Kept as
        an option for that diagnosis; off by default.
    gain_over_noisy
        Queue criterion only (beyond the paper): Eval(V', θ) is the mean PSNR gain over the NOISY
        input of the same images, so a draw of near-clean (easy, high-PSNR) images does not raise
        the bar for later draws; the noisy PSNRs need no network. Overrides ``relative``.
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
        What a reject restores. Default True: the parameters AND the optimizer state, so a
        rejected batch leaves no trace (θ_t = θ_{t−1} for the whole training state). False
        restores the parameters only — the paper's literal words ("we retrieve the network
        parameter") — and Adam's moments keep the rejected gradient: a rejected harmful batch
        then still pushes the next steps through the momentum (measured in
        tests/test_adl.py::test_harmful_domain_is_rejected: with parameters only, the black/
        misaligned harmful2 domain is accepted almost as often as clean ones, 7 % vs 10 %).
        The price of the default, measured on synth (SonyA7S2, budget ``medium``, paired
        criterion, seed 0): with β1 = 0.9 a candidate after a reject starts from the same
        restored moments, so it is ~90 % the rejected step again; acceptance fell to 1 % for a
        hundred iterations in a row (42.95 dB at the end; parameters only: 32 % accepted,
        43.30 dB; ``beta1=0``: 43.05 dB; noisy input 42.60 dB — all within the ±0.3 dB
        run-to-run spread).
    on_reject
        What a rejected iteration does after restoring θ_{t−1}. ``"restore"`` (the paper): nothing,
        the iteration is spent. ``"target-step"`` (beyond the paper): one plain step on a batch of
        T_train patches, so a rejection costs no target training — at CPU-scale budgets, where the
        paper's queue rejects ~99 % of candidates (BENCHMARKS.md), the adaptive stage otherwise
        idles and ADL trails training on the target alone by the steps it threw away. The
        accept/reject decision is unchanged; a harmful batch still leaves no trace.
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
    beta1
        Adam's first-moment coefficient during the adaptive stage (None = ``optim.betas[0]``).
        0 makes each candidate depend on S''s own gradient only (no stall after rejects, see
        ``restore_optimizer``), but a momentum-free Adam step is a noisy ±lr move of every
        weight: in the harmful-data test clean sources were then accepted only 4-6 % of the
        time and harmful2 no less often. Hence off by default.
    """

    model_config = ConfigDict(extra="forbid")

    criterion: Literal["queue", "paired", "none"] = "queue"
    relative: bool = False
    gain_over_noisy: bool = False
    queue_size: int = Field(default=8, ge=1)
    paired_margin: float = 0.0
    val_start: float = Field(default=0.2, gt=0.0, lt=1.0)
    val_end: float = Field(default=0.5, gt=0.0, lt=1.0)
    val_schedule: Literal["linear", "cosine", "fixed"] = "linear"
    validation: Literal["dynamic", "fixed"] = "dynamic"
    diverse_iso: Literal["auto"] | bool = "auto"
    diverse_iso_below: int = Field(default=10, ge=1)
    domain_sampling: Literal["uniform", "round-robin", "score"] = "uniform"
    explore: float = Field(default=0.2, ge=0.0, le=1.0)
    temperature: float = Field(default=0.5, gt=0.0)
    restore_optimizer: bool = True
    on_reject: Literal["restore", "target-step"] = "restore"
    target_batch: int = Field(default=8, ge=0)
    val_crop: int | None = Field(default=64, ge=8)
    grad_clip: float | None = None
    lr_factor: float = Field(default=1.0, gt=0.0)
    continue_optimizer: bool = True
    beta1: float | None = Field(default=None, ge=0.0, lt=1.0)

    @field_validator("val_end")
    @classmethod
    def _end_after_start(cls, v: float, info: ValidationInfo) -> float:
        start = info.data.get("val_start", 0.2)
        if v < start:
            raise ValueError(f"val_end ({v}) must be >= val_start ({start})")
        return v
