"""ADL's channel-wise modulation (ADL paper §3.2, eqs. 4-6; the ADL paper).

Metadata vector: ``(p, s)`` with ``p`` the one-hot sensor type (length n, the vocabulary size)
and ``s`` the normalised ISO repeated n times. Two 4-layer MLPs map it to a per-channel scale
``gamma = 1 + tanh(MLP_gamma(p, s))`` and shift ``beta = MLP_beta(p, s)``; a modulated feature
map is ``F' = gamma * F + beta``.

Choices the paper leaves open (documented, each a constructor argument):

* One MLP pair serves every modulated layer: its output is the concatenation of all layers'
  channel vectors, split per layer and returned keyed by the layer's name (the network looks
  its own pair up by name; the concatenation order is the order of ``channels``). The paper names
  "two four-layer MLPs" and one (gamma, beta)
  per feature map; a shared trunk is the cheapest reading of that (one MLP evaluation per batch).
* ISO normalisation: ``s = log2(ISO / iso_ref) / iso_scale`` (defaults 100 and 4, so ISO 100 ->
  0 and ISO 25600 -> 2). Gain is proportional to ISO, so a log scale spreads the range evenly.
  Unknown ISO (None or NaN) -> ``s = 0`` (the reference ISO), recorded by callers.
  Callers pass the EFFECTIVE ISO, ISO x exposure ratio (:attr:`rawadapt.data.Sample.effective_iso`):
  a low-light frame brightened by the ratio r has r times the noise, i.e. the gain of ISO·r.
  With ratios up to 300 the effective range reaches ~2e6, s = 4.4; the MLPs take that in stride.
* The last layer of each MLP starts at zero so the model starts as the plain network
  (gamma = 1, beta = 0), which keeps early training stable.
* Switches ``use_sensor`` / ``use_iso`` zero the corresponding half of the input (ablations of
  the paper's Table 4 "without type" / "without ISO").
* ``use_noise`` extends the vector (the paper allows more metadata, §3.2) with the image's noise
  parameters, the normalised ``log10 a`` and ``log10 b`` of its mean-variance line
  (:mod:`rawadapt.noise.conditioning`), each repeated n times like ``s``: ``(p, s, f_a, f_b)``.
  Unknown noise (NaN) feeds 0, the centre of the training range, like an unknown ISO.
* Unknown sensor at inference: policy ``"average"`` feeds ``p = 1/n`` in every slot (the mean of
  the sensor embeddings, since the first layer is linear in p); ``"iso-only"`` feeds ``p = 0``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from rawadapt.models.noise_input import noise_features

DEFAULT_ISO_REF = 100.0
DEFAULT_ISO_SCALE = 4.0


def normalize_iso(
    iso: torch.Tensor | None,
    batch: int,
    device: torch.device,
    ref: float = DEFAULT_ISO_REF,
    scale: float = DEFAULT_ISO_SCALE,
) -> torch.Tensor:
    """``log2(iso / ref) / scale`` as a float tensor ``[B]``; None/NaN/<=0 -> 0."""
    if iso is None:
        return torch.zeros(batch, device=device)
    iso = torch.as_tensor(iso, dtype=torch.float32, device=device).reshape(-1)
    if iso.numel() == 1 and batch > 1:
        iso = iso.expand(batch)
    ok = torch.isfinite(iso) & (iso > 0)
    s = torch.log2(torch.where(ok, iso, torch.full_like(iso, ref)) / ref) / scale
    return torch.where(ok, s, torch.zeros_like(s))


def _mlp(n_in: int, hidden: int, n_out: int, layers: int = 4) -> nn.Sequential:
    mods: list[nn.Module] = []
    dims = [n_in] + [hidden] * (layers - 1)
    for a, b in zip(dims[:-1], dims[1:]):
        mods += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
    last = nn.Linear(dims[-1], n_out)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    mods.append(last)
    return nn.Sequential(*mods)


class Modulation(nn.Module):
    """Produces (gamma, beta) for a list of feature-map widths from sensor type and ISO.

    Parameters
    ----------
    channels
        ``{layer name: width}`` of the modulated feature maps (a plain sequence of widths names
        them ``"0"``, ``"1"``...).
    n_sensors
        Vocabulary size n (at least 1).
    hidden
        Hidden width of the two 4-layer MLPs.
    use_sensor, use_iso
        Ablation switches.
    """

    def __init__(
        self,
        channels: Mapping[str, int] | Sequence[int],
        n_sensors: int,
        *,
        hidden: int = 64,
        use_sensor: bool = True,
        use_iso: bool = True,
        use_noise: bool = False,
        iso_ref: float = DEFAULT_ISO_REF,
        iso_scale: float = DEFAULT_ISO_SCALE,
    ) -> None:
        super().__init__()
        named = dict(channels) if isinstance(channels, Mapping) else {str(i): c for i, c in enumerate(channels)}
        self.names = list(named)
        self.channels = [int(c) for c in named.values()]
        self.n = max(1, int(n_sensors))
        self.use_sensor, self.use_iso, self.use_noise = bool(use_sensor), bool(use_iso), bool(use_noise)
        self.iso_ref, self.iso_scale = float(iso_ref), float(iso_scale)
        total = sum(self.channels)
        n_in = (4 if self.use_noise else 2) * self.n
        self.mlp_gamma = _mlp(n_in, hidden, total)
        self.mlp_beta = _mlp(n_in, hidden, total)

    def metadata_vector(
        self,
        sensor: torch.Tensor | None,
        iso: torch.Tensor | None,
        batch: int,
        device: torch.device,
        unknown_policy: str = "error",
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The ``(p, s)`` vector ``[B, 2n]`` (``(p, s, f_a, f_b)``, ``[B, 4n]``, with ``use_noise``)."""
        p = torch.zeros(batch, self.n, device=device)
        if self.use_sensor and sensor is not None:
            sensor = torch.as_tensor(sensor, device=device).reshape(-1).long()
            if sensor.numel() == 1 and batch > 1:
                sensor = sensor.expand(batch)
            known = sensor >= 0
            if bool(known.any()):
                p[known] = torch.nn.functional.one_hot(sensor[known], self.n).float()
            if bool((~known).any()):
                if unknown_policy == "average":
                    p[~known] = 1.0 / self.n
                elif unknown_policy == "iso-only":
                    pass  # p stays 0
                else:
                    raise ValueError("unknown sensor index -1 with policy 'error'")
        s = torch.zeros(batch, self.n, device=device)
        if self.use_iso:
            s = normalize_iso(iso, batch, device, self.iso_ref, self.iso_scale)[:, None].expand(batch, self.n)
        if not self.use_noise:
            return torch.cat([p, s], dim=1)

        if noise is None:
            f = torch.zeros(batch, 2, device=device)
        else:
            f = noise_features(torch.as_tensor(noise, device=device).reshape(-1, 2).float())
            if f.shape[0] == 1 and batch > 1:
                f = f.expand(batch, 2)
        fa = f[:, :1].expand(batch, self.n)
        fb = f[:, 1:].expand(batch, self.n)
        return torch.cat([p, s, fa, fb], dim=1)

    @torch.no_grad()
    def init_sensor_embedding(self, index: int, from_indices: Sequence[int]) -> None:
        """Set sensor ``index``'s embedding (its column of both MLPs' first layer, the only weights
        its one-hot reaches) to the mean of the ``from_indices`` columns.

        A sensor absent from a training stage gets no gradient there; fine-tuning on it then starts
        from a random embedding. Starting from the sources' average starts it from what the
        ``average`` unknown-sensor policy gives (ADL paper §3.2 leaves this open)."""
        src = [int(i) for i in from_indices if int(i) != int(index)]
        if not src:
            return
        for mlp in (self.mlp_gamma, self.mlp_beta):
            first = mlp[0]
            assert isinstance(first, nn.Linear)
            first.weight[:, int(index)] = first.weight[:, src].mean(dim=1)

    def forward(
        self,
        sensor: torch.Tensor | None,
        iso: torch.Tensor | None,
        batch: int,
        device: torch.device,
        unknown_policy: str = "error",
        noise: torch.Tensor | None = None,
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{layer name: (gamma, beta)}``, each shaped ``[B, C_i, 1, 1]``."""
        v = self.metadata_vector(sensor, iso, batch, device, unknown_policy, noise)
        gamma = 1.0 + torch.tanh(self.mlp_gamma(v))
        beta = self.mlp_beta(v)
        out = {}
        start = 0
        for name, c in zip(self.names, self.channels):
            out[name] = (gamma[:, start : start + c, None, None], beta[:, start : start + c, None, None])
            start += c
        return out


#: what a modulated backbone hands to its layers: ``{layer name: (gamma, beta)}`` or None
Mods = Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None


def modulate(x: torch.Tensor, mods: Mods, name: str) -> torch.Tensor:
    """``gamma * x + beta`` with layer ``name``'s pair (identity when ``mods`` is None)."""
    if mods is None:
        return x
    gamma, beta = mods[name]
    return torch.addcmul(beta, x, gamma)  # one fused kernel instead of a multiply and an add


def iso_of(log_scaled: float, ref: float = DEFAULT_ISO_REF, scale: float = DEFAULT_ISO_SCALE) -> float:
    """Inverse of the ISO normalisation (for reports)."""
    return ref * math.pow(2.0, log_scaled * scale)
