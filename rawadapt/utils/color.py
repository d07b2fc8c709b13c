"""Colour constants and camera white-balance/matrix helpers shared by the DNG writer, the camera
pipeline and the CLI (NumPy only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: linear sRGB (D65) -> CIE XYZ
SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)


def wb_gains(camera_whitebalance: Sequence[float] | None) -> tuple[float, float, float] | None:
    """LibRaw's camera white balance ``(r, g, b[, g2])`` -> gains ``(r/g, 1, b/g)``, or None."""
    if not camera_whitebalance or len(camera_whitebalance) < 3:
        return None
    r, g, b = (float(v) for v in camera_whitebalance[:3])
    if min(r, g, b) <= 0:
        return None
    return (r / g, 1.0, b / g)


def xyz_to_camera(rgb_xyz: Any, color_matrix: Any, gains: Sequence[float] | None) -> np.ndarray | None:
    """DNG ``ColorMatrix1`` (XYZ -> camera RGB, D65) for an output file.

    The file's own XYZ -> camera matrix (LibRaw ``rgb_xyz_matrix``) when it has one; else derived
    from its camera -> sRGB matrix ``M`` (LibRaw ``rgb_cam``, applied after white balance ``W``):
    camera -> linear sRGB is ``M W``, so XYZ -> camera is ``(M W)^-1 S^-1`` with ``S`` the
    sRGB -> XYZ matrix. None when neither is available.
    """
    if rgb_xyz is not None:
        a = np.asarray(rgb_xyz, dtype=np.float64)
        if a.shape == (3, 3) and np.isfinite(a).all() and abs(np.linalg.det(a)) > 1e-12:
            return a
    if color_matrix is not None:
        m = np.asarray(color_matrix, dtype=np.float64)
        if m.shape == (3, 3) and np.isfinite(m).all():
            full = m @ np.diag(gains if gains is not None else (1.0, 1.0, 1.0))
            if abs(np.linalg.det(full)) > 1e-12:
                return np.linalg.inv(full) @ np.linalg.inv(SRGB_TO_XYZ)
    return None
