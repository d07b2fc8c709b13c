"""The training configuration: one validated YAML file fully describes a run.

The full resolved configuration (defaults filled in, CLI overrides applied) is written to
``RUN/config.yaml`` when a run starts, so a run folder alone is enough to reproduce, resume or
re-evaluate it (BasicSR's habit). Every section forbids unknown keys: a typo is an error, never a
silently ignored setting.

Defaults are sized for a 2-core CPU (minutes per run); the paper's GPU-scale settings are noted
next to each field and in ``docs/training.md``.

This module imports neither torch nor the strategies' code at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rawadapt.errors import ConfigError
from rawadapt.train.strategies import STRATEGIES
from rawadapt.utils.settings import condense  # noqa: F401  (re-exported)

#: model arguments the engine derives from the data; users must not set them
ENGINE_MODEL_ARGS = ("in_channels", "sensors")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """What the run trains and tests on.

    Attributes
    ----------
    data
        Dataset spec for :func:`rawadapt.data.registry.open_dataset` (``"synth"``,
        ``"synth-srgb"``, ``"polyu:PATH"``, a folder...).
    target
        The new sensor (held out: only ``target_pairs`` of its pairs are trained on). Required by
        every strategy except ``pretrain``, where it is optional and, if given, excluded.
    target_pairs
        Size of the target pool T_adp (the paper's ~20 pairs).
    test_pairs
        Cap on the target test set (None = all of the target's test records).
    sources
        Source sensors to use (None = every other sensor of the dataset). For ``pretrain``: the
        sensors to pretrain on.
    patch
        Training patch side (packed pixels for RAW; the paper uses 256 at GPU scale).
    batch
        Patches per batch.
    augment
        Random flips/transposes (CFA-aware for RAW).
    mixing
        How multi-domain stages (``pretrain``, the source stage of ``finetune``) compose a batch:
        ``"domain"`` draws each batch from ONE uniformly chosen domain (every sensor weighs the
        same whatever its size, and a batch never mixes noise models: the paper's "batch S' from
        one source domain"); ``"pooled"`` draws patches uniformly from all images of all domains.
    target_fraction
        ``joint`` only: the share of each batch taken from the target pool (the rest comes from
        one randomly chosen source domain).
    eval_tile
        Tile side for validation/test inference (None = whole images).
    harmful
        Extra harmful source domains mixed into the sources of ANY strategy that uses sources
        (``harmful1``: bright clean images + Gaussian sigma = 30/255; ``harmful2``: misaligned
        pairs), the ADL paper's Table 5 protocol (``--add-harmful harmful1,harmful2``).
    harmful_count, harmful_size
        Pairs per harmful domain and their side (packed pixels for RAW; None = 2 x patch).
    real_sources
        False: the dataset's other sensors are NOT sources; the only sources are the ``harmful``
        domains (the ADL paper's Table 5: base = the target's pairs only, ``+harmful`` = the
        harmful set as the only source).
    harmful_label
        The sensor type the harmful pairs carry: ``"own"`` (their own label, e.g. ``harmful2``:
        the modulation can tell them apart and confine the damage to that label) or
        ``"target"`` (they claim the target's type, like a mislabelled dataset of the same
        camera: the setting in which the ADL paper's Table 5 shows what harm is).
    """

    data: str = "synth"
    target: str | None = None
    target_pairs: int = Field(default=20, ge=1)
    test_pairs: int | None = Field(default=None, ge=1)
    sources: list[str] | None = None
    patch: int = Field(default=64, ge=4)
    batch: int = Field(default=8, ge=1)
    augment: bool = True
    mixing: Literal["domain", "pooled"] = "domain"
    target_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    eval_tile: int | None = Field(default=None, ge=16)
    harmful: list[Literal["harmful1", "harmful2"]] = Field(default_factory=list)
    harmful_count: int = Field(default=32, ge=1)
    harmful_size: int | None = Field(default=None, ge=8)
    harmful_label: Literal["own", "target"] = "own"
    real_sources: bool = True

    @field_validator("sources")
    @classmethod
    def _sources_unique(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("an empty source list; use null for 'all other sensors'")
            if len(set(v)) != len(v):
                raise ValueError("duplicate source sensors")
        return v


class ModelConfig(_Section):
    """The network. ``arch`` is a key of :data:`rawadapt.models.registry.MODELS`; ``kwargs`` go to
    its constructor (e.g. ``{width: 16, depth: 4, use_sensor: true, use_iso: true}`` for the
    U-Net, ``{depth: 10, width: 32}`` for DnCNN). ``in_channels`` and the sensor vocabulary are
    set by the engine from the data (vocabulary = sorted source sensors + target).

    ``identity_init`` scales the last layer of residual models (all built-in backbones predict
    ``x + f(x)`` or ``x - f(x)``) by ``last_layer_scale``, so training starts NEAR the identity,
    i.e. near the noisy input's PSNR, instead of from a random offset the first hundreds of
    iterations would spend undoing (cf. the zero-init residual trick of Goyal et al. 2017; the
    modulation MLPs start at the identity for the same reason). The scale is 0.1, not 0: with an
    exactly zero last layer no gradient reaches the other layers until that layer has grown,
    which at Adam's ~lr per step wastes the first ~100 iterations (measured on synth G4, U-Net
    w16/d4, lr 1e-3: PSNR at step 100 = noisy + 0.0 dB with 0, + 0.9 dB with 0.1).
    ``identity_init`` off = the backbone's default initialisation.
    """

    arch: str = "unet"
    kwargs: dict[str, Any] = Field(default_factory=dict)
    identity_init: bool = True
    last_layer_scale: float = Field(default=0.1, ge=0.0, le=1.0)

    @field_validator("kwargs")
    @classmethod
    def _no_engine_args(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in ENGINE_MODEL_ARGS if k in v]
        if bad:
            raise ValueError(f"{', '.join(bad)} are set from the data by the engine; remove them")
        return v


class OptimConfig(_Section):
    """AdamW and its learning-rate schedule (each stage gets a FRESH optimizer and schedule).

    Attributes
    ----------
    lr
        Peak learning rate. CPU default 1e-3 suits the small default networks and short runs; the
        ADL paper uses 3e-3 with AdamW over 300k iterations at 256x256 on GPUs.
    weight_decay
        AdamW's decoupled weight decay (small: denoisers are not strongly over-parameterised
        for their data here, and torch's 1e-2 default visibly slows short runs).
    betas
        Adam's moment coefficients.
    schedule
        ``"cosine"``: linear warmup then cosine decay to ``lr * min_lr_factor`` at the stage's
        last iteration; ``"constant"``: warmup then flat.
    warmup
        Linear warm-up iterations at the start of each stage (clipped to the stage length).
    min_lr_factor
        Final LR of the cosine schedule as a fraction of the peak.
    grad_clip
        Clip the global gradient norm to this value (None = no clipping).
    """

    lr: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup: int = Field(default=0, ge=0)
    min_lr_factor: float = Field(default=0.01, ge=0.0, le=1.0)
    grad_clip: float | None = Field(default=None, gt=0.0)

    @field_validator("betas")
    @classmethod
    def _betas_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in v):
            raise ValueError("betas must lie in [0, 1)")
        return v


from rawadapt.train.adl_config import ADLConfig  # noqa: E402  (the adl strategy's settings)


class TrainConfig(_Section):
    """A complete training run.

    Attributes
    ----------
    strategy
        A key of :data:`rawadapt.train.strategies.STRATEGIES` (``pretrain``, ``target-only``,
        ``finetune``, ``joint``, ``adl``...).
    seed
        Seeds the model initialisation, every sampler and the split (same seed = same weights).
    device
        ``"cpu"`` or a torch device string (``"cuda"``, ``"cuda:1"``).
    threads
        ``torch.set_num_threads`` (None = torch's default). Bit-exact resume needs the same value.
    precision
        ``"auto"`` (bf16 autocast where the CPU has AMX/AVX512-BF16 or on CUDA, else fp32),
        ``"fp32"`` or ``"bf16"``; see :mod:`rawadapt.utils.compute`. The resolved choice and the
        CPU's flags are written into ``metrics.json`` and ``model.json``. Bit-exact resume needs
        the same resolved precision.
    iters
        Iterations of the strategy's main stage (``pretrain``, ``target-only``, ``joint``; the
        source pretraining of ``finetune`` unless ``pretrain_iters`` is set; ADL's adaptive stage).
    pretrain_iters
        Iterations of a strategy's first (pretraining) stage (None = ``iters``): the source
        pretraining of ``finetune``, ADL's target pretraining.
    finetune_iters
        Iterations of the target fine-tuning stage of ``finetune`` (and ADL) (None = ``iters``).
    finetune_lr
        Peak LR of fine-tuning stages (None = ``optim.lr * finetune_lr_factor``).
    finetune_lr_factor
        Fine-tuning starts from a trained network, so it restarts at a lower peak LR by default.
    eval_every
        Validate on the test set every this many global iterations (0 = only at the end). Report
        only: checkpoints are never selected on the test set.
    eval_images
        Cap on the images used by the periodic validation (None = all); the final evaluation always
        uses the whole test set.
    log_every
        Write a line to ``log.csv`` (and the console/TensorBoard) every this many iterations.
    checkpoint_every
        Save the resumable training state every this many iterations (and at every stage end).
    tensorboard
        Also log to ``RUN/tb`` when the ``tensorboard`` package is installed (silently skipped
        otherwise).
    adl
        The ADL strategy's settings.
    init
        Start from the weights of a trained model instead of a random initialisation: a run
        folder, a ``.safetensors`` file or ``zoo:NAME`` (fine-tuning / ADL from a shipped model).
        ``model`` must describe the same network (``rawadapt train --init`` copies it from the
        model); only the sensor vocabulary may differ (:func:`rawadapt.train.init.apply_init`).
        Applied when a run starts, not on resume (the state holds the weights).
    """

    strategy: str = "finetune"
    seed: int = 0
    device: str = "cpu"
    threads: int | None = Field(default=None, ge=1)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    iters: int = Field(default=1000, ge=0)
    pretrain_iters: int | None = Field(default=None, ge=0)
    finetune_iters: int | None = Field(default=None, ge=0)
    finetune_lr: float | None = Field(default=None, gt=0.0)
    finetune_lr_factor: float = Field(default=0.5, gt=0.0, le=1.0)
    eval_every: int = Field(default=500, ge=0)
    eval_images: int | None = Field(default=8, ge=1)
    log_every: int = Field(default=25, ge=1)
    checkpoint_every: int = Field(default=500, ge=1)
    tensorboard: bool = True
    adl: ADLConfig = Field(default_factory=ADLConfig)
    init: str | None = Field(default=None, min_length=1)

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, v: str) -> str:

        if v not in STRATEGIES:
            raise ValueError(f"unknown strategy {v!r}; known: {', '.join(STRATEGIES)}")
        return v

    # -- resolved values ---------------------------------------------------------------------
    def stage_iters(self, kind: Literal["pretrain", "main", "finetune"]) -> int:
        """Iterations of a stage kind, with the ``None = iters`` defaults applied."""
        if kind == "pretrain":
            return self.iters if self.pretrain_iters is None else self.pretrain_iters
        if kind == "finetune":
            return self.iters if self.finetune_iters is None else self.finetune_iters
        return self.iters

    def resolved_finetune_lr(self) -> float:
        """Peak LR of fine-tuning stages."""
        return self.finetune_lr if self.finetune_lr is not None else self.optim.lr * self.finetune_lr_factor

    def to_yaml(self) -> str:
        """The full configuration as YAML (every field, defaults included)."""
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, default_flow_style=None)


# -- loading ------------------------------------------------------------------------------------
def config_from_dict(data: Mapping[str, Any], *, source: str | Path | None = None) -> TrainConfig:
    """Validate a (nested) mapping into a :class:`TrainConfig`.

    Raises
    ------
    ConfigError
        Any invalid or unknown setting, condensed to one line, naming ``source``.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a training config must be a mapping, got {type(data).__name__}", source)
    try:
        return TrainConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(f"invalid training config: {condense(exc)}", source) from None


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a YAML training config.

    Raises
    ------
    ConfigError
        Missing/unreadable file, invalid YAML, or invalid settings (one line, naming the file).
    """
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror or exc}", p) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc}", p) from None
    return config_from_dict({} if data is None else data, source=p)


def deep_update(base: Mapping[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``updates`` merged in recursively (nested mappings merge, others replace)."""
    out = dict(base)
    for k, v in updates.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_update(out[k], v)
        else:
            out[k] = v
    return out


def with_overrides(
    config: TrainConfig, overrides: Mapping[str, Any], *, source: str | Path | None = None
) -> TrainConfig:
    """A new config with nested ``overrides`` (e.g. ``{"data": {"patch": 32}}``) applied and
    re-validated."""
    return config_from_dict(deep_update(config.model_dump(mode="python"), overrides), source=source)


def config_diff(a: TrainConfig, b: TrainConfig) -> list[str]:
    """Dotted names of the settings that differ between two configs."""

    def flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, Mapping) and k != "kwargs":
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    fa, fb = flat(a.model_dump(mode="json")), flat(b.model_dump(mode="json"))
    return sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
