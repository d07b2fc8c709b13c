"""A shipped zoo model used zero-shot: no training on the target, only its noise calibration.

The model is the space's default (:data:`rawadapt.models.zoo.DEFAULT_MODELS`: ``raw-unet-any``,
``srgb-unet-m``; the sRGB one is blind and needs nothing). The RAW zoo model is conditioned on
each image's noise line ``(a, b)``. On a camera it has never seen, that line comes from a
calibration; here from the same source as the ``bm3d`` row's variance-stabilising transform
(``noise_source``, default ``"auto"``: the noise model fitted on the target pool's pairs,
:class:`~rawadapt.baselines.noise_level.PoolNoiseModel`). So ``zoo-zs`` vs ``bm3d`` compares two
denoisers given the same calibrated profile (the zoo issue's goal "zero-shot >= BM3D-VST with the
same profile").
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from rawadapt.baselines.base import Task
from rawadapt.baselines.noise_level import PoolNoiseModel, check_noise_source, pool_model_for, sample_noise_level
from rawadapt.baselines.perimage import ImageMethod
from rawadapt.data.sample import Sample
from rawadapt.errors import ConfigError


class ZooZeroShot(ImageMethod):
    """A zoo model, zero-shot, told each test image's calibrated noise line.

    Options
    -------
    noise_source
        Where each image's ``(a, b)`` comes from (as :class:`~rawadapt.baselines.bm3d.BM3D`):
        ``"auto"`` (default: the target pool's fitted noise model), ``"pool"``, ``"profile"``
        (the target sensor's profile) or ``"image"`` (a blind estimate). Per-channel values are
        averaged into the one line the network takes.
    zoo
        The zoo model (default: the task's space's, ``zoo:raw-unet-any`` or ``zoo:srgb-unet-m``).
    """

    name = "zoo-zs"
    description = "the shipped zoo model of the task's space, zero-shot (RAW: with the target's calibrated noise line)"
    reference = "rawadapt model zoo; noise line as the bm3d row's VST (same calibration)"
    known_options: ClassVar[tuple[str, ...]] = ("noise_source", "zoo")

    def __init__(self, budget: Any = None, **options: Any) -> None:
        super().__init__(budget, **options)
        self.noise_source = check_noise_source(str(self.option("noise_source", "auto")))
        self.zoo_ref: str | None = self.option("zoo", None)
        self.pool: PoolNoiseModel | None = None
        self.model: Any = None

    def fit(self, task: Task) -> None:
        """Load the zoo model and fit the pool's noise model (no training)."""
        from rawadapt.models.checkpoint import load_model
        from rawadapt.models.zoo import DEFAULT_MODELS

        super().fit(task)
        self.zoo_ref = str(self.zoo_ref or DEFAULT_MODELS[task.space])
        self.model, _ = load_model(self.zoo_ref)
        if self.model.space != task.space:
            raise ConfigError(f"{self.zoo_ref} denoises {self.model.space} images, the task is {task.space}")
        uses_noise = bool(getattr(self.model, "uses_noise", False))
        self.pool = pool_model_for(self.noise_source, task.target_pool) if uses_noise else None

    def denoise_array(self, noisy: np.ndarray, sample: Sample) -> np.ndarray:
        from rawadapt.models.inference import denoise_image

        line = None
        if getattr(self.model, "uses_noise", False):
            level = sample_noise_level(sample, self.noise_source, profile=self.target, pool=self.pool)
            line = (float(np.mean(level.a)), float(np.mean(level.b)))
            self.last_info = {"noise": level.to_dict(), "noise_line": list(line)}
        # the modulation takes the EFFECTIVE ISO (ISO x exposure ratio), as in training
        return denoise_image(self.model, noisy, iso=sample.effective_iso, cfa=sample.cfa, noise=line, tile=512)

    def info(self) -> dict[str, Any]:
        out = super().info()
        out.update(noise_source=self.noise_source, zoo=self.zoo_ref)
        if self.zoo_ref and self.target:
            from rawadapt.models.zoo import get_entry

            seen = get_entry(self.zoo_ref.removeprefix("zoo:")).get("trained_on", {}).get("sensors", [])
            out["target_seen_in_training"] = self.target in seen  # True: not a zero-shot number
        if self.pool is not None:
            out["pool_noise"] = self.pool.to_dict()
        return out
