"""Calibration-related baselines of the ADL paper §4.3: calibration-based training (Table 2(a)),
LED's calibration-free virtual-camera pipeline (Table 2(b)) and PMN's learnability enhancement
composed with ADL (Table 3). RAW only: their noise models are physical (raw digital numbers).

``calib-ft`` / ``calib-adl`` (Table 2(a): "Single FT" and "Multiple ADL")
    A Poisson-Gaussian profile is calibrated on the TARGET POOL pairs
    (:mod:`rawadapt.baselines.pool_calibration`, the Zhang et al. / ELD recipe: K and read
    noise per ISO, K(ISO) and the read-noise regression across ISOs). Stage ``calib-pretrain``
    trains on pairs synthesised from it on the fly (:mod:`rawadapt.baselines.synthetic_pairs`:
    clean images of the sources and of the pool, the pool's ISO range and exposure ratios,
    labelled as the target sensor) for ``pretrain_iters + iters`` steps — the "noise
    calibration model" θ0. Then

    * ``calib-ft``: fine-tune on the target pool (``finetune_iters``; the paper's "Single":
      only the target sensor's real data);
    * ``calib-adl``: the paper's reading "apply ADL to fine-tune the existing noise calibration
      model with cross-domain data": ADL's target pretraining is REPLACED by the calibration
      pretraining (θ0 = calibration model), followed by ADL's own source adaptive learning on
      the real source domains (``iters``) and target fine-tuning (``finetune_iters``), taken
      from :func:`rawadapt.train.adl_stage.build_adl` so every ADL setting of the run applies.
      Both share the identical θ0 (same seed, same stage), so their difference is the paper's
      FT vs ADL.

``led`` (Jin et al. ICCV 2023; :mod:`rawadapt.baselines.led_net`)
    ``led-pretrain``: ``pretrain_iters + iters`` steps on pairs from 5 virtual cameras covering
    the DSLR profile family (one camera per batch, each with its camera-specific alignment);
    then the target alignment := mean of the cameras' and the two fine-tuning stages on the
    target pool: ``led-align`` (target alignment only, 2/3 of ``finetune_iters``, pretraining
    LR) and ``led-omnr`` (target alignment + the zero-initialised out-of-model-noise branches,
    the rest, LR / 10). The fitted model is reparameterised into a plain U-Net
    (:meth:`~rawadapt.baselines.led_net.LEDUNet.deploy`). Calibration-free: the target's noise
    is never estimated; only its exposure ratios (metadata) set the simulated brightness.

``pmn`` (Feng et al. TPAMI 2023; :mod:`rawadapt.baselines.sna`)
    ADL — the very stages of :func:`rawadapt.train.adl_stage.build_adl`, same settings and
    iterations as ``adl`` — with PMN's shot-noise augmentation of the target-pool patches
    (target pretraining, T_train patches of the adaptive stage, target fine-tuning; wrapped by
    :func:`with_sna`), using the gain calibrated on the pool. V' is not augmented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rawadapt.baselines import led_net
from rawadapt.baselines.partial_stage import PartialStage
from rawadapt.baselines.pool_calibration import calibrate_pool
from rawadapt.baselines.sna import SNAPatchSampler
from rawadapt.baselines.synthetic_pairs import ProfileNoise, SyntheticStage, clean_pool, require_raw
from rawadapt.baselines.trained import TrainedMethod
from rawadapt.errors import ConfigError
from rawadapt.train.adl_stage import AdaptiveStage, build_adl
from rawadapt.train.builders import supervised, target_pool
from rawadapt.train.stages import SupervisedStage

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.baselines.base import Task
    from rawadapt.baselines.pool_calibration import PoolCalibration
    from rawadapt.train.config import TrainConfig
    from rawadapt.train.context import TrainContext, TrainData
    from rawadapt.train.stages import Stage

#: share of LED's fine-tuning steps spent on the alignment alone (LED: 1000 of 1500)
LED_ALIGN_FRACTION = 2 / 3
#: LR of LED's OMNR stage relative to the alignment stage (LED: 1e-5 vs 1e-4)
LED_OMNR_LR_FACTOR = 0.1


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


def calibrate_target(data: TrainData) -> PoolCalibration:
    """The noise profile calibrated on the target pool of ``data``."""

    require_raw(data, "calibration-based training")
    pool = target_pool(data)
    assert data.target is not None
    return calibrate_pool(list(pool[data.target]), name=f"{data.target}-calibrated")


def calib_pretrain_stage(config: TrainConfig, data: TrainData, cal: PoolCalibration) -> Stage:
    """``calib-pretrain``: synthetic pairs from the calibrated profile, labelled as the target."""

    assert data.target is not None
    noise = ProfileNoise(cal.profile, label=data.target, info={"calibration": cal.summary()})
    d = config.data
    return SyntheticStage(
        "calib-pretrain",
        clean_pool(data),
        noise,
        config.stage_iters("pretrain"),
        lr=config.optim.lr,
        optim=config.optim,
        patch=d.patch,
        batch=d.batch,
        augment=d.augment,
        seed=config.seed,
    )


# --------------------------------------------------------------------------------------------
# calib-ft, calib-adl
# --------------------------------------------------------------------------------------------


def build_calib_ft(config: TrainConfig, data: TrainData) -> list[Stage]:
    """Calibration pretraining, then fine-tuning on the target pool."""

    cal = calibrate_target(data)
    stages = [calib_pretrain_stage(config, data, cal)]
    fin = config.stage_iters("finetune")
    if fin > 0:
        stages.append(supervised(config, "target-finetune", target_pool(data), fin, lr=config.resolved_finetune_lr()))
    return stages


def build_calib_adl(config: TrainConfig, data: TrainData) -> list[Stage]:
    """Calibration pretraining (θ0), then ADL's own adaptive and fine-tuning stages
    (:func:`rawadapt.train.adl_stage.build_adl`, with every ADL setting of the run) on the real
    sources: ADL's target pretraining is replaced by the calibration pretraining."""

    cal = calibrate_target(data)
    adl = [st for st in build_adl(config, data) if st.name != "target-pretrain"]
    return [calib_pretrain_stage(config, data, cal), *adl]


# --------------------------------------------------------------------------------------------
# LED
# --------------------------------------------------------------------------------------------


def led_split(finetune_iters: int) -> tuple[int, int]:
    """(align, omnr) iterations of LED's fine-tuning."""
    align = round(LED_ALIGN_FRACTION * finetune_iters)
    return align, finetune_iters - align


def build_led(config: TrainConfig, data: TrainData) -> list[Stage]:
    """Virtual-camera pretraining, then LED's two fine-tuning stages."""

    require_raw(data, "LED")
    if config.model.arch != "led-unet":
        raise ConfigError(f"strategy 'led' needs model.arch 'led-unet', got {config.model.arch!r}")
    cameras = int(config.model.kwargs.get("cameras", led_net.DEFAULT_CAMERAS))
    pool = target_pool(data)
    assert data.target is not None
    ratios = sorted({float(s.ratio or 1.0) for s in pool[data.target]})
    family = led_net.VirtualFamily.from_profiles()
    noise = led_net.VirtualCameraNoise(family.cameras(cameras), family, ratios=ratios, label=data.target)
    d = config.data
    common: dict[str, Any] = {
        "optim": config.optim,
        "patch": d.patch,
        "batch": d.batch,
        "augment": d.augment,
        "seed": config.seed,
    }
    align, omnr = led_split(config.stage_iters("finetune"))

    class LEDPretrain(SyntheticStage):
        def finish(self, ctx: TrainContext) -> dict[str, Any]:
            ctx.model.generalize()  # type: ignore[operator]  # LED: target alignment := camera mean
            return super().finish(ctx)

    def target_align(name: str) -> bool:
        return led_net.is_target_align(name, cameras)

    def align_or_aux(name: str) -> bool:
        return led_net.is_target_align(name, cameras) or led_net.is_aux(name)

    stages: list[Stage] = [
        LEDPretrain(
            "led-pretrain", clean_pool(data), noise, config.stage_iters("pretrain"), lr=config.optim.lr, **common
        )
    ]
    if align > 0:
        stages.append(
            PartialStage(
                "led-align",
                pool,
                align,
                lr=config.optim.lr,
                trainable=target_align,
                what="target camera-specific alignment (LED)",
                **common,
            )
        )
    if omnr > 0:
        stages.append(
            PartialStage(
                "led-omnr",
                pool,
                omnr,
                lr=config.optim.lr * LED_OMNR_LR_FACTOR,
                trainable=align_or_aux,
                on_setup=lambda m: m.enable_aux(True),
                what="target alignment + out-of-model-noise branches (LED)",
                **common,
            )
        )
    return stages


# --------------------------------------------------------------------------------------------
# PMN (ADL + shot-noise augmentation)
# --------------------------------------------------------------------------------------------


def with_sna(stage: Stage, gain: Any, info: dict[str, Any]) -> Stage:
    """``stage`` (an ADL stage) with PMN's shot-noise augmentation on its target-pool sampler(s):
    the samplers a supervised target stage builds in ``setup``, or the T_train sampler of the
    adaptive stage (its validation set V' stays real). The samplers are replaced right after
    ``setup``, sharing their generators, so the stage's state and resume are unchanged."""

    setup, finish = stage.setup, stage.finish

    def setup_sna(ctx: TrainContext) -> None:
        setup(ctx)
        if isinstance(stage, AdaptiveStage):
            learner = stage.learner
            learner.target_sampler = SNAPatchSampler.from_sampler(learner.target_sampler, gain)
        else:
            assert isinstance(stage, SupervisedStage), f"stage {stage.name!r} has no samplers"
            stage.samplers = {k: SNAPatchSampler.from_sampler(s, gain) for k, s in stage.samplers.items()}

    def finish_sna(ctx: TrainContext) -> dict[str, Any]:
        return {**finish(ctx), **info}

    stage.setup = setup_sna  # type: ignore[method-assign]
    stage.finish = finish_sna  # type: ignore[method-assign]
    return stage


def build_pmn(config: TrainConfig, data: TrainData) -> list[Stage]:
    """ADL's stages (:func:`rawadapt.train.adl_stage.build_adl`, every ADL setting of the run)
    with PMN's shot-noise augmentation of every target-pool patch."""

    cal = calibrate_target(data)
    info = {"sna": "PMN shot-noise augmentation (p=0.75, u in {0.25, 0.5})", "calibration": cal.summary()}
    return [with_sna(st, cal.normalised_gain, info) for st in build_adl(config, data)]


# --------------------------------------------------------------------------------------------
# Registration and methods
# --------------------------------------------------------------------------------------------


class _RawOnly(TrainedMethod):
    spaces = ("raw",)

    def check_task(self, task: Task) -> None:
        if task.space != "raw":
            raise ConfigError(
                f"method {self.name!r} needs RAW data: its noise model is physical (shot + read noise "
                f"in raw digital numbers) and does not describe sRGB images; use it on a RAW "
                f"dataset (got space {task.space!r})"
            )
        super().check_task(task)


class CalibFineTune(_RawOnly):
    """Calibration-based training, fine-tuned on the target pool (module docstring)."""

    name = "calib-ft"
    description = "pretrain on pairs from a profile calibrated on the target pool, fine-tune on the pool"
    reference = "ADL paper §4.3 / Table 2(a) 'Single FT' (calibration after Zhang et al. ICCV 2021)"
    strategy = "calib-ft"
    uses_sources = True  # the sources' CLEAN images feed the synthesis

    def iterations(self) -> dict[str, int]:
        b = self.budget
        return {"pretrain_iters": b.pretrain_iters + b.iters, "iters": b.iters, "finetune_iters": b.finetune_iters}


class CalibADL(CalibFineTune):
    """Calibration model θ0 refined by ADL with the real sources (module docstring)."""

    name = "calib-adl"
    description = "calibration pretraining as θ0, then ADL (adaptive source learning + target fine-tuning)"
    reference = "ADL paper §4.3 / Table 2(a) 'Multiple ADL'"
    strategy = "calib-adl"


class LED(_RawOnly):
    """LED-style virtual-camera pretraining and few-pair fine-tuning (module docstring)."""

    name = "led"
    description = "pretrain on 5 virtual cameras (LED), fine-tune alignment + OMNR branches on the pool"
    reference = "Jin et al. ICCV 2023 (LED); ADL paper §4.3 / Table 2(b)"
    strategy = "led"
    uses_sources = True  # the sources' CLEAN images feed the synthesis
    overrides: ClassVar[dict[str, Any]] = {"model": {"arch": "led-unet"}}

    def iterations(self) -> dict[str, int]:
        b = self.budget
        return {"pretrain_iters": b.pretrain_iters + b.iters, "iters": b.iters, "finetune_iters": b.finetune_iters}

    def fit(self, task: Task) -> None:
        super().fit(task)
        self.model = self.model.deploy()  # exact reparameterisation into a plain U-Net


class PMN(_RawOnly):
    """ADL + PMN's shot-noise augmentation (module docstring)."""

    name = "pmn"
    description = "ADL with PMN's shot-noise augmentation of target-pool patches (calibrated gain)"
    reference = "Feng et al. TPAMI 2023 (PMN); ADL paper Table 3 'Ours+PMN'"
    strategy = "pmn"

    def iterations(self) -> dict[str, int]:
        b = self.budget
        return {"pretrain_iters": b.pretrain_iters, "iters": b.iters, "finetune_iters": b.finetune_iters}
