"""The building blocks of ADL's source adaptive learning (ADL paper §3.1.2, Algorithm 1).

Each block has one job and is tested on its own:

* :class:`PSNRQueue` — the priority queue Q of the M highest validation PSNRs and the acceptance
  rule ``Eval(V', θ') > mean(Q)`` (eq. 2).
* :func:`validation_size` — |V'| = k growing from 20 % to 50 % of |T_adp| over the stage.
* :func:`choose_validation` — V' drawn uniformly, or spanning diverse ISOs when |T_adp| < 10.
* :class:`Snapshot` — θ_{t−1} (and optionally the optimizer state) copied IN PLACE into
  preallocated buffers before each candidate step, restored in place on a reject.
* :class:`DomainChooser` — which source domain S_i gives the next batch.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


class PSNRQueue:
    """Priority queue of the ``max_size`` highest PSNRs seen (ascending), with eq. 2's rule.

    The paper (§3.1.2): Q starts with Eval(V', θ0); if Eval(V', θ') is higher than the average
    of Q the update is kept and its PSNR pushed, popping the first (smallest) element when Q is
    full. "Stores the highest PSNR values in the history": an accepted value is always above
    the mean, so pushing it and dropping the smallest keeps the M best.

    Parameters
    ----------
    max_size
        M. The paper does not give it; rawadapt's default (8, set in ADLConfig) trades a stable
        threshold (large M) against following the model's progress (small M).
    """

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError("queue size M must be at least 1")
        self.max_size = int(max_size)
        self.values: list[float] = []

    def __len__(self) -> int:
        return len(self.values)

    def mean(self) -> float:
        """Average of Q (−inf while empty, so the first candidate is always accepted)."""
        return float(np.mean(self.values)) if self.values else -math.inf

    def push(self, value: float) -> None:
        """Insert keeping ascending order; pop the smallest if over capacity."""
        bisect.insort(self.values, float(value))
        if len(self.values) > self.max_size:
            self.values.pop(0)

    def accepts(self, value: float) -> bool:
        """eq. 2: accept iff ``value > mean(Q)`` (strict)."""
        return bool(value > self.mean())

    def offer(self, value: float) -> bool:
        """Apply the rule: push and return True if accepted, else leave Q unchanged."""
        ok = self.accepts(value)
        if ok:
            self.push(value)
        return ok

    def state_dict(self) -> dict[str, Any]:
        return {"max_size": self.max_size, "values": list(self.values)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.max_size = int(state["max_size"])
        self.values = sorted(float(v) for v in state["values"])


def validation_size(
    step: int, total: int, n_pool: int, *, start: float = 0.2, end: float = 0.5, schedule: str = "linear"
) -> int:
    """|V'| at iteration ``step`` (0-based) of ``total``.

    The paper: k starts at 20 % of |T_adp| and increases to 50 % by the end; the shape of the
    growth is not given. ``"linear"`` (default) interpolates the fraction linearly in the step;
    ``"cosine"`` eases in and out; ``"fixed"`` stays at ``start``. The result is rounded and
    clamped to [1, n_pool − 1] so that T_train = T_adp − V' is never empty (for n_pool >= 2).
    """
    if n_pool < 2:
        raise ValueError(f"ADL needs at least 2 target pairs (one to validate, one to train), got {n_pool}")
    progress = 0.0 if total <= 1 else min(max(step / (total - 1), 0.0), 1.0)
    if schedule == "linear":
        frac = start + (end - start) * progress
    elif schedule == "cosine":
        frac = start + (end - start) * (1 - math.cos(math.pi * progress)) / 2
    elif schedule == "fixed":
        frac = start
    else:
        raise ValueError(f"unknown validation schedule {schedule!r} (linear, cosine, fixed)")
    return int(min(max(round(frac * n_pool), 1), n_pool - 1))


def choose_validation(
    rng: np.random.Generator, isos: Sequence[float | None], k: int, *, diverse_iso: bool
) -> list[int]:
    """Indices of V' (sorted) among the target pool.

    Uniform: ``k`` distinct indices at random. Diverse ISO (the paper, after LED [14], when
    |T_adp| < 10): the pool sorted by ISO (the system gain is proportional to ISO) is cut into
    ``k`` contiguous quantile bins and one index is drawn at random inside each bin, so V'
    always spans the low-to-high gain range while still changing between iterations. Unknown
    ISOs sort last.
    """
    n = len(isos)
    if not 1 <= k <= n:
        raise ValueError(f"cannot choose {k} validation images from {n}")
    if not diverse_iso:
        return sorted(int(i) for i in rng.choice(n, size=k, replace=False))
    order = sorted(range(n), key=lambda i: (isos[i] is None, isos[i] if isos[i] is not None else 0.0, i))
    edges = np.linspace(0, n, k + 1)
    picks = []
    for b in range(k):
        lo, hi = int(round(edges[b])), int(round(edges[b + 1]))
        hi = max(hi, lo + 1)
        picks.append(order[int(rng.integers(lo, hi))])
    return sorted(picks)


class Snapshot:
    """θ_{t−1} (parameters, buffers and optionally the optimizer state) kept in preallocated
    buffers; :meth:`save` and :meth:`restore` are in-place copies (no allocation after the first
    save, no module deep copy).

    Parameters
    ----------
    model
        The network.
    optimizer
        Its optimizer; with ``with_optimizer`` its per-parameter state is snapshotted too.
    with_optimizer
        Restore the optimizer state on a reject. rawadapt's default (True): Algorithm 1 sets
        θ_t = θ_{t−1}, i.e. a rejected batch must leave no trace, and with Adam the moments are
        part of the training state — keeping them would replay the rejected gradient in later
        steps. ``False`` restores parameters only (cheaper; the paper's literal wording).
    """

    def __init__(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None, *, with_optimizer: bool = True
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.with_optimizer = bool(with_optimizer and optimizer is not None)
        self._live = list(model.parameters()) + list(model.buffers())
        self._bufs = [torch.empty_like(t) for t in self._live]
        self._opt_keys: list[tuple[torch.Tensor, str]] = []
        self._opt_bufs: list[torch.Tensor] = []
        self._opt_sig: list[tuple[int, str, tuple[int, ...]]] = []
        self._opt_scalars: dict[tuple[int, str], Any] = {}
        self._stateful: set[int] = set()

    def _state_entries(self) -> list[tuple[torch.Tensor, str, Any]]:
        assert self.optimizer is not None
        out: list[tuple[torch.Tensor, str, Any]] = []
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                st = self.optimizer.state.get(p)
                if st:
                    out.extend((p, k, st[k]) for k in sorted(st))
        return out

    @torch.no_grad()
    def save(self) -> None:
        """Copy the live state into the buffers."""
        _copy(self._bufs, self._live)
        if not self.with_optimizer:
            return
        entries = self._state_entries()
        tensors = [(p, k, v) for p, k, v in entries if torch.is_tensor(v)]
        sig = [(id(p), k, tuple(v.shape)) for p, k, v in tensors]
        if sig != self._opt_sig:  # first save after the lazy state init: allocate once
            self._opt_bufs = [torch.empty_like(v) for _, _, v in tensors]
            self._opt_sig = sig
        self._opt_keys = [(p, k) for p, k, _ in tensors]
        _copy(self._opt_bufs, [v for _, _, v in tensors])
        self._opt_scalars = {(id(p), k): v for p, k, v in entries if not torch.is_tensor(v)}
        self._stateful = {id(p) for p, _, _ in entries}

    @torch.no_grad()
    def restore(self) -> None:
        """Copy the buffers back into the live tensors (bit-exact)."""
        _copy(self._live, self._bufs)
        if not self.with_optimizer:
            return
        assert self.optimizer is not None
        state = self.optimizer.state
        # State created by the rejected step itself (Adam's lazy init) is KEPT: dropping it would
        # make the next candidate another first Adam step, whose update is ±lr on every weight —
        # too large to ever be accepted once the model is trained. Only this corner case lets a
        # rejected gradient into the moments (decaying as beta^t); otherwise the restore is exact.
        _copy([state[p][k] for p, k in self._opt_keys], self._opt_bufs)
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                for (pid, k), v in self._opt_scalars.items():
                    if pid == id(p):
                        state[p][k] = v


def _copy(dst: list[torch.Tensor], src: list[torch.Tensor]) -> None:
    if not dst:
        return
    try:
        torch._foreach_copy_(dst, src)  # one fused call where available
    except (AttributeError, RuntimeError):  # pragma: no cover - older torch
        for d, s in zip(dst, src):
            d.copy_(s)


class DomainChooser:
    """Chooses the source domain of each ADL iteration.

    ``"uniform"`` (default; Algorithm 1 says "some domain S_i") draws a domain uniformly at
    random. ``"round-robin"`` cycles through them. ``"score"`` (beyond the paper) samples in
    proportion to each domain's smoothed acceptance rate (Beta(1, 1) prior:
    (accepted + 1) / (tried + 2)) raised to ``1 / temperature``, mixed with a uniform floor
    ``explore`` so a domain that was unlucky early is still retried.
    """

    def __init__(
        self, domains: Sequence[str], *, mode: str = "uniform", explore: float = 0.2, temperature: float = 0.5
    ) -> None:
        if not domains:
            raise ValueError("ADL needs at least one source domain")
        if mode not in ("uniform", "round-robin", "score"):
            raise ValueError(f"unknown domain sampling {mode!r} (uniform, round-robin, score)")
        self.domains = list(domains)
        self.mode = mode
        self.explore = float(explore)
        self.temperature = float(temperature)
        self.tried = {d: 0 for d in self.domains}
        self.accepted = {d: 0 for d in self.domains}
        self._next = 0

    def probabilities(self) -> np.ndarray:
        n = len(self.domains)
        if self.mode != "score":
            return np.full(n, 1.0 / n)
        rate = np.array([(self.accepted[d] + 1) / (self.tried[d] + 2) for d in self.domains])
        w = rate ** (1.0 / max(self.temperature, 1e-6))
        return self.explore / n + (1 - self.explore) * w / w.sum()

    def choose(self, rng: np.random.Generator) -> str:
        if self.mode == "round-robin":
            d = self.domains[self._next % len(self.domains)]
            self._next += 1
            return d
        return self.domains[int(rng.choice(len(self.domains), p=self.probabilities()))]

    def record(self, domain: str, accepted: bool) -> None:
        self.tried[domain] += 1
        self.accepted[domain] += int(accepted)

    def state_dict(self) -> dict[str, Any]:
        return {"tried": dict(self.tried), "accepted": dict(self.accepted), "next": self._next}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tried = {d: int(state["tried"].get(d, 0)) for d in self.domains}
        self.accepted = {d: int(state["accepted"].get(d, 0)) for d in self.domains}
        self._next = int(state.get("next", 0))
