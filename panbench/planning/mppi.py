"""Model-predictive path integral control (MPPI) over continuous action sequences.

Each planning step runs ``iterations`` rounds: ``population`` sequences are drawn around the
current mean (fixed per-step deviation, clipped into the env's box) and imagined in one
request; the mean moves to their average weighted by ``exp(-(cost - min cost) / temperature)``.
The best imagined sequence is executed (its first vector) and the search restarts at the next
step, warm-started from the shifted mean.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from panbench.envs.base import Env
from panbench.errors import ConfigError
from panbench.planning.base import Imagination, Search, Situation, n_tied, rank
from panbench.planning.continuous import GaussianPlanner
from panbench.planning.scoring import GoalScorer

__all__ = ["MPPI"]


class MPPI(GaussianPlanner):
    """MPPI over action vectors (``mppi``).

    Args:
        temperature: lambda, in units of the goal distance (pixels for grounded scoring);
            smaller follows the best candidates more greedily.
        **kwargs: see :class:`~panbench.planning.continuous.GaussianPlanner`.
    """

    name: ClassVar[str] = "mppi"

    def __init__(self, env: Env | None = None, temperature: float = 1.0, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not (temperature > 0)
        ):
            raise ConfigError(f"Expected temperature > 0, but got {temperature!r}.")
        self.temperature = float(temperature)

    def search(
        self,
        situation: Situation,
        imagination: Imagination,
        scorer: GoalScorer,
        rng: np.random.Generator,
    ) -> Search:
        mean = self.initial_mean()
        std = np.broadcast_to(self.init_std * self._half, mean.shape)
        seen, seen_best, seen_first = [], [], []
        for _ in range(self.iterations):
            samples = self.sample(mean, std, rng)
            frames = yield from imagination.request(self.to_sequences(samples))
            best, first = self.score(scorer, frames)
            weights = np.exp(-(best - best.min()) / self.temperature)
            mean = np.tensordot(weights / weights.sum(), samples, axes=1)
            seen.append(samples)
            seen_best.append(best)
            seen_first.append(first)
        self._mean = mean
        candidates = np.concatenate(seen)
        keys = [np.concatenate(seen_best), np.concatenate(seen_first)]
        order = rank(keys, rng)
        i = int(order[0])
        sequence = self.to_sequences(candidates[i : i + 1])[0]
        return sequence, float(keys[0][i]), len(candidates), n_tied(keys, order)
