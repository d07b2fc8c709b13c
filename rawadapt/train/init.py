"""Start a run from a trained model's weights (``TrainConfig.init``, ``rawadapt train --init``).

The source is anything :func:`~rawadapt.models.checkpoint.load_model` accepts: a run folder, a
``.safetensors`` file or ``zoo:NAME``. The run's network must be the same architecture with the
same settings; only the sensor vocabulary (which the run takes from its data) may differ. The
modulation's first layer is then mapped onto the new vocabulary so that the network computes the
same function: a sensor the source knew keeps its type embedding (matched by name), a new sensor
gets the mean of the source's embeddings (what the ``average`` unknown-sensor policy fed it), and
the ISO / noise inputs, which the modulation repeats once per vocabulary entry, get the source's
summed weights spread over the new size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rawadapt.errors import ConfigError
from rawadapt.train.config import ENGINE_MODEL_ARGS

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from rawadapt.models.base import Denoiser


def init_model_settings(ref: str) -> dict[str, Any]:
    """The ``model`` config section (``{"arch", "kwargs"}``) that builds the network of ``ref``.

    The model is loaded (and so checked) in full; the global RNG is left as it was.

    Raises
    ------
    CheckpointError, ConfigError
        ``ref`` is not a readable model (or an unknown ``zoo:NAME``).
    """
    import torch

    from rawadapt.models.checkpoint import load_model

    with torch.random.fork_rng(devices=[]):
        _model, meta = load_model(ref)
    config = dict(meta["config"])
    arch = config.pop("arch")
    kwargs = {k: v for k, v in config.items() if k not in ENGINE_MODEL_ARGS}
    return {"arch": arch, "kwargs": kwargs}


def _remap_modulation(
    src_state: dict[str, torch.Tensor],
    dst_state: dict[str, torch.Tensor],
    src_model: Denoiser,
    dst_model: Denoiser,
) -> list[str]:
    """Rewrite the first-layer weights of each modulation MLP in ``src_state`` for the
    destination's vocabulary (in place); returns the names of the rewritten tensors."""
    import torch

    from rawadapt.models.modulation import Modulation

    src_mods = {n: m for n, m in src_model.named_modules() if isinstance(m, Modulation)}
    dst_mods = {n: m for n, m in dst_model.named_modules() if isinstance(m, Modulation)}
    src_names, dst_names = list(src_model.sensors), list(dst_model.sensors)
    done: list[str] = []
    for name, sm in src_mods.items():
        dm = dst_mods.get(name)
        if dm is None or (sm.n == dm.n and src_names == dst_names):
            continue
        blocks = 4 if sm.use_noise else 2
        for mlp in ("mlp_gamma", "mlp_beta"):
            key = f"{name}.{mlp}.0.weight" if name else f"{mlp}.0.weight"
            w = src_state.get(key)
            if w is None or key not in dst_state or w.shape[1] != blocks * sm.n:
                continue
            n_src, n_dst = sm.n, dm.n
            parts = list(w.split(n_src, dim=1))
            # sensor one-hot block: by name; a new sensor -> the mean embedding
            mean = parts[0].mean(dim=1, keepdim=True)
            cols = [
                parts[0][:, src_names.index(s) : src_names.index(s) + 1] if s in src_names else mean for s in dst_names
            ]
            cols += [mean] * (n_dst - len(cols))  # an empty vocabulary still has one slot
            new = [torch.cat(cols[:n_dst], dim=1)]
            # repeated scalar blocks (ISO, noise a, noise b): same sum over the new size
            new += [p.sum(dim=1, keepdim=True).expand(-1, n_dst) / n_dst for p in parts[1:]]
            src_state[key] = torch.cat(new, dim=1).contiguous()
            done.append(key)
    return done


def apply_init(model: Denoiser, ref: str) -> dict[str, Any]:
    """Load the weights of ``ref`` into ``model`` (see the module docstring).

    Parameters
    ----------
    model
        The run's freshly built network (its sensor vocabulary from the run's data).
    ref
        A run folder, ``.safetensors`` file or ``zoo:NAME``.

    Returns
    -------
    dict
        ``{"init": ref, "arch", "source_sensors", "remapped": [tensor names]}``.

    Raises
    ------
    ConfigError
        Another architecture, other model settings, another image space, or tensors whose
        shapes still differ (named in one line).
    CheckpointError
        ``ref`` cannot be loaded.
    """
    import torch

    from rawadapt.models.checkpoint import load_model

    with torch.random.fork_rng(devices=[]):  # building the source must not move the run's RNG
        src, _meta = load_model(ref)
    if src.arch != model.arch:
        raise ConfigError(
            f"--init {ref}: a {src.arch} model, but the run builds a {model.arch} (model.arch); "
            f"use the model's settings (`rawadapt train --init` copies them)"
        )
    if src.in_channels != model.in_channels:
        raise ConfigError(f"--init {ref}: a {src.space} model, but the run's data is {model.space}")
    a = {k: v for k, v in src.config().items() if k not in ENGINE_MODEL_ARGS}
    b = {k: v for k, v in model.config().items() if k not in ENGINE_MODEL_ARGS}
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if diff:
        detail = ", ".join(f"{k} ({a.get(k)!r} vs {b.get(k)!r})" for k in diff[:4])
        raise ConfigError(
            f"--init {ref}: the model settings differ from the run's: {detail}; "
            f"use the model's settings (`rawadapt train --init` copies them)"
        )
    state = {k: v.detach().clone() for k, v in src.state_dict().items()}
    dst_state = model.state_dict()
    remapped = _remap_modulation(state, dst_state, src, model)
    wrong = sorted(k for k in dst_state if k in state and tuple(state[k].shape) != tuple(dst_state[k].shape))
    missing = sorted(set(dst_state) - set(state))
    extra = sorted(set(state) - set(dst_state))
    if wrong or missing or extra:
        parts = [f"{k}: {tuple(state[k].shape)} vs {tuple(dst_state[k].shape)}" for k in wrong[:3]]
        parts += [f"missing {k}" for k in missing[:2]] + [f"unexpected {k}" for k in extra[:2]]
        raise ConfigError(f"--init {ref}: the weights do not fit the run's model: {'; '.join(parts)}")
    model.load_state_dict(state, strict=True)
    return {"init": str(ref), "arch": src.arch, "source_sensors": list(src.sensors), "remapped": remapped}
