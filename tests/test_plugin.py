"""The example third-party plugin: found through the entry-point group and through module:Class."""

from __future__ import annotations

import json
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from panbench.cli import main
from panbench.models import MODELS
from panbench.models.registry import load_model
from panbench.registry import Registry

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "examples" / "panbench-plugin-example"


@pytest.fixture()
def plugin_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    yield
    sys.modules.pop("panbench_example.adapter", None)
    sys.modules.pop("panbench_example", None)


def test_entry_point_registers_plugin(
    plugin_on_path: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = EntryPoint(
        name="context-mean",
        value="panbench_example.adapter:ContextMeanModel",
        group="panbench.models",
    )

    def fake_entry_points(group: str) -> list[EntryPoint]:
        return [ep] if group == "panbench.models" else []

    monkeypatch.setattr("panbench.registry.entry_points", fake_entry_points)
    fresh: Registry = Registry("model", entry_point_group="panbench.models")
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    monkeypatch.setattr(MODELS, "_entry_points_loaded", False)
    assert "context-mean" in MODELS
    assert "context-mean" in fresh.names()
    model = load_model("context-mean", {"window": 3})
    assert model.spec.name == "context-mean" and model.spec.context_frames == 3


def test_plugin_evaluates_end_to_end(plugin_on_path: None, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "evaluate",
            "--model",
            "panbench_example.adapter:ContextMeanModel",
            "--model-args",
            "window=2",
            "--tasks",
            "agent-sim",
            "--limit",
            "3",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    task = results["tasks"]["agent-sim"]
    assert task["n_episodes"] == 3
    # The context mean never reproduces a commanded move.
    assert task["metrics"]["action_following"]["value"] == 0.0
    assert results["model"]["info"] == {"window": 2}
