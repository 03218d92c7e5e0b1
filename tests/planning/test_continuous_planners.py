"""Planners over continuous action vectors: cem-continuous and mppi."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from panbench.envs import make as make_env
from panbench.envs.base import Action
from panbench.errors import ConfigError
from panbench.models.baselines import CopyLastModel, OracleModel
from panbench.planning import Goal, GoalScorer, Imagination, Situation, make_planner
from panbench.planning.cem_continuous import ContinuousCEM
from panbench.planning.mppi import MPPI
from tests.planning.test_closed_loop import NAV, _protocol, _records, _task

TARGET = np.array([0.6, -0.3])


class _VectorScorer(GoalScorer):
    """Decodes the vector a toy frame encodes and scores its distance to TARGET."""

    name = "toy"

    def _distances(self, frames: np.ndarray) -> np.ndarray:
        vectors = frames[:, 0, 0, :2].astype(np.float64) / 255.0 * 2.0 - 1.0
        return np.linalg.norm(vectors - TARGET, axis=1)


def _encode(sequences: list[list[Action]]) -> np.ndarray:
    """Toy imagination: the frame after each action encodes that action's vector."""
    v = np.array([[a.vector for a in seq] for seq in sequences])
    frames = np.zeros((*v.shape[:2], 1, 1, 3), dtype=np.uint8)
    frames[..., 0, 0, :2] = np.rint((v + 1.0) / 2.0 * 255.0)
    return frames


def _plan(planner: Any, seed: int) -> tuple[np.ndarray, int]:
    """Drives a planner's search by hand on the toy imagination; (first vector, candidates)."""
    imagination = Imagination(runner=None, episode=None)  # type: ignore[arg-type]
    blank = np.zeros((1, 1, 3), np.uint8)
    situation = Situation(blank, (), Goal(None, "toy"), 0, 1)
    search = planner.search(situation, imagination, _VectorScorer(), np.random.default_rng(seed))
    request = next(search)
    while True:
        try:
            request = search.send(_encode(request.sequences))
        except StopIteration as done:
            sequence, _, candidates, _ = done.value
            return np.asarray(sequence[0].vector), candidates


class _Box:
    """An env stand-in with only an action space (what the planners read)."""

    name = "box"

    def __init__(self) -> None:
        from panbench.envs.base import VectorSpace

        self.action_space = VectorSpace((-1.0, -1.0), (1.0, 1.0))

    def vector_action(self, state: Any, vector: Any) -> Action:
        return Action(-1, "push", vector=tuple(vector))


def test_cem_beats_random_shooting_at_equal_compute() -> None:
    """CEM (3 rounds of 32) against one round of 96 random candidates, on a toy cost."""
    box = _Box()
    cem_err, shoot_err = [], []
    for seed in range(12):
        cem = ContinuousCEM(box, horizon=1, population=32, elites=6, iterations=3)
        shoot = ContinuousCEM(box, horizon=1, population=96, elites=6, iterations=1, init_std=2)
        first, n = _plan(cem, seed)
        cem_err.append(np.linalg.norm(first - TARGET))
        first_s, n_s = _plan(shoot, seed)
        shoot_err.append(np.linalg.norm(first_s - TARGET))
        assert n == n_s == 96  # the same number of imagined candidates
    assert np.mean(cem_err) < 0.5 * np.mean(shoot_err), (np.mean(cem_err), np.mean(shoot_err))
    assert max(cem_err) < 0.15


def test_mppi_converges_on_the_toy_cost() -> None:
    errs = [
        np.linalg.norm(
            _plan(MPPI(_Box(), horizon=1, population=48, iterations=4, temperature=0.02), seed)[0]
            - TARGET
        )
        for seed in range(6)
    ]
    assert np.mean(errs) < 0.15, errs


def test_candidates_are_in_the_box_and_held_for_a_block() -> None:
    cem = ContinuousCEM(
        _Box(), horizon=2, population=8, elites=2, iterations=1, block=3, init_std=5.0
    )
    imagination = Imagination(runner=None, episode=None)  # type: ignore[arg-type]
    situation = Situation(np.zeros((1, 1, 3), np.uint8), (), Goal(None, "toy"), 0, 1)
    search = cem.search(situation, imagination, _VectorScorer(), np.random.default_rng(0))
    request = next(search)
    assert len(request.sequences) == 8
    for seq in request.sequences:
        assert len(seq) == 6 and seq[0] is seq[1] is seq[2] and seq[3] is seq[5]
        assert (np.abs(np.array([a.vector for a in seq])) <= 1.0).all()


def test_continuous_planners_need_an_action_space() -> None:
    with pytest.raises(ConfigError, match="has no continuous action space"):
        make_planner("cem-continuous", make_env("shapes", resolution=32))
    with pytest.raises(ConfigError, match="elites <= population"):
        ContinuousCEM(_Box(), population=4, elites=5)
    with pytest.raises(ConfigError, match="temperature > 0"):
        MPPI(_Box(), temperature=0)


CEM_NAV = NAV.replace(
    "options: {planner: propose-simulate-select, planner_options: {proposer: random, candidates: 4},",
    "options: {planner: cem-continuous, planner_options: {horizon: 3, population: 16, elites: 4,"
    " iterations: 2},",
)


def test_cem_continuous_plans_in_the_maze_through_its_vector_form(tmp_path: Path) -> None:
    protocol = _protocol(_task(tmp_path, CEM_NAV))
    assert protocol.planner_name == "cem-continuous"
    oracle = _records(protocol, OracleModel(), 4)
    assert np.mean([r["metrics"]["success"] for r in oracle]) >= 0.75
    for rec in oracle:  # executed actions are recorded by their vectors
        for action in rec["actions"][0]:
            assert isinstance(action, list) and len(action) == 2
    blind = _records(protocol, CopyLastModel(), 4)
    assert all(r["metrics"]["tie_rate"] == 1.0 for r in blind)


def test_mppi_plans_in_the_maze_through_its_vector_form(tmp_path: Path) -> None:
    text = CEM_NAV.replace(
        "planner: cem-continuous, planner_options: {horizon: 3, population: 16, elites: 4,",
        "planner: mppi, planner_options: {horizon: 3, population: 16, temperature: 0.5,",
    )
    assert "planner: mppi" in text
    protocol = _protocol(_task(tmp_path, text))
    assert protocol.planner_name == "mppi"
    oracle = _records(protocol, OracleModel(), 4)
    assert np.mean([r["metrics"]["success"] for r in oracle]) >= 0.75


def _first_request(planner: Any, seed: int) -> np.ndarray:
    """The vectors [N, L, D] of a search's first round (the search left unfinished)."""
    imagination = Imagination(runner=None, episode=None)  # type: ignore[arg-type]
    situation = Situation(np.zeros((1, 1, 3), np.uint8), (), Goal(None, "toy"), 0, 1)
    search = planner.search(situation, imagination, _VectorScorer(), np.random.default_rng(seed))
    return np.array([[a.vector for a in seq] for seq in next(search).sequences])


def test_keep_best_offers_the_followed_plan_shifted_by_the_executed_step() -> None:
    def cem(keep: bool) -> ContinuousCEM:
        return ContinuousCEM(
            _Box(), horizon=4, population=8, elites=2, iterations=2, keep_best=keep
        )

    kept, plain = cem(True), cem(False)
    for planner in (kept, plain):
        _plan(planner, 0)
    best = kept._best
    assert best is not None and best.shape == (4, 2)
    first_kept, first_plain = _first_request(kept, 1), _first_request(plain, 1)
    # the last sample is replaced by the previous choice minus its executed first vector, its
    # last vector repeated; every other sample (and the seeded stream) is what it was
    np.testing.assert_array_equal(first_kept[-1], np.concatenate([best[1:], best[-1:]]))
    np.testing.assert_array_equal(first_kept[:-1], first_plain[:-1])
    assert not np.array_equal(first_kept[-1], first_plain[-1])
    kept.reset()  # a new episode forgets the plan
    np.testing.assert_array_equal(_first_request(kept, 1), _first_request(cem(False), 1))
    with pytest.raises(ConfigError, match="keep_best"):
        ContinuousCEM(_Box(), keep_best="yes")  # type: ignore[arg-type]
