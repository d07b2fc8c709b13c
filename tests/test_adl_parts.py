"""ADL building blocks: the accept rule and queue, V' schedule and selection, bit-exact restore,
domain choice, valuation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rawadapt.train.adl_parts import (
    DomainChooser,
    PSNRQueue,
    Snapshot,
    choose_validation,
    validation_size,
)
from rawadapt.train.valuation import compute_valuation


# ----------------------------------------------------------------------------- queue
def test_queue_scripted_sequence() -> None:
    q = PSNRQueue(3)
    q.push(30.0)  # Eval(V', θ0)
    decisions, thresholds = [], []
    for v in [29.0, 31.0, 30.2, 32.0, 30.5, 33.0, 31.9]:
        thresholds.append(q.mean())
        decisions.append(q.offer(v))
    # mean(Q) before each offer:
    # [30] -> 29 rejected; 31 accepted -> [30,31]; 30.2 < 30.5 rejected; 32 > 30.5 -> [30,31,32];
    # 30.5 < 31 rejected; 33 > 31 -> [31,32,33] (30 popped); 31.9 < 32 rejected
    assert decisions == [False, True, False, True, False, True, False]
    assert thresholds == pytest.approx([30, 30, 30.5, 30.5, 31, 31, 32])
    assert q.values == [31.0, 32.0, 33.0]


def test_queue_keeps_the_best_and_is_strict() -> None:
    q = PSNRQueue(2)
    assert q.mean() == -math.inf and q.offer(10.0)  # empty queue accepts
    assert not q.offer(10.0)  # equal to the mean: rejected (strict >)
    for v in [11, 12, 13]:
        assert q.offer(v)
    assert q.values == [12.0, 13.0] and len(q) == 2
    state = q.state_dict()
    q2 = PSNRQueue(5)
    q2.load_state_dict(state)
    assert q2.values == q.values and q2.max_size == 2
    with pytest.raises(ValueError):
        PSNRQueue(0)


# ----------------------------------------------------------------------------- V'
def test_validation_size_schedule() -> None:
    sizes = [validation_size(t, 101, 20) for t in range(101)]
    assert sizes[0] == 4 and sizes[-1] == 10  # 20 % -> 50 % of 20
    assert all(b >= a for a, b in zip(sizes, sizes[1:]))  # non-decreasing
    assert sizes[50] == 7  # linear: 35 % at mid-stage
    cos = [validation_size(t, 101, 20, schedule="cosine") for t in range(101)]
    assert cos[0] == 4 and cos[-1] == 10 and cos[25] <= sizes[25]
    assert {validation_size(t, 50, 20, schedule="fixed") for t in range(50)} == {4}
    # tiny pools keep T_train non-empty
    assert validation_size(0, 10, 2) == 1 and validation_size(9, 10, 3) == 2
    with pytest.raises(ValueError):
        validation_size(0, 10, 1)
    with pytest.raises(ValueError):
        validation_size(0, 10, 10, schedule="nope")


def test_uniform_selection_is_random_and_seeded() -> None:
    isos = [100.0] * 20
    a = [tuple(choose_validation(np.random.default_rng(0), isos, 5, diverse_iso=False)) for _ in range(3)]
    b = [tuple(choose_validation(np.random.default_rng(0), isos, 5, diverse_iso=False)) for _ in range(3)]
    assert a == b
    rng = np.random.default_rng(1)
    draws = {tuple(choose_validation(rng, isos, 5, diverse_iso=False)) for _ in range(20)}
    assert len(draws) > 10  # a new V' nearly every iteration
    assert all(len(set(d)) == 5 for d in draws)


def test_diverse_iso_selection_spans_isos() -> None:
    isos = [100, 100, 200, 400, 800, 1600, 3200, 6400, 12800]
    rng = np.random.default_rng(0)
    spans_div, spans_uni = [], []
    for _ in range(200):
        div = choose_validation(rng, isos, 3, diverse_iso=True)
        uni = choose_validation(rng, isos, 3, diverse_iso=False)
        spans_div.append(np.log2(max(isos[i] for i in div) / min(isos[i] for i in div)))
        spans_uni.append(np.log2(max(isos[i] for i in uni) / min(isos[i] for i in uni)))
        # one pick in each ISO tercile: lowest third, middle third, highest third
        picked = sorted(isos[i] for i in div)
        assert picked[0] <= 200 and 400 <= picked[1] <= 1600 and picked[2] >= 3200
    # every diverse V' spans at least 4 stops of gain; uniform draws often do not
    assert min(spans_div) >= 4.0
    assert np.mean(np.array(spans_uni) < 4.0) > 0.2
    # still dynamic: more than one distinct V'
    assert len({tuple(choose_validation(rng, isos, 3, diverse_iso=True)) for _ in range(30)}) > 3


# ----------------------------------------------------------------------------- restore
def _net() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    m = torch.nn.Sequential(
        torch.nn.Conv2d(4, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.Conv2d(6, 4, 3, padding=1)
    )
    return m, torch.optim.AdamW(m.parameters(), 1e-2)


def _step(m: torch.nn.Module, opt: torch.optim.Optimizer, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    opt.zero_grad()
    m(torch.rand(2, 4, 8, 8, generator=g)).pow(2).mean().backward()
    opt.step()


@pytest.mark.parametrize("with_optimizer", [True, False])
def test_reject_restores_bit_exactly(with_optimizer: bool) -> None:
    m, opt = _net()
    snap = Snapshot(m, opt, with_optimizer=with_optimizer)
    _step(m, opt, 1)
    _step(m, opt, 2)
    params = {k: v.clone() for k, v in m.state_dict().items()}  # includes BN running stats
    opt_state = [{k: v.clone() for k, v in opt.state[p].items()} for p in m.parameters()]
    buffers_before = [b.data_ptr() for b in snap._bufs]
    snap.save()
    _step(m, opt, 3)
    assert not all(torch.equal(params[k], v) for k, v in m.state_dict().items())
    snap.restore()
    assert all(torch.equal(params[k], v) for k, v in m.state_dict().items())
    same_opt = all(
        torch.equal(opt_state[i][k], opt.state[p][k]) for i, p in enumerate(m.parameters()) for k in opt_state[i]
    )
    assert same_opt == with_optimizer
    assert [b.data_ptr() for b in snap._bufs] == buffers_before  # in place, no reallocation


def test_reject_of_a_first_step_keeps_the_new_adam_state() -> None:
    """Parameters are restored; the Adam state created by the rejected first step is kept (else
    every later candidate would again be a full-magnitude first Adam step)."""
    m, opt = _net()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    snap = Snapshot(m, opt)
    snap.save()
    _step(m, opt, 7)
    snap.restore()
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert len(opt.state) == len(list(m.parameters()))
    assert all(float(opt.state[p]["step"]) == 1.0 for p in m.parameters())


# ----------------------------------------------------------------------------- domains
def test_domain_chooser_modes() -> None:
    rng = np.random.default_rng(0)
    rr = DomainChooser(["a", "b", "c"], mode="round-robin")
    assert [rr.choose(rng) for _ in range(5)] == ["a", "b", "c", "a", "b"]
    sc = DomainChooser(["good", "bad"], mode="score", explore=0.1)
    for _ in range(40):
        sc.record("good", True)
        sc.record("bad", False)
    p = sc.probabilities()
    assert p[0] > 0.85 and p[1] >= 0.05 - 1e-9  # exploration floor keeps 'bad' alive
    counts = {"good": 0, "bad": 0}
    for _ in range(400):
        counts[sc.choose(rng)] += 1
    assert counts["good"] > 4 * counts["bad"] > 0
    un = DomainChooser(["a", "b"], mode="uniform")
    assert np.allclose(un.probabilities(), 0.5)
    st = sc.state_dict()
    sc2 = DomainChooser(["good", "bad"], mode="score", explore=0.1)
    sc2.load_state_dict(st)
    assert np.allclose(sc2.probabilities(), p)
    with pytest.raises(ValueError):
        DomainChooser([], mode="uniform")


# ----------------------------------------------------------------------------- valuation
def test_valuation_aggregates_rows() -> None:
    rows = []
    for t in range(40):
        d = "good" if t % 2 == 0 else "bad"
        acc = d == "good" and t % 4 == 0 or (d == "bad" and t == 39)
        rows.append(
            {
                "step": t,
                "domain": d,
                "k": 4,
                "psnr": 30.0,
                "threshold": 29.5,
                "delta": 0.5 if acc else -0.5,
                "accepted": acc,
                "source_ids": [f"{d}{t % 3}"],
            }
        )
    v = compute_valuation(rows, bins=4, criterion="queue")
    assert v["domains"]["good"]["acceptance_rate"] == pytest.approx(0.5)
    assert v["domains"]["bad"]["acceptance_rate"] == pytest.approx(1 / 20)
    assert v["domains"]["bad"]["first_half_rate"] == 0 and v["domains"]["bad"]["second_half_rate"] > 0
    assert v["samples"]["good0"]["domain"] == "good" and v["samples"]["good0"]["tried"] > 0
    assert len(v["timeline"]["domains"]["good"]["rate"]) == 4
    assert v["accepted"] == 11 and v["iterations"] == 40


def test_stage_betas_are_written_with_the_lr() -> None:
    """A stage's Adam betas reach the optimizer at every step, even one continued from an
    earlier stage (ADL's ``beta1`` option for the adaptive stage)."""
    from types import SimpleNamespace

    from rawadapt.train.adl_config import ADLConfig
    from rawadapt.train.adl_stage import AdaptiveStage
    from rawadapt.train.config import OptimConfig

    m, opt = _net()
    optim = OptimConfig()
    stage = AdaptiveStage(
        "adaptive",
        {"s": [object()]},
        [object(), object()],
        4,
        lr=1e-3,
        optim=optim,
        adl=ADLConfig(beta1=0.0),
        patch=8,
        batch=2,
    )
    assert stage.betas == (0.0, optim.betas[1])
    ctx = SimpleNamespace(optimizer=opt)
    lr = stage.set_lr(ctx, 0)
    assert all(g["betas"] == (0.0, optim.betas[1]) and g["lr"] == lr for g in opt.param_groups)
    default = AdaptiveStage(
        "adaptive", {"s": [object()]}, [object(), object()], 4, lr=1e-3, optim=optim, adl=ADLConfig(), patch=8, batch=2
    )
    default.set_lr(ctx, 1)
    assert all(g["betas"] == tuple(optim.betas) for g in opt.param_groups)
