"""Per-image PSNR/SSIM against scikit-image's implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from rawadapt.metrics import evaluate_pair, psnr, psnr_per_image, ssim, ssim_per_image


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("size", [(33, 47), (64, 64)])
def test_against_skimage(channels: int, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(channels)
    a = rng.random((channels, *size))
    b = np.clip(a + 0.05 * rng.standard_normal(a.shape), 0, 1)
    ref_ssim = structural_similarity(
        b, a, data_range=1.0, channel_axis=0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(b, a) == pytest.approx(ref_ssim, abs=1e-10)
    assert psnr(b, a) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-10)


def test_per_image_mean_not_pooled() -> None:
    rng = np.random.default_rng(0)
    clean = rng.random((2, 3, 16, 16))
    noisy = clean.copy()
    noisy[0] += 0.01
    noisy[1] += 0.1
    per = psnr_per_image(noisy, clean)
    assert per == pytest.approx([40.0, 20.0])
    assert psnr(noisy, clean) == pytest.approx(30.0)  # a pooled MSE would give ~23 dB
    assert ssim_per_image(torch.from_numpy(noisy), torch.from_numpy(clean)).shape == (2,)


def test_evaluate_pair_clips_and_small_images() -> None:
    clean = np.full((3, 8, 8), 1.0)
    out = evaluate_pair(clean + 0.5, clean)  # clipped back to 1 -> identical
    assert out["psnr"] == float("inf") and np.isnan(out["ssim"])
