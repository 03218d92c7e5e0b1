"""Continuous actions end to end: action spaces, ``ModelSpec.action_dim``, refusals, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

from panbench.cli import main
from panbench.data.episodes import hash_episode, make_episode
from panbench.envs import make as make_env
from panbench.envs.base import NO_INDEX, Action, VectorSpace
from panbench.errors import ActionSpaceError, ConfigError, ContractError
from panbench.harness import evaluate
from panbench.models.api import ActionSpace, ModelSpec, check_action_space
from panbench.results import validate_results

ADAPTERS = "tests.models.adapters"

MAZE_TASK = """\
task: vector-maze
version: 1
protocol: rollout
env: {name: maze, resolution: 32, kwargs: {size: 8}}
episodes: {count: 4, seed: 5, context: 2, horizon: 6, policy: continuous}
metrics: [tracking_accuracy, psnr]
headline: tracking_accuracy
"""


def _task(tmp_path: Path) -> str:
    path = tmp_path / "vector-maze.yaml"
    path.write_text(MAZE_TASK)
    return str(path)


# ============================================================================ VectorSpace
def test_vector_space_matches_gymnasium_box() -> None:
    space = VectorSpace(low=(-1.0, -2.0), high=(1.0, 3.0))
    box = spaces.Box(low=np.array([-1.0, -2.0], np.float32), high=np.array([1.0, 3.0], np.float32))
    assert space.to_gym() == box
    rng = np.random.default_rng(0)
    draws = space.sample(rng, 200)
    assert draws.shape == (200, 2)
    for v in draws:  # every draw is inside both spaces
        assert space.contains(v) and box.contains(v.astype(np.float32))
    for v in ([2.0, 0.0], [0.0, -2.5], [np.nan, 0.0], [0.0], [0.0, 0.0, 0.0]):
        assert not space.contains(v)
    assert space.clip([5.0, np.nan]).tolist() == [1.0, 0.5]


@pytest.mark.parametrize(
    ("low", "high"), [((), ()), ((0.0,), (0.0,)), ((0.0, 1.0), (1.0,)), ((1.0,), (0.0,))]
)
def test_vector_space_refuses_bad_bounds(low: tuple, high: tuple) -> None:
    with pytest.raises(ConfigError, match="high > low"):
        VectorSpace(low=low, high=high)


def test_vector_space_check_names_expected_and_received() -> None:
    space = VectorSpace(low=(-1.0, -1.0), high=(1.0, 1.0))
    with pytest.raises(ConfigError, match=r"2 finite numbers within low=\[-1.0, -1.0\].*got \[3"):
        space.check([3.0, 0.0], "Env 'maze'")


# ============================================================================ envs
def test_maze_vectors_command_the_nearest_move() -> None:
    env = make_env("maze", resolution=32)
    assert env.action_space is not None and env.action_space.dim == 2
    state = env.reset(3)
    for action in env.actions(state):
        assert action.vector is not None
        # a vector near the move's own, without index or text, is the same move
        nudged = np.asarray(action.vector) * 0.8 + 0.1
        bare = Action(NO_INDEX, "", vector=tuple(nudged))
        assert env.vector_action(state, nudged) == action
        assert env.observe(env.step(state, bare))["cells"].tolist() == (
            env.observe(env.step(state, action))["cells"].tolist()
        )
    with pytest.raises(ConfigError, match="expected an action vector of 2"):
        env.vector_action(state, (0.0, 0.0, 1.0))


def test_envs_without_vectors_refuse_them() -> None:
    env = make_env("shapes", resolution=32)
    assert env.action_space is None
    with pytest.raises(ConfigError, match="no continuous action space"):
        env.vector_action(env.reset(0), (0.0, 1.0))


def test_continuous_episodes_hash_their_vectors() -> None:
    env = make_env("maze", resolution=32)
    episode = make_episode(env, "t", 5, 0, context=2, horizon=6, policy="continuous")
    actions = [*episode.context_actions, *episode.actions]
    assert all(a.has_index for a in actions)  # maze snaps vectors to its moves
    free = [Action(NO_INDEX, "", vector=(0.1 * i, 0.0)) for i in range(3)]
    moved = [Action(NO_INDEX, "", vector=(0.1 * i, 0.5)) for i in range(3)]
    frames = episode.frames
    assert hash_episode(frames, free) != hash_episode(frames, moved)
    with pytest.raises(ConfigError, match="no continuous action space"):
        make_episode(make_env("shapes", resolution=32), "t", 0, 0, 2, 2, "continuous")


# ============================================================================ ModelSpec
def test_model_spec_action_dim() -> None:
    spec = ModelSpec(name="m", action_space="continuous", action_dim=2)
    assert spec.to_dict()["action_dim"] == 2
    assert "action_dim" not in ModelSpec(name="m").to_dict()
    with pytest.raises(ContractError, match=r"action_dim to be an integer >= 1.*got 0"):
        ModelSpec(name="m", action_space="continuous", action_dim=0)
    with pytest.raises(ContractError, match="action_dim is for continuous models"):
        ModelSpec(name="m", action_space=ActionSpace.DISCRETE, action_dim=2)


def test_check_action_space() -> None:
    maze, shapes = make_env("maze", resolution=32), make_env("shapes", resolution=32)
    cont = ModelSpec(name="m", action_space="continuous")
    check_action_space(cont, maze, "t")
    check_action_space(ModelSpec(name="m", action_space="continuous", action_dim=2), maze, "t")
    check_action_space(ModelSpec(name="m", action_space="discrete"), shapes, "t")
    check_action_space(cont, None, "t")  # recorded data: checked per step by the runner
    with pytest.raises(ActionSpaceError, match=r"dimension 3, but task 't' runs env 'maze'.*2"):
        check_action_space(ModelSpec(name="m", action_space="continuous", action_dim=3), maze, "t")
    with pytest.raises(ActionSpaceError, match="env 'shapes', whose actions are discrete"):
        check_action_space(cont, shapes, "t")


# ============================================================================ evaluate
def test_a_continuous_model_runs_through_evaluate(tmp_path: Path) -> None:
    task = _task(tmp_path)
    out = tmp_path / "run"
    results = evaluate(
        f"{ADAPTERS}:VectorOracle", {"action_dim": 2}, out=out, tasks=[task], progress=False
    )
    assert results["model"]["spec"]["action_space"] == "continuous"
    assert results["model"]["spec"]["action_dim"] == 2
    metrics = results["tasks"]["vector-maze"]["metrics"]
    # The vectors alone drive the true maze exactly as the recorded moves did.
    assert metrics["tracking_accuracy"]["value"] == 1.0
    assert metrics["psnr"]["value"] == 100.0
    validate_results(out)
    copied = evaluate("copy-last", out=tmp_path / "copy", tasks=[task], progress=False)
    assert copied["tasks"]["vector-maze"]["metrics"]["psnr"]["value"] < 100.0


def test_a_mismatched_action_dimension_exits_2_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["evaluate", "--model", f"{ADAPTERS}:VectorOracle", "--model-args", "action_dim=3"]
    assert main([*argv, "--tasks", _task(tmp_path), "--out", str(out), "--no-progress"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "vectors of dimension 3" in err and "action space has dimension 2" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_results_record_the_action_dim(tmp_path: Path) -> None:
    from panbench.results_model import parse_results

    out = tmp_path / "run"
    evaluate(
        f"{ADAPTERS}:VectorOracle",
        {"action_dim": 2},
        out=out,
        tasks=[_task(tmp_path)],
        progress=False,
    )
    data = json.loads((out / "results.json").read_text())
    assert parse_results(data).model.spec.action_dim == 2
