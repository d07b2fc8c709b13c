"""Tiled inference in bounded memory: overlapping tiles blended with smooth weights.

Layout (per axis): tiles of side ``tile`` start every ``tile - overlap`` pixels, the last one
shifted back to end exactly at the image border (so every tile is full-size unless the image
is smaller than a tile, in which case one tile covers that axis).

Blending weights (separable, per tile): along an axis, a tile edge that lies on the IMAGE border
gets weight 1 right up to the border (image-border pixels have no neighbour tile and must keep
their weight). An edge INSIDE the image gets a "guarded ramp":

* weight 0 on the ``guard`` pixels nearest the edge (those pixels saw zero padding instead of
  the real neighbourhood, so they are the least trustworthy);
* a linear ramp from ~0 to 1 over the next ``overlap - 2 * guard`` pixels;
* 1 beyond.

Two neighbouring tiles overlap by at least ``overlap`` pixels, and the ramps of the two sides
are mirror images, so every pixel has a positive total weight (checked) and the blend is
continuous: no visible seams.

Exactness: for a network whose receptive-field RADIUS ``r`` is ``<= guard`` and whose output at
a pixel depends only on that neighbourhood (a CNN in eval mode, e.g. DnCNN of depth ``d`` has
``r = d``), every pixel with non-zero weight was computed from exactly the pixels whole-image
inference uses, so tiled output equals whole-image output up to float rounding (~1e-6). Networks
with larger receptive fields (U-Net) or global operations (Restormer's channel attention, input
padding to a multiple) differ slightly near seams; ``tests/test_tiling.py`` states the
tolerances.

Memory: one output buffer and one ``H x W`` weight buffer, plus ``batch`` tiles in flight.
Packed RAW is tiled in packed space, so tiles never split a CFA cell.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of the tiles along one axis of length ``size``.

    Examples
    --------
    >>> tile_starts(100, 40, 10)
    [0, 30, 60]
    >>> tile_starts(25, 40, 10)
    [0]
    """
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def axis_weights(
    length: int,
    *,
    ramp_start: bool,
    ramp_end: bool,
    overlap: int,
    guard: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """1-D blending weights of one tile side: guarded linear ramps on interior edges.

    Parameters
    ----------
    length
        Tile length along the axis.
    ramp_start, ramp_end
        Whether the tile's start/end edge lies inside the image (ramp) or on its border (flat).
    overlap, guard
        See the module docstring.
    """
    i = torch.arange(length, dtype=torch.float64, device=device)
    width = max(1, overlap - 2 * guard)
    w = torch.ones(length, dtype=torch.float64, device=device)
    # (d - guard + 1) / (width + 1): 0 for d < guard, then 1/(width+1) .. 1. Mirror-symmetric ramps
    # of two tiles overlapping by exactly `overlap` pixels sum to a constant over the ramp.
    if ramp_start:
        w = torch.minimum(w, ((i - guard + 1) / (width + 1)).clamp(0, 1))
    if ramp_end:
        w = torch.minimum(w, ((length - 1 - i - guard + 1) / (width + 1)).clamp(0, 1))
    return w.to(dtype)


def tiled_forward(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int,
    overlap: int,
    guard: int | None = None,
    batch: int = 1,
) -> torch.Tensor:
    """Apply ``fn`` to overlapping tiles of ``x`` and blend the results.

    Parameters
    ----------
    fn
        Maps a ``(B, C, h, w)`` tile to a ``(B, C', h, w)`` result (same spatial size).
    x
        ``(B, C, H, W)`` input, any ``H`` and ``W`` (smaller than a tile included).
    tile
        Tile side in pixels (of ``x``; packed pixels for RAW).
    overlap
        Minimum overlap of neighbouring tiles, ``0 <= overlap < tile``.
    guard
        Pixels at interior tile edges that get weight 0 (default ``overlap // 4``); must satisfy
        ``2 * guard < overlap`` when ``overlap > 0``.
    batch
        Tiles per call of ``fn`` (stacked along the batch axis; only when ``x`` has B = 1).

    Returns
    -------
    The blended ``(B, C', H, W)`` result (dtype of ``fn``'s output promoted to at least float32).

    Raises
    ------
    ValueError
        Invalid tile/overlap/guard, or ``fn`` changed the spatial size.
    """
    if x.ndim != 4:
        raise ValueError(f"tiled_forward expects (B, C, H, W), got {tuple(x.shape)}")
    tile, overlap = int(tile), int(overlap)
    if tile < 1 or overlap < 0 or overlap >= tile:
        raise ValueError(f"need tile >= 1 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    guard = overlap // 4 if guard is None else int(guard)
    if guard < 0 or (overlap > 0 and 2 * guard >= overlap):
        raise ValueError(f"need 0 <= 2 * guard < overlap, got guard={guard}, overlap={overlap}")
    b, _, h, w = x.shape
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    boxes = [(y0, x0) for y0 in ys for x0 in xs]
    per_call = max(1, int(batch)) if b == 1 else 1

    out: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    wy_cache: dict[tuple[bool, bool], torch.Tensor] = {}
    wx_cache: dict[tuple[bool, bool], torch.Tensor] = {}
    for k in range(0, len(boxes), per_call):
        group = boxes[k : k + per_call]
        tiles = torch.cat([x[:, :, y0 : y0 + th, x0 : x0 + tw] for y0, x0 in group], dim=0)
        res = fn(tiles)
        if res.ndim != 4 or res.shape[-2:] != tiles.shape[-2:] or res.shape[0] != tiles.shape[0]:
            raise ValueError(f"fn changed the tile shape from {tuple(tiles.shape)} to {tuple(res.shape)}")
        if out is None:
            dtype = torch.promote_types(res.dtype, torch.float32)
            out = torch.zeros(b, res.shape[1], h, w, dtype=dtype, device=x.device)
            weight = torch.zeros(1, 1, h, w, dtype=dtype, device=x.device)
        for j, (y0, x0) in enumerate(group):
            ky = (y0 > 0, y0 + th < h)
            kx = (x0 > 0, x0 + tw < w)
            if ky not in wy_cache:
                wy_cache[ky] = axis_weights(
                    th, ramp_start=ky[0], ramp_end=ky[1], overlap=overlap, guard=guard, dtype=out.dtype, device=x.device
                )
            if kx not in wx_cache:
                wx_cache[kx] = axis_weights(
                    tw, ramp_start=kx[0], ramp_end=kx[1], overlap=overlap, guard=guard, dtype=out.dtype, device=x.device
                )
            wt = wy_cache[ky][:, None] * wx_cache[kx][None, :]
            out[:, :, y0 : y0 + th, x0 : x0 + tw] += res[j * b : (j + 1) * b].to(out.dtype) * wt
            weight[:, :, y0 : y0 + th, x0 : x0 + tw] += wt  # type: ignore[index]
    assert out is not None and weight is not None
    if bool((weight <= 0).any()):  # cannot happen with 2 * guard < overlap; kept as a guard rail
        raise RuntimeError("tiling left pixels without weight; report this with the image size and tile")
    return out.div_(weight)  # in place: no second full-size buffer
