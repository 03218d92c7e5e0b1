"""The planning contract: goals, situations, imagination through a world model, plans and ties.

A planner sees the true current observation (a :class:`Situation`), asks the world model to
imagine what candidate action sequences would do (an :class:`Imagination`), scores the imagined
frames against the goal (a :class:`~panbench.planning.scoring.GoalScorer`) and returns a
:class:`Plan` whose first action the true environment then executes.

Ties. Candidates whose imagined outcomes score the same are tied, and every choice among tied
candidates is made with the caller's seeded generator (:func:`rank`), uniformly. A model that
ignores the action imagines the same frame for every candidate, so all candidates tie and the
planner acts exactly like its own random-acting reference (:meth:`Planner.random_action`).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from panbench.envs.base import Action
from panbench.errors import ConfigError

if TYPE_CHECKING:
    from panbench.data.episodes import Episode
    from panbench.planning.scoring import GoalScorer
    from panbench.protocols.base import ModelRunner

__all__ = [
    "Compute",
    "Goal",
    "Imagination",
    "Plan",
    "Planner",
    "Situation",
    "n_tied",
    "rank",
]


@dataclass(frozen=True)
class Goal:
    """What the agent should bring about.

    Attributes:
        name: the env's goal name (``env.goals()``), used by grounded scoring; None for envs
            whose only goal needs no name.
        text: the goal in words, for proposers that read language.
        image: uint8 [H, W, 3] goal image at task resolution, for image-goal scoring, else None.
    """

    name: str | None
    text: str
    image: np.ndarray | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Situation:
    """What a planner knows at one step of a closed-loop episode.

    Attributes:
        frame: uint8 [H, W, 3], the true current observation at task resolution.
        actions: the actions available now (the agent's action space).
        goal: the episode's goal.
        step: 0-based index of this step in the episode.
        steps_left: steps still allowed, this one included.
    """

    frame: np.ndarray
    actions: tuple[Action, ...]
    goal: Goal
    step: int
    steps_left: int


@dataclass
class Compute:
    """Compute accounting of planning.

    Attributes:
        wm_calls: world-model calls (``reset`` and ``step``, each a batched call).
        frames: frames the model imagined (batch size x frames per step, summed over calls).
        sequences: candidate action sequences imagined.
        seconds: wall time spent planning (imagination, scoring and search), in seconds.
    """

    wm_calls: int = 0
    frames: int = 0
    sequences: int = 0
    seconds: float = 0.0

    def add(self, other: Compute) -> None:
        """Adds ``other``'s counts to this one in place."""
        self.wm_calls += other.wm_calls
        self.frames += other.frames
        self.sequences += other.sequences
        self.seconds += other.seconds

    def to_dict(self) -> dict[str, float]:
        return {
            "wm_calls": self.wm_calls,
            "frames": self.frames,
            "sequences": self.sequences,
            "seconds": round(self.seconds, 6),
        }


@dataclass(frozen=True)
class Plan:
    """A planner's decision at one step.

    Attributes:
        action: the action to execute now (the first of ``sequence``).
        sequence: the best imagined action sequence.
        score: the goal distance the model imagined ``sequence`` to reach (lower is better).
        candidates: how many sequences were imagined.
        tied: how many of the finally ranked candidates shared the best score (1: a clear winner;
            more: the choice among them was random).
        compute: what this plan cost.
    """

    action: Action
    sequence: tuple[Action, ...]
    score: float
    candidates: int
    tied: int
    compute: Compute


def rank(keys: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Orders candidates by ``keys`` (ascending, first key most significant), ties at random.

    Args:
        keys: one or more float [N] arrays; the first is compared first.
        rng: the seeded generator that orders tied candidates (uniformly).

    Returns:
        int [N], candidate indices best first.

    Example:
        >>> order = rank([np.array([2.0, 1.0, 1.0])], np.random.default_rng(0))
        >>> int(order[2])
        0
    """
    if not keys:
        raise ConfigError("rank() needs at least one key.")
    n = len(keys[0])
    if any(len(k) != n for k in keys):
        raise ConfigError(f"Expected keys of one length, but got {[len(k) for k in keys]}.")
    # A random permutation as the least significant key orders every tie uniformly.
    return np.lexsort((rng.permutation(n), *reversed([np.asarray(k) for k in keys])))


def n_tied(keys: Sequence[np.ndarray], order: np.ndarray) -> int:
    """How many candidates equal the best one (``order[0]``) on every key."""
    best = int(order[0])
    same = np.ones(len(order), dtype=bool)
    for k in keys:
        k = np.asarray(k)
        same &= k == k[best]
    return int(same.sum())


class Imagination:
    """A planner's window on the world model at one planning step.

    Every rollout starts from the true current observation: the model is reset once per batch
    size from the planning-step context (``episode``, repeated), and each rollout branches from
    that pristine state with :meth:`WorldModel.clone`, so rollouts never leak into each other.
    All calls go through the :class:`~panbench.protocols.base.ModelRunner`, which checks the
    adapter's contract and resizes frames to the task resolution.

    Args:
        runner: drives the model under test.
        episode: a planning-step episode whose context is the true observation history (see
            :func:`panbench.protocols.closed_loop.step_episode`).
        where: names the call site in contract errors.
    """

    def __init__(self, runner: ModelRunner, episode: Episode, where: str = "planning") -> None:
        self.runner = runner
        self.episode = episode
        self.where = where
        self.compute = Compute()
        self._roots: dict[int, Any] = {}

    def rollout(self, sequences: Sequence[Sequence[Action]]) -> np.ndarray:
        """Imagines every action sequence from the current observation.

        Args:
            sequences: N sequences of one length L >= 1.

        Returns:
            uint8 [N, L, H, W, 3]: the imagined frame after each action (the last of the
            model's k frames per step), at task resolution.
        """
        n = len(sequences)
        lengths = {len(s) for s in sequences}
        if n == 0 or len(lengths) != 1 or 0 in lengths:
            raise ConfigError(
                f"Expected one or more action sequences of one length >= 1, but got lengths "
                f"{sorted(lengths)} for {n} sequences."
            )
        length = lengths.pop()
        stats = self.runner.stats
        calls, frames = stats.reset_calls + stats.step_calls, stats.frames
        if n not in self._roots:
            self._roots[n] = self.runner.reset([self.episode] * n)
        state = self.runner.clone(self._roots[n])
        out: list[np.ndarray] = []
        for j in range(length):
            state, imagined = self.runner.step(
                state, [s[j] for s in sequences], where=f"{self.where}, imagined step {j}"
            )
            out.append(imagined)
        self.compute.wm_calls += stats.reset_calls + stats.step_calls - calls
        self.compute.frames += stats.frames - frames
        self.compute.sequences += n
        return np.stack(out, axis=1)


class Planner(ABC):
    """Chooses the next action by imagining candidates with a world model.

    Subclasses set ``name`` and implement :meth:`search`; per-episode memory (if any) is cleared
    by :meth:`reset`. Planners are deterministic given the generator they are handed.
    """

    name: ClassVar[str]

    def reset(self) -> None:  # noqa: B027 - optional hook, most planners keep no memory
        """Forgets everything from the previous episode (called before each episode)."""

    @abstractmethod
    def search(
        self,
        situation: Situation,
        imagination: Imagination,
        scorer: GoalScorer,
        rng: np.random.Generator,
    ) -> tuple[Sequence[Action], float, int, int]:
        """Finds the best action sequence.

        Returns:
            ``(sequence, score, candidates, tied)`` as in :class:`Plan`.
        """

    def plan(
        self,
        situation: Situation,
        imagination: Imagination,
        scorer: GoalScorer,
        rng: np.random.Generator,
    ) -> Plan:
        """Runs :meth:`search` and accounts for its compute.

        Args:
            situation: the true current observation, available actions and goal.
            imagination: the model, branched from the current observation.
            scorer: goal distance of imagined frames.
            rng: seeded generator for proposals and tie-breaking.
        """
        if not situation.actions:
            raise ConfigError(f"Planner {self.name!r} was given a situation with no actions.")
        start = time.perf_counter()
        before = replace(imagination.compute)
        sequence, score, candidates, tied = self.search(situation, imagination, scorer, rng)
        spent = Compute(
            wm_calls=imagination.compute.wm_calls - before.wm_calls,
            frames=imagination.compute.frames - before.frames,
            sequences=imagination.compute.sequences - before.sequences,
            seconds=time.perf_counter() - start,
        )
        return Plan(
            action=sequence[0],
            sequence=tuple(sequence),
            score=float(score),
            candidates=int(candidates),
            tied=int(tied),
            compute=spent,
        )

    def random_action(self, situation: Situation, rng: np.random.Generator) -> Action:
        """What this planner does when its model cannot tell candidates apart.

        The random-acting reference of the closed-loop protocol acts with this, so a model
        that ignores the action scores the reference in expectation. Default: a uniformly
        random available action.
        """
        return situation.actions[int(rng.integers(len(situation.actions)))]


def make_planner(name: str, env: Any, **options: Any) -> Planner:
    """Builds the planner registered as ``name`` with its options (see ``PLANNERS``).

    Raises:
        UnknownNameError: no such planner.
        ConfigError: an option is unknown or out of range.
    """
    from panbench.planning import PLANNERS

    cls: Callable[..., Planner] = PLANNERS.get(name)
    try:
        return cls(env=env, **options)
    except TypeError as err:
        raise ConfigError(f"Planner {name!r}: bad options {options}: {err}.") from err
