"""Pictures of LAN (LAN paper): the noisy, adapted and denoised images side by side (Fig. 4),
histograms of the pretraining, new and adapted noise (Fig. 6), and PSNR over the adaptation
iterations (Fig. 5). PNG via matplotlib's Agg backend, written atomically.

Images are ``(C, H, W)`` arrays in [0, 1]: 3-plane sRGB shown as is; 4-plane packed RAW
(R, G1, G2, B) shown as a quick RGB preview ``(R, (G1 + G2) / 2, B)`` with a gamma of 1/2.2
after scaling by the 99th percentile (a preview only, no colour management).

Noise in the histograms is ``noisy - clean`` (pretraining and new noise) and
``adapted input - clean`` for the adapted noise (``y + tanh(phi) - x``), pooled over all
channels and pixels.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rawadapt.utils.atomic import atomic_path


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str], dpi: int) -> Path:
    plt = _plt()
    p = Path(path)
    with atomic_path(p, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return p


def preview(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` -> ``(H, W, 3)`` float in [0, 1] for display (see the module docstring)."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 3 or a.shape[0] not in (3, 4):
        raise ValueError(f"expected a (3|4, H, W) image, got shape {a.shape}")
    if a.shape[0] == 4:
        rgb = np.stack([a[0], 0.5 * (a[1] + a[2]), a[3]])
        scale = float(np.percentile(rgb, 99)) or 1.0
        rgb = np.clip(rgb / scale, 0, 1) ** (1 / 2.2)
    else:
        rgb = np.clip(a, 0, 1)
    return np.moveaxis(rgb, 0, -1)


def plot_adaptation(
    path: str | os.PathLike[str],
    noisy: np.ndarray,
    adapted: np.ndarray,
    denoised: np.ndarray,
    *,
    clean: np.ndarray | None = None,
    titles: Sequence[str] | None = None,
    metrics: Mapping[str, float] | None = None,
    dpi: int = 110,
) -> Path:
    """Noisy | adapted input (LAN) | denoised [| clean], side by side (paper Fig. 4).

    Parameters
    ----------
    path
        Output PNG.
    noisy, adapted, denoised
        ``(C, H, W)`` arrays.
    clean
        Optional reference shown as a fourth panel.
    titles
        Panel titles (defaults describe the panels).
    metrics
        Optional ``{"psnr_before": .., "psnr_after": ..}`` added to the denoised panel's title.
    """
    plt = _plt()
    panels = [noisy, adapted, denoised] + ([clean] if clean is not None else [])
    names = list(titles) if titles else ["noisy", "adapted input (LAN)", "denoised"]
    if not titles and clean is not None:
        names.append("clean")
    if metrics and metrics.get("psnr_after") is not None:
        names[2] = f"{names[2]}\nPSNR {metrics.get('psnr_before', float('nan')):.2f} -> {metrics['psnr_after']:.2f} dB"
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.5))
    for ax, img, name in zip(np.atleast_1d(axes), panels, names):
        ax.imshow(preview(img), interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path, dpi)


def plot_noise_histograms(
    path: str | os.PathLike[str],
    *,
    pretrain_noise: np.ndarray | None,
    new_noise: np.ndarray,
    adapted_noise: np.ndarray,
    bins: int = 101,
    limit: float | None = None,
    quantum: float | None = None,
    dpi: int = 110,
) -> Path:
    """Histograms of the pretraining noise, the new noise and the adapted noise (paper Fig. 6).

    Parameters
    ----------
    pretrain_noise
        ``noisy - clean`` of pretraining data (None to omit).
    new_noise
        ``noisy - clean`` of the test image.
    adapted_noise
        ``adapted input - clean`` of the test image.
    bins
        Histogram bins over ``[-limit, limit]``.
    limit
        Half-width of the range (default: the 99.5th percentile of |new noise|, at least 1/255).
    quantum
        Step of quantised data (1/255 for 8-bit sRGB): bins are then centred on its multiples
        (one bin per code value), so quantised noise does not alias into empty bins.
    """
    plt = _plt()
    new = np.asarray(new_noise, dtype=np.float64).ravel()
    lim = float(limit) if limit else max(float(np.percentile(np.abs(new), 99.5)), 1 / 255)
    if quantum:
        k = int(np.ceil(lim / quantum))
        edges = (np.arange(-k, k + 2) - 0.5) * quantum
        lim = (k + 0.5) * quantum
    else:
        edges = np.linspace(-lim, lim, bins + 1)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    series = [
        ("pretraining noise", pretrain_noise, "tab:blue"),
        ("new noise", new_noise, "tab:orange"),
        ("adapted noise (LAN)", adapted_noise, "tab:green"),
    ]
    for name, data, colour in series:
        if data is None:
            continue
        d = np.asarray(data, dtype=np.float64).ravel()
        ax.hist(
            np.clip(d, -lim, lim),
            bins=edges,
            density=True,
            histtype="step",
            linewidth=1.6,
            color=colour,
            label=f"{name} (std {d.std():.4f})",
        )
    ax.set_xlabel("noise value (data range 1)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path, dpi)


def plot_iteration_curves(
    path: str | os.PathLike[str],
    curves: Mapping[str, Sequence[float]],
    *,
    baseline: float | None = None,
    ylabel: str = "PSNR (dB)",
    title: str | None = None,
    dpi: int = 110,
) -> Path:
    """Mean PSNR after each adaptation iteration, one line per method (paper Fig. 5).

    ``curves[name][k]`` is the value after ``k`` updates (entry 0 = pretrained).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, values in curves.items():
        v = np.asarray(values, dtype=np.float64)
        ax.plot(np.arange(len(v)), v, marker="o", markersize=2.5, label=name)
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", linewidth=1, label="pretrained")
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path, dpi)
