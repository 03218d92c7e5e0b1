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
from panbench.planning.continuous import GaussianPlanner

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

    def update(
        self,
        mean: np.ndarray,
        std: np.ndarray,
        samples: np.ndarray,
        costs: np.ndarray,
        steps: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The mean becomes the samples' average weighted by exp(-cost / temperature)."""
        weights = np.exp(-(costs - costs.min()) / self.temperature)
        return np.tensordot(weights / weights.sum(), samples, axes=1), std
