"""Tiled inference equals whole-image inference (stated tolerances), seams included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rawadapt.models import build_model
from rawadapt.models.inference import denoise_image
from rawadapt.models.tiling import axis_weights, tile_starts, tiled_forward


def _dncnn(channels: int = 4, depth: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    m = build_model({"arch": "dncnn", "in_channels": channels, "depth": depth, "width": 8}).eval()
    with torch.no_grad():  # non-trivial BN statistics
        for name, b in m.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                b.uniform_(-0.1, 0.1)
    return m


def test_layout_and_weights() -> None:
    assert tile_starts(100, 40, 10) == [0, 30, 60]
    assert tile_starts(40, 40, 10) == [0] and tile_starts(7, 40, 10) == [0]
    w = axis_weights(32, ramp_start=True, ramp_end=False, overlap=16, guard=4)
    assert torch.all(w[:4] == 0) and w[4] > 0 and torch.all(w[12:] == 1) and torch.all(torch.diff(w) >= 0)
    assert torch.all(axis_weights(8, ramp_start=False, ramp_end=False, overlap=4, guard=1) == 1)
    # mirrored ramps of two tiles overlapping by exactly `overlap` pixels sum to 1
    a = axis_weights(32, ramp_start=False, ramp_end=True, overlap=16, guard=4)
    b = axis_weights(32, ramp_start=True, ramp_end=False, overlap=16, guard=4)
    torch.testing.assert_close(a[16:] + b[:16], torch.ones(16, dtype=a.dtype))
    with pytest.raises(ValueError):
        tiled_forward(lambda t: t, torch.zeros(1, 1, 8, 8), tile=8, overlap=8)
    with pytest.raises(ValueError):
        tiled_forward(lambda t: t, torch.zeros(1, 1, 8, 8), tile=8, overlap=4, guard=2)


@pytest.mark.parametrize("size", [(97, 131), (64, 64), (33, 200), (20, 15)])
def test_identity_and_constant_weights(size: tuple[int, int]) -> None:
    """Blending is a partition of unity: the identity comes back exactly everywhere."""
    x = torch.rand(2, 3, *size, dtype=torch.float64)
    y = tiled_forward(lambda t: t, x, tile=32, overlap=12)
    torch.testing.assert_close(y, x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("size", [(70, 90), (65, 33), (31, 29), (48, 48)])
@pytest.mark.parametrize("batch", [1, 3])
def test_cnn_receptive_field_within_guard_is_exact(size: tuple[int, int], batch: int) -> None:
    """DnCNN of depth 3 sees 3 pixels around each output pixel; with overlap 16 the guard band is
    4 pixels, so every pixel that carries weight was computed from its full true neighbourhood.
    The only difference left is float32 rounding of the weighted sum: tolerance 1e-5 (values ~1)."""
    m = _dncnn(4, depth=3)
    x = torch.rand(1, 4, *size)
    with torch.no_grad():
        whole = m(x)
        tiled = tiled_forward(m, x, tile=24, overlap=16, batch=batch)
    err = (tiled - whole).abs()
    assert float(err.max()) < 1e-5, float(err.max())


def test_receptive_field_beyond_guard_shows_seams() -> None:
    """The test above can fail: a deeper DnCNN (radius 12 > guard 4) is NOT exact at seams."""
    m = _dncnn(4, depth=12)
    with torch.no_grad():  # default init shrinks the signal layer by layer; keep it alive
        for mod in m.modules():
            if isinstance(mod, torch.nn.Conv2d):
                mod.weight.mul_(2.0)
    x = torch.rand(1, 4, 70, 70)
    with torch.no_grad():
        err = (tiled_forward(m, x, tile=24, overlap=16) - m(x)).abs()
    assert float(err.max()) > 1e-4


def _unet(gain: float = 1.0, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    m = build_model(
        {"arch": "unet", "in_channels": 3, "width": 8, "depth": 2, "use_sensor": False, "use_iso": False}
    ).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                mod.weight.mul_(gain)
    return m


@pytest.mark.parametrize("seed", [0, 1])
def test_unet_close_to_whole_image(seed: int) -> None:
    """A U-Net (depth 2: receptive radius ~ 30 px, input padded to a multiple of 4) does not fit
    in the guard band, so tiles differ slightly near seams. Stated tolerance for tile 64 /
    overlap 32 on a 96x120 image: max abs error < 1e-4 (observed <= 3e-6 at PyTorch's default
    initialisation; float32 rounding alone is ~1e-7)."""
    m = _unet(seed=seed)
    x = torch.rand(1, 3, 96, 120)
    with torch.no_grad():
        err = (tiled_forward(m, x, tile=64, overlap=32) - m(x)).abs()
    assert float(err.max()) < 1e-4, float(err.max())


def test_unet_seam_error_shrinks_with_overlap() -> None:
    """With weights scaled up (a strongly non-local network, outputs moved ~0.25 from the input)
    the seam error is visible, and a wider overlap reduces it several-fold."""
    m = _unet(gain=2.4)
    x = torch.rand(1, 3, 96, 120)
    with torch.no_grad():
        whole = m(x)
        e8 = (tiled_forward(m, x, tile=64, overlap=8) - whole).abs().mean()
        e32 = (tiled_forward(m, x, tile=64, overlap=32) - whole).abs().mean()
    assert float(e32) < 0.5 * float(e8) and float(e32) < 5e-3, (float(e8), float(e32))


def test_denoise_image_uses_tiling_and_matches() -> None:
    m = _dncnn(3, depth=3)
    img = np.random.default_rng(0).random((3, 75, 61)).astype(np.float32)
    whole = denoise_image(m, img)
    tiled = denoise_image(m, img, tile=32, overlap=16)
    assert tiled.dtype == np.float32 and tiled.shape == img.shape
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5)


def test_large_image_bounded_memory() -> None:
    """1000x1000 sRGB through a tiny model with tile 128: runs, and every call saw at most one
    128x128 tile (memory is bounded by the tile, not the image)."""
    m = _dncnn(3, depth=3)
    seen: list[tuple[int, ...]] = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape))
        return m(t)

    x = torch.rand(1, 3, 1000, 1000)
    with torch.inference_mode():
        y = tiled_forward(fn, x, tile=128, overlap=16)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert max(s[-1] for s in seen) == 128 and max(s[0] for s in seen) == 1 and len(seen) == 81
    with torch.inference_mode():  # spot-check the interior against the model on a crop
        ref = m(x[:, :, 400:500, 400:500])
    torch.testing.assert_close(y[:, :, 410:490, 410:490], ref[:, :, 10:90, 10:90], rtol=0, atol=1e-5)


def test_denoise_image_options() -> None:
    """channels_last gives the fp32 result up to rounding; bf16 autocast is close (8-bit mantissa,
    ~1e-2 on values ~1), and bad options are refused."""
    torch.manual_seed(0)
    m = build_model({"arch": "unet", "in_channels": 4, "width": 4, "depth": 2, "sensors": ["a"]})
    img = np.random.default_rng(0).random((4, 40, 36)).astype(np.float32)
    ref = denoise_image(m, img, sensor="a", iso=800)
    cl = denoise_image(m, img, sensor="a", iso=800, channels_last=True, tile=24, overlap=8)
    np.testing.assert_allclose(cl, denoise_image(m, img, sensor="a", iso=800, tile=24, overlap=8), atol=1e-5)
    bf = denoise_image(m, img, sensor="a", iso=800, precision="bf16")
    assert bf.dtype == np.float32 and 0 < np.abs(bf - ref).max() < 5e-2
    with pytest.raises(ValueError, match="precision"):
        denoise_image(m, img, precision="fp8")
    from rawadapt.errors import ShapeError

    with pytest.raises(ShapeError):
        denoise_image(m, img[:3])
