"""Tests of the blocks env: pushing, goal predicates and distances, reachability, perception."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections import deque

import gymnasium
import numpy as np
import pytest

from panbench.envs import make
from panbench.envs.blocks import _RING, GOALS, BlocksEnv, BlocksState
from panbench.errors import ConfigError, UnknownNameError
from tests.envs import (
    assert_observations_match,
    assert_perception_sweep,
)

Cell = tuple[int, int]
DIRS = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


@pytest.fixture(scope="module")
def env() -> BlocksEnv:
    return make("blocks", resolution=64)  # type: ignore[return-value]


def state_of(pusher: Cell, *blocks: Cell) -> BlocksState:
    return BlocksState(pusher=pusher, blocks=tuple(blocks))


# ----------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resolution": 36}, "multiples of 8"),
        ({"resolution": 40, "size": 16}, "multiple of 16"),
        ({"resolution": 32, "size": 16}, "cells of at least 4 px"),
        ({"num_blocks": 2}, r"num_blocks to be an integer in \[3, 6\]"),
        ({"num_blocks": 7}, r"num_blocks to be an integer in \[3, 6\]"),
        ({"num_blocks": True}, "num_blocks to be an integer"),
        ({"size": 5}, r"size to be an integer in \[6, 64\]"),
        ({"blocks": 4}, re.escape("Unknown option 'blocks' for env 'blocks'. Did you mean: ")),
    ],
)
def test_bad_config_is_a_clear_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make("blocks", **kwargs)


def test_config_round_trips_and_defaults_give_whole_pixel_cells() -> None:
    for resolution, tile in ((32, 4), (64, 8), (128, 16)):
        env = make("blocks", resolution=resolution)
        assert env.sheet.tile == tile
        assert env.config == {"resolution": resolution, "size": 8, "num_blocks": 4}
        assert make("blocks", **env.config).fingerprint() == env.fingerprint()


@pytest.mark.parametrize("num_blocks", [3, 4, 5, 6])
def test_action_layout_is_stable_and_texts_are_unique(num_blocks: int) -> None:
    env = make("blocks", num_blocks=num_blocks)
    actions = env.actions(env.reset(0))
    assert env.num_actions == len(actions) == 4 + 4 * num_blocks == env.num_entities * 4
    assert [a.index for a in actions] == list(range(env.num_actions))
    assert [a.text for a in actions[:4]] == [f"move the pusher {d}" for d in DIRS]
    assert actions[4].text == "push the red square up"
    assert actions[4 + 4 * 1 + 3].text == "push the red diamond right"
    assert actions[4 + 4 * 2 + 2].text == "push the blue square left"
    texts = [a.text for a in actions]
    assert len(set(texts)) == len(texts) and all(t == t.lower() for t in texts)
    assert {a.vector for a in actions} == {(0.0, -1.0), (0.0, 1.0), (-1.0, 0.0), (1.0, 0.0)}
    # Identity and colour groups are fixed per slot, so slot k means one block in every episode.
    assert env.block_colours[:3] == ["red", "red", "blue"]
    assert len(set(env.block_names)) == num_blocks
    assert env.actions(env.reset(7)) == actions


# ----------------------------------------------------------------------------------- reset
@pytest.mark.parametrize("num_blocks", [3, 4, 5, 6])
def test_reset_is_deterministic_valid_and_satisfies_no_goal(num_blocks: int) -> None:
    env = make("blocks", num_blocks=num_blocks)
    for seed in range(100):
        state = env.reset(seed)
        assert state == env.reset(seed)
        cells = [state.pusher, *state.blocks]
        assert len(set(cells)) == len(cells) == num_blocks + 1
        assert all(0 <= r < 8 and 0 <= c < 8 for r, c in cells)
        assert not any(env.goal_reached(state, goal) for goal in GOALS)
    np.testing.assert_array_equal(env.render(env.reset(3)), env.render(env.reset(3)))
    assert len({env.reset(seed) for seed in range(50)}) == 50


def test_bad_seed_is_a_config_error(env: BlocksEnv) -> None:
    with pytest.raises(ConfigError, match="non-negative integer seed"):
        env.reset(-3)


# ----------------------------------------------------------------------------------- dynamics
def test_pusher_moves_one_cell_and_stops_at_the_table_edge(env: BlocksEnv) -> None:
    state = state_of((0, 0), (4, 4), (4, 5), (5, 4), (5, 5))
    assert env.step(state, "move the pusher down").pusher == (1, 0)
    assert env.step(state, "move the pusher right").pusher == (0, 1)
    assert env.step(state, "move the pusher up") == state
    assert env.step(state, "move the pusher left") == state
    corner = state_of((7, 7), (0, 0), (0, 1), (1, 0), (1, 1))
    assert env.step(corner, 1) == corner and env.step(corner, 3) == corner


def test_pusher_walking_into_a_block_pushes_it_one_cell(env: BlocksEnv) -> None:
    state = state_of((3, 2), (3, 3), (0, 0), (7, 7), (6, 0))
    pushed = env.step(state, "move the pusher right")
    assert pushed.blocks == ((3, 4), (0, 0), (7, 7), (6, 0)) and pushed.pusher == (3, 3)
    # Same as the block push itself.
    assert env.step(state, "push the red square right") == pushed


def test_pushes_into_blocks_or_off_the_table_are_no_ops(env: BlocksEnv) -> None:
    state = state_of((3, 2), (3, 3), (3, 4), (0, 7), (5, 5))
    assert env.step(state, "move the pusher right") == state  # red diamond is in the way
    assert env.step(state, "push the red square right") == state
    assert env.step(state, "push the blue square up") == state  # off the top edge
    assert env.step(state, "push the blue square right") == state  # off the right edge
    edge = state_of((1, 7), (0, 7), (5, 0), (6, 0), (7, 7))
    assert env.step(edge, "move the pusher up") == edge


@pytest.mark.parametrize("num_blocks", [3, 6])
def test_every_push_moves_exactly_one_block_exactly_one_cell(num_blocks: int) -> None:
    env = make("blocks", num_blocks=num_blocks)
    moved = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        state = env.reset(seed)
        for _ in range(25):
            action = env.random_action(state, rng)
            nxt = env.step(state, action)
            changed = [i for i in range(num_blocks) if nxt.blocks[i] != state.blocks[i]]
            assert len(changed) <= 1
            if changed:
                (i,) = changed
                old, new = state.blocks[i], nxt.blocks[i]
                assert abs(old[0] - new[0]) + abs(old[1] - new[1]) == 1
                assert nxt.pusher == old  # the pusher ends behind the block
                moved += 1
            elif action.index >= 4:
                assert nxt == state  # a block push either pushes or does nothing
            cells = [nxt.pusher, *nxt.blocks]
            assert len(set(cells)) == len(cells)
            state = nxt
    assert moved > 300


def test_a_push_may_swap_the_block_with_the_pusher(env: BlocksEnv) -> None:
    state = state_of((2, 4), (2, 3), (0, 0), (7, 7), (6, 0))
    nxt = env.step(state, "push the red square right")
    assert nxt.blocks[0] == (2, 4) and nxt.pusher == (2, 3)


def test_states_are_immutable_values(env: BlocksEnv) -> None:
    state = env.reset(0)
    copy = dataclasses.replace(state)
    for action in range(env.num_actions):
        env.step(state, action)
    assert state == copy
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.pusher = (0, 0)  # type: ignore[misc]


def test_unknown_actions_raise_clear_errors(env: BlocksEnv) -> None:
    state = env.reset(0)
    with pytest.raises(UnknownNameError, match="Did you mean: push the red square up"):
        env.step(state, "push the red sqaure up")
    with pytest.raises(UnknownNameError, match=r"Unknown action 'push the green square up'"):
        env.step(state, "push the green square up")  # no green block with 4 blocks
    with pytest.raises(UnknownNameError, match=r"action index in \[0, 20\).*but got 20"):
        env.step(state, 20)


# ----------------------------------------------------------------------------------- goals
POSITIVE = {
    "cluster": [[(3, 3), (3, 4), (4, 3), (4, 4)], [(0, 0), (1, 0), (2, 0), (2, 1)]],
    "line": [[(5, 2), (5, 3), (5, 4), (5, 5)], [(1, 7), (0, 7), (3, 7), (2, 7)]],
    "bottom-right": [[(4, 4), (7, 7), (4, 7), (6, 5)]],
    "group-by-colour": [[(1, 1), (1, 2), (5, 5), (6, 5)], [(1, 1), (1, 2), (2, 3), (3, 3)]],
    "circle": [[(2, 3), (3, 4), (4, 3), (3, 2)], [(2, 2), (2, 4), (4, 4), (4, 2)]],
}
NEGATIVE = {
    "cluster": [[(3, 3), (3, 4), (4, 5), (4, 6)], [(0, 0), (0, 1), (0, 2), (0, 4)]],
    "line": [[(5, 2), (5, 3), (5, 4), (5, 6)], [(5, 2), (5, 3), (5, 4), (6, 4)]],
    "bottom-right": [[(4, 4), (7, 7), (4, 7), (3, 5)], [(4, 4), (7, 7), (4, 3), (6, 5)]],
    "group-by-colour": [[(1, 1), (1, 2), (1, 3), (1, 4)], [(1, 1), (1, 3), (5, 5), (5, 6)]],
    "circle": [
        [(2, 2), (2, 3), (2, 4), (3, 4)],  # all on one side of the centre
        [(2, 3), (3, 4), (4, 3), (3, 3)],  # a block on the centre
        [(2, 2), (2, 4), (4, 4), (5, 2)],  # one block two cells out
    ],
}


@pytest.mark.parametrize("goal", GOALS)
def test_goal_predicates_on_hand_made_states(env: BlocksEnv, goal: str) -> None:
    for blocks in POSITIVE[goal]:
        state = state_of((7, 0), *blocks)
        assert env.goal_reached(state, goal), (goal, blocks)
        assert env.goal_distance(env.observe(state), goal) == 0.0
        assert env.goal_distance(env.perceive(env.render(state)), goal) == 0.0
    for blocks in NEGATIVE[goal]:
        state = state_of((7, 0), *blocks)
        assert not env.goal_reached(state, goal), (goal, blocks)
        assert env.goal_distance(env.observe(state), goal) > 0.0


def test_circle_with_three_blocks_needs_them_spread_round_the_centre() -> None:
    env = make("blocks", num_blocks=3)
    assert env.goal_reached(state_of((7, 7), (2, 2), (3, 4), (4, 2)), "circle")
    assert not env.goal_reached(state_of((7, 7), (2, 2), (2, 3), (3, 4)), "circle")


def targets(env: BlocksEnv, goal: str) -> list[Cell]:
    """A cell per block that satisfies ``goal`` on an 8x8 table."""
    n = env.num_blocks
    if goal == "cluster":
        return [(3 + i // 3, 2 + i % 3) for i in range(n)]
    if goal == "line":
        return [(3, 1 + i) for i in range(n)]
    if goal == "bottom-right":
        return [(5 + i // 3, 5 + i % 3) for i in range(n)]
    if goal == "group-by-colour":
        rows = {colour: 1 + 2 * k for k, colour in enumerate(dict.fromkeys(env.block_colours))}
        colours = env.block_colours
        return [(rows[c], 1 + colours[:i].count(c)) for i, c in enumerate(colours)]
    offsets = [_RING[round(i * 8 / n) % 8] for i in range(n)]
    return [(3 + dr, 3 + dc) for dr, dc in offsets]


def block_path(start: Cell, goal: Cell, obstacles: set[Cell]) -> list[str] | None:
    """Directions that slide one block from start to goal around ``obstacles`` (BFS)."""
    previous: dict[Cell, tuple[Cell, str] | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            moves = []
            while previous[cell] is not None:
                cell, move = previous[cell]  # type: ignore[misc]
                moves.append(move)
            return moves[::-1]
        for name, (dr, dc) in DIRS.items():
            nxt = (cell[0] + dr, cell[1] + dc)
            if 0 <= nxt[0] < 8 and 0 <= nxt[1] < 8 and nxt not in obstacles and nxt not in previous:
                previous[nxt] = (cell, name)
                queue.append(nxt)
    return None


def plan(env: BlocksEnv, state: BlocksState, goal: str) -> list[str]:
    """Push texts that bring each block to its target, trying block orders until one is clear."""
    goal_cells = targets(env, goal)
    for order in itertools.permutations(range(env.num_blocks)):
        cells = list(state.blocks)
        texts: list[str] = []
        for i in order:
            moves = block_path(cells[i], goal_cells[i], set(cells) - {cells[i]})
            if moves is None:
                break
            texts += [f"push the {env.block_names[i]} {move}" for move in moves]
            cells[i] = goal_cells[i]
        else:
            return texts
    raise AssertionError("no block order reaches the targets")


@pytest.mark.parametrize("num_blocks", [3, 4, 5, 6])
@pytest.mark.parametrize("goal", GOALS)
def test_every_goal_is_reachable_with_short_block_push_plans(goal: str, num_blocks: int) -> None:
    env = make("blocks", num_blocks=num_blocks)
    assert env.goal_reached(state_of((7, 0), *targets(env, goal)), goal)
    for seed in range(4):
        state = env.reset(seed)
        texts = plan(env, state, goal)
        assert len(texts) <= 12 * num_blocks
        for text in texts:
            state = env.step(state, text)
        assert env.goal_reached(state, goal)
        assert env.goal_distance(env.perceive(env.render(state)), goal) == 0.0


def random_layouts(rng: np.random.Generator, n: int, count: int) -> list[list[Cell]]:
    flat = [rng.choice(64, size=n, replace=False) for _ in range(count)]
    return [[(int(v) // 8, int(v) % 8) for v in cells] for cells in flat]


@pytest.mark.parametrize("num_blocks", [3, 4, 5, 6])
def test_goal_distance_is_zero_exactly_when_the_goal_holds(num_blocks: int) -> None:
    env = make("blocks", num_blocks=num_blocks)
    rng = np.random.default_rng(num_blocks)
    layouts = random_layouts(rng, num_blocks, 300)
    # Near misses: goal layouts shifted as a whole, and with one block nudged one cell.
    for goal in GOALS:
        base = targets(env, goal)
        for shift in itertools.product(range(-3, 3), repeat=2):
            moved = [(r + shift[0], c + shift[1]) for r, c in base]
            if all(0 <= r < 8 and 0 <= c < 8 for r, c in moved):
                layouts.append(moved)
                for i, (dr, dc) in itertools.product(range(num_blocks), DIRS.values()):
                    nudged = list(moved)
                    nudged[i] = (moved[i][0] + dr, moved[i][1] + dc)
                    if len(set(nudged)) == num_blocks and all(0 <= v < 8 for v in nudged[i]):
                        layouts.append(nudged)
    positives = dict.fromkeys(GOALS, 0)
    for blocks in layouts:
        state = state_of((-9, -9), *blocks)  # pusher off the board: goals never look at it
        obs = env.observe(state)
        for goal in GOALS:
            reached = env.goal_reached(state, goal)
            distance = env.goal_distance(obs, goal)
            assert np.isfinite(distance) and distance >= 0
            assert (distance == 0.0) == reached, (goal, blocks, distance)
            positives[goal] += reached
    assert min(positives.values()) >= 5, positives


def test_goal_distance_shrinks_along_a_solution(env: BlocksEnv) -> None:
    state = env.reset(11)
    for goal in GOALS:
        s = state
        start = env.goal_distance(env.observe(s), goal)
        for text in plan(env, s, goal):
            s = env.step(s, text)
        assert start > 0 and env.goal_distance(env.observe(s), goal) == 0


def test_goal_distance_penalises_missing_blocks_but_stays_finite(env: BlocksEnv) -> None:
    state = state_of((7, 0), (3, 3), (3, 4), (4, 3), (4, 4))
    obs = env.observe(state)
    for goal in GOALS:
        gone = {k: v.copy() for k, v in obs.items()}
        gone["present"][2] = False
        gone["positions"][2] = np.nan
        assert env.goal_distance(gone, goal) >= 16
        nan_only = {k: v.copy() for k, v in obs.items()}
        nan_only["positions"][1:] = np.nan
        assert 4 * 16 <= env.goal_distance(nan_only, goal) < np.inf
        stacked = {k: v.copy() for k, v in obs.items()}
        stacked["positions"][2] = stacked["positions"][1]  # two blocks on one cell
        assert env.goal_distance(stacked, goal) > 0
    blank = env.perceive(np.zeros((64, 64, 3), np.uint8))
    assert env.goal_distance(blank, "line") == 4 * 16


def test_goal_errors_are_clear(env: BlocksEnv) -> None:
    state = env.reset(0)
    assert env.goals() == ["group-by-colour", "cluster", "line", "bottom-right", "circle"]
    with pytest.raises(
        UnknownNameError, match=re.escape("Unknown goal 'lien'. Did you mean: line?")
    ):
        env.goal_reached(state, "lien")
    with pytest.raises(UnknownNameError, match=r"Unknown goal 'group-by-color'\. Did you mean"):
        env.goal_distance(env.observe(state), "group-by-color")
    with pytest.raises(ConfigError, match="needs a goal name"):
        env.goal_reached(state)
    with pytest.raises(ConfigError, match="Expected 5 entity slots"):
        env.goal_distance({"positions": np.zeros((3, 2)), "present": np.ones(3, bool)}, "line")


# ----------------------------------------------------------------------------------- pixels
def test_render_batch_matches_render_and_draws_slots(env: BlocksEnv) -> None:
    states = [env.reset(seed) for seed in range(16)]
    batch = env.render_batch(states)
    assert batch.shape == (16, 64, 64, 3) and batch.dtype == np.uint8
    for state, frame in zip(states, batch, strict=True):
        np.testing.assert_array_equal(frame, env.render(state))
        r, c = state.blocks[0]  # red square: solid red in the middle of its cell
        assert (frame[r * 8 + 4, c * 8 + 4] == (214, 52, 46)).all()
        r, c = state.pusher
        assert (frame[r * 8 + 4, c * 8 + 4] == (56, 56, 56)).all()
    assert env.render_batch([]).shape == (0, 64, 64, 3)


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_sprites_are_distinct_per_slot(resolution: int) -> None:
    env = make("blocks", resolution=resolution, num_blocks=6)
    tiles = env.sheet.tiles.reshape(len(env.sheet.tiles), -1).astype(int)
    diffs = np.abs(tiles[:, None] - tiles[None]).sum(-1)
    assert (diffs[~np.eye(len(tiles), dtype=bool)] > 0).all()


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_perceive_recovers_observe_exactly(resolution: int) -> None:
    assert_perception_sweep(
        make("blocks", resolution=resolution, num_blocks=6), seeds=200, steps=10
    )
    assert_perception_sweep(make("blocks", resolution=resolution, num_blocks=3), seeds=20, steps=10)


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_perceive_is_exact_on_touching_entities(resolution: int) -> None:
    env = make("blocks", resolution=resolution, num_blocks=6)
    packed = state_of((0, 1), (0, 0), (1, 0), (1, 1), (0, 2), (1, 2), (2, 1))
    assert_observations_match(env.observe(packed), env.perceive(env.render(packed)))
    corner = state_of((6, 6), (7, 7), (7, 6), (6, 7), (5, 7), (5, 6), (7, 5))
    assert_observations_match(env.observe(corner), env.perceive(env.render(corner)))


def test_gym_wrapper_scores_a_goal() -> None:
    gym_env = gymnasium.make("panbench/Blocks-v0", goal="line", resolution=32)
    frame, info = gym_env.reset(seed=2)
    assert frame.shape == (32, 32, 3) and info["present"].all()
    inner = gym_env.unwrapped.env
    texts = plan(inner, gym_env.unwrapped._state, "line")
    index = {a.text: a.index for a in inner.actions(gym_env.unwrapped._state)}
    for i, text in enumerate(texts):
        _, reward, terminated, _, _ = gym_env.step(index[text])
        assert terminated == (i == len(texts) - 1) and reward == float(terminated)


def test_sensible_actions_are_the_block_pushes_that_move_a_block() -> None:
    env = make("blocks", resolution=48, size=6, num_blocks=4)
    for seed in range(10):
        state = env.reset(seed)
        actions = env.actions(state)
        sensible = env.sensible_actions(env.render(state), actions)
        assert sensible is not None
        assert [a.index for a in sensible] == [
            a.index for a in actions if a.index >= 4 and env.step(state, a).blocks != state.blocks
        ]


@pytest.mark.parametrize("goal", ["cluster", "line"])
def test_expert_descends_the_goal_distance_to_the_goal(goal: str) -> None:
    """The scripted expert (policy evaluation) reads the layout from the frame, lowers the goal
    distance at every step and reaches these goals from every start; once there it stops."""
    env = BlocksEnv(resolution=48, size=6, num_blocks=3)
    for seed in range(20):
        state = env.reset(seed)
        for _ in range(12):
            if env.goal_reached(state, goal):
                break
            before = env.goal_distance(env.observe(state), goal)
            action = env.expert_action(env.perceive(env.render(state)), goal)
            assert action is not None, (seed, goal)
            state = env.step(state, action)
            assert env.goal_distance(env.observe(state), goal) < before
        assert env.goal_reached(state, goal), (seed, goal)
        assert env.expert_action(env.observe(state), goal) is None
    hidden = env.observe(env.reset(0))
    hidden["present"][1] = False
    assert env.expert_action(hidden, "cluster") is None  # a block not seen: no expert move
