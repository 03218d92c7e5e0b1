"""What the planners over continuous action vectors share: Gaussian sampling in the env's box.

A continuous planner searches sequences of ``horizon`` vectors of the env's ``action_space``
(:class:`~panbench.envs.base.VectorSpace`), each held for ``block`` consecutive steps (action
blocks, as DINO-WM's frame skip), so the model imagines ``horizon * block`` steps per candidate.
Samples are drawn from a per-step Gaussian and clipped into the box. With ``warm_start`` the
next step's search starts from this step's mean shifted by one block (receding horizon).

Every candidate of a planning iteration is imagined in one request (``imagination.request``), so
:func:`~panbench.planning.base.plan_batch` imagines every candidate of every episode of a batch
with one model call per imagined step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from panbench.envs.base import NO_INDEX, Action, Env, VectorSpace
from panbench.errors import ConfigError
from panbench.planning.base import Imagination, Planner, Search, Situation, pick_best, positive_int
from panbench.planning.scoring import GoalScorer, sequence_scores

__all__ = ["GaussianPlanner", "VectorPlanner", "positive_int"]


def _fraction(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(f"Expected {name} in [{lo:g}, {hi:g}], but got {value!r}.")
    return float(value)


class VectorPlanner(Planner):
    """Base of the planners over action vectors: the env's box, sequences of held vectors.

    Args:
        env: the task's env; its ``action_space`` bounds the vectors.
        horizon: H, vectors per candidate sequence.
        block: steps each vector is held (the imagined length is ``horizon * block``).
        warm_start: start from the previous step's plan shifted by one block.

    Raises:
        ConfigError: the env has no continuous action space, or an option is out of range.
    """

    def __init__(
        self, env: Env | None = None, horizon: int = 5, block: int = 1, warm_start: bool = True
    ) -> None:
        space = getattr(env, "action_space", None)
        if not isinstance(space, VectorSpace) or env is None:
            name = getattr(env, "name", env)
            raise ConfigError(
                f"Planner {self.name!r} searches continuous action vectors, but env {name!r} "
                "has no continuous action space; use 'cem', 'beam' or "
                "'propose-simulate-select' there."
            )
        self.env: Env = env
        self.space: VectorSpace = space
        self.horizon = positive_int("horizon", horizon)
        self.block = positive_int("block", block)
        self.warm_start = bool(warm_start)
        self._low = np.asarray(space.low)
        self._high = np.asarray(space.high)
        self._half = (self._high - self._low) / 2.0
        self._mean: np.ndarray | None = None

    def reset(self) -> None:
        self._mean = None

    def initial_mean(self) -> np.ndarray:
        """float [H, D]: the box centre, or the previous mean shifted by one block."""
        centre = np.broadcast_to(self.space.center, (self.horizon, self.space.dim)).copy()
        if not self.warm_start or self._mean is None:
            return centre
        return np.concatenate([self._mean[1:], centre[:1]])

    def to_action(self, vector: np.ndarray) -> Action:
        """The index-less action carrying ``vector`` (its text from the env when it has one)."""
        try:
            text = self.env.vector_action(None, vector).text
        except Exception:  # an env whose text needs a state: the vector alone
            text = ""
        return Action(index=NO_INDEX, text=text, vector=tuple(float(v) for v in vector))

    def to_sequences(self, samples: np.ndarray) -> list[list[Action]]:
        """Candidates [N, H, D] as N action sequences of length H * block."""
        cache: dict[bytes, Action] = {}
        out = []
        for row in samples:
            seq = []
            for v in row:
                key = v.tobytes()
                if key not in cache:
                    cache[key] = self.to_action(v)
                seq.extend([cache[key]] * self.block)
            out.append(seq)
        return out

    def random_action(self, situation: Situation, rng: np.random.Generator) -> Action:
        """A uniform vector of the box: what this planner does when its model ignores actions."""
        return self.to_action(self.space.sample(rng))


class GaussianPlanner(VectorPlanner):
    """Base of the Gaussian-sampling planners (``cem-continuous``, ``mppi``).

    Args:
        env: the task's env; its ``action_space`` bounds the vectors.
        horizon: H, vectors per candidate sequence.
        population: N, candidates imagined per iteration.
        iterations: sampling rounds per planning step.
        block: steps each vector is held (the imagined length is ``horizon * block``).
        init_std: the first round's standard deviation, as a fraction of the box's half-width.
        warm_start: start from the previous step's mean shifted by one block.
        cost: ``"final"`` (the goal distance of the last imagined frame, as DINO-WM) or
            ``"min"`` (the smallest along the sequence, then how soon, as the discrete planners).
        keep_best: put the previous step's chosen sequence, shifted by the one step executed
            (its last vector repeated), into the first round in place of the last sample (as
            iCEM's shifted elites): with a faithful model the plan being followed stays a
            candidate, so a receding-horizon step cannot lose what the last search found. With
            ``block`` > 1 the shift is by one block (one step is not a whole vector).

    Raises:
        ConfigError: the env has no continuous action space, or an option is out of range.
    """

    def __init__(
        self,
        env: Env | None = None,
        horizon: int = 5,
        population: int = 64,
        iterations: int = 3,
        block: int = 1,
        init_std: float = 0.5,
        warm_start: bool = True,
        cost: str = "final",
        keep_best: bool = False,
    ) -> None:
        super().__init__(env, horizon=horizon, block=block, warm_start=warm_start)
        if not isinstance(keep_best, bool):
            raise ConfigError(f"Expected keep_best to be true or false, but got {keep_best!r}.")
        self.keep_best = keep_best
        self._best: np.ndarray | None = None
        self.population = positive_int("population", population)
        self.iterations = positive_int("iterations", iterations)
        self.init_std = _fraction("init_std", init_std, 1e-3, 10.0)
        if cost not in ("final", "min"):
            raise ConfigError(f"Expected cost to be 'final' or 'min', but got {cost!r}.")
        self.cost = cost

    def reset(self) -> None:
        super().reset()
        self._best = None

    def sample(self, mean: np.ndarray, std: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """float [N, H, D] candidates: mean + std * noise, clipped into the box."""
        noise = rng.standard_normal((self.population, self.horizon, self.space.dim))
        return np.clip(mean[None] + std[None] * noise, self._low, self._high)

    def score(self, scorer: GoalScorer, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(cost, step)`` float [N] and int [N] of imagined rollouts uint8 [N, L, H, W, 3]
        under the ``cost`` option; candidates rank by cost, then step."""
        if self.cost == "min":
            return sequence_scores(scorer, frames)
        n, length = frames.shape[:2]
        return scorer(np.ascontiguousarray(frames[:, -1])), np.full(n, length - 1, np.int64)

    def update(
        self,
        mean: np.ndarray,
        std: np.ndarray,
        samples: np.ndarray,
        costs: np.ndarray,
        steps: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The next round's (mean, std) [H, D] from this round's samples [N, H, D] and their
        ``(cost, step)`` scores; each planner's own rule."""
        raise NotImplementedError

    def search(
        self,
        situation: Situation,
        imagination: Imagination,
        scorer: GoalScorer,
        rng: np.random.Generator,
    ) -> Search:
        mean = self.initial_mean()
        std = np.broadcast_to(self.init_std * self._half, mean.shape).copy()
        seen, seen_costs, seen_steps = [], [], []
        for round_ in range(self.iterations):
            samples = self.sample(mean, std, rng)
            if round_ == 0 and self.keep_best and self._best is not None:
                samples[-1] = np.concatenate([self._best[1:], self._best[-1:]])
            frames = yield from imagination.request(self.to_sequences(samples))
            costs, steps = self.score(scorer, frames)
            mean, std = self.update(mean, std, samples, costs, steps, rng)
            seen.append(samples)
            seen_costs.append(costs)
            seen_steps.append(steps)
        self._mean = mean
        candidates = np.concatenate(seen)
        i, cost, ties = pick_best(seen_costs, seen_steps, rng)
        self._best = candidates[i]
        return self.to_sequences(candidates[i : i + 1])[0], cost, len(candidates), ties
