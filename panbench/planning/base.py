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

import inspect
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, cast

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
    "PlanJob",
    "Planner",
    "Request",
    "Situation",
    "imagine",
    "n_tied",
    "plan_batch",
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


def positive_int(name: str, value: Any) -> int:
    """A planner option that must be an integer >= 1 (bools refused), else :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"Expected {name} to be an integer >= 1, but got {value!r}.")
    return value


def pick_best(
    costs: Sequence[np.ndarray], steps: Sequence[np.ndarray], rng: np.random.Generator
) -> tuple[int, float, int]:
    """The best of every candidate a search imagined, over all its rounds.

    Args:
        costs: per round, float [N] goal distances (lower is better).
        steps: per round, int [N] tie-breakers (how soon; lower is better).
        rng: breaks the remaining ties (see :func:`rank`).

    Returns:
        (index into the rounds' concatenation, its cost, how many candidates tie with it).
    """
    keys = [np.concatenate(costs), np.concatenate(steps)]
    order = rank(keys, rng)
    i = int(order[0])
    return i, float(keys[0][i]), n_tied(keys, order)


@dataclass
class Request:
    """Sequences a planner wants imagined from one :class:`Imagination`'s observation."""

    imagination: Imagination
    sequences: list[list[Action]]


#: what a generator ``search`` yields (a request) and is sent back (the imagined frames)
Search = Generator[Request, np.ndarray, "SearchResult"]
SearchResult = tuple[Sequence[Action], float, int, int]


def _checked(sequences: Sequence[Sequence[Action]]) -> list[list[Action]]:
    n = len(sequences)
    lengths = {len(s) for s in sequences}
    if n == 0 or len(lengths) != 1 or 0 in lengths:
        raise ConfigError(
            f"Expected one or more action sequences of one length >= 1, but got lengths "
            f"{sorted(lengths)} for {n} sequences."
        )
    return [list(s) for s in sequences]


class Imagination:
    """A planner's window on the world model at one planning step.

    Every rollout starts from the true current observation (``episode``'s context): the model is
    reset from that context, one row per sequence, and stepped through the sequences, so
    rollouts never leak into each other. All calls go through the
    :class:`~panbench.protocols.base.ModelRunner`, which checks the adapter's contract and
    resizes frames to the task resolution.

    Planners ask for rollouts with ``frames = yield from imagination.request(sequences)``
    inside a generator :meth:`Planner.search`; :func:`plan_batch` then serves the requests of
    every planner of a batch (every candidate of every episode) with one ``reset`` and one
    ``step`` per imagined step. :meth:`rollout` imagines at once, for one planner alone.

    ``compute`` counts what this planner asked for, as if it ran alone: one ``reset`` per
    distinct number of sequences (a pristine root branched with ``clone`` for each rollout of
    that size), one ``step`` per imagined step, and the frames. Batching changes how many
    physical calls the model sees (the runner's ``stats``), never these per-episode counts.

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
        self._sizes: set[int] = set()

    def request(self, sequences: Sequence[Sequence[Action]]) -> Generator[Request, Any, Any]:
        """Asks the batch driver to imagine ``sequences``; ``yield from`` it in a search.

        Returns (as the generator's value):
            uint8 [N, L, H, W, 3], as :meth:`rollout`.
        """
        frames = yield Request(self, _checked(sequences))
        return frames

    def rollout(self, sequences: Sequence[Sequence[Action]]) -> np.ndarray:
        """Imagines every action sequence from the current observation, now.

        Args:
            sequences: N sequences of one length L >= 1.

        Returns:
            uint8 [N, L, H, W, 3]: the imagined frame after each action (the last of the
            model's k frames per step), at task resolution.
        """
        return imagine(self.runner, [Request(self, _checked(sequences))])[0]

    def rollout_differentiable(self, actions: Any) -> Any:
        """Imagines action vectors with gradients, now (models declaring ``differentiable``).

        Args:
            actions: float torch tensor [N, L, D], N sequences of L vectors.

        Returns:
            float torch tensor [N, L, H, W, 3] in [0, 1] at task resolution, differentiable with
            respect to ``actions`` (see :meth:`WorldModel.imagine_differentiable`).
        """
        n, length = int(actions.shape[0]), int(actions.shape[1])
        frames = self.runner.imagine_differentiable(
            [self.episode] * n, actions, where=f"{self.where}, imagined with gradients"
        )
        self.compute.wm_calls += 1 + length  # a fresh reset each time: the call consumes it
        self.compute.frames += n * length
        self.compute.sequences += n
        return frames

    def _account(self, n: int, length: int, frames_per_row: int) -> None:
        self.compute.wm_calls += (0 if n in self._sizes else 1) + length
        self._sizes.add(n)
        self.compute.frames += n * frames_per_row
        self.compute.sequences += n


def imagine(runner: ModelRunner, requests: Sequence[Request]) -> list[np.ndarray]:
    """Serves rollout requests of many imaginations with one batched model call per step.

    Requests are grouped by sequence length; each group is one ``reset`` over every requested
    row (each row's context is its imagination's observation) and one ``step`` per action.

    Returns:
        Per request, uint8 [N, L, H, W, 3] (see :meth:`Imagination.rollout`).
    """
    out: list[np.ndarray | None] = [None] * len(requests)
    by_length: dict[int, list[int]] = {}
    for i, req in enumerate(requests):
        by_length.setdefault(len(req.sequences[0]), []).append(i)
    for length, members in by_length.items():
        rows = [(i, seq) for i in members for seq in requests[i].sequences]
        episodes = [requests[i].imagination.episode for i, _ in rows]
        first = requests[members[0]].imagination
        where = first.where if len(members) == 1 else f"{first.where} (batch of {len(members)})"
        before = runner.stats.frames
        state = runner.reset(episodes)
        steps: list[np.ndarray] = []
        for j in range(length):
            state, imagined = runner.step(
                state, [seq[j] for _, seq in rows], where=f"{where}, imagined step {j}"
            )
            steps.append(imagined)
        frames = np.stack(steps, axis=1)
        per_row = (runner.stats.frames - before) // max(len(rows), 1)
        start = 0
        for i in members:
            n = len(requests[i].sequences)
            out[i] = frames[start : start + n]
            requests[i].imagination._account(n, length, per_row)
            start += n
    return [o for o in out if o is not None]


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
    ) -> Search | SearchResult:
        """Finds the best action sequence.

        Write it as a generator that gets imagined frames with
        ``frames = yield from imagination.request(sequences)``: :func:`plan_batch` then
        batches its requests with those of every other planner of the batch. A plain method
        calling ``imagination.rollout`` (imagining at once) works too, unbatched.

        Returns:
            ``(sequence, score, candidates, tied)`` as in :class:`Plan` (a generator returns it).
        """

    def plan(
        self,
        situation: Situation,
        imagination: Imagination,
        scorer: GoalScorer,
        rng: np.random.Generator,
    ) -> Plan:
        """Runs :meth:`search` alone and accounts for its compute (see :func:`plan_batch`).

        Args:
            situation: the true current observation, available actions and goal.
            imagination: the model, branched from the current observation.
            scorer: goal distance of imagined frames.
            rng: seeded generator for proposals and tie-breaking.
        """
        return plan_batch([PlanJob(self, situation, imagination, scorer, rng)])[0]

    def random_action(self, situation: Situation, rng: np.random.Generator) -> Action:
        """What this planner does when its model cannot tell candidates apart.

        The random-acting reference of the closed-loop protocol acts with this, so a model
        that ignores the action scores the reference in expectation. Default: a uniformly
        random available action.
        """
        return situation.actions[int(rng.integers(len(situation.actions)))]


@dataclass
class PlanJob:
    """One planner's decision to make at one step of one closed-loop run."""

    planner: Planner
    situation: Situation
    imagination: Imagination
    scorer: GoalScorer
    rng: np.random.Generator


def plan_batch(jobs: Sequence[PlanJob]) -> list[Plan]:
    """Runs every job's search together: all their rollout requests of one round (every
    candidate of every episode; one round per CEM iteration or beam depth) go to the model as
    one batched ``reset`` and one ``step`` per imagined step (:func:`imagine`).

    Each job's plan, score, ties and compute counts are those it gets alone: requests are
    served in job order and the model's rows are independent. Wall time is shared out evenly.

    Raises:
        ConfigError: a job's situation has no actions, or its jobs use different runners.
    """
    runners = {id(job.imagination.runner) for job in jobs}
    if len(runners) > 1:
        raise ConfigError("plan_batch() needs every job to imagine with the same runner.")
    start = time.perf_counter()
    befores = [replace(job.imagination.compute) for job in jobs]
    results: list[SearchResult | None] = [None] * len(jobs)
    pending: dict[int, tuple[Search, Request]] = {}
    for i, job in enumerate(jobs):
        if not job.situation.actions:
            raise ConfigError(
                f"Planner {job.planner.name!r} was given a situation with no actions."
            )
        found: Any = job.planner.search(job.situation, job.imagination, job.scorer, job.rng)
        if not inspect.isgenerator(found):
            results[i] = found  # an unbatched planner has imagined already
            continue
        _advance(i, cast(Search, found), None, pending, results)
    while pending:
        order = sorted(pending)
        frames = imagine(jobs[order[0]].imagination.runner, [pending[i][1] for i in order])
        for i, f in zip(order, frames, strict=True):
            _advance(i, pending.pop(i)[0], f, pending, results)
    seconds = (time.perf_counter() - start) / max(len(jobs), 1)
    plans = []
    for job, before, result in zip(jobs, befores, results, strict=True):
        assert result is not None
        sequence, score, candidates, tied = result
        now = job.imagination.compute
        spent = Compute(
            wm_calls=now.wm_calls - before.wm_calls,
            frames=now.frames - before.frames,
            sequences=now.sequences - before.sequences,
            seconds=seconds,
        )
        plans.append(
            Plan(
                action=sequence[0],
                sequence=tuple(sequence),
                score=float(score),
                candidates=int(candidates),
                tied=int(tied),
                compute=spent,
            )
        )
    return plans


def _advance(
    i: int,
    search: Search,
    frames: np.ndarray | None,
    pending: dict[int, tuple[Search, Request]],
    results: list[SearchResult | None],
) -> None:
    """Sends ``frames`` into a search; files its next request or its result."""
    try:
        request = next(search) if frames is None else search.send(frames)
    except StopIteration as done:
        results[i] = done.value
        return
    if not isinstance(request, Request):
        raise ConfigError(
            f"Expected a planner's search to yield imagination requests, but got "
            f"{type(request).__name__}; use `frames = yield from imagination.request(...)`."
        )
    pending[i] = (search, request)


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
