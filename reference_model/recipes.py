"""The training recipes, keyed by a config's ``recipe:`` value: config loader, trainer, model class.

A recipe is a sibling package of the reference model: the classic recipe (``tiny``, ``small``,
``base`` configs: :mod:`reference_model.config`, :mod:`reference_model.model`,
:mod:`reference_model.train`) and the open-weights recipe (:mod:`reference_model.ow`). Both share
:mod:`reference_model.common.training` and never import each other's training code.

``panbench train`` and the ``pan-ref`` adapter dispatch through :data:`RECIPES`: a training
config names its recipe with ``recipe:`` (no key: ``classic``); a checkpoint folder names it
through the ``class_name`` in its ``config.json``. Entries are lazy ``"module:attr"`` strings,
so looking a recipe up imports nothing heavy. Third-party recipes register under the
``panbench.recipes`` entry-point group or with ``RECIPES.register(name, Recipe(...))``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.errors import ConfigError
from panbench.registry import Registry, import_string

__all__ = [
    "DEFAULT_RECIPE",
    "RECIPES",
    "Recipe",
    "checkpoint_recipe",
    "config_recipe",
    "load_model",
    "train",
]

DEFAULT_RECIPE = "classic"
"""The recipe of a training config without a ``recipe:`` key (the shipped tiny/small/base)."""


@dataclass(frozen=True)
class Recipe:
    """One training recipe, as lazy ``"module:attr"`` paths.

    Attributes:
        name: the ``recipe:`` value of its training configs.
        config_loader: reads and validates a training config YAML (path -> config).
        trainer: ``train(config, out, *, max_steps, resume, device, command, console) -> Path``.
        model_class: the model class, with ``from_pretrained(folder)``.
        class_name: the ``class_name`` its checkpoints' ``config.json`` records.
    """

    name: str
    config_loader: str
    trainer: str
    model_class: str
    class_name: str

    def load_config(self, path: str | Path) -> Any:
        """The recipe's config object for the YAML file at ``path``."""
        return import_string(self.config_loader)(path)  # type: ignore[operator]

    def train(self, config: str | Path, out: str | Path, **options: Any) -> Path:
        """Runs the recipe's training loop; returns the exported model folder."""
        return import_string(self.trainer)(config, out, **options)  # type: ignore[operator]

    def model(self) -> Any:
        """The model class (imports the recipe's model code)."""
        return import_string(self.model_class)


RECIPES: Registry[Recipe] = Registry("recipe", entry_point_group="panbench.recipes")
RECIPES.register(
    DEFAULT_RECIPE,
    Recipe(
        name=DEFAULT_RECIPE,
        config_loader="reference_model.config:load_run_config",
        trainer="reference_model.train:train",
        model_class="reference_model.model:PanModel",
        class_name="PanModel",
    ),
)
RECIPES.register(
    "open-weights",
    Recipe(
        name="open-weights",
        config_loader="reference_model.ow.config:load_ow_config",
        trainer="reference_model.ow.train:train",
        model_class="reference_model.ow.model:PanOWModel",
        class_name="PanOWModel",
    ),
)


def config_recipe(path: str | Path) -> Recipe:
    """The recipe a training config declares with ``recipe:`` (default :data:`DEFAULT_RECIPE`).

    A file that cannot be read as a YAML mapping goes to the default recipe, whose strict
    loader then reports what is wrong with it.

    Raises:
        UnknownNameError: ``recipe:`` names no registered recipe (with close matches).
        ConfigError: ``recipe:`` is not a string.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    name = data.get("recipe", DEFAULT_RECIPE) if isinstance(data, dict) else DEFAULT_RECIPE
    if not isinstance(name, str):
        raise ConfigError(
            f"{path}: expected recipe to be a name such as {', '.join(RECIPES.names())}, but got "
            f"{name!r}."
        )
    return RECIPES.get(name)


def checkpoint_recipe(folder: str | Path) -> Recipe:
    """The recipe whose model class wrote the checkpoint in ``folder`` (its ``class_name``).

    A folder whose ``config.json`` is missing or unreadable goes to the default recipe, whose
    loader then says what is missing.

    Raises:
        ConfigError: the ``class_name`` belongs to no registered recipe.
    """
    try:
        doc = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return RECIPES.get(DEFAULT_RECIPE)
    class_name = doc.get("class_name") if isinstance(doc, dict) else None
    if class_name is None:
        return RECIPES.get(DEFAULT_RECIPE)
    by_class = {RECIPES.get(n).class_name: n for n in RECIPES.names()}
    if class_name not in by_class:
        raise ConfigError(
            f"{Path(folder) / 'config.json'}: expected class_name to be one of "
            f"{', '.join(sorted(by_class))}, but got {class_name!r}."
        )
    return RECIPES.get(by_class[class_name])


def load_model(folder: str | Path) -> Any:
    """The model saved in ``folder`` (``from_pretrained`` of its recipe's model class)."""
    return checkpoint_recipe(folder).model().from_pretrained(Path(folder))


def train(config: str | Path, out: str | Path, **options: Any) -> Path:
    """Trains with the recipe ``config`` declares; returns the exported model folder.

    Args:
        config: a training config YAML (``reference_model/configs/<name>.yaml``).
        out: the run folder.
        **options: the trainer's keyword options (``max_steps``, ``resume``, ``device``,
            ``command``, ``console``).
    """
    return config_recipe(config).train(config, out, **options)
