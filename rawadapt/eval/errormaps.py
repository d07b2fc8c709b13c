"""Crops for eyes: RAW shown through the camera pipeline, and error maps on a shared scale.

* RAW crops (packed planes) are rendered with :func:`rawadapt.noise.pipeline.render_srgb` using
  the sample's CFA, the sensor profile's colour matrix when the sensor is a built-in profile,
  and ONE white balance (gray world) and exposure gain (mean to mid-grey, highlights kept)
  estimated on the clean crop — the same for noisy,
  every method and clean, so differences between panels are the methods', not the rendering's.
* Error maps are ``|denoised - clean|`` averaged over channels (RAW: over the 4 packed planes,
  shown at the rendered size by repeating each packed pixel 2x2), coloured with one ``vmax``
  shared by every panel of an image (the 99th percentile of the noisy input's error), so a
  darker map is a smaller error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rawadapt.noise.pipeline import PLANE_CHANNEL, gray_world_wb, render_srgb, to_uint8_hwc

#: display exposure: the clean crop's mean goes to MID_GREY (linear) after white balance, unless
#: that would push its 99th percentile above DISPLAY_WHITE (then the highlights decide)
MID_GREY = 0.2
DISPLAY_WHITE = 0.95
ERROR_CMAP = "inferno"


@dataclass(frozen=True)
class Display:
    """How to render the crops of one image (see the module docstring)."""

    space: str
    cfa: str | None = None
    wb: tuple[float, float, float] | None = None
    ccm: Any = None
    gain: float = 1.0


def display_for(clean: np.ndarray, space: str, *, cfa: str | None = None, sensor: str | None = None) -> Display:
    """Rendering parameters estimated on the clean crop (RAW), or plain sRGB."""
    if space != "raw":
        return Display(space=space)

    c = np.asarray(clean, dtype=np.float64)
    wb = gray_world_wb(c)
    plane = np.array([wb[k] for k in PLANE_CHANNEL])[:, None, None]
    balanced = c * plane
    mean, top = float(balanced.mean()), float(np.percentile(balanced, 99))
    gain = min(MID_GREY / mean if mean > 0 else 1.0, DISPLAY_WHITE / top if top > 0 else 1.0)
    gain = float(np.clip(gain, 0.1, 200.0))
    ccm = None
    if sensor:
        try:
            from rawadapt.noise.profiles import load_profile

            ccm = load_profile(sensor).ccm
        except Exception:  # noqa: BLE001 - not a built-in profile (real camera): no colour matrix
            ccm = None
    return Display(space="raw", cfa=cfa or "RGGB", wb=wb, ccm=ccm, gain=gain)


def render(image: np.ndarray, display: Display) -> np.ndarray:
    """``(C, h, w)`` → ``(H, W, 3)`` uint8 (RAW: ``H = 2h`` through the camera pipeline)."""

    a = np.asarray(image, dtype=np.float32)
    if display.space == "raw":
        rgb = render_srgb(
            np.clip(a, 0.0, 1.0), display.cfa or "RGGB", wb=display.wb, ccm=display.ccm, gain=display.gain
        )
    else:
        rgb = np.clip(a, 0.0, 1.0)
    return to_uint8_hwc(rgb)


def error_map(pred: np.ndarray, clean: np.ndarray, space: str) -> np.ndarray:
    """``|pred - clean|`` averaged over channels, at the displayed size (RAW: 2x2 repeat)."""
    e = np.abs(np.asarray(pred, dtype=np.float32) - np.asarray(clean, dtype=np.float32)).mean(axis=0)
    if space == "raw":
        e = np.repeat(np.repeat(e, 2, axis=0), 2, axis=1)
    return e


def shared_vmax(maps: Sequence[np.ndarray], reference: np.ndarray | None = None) -> float:
    """The colour scale's top: 99th percentile of ``reference`` (the noisy error) if given, else
    of all maps; never zero."""
    src = reference if reference is not None else np.concatenate([m.ravel() for m in maps])
    v = float(np.percentile(src, 99)) if np.size(src) else 0.0
    return v if v > 0 else 1e-6


def colorize(err: np.ndarray, vmax: float, cmap: str = ERROR_CMAP) -> np.ndarray:
    """Error map → ``(H, W, 3)`` uint8 with ``0 .. vmax`` spread over the colour map."""
    import matplotlib

    lut = matplotlib.colormaps[cmap]
    rgba = lut(np.clip(np.asarray(err, dtype=np.float64) / vmax, 0.0, 1.0))
    return (rgba[..., :3] * 255 + 0.5).astype(np.uint8)


def colorbar(vmax: float, *, width: int = 160, height: int = 10, cmap: str = ERROR_CMAP) -> np.ndarray:
    """A horizontal colour bar ``(height, width, 3)`` uint8 from 0 to ``vmax``."""
    ramp = np.tile(np.linspace(0.0, vmax, width)[None, :], (height, 1))
    return colorize(ramp, vmax, cmap)


def png_bytes(rgb: np.ndarray) -> bytes:
    """``(H, W, 3)`` uint8 → PNG bytes."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


@dataclass
class CropSet:
    """One test image's crops: noisy, clean and every method's output (float, ``(C, h, w)``).

    ``psnr`` holds each method's PSNR on the WHOLE test image (from its cell), ``"noisy"`` included.
    """

    sample_id: str
    target: str
    space: str
    cfa: str | None
    sensor: str
    noisy: np.ndarray
    clean: np.ndarray
    outputs: dict[str, np.ndarray]
    psnr: dict[str, float]


def load_crop_sets(
    out: Any, cells: Sequence[dict[str, Any]], cell_paths: Sequence[str], *, limit: int | None = None
) -> list[CropSet]:
    """The stored crops of the given cells (same variant/target/seed), grouped per test image.

    Parameters
    ----------
    out
        The protocol folder.
    cells, cell_paths
        Cell records and their ``result.json`` paths relative to ``out``.
    limit
        At most this many images (in test-set order).
    """
    from pathlib import Path

    base = Path(out)
    sets: dict[str, CropSet] = {}
    order: list[str] = []
    for cell, rel in zip(cells, cell_paths):
        cdir = (base / rel).parent
        method = cell["key"]["method"]
        per_image = {i["sample_id"]: i["psnr"] for i in cell.get("images", [])}
        for crop in cell.get("crops", []):
            sid = crop["sample_id"]
            if limit is not None and sid not in sets and len(order) >= limit:
                continue
            try:
                den = np.load(cdir / crop["denoised"], allow_pickle=False).astype(np.float32)
                if sid not in sets:
                    with np.load(cdir / crop["inputs"], allow_pickle=False) as z:
                        noisy, clean = z["noisy"].astype(np.float32), z["clean"].astype(np.float32)
                    noisy_psnr = next((i["psnr_noisy"] for i in cell["images"] if i["sample_id"] == sid), float("nan"))
                    sets[sid] = CropSet(
                        sample_id=sid,
                        target=cell["key"]["target"],
                        space=crop["space"],
                        cfa=crop.get("cfa"),
                        sensor=crop.get("sensor") or cell["key"]["target"],
                        noisy=noisy,
                        clean=clean,
                        outputs={},
                        psnr={"noisy": noisy_psnr},
                    )
                    order.append(sid)
            except (OSError, ValueError, KeyError):
                continue  # a crop file missing or damaged: the report shows what is there
            sets[sid].outputs[method] = den
            sets[sid].psnr[method] = per_image.get(sid, float("nan"))
    return [sets[s] for s in order]
