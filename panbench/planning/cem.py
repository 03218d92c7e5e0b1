"""Model-predictive control with the cross-entropy method over discrete action sequences.

As in DINO-WM and V-JEPA 2-AC, but over the envs' discrete actions: a categorical distribution
per horizon step, ``iterations`` rounds of sampling ``population`` sequences, imagining them,
and refitting the distribution to the ``elites`` best; the first action of the best sequence
seen is executed and the search restarts at the next step (receding horizon).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from panbench.errors import ConfigError
from panbench.planning.base import (
    Imagination,
    Planner,
    Search,
    Situation,
    pick_best,
    positive_int,
    rank,
)
from panbench.planning.scoring import GoalScorer, sequence_scores

__all__ = ["CrossEntropyMethod"]


class CrossEntropyMethod(Planner):
    """CEM-MPC with categorical sampling distributions.

    Args:
        env: unused (the action set comes from the situation); accepted for a uniform builder.
        horizon: H, actions per imagined sequence.
        population: N, sequences imagined per iteration.
        elites: E, the best sequences each refit uses (E <= N).
        iterations: refits per step.
        smoothing: weight of the old distribution in each refit, in [0, 1).
        warm_start: start each step from the previous step's distribution shifted by one
            (off by default: it makes consecutive actions of an action-blind model correlated,
            so its planning would no longer be plain random acting).

    The score of a sequence is the smallest goal distance along its imagined frames, then how
    soon it gets there; elites and the final choice break ties at random.
    """

    name: ClassVar[str] = "cem"

    def __init__(
        self,
        env: Any = None,
        horizon: int = 4,
        population: int = 32,
        elites: int = 4,
        iterations: int = 3,
        smoothing: float = 0.1,
        warm_start: bool = False,
    ) -> None:
        self.horizon = positive_int("horizon", horizon)
        self.population = positive_int("population", population)
        self.elites = positive_int("elites", elites)
        self.iterations = positive_int("iterations", iterations)
        if self.elites > self.population:
            raise ConfigError(
                f"Expected elites <= population, but got elites={elites}, population={population}."
            )
        if not isinstance(smoothing, (int, float)) or not 0.0 <= smoothing < 1.0:
            raise ConfigError(f"Expected smoothing in [0, 1), but got {smoothing!r}.")
        self.smoothing = float(smoothing)
        self.warm_start = bool(warm_start)
        self._probs: np.ndarray | None = None

    def reset(self) -> None:
        self._probs = None

    def _initial(self, n_actions: int) -> np.ndarray:
        uniform = np.full((self.horizon, n_actions), 1.0 / n_actions)
        if not self.warm_start or self._probs is None or self._probs.shape != uniform.shape:
            return uniform
        return np.concatenate([self._probs[1:], uniform[:1]])

    def search(
        self,
        situation: Situation,
        imagination: Imagination,
        scorer: GoalScorer,
        rng: np.random.Generator,
    ) -> Search:
        actions = situation.actions
        probs = self._initial(len(actions))
        seen: list[np.ndarray] = []
        seen_best: list[np.ndarray] = []
        seen_first: list[np.ndarray] = []
        for _ in range(self.iterations):
            # Inverse-CDF sampling: one uniform per (sequence, step), independent across steps.
            u = rng.random((self.population, self.horizon))
            cdf = np.cumsum(probs, axis=1)
            idx = np.minimum((u[..., None] > cdf[None]).sum(-1), len(actions) - 1)
            frames = yield from imagination.request([[actions[int(j)] for j in row] for row in idx])
            best, first = sequence_scores(scorer, frames)
            elite = idx[rank([best, first], rng)[: self.elites]]
            counts = np.zeros_like(probs)
            np.add.at(counts, (np.arange(self.horizon)[None, :], elite), 1.0)
            probs = self.smoothing * probs + (1.0 - self.smoothing) * counts / len(elite)
            seen.append(idx)
            seen_best.append(best)
            seen_first.append(first)
        self._probs = probs
        all_idx = np.concatenate(seen)
        i, cost, ties = pick_best(seen_best, seen_first, rng)
        return [actions[int(j)] for j in all_idx[i]], cost, len(all_idx), ties
