"""The gradient planner: backpropagating an image-goal cost through a differentiable model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from panbench.data.episodes import Episode
from panbench.envs import make as make_env
from panbench.errors import ConfigError, ContractError
from panbench.harness import evaluate
from panbench.models.api import ActionSpace, ModelSpec
from panbench.planning import Goal, Imagination, PixelGoalScorer, Situation, make_planner
from panbench.protocols import PROTOCOLS
from panbench.protocols.base import ModelRunner
from panbench.results import validate_results
from panbench.suite import load_task
from tests.models.adapters import SoftBlobModel

pytest.importorskip("gym_pusht")

RES = 32
TASK = """\
task: tiny-plan-gradient
version: 1
protocol: closed_loop
env: {name: pusht, resolution: 32, kwargs: {max_offset: 10, max_rotation: 10, move_scale: 25}}
episodes: {count: 2, seed: 9900, context: 1, horizon: 2, policy: continuous}
metrics: [success, random_success, wm_calls, frames_imagined, tie_rate]
headline: success
options:
  planner: gradient
  planner_options: {horizon: 2, samples: 2, iterations: 3, blur: 1.0}
  scorer: pixel
  random_rollouts: 2
"""


def _setup(seed: int = 3) -> tuple[object, ModelRunner, Episode, np.ndarray]:
    env = make_env("pusht", resolution=RES, max_offset=10, max_rotation=10, move_scale=25)
    state = env.reset(seed)
    frame = env.render(state)
    episode = Episode(
        index=0,
        episode_id="t/0",
        seed=seed,
        context_frames=frame[None],
        context_actions=[],
        context_states=[state],
        actions=[],
        states=[],
        frames=frame[:0],
    )
    return env, ModelRunner(SoftBlobModel(), env, RES), episode, frame


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a.astype(np.float64) - b.astype(np.float64)) / 255.0).__pow__(2).mean())


def test_gradient_descent_lowers_the_imagined_cost_from_its_start() -> None:
    env, runner, episode, frame = _setup()
    model = runner.model
    # The goal: the model's own picture of the agent 3 moves of (0.8, -0.5) away.
    target = torch.tensor([[[0.8, -0.5]] * 3])
    goal = model.imagine_differentiable(model.reset(runner.context([episode])), target)
    goal_image = (goal[0, -1].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    planner = make_planner(
        "gradient", env, horizon=3, samples=2, iterations=25, lr=0.15, blur=1.5, warm_start=False
    )
    situation = Situation(frame, tuple(env.actions(None)), Goal("push-t", "", goal_image), 0, 5)
    imagination = Imagination(runner, episode)
    plan = planner.plan(
        situation, imagination, PixelGoalScorer(goal_image), np.random.default_rng(0)
    )
    # Independently: imagine the start (no move) and the plan through the model's plain step.
    start_frames = imagination.rollout([[env.vector_action(None, (0.0, 0.0))] * 3])
    planned = imagination.rollout([list(plan.sequence)])
    start_cost = _mse(start_frames[0, -1], goal_image)
    planned_cost = _mse(planned[0, -1], goal_image)
    assert planned_cost < 0.25 * start_cost
    assert plan.action.vector[0] > 0 > plan.action.vector[1]  # toward the goal's blob
    assert plan.candidates == 2 * 26
    assert plan.compute.wm_calls == 26 * (1 + 3)  # a reset and 3 steps per Adam iterate


def test_gradient_task_is_skipped_for_models_without_gradients(tmp_path: Path) -> None:
    path = tmp_path / "tiny-plan-gradient.yaml"
    path.write_text(TASK)
    copy = evaluate("copy-last", out=tmp_path / "copy", tasks=[str(path)], progress=False)
    entry = copy["tasks"]["tiny-plan-gradient"]
    assert entry["metrics"] == {}
    assert set(entry["skipped"]) == {
        "success",
        "random_success",
        "wm_calls",
        "frames_imagined",
        "tie_rate",
    }
    assert "ModelSpec.differentiable is False" in entry["skipped"]["success"]
    validate_results(tmp_path / "copy")
    blob = evaluate(
        "tests.models.adapters:SoftBlobModel",
        out=tmp_path / "blob",
        tasks=[str(path)],
        progress=False,
    )
    metrics = blob["tasks"]["tiny-plan-gradient"]["metrics"]
    assert blob["tasks"]["tiny-plan-gradient"]["skipped"] == {}
    assert 0.0 <= metrics["success"]["value"] <= 1.0
    assert metrics["tie_rate"]["value"] < 1.0  # the blob moves with the action: no ties
    assert metrics["wm_calls"]["value"] > 0
    validate_results(tmp_path / "blob")


def test_gradient_task_refuses_grounded_scoring_and_an_oracle_reference(tmp_path: Path) -> None:
    env = make_env("pusht", resolution=RES, max_offset=10, max_rotation=10, move_scale=25)
    for change, match in (
        (("scorer: pixel", "scorer: grounded"), "perception has no gradient"),
        (("tie_rate]", "tie_rate, oracle_success]"), "without oracle_success"),
    ):
        path = tmp_path / "t.yaml"
        path.write_text(TASK.replace(*change))
        with pytest.raises(ConfigError, match=match):
            PROTOCOLS.get("closed_loop")(load_task(str(path)), env)


def test_runner_checks_what_imagine_differentiable_returns() -> None:
    env, _, episode, _ = _setup()

    class _Numpy(SoftBlobModel):
        def imagine_differentiable(self, state: object, actions: object) -> object:
            return np.zeros((1, 2, RES, RES, 3), np.float32)

    class _Plain(SoftBlobModel):
        def __init__(self) -> None:
            super().__init__()
            self.spec = ModelSpec(name="plain", action_space=ActionSpace.CONTINUOUS)

    actions = torch.zeros((1, 2, 2))
    with pytest.raises(ContractError, match="expected a float torch tensor"):
        ModelRunner(_Numpy(), env, RES).imagine_differentiable([episode], actions, "here")
    with pytest.raises(ContractError, match="does not declare differentiable"):
        ModelRunner(_Plain(), env, RES).imagine_differentiable([episode], actions, "here")
    frames = ModelRunner(SoftBlobModel(), env, 16).imagine_differentiable([episode], actions, "x")
    assert tuple(frames.shape) == (1, 2, 16, 16, 3)  # resized to the task resolution
    with pytest.raises(ContractError, match="needs action_space 'continuous'"):
        ModelSpec(name="d", action_space=ActionSpace.DISCRETE, differentiable=True)
