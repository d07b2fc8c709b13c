"""Small in-memory multi-sensor datasets for tests (training engine, strategies, ADL, baselines).

:func:`make_multisensor_dataset` returns a lazy :class:`~rawadapt.data.base.PairDataset` whose
pixels are generated on access from a per-record seed, so it costs no memory or disk and is
bit-identical across calls and processes. It mimics the built-in ``synth`` benchmark's layout:

* every sensor has its own Poisson-Gaussian noise level (variance ``K * x + sigma_r^2`` with the
  system gain ``K`` proportional to ISO, scaled by a per-sensor factor), so sensors really are
  different domains and a model has to learn something to beat the noisy input;
* records carry the split roles ``"source"`` (used when the sensor is a source domain),
  ``"target"`` (the pool a held-out target sensor draws its few pairs from) and ``"test"``;
  scenes are distinct per record, so pool and test never share a scene;
* ISOs cycle through a per-sensor list, the metadata ADL's modulation consumes.

Use ``space="raw"`` for 4 packed planes (CFA RGGB) or ``space="srgb"`` for 3 planes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rawadapt.data.base import PairDataset
from rawadapt.data.sample import Sample, SampleRecord
from rawadapt.utils.seed import derive_seed

SPLIT_ROLES = ("source", "target", "test")
DEFAULT_ISOS = (100, 400, 800, 1600, 3200)


def split_counts(per_sensor: int | Mapping[str, int]) -> dict[str, int]:
    """Records per split role: a mapping is taken as is; an int ``n`` gives ``test = max(1, n // 4)``,
    ``target = max(1, n // 3)`` and the rest to ``source``."""
    if isinstance(per_sensor, Mapping):
        counts = {k: int(per_sensor.get(k, 0)) for k in SPLIT_ROLES}
        unknown = set(per_sensor) - set(SPLIT_ROLES)
        if unknown:
            raise ValueError(f"unknown split roles {sorted(unknown)}; expected {SPLIT_ROLES}")
        return counts
    n = int(per_sensor)
    test = max(1, n // 4)
    target = max(1, n // 3)
    return {"source": max(0, n - test - target), "target": target, "test": test}


def sensor_gain(sensor: str, seed: int, gain_range: tuple[float, float]) -> float:
    """Per-sensor gain factor (noise variance per unit signal at ISO 100), log-uniform in range."""
    rng = np.random.default_rng(derive_seed(seed, "gain", sensor))
    lo, hi = np.log(gain_range[0]), np.log(gain_range[1])
    return float(np.exp(rng.uniform(lo, hi)))


def smooth_image(rng: np.random.Generator, channels: int, size: int) -> np.ndarray:
    """A smooth random image in about [0.05, 0.9]: a bilinearly upsampled coarse grid (shading)
    plus a few flat rectangles (edges), with correlated channels like real colour planes."""
    coarse = rng.uniform(0.0, 1.0, size=(5, 5))
    t = np.linspace(0, 4, size)
    i0 = np.clip(np.floor(t).astype(int), 0, 3)
    f = t - i0
    rows = coarse[i0] * (1 - f)[:, None] + coarse[i0 + 1] * f[:, None]
    lum = rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]
    for _ in range(3):
        y0, x0 = rng.integers(0, size, size=2)
        h, w = rng.integers(size // 6 + 1, size // 2 + 2, size=2)
        lum[y0 : y0 + h, x0 : x0 + w] = 0.5 * lum[y0 : y0 + h, x0 : x0 + w] + 0.5 * rng.uniform(0, 1)
    colour = rng.uniform(0.6, 1.0, size=channels)
    if channels == 4:  # the two greens of a Bayer cell see the same colour
        colour[2] = colour[1]
    img = 0.05 + 0.85 * lum[None] * colour[:, None, None]
    return img.astype(np.float32)


def make_multisensor_dataset(
    *,
    sensors: Sequence[str] = ("a", "b", "c"),
    per_sensor: int | Mapping[str, int] = 12,
    size: int = 32,
    space: str = "raw",
    seed: int = 0,
    isos: Sequence[float] = DEFAULT_ISOS,
    gain_range: tuple[float, float] = (2e-4, 2e-3),
    read_noise: float = 2e-3,
    name: str = "multisensor",
) -> PairDataset:
    """A lazy in-memory multi-sensor paired dataset.

    Parameters
    ----------
    sensors
        Sensor (domain) names.
    per_sensor
        Records per sensor: an int (split by :func:`split_counts`) or a mapping
        ``{"source": n, "target": n, "test": n}``.
    size
        Side of the square images (packed pixels for RAW).
    space
        ``"raw"`` (4 planes, CFA RGGB) or ``"srgb"`` (3 planes).
    seed
        Everything (clean content, noise, per-sensor levels) derives from it.
    isos
        ISO values cycled through per sensor (each sensor starts at a different offset).
    gain_range
        Range of the per-sensor gain factor ``a``: shot-noise variance = ``a * ISO / 100 * x``.
    read_noise
        Read-noise standard deviation at ISO 100 (grows with sqrt(ISO / 100)).
    name
        Dataset name.

    Returns
    -------
    PairDataset
        Records in a deterministic order (sensor by sensor, then source, target, test).
    """
    if space not in ("raw", "srgb"):
        raise ValueError(f"space must be 'raw' or 'srgb', got {space!r}")
    counts = split_counts(per_sensor)
    channels = 4 if space == "raw" else 3
    gains = {s: sensor_gain(s, seed, gain_range) for s in sensors}
    records: list[SampleRecord] = []
    for si, sensor in enumerate(sensors):
        k = 0
        for role in SPLIT_ROLES:
            for _ in range(counts[role]):
                iso = float(isos[(k + si) % len(isos)])
                sid = f"{sensor}-{role}-{k:03d}"
                records.append(
                    SampleRecord(
                        sample_id=sid,
                        sensor=sensor,
                        iso=iso,
                        scene=f"{sensor}-scene{k:03d}",
                        noisy_path=f"mem://{name}/{sid}",
                        space=space,  # type: ignore[arg-type]
                        split=role,
                        extra={"gain": gains[sensor]},
                    )
                )
                k += 1

    def load(rec: SampleRecord) -> Sample:
        rng = np.random.default_rng(derive_seed(seed, "pixels", rec.sample_id))
        clean = smooth_image(rng, channels, size)
        rel = float(rec.iso or 100.0) / 100.0
        var = gains[rec.sensor] * rel * clean + (read_noise**2) * rel
        noisy = clean + rng.standard_normal(clean.shape).astype(np.float32) * np.sqrt(var).astype(np.float32)
        noisy = np.clip(noisy, 0.0, 1.0).astype(np.float32)
        return Sample(
            noisy=noisy,
            clean=clean,
            sensor=rec.sensor,
            iso=rec.iso,
            space=rec.space,
            scene=rec.scene,
            path=rec.noisy_path,
            cfa="RGGB" if space == "raw" else None,
            sample_id=rec.sample_id,
            extra={"split": rec.split},
        ).validate()

    return PairDataset(records, load, name=name, space=space)  # type: ignore[arg-type]


def tiny_train_config(strategy: str = "finetune", *, target: str | None = "a", **overrides: object):  # type: ignore[no-untyped-def]
    """A :class:`~rawadapt.train.config.TrainConfig` for fast tests on
    :func:`make_multisensor_dataset` data: U-Net width 4 depth 2, 16 px patches, batches of 4,
    3 target pairs, 6 iterations per stage, a log row every iteration, no periodic validation.

    ``overrides`` are nested mappings merged into the config (e.g. ``optim={"lr": 3e-3}``,
    ``iters=10``).
    """
    from rawadapt.train.config import config_from_dict, deep_update

    base: dict[str, object] = {
        "strategy": strategy,
        "data": {"data": "multisensor", "target": target, "target_pairs": 3, "patch": 16, "batch": 4},
        "model": {"arch": "unet", "kwargs": {"width": 4, "depth": 2}},
        "iters": 6,
        "eval_every": 0,
        "log_every": 1,
        "checkpoint_every": 4,
        "tensorboard": False,
    }
    return config_from_dict(deep_update(base, overrides))
