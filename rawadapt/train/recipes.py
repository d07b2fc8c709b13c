"""Model-zoo recipes: how each shipped model is trained (``rawadapt/zoo/recipes/NAME.yaml``).

A recipe is a YAML file::

    name: raw-unet-any
    description: one line for `rawadapt zoo list`
    space: raw                   # raw | srgb (checked against the dataset when built)
    held_out: [SonyA7S2, ...]    # sensors the model must never see (the benchmarks' targets)
    notes: measured step time, planned duration...
    config:                      # a TrainConfig (rawadapt.train.config), validated strictly
      strategy: pretrain
      seed: 0
      iters: 20000
      data: {data: synth, sources: [...], patch: 64, batch: 8}
      model: {arch: unet, kwargs: {...}}

``rawadapt zoo build NAME`` trains ``config`` through :func:`rawadapt.train.api.run_training`;
``rawadapt zoo export`` stores the recipe with the run's full resolved config as
``recipe.yaml`` beside the shipped weights, which is also what ``rawadapt evaluate zoo:NAME``
recreates the test split from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rawadapt.errors import ConfigError
from rawadapt.models.zoo import NAME_PATTERN, RECIPES_DIR, package_zoo_dir
from rawadapt.train.config import TrainConfig
from rawadapt.utils.settings import condense

RECIPE_FILE = "recipe.yaml"


class Recipe(BaseModel):
    """A zoo recipe (see the module docstring).

    Attributes
    ----------
    name
        The zoo model name it produces (:data:`rawadapt.models.zoo.NAME_PATTERN`).
    description
        One line for ``rawadapt zoo list``.
    space
        ``"raw"`` or ``"srgb"``.
    held_out
        Sensors the model must not train on (the benchmarks' targets): a pretrain recipe must
        list its ``data.sources`` explicitly and none of these may be among them.
    notes
        Free text: the measured step time, the planned duration.
    config
        The training configuration.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    space: Literal["raw", "srgb"]
    held_out: list[str] = Field(default_factory=list)
    notes: str | None = None
    config: TrainConfig

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        if not NAME_PATTERN.match(v):
            raise ValueError("lower-case letters, digits, '.', '_' and '-' (a letter or digit first)")
        return v

    @model_validator(mode="after")
    def _held_out_not_trained(self) -> Recipe:
        if self.held_out:
            data = self.config.data
            trained = set(data.sources or [])
            if data.sources is None and self.config.strategy == "pretrain":
                raise ValueError("with held_out sensors, list config.data.sources explicitly")
            clash = sorted(trained & set(self.held_out)) + ([data.target] if data.target in self.held_out else [])
            if clash:
                raise ValueError(f"held-out sensor(s) {', '.join(clash)} are trained on")
        return self

    def to_yaml(self) -> str:
        """The recipe as YAML (the config in full, defaults included)."""
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, default_flow_style=None)


def recipes_dir() -> Path:
    """The shipped recipes: ``rawadapt/zoo/recipes``."""
    return package_zoo_dir() / RECIPES_DIR


def recipe_names() -> list[str]:
    """Names of the shipped recipes, sorted."""
    d = recipes_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def recipe_from_dict(data: Any, *, source: str | Path | None = None) -> Recipe:
    """Validate a mapping into a :class:`Recipe`.

    Raises
    ------
    ConfigError
        Invalid settings, condensed to one line naming ``source``.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a recipe must be a mapping, got {type(data).__name__}", source)
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid recipe: {condense(exc)}", source) from None


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A shipped recipe by name, or a recipe YAML file by path.

    Raises
    ------
    ConfigError
        Unknown name (the shipped ones are listed), unreadable or invalid file.
    """
    import yaml

    ref = str(name_or_path)
    path = Path(ref)
    if not (path.suffix in (".yaml", ".yml") or path.is_file()):
        if not NAME_PATTERN.match(ref) or not (recipes_dir() / f"{ref}.yaml").is_file():
            raise ConfigError(f"unknown zoo recipe {ref[:80]!r}; known: {', '.join(recipe_names()) or 'none'}")
        path = recipes_dir() / f"{ref}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read recipe: {exc.strerror or exc}", path) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", path) from None
    return recipe_from_dict(data, source=path)
