"""Gymnasium registration: every env is reachable through gymnasium.make and behaves like the env."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import panbench.envs
from panbench.envs.gym import GYM_IDS, VECTOR_ACTIONS


@pytest.mark.parametrize("name", sorted(GYM_IDS))
def test_gym_env_matches_panbench_env(name: str) -> None:
    if name in VECTOR_ACTIONS:
        pytest.importorskip("gym_pusht")
    kwargs = {"goal": "line"} if name == "blocks" else {}
    genv = gymnasium.make(GYM_IDS[name], resolution=32, **kwargs)
    env = panbench.envs.make(name, resolution=32)
    frame, info = genv.reset(seed=3)
    state = env.reset(3)
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, env.render(state))
    assert genv.observation_space.contains(frame)
    vector = name in VECTOR_ACTIONS
    if vector:  # continuous controls: the env's VectorSpace as a gymnasium Box
        assert genv.action_space == env.action_space.to_gym()
    else:
        assert genv.action_space.n == env.num_actions
    rng = np.random.default_rng(0)
    for _ in range(5):
        action = env.random_action(state, rng)
        assert not vector or genv.action_space.contains(np.float32(action.vector))
        frame, _reward, _terminated, truncated, info = genv.step(
            np.asarray(action.vector) if vector else action.index
        )
        state = env.step(state, action)
        np.testing.assert_array_equal(frame, env.render(state))
        np.testing.assert_array_equal(info["present"], env.observe(state)["present"])
        assert not truncated
    np.testing.assert_array_equal(genv.render(), env.render(state))


def test_maze_goal_gives_reward_and_terminates() -> None:
    genv = gymnasium.make("panbench/Maze-v0", resolution=32)
    env = panbench.envs.make("maze", resolution=32)
    genv.reset(seed=5)
    plan = env.shortest_path(env.reset(5))
    results = [genv.step(a.index) for a in plan]
    assert [r[1] for r in results] == [0.0] * (len(plan) - 1) + [1.0]
    assert results[-1][2] is True


def test_multi_goal_env_requires_goal() -> None:
    with pytest.raises(ValueError, match="pass goal="):
        gymnasium.make("panbench/Blocks-v0")
