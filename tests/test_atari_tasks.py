"""The Atari tasks end to end: oracle 100, copy-last near 0, rewards scored or n/a, counterfactuals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from panbench.errors import ContractError
from panbench.harness import evaluate
from panbench.models.api import ActionSpace, Context, ModelSpec, WorldModel
from panbench.models.baselines import CopyLastModel, OracleModel
from panbench.protocols.base import ModelRunner

pytest.importorskip("ale_py")
pytest.importorskip("ocatari")


def _run(model: str, task: str, tmp_path: Path, limit: int = 6) -> dict:
    results = evaluate(model, out=tmp_path / model, tasks=[task], limit=limit, progress=False)
    return results["tasks"][task]


@pytest.mark.parametrize("game", ["pong", "freeway"])
def test_oracle_follows_every_action_and_copy_last_does_not(tmp_path, game: str) -> None:
    task = f"atari-sim-{game}"
    oracle = _run("oracle", task, tmp_path)
    copy = _run("copy-last", task, tmp_path)
    assert oracle["metrics"]["action_following"]["value"] == 1.0
    assert oracle["metrics"]["reward_sign_accuracy"]["value"] == 1.0
    assert oracle["metrics"]["terminal_f1"]["value"] == 1.0
    assert copy["metrics"]["action_following"]["value"] <= 0.2
    assert copy["metrics"]["action_following"]["ci95"][1] < 0.5
    # copy-last declares no reward prediction: n/a, not zero
    assert "reward_sign_accuracy" not in copy["metrics"]
    assert "n/a" in copy["skipped"]["reward_sign_accuracy"]


def test_counterfactual_separates_oracle_from_copy_last(tmp_path) -> None:
    task = "atari-counterfactual-boxing"
    oracle = _run("oracle", task, tmp_path)["metrics"]["counterfactual_accuracy"]
    copy = _run("copy-last", task, tmp_path)["metrics"]["counterfactual_accuracy"]
    assert oracle["value"] == 1.0
    assert copy["value"] == 0.0


def test_long_horizon_reports_permanence_drift(tmp_path) -> None:
    copy = _run("copy-last", "atari-long-horizon-spaceinvaders", tmp_path, limit=2)
    oracle = _run("oracle", "atari-long-horizon-spaceinvaders", tmp_path, limit=2)
    assert oracle["metrics"]["miss_rate"]["value"] == 0.0
    assert oracle["metrics"]["invention_rate"]["value"] == 0.0
    assert len(copy["metrics"]["miss_rate"]["curve"]) == 32
    assert (
        copy["metrics"]["tracking_accuracy"]["value"]
        < oracle["metrics"]["tracking_accuracy"]["value"]
    )


class _WrongRewards(OracleModel):
    """The oracle's frames, but it always predicts reward +1 and no episode end."""

    def outcomes(self, state):
        n = len(state.states)
        return np.ones(n), np.zeros(n, dtype=bool)


def test_a_model_declaring_rewards_is_scored_on_them(tmp_path) -> None:
    from panbench.models.registry import MODELS

    MODELS.register("wrong-rewards", _WrongRewards, override=True)
    try:
        entry = _run("wrong-rewards", "atari-sim-pong", tmp_path)
    finally:
        MODELS.unregister("wrong-rewards")
    # Pong rewards are almost always 0; predicting +1 everywhere gets their sign wrong
    assert entry["metrics"]["reward_sign_accuracy"]["value"] < 0.2
    assert entry["metrics"]["action_following"]["value"] == 1.0


class _BadShape(WorldModel):
    def __init__(self) -> None:
        self.spec = ModelSpec(name="bad", action_space=ActionSpace.NONE, predicts_rewards=True)

    def reset(self, context: Context):
        return context.frames[:, -1:]

    def step(self, state, actions):
        return state, state.copy()

    def outcomes(self, state):
        return np.zeros(1), np.zeros(1, dtype=bool)


def test_outcomes_of_the_wrong_shape_are_a_contract_error() -> None:
    runner = ModelRunner(_BadShape(), None, 84)
    with pytest.raises(ContractError, match=r"shape \(3,\)"):
        runner.outcomes(np.zeros((3, 1, 8, 8, 3), np.uint8), 3, "a test")
    with pytest.raises(ContractError, match="does not declare predicts_rewards"):
        ModelRunner(CopyLastModel(), None, 84).outcomes(None, 3, "a test")
