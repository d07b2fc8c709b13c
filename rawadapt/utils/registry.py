"""One registry class for every pluggable kind: models, training strategies, dataset adapters,
benchmark methods and test-time adaptation methods (BasicSR's ``Registry`` shape).

An entry is registered where it is defined, with the decorator or a call::

    MODELS = Registry("model")

    @MODELS.register("unet")
    def _unet(**kw): ...

or lazily, by ``"module:attribute"``, so that nothing heavy is imported until the entry is
used (``MODELS.register_lazy("led-unet", "rawadapt.models.led_unet:LEDUNet")``). A registry is a
read-only mapping (``name in R``, ``R[name]``, ``list(R)`` in registration order);
:meth:`Registry.get` raises :class:`~rawadapt.errors.ConfigError` naming the known entries.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from rawadapt.errors import ConfigError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Name -> object, in registration order, with lazily imported entries.

    Parameters
    ----------
    kind
        What the entries are ("model", "strategy"...), for error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._lazy: dict[str, str] = {}
        self._order: list[str] = []

    # -- registration -------------------------------------------------------------------------
    def register(self, name: str, obj: T | None = None, *, replace: bool = False) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, a decorator that registers what it
        decorates. A second registration of a name raises ValueError unless ``replace``."""
        if obj is None:

            def deco(o: T) -> T:
                self.register(name, o, replace=replace)
                return o

            return deco
        self._claim(name, replace)
        self._entries[name] = obj
        return obj

    def register_lazy(self, name: str, target: str, *, replace: bool = False) -> None:
        """Register ``"module:attribute"``, imported on first use."""
        if ":" not in target:
            raise ValueError(f"lazy {self.kind} entry {name!r} must be 'module:attribute', got {target!r}")
        self._claim(name, replace)
        self._lazy[name] = target

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests; a missing name is ignored)."""
        if name in self._order:
            self._order.remove(name)
            self._entries.pop(name, None)
            self._lazy.pop(name, None)

    def _claim(self, name: str, replace: bool) -> None:
        if name in self._order:
            if not replace:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries.pop(name, None)
            self._lazy.pop(name, None)
        else:
            self._order.append(name)

    # -- lookup -------------------------------------------------------------------------------
    def get(self, name: str, default: Any = None) -> T:
        """The entry ``name`` (imported if lazy).

        Raises
        ------
        ConfigError
            Unknown name (the message lists the known ones); ``default`` is accepted for
            Mapping compatibility and returned instead when given.
        """
        if name not in self._order:
            if default is not None:
                return default
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(self._order)}")
        if name not in self._entries:
            module, attr = self._lazy[name].split(":", 1)
            self._entries[name] = getattr(importlib.import_module(module), attr)
        return self._entries[name]

    def target(self, name: str) -> str | None:
        """The ``"module:attribute"`` of a lazy entry (None for direct ones)."""
        return self._lazy.get(name)

    def __getitem__(self, name: str) -> T:
        if name not in self._order:
            raise KeyError(name)
        return self.get(name)

    def __setitem__(self, name: str, value: Any) -> None:
        """``R[name] = obj`` replaces or adds ``name``; a ``"module:attribute"`` string registers
        it lazily (so tests can ``monkeypatch.setitem`` a registry like a dict)."""
        if isinstance(value, str) and ":" in value:
            self.register_lazy(name, value, replace=True)
        else:
            self.register(name, value, replace=True)

    def __delitem__(self, name: str) -> None:
        if name not in self._order:
            raise KeyError(name)
        self.unregister(name)

    def __contains__(self, name: object) -> bool:
        return name in self._order

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self._order})"
