"""Shared plumbing of the classical, per-image and self-supervised baselines.

:class:`ImageMethod` is a :class:`~rawadapt.baselines.base.Method` whose work happens per test
image: :meth:`ImageMethod.fit` only records what the task offers (target name, torch threads,
seed, optionally a noise model of the target pool), and :meth:`ImageMethod.denoise` checks the
input, sets the task's torch threads and calls :meth:`ImageMethod.denoise_array`.

Determinism: every random choice of a per-image method is drawn from a generator seeded with
:func:`image_seed` (the task seed, the method name and the sample id), so the same seed gives
the same output for an image whatever the order images are processed in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rawadapt.baselines.base import Method, Task
from rawadapt.data.sample import check_image
from rawadapt.errors import ConfigError, ShapeError
from rawadapt.utils.seed import derive_seed

if TYPE_CHECKING:  # pragma: no cover
    from rawadapt.data.sample import Sample


def check_sample(sample: Sample, spaces: tuple[str, ...], method: str) -> np.ndarray:
    """The sample's noisy image as a contiguous float32 ``(C, H, W)`` array, validated.

    Raises
    ------
    ConfigError
        The sample's space is not supported by the method.
    ShapeError, NonFiniteError
        Wrong shape/channels for the space, empty, or NaN/Inf values.
    """
    if sample.space not in spaces:
        raise ConfigError(
            f"method {method!r} does not support space {sample.space!r} (supports {', '.join(spaces)})", sample.path
        )
    noisy = np.asarray(sample.noisy)
    check_image(noisy, sample.space, what="noisy image", path=sample.path)
    return np.ascontiguousarray(noisy, dtype=np.float32)


def check_min_size(noisy: np.ndarray, size: int, method: str) -> None:
    """Raise :class:`ShapeError` when a side of ``noisy`` is below ``size`` pixels."""
    if min(noisy.shape[-2:]) < size:
        raise ShapeError(
            f"{method}: image of {noisy.shape[-2]}x{noisy.shape[-1]} pixels is too small (needs at least {size}x{size})"
        )


def image_seed(seed: int, method: str, sample: Sample) -> int:
    """A per-image seed from the task seed, the method and the sample's identity."""
    key = sample.sample_id or f"{sample.sensor}:{sample.path}:{tuple(sample.noisy.shape)}"
    return derive_seed(int(seed), method, key) % (2**63 - 1)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads (unchanged when None/0), restoring afterwards."""
    import torch

    if not n:
        yield
        return
    prev = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(prev)


@contextlib.contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Seed torch's global CPU generator inside the block (for ``nn.Module`` initialisation)
    without disturbing the caller's random state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) % (2**63 - 1))
        yield


class ImageMethod(Method):
    """A baseline that denoises each test image on its own (see the module docstring).

    Subclasses implement :meth:`denoise_array`; ``self.target`` (the task's target sensor, for
    profile-based noise levels) and ``self.threads`` are set by :meth:`fit`.
    """

    #: option names the method accepts (others raise :class:`ConfigError`)
    known_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, budget: Any = None, **options: Any) -> None:
        super().__init__(budget, **options)
        unknown = sorted(set(options) - set(self.known_options))
        if unknown:
            raise ConfigError(
                f"method {self.name!r}: unknown options {unknown}; known: {', '.join(self.known_options) or '(none)'}"
            )
        self.target: str | None = None
        self.threads: int | None = None
        self.last_info: dict[str, Any] = {}

    def fit(self, task: Task) -> None:
        """Record the task's target, seed and threads (nothing is trained)."""
        self.target = task.target
        self.threads = task.threads

    def denoise(self, sample: Sample) -> np.ndarray:
        noisy = check_sample(sample, self.spaces, self.name)
        with torch_threads(self.threads):
            out = self.denoise_array(noisy, sample)
        return np.ascontiguousarray(out, dtype=np.float32)

    def denoise_array(self, noisy: np.ndarray, sample: Sample) -> np.ndarray:  # pragma: no cover - abstract
        """Denoise the validated ``(C, H, W)`` float32 ``noisy`` of ``sample``."""
        raise NotImplementedError

    def option(self, key: str, default: Any) -> Any:
        """An option given at construction, else ``default``."""
        return self.options.get(key, default)
