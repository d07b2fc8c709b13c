"""rawadapt: the best RAW (and sRGB) denoiser for a new camera sensor from very little data.

Implements Adaptive Domain Learning (ADL, train time) and Learning to Adapt Noise (LAN, test
time), with RAW file I/O, dataset adapters, a calibrated physics-based noise simulator, the
papers' baselines and evaluation protocols.

``import rawadapt`` is deliberately light (no torch, rawpy, matplotlib at import time); the
sub-packages are imported on first use::

    from rawadapt.io.raw import read_raw
    from rawadapt.data import Sample
"""

from __future__ import annotations

__version__ = "0.1.0"

from rawadapt.errors import RawAdaptError

__all__ = ["__version__", "RawAdaptError"]
