"""The model contract: shapes at odd sizes, both spaces, modulation behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rawadapt.errors import ConfigError, ShapeError, UnknownSensorError
from rawadapt.models import build_model


def _perturb_modulation(model: torch.nn.Module) -> None:
    # the modulation MLPs start at the identity; give them random weights to see their effect
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.modulation.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("arch", ["unet", "dncnn"])
@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("size", [(17, 23), (32, 32), (5, 9)])
def test_shapes(arch: str, channels: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    kw = {"width": 4, "depth": 2} if arch == "unet" else {"width": 4, "depth": 3}
    m = build_model({"arch": arch, "in_channels": channels, "sensors": ["a", "b"], **kw}).eval()
    x = torch.rand(2, channels, *size)
    with torch.no_grad():
        y = m(x, torch.tensor([0, 1]), torch.tensor([100.0, 800.0]))
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_wrong_channels() -> None:
    m = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["a"]})
    with pytest.raises(ShapeError, match="expects"):
        m(torch.rand(1, 3, 8, 8))
    with pytest.raises(ConfigError):
        build_model({"arch": "nope"})


def test_modulation_reacts_to_metadata_and_switches() -> None:
    torch.manual_seed(0)
    m = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["a", "b"]}).eval()
    _perturb_modulation(m)
    x = torch.rand(1, 4, 16, 16)
    with torch.no_grad():
        base = m(x, torch.tensor([0]), torch.tensor([100.0]))
        assert not torch.allclose(base, m(x, torch.tensor([0]), torch.tensor([1600.0])))
        assert not torch.allclose(base, m(x, torch.tensor([1]), torch.tensor([100.0])))
    for flags, changes in [({"use_iso": False}, "iso"), ({"use_sensor": False}, "sensor")]:
        torch.manual_seed(0)
        m2 = build_model(
            {"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["a", "b"], **flags}
        ).eval()
        _perturb_modulation(m2)
        with torch.no_grad():
            a = m2(x, torch.tensor([0]), torch.tensor([100.0]))
            if changes == "iso":
                assert torch.equal(a, m2(x, torch.tensor([0]), torch.tensor([1600.0])))
                assert not torch.allclose(a, m2(x, torch.tensor([1]), torch.tensor([100.0])))
            else:
                assert torch.equal(a, m2(x, torch.tensor([1]), torch.tensor([100.0])))
                assert not torch.allclose(a, m2(x, torch.tensor([0]), torch.tensor([1600.0])))
    plain = build_model(
        {"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "use_iso": False, "use_sensor": False}
    )
    assert plain.modulation is None and not plain.uses_metadata


def test_unknown_sensor_policy() -> None:
    m = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["a", "b"]}).eval()
    _perturb_modulation(m)
    with pytest.raises(UnknownSensorError, match="'zzz'"):
        m.sensor_ids(["zzz"])
    x = torch.rand(1, 4, 8, 8)
    m.set_unknown_sensor_policy("average")
    with torch.no_grad():
        avg = m(x, m.sensor_ids(["zzz"]), torch.tensor([400.0]))
    m.set_unknown_sensor_policy("iso-only")
    with torch.no_grad():
        iso_only = m(x, m.sensor_ids(["zzz"]), torch.tensor([400.0]))
    assert torch.isfinite(avg).all() and not torch.allclose(avg, iso_only)


@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_denoise_image_feeds_raw_models_the_rggb_phase(cfa: str) -> None:
    from rawadapt.io.bayer import deunify_pad, unify_pad
    from rawadapt.models.inference import denoise_image

    torch.manual_seed(0)
    m = build_model({"arch": "dncnn", "in_channels": 4, "depth": 3, "width": 4}).eval()
    assert m.raw_phase == "RGGB"
    x = torch.rand(4, 9, 11)
    with torch.no_grad():
        ref = deunify_pad(m(unify_pad(x, cfa)[None])[0], cfa)
    got = denoise_image(m, x.numpy(), cfa=cfa)
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-5)
    assert got.shape == (4, 9, 11)
    # an identity network gives the input back exactly for every phase
    with torch.no_grad():
        m.body[-1].weight.zero_()
        m.body[-1].bias.zero_()
    np.testing.assert_array_equal(denoise_image(m, x.numpy(), cfa=cfa), x.numpy())
