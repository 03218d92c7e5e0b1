"""The cross-entropy method over continuous action sequences (CEM-MPC as in DINO-WM, PETS).

Each planning step runs ``iterations`` rounds: ``population`` sequences are drawn from a
per-step Gaussian clipped into the env's box and imagined in one request; the Gaussian is refit
to the ``elites`` best (lowest imagined goal distance, then soonest; ties broken with the
seeded generator). The first vector of the best sequence imagined is executed and the search
restarts at the next step (receding horizon), warm-started from the shifted mean.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from panbench.envs.base import Env
from panbench.errors import ConfigError
from panbench.planning.base import rank
from panbench.planning.continuous import GaussianPlanner, positive_int

__all__ = ["ContinuousCEM"]


class ContinuousCEM(GaussianPlanner):
    """CEM-MPC over action vectors (``cem-continuous``).

    Args:
        elites: E, the candidates each refit uses (E <= population).
        min_std: floor of the refit standard deviation, as a fraction of the half-width.
        smoothing: weight of the old mean and deviation in each refit, in [0, 1).
        **kwargs: see :class:`~panbench.planning.continuous.GaussianPlanner` (env, horizon,
            population, iterations, block, init_std, warm_start).
    """

    name: ClassVar[str] = "cem-continuous"

    def __init__(
        self,
        env: Env | None = None,
        elites: int = 8,
        min_std: float = 0.05,
        smoothing: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(env, **kwargs)
        self.elites = positive_int("elites", elites)
        if self.elites > self.population:
            raise ConfigError(
                f"Expected elites <= population, but got elites={elites}, "
                f"population={self.population}."
            )
        if not isinstance(min_std, (int, float)) or not 0.0 <= min_std <= 1.0:
            raise ConfigError(f"Expected min_std in [0, 1], but got {min_std!r}.")
        if not isinstance(smoothing, (int, float)) or not 0.0 <= smoothing < 1.0:
            raise ConfigError(f"Expected smoothing in [0, 1), but got {smoothing!r}.")
        self.min_std = float(min_std)
        self.smoothing = float(smoothing)

    def update(
        self,
        mean: np.ndarray,
        std: np.ndarray,
        samples: np.ndarray,
        costs: np.ndarray,
        steps: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Refits to the elites (smoothed), the std kept above ``min_std``."""
        elite = samples[rank([costs, steps], rng)[: self.elites]]
        a = self.smoothing
        mean = a * mean + (1 - a) * elite.mean(axis=0)
        std = np.maximum(a * std + (1 - a) * elite.std(axis=0), self.min_std * self._half)
        return mean, std
