"""LAN and the fine-tuning baselines: what changes, what is restored, and that LAN helps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rawadapt.adapt.api import ADAPT_METHODS, adapt_image, make_adapter
from rawadapt.adapt.common import WeightSnapshot
from rawadapt.adapt.finetune import FineTuneAdapter
from rawadapt.adapt.lan import LANAdapter
from rawadapt.adapt.meta import MetaConfig, meta_train
from rawadapt.data.sample import Sample
from rawadapt.errors import ConfigError, ShapeError
from rawadapt.models import build_model


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _clean_images(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """Smooth colour fields with a few flat rectangles (edges): easy to denoise, not trivial."""
    low = torch.rand(n, 3, 6, 6, generator=gen)
    img = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    for i in range(n):
        for _ in range(3):
            r0, c0 = torch.randint(0, size - 8, (2,), generator=gen).tolist()
            h, w = torch.randint(4, size // 2, (2,), generator=gen).tolist()
            img[i, :, r0 : r0 + h, c0 : c0 + w] = torch.rand(3, 1, 1, generator=gen)
    return img.clamp(0, 1)


@pytest.fixture(scope="module")
def pretrained() -> torch.nn.Module:
    """A tiny DnCNN (with BatchNorm) trained for ~2 s on Gaussian noise sigma 0.05."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = build_model({"arch": "dncnn", "in_channels": 3, "depth": 5, "width": 16})
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    net.train()
    for _ in range(150):
        c = _clean_images(8, 32, gen)
        loss = F.mse_loss(net(c + 0.05 * torch.randn(c.shape, generator=gen)), c)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def test_lan_raises_psnr_on_unseen_noise(pretrained: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(1)
    clean = _clean_images(3, 48, gen)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=gen)  # unseen: twice the training sigma
    for loss in ("zsn2n", "nbr2nbr"):
        gains = []
        for i in range(3):
            r = adapt_image(pretrained, noisy[i], clean=clean[i], method="lan", loss=loss, iters=20, seed=i)
            assert len(r.psnr) == 21 and len(r.loss) == 20 and len(r.ssim) == 21
            gains.append(r.psnr_after - r.psnr_before)
        assert np.mean(gains) > 0.05, (loss, gains)
        assert sum(g > 0 for g in gains) >= 2, (loss, gains)


def test_lan_only_changes_the_offset(pretrained: torch.nn.Module) -> None:
    before = _state(pretrained)
    flags = [p.requires_grad for p in pretrained.parameters()]
    pretrained.train()  # the adapter must evaluate in eval mode and put the mode back
    seen_modes: list[bool] = []
    x = torch.rand(3, 20, 20)
    adapter = LANAdapter(pretrained, loss="nbr2nbr", iters=4)
    grads_on: list[bool] = []

    def spy(step: int, value: float) -> None:
        seen_modes.append(pretrained.training)
        grads_on.append(any(p.requires_grad for p in pretrained.parameters()))

    r1 = adapter.adapt(x, seed=0, callback=spy)
    assert seen_modes == [False] * 4 and grads_on == [False] * 4  # frozen, eval mode during adaptation
    assert pretrained.training and [p.requires_grad for p in pretrained.parameters()] == flags
    pretrained.eval()
    assert _same(before, _state(pretrained))  # weights (and BN buffers) bit-identical
    assert not np.array_equal(r1.adapted_input, x.numpy())  # the offset moved
    assert np.abs(r1.adapted_input - x.numpy()).max() < 1.0  # tanh bound
    r2 = adapter.adapt(x, seed=0)  # a fresh offset per image: same input, same result
    assert np.array_equal(r1.denoised, r2.denoised)
    free = LANAdapter(pretrained, iters=3, bound="none").adapt(x)
    assert free.adapted_input.shape == (3, 20, 20)


@pytest.mark.parametrize("scope", ["first-layer", "last-layer", "full"])
def test_finetune_changes_only_its_layer_and_restores(pretrained: torch.nn.Module, scope: str) -> None:
    before = _state(pretrained)
    layer = {"first-layer": pretrained.first_layer(), "last-layer": pretrained.last_layer()}.get(scope)
    own = {id(p) for p in layer.parameters()} if layer is not None else {id(p) for p in pretrained.parameters()}
    names = {n for n, p in pretrained.named_parameters() if id(p) in own}
    changed_during: list[set[str]] = []

    def spy(step: int, value: float) -> None:
        now = _state(pretrained)
        changed_during.append({k for k in before if not torch.equal(before[k], now[k])})

    x = torch.rand(3, 24, 24)
    FineTuneAdapter(pretrained, scope=scope, iters=3, lr=1e-3).adapt(x, callback=spy)  # type: ignore[arg-type]
    assert changed_during[-1] and changed_during[-1] <= names
    if scope != "full":
        assert len(changed_during[-1]) == len(names)  # weight and bias of that one layer
    assert _same(before, _state(pretrained))  # restored after the image


def test_weights_restored_between_images(pretrained: torch.nn.Module) -> None:
    before = _state(pretrained)
    gen = torch.Generator().manual_seed(2)
    a, b = torch.rand(3, 16, 16, generator=gen), torch.rand(3, 16, 16, generator=gen)
    adapter = make_adapter(pretrained, "full", iters=3, lr=1e-3)
    rb_alone = adapter.adapt(b)
    adapter.adapt(a)
    rb_after_a = adapter.adapt(b)  # b after a: identical to b alone
    assert np.array_equal(rb_alone.denoised, rb_after_a.denoised)
    assert _same(before, _state(pretrained))
    snap = WeightSnapshot.of_model(pretrained)
    with torch.no_grad():
        next(pretrained.parameters()).add_(1.0)
    assert not snap.matches()
    snap.restore()
    assert snap.matches() and _same(before, _state(pretrained))


def test_bad_inputs_give_clear_errors(pretrained: torch.nn.Module) -> None:
    for method in ADAPT_METHODS:
        with pytest.raises(ShapeError, match="4 channels but the dncnn model expects 3"):
            adapt_image(pretrained, torch.rand(4, 16, 16), method=method, iters=1)
        with pytest.raises(ShapeError, match="too small"):
            adapt_image(pretrained, torch.rand(3, 1, 16), method=method, iters=1)
    with pytest.raises(ShapeError, match="sizes differ"):
        adapt_image(pretrained, torch.rand(3, 16, 16), clean=torch.rand(3, 16, 18), iters=1)
    with pytest.raises(ShapeError, match=r"\(C, H, W\)"):
        adapt_image(pretrained, torch.rand(16, 16), iters=1)
    with pytest.raises(ConfigError, match="unknown adaptation method"):
        make_adapter(pretrained, "nope")
    with pytest.raises(ConfigError, match="bound"):
        make_adapter(pretrained, "lan", bound="sigmoid")


def test_raw_packed_planes_and_odd_sizes() -> None:
    torch.manual_seed(0)
    net = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["a"]}).eval()
    x = torch.rand(4, 17, 23)
    for method in ("lan", "last-layer"):
        r = adapt_image(net, x, clean=x.clamp(0, 1), method=method, loss="nbr2nbr", iters=2, sensor="a", iso=800)
        assert r.denoised.shape == (4, 17, 23) and len(r.psnr) == 3


def test_meta_training_changes_weights_and_feeds_meta_method(pretrained: torch.nn.Module) -> None:
    import copy

    gen = torch.Generator().manual_seed(3)
    clean = _clean_images(2, 32, gen)
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=gen)
    samples = [Sample(noisy=noisy[i].numpy(), clean=clean[i].numpy(), sensor="s", space="srgb") for i in range(2)]
    for algorithm in ("fomaml", "reptile"):
        model = copy.deepcopy(pretrained)
        before = _state(model)
        log = meta_train(
            model,
            samples,
            MetaConfig(algorithm=algorithm, meta_iters=3, inner_steps=2, patch=16, tasks_per_batch=2, outer_lr=1e-4),
        )
        assert len(log["outer_loss"]) == 3 and np.isfinite(log["outer_loss"]).all()
        after = _state(model)
        assert not _same(before, after)
        # BatchNorm running statistics are untouched (eval mode throughout)
        assert all(torch.equal(before[k], after[k]) for k in before if "running" in k)
        r = adapt_image(model, noisy[0], clean=clean[0], method="meta", iters=2)
        assert r.method == "meta" and _same(after, _state(model))
    with pytest.raises(ConfigError):
        MetaConfig(algorithm="maml2").validate()  # type: ignore[arg-type]
