"""Colour fidelity of an sRGB denoiser: does it keep the mean colour of flat patches?

A denoiser must remove noise, not move colours. Issue #18: a DnCNN pretrained on the first
``synth-srgb`` turned a flat green patch (40, 180, 40) plus Gaussian noise of std 6/255 into
(142, 148, 121), because its training pairs carried a colour offset and no saturated colours.
:func:`colour_fidelity` reproduces that check for any model:

* six flat patches (:data:`FLAT_PATCHES`: the three of the issue, a grey, a red and a yellow),
  one image each, and the ColorChecker Classic chart
  (:func:`rawadapt.noise.scenes.colorchecker`, 24 patches);
* white Gaussian noise of std ``sigma`` (6/255 by default), rounded to 8 bits and clipped as a
  PNG would store it, seeded;
* the model's output (clipped to [0, 1], as saved) averaged over each patch's interior (a
  ``border`` away from edges and other patches), minus the patch's true colour, in 8-bit units.

A model passes when every patch's shift is within :data:`TOLERANCE` (2/255) in every channel.
The noise's own mean over a patch interior (80 x 80 pixels for the flat patches, about 30 x 30
for the chart's) has a standard error of 0.08/255 to 0.2/255 at the default sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rawadapt.models.base import Denoiser
from rawadapt.models.inference import denoise_image
from rawadapt.noise.scenes import colorchecker

#: flat test patches (name, 8-bit sRGB): the issue's green, blue and cyan, a grey, a red, a yellow
FLAT_PATCHES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("green", (40, 180, 40)),
    ("blue", (40, 60, 190)),
    ("cyan", (60, 160, 160)),
    ("grey", (128, 128, 128)),
    ("red", (180, 40, 40)),
    ("yellow", (200, 180, 40)),
)
#: largest accepted mean shift per channel (8-bit units)
TOLERANCE = 2.0


@dataclass(frozen=True)
class PatchShift:
    """Mean colour shift ``mean(output) - colour`` of one patch, per channel, in 8-bit units."""

    name: str
    colour: tuple[int, int, int]
    shift: tuple[float, float, float]

    @property
    def max_abs(self) -> float:
        return float(max(abs(v) for v in self.shift))


@dataclass(frozen=True)
class ColourFidelity:
    """Per-patch shifts of one model (flat patches first, then the chart's patches ``chart:NAME``)."""

    patches: tuple[PatchShift, ...]
    sigma: float

    @property
    def max_shift(self) -> float:
        """Largest absolute shift over all patches and channels (8-bit units)."""
        return max(p.max_abs for p in self.patches)

    def ok(self, tolerance: float = TOLERANCE) -> bool:
        """Every patch within ``tolerance`` (8-bit units) in every channel."""
        return self.max_shift <= tolerance

    def failing(self, tolerance: float = TOLERANCE) -> list[PatchShift]:
        return [p for p in self.patches if p.max_abs > tolerance]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sigma": self.sigma,
            "max_shift": self.max_shift,
            "patches": [{"name": p.name, "colour": list(p.colour), "shift": list(p.shift)} for p in self.patches],
        }


def _denoise(model: Denoiser | Callable[[Any], Any], image: np.ndarray, device: str) -> np.ndarray:
    if isinstance(model, Denoiser):
        return denoise_image(model, image, device=device)
    import torch

    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(image))[None].to(device))
    return np.asarray(out[0].detach().float().cpu().numpy(), dtype=np.float32)


def _noisy(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = clean + sigma * rng.standard_normal(clean.shape)
    return (np.clip(np.rint(noisy * 255.0), 0, 255) / 255.0).astype(np.float32)


def _shift(out: np.ndarray, box: tuple[int, int, int, int], border: int, colour: np.ndarray) -> tuple[float, ...]:
    t, left, b, r = box
    t, left, b, r = t + border, left + border, b - border, r - border
    if b <= t or r <= left:
        raise ValueError(f"patch {box} is too small for a border of {border} px")
    mean = np.clip(out[:, t:b, left:r], 0.0, 1.0).reshape(3, -1).mean(axis=1) * 255.0
    return tuple(float(v) for v in mean - colour)


def colour_fidelity(
    model: Denoiser | Callable[[Any], Any],
    *,
    sigma: float = 6.0 / 255.0,
    size: int = 96,
    chart: bool = True,
    chart_cell: int = 64,
    border: int = 8,
    seed: int = 0,
    device: str = "cpu",
) -> ColourFidelity:
    """Mean colour shift of ``model`` on noisy flat patches and a colour chart.

    Parameters
    ----------
    model
        An sRGB :class:`~rawadapt.models.base.Denoiser` (run with
        :func:`~rawadapt.models.inference.denoise_image`), or any callable taking a
        ``(1, 3, H, W)`` tensor and returning one of the same shape.
    sigma
        Std of the white Gaussian noise (normalised units).
    size
        Side of each flat patch image (pixels).
    chart
        Also measure the ColorChecker chart (4 x 6 cells of ``chart_cell`` pixels).
    border
        Pixels left out along each patch's edges (image borders and colour edges).
    seed
        Seed of the noise.
    device
        Where a :class:`Denoiser` runs.

    Returns
    -------
    ColourFidelity
        Per-patch shifts; ``.ok()`` is the 2/255 check of issue #18.
    """
    rng = np.random.default_rng(seed)
    shifts: list[PatchShift] = []
    for name, col in FLAT_PATCHES:
        c = np.asarray(col, dtype=np.float32)
        clean = np.broadcast_to((c / 255.0)[:, None, None], (3, size, size)).astype(np.float32)
        out = _denoise(model, _noisy(clean, sigma, rng), device)
        shifts.append(PatchShift(name, col, _shift(out, (0, 0, size, size), border, c)))  # type: ignore[arg-type]
    if chart:
        img, boxes, names = colorchecker((4 * chart_cell, 6 * chart_cell))
        out = _denoise(model, _noisy(img, sigma, rng), device)
        for name, box in zip(names, boxes):
            t, left, _, _ = box
            c = np.rint(img[:, t, left] * 255.0)
            col3 = (int(c[0]), int(c[1]), int(c[2]))
            shifts.append(PatchShift(f"chart:{name}", col3, _shift(out, box, border, c)))  # type: ignore[arg-type]
    return ColourFidelity(tuple(shifts), float(sigma))
