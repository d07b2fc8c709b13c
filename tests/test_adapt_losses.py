"""Self-supervised losses: values where they must vanish, the neighbour sub-sampler, errors."""

from __future__ import annotations

import pytest
import torch

from rawadapt.adapt.losses import (
    NEIGHBOUR_PAIRS,
    Nbr2NbrLoss,
    NeighborSubsampler,
    ZSN2NLoss,
    crop_even,
    make_loss,
    nbr2nbr_loss,
    pair_downsample,
    zsn2n_loss,
)
from rawadapt.errors import ConfigError, ShapeError


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


def test_pair_downsample_is_the_two_diagonal_means() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    d1, d2 = pair_downsample(x)
    # cell (0,0) = [[0,1],[4,5]]: D1 = (1+4)/2, D2 = (0+5)/2
    assert d1[0, 0, 0, 0] == 2.5 and d2[0, 0, 0, 0] == 2.5
    assert d1.shape == (1, 1, 2, 2)
    x3 = torch.rand(2, 3, 7, 9)  # odd sizes: the last row/column is dropped
    a1, a2 = pair_downsample(x3)
    b1, b2 = pair_downsample(x3[..., :6, :8])
    assert a1.shape == (2, 3, 3, 4) and torch.equal(a1, b1) and torch.equal(a2, b2)


@pytest.mark.parametrize("channels", [3, 4])
def test_losses_vanish_on_a_constant_image_with_identity(channels: int) -> None:
    y = torch.full((1, channels, 9, 12), 0.37)
    assert float(zsn2n_loss(identity, y)) == pytest.approx(0.0, abs=1e-12)
    loss = Nbr2NbrLoss(gamma_max=2.0, clip=False)
    assert float(loss(identity, y, 5, 10)) == pytest.approx(0.0, abs=1e-12)


def test_zsn2n_terms() -> None:
    torch.manual_seed(0)
    y = torch.rand(1, 3, 16, 16)
    # identity: the consistency term is exactly 0 and the residual term is mse(D1 y, D2 y)
    d1, d2 = pair_downsample(y)
    assert float(zsn2n_loss(identity, y)) == pytest.approx(float(((d1 - d2) ** 2).mean()), rel=1e-6)
    # a perfect denoiser of a constant scene scores below the identity on its noisy image
    clean = torch.full_like(y, 0.5)
    noisy = clean + 0.1 * torch.randn(y.shape)
    assert float(zsn2n_loss(lambda x: torch.full_like(x, 0.5), noisy)) < float(zsn2n_loss(identity, noisy))


def test_losses_have_gradients_through_f_and_input() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 4, 3, padding=1)
    y = torch.rand(1, 4, 10, 10, requires_grad=True)
    for loss in (ZSN2NLoss(), Nbr2NbrLoss()):
        conv.zero_grad()
        y.grad = None
        loss(lambda x: x + conv(x), y, 3, 10).backward()
        assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
        assert y.grad is not None and y.grad.abs().sum() > 0


def _index_image(channels: int, h: int, w: int) -> torch.Tensor:
    """Pixel value = 1000 * channel + flat position (unique per pixel, decodable)."""
    pos = torch.arange(h * w, dtype=torch.float64).reshape(h, w)
    return torch.stack([pos + 1000.0 * c for c in range(channels)])[None]


@pytest.mark.parametrize("channels", [3, 4])
def test_subsampler_picks_true_neighbours_same_for_all_planes(channels: int) -> None:
    h, w = 20, 26
    x = _index_image(channels, h, w)
    s = NeighborSubsampler(seed=3)
    idx = s.draw(x)
    assert idx.shape == (1, h // 2, w // 2, 2)
    g1, g2 = s.apply(x, idx, 0), s.apply(x, idx, 1)
    assert g1.shape == (1, channels, h // 2, w // 2)
    p1, p2 = g1[0, 0].long(), g2[0, 0].long()
    r1, c1, r2, c2 = p1 // w, p1 % w, p2 // w, p2 % w
    # 4-neighbours (never the same pixel, never diagonal) inside the same 2x2 cell
    assert torch.all((r1 - r2).abs() + (c1 - c2).abs() == 1)
    rows, cols = torch.meshgrid(torch.arange(h // 2), torch.arange(w // 2), indexing="ij")
    assert torch.all(r1 // 2 == rows) and torch.all(r2 // 2 == rows)
    assert torch.all(c1 // 2 == cols) and torch.all(c2 // 2 == cols)
    # every plane uses the same choice (packed RAW planes are sub-sampled together)
    for c in range(1, channels):
        assert torch.equal(g1[0, c] - 1000.0 * c, g1[0, 0]) and torch.equal(g2[0, c] - 1000.0 * c, g2[0, 0])
    # all 8 ordered pairs occur on a large enough image
    big = NeighborSubsampler(seed=0).draw(torch.zeros(1, 3, 64, 64))
    seen = {tuple(p) for p in big.reshape(-1, 2).tolist()}
    assert seen == set(NEIGHBOUR_PAIRS)


def test_subsampler_reproducible_by_seed() -> None:
    x = torch.zeros(2, 3, 32, 32)
    a, b, c = NeighborSubsampler(7), NeighborSubsampler(7), NeighborSubsampler(8)
    first = a.draw(x)
    assert torch.equal(first, b.draw(x))
    assert not torch.equal(first, c.draw(x))
    second = a.draw(x)
    assert not torch.equal(first, second)  # the generator advances
    a.reset()
    assert torch.equal(a.draw(x), first)
    loss1, loss2 = Nbr2NbrLoss(seed=1), Nbr2NbrLoss(seed=1)
    y = torch.rand(1, 3, 16, 16)
    assert torch.equal(loss1(torch.sigmoid, y, 2, 5), loss2(torch.sigmoid, y, 2, 5))


def test_nbr2nbr_regulariser_and_ramp() -> None:
    lan, orig = Nbr2NbrLoss.preset("lan"), Nbr2NbrLoss.preset("original")
    assert (lan.gamma_max, lan.clip, orig.gamma_max, orig.clip) == (0.1, True, 2.0, False)
    assert lan.gamma_at(0, 20) == 0.0 and lan.gamma_at(10, 20) == pytest.approx(0.05)
    assert orig.gamma_at(50, 100) == pytest.approx(1.0)
    torch.manual_seed(0)
    y = torch.rand(1, 3, 16, 16)
    f = lambda x: 0.5 * x + 0.2  # noqa: E731 - a non-identity map: the regulariser is non-zero
    base = nbr2nbr_loss(f, y, gamma=0.0, subsampler=NeighborSubsampler(0))
    reg = nbr2nbr_loss(f, y, gamma=1.0, subsampler=NeighborSubsampler(0))
    assert float(reg) > float(base) > 0
    with pytest.raises(ConfigError):
        Nbr2NbrLoss.preset("nope")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "shape,match",
    [
        ((1, 3, 1, 8), "too small"),
        ((1, 3, 8, 1), "too small"),
        ((1, 1, 8, 8), "3 planes"),
        ((1, 2, 8, 8), "3 planes"),
        ((3, 8, 8), "batch"),
    ],
)
def test_bad_inputs(shape: tuple[int, ...], match: str) -> None:
    y = torch.rand(*shape)
    with pytest.raises(ShapeError, match=match):
        zsn2n_loss(identity, y)
    with pytest.raises(ShapeError, match=match):
        Nbr2NbrLoss()(identity, y)


def test_smallest_sizes_and_min_size() -> None:
    y = torch.rand(1, 3, 3, 3)  # crops to 2x2: the minimum
    assert crop_even(y).shape[-2:] == (2, 2)
    zsn2n_loss(identity, y)
    Nbr2NbrLoss()(identity, y)
    with pytest.raises(ShapeError, match="at least 8x8"):
        zsn2n_loss(identity, torch.rand(1, 3, 6, 6), min_size=8)


def test_make_loss() -> None:
    assert make_loss("zsn2n").name == "zsn2n"
    n = make_loss("nbr2nbr", seed=4, gamma_max=2.0, clip=False)
    assert isinstance(n, Nbr2NbrLoss) and n.gamma_max == 2.0 and n.seed == 4
    with pytest.raises(ConfigError, match="unknown self-supervised loss"):
        make_loss("n2v")
    with pytest.raises(ConfigError):
        make_loss("zsn2n", gamma_max=1.0)


def test_zsn2n_tells_a_noise_conditioned_network_the_sub_images_halved_line() -> None:
    """ZS-N2N's sub-images average two noisy pixels: a noise-conditioned network gets the line
    (a/2, b/2) on them and (a, b) on the full image; a blind network is called unchanged."""
    from rawadapt.adapt.common import model_fn
    from rawadapt.models.base import Denoiser

    class Recorder(Denoiser):
        arch = "recorder"
        uses_noise = True

        def __init__(self) -> None:
            super().__init__(4)
            self.seen: list[tuple[int, list[float]]] = []

        def forward(self, x, sensor=None, iso=None, noise=None):  # type: ignore[no-untyped-def]
            self.seen.append((x.shape[-1], noise[0].tolist()))
            return x

    net = Recorder()
    f = model_fn(net, noise=(0.02, 0.0004))
    zsn2n_loss(f, torch.rand(1, 4, 8, 8))
    sub = [line for size, line in net.seen if size == 4]
    full = [line for size, line in net.seen if size == 8]
    assert len(sub) == 2 and all(line == pytest.approx([0.01, 0.0002]) for line in sub)
    assert len(full) == 1 and full[0] == pytest.approx([0.02, 0.0004])
    assert f.averaged(1) is f and f.averaged(2) is f.averaged(2.0)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="k > 0"):
        f.averaged(0)  # type: ignore[attr-defined]
    blind = model_fn(net)  # no line given: nothing to scale
    assert blind.averaged(2) is blind  # type: ignore[attr-defined]
