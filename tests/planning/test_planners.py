"""Planners, proposers, scorers and tie-breaking on tiny mazes and tables, imagined with the oracle."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from panbench.data.episodes import make_episode
from panbench.envs import make as make_env
from panbench.envs.base import Action, Env
from panbench.envs.maze import MazeEnv
from panbench.errors import ConfigError, ContractError, UnknownNameError
from panbench.models.api import WorldModel
from panbench.models.baselines import CopyLastModel, OracleModel
from panbench.planning import (
    PLANNERS,
    PROPOSERS,
    Goal,
    GroundedScorer,
    Imagination,
    LpipsGoalScorer,
    PixelGoalScorer,
    Planner,
    Situation,
    goal_image,
    make_planner,
    make_proposer,
    make_scorer,
    n_tied,
    rank,
    sequence_scores,
)
from panbench.planning.beam import BeamSearch
from panbench.planning.cem import CrossEntropyMethod
from panbench.planning.pss import ProposeSimulateSelect
from panbench.protocols.base import ModelRunner
from panbench.protocols.closed_loop import step_episode


# ============================================================================ helpers
def _maze(size: int = 6) -> MazeEnv:
    env = make_env("maze", resolution=8 * size, size=size)
    assert isinstance(env, MazeEnv)
    return env


def _true_distance(env: Env, state: Any, goal: str | None) -> float:
    return float(env.goal_distance(env.observe(state), goal))


def _bfs_length(env: Any, state: Any) -> int:
    """Shortest path length by the env's own path finder (independent of goal_distance)."""
    return len(env.shortest_path(state))


def _setup(env: Env, state: Any, model: WorldModel | None = None, seed: int = 0) -> Imagination:
    episode = make_episode(env, "t", 0, 0, context=1, horizon=1, policy="random")
    runner = ModelRunner(model or OracleModel(), env, env.resolution)
    frames = [env.render(state)]
    return Imagination(runner, step_episode(episode, frames, [], state, 0, context=1))


def _situation(env: Env, state: Any, goal: str | None, step: int = 0) -> Situation:
    return Situation(
        frame=env.render(state),
        actions=tuple(env.actions(state)),
        goal=Goal(goal, str(goal)),
        step=step,
        steps_left=32,
    )


def _drive(
    env: Env,
    planner: Planner,
    state: Any,
    goal: str | None,
    budget: int,
    seed: int = 0,
    model: WorldModel | None = None,
) -> tuple[Any, int]:
    """Closed loop by hand: plan with the model, execute in the true env."""
    planner.reset()
    scorer = GroundedScorer(env, goal)
    for t in range(budget):
        if env.goal_reached(state, goal):
            return state, t
        plan = planner.plan(
            _situation(env, state, goal, t),
            _setup(env, state, model),
            scorer,
            np.random.default_rng([seed, t]),
        )
        state = env.step(state, plan.action)
    return state, budget


# ============================================================================ ties
def test_rank_orders_by_keys_and_breaks_ties_uniformly() -> None:
    primary = np.array([3.0, 1.0, 1.0, 2.0, 1.0])
    secondary = np.array([0.0, 5.0, 0.0, 0.0, 0.0])
    counts: Counter[int] = Counter()
    for seed in range(3000):
        order = rank([primary, secondary], np.random.default_rng(seed))
        assert sorted(order.tolist()) == list(range(5))
        # The best two tie on both keys; index 1 loses on the secondary key.
        assert set(order[:2].tolist()) == {2, 4}
        assert order[2] == 1 and order[3] == 3 and order[4] == 0
        assert n_tied([primary, secondary], order) == 2
        counts[int(order[0])] += 1
    # Uniform among the tied: 1500 +- 5 sigma (sigma ~ 27).
    assert abs(counts[2] - 1500) < 140 and abs(counts[4] - 1500) < 140


def test_rank_is_repeatable_and_rejects_bad_keys() -> None:
    keys = [np.zeros(6)]
    a = rank(keys, np.random.default_rng(7))
    b = rank(keys, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert n_tied(keys, a) == 6
    with pytest.raises(ConfigError, match="one length"):
        rank([np.zeros(3), np.zeros(4)], np.random.default_rng(0))
    with pytest.raises(ConfigError, match="at least one key"):
        rank([], np.random.default_rng(0))


# ============================================================================ imagination
def test_imagination_branches_from_the_true_observation() -> None:
    env = _maze()
    state = env.reset(3)
    imagination = _setup(env, state)
    actions = env.actions(state)
    seqs = [[actions[0], actions[1]], [actions[2], actions[2]], [actions[3], actions[0]]]
    frames = imagination.rollout(seqs)
    assert frames.shape == (3, 2, env.resolution, env.resolution, 3) and frames.dtype == np.uint8
    for seq, imagined in zip(seqs, frames, strict=True):
        s = state
        for j, action in enumerate(seq):
            s = env.step(s, action)
            np.testing.assert_array_equal(imagined[j], env.render(s))
    # A second rollout of the same batch size branches from the same root again (no leak).
    again = imagination.rollout(seqs)
    np.testing.assert_array_equal(again, frames)
    # One reset per batch size, then only steps: 1 reset + 2 steps, then 2 more steps.
    assert imagination.compute.wm_calls == 5
    assert imagination.compute.frames == 3 * 2 * 2
    assert imagination.compute.sequences == 6
    imagination.rollout([[actions[0]]])
    assert imagination.compute.wm_calls == 7  # a new batch size costs a new reset


def test_imagination_rejects_ragged_or_empty_sequences() -> None:
    env = _maze()
    state = env.reset(0)
    imagination = _setup(env, state)
    a = env.actions(state)
    bad_batches: list[list[list[Action]]] = [[], [[]], [[a[0]], [a[0], a[1]]]]
    for bad in bad_batches:
        with pytest.raises(ConfigError, match="one length"):
            imagination.rollout(bad)


def test_imagination_checks_the_model_contract() -> None:
    class Broken(CopyLastModel):
        def step(self, state: Any, actions: Any) -> tuple[Any, np.ndarray]:
            return state, state[:, :, :8]  # wrong height

    env = _maze()
    state = env.reset(0)
    with pytest.raises(ContractError, match=r"copy-last.*imagined step 0"):
        _setup(env, state, Broken()).rollout([[env.actions(state)[0]]])


# ============================================================================ scoring
def test_grounded_scorer_matches_the_true_shortest_path() -> None:
    env = _maze(8)
    states = [env.reset(seed) for seed in range(12)]
    scorer = GroundedScorer(env, None)
    dist = scorer(env.render_batch(states))
    assert dist.dtype == np.float64
    np.testing.assert_array_equal(dist, [_bfs_length(env, s) for s in states])


def test_grounded_scorer_on_blocks_is_zero_exactly_at_the_goal() -> None:
    env = make_env("blocks", resolution=48, size=6, num_blocks=3)
    for goal in env.goals():
        state = env.reset(1)
        reached = goal_image(env, state, goal, np.random.default_rng(0))
        d = GroundedScorer(env, goal)(np.stack([env.render(state), reached]))
        assert d[0] > 0 and d[1] == 0.0, goal


def test_scorer_scores_identical_frames_identically_and_once() -> None:
    calls: list[int] = []

    class Counting(PixelGoalScorer):
        def _distances(self, frames: np.ndarray) -> np.ndarray:
            calls.append(len(frames))
            return super()._distances(frames)

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, size=(2, 16, 16, 3), dtype=np.uint8)
    scorer = Counting(a)
    d = scorer(np.stack([b, a, b, b, a]))
    assert calls == [2]
    assert d[0] == d[2] == d[3] and d[1] == d[4] == 0.0


def test_pixel_scorer_is_mean_squared_error_in_unit_range() -> None:
    rng = np.random.default_rng(1)
    goal = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    frames = rng.integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    expected = [
        sum(
            (int(f[i, j, c]) - int(goal[i, j, c])) ** 2
            for i in range(8)
            for j in range(8)
            for c in range(3)
        )
        / (8 * 8 * 3 * 255**2)
        for f in frames
    ]
    np.testing.assert_allclose(PixelGoalScorer(goal)(frames), expected, rtol=1e-12)
    with pytest.raises(ContractError, match="like its goal image"):
        PixelGoalScorer(goal)(np.zeros((1, 4, 4, 3), np.uint8))
    with pytest.raises(ContractError, match="uint8 goal image"):
        PixelGoalScorer(goal.astype(np.float32))


def test_blurred_pixel_distance_falls_as_an_object_nears_its_goal() -> None:
    env = _maze(8)
    state = env.reset(0)
    free = [tuple(int(v) for v in rc) for rc in np.argwhere(~state.wall_grid)]
    row = max({r for r, _ in free}, key=lambda r: sum(1 for rr, _ in free if rr == r))
    cols = sorted(c for r, c in free if r == row)
    run = [cols[0]]
    for c in cols[1:]:  # the first run of 3+ consecutive floor tiles in that row
        run = [*run, c] if c == run[-1] + 1 else [c]
        if len(run) >= 3:
            break
    assert len(run) >= 3
    goal = replace(state, agent=(row, run[0]), goal=(row, run[0]))
    frames = np.stack([env.render(replace(goal, agent=(row, c))) for c in run[:3]])
    blurred = PixelGoalScorer(env.render(goal), blur=4.0)(frames)
    sharp = PixelGoalScorer(env.render(goal))(frames)
    assert blurred[0] == sharp[0] == 0.0
    assert 0 < blurred[1] < blurred[2]  # nearer is closer once blurred
    assert sharp[1] == sharp[2] > 0  # unblurred, one tile away is as far as two


def test_lpips_scorer_agrees_with_the_lpips_metric() -> None:
    import torch

    from panbench.metrics._nets import random_torchvision_state_dict
    from panbench.metrics.lpips import lpips

    weights = random_torchvision_state_dict("alex", seed=0)
    rng = np.random.default_rng(2)
    goal = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    frames = np.stack([goal, rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)])
    d = LpipsGoalScorer(goal, net="alex", backbone_weights=weights)(frames)
    t = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    g = torch.from_numpy(goal).permute(2, 0, 1).float()[None].expand_as(t) / 255.0
    ref = lpips(t, g.contiguous(), backbone_weights=weights, normalize=True).double().numpy()
    assert d[0] == 0.0 and d[1] > 0
    np.testing.assert_allclose(d, np.maximum(ref, 0), rtol=1e-5, atol=1e-7)


def test_make_scorer_names_what_it_needs() -> None:
    env = _maze()
    assert isinstance(make_scorer("grounded", env, None), GroundedScorer)
    with pytest.raises(ConfigError, match="needs a goal image"):
        make_scorer("pixel", env, None)
    with pytest.raises(ConfigError, match=r"Unknown goal scorer 'pixels'.*Did you mean: pixel"):
        make_scorer("pixels", env, None)
    with pytest.raises(UnknownNameError, match="Unknown goal"):
        GroundedScorer(env, "reach-the-moon")


def test_sequence_scores_take_the_closest_approach_and_its_first_step() -> None:
    class Table(PixelGoalScorer):
        """Distance = the frame's first pixel value."""

        def _distances(self, frames: np.ndarray) -> np.ndarray:
            return frames[:, 0, 0, 0].astype(np.float64)

    values = np.array([[5, 3, 3, 4], [2, 2, 9, 1], [7, 7, 7, 7]], dtype=np.uint8)
    frames = np.zeros((3, 4, 2, 2, 3), np.uint8)
    frames[..., 0, 0, 0] = values
    best, first = sequence_scores(Table(np.zeros((2, 2, 3), np.uint8)), frames)
    np.testing.assert_array_equal(best, [3, 1, 7])
    np.testing.assert_array_equal(first, [1, 3, 0])


def test_goal_image_shows_the_goal_reached() -> None:
    env = _maze()
    state = env.reset(5)
    image = goal_image(env, state, None, np.random.default_rng(0))
    obs = env.perceive(image)
    assert (obs["cells"][0] == obs["cells"][1]).all()
    with pytest.raises(ConfigError, match="within 0 greedy steps"):
        goal_image(env, state, None, np.random.default_rng(0), max_steps=0)


# ============================================================================ proposers
def test_random_proposer_draws_distinct_available_actions() -> None:
    env = make_env("blocks", resolution=48, size=6, num_blocks=3)
    state = env.reset(0)
    proposer = make_proposer("random", env)
    situation = _situation(env, state, "line")
    seen: Counter[int] = Counter()
    for seed in range(400):
        picks = proposer.propose(situation, np.random.default_rng(seed), 4)
        assert len(picks) == 4 and len({a.index for a in picks}) == 4
        seen.update(a.index for a in picks)
    assert set(seen) == set(range(env.num_actions))
    all_of_them = proposer.propose(situation, np.random.default_rng(0), 100)
    assert sorted(a.index for a in all_of_them) == list(range(env.num_actions))
    with pytest.raises(ConfigError, match="at least 1 candidate"):
        proposer.propose(situation, np.random.default_rng(0), 0)


def test_maze_heuristic_never_proposes_walking_into_a_wall() -> None:
    env = _maze(8)
    proposer = make_proposer("heuristic", env)
    for seed in range(20):
        state = env.reset(seed)
        picks = proposer.propose(_situation(env, state, None), np.random.default_rng(seed), 4)
        moving = {a.index for a in env.actions(state) if env.step(state, a) != state}
        assert {a.index for a in picks} == moving, seed


def test_blocks_heuristic_proposes_exactly_the_pushes_that_move_a_block() -> None:
    env = make_env("blocks", resolution=48, size=6, num_blocks=3)
    proposer = make_proposer("heuristic", env)
    for seed in range(20):
        state = env.reset(seed)
        picks = proposer.propose(_situation(env, state, "line"), np.random.default_rng(0), 99)
        moving = {
            a.index
            for a in env.actions(state)
            if a.index >= 4 and env.step(state, a).blocks != state.blocks
        }
        assert {a.index for a in picks} == moving, seed


def test_heuristic_falls_back_to_all_actions_without_a_rule() -> None:
    env = make_env("shapes", resolution=32)
    state = env.reset(0)
    picks = make_proposer("heuristic", env).propose(
        _situation(env, state, None), np.random.default_rng(0), 1000
    )
    assert len(picks) == len(env.actions(state))


def test_heuristic_asks_the_env_not_its_name() -> None:
    from panbench.envs.shapes import ShapesEnv

    seen: list[np.ndarray] = []

    class EvenShapes(ShapesEnv):  # a plugin env under another name, with its own heuristic
        name = "even-shapes"

        def sensible_actions(self, frame: np.ndarray, actions: Any) -> list[Action] | None:
            seen.append(frame)
            return [a for a in actions if a.index % 2 == 0]

    env = EvenShapes(resolution=32)
    state = env.reset(0)
    situation = _situation(env, state, None)
    proposer = make_proposer("heuristic", env)
    picks = proposer.propose(situation, np.random.default_rng(0), 1000)
    assert {a.index for a in picks} == {a.index for a in env.actions(state) if a.index % 2 == 0}
    assert len(seen) == 1 and np.array_equal(seen[0], situation.frame)  # pixels, not the state
    proposer.propose(situation, np.random.default_rng(1), 2)
    assert len(seen) == 1  # the same situation is answered from the cache


def test_envs_without_a_heuristic_say_so() -> None:
    for name in ("shapes", "bounce"):
        env = make_env(name, resolution=32)
        state = env.reset(0)
        assert env.sensible_actions(env.render(state), env.actions(state)) is None


def test_proposer_registry_is_pluggable() -> None:
    from panbench.planning.proposers import Proposer

    class First(Proposer):
        name = "first"

        def propose(self, situation: Situation, rng: np.random.Generator, m: int) -> list[Action]:
            return list(situation.actions[:1])

    PROPOSERS.register("first-test", First)
    try:
        env = _maze()
        state = env.reset(0)
        planner = make_planner("propose-simulate-select", env, proposer="first-test")
        plan = planner.plan(
            _situation(env, state, None),
            _setup(env, state),
            GroundedScorer(env, None),
            np.random.default_rng(0),
        )
        assert plan.action == env.actions(state)[0] and plan.candidates == 1
    finally:
        PROPOSERS.unregister("first-test")
    with pytest.raises(UnknownNameError, match=r"Unknown proposer 'randon'.*random"):
        make_proposer("randon", env)


# ============================================================================ planners reach goals
PLANNER_CASES: list[tuple[str, dict[str, Any]]] = [
    ("propose-simulate-select", {"proposer": "random", "candidates": 4}),
    ("propose-simulate-select", {"proposer": "heuristic", "candidates": 4}),
    ("cem", {"horizon": 3, "population": 24, "elites": 4, "iterations": 2}),
    ("beam", {"width": 3, "depth": 2}),
]


@pytest.mark.parametrize(("name", "options"), PLANNER_CASES)
def test_oracle_planners_reach_the_maze_goal(name: str, options: dict[str, Any]) -> None:
    env = _maze(6)
    for seed in range(6):
        start = env.reset(seed)
        planner = make_planner(name, env, **options)
        final, steps = _drive(env, planner, start, None, budget=40, seed=seed)
        assert env.goal_reached(final), (name, seed)
        # A distance-greedy planner with a perfect model walks a shortest path.
        assert steps == _bfs_length(env, start), (name, seed)


@pytest.mark.parametrize(("name", "options"), PLANNER_CASES)
def test_oracle_planners_reach_every_blocks_goal(name: str, options: dict[str, Any]) -> None:
    env = make_env("blocks", resolution=48, size=6, num_blocks=3)
    if name == "propose-simulate-select":
        options = {**options, "candidates": 16}  # every push of the table, or every useful one
    for goal in env.goals():
        start = env.reset(3)
        final, _ = _drive(env, make_planner(name, env, **options), start, goal, budget=40)
        assert env.goal_reached(final, goal), (name, goal)


def test_planners_are_repeatable_under_a_seed() -> None:
    env = make_env("blocks", resolution=48, size=6, num_blocks=3)
    start = env.reset(11)
    for name, options in PLANNER_CASES:
        runs = []
        for _ in range(2):
            planner = make_planner(name, env, **options)
            runs.append(_drive(env, planner, start, "cluster", budget=12, seed=4)[0])
        assert runs[0] == runs[1], name


# ============================================================================ action-blind models act at random
@pytest.mark.parametrize(("name", "options"), PLANNER_CASES)
def test_an_action_blind_model_makes_every_plan_a_uniform_random_choice(
    name: str, options: dict[str, Any]
) -> None:
    env = _maze(6)
    state = env.reset(2)
    planner = make_planner(name, env, **options)
    situation = _situation(env, state, None)
    scorer = GroundedScorer(env, None)
    chosen: Counter[int] = Counter()
    reference: Counter[int] = Counter()
    n = 600
    for seed in range(n):
        plan = planner.plan(
            situation, _setup(env, state, CopyLastModel()), scorer, np.random.default_rng(seed)
        )
        assert plan.tied == plan.candidates or name == "beam", (name, plan)
        chosen[plan.action.index] += 1
        reference[planner.random_action(situation, np.random.default_rng(seed + n)).index] += 1
    # Both follow the same law: uniform over the moves the proposer may offer.
    support = set(reference)
    assert set(chosen) == support
    expected = n / len(support)
    for index in support:
        assert abs(chosen[index] - expected) < 5 * np.sqrt(expected), (name, chosen)
        assert abs(reference[index] - expected) < 5 * np.sqrt(expected), (name, reference)


def test_beam_ties_every_depth_one_node_for_an_action_blind_model() -> None:
    env = _maze(6)
    state = env.reset(2)
    plan = BeamSearch(env, width=2, depth=3).plan(
        _situation(env, state, None),
        _setup(env, state, CopyLastModel()),
        GroundedScorer(env, None),
        np.random.default_rng(0),
    )
    # Shorter wins among equals, so the tie is among the 4 one-action nodes.
    assert plan.tied == 4 and len(plan.sequence) == 1


# ============================================================================ CEM and beam units
def test_cem_refits_toward_the_elites_and_moves_toward_the_goal() -> None:
    env = _maze(8)
    state = next(s for s in (env.reset(i) for i in range(50)) if _bfs_length(env, s) >= 6)
    cem = CrossEntropyMethod(horizon=4, population=32, elites=4, iterations=3, smoothing=0.0)
    plan = cem.plan(
        _situation(env, state, None),
        _setup(env, state),
        GroundedScorer(env, None),
        np.random.default_rng(0),
    )
    assert plan.candidates == 32 * 3 and len(plan.sequence) == 4
    assert plan.compute.wm_calls == 1 + 3 * 4 and plan.compute.frames == 3 * 32 * 4
    # The imagined score is the true closest approach along the sequence (env's own BFS).
    s, approach = state, []
    for action in plan.sequence:
        s = env.step(s, action)
        approach.append(_bfs_length(env, s))
    assert plan.score == min(approach) < _bfs_length(env, state)
    # With no smoothing, the final distribution is the elites' empirical one: mass on few actions.
    assert cem._probs is not None and np.allclose(cem._probs.sum(1), 1.0)
    assert (cem._probs.max(axis=1) >= 0.5).all()


def test_cem_warm_start_shifts_the_distribution_and_reset_forgets_it() -> None:
    env = _maze(6)
    state = env.reset(1)
    cem = CrossEntropyMethod(horizon=3, population=8, elites=2, iterations=1, warm_start=True)
    cem.plan(
        _situation(env, state, None),
        _setup(env, state),
        GroundedScorer(env, None),
        np.random.default_rng(0),
    )
    assert cem._probs is not None
    previous = cem._probs.copy()
    start = cem._initial(4)
    np.testing.assert_allclose(start[:2], previous[1:])
    np.testing.assert_allclose(start[2], 0.25)
    cem.reset()
    np.testing.assert_allclose(cem._initial(4), 0.25)


@pytest.mark.parametrize(
    "kwargs",
    [{"elites": 9, "population": 8}, {"horizon": 0}, {"smoothing": 1.0}, {"iterations": True}],
)
def test_cem_rejects_bad_options(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="Expected"):
        CrossEntropyMethod(**kwargs)


def test_beam_finds_a_shortest_plan_within_its_depth_and_stops_early() -> None:
    env = _maze(8)
    state = env.reset(4)
    for action in env.shortest_path(state)[:-3]:  # walk until 3 moves remain
        state = env.step(state, action)
    length = _bfs_length(env, state)
    assert length == 3
    beam = BeamSearch(env, width=2, depth=5)
    plan = beam.plan(
        _situation(env, state, None),
        _setup(env, state),
        GroundedScorer(env, None),
        np.random.default_rng(0),
    )
    assert plan.score == 0.0 and len(plan.sequence) == length
    s = state
    for action in plan.sequence:
        s = env.step(s, action)
    assert env.goal_reached(s)
    # Levels 1..length were expanded (4, then width*4 per level) and no deeper.
    assert plan.candidates == 4 + 8 * (length - 1)


def test_beam_with_a_proposer_expands_only_its_candidates() -> None:
    env = _maze(8)
    state = env.reset(4)
    beam = BeamSearch(env, width=2, depth=2, proposer="heuristic")
    plan = beam.plan(
        _situation(env, state, None),
        _setup(env, state),
        GroundedScorer(env, None),
        np.random.default_rng(0),
    )
    moving = [a for a in env.actions(state) if env.step(state, a) != state]
    assert plan.action in moving
    assert plan.candidates <= len(moving) + 2 * len(moving)


def test_pss_plan_accounts_for_its_compute() -> None:
    env = _maze(6)
    state = env.reset(0)
    pss = ProposeSimulateSelect(env, proposer="random", candidates=3)
    plan = pss.plan(
        _situation(env, state, None),
        _setup(env, state),
        GroundedScorer(env, None),
        np.random.default_rng(0),
    )
    assert plan.candidates == 3 and plan.compute.wm_calls == 2
    assert plan.compute.frames == 3 and plan.compute.sequences == 3
    assert plan.compute.seconds >= 0.0
    with pytest.raises(ConfigError, match="candidates"):
        ProposeSimulateSelect(env, candidates=0)


def test_planner_registry_names_and_errors() -> None:
    assert PLANNERS.names() == [
        "beam",
        "cem",
        "cem-continuous",
        "gradient",
        "mppi",
        "propose-simulate-select",
    ]
    with pytest.raises(UnknownNameError, match="Did you mean: beam"):
        make_planner("bean", _maze())
    with pytest.raises(ConfigError, match="bad options"):
        make_planner("beam", _maze(), widht=3)
