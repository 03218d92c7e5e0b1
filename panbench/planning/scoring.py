"""Goal scoring of imagined frames: grounded (perceive, then goal distance) and image-goal.

A scorer maps frames to non-negative goal distances, lower is better. Identical frames always
get identical distances (each distinct frame is scored once), so candidates a model imagines
identically are exactly tied; see :func:`panbench.planning.base.rank`.

* :class:`GroundedScorer`: ``env.goal_distance(env.perceive(frame), goal)``; exact on rendered
  frames, robust on generated ones (perception reports unrecognisable entities as absent).
* :class:`PixelGoalScorer`: mean squared error to a goal image, for models or envs without
  perception.
* :class:`LpipsGoalScorer`: LPIPS distance to a goal image.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from panbench.envs.base import Env, State
from panbench.errors import ConfigError, ContractError

__all__ = [
    "SCORERS",
    "GoalScorer",
    "GroundedScorer",
    "LpipsGoalScorer",
    "PixelGoalScorer",
    "goal_image",
    "make_scorer",
    "sequence_scores",
]

SCORERS: tuple[str, ...] = ("grounded", "pixel", "lpips")


class GoalScorer(ABC):
    """Goal distance of frames; subclasses implement :meth:`_distances` on distinct frames."""

    name: str = "scorer"

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Scores frames.

        Args:
            frames: uint8 [N, H, W, 3].

        Returns:
            float64 [N], non-negative, 0 where the frame shows the goal reached.
        """
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ContractError(
                f"Scorer {self.name!r} expected uint8 frames [N,H,W,3], but got "
                f"{frames.dtype} {tuple(frames.shape)}."
            )
        if len(frames) == 0:
            return np.zeros(0)
        # Score each distinct frame once: cheaper, and identical frames tie exactly.
        slot: dict[bytes, int] = {}
        inverse = np.array([slot.setdefault(f.tobytes(), len(slot)) for f in frames])
        first = np.unique(inverse, return_index=True)[1]
        distinct = self._distances(frames[first])
        return np.asarray(distinct, dtype=np.float64)[inverse]

    @abstractmethod
    def _distances(self, frames: np.ndarray) -> np.ndarray:
        """float [M] goal distances of M distinct uint8 [M, H, W, 3] frames."""


class GroundedScorer(GoalScorer):
    """Perceives each frame with the true env's perception and measures its goal distance.

    Args:
        env: the task's env (its ``perceive`` and ``goal_distance``).
        goal: the env goal name (None for envs with a single unnamed goal).
    """

    name = "grounded"

    def __init__(self, env: Env, goal: str | None) -> None:
        self.env = env
        self.goal = goal
        env.goal_distance(env.observe(env.reset(0)), goal)  # fails now on an unknown goal

    def _distances(self, frames: np.ndarray) -> np.ndarray:
        return np.array(
            [self.env.goal_distance(obs, self.goal) for obs in self.env.perceive_batch(frames)]
        )


def _check_goal_image(image: Any, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ContractError(
            f"Scorer {name!r} expected a uint8 goal image [H,W,3], but got "
            f"{image.dtype} {tuple(image.shape)}."
        )
    return image


class PixelGoalScorer(GoalScorer):
    """Mean squared pixel error to a goal image, with pixels in [0, 1].

    Args:
        image: uint8 [H, W, 3] goal image at the frames' resolution.
        blur: standard deviation in pixels of a Gaussian blur applied to both images first
            (0: none). Unblurred, an object one cell from its goal cell is as far as one across
            the frame; a blur about the size of an object lets the distance fall as it nears.
    """

    name = "pixel"

    def __init__(self, image: np.ndarray, blur: float = 0.0) -> None:
        self.image = _check_goal_image(image, self.name)
        if isinstance(blur, bool) or not isinstance(blur, (int, float)) or blur < 0:
            raise ConfigError(f"Expected blur to be a number >= 0, but got {blur!r}.")
        self.blur = float(blur)
        self._goal = self._prepare(self.image[None])[0]

    def _prepare(self, frames: np.ndarray) -> np.ndarray:
        x = frames.astype(np.float64) / 255.0
        if self.blur > 0:
            from scipy.ndimage import gaussian_filter

            x = gaussian_filter(x, sigma=(0, self.blur, self.blur, 0), mode="nearest")
        return x

    def _distances(self, frames: np.ndarray) -> np.ndarray:
        if frames.shape[1:] != self.image.shape:
            raise ContractError(
                f"Scorer 'pixel' expected frames [N,{','.join(map(str, self.image.shape))}] like "
                f"its goal image, but got {list(frames.shape)}."
            )
        diff = self._prepare(frames) - self._goal[None]
        return (diff * diff).mean(axis=(1, 2, 3))


class LpipsGoalScorer(GoalScorer):
    """LPIPS v0.1 distance to a goal image (see :mod:`panbench.metrics.lpips`).

    Args:
        image: uint8 [H, W, 3] goal image at the frames' resolution.
        net: ``"alex"`` or ``"vgg"``.
        backbone_weights: passed to :func:`panbench.metrics.lpips.lpips` (default: the
            verified weights cache; ``panbench weights pull alexnet`` fetches it).
    """

    name = "lpips"

    def __init__(self, image: np.ndarray, net: str = "alex", backbone_weights: Any = None) -> None:
        self.image = _check_goal_image(image, self.name)
        self.net = net
        self.backbone_weights = backbone_weights

    def _distances(self, frames: np.ndarray) -> np.ndarray:
        import torch

        from panbench.metrics.lpips import lpips

        pred = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        goal = torch.from_numpy(np.ascontiguousarray(self.image)).permute(2, 0, 1).float() / 255.0
        target = goal[None].expand_as(pred).contiguous()
        out = []
        # One frame at a time: a distance must not depend on which candidates share its batch.
        with torch.no_grad():
            for i in range(len(pred)):
                d = lpips(
                    pred[i : i + 1],
                    target[i : i + 1],
                    net=self.net,  # type: ignore[arg-type]
                    backbone_weights=self.backbone_weights,
                    normalize=True,
                )
                out.append(float(d[0]))
        return np.maximum(np.array(out), 0.0)


def goal_image(
    env: Env, state: State, goal: str | None, rng: np.random.Generator, max_steps: int = 256
) -> np.ndarray:
    """Renders a state where ``goal`` holds, reached from ``state`` with the true simulator.

    The image-goal scorers need a picture of success; the env defines goals as predicates, so
    this finds a satisfying state by greedy descent on the true goal distance (ties broken with
    ``rng``) and renders it. Privileged, like the oracle: the harness builds the goal, the model
    under test only ever sees the image.

    Returns:
        uint8 [H, W, 3].

    Raises:
        ConfigError: no satisfying state was found within ``max_steps``.
    """
    placed = env.goal_state(state, goal)
    if placed is not None:
        return env.render(placed)
    for _ in range(max_steps + 1):
        if env.goal_reached(state, goal):
            return env.render(state)
        nexts = [env.step(state, a) for a in env.actions(state)]
        dist = np.array([env.goal_distance(env.observe(s), goal) for s in nexts])
        best = np.flatnonzero(dist == dist.min())
        state = nexts[int(best[int(rng.integers(len(best)))])]
    raise ConfigError(
        f"Found no state where goal {goal!r} of env {env.name!r} holds within {max_steps} "
        "greedy steps; use the grounded scorer for this goal."
    )


def make_scorer(
    kind: str, env: Env, goal: str | None, image: np.ndarray | None = None, **options: Any
) -> GoalScorer:
    """Builds a scorer by name: ``"grounded"``, ``"pixel"`` or ``"lpips"``.

    Args:
        kind: one of :data:`SCORERS`.
        env: the task's env (grounded scoring).
        goal: the env goal name.
        image: the goal image (image-goal scorers).
        **options: ``blur`` for pixels; ``net`` and ``backbone_weights`` for LPIPS.
    """
    if kind == "grounded":
        return GroundedScorer(env, goal)
    if kind in ("pixel", "lpips"):
        if image is None:
            raise ConfigError(f"Scorer {kind!r} needs a goal image, but got none.")
        if kind == "pixel":
            return PixelGoalScorer(image, **options)
        return LpipsGoalScorer(image, **options)
    from panbench.registry import did_you_mean

    raise ConfigError(
        f"Unknown goal scorer {kind!r}.{did_you_mean(kind, list(SCORERS))} "
        f"Expected one of: {', '.join(SCORERS)}."
    )


def sequence_scores(scorer: GoalScorer, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores imagined rollouts by the closest they come to the goal, and how soon.

    Args:
        scorer: goal distance of frames.
        frames: uint8 [N, L, H, W, 3], imagined frames after each of L actions.

    Returns:
        ``(best, first)``: float64 [N] smallest distance along each rollout, and int64 [N] the
        0-based step where it is first reached (rank by ``best``, then ``first``).
    """
    n, length = frames.shape[:2]
    dist = scorer(frames.reshape(n * length, *frames.shape[2:])).reshape(n, length)
    best = dist.min(axis=1)
    first = np.argmax(dist == best[:, None], axis=1)
    return best, first.astype(np.int64)
