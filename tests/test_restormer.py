"""The compact Restormer: the Denoiser contract (shapes, spaces, metadata), gradients, determinism."""

from __future__ import annotations

import pytest
import torch

from rawadapt.errors import ShapeError
from rawadapt.models import build_model
from rawadapt.models.restormer import Restormer

TINY = {"dim": 8, "num_blocks": [1, 1, 1], "heads": [1, 2, 2], "num_refinement": 1}


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("size", [(17, 23), (5, 9), (1, 1), (32, 32)])
def test_shapes_any_size_both_spaces(channels: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    m = build_model({"arch": "restormer", "in_channels": channels, **TINY}).eval()
    x = torch.rand(2, channels, *size)
    with torch.no_grad():
        y = m(x, torch.tensor([0, 1]), torch.tensor([100.0, 800.0]))  # metadata accepted, ignored
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert m.space == ("raw" if channels == 4 else "srgb")


def test_default_config_runs_and_round_trips_config() -> None:
    m = Restormer(4)
    assert m.config()["num_blocks"] == [1, 2, 2, 2] and m.config()["heads"] == [1, 2, 4, 8]
    m2 = build_model(m.config())
    assert m2.config() == m.config() and m2.num_parameters() == m.num_parameters()
    with torch.no_grad():
        assert m.eval()(torch.rand(1, 4, 19, 13)).shape == (1, 4, 19, 13)


def test_metadata_is_ignored() -> None:
    torch.manual_seed(0)
    m = build_model({"arch": "restormer", "in_channels": 4, "sensors": ["a", "b"], **TINY}).eval()
    x = torch.rand(1, 4, 16, 16)
    with torch.no_grad():
        a = m(x)
        assert torch.equal(a, m(x, torch.tensor([1]), torch.tensor([6400.0])))
    assert not m.uses_metadata
    assert m.sensor_ids(["never-seen"]).tolist() == [-1]  # no error: the model ignores sensors


def test_not_identity_and_residual() -> None:
    torch.manual_seed(0)
    m = build_model({"arch": "restormer", "in_channels": 3, **TINY}).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        y = m(x)
        assert not torch.allclose(y, x)
        torch.nn.init.zeros_(m.output.weight)  # zero last layer -> exactly the input (residual)
        assert torch.equal(m(x), x)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    m = build_model({"arch": "restormer", "in_channels": 4, **TINY}).train()
    x = torch.rand(2, 4, 12, 12, requires_grad=True)
    m(x).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing
    assert sum(float(p.grad.abs().sum()) for p in m.parameters()) > 0


def test_deterministic() -> None:
    torch.manual_seed(3)
    a = build_model({"arch": "restormer", "in_channels": 4, **TINY}).eval()
    torch.manual_seed(3)
    b = build_model({"arch": "restormer", "in_channels": 4, **TINY}).eval()
    x = torch.rand(2, 4, 21, 14)
    with torch.no_grad():
        ya, yb = a(x), b(x)
        assert torch.equal(ya, yb)
        assert torch.equal(a(x), ya)  # same input, same output
        # batch independence: an image's output does not depend on its batch neighbours
        torch.testing.assert_close(a(x[:1]), ya[:1], rtol=0, atol=1e-6)


def test_layers_and_errors() -> None:
    m = Restormer(3, **TINY)
    assert isinstance(m.first_layer(), torch.nn.Conv2d) and m.first_layer().in_channels == 3
    assert isinstance(m.last_layer(), torch.nn.Conv2d) and m.last_layer().out_channels == 3
    with pytest.raises(ShapeError, match="expects"):
        m(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError):
        Restormer(3, dim=9)
    with pytest.raises(ValueError):
        Restormer(3, dim=8, num_blocks=[1, 1], heads=[1])
    with pytest.raises(ValueError, match="heads"):
        Restormer(3, dim=6, num_blocks=[1], heads=[4])


def test_layernorm_matches_reference_on_both_layouts() -> None:
    """The channel LayerNorm equals torch's LayerNorm applied per pixel (Restormer's to_3d ->
    LayerNorm -> to_4d), for NCHW and channels-last inputs."""
    from rawadapt.models.restormer import _LayerNorm2d

    torch.manual_seed(0)
    ln = _LayerNorm2d(6)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.2, 0.2)
    ref = torch.nn.LayerNorm(6)
    ref.load_state_dict(ln.state_dict())
    x = torch.randn(2, 6, 5, 7)
    want = ref(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), want)
    torch.testing.assert_close(ln(x.contiguous(memory_format=torch.channels_last)), want)
