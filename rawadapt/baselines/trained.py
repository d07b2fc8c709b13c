"""The training strategies (target-only, fine-tuning, joint, ADL and its variants) as benchmark
methods.

Every trained method takes the SAME number of optimisation steps from a :class:`Budget`:
ADL = ``pretrain_iters`` (target) + ``iters`` (adaptive) + ``finetune_iters`` (target);
fine-tuning = ``pretrain_iters + iters`` source steps + ``finetune_iters`` target steps;
target-only and joint = the total in one stage. A run that already finished in
``task.work_dir/<name>`` with the same config is reused; an interrupted one is resumed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rawadapt.baselines.base import Method, Task
from rawadapt.models.checkpoint import load_model
from rawadapt.models.inference import denoise_image
from rawadapt.train.api import METRICS_NAME, run_training
from rawadapt.train.config import config_diff, config_from_dict, deep_update, load_config, with_overrides
from rawadapt.train.engine import STATE_NAME
from rawadapt.train.step import sample_line

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.data.sample import Sample
    from rawadapt.train.config import TrainConfig


class Identity(Method):
    """The noisy input itself (the reference row of every table)."""

    name = "noisy"
    description = "noisy input (no denoising)"
    reference = "-"

    def denoise(self, sample: Sample) -> np.ndarray:
        return sample.noisy.astype(np.float32, copy=True)


class TrainedMethod(Method):
    """A :mod:`rawadapt.train` strategy run through :func:`rawadapt.train.api.run_training`."""

    strategy: ClassVar[str] = "finetune"
    uses_sources = True
    shows_progress = True
    #: nested config overrides of this variant (e.g. ``{"adl": {"criterion": "paired"}}``)
    overrides: ClassVar[dict[str, Any]] = {}

    def __init__(self, budget: Any = None, **options: Any) -> None:
        super().__init__(budget, **options)
        self.model: Any = None
        self.metrics: dict[str, Any] = {}
        self.run_dir: Any = None

    def iterations(self) -> dict[str, int]:
        """Stage iterations under the budget (see the module docstring)."""
        b = self.budget
        total = b.pretrain_iters + b.iters + b.finetune_iters
        if self.strategy == "adl":
            return {"pretrain_iters": b.pretrain_iters, "iters": b.iters, "finetune_iters": b.finetune_iters}
        if self.strategy == "finetune":
            return {"pretrain_iters": b.pretrain_iters + b.iters, "iters": b.iters, "finetune_iters": b.finetune_iters}
        return {"iters": total}

    def config(self, task: Task) -> TrainConfig:
        """The run configuration of this method on ``task``."""

        b = self.budget
        real_sources = sorted(d for d in task.data.sources if not d.startswith("harmful"))
        base: dict[str, Any] = {
            "strategy": self.strategy,
            "seed": task.seed,
            "threads": task.threads,
            "precision": task.precision,
            "data": {
                "data": task.data_spec,
                "target": task.target,
                "target_pairs": task.target_pairs,
                "test_pairs": task.test_pairs,
                "sources": (real_sources or None) if task.extra.get("real_sources", True) else None,
                "patch": b.patch,
                "batch": b.batch,
                "eval_tile": b.eval_tile,
                "harmful": list(task.extra.get("harmful", [])),
                "harmful_count": int(task.extra.get("harmful_count", 32)),
                "harmful_label": task.extra.get("harmful_label", "own"),
                "real_sources": bool(task.extra.get("real_sources", True)),
            },
            "model": {"arch": "unet", "kwargs": {"width": b.width, "depth": b.depth}},
            "optim": {"lr": b.lr},
            "eval_every": 0,
            "tensorboard": False,
            "log_every": 50,
            "checkpoint_every": 250,
            **self.iterations(),
        }
        base = deep_update(base, self.overrides)
        base = deep_update(base, self.options.get("config", {}))
        return config_from_dict(base, source=f"method {self.name}")

    def fit(self, task: Task) -> None:

        cfg = self.config(task)
        run = task.work_dir / self.name
        self.run_dir = run
        done = (run / METRICS_NAME).is_file() and (run / "config.yaml").is_file()
        if done and not config_diff(load_config(run / "config.yaml"), cfg):
            import json

            self.metrics = json.loads((run / METRICS_NAME).read_text())
        else:
            if done or (run.exists() and not (run / STATE_NAME).is_file()):
                import shutil

                shutil.rmtree(run)  # a stale run with another config: start over
            resume = (run / STATE_NAME).is_file()
            self.metrics = run_training(
                cfg, run, resume=resume, progress=bool(self.options.get("progress", False)), dataset=task.dataset
            )
        self.model, _ = load_model(run)

    def denoise(self, sample: Sample) -> np.ndarray:

        return denoise_image(
            self.model,
            sample.noisy,
            sensor=sample.sensor,
            iso=sample.effective_iso,
            cfa=sample.cfa,
            tile=self.budget.eval_tile,
            noise=sample_line(sample),
        )

    def info(self) -> dict[str, Any]:
        out = super().info()
        out["strategy"] = self.strategy
        out["iterations"] = self.iterations()
        out["run_dir"] = None if self.run_dir is None else str(self.run_dir)
        stages = self.metrics.get("stages", {})
        if "adaptive" in stages:
            out["adl"] = stages["adaptive"]
        return out


class TargetOnly(TrainedMethod):
    name = "target-only"
    description = "U-Net trained on the target pool only"
    reference = "ADL paper §4.1 (baseline)"
    strategy = "target-only"
    uses_sources = False


class FineTune(TrainedMethod):
    name = "finetune"
    description = "pretrain on all source sensors, fine-tune on the target pool"
    reference = "ADL paper Table 1 'Fine-tuning'"
    strategy = "finetune"


class FineTuneEqualTarget(FineTune):
    name = "finetune-eqt"
    description = "fine-tuning with as many target steps as target-only has in all (more steps in total)"
    reference = "rawadapt (benchmark v2: the equal-target-steps split)"

    def iterations(self) -> dict[str, int]:
        b = self.budget
        total = b.pretrain_iters + b.iters + b.finetune_iters
        return {"pretrain_iters": b.pretrain_iters + b.iters, "iters": b.iters, "finetune_iters": total}


class ZooTargetOnly(TargetOnly):
    name = "zoo-ft"
    description = (
        "the shipped zoo model of the task's space (raw-unet-any, srgb-unet-m) fine-tuned on the target pairs "
        "(target-only steps)"
    )
    reference = "rawadapt model zoo (train --init zoo:NAME)"

    def config(self, task: Task) -> TrainConfig:
        """The target-only run, started from the space's zoo model
        (:data:`rawadapt.models.zoo.DEFAULT_MODELS`) with ITS network settings (the budget's
        width/depth do not apply: the weights fix the architecture)."""
        from rawadapt.models.zoo import DEFAULT_MODELS
        from rawadapt.train.init import init_model_settings

        ref = DEFAULT_MODELS[task.space]
        overrides = {"init": ref, "model": init_model_settings(ref)}
        return with_overrides(super().config(task), overrides, source=f"method {self.name}")


class ZooTargetOnlyLowLR(ZooTargetOnly):
    name = "zoo-ft-low"
    description = "zoo-ft at a tenth of the budget's learning rate (a pretrained start)"
    reference = "rawadapt model zoo (train --init zoo:NAME, fine-tuning learning rate)"
    #: the budget's learning rate is set for training from scratch; a pretrained start is
    #: fine-tuned more gently (a tenth: below the fine-tuning stages' ``finetune_lr_factor`` of
    #: 0.5, which follow source pretraining on the same budget, not a converged model)
    lr_factor = 0.1

    def config(self, task: Task) -> TrainConfig:
        """:class:`ZooTargetOnly`'s configuration with ``optim.lr`` times :attr:`lr_factor`."""
        cfg = super().config(task)
        return with_overrides(cfg, {"optim": {"lr": cfg.optim.lr * self.lr_factor}}, source=f"method {self.name}")


class Joint(TrainedMethod):
    name = "joint"
    description = "sources and target pool mixed in every batch"
    reference = "rawadapt (plain joint training)"
    strategy = "joint"


class ADL(TrainedMethod):
    name = "adl"
    description = "ADL, the paper's queue criterion"
    reference = "ADL paper Algorithm 1"
    strategy = "adl"


class ADLPaired(ADL):
    name = "adl-paired"
    description = "ADL, paired criterion (θ' vs θ_{t-1} on the same V')"
    reference = "rawadapt extension of Algorithm 1"
    overrides = {"adl": {"criterion": "paired"}}


class ADLScore(ADL):
    name = "adl-score"
    description = "ADL (paired) with score-based source-domain sampling"
    reference = "rawadapt extension of Algorithm 1"
    overrides = {"adl": {"criterion": "paired", "domain_sampling": "score"}}


class ADLNoADL(ADL):
    name = "adl-no-adl"
    description = "ablation: every source step accepted"
    reference = "ADL paper Table 4 (no ADL)"
    overrides = {"adl": {"criterion": "none"}}


class ADLNoISO(ADL):
    name = "adl-no-iso"
    description = "ablation: modulation without ISO"
    reference = "ADL paper Table 4 (no ISO)"
    overrides = {"model": {"kwargs": {"use_iso": False}}}


class ADLNoType(ADL):
    name = "adl-no-type"
    description = "ablation: modulation without sensor type"
    reference = "ADL paper Table 4 (no type)"
    overrides = {"model": {"kwargs": {"use_sensor": False}}}


class ADLNoise(ADL):
    name = "adl-noise"
    description = "conditioning: type + ISO + the image's noise parameters (profile's a, b)"
    reference = "rawadapt extension of ADL §3.2 (metadata vector extended)"
    overrides = {"model": {"kwargs": {"use_noise": True}}}


class ADLKSigma(ADL):
    name = "adl-ksigma"
    description = "conditioning: type + ISO + noise parameters, input k-sigma transformed"
    reference = "PMRID §3.2 k-sigma transform on ADL"
    overrides = {"model": {"kwargs": {"use_noise": True, "ksigma": True}}}


class ADLStratified(ADL):
    name = "adl-stratified"
    description = "ADL, V' stratified by ISO at every pool size (the paper: only when |T_adp| < 10)"
    reference = "rawadapt extension of the ADL paper's validation draw"
    overrides = {"adl": {"diverse_iso": True}}


class ADLGain(ADL):
    name = "adl-gain"
    description = "ADL, queue of PSNR gains over the noisy input (an easy V' draw does not raise the bar)"
    reference = "rawadapt extension of Algorithm 1's queue"
    overrides = {"adl": {"gain_over_noisy": True}}


class ADLTargetStep(ADL):
    name = "adl-ts"
    description = "ADL, a rejected candidate is replaced by a plain step on T_train (no wasted iteration)"
    reference = "rawadapt extension of Algorithm 1 (on_reject=target-step)"
    overrides = {"adl": {"on_reject": "target-step"}}


class ADLPairedTargetStep(ADL):
    name = "adl-paired-ts"
    description = "ADL, paired criterion, a rejected candidate is replaced by a plain step on T_train"
    reference = "rawadapt extension of Algorithm 1 (criterion=paired, on_reject=target-step)"
    overrides = {"adl": {"criterion": "paired", "on_reject": "target-step"}}


class ADLNoMod(ADL):
    name = "adl-no-mod"
    description = "conditioning: none (no modulation at all)"
    reference = "ADL paper Table 4 (neither type nor ISO)"
    overrides = {"model": {"kwargs": {"use_sensor": False, "use_iso": False}}}


class ADLNoPretrain(ADL):
    name = "adl-no-pretrain"
    description = "ablation: no target pretraining (its steps go to the adaptive stage)"
    reference = "ADL paper Table 4 (no Pre)"

    def iterations(self) -> dict[str, int]:
        b = self.budget
        return {"pretrain_iters": 0, "iters": b.pretrain_iters + b.iters, "finetune_iters": b.finetune_iters}


class ADLFixedVal(ADL):
    name = "adl-fixed-val"
    description = "ablation: fixed instead of dynamic validation set"
    reference = "ADL paper Table 4 (no Dyn)"
    overrides = {"adl": {"validation": "fixed"}}
