"""Denoise one image with a model: whole-image or tiled (bounded memory), under inference mode.

``denoise_image`` is the single entry point used by evaluation, the CLI and the baselines.

Speed options (measured by ``bench/bench_speed.py``, numbers in docs/models.md):

* ``torch.inference_mode`` is always used (no autograd bookkeeping).
* ``channels_last=True`` (default) feeds the network NHWC tensors; oneDNN's convolutions
  (depthwise ones especially) and ``F.layer_norm`` are faster on that layout: 1.2-1.55x for the
  backbones on this project's 2-core CPU, identical results up to float rounding.
  Converting the input is enough (the convolutions then reorder the small weights themselves),
  so the caller's model is not modified.
* ``precision="bf16"`` runs the network under bfloat16 autocast. It is NOT the default: on
  CPUs without native bf16 instructions (this project's AVX2 machine) oneDNN takes a slow
  path, 7-14x slower than fp32, and bf16 keeps 8 mantissa bits, so outputs move by up to ~5e-3
  (PSNR 61-79 dB against fp32, see docs/models.md). Useful on GPUs and on CPUs with
  AVX512-BF16/AMX.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from rawadapt.models.base import Denoiser

PRECISIONS = ("fp32", "bf16")


def _meta(model: Denoiser, sensor: str | None, iso: float | None, device: Any) -> tuple[Any, Any]:
    sensor_ids = model.sensor_ids([sensor], device=device) if model.uses_metadata else None
    iso_t = None if iso is None else torch.tensor([float(iso)], dtype=torch.float32, device=device)
    return sensor_ids, iso_t


def denoise_image(model: Denoiser, image: np.ndarray | torch.Tensor, *, sensor: str | None = None,
                  iso: float | None = None, cfa: str | None = None, tile: int | None = None, overlap: int = 32,
                  device: str | torch.device = "cpu", precision: str = "fp32",
                  channels_last: bool = True) -> np.ndarray:
    """Denoise a ``(C, H, W)`` image; returns a float32 ``(C, H, W)`` NumPy array (not clipped).

    Parameters
    ----------
    model
        Any :class:`~rawadapt.models.base.Denoiser` (put in eval mode here).
    image
        Normalised image of the model's space (4 packed RAW planes or 3 sRGB channels).
    sensor, iso
        Metadata for modulated models (ignored by others).
    cfa
        RAW only: the Bayer phase of ``image`` (its file's CFA, :attr:`Sample.cfa`). When it
        differs from the model's ``raw_phase`` (RGGB), the mosaic is reflect-padded by one
        row/column to that phase (exact, :func:`rawadapt.io.bayer.unify_pad`) and the padding
        removed afterwards. None = feed the planes as they are.
    tile
        Tile side in pixels (packed pixels for RAW); None or 0 = whole image at once. Tiles are
        blended with :func:`rawadapt.eval.tiling.tiled_forward`, so memory is bounded by the
        tile, not the image.
    overlap
        Overlap between tiles (blended), pixels; clamped to ``tile - 1``.
    device
        Where to run the model.
    precision
        ``"fp32"`` (default) or ``"bf16"`` (CPU/GPU autocast; see the module docstring).
    channels_last
        Feed the network channels-last (NHWC) tensors (default): the same result up to float
        rounding (~1e-7), faster on CPU (see the module docstring). Only the input is
        converted; the model is left as it is.

    Raises
    ------
    ShapeError
        The image does not have the model's number of channels.
    UnknownSensorError
        ``sensor`` is not in the model's vocabulary and its policy is ``"error"``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    model.eval()
    x = torch.as_tensor(np.ascontiguousarray(image) if isinstance(image, np.ndarray) else image)
    x = x.to(device=device, dtype=torch.float32)
    if x.ndim != 3:
        raise ValueError(f"denoise_image expects (C, H, W), got {tuple(x.shape)}")
    model.check_input(x[None])
    sensor_ids, iso_t = _meta(model, sensor, iso, device)
    dev_type = torch.device(device).type

    def net(t: torch.Tensor) -> torch.Tensor:
        ctx = (torch.autocast(dev_type, dtype=torch.bfloat16) if precision == "bf16"
               else contextlib.nullcontext())
        if channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        with ctx:
            return model(t, sensor_ids, iso_t).float().contiguous()

    unify = (cfa is not None and x.shape[0] == 4 and getattr(model, "raw_phase", None) == "RGGB"
             and cfa.upper() != "RGGB")
    if unify:
        from rawadapt.io.bayer import unify_pad

        x = unify_pad(x, cfa)  # type: ignore[arg-type]
    with torch.inference_mode():
        if not tile or (x.shape[-2] <= tile and x.shape[-1] <= tile):
            y = net(x[None])[0]
        else:
            from rawadapt.eval.tiling import tiled_forward

            y = tiled_forward(net, x[None], tile=int(tile), overlap=min(int(overlap), int(tile) - 1))[0]
    if unify:
        from rawadapt.io.bayer import deunify_pad

        y = deunify_pad(y, cfa)  # type: ignore[arg-type]
    return y.float().cpu().numpy()
