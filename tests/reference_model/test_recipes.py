"""The recipe registry: configs and checkpoints find their recipe; a registered recipe trains."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panbench.errors import ConfigError, UnknownNameError
from reference_model.config import CONFIG_DIR
from reference_model.recipes import (
    DEFAULT_RECIPE,
    RECIPES,
    Recipe,
    checkpoint_recipe,
    config_recipe,
    train,
)

CALLS: list[tuple[Any, ...]] = []


def _fake_train(config: str | Path, out: str | Path, **options: Any) -> Path:
    CALLS.append((Path(config), Path(out), options))
    return Path(out) / "model"


@pytest.fixture
def fake_recipe() -> Iterator[str]:
    RECIPES.register(
        "fake",
        Recipe(
            name="fake",
            config_loader="reference_model.config:load_run_config",
            trainer=f"{__name__}:_fake_train",
            model_class="reference_model.model:PanModel",
            class_name="FakeModel",
        ),
    )
    CALLS.clear()
    yield "fake"
    RECIPES.unregister("fake")


@pytest.mark.parametrize(
    ("config", "recipe"),
    [("tiny.yaml", "classic"), ("base.yaml", "classic"), ("ow-tiny.yaml", "open-weights")],
)
def test_shipped_configs_name_their_recipe(config: str, recipe: str) -> None:
    assert config_recipe(CONFIG_DIR / config).name == recipe


def test_unreadable_config_goes_to_the_default_recipe(tmp_path: Path) -> None:
    assert config_recipe(tmp_path / "missing.yaml").name == DEFAULT_RECIPE
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    assert config_recipe(tmp_path / "bad.yaml").name == DEFAULT_RECIPE


def test_unknown_recipe_is_named_with_close_matches(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text("recipe: open-weight\n")
    with pytest.raises(UnknownNameError, match="Did you mean: open-weights"):
        config_recipe(tmp_path / "run.yaml")
    (tmp_path / "run.yaml").write_text("recipe: 3\n")
    with pytest.raises(ConfigError, match="expected recipe to be a name"):
        config_recipe(tmp_path / "run.yaml")


def test_checkpoints_find_their_recipe_by_class_name(tmp_path: Path) -> None:
    shipped = Path(CONFIG_DIR).parent / "checkpoints" / "pan-tiny"
    assert checkpoint_recipe(shipped).name == "classic"
    (tmp_path / "config.json").write_text(json.dumps({"class_name": "PanOWModel"}))
    assert checkpoint_recipe(tmp_path).name == "open-weights"
    (tmp_path / "config.json").write_text(json.dumps({"class_name": "Other"}))
    with pytest.raises(ConfigError, match=r"expected class_name to be one of.*but got 'Other'"):
        checkpoint_recipe(tmp_path)


def test_a_registered_recipe_trains_through_the_registry(tmp_path: Path, fake_recipe: str) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(f"recipe: {fake_recipe}\n")
    assert train(config, tmp_path / "out", max_steps=3) == tmp_path / "out" / "model"
    assert len(CALLS) == 1
    assert CALLS[0] == (config, tmp_path / "out", {"max_steps": 3})
    (tmp_path / "config.json").write_text(json.dumps({"class_name": "FakeModel"}))
    assert checkpoint_recipe(tmp_path).name == fake_recipe


def test_pan_ref_rolls_out_every_shipped_recipe_and_refuses_others() -> None:
    from panbench.models.pan_ref import ROLLOUTS, PanRefModel

    assert set(ROLLOUTS) == {"classic", "open-weights"}

    class Stranger:
        recipe = "unheard-of"

        def eval(self) -> Stranger:
            return self

    with pytest.raises(ConfigError, match="but got recipe 'unheard-of'"):
        PanRefModel.from_model(Stranger())
