"""The base of every settings object (training config, bench settings, meta-learning, LAN
protocol): pydantic with unknown keys forbidden, and a bad value reported as ONE
:class:`~rawadapt.errors.ConfigError` line naming the setting, never a pydantic traceback."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from rawadapt.errors import ConfigError


def condense(exc: ValidationError) -> str:
    """A pydantic error condensed to one line: ``data.patch: Input should be ... ; iters: ...``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(config)"
        msg = str(err.get("msg", "invalid")).replace("\n", " ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown setting"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


class Settings(BaseModel):
    """Validated on construction and on assignment; errors become one-line ConfigErrors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(f"invalid {type(self).__name__}: {condense(exc)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise ConfigError(f"invalid {type(self).__name__}: {condense(exc)}") from None
