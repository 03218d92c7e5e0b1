"""Tests of the maze env: generation, walls, shortest paths, goals, exact and degraded perception."""

from __future__ import annotations

import dataclasses
import re
from collections import deque

import gymnasium
import numpy as np
import pytest

from panbench.envs import make
from panbench.envs.maze import MazeEnv, MazeState
from panbench.errors import ConfigError, UnknownNameError
from tests.envs import (
    assert_observations_match,
    assert_perception_sweep,
)

STEPS = {"north": (-1, 0), "south": (1, 0), "east": (0, 1), "west": (0, -1)}


@pytest.fixture(scope="module")
def env() -> MazeEnv:
    return make("maze", resolution=64)  # type: ignore[return-value]


def bfs_length(walls: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> int:
    """An independent BFS over floor tiles: moves from start to goal, -1 if unreachable."""
    seen = {start: 0}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            return seen[cell]
        for dr, dc in STEPS.values():
            nxt = (cell[0] + dr, cell[1] + dc)
            if not walls[nxt] and nxt not in seen:
                seen[nxt] = seen[cell] + 1
                queue.append(nxt)
    return -1


# ----------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resolution": 30}, "multiples of 8"),
        ({"resolution": 32, "size": 16}, "cells of at least 4 px"),
        ({"resolution": 64, "size": 12}, "multiple of 12"),
        ({"size": 4}, r"size to be an integer in \[5, 64\]"),
        ({"size": 8.0}, "size to be an integer"),
        ({"loops": 1.5}, r"loops to be a number in \[0, 1\]"),
    ],
)
def test_bad_config_is_a_clear_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make("maze", **kwargs)


def test_unknown_option_is_a_config_error_with_suggestion() -> None:
    with pytest.raises(
        ConfigError, match=re.escape("Unknown option 'sise' for env 'maze'. Did you mean: size?")
    ):
        make("maze", sise=8)


def test_config_round_trips_and_defaults_give_whole_pixel_tiles() -> None:
    for resolution, tile in ((32, 4), (64, 8), (128, 16)):
        env = make("maze", resolution=resolution)
        assert env.sheet.tile == tile
        assert env.config == {"resolution": resolution, "size": 8, "loops": 0.15}
        assert make("maze", **env.config).fingerprint() == env.fingerprint()
    assert make("maze", resolution=128, size=16).sheet.tile == 8


def test_bad_seed_is_a_config_error(env: MazeEnv) -> None:
    for seed in (-1, 1.5, "3", True):
        with pytest.raises(ConfigError, match="non-negative integer seed"):
            env.reset(seed)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- generation
def test_reset_is_deterministic_per_seed(env: MazeEnv) -> None:
    for seed in range(20):
        a, b = env.reset(seed), env.reset(seed)
        assert a == b
        np.testing.assert_array_equal(env.render(a), env.render(b))
    layouts = {env.reset(seed).walls for seed in range(50)}
    assert len(layouts) > 40  # seeds give different mazes


@pytest.mark.parametrize(("size", "resolution"), [(8, 64), (16, 128), (9, 72)])
def test_mazes_are_walled_connected_and_room_free(size: int, resolution: int) -> None:
    env = make("maze", resolution=resolution, size=size)
    for seed in range(100):
        state = env.reset(seed)
        walls = state.wall_grid
        assert walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()
        floor = [tuple(int(v) for v in cell) for cell in np.argwhere(~walls)]
        assert all(bfs_length(walls, floor[0], cell) >= 0 for cell in floor)  # one component
        open2x2 = ~walls[:-1, :-1] & ~walls[1:, :-1] & ~walls[:-1, 1:] & ~walls[1:, 1:]
        assert not open2x2.any()
        assert not walls[state.agent] and not walls[state.goal]
        assert state.agent != state.goal and not env.goal_reached(state)


def test_loops_zero_gives_a_tree_and_loops_add_cycles() -> None:
    def cycles(state: MazeState) -> int:
        floor = ~state.wall_grid
        edges = (floor[:-1] & floor[1:]).sum() + (floor[:, :-1] & floor[:, 1:]).sum()
        return int(edges - (floor.sum() - 1))  # a connected graph has edges - nodes + 1 cycles

    tree = make("maze", loops=0.0)
    assert all(cycles(tree.reset(seed)) == 0 for seed in range(50))
    loopy = make("maze", loops=1.0)
    assert sum(cycles(loopy.reset(seed)) > 0 for seed in range(50)) > 25


# ----------------------------------------------------------------------------------- dynamics
def test_action_layout(env: MazeEnv) -> None:
    actions = env.actions(env.reset(0))
    assert env.num_actions == 4
    assert [(a.index, a.text, a.kind) for a in actions] == [
        (0, "move north", "agent"),
        (1, "move south", "agent"),
        (2, "move east", "agent"),
        (3, "move west", "agent"),
    ]
    assert [a.vector for a in actions] == [(0.0, -1.0), (0.0, 1.0), (1.0, 0.0), (-1.0, 0.0)]


def test_moves_go_one_tile_and_walls_block(env: MazeEnv) -> None:
    blocked = moved = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        state = env.reset(seed)
        for _ in range(20):
            action = env.random_action(state, rng)
            dr, dc = STEPS[action.text.split()[-1]]
            target = (state.agent[0] + dr, state.agent[1] + dc)
            nxt = env.step(state, action)
            assert nxt.walls == state.walls and nxt.goal == state.goal
            if state.wall_grid[target]:
                assert nxt == state
                blocked += 1
            else:
                assert nxt.agent == target
                moved += 1
            state = nxt
    assert blocked > 50 and moved > 50


def test_step_accepts_index_text_and_action_alike(env: MazeEnv) -> None:
    state = env.reset(3)
    by_action = env.step(state, env.actions(state)[2])
    assert env.step(state, 2) == by_action
    assert env.step(state, "  Move   EAST ") == by_action


def test_states_are_immutable_values(env: MazeEnv) -> None:
    state = env.reset(0)
    copy = dataclasses.replace(state)
    for action in range(4):
        env.step(state, action)
    assert state == copy
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.agent = (1, 1)  # type: ignore[misc]
    assert not state.wall_grid.flags.writeable


def test_unknown_actions_raise_clear_errors(env: MazeEnv) -> None:
    state = env.reset(0)
    with pytest.raises(
        UnknownNameError, match=r"Unknown action 'move nort'.*Did you mean: move north"
    ):
        env.step(state, "move nort")
    with pytest.raises(UnknownNameError, match=r"action index in \[0, 4\).*but got 4"):
        env.step(state, 4)
    with pytest.raises(UnknownNameError, match="but got float"):
        env.step(state, 1.0)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- planning
@pytest.mark.parametrize("loops", [0.0, 0.15, 1.0])
def test_shortest_path_reaches_the_goal_optimally(loops: float) -> None:
    env = make("maze", loops=loops)
    for seed in range(100):
        state = env.reset(seed)
        path = env.shortest_path(state)
        assert len(path) == bfs_length(state.wall_grid, state.agent, state.goal) > 0
        assert env.goal_distance(env.observe(state)) == len(path)
        for i, action in enumerate(path):
            assert not env.goal_reached(state)
            assert env.goal_distance(env.observe(state)) == len(path) - i
            state = env.step(state, action)
        assert env.goal_reached(state) and env.goal_reached(state, "reach-goal")
        assert env.goal_distance(env.observe(state)) == 0.0
        assert env.shortest_path(state) == []


def test_goal_distance_reads_imagined_frames(env: MazeEnv) -> None:
    for seed in range(20):
        state = env.reset(seed)
        frame = env.render(state)
        assert env.goal_distance(env.perceive(frame)) == len(env.shortest_path(state))


def test_goal_distance_is_finite_when_entities_are_missing_or_walled_off(env: MazeEnv) -> None:
    state = env.reset(0)
    worst = float(env.size**2)
    obs = env.observe(state)
    for slot in (0, 1):
        gone = {k: v.copy() for k, v in obs.items()}
        gone["present"][slot] = False
        gone["positions"][slot] = np.nan
        assert env.goal_distance(gone) == worst
        nan_only = {k: v.copy() for k, v in obs.items()}
        nan_only["positions"][slot] = np.nan
        assert env.goal_distance(nan_only) == worst
    boxed = {k: v.copy() for k, v in obs.items()}
    boxed["walls"][:] = True  # every tile a wall, but agent and goal on distinct tiles
    assert env.goal_distance(boxed) == worst
    blank = env.perceive(np.zeros((64, 64, 3), np.uint8))
    assert env.goal_distance(blank) == worst
    assert 0 < env.goal_distance(env.observe(state)) < worst


def test_goal_names(env: MazeEnv) -> None:
    assert env.goals() == ["reach-goal"]
    state = env.reset(0)
    with pytest.raises(
        UnknownNameError, match=re.escape("Unknown goal 'reach-gaol'. Did you mean: reach-goal?")
    ):
        env.goal_reached(state, "reach-gaol")
    with pytest.raises(UnknownNameError, match="Unknown goal 'line'"):
        env.goal_distance(env.observe(state), "line")


# ----------------------------------------------------------------------------------- pixels
def test_render_draws_tiles_and_batch_matches_render(env: MazeEnv) -> None:
    states = [env.reset(seed) for seed in range(16)]
    batch = env.render_batch(states)
    assert batch.shape == (16, 64, 64, 3) and batch.dtype == np.uint8
    for state, frame in zip(states, batch, strict=True):
        np.testing.assert_array_equal(frame, env.render(state))
        r, c = state.goal
        tile = frame[r * 8 : r * 8 + 8, c * 8 : c * 8 + 8]
        assert (tile == (56, 184, 92)).all(-1).all()  # the goal tile is plain green
        r, c = state.agent
        tile = frame[r * 8 : r * 8 + 8, c * 8 : c * 8 + 8]
        assert (tile[4, 4] == (222, 60, 48)).all() and (tile[0, 0] == (236, 236, 228)).all()
    assert env.render_batch([]).shape == (0, 64, 64, 3)


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_perceive_recovers_observe_exactly(resolution: int) -> None:
    assert_perception_sweep(make("maze", resolution=resolution), seeds=200, steps=10)


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_agent_on_the_goal_leaves_both_perceivable(resolution: int) -> None:
    env = make("maze", resolution=resolution)
    state = env.reset(5)
    for action in env.shortest_path(state):
        state = env.step(state, action)
    assert state.agent == state.goal
    obs = env.perceive(env.render(state))
    assert obs["present"].all()
    assert_observations_match(env.observe(state), obs)
    assert env.goal_distance(obs) == 0.0


def test_gym_wrapper_runs_the_maze() -> None:
    gym_env = gymnasium.make("panbench/Maze-v0", resolution=32)
    frame, info = gym_env.reset(seed=4)
    assert frame.shape == (32, 32, 3) and info["present"].all()
    state = gym_env.unwrapped._state
    path = gym_env.unwrapped.env.shortest_path(state)
    for i, action in enumerate(path):
        _, reward, terminated, _, _ = gym_env.step(action.index)
        assert terminated == (i == len(path) - 1) and reward == float(terminated)


def test_sensible_actions_are_the_moves_off_walls_read_from_pixels() -> None:
    env = MazeEnv(resolution=64, size=8)
    for seed in range(10):
        state = env.reset(seed)
        actions = env.actions(state)
        sensible = env.sensible_actions(env.render(state), actions)
        assert sensible is not None
        assert [a.index for a in sensible] == [
            a.index for a in actions if env.step(state, a) != state
        ]
    blank = np.zeros((64, 64, 3), dtype=np.uint8)  # no agent to be seen: nothing is sensible
    assert env.sensible_actions(blank, env.actions(env.reset(0))) == []
