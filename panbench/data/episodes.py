"""Scored episodes: the ``Episode`` type, env-backed generation, and the ``EpisodeSource`` contract.

A task's episodes come from one :class:`EpisodeSource`. An env task's source is an
:class:`EnvSource`: it rolls the task's env out under a seeded policy (:func:`make_episode`). A
task on imported data (``data:`` in its YAML) gets the source its ``data.kind`` names in
:data:`panbench.data.sources.SOURCES`. Protocols read episodes only through a source, so a new kind
of data is one new source file plus one registry line.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from panbench.envs.base import Action, Env, State
from panbench.errors import ConfigError

#: a task spec (``panbench.suite.TaskSpec``); typed loosely because the data layer sits below the
#: suite, which validates tasks against protocols and sources and so imports upward from here
TaskSpec = Any

__all__ = [
    "POLICIES",
    "EnvSource",
    "Episode",
    "EpisodeSource",
    "draw_action",
    "episode_seed",
    "hash_episode",
    "make_episode",
]

POLICIES = ("random", "agent", "intervention", "mixed", "continuous")
"""How an env task's true actions are drawn: ``random`` (any non-wait action), ``agent``,
``intervention``, ``mixed`` (as random), ``continuous`` (a uniform vector of the env's
``action_space``, resolved by ``Env.vector_action``)."""


@dataclass
class Episode:
    """One scored episode, generated from the task spec and a per-episode seed.

    Attributes:
        index: position in the task's episode list (fixed by the spec, independent of sharding).
        episode_id: ``"<task>/<index>"``.
        seed: the episode's seed (derived from the task seed and index).
        context_frames: uint8 [Tc, H, W, 3] frames the model sees first.
        context_actions: the Tc-1 actions taken between context frames.
        context_states: true states of the context frames (Tc of them).
        actions: the horizon's actions (the commands the model must follow).
        states: true states after each action (horizon of them).
        frames: uint8 [horizon, H, W, 3] true future frames.
        hash: sha256 over the episode's frames and action indices (matches episodes across runs).
    """

    index: int
    episode_id: str
    seed: int
    context_frames: np.ndarray
    context_actions: list[Action]
    context_states: list[State]
    actions: list[Action]
    states: list[State]
    frames: np.ndarray
    hash: str = ""


def episode_seed(task_seed: int, index: int) -> int:
    """The seed of episode ``index``: independent of batch size, shard count and resume point.

    Not :func:`panbench.data.generate.episode_seed`, which seeds the episodes of a generated
    dataset folder by another (documented) derivation.
    """
    return int(
        np.random.SeedSequence([int(task_seed), int(index)]).generate_state(1)[0] & 0x7FFFFFFF
    )


def draw_action(env: Env, state: State, rng: np.random.Generator, policy: str) -> Action:
    """Draws an available action under ``policy`` (see :data:`POLICIES`).

    Raises:
        ConfigError: an unknown policy, or no action of the policy's kind is available.
    """
    if policy == "continuous":
        space = env.action_space
        if space is None:
            raise ConfigError(
                f"Env {env.name!r} has no continuous action space, so the 'continuous' episode "
                f"policy cannot draw its actions; expected one of {POLICIES[:-1]}."
            )
        return env.vector_action(state, space.sample(rng))
    available = env.actions(state)
    if policy == "agent":
        pool = [a for a in available if a.kind == "agent"]
    elif policy == "intervention":
        pool = [a for a in available if a.kind == "intervention"]
    elif policy in ("random", "mixed"):
        pool = [a for a in available if a.kind != "wait"] or available
    else:
        raise ConfigError(f"Unknown episode policy {policy!r}; expected one of {POLICIES}.")
    if not pool:
        raise ConfigError(
            f"Env {env.name!r} offers no {policy!r} actions in this state (config {env.config}); "
            "enable them in the task's env kwargs (e.g. interventions: true)."
        )
    return pool[int(rng.integers(len(pool)))]


def hash_episode(frames: np.ndarray, actions: Sequence[Action]) -> str:
    """sha256 over all of an episode's frames (context and future) and its action indices
    (and, for continuous actions, which have no index, their vectors)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(frames).tobytes())
    h.update(",".join(str(a.index) for a in actions).encode())
    vectors = [a.vector for a in actions if not a.has_index and a.vector is not None]
    if vectors:  # absent from discrete episodes, whose hashes stay as they were
        h.update(np.asarray(vectors, dtype=np.float64).tobytes())
    return h.hexdigest()


def make_episode(
    env: Env, task_name: str, task_seed: int, index: int, context: int, horizon: int, policy: str
) -> Episode:
    """Generates episode ``index`` of a task by rolling out ``env`` under ``policy``."""
    seed = episode_seed(task_seed, index)
    rng = np.random.default_rng(seed)
    state = env.reset(seed)
    states = [state]
    actions: list[Action] = []
    for _ in range(context - 1 + horizon):
        action = draw_action(env, state, rng, policy)
        state = env.step(state, action)
        actions.append(action)
        states.append(state)
    frames = env.render_batch(states)
    ctx = context
    return Episode(
        index=index,
        episode_id=f"{task_name}/{index:05d}",
        seed=seed,
        context_frames=frames[:ctx],
        context_actions=actions[: ctx - 1],
        context_states=states[:ctx],
        actions=actions[ctx - 1 :],
        states=states[ctx:],
        frames=frames[ctx:],
        hash=hash_episode(frames, actions),
    )


class EpisodeSource(ABC):
    """Where a task's episodes come from: a fixed, indexable list of :class:`Episode`.

    ``episode(i)`` must return the same episode (same hash, same values) on every call, in any
    process, whatever else was read before: the harness shards, batches and resumes by index.
    Data-backed kinds are built from the task with :meth:`from_task` and registered in
    :data:`panbench.data.sources.SOURCES` under their ``kind``.
    """

    #: the kind a task names (``data.kind``), e.g. ``"wr-arena"``; ``"env"`` for env tasks
    kind: ClassVar[str]

    @classmethod
    def from_task(cls, task: TaskSpec, env: Env | None = None) -> EpisodeSource:
        """Builds the source of ``task`` (data-backed kinds take the task alone)."""
        return cls(task)  # type: ignore[call-arg]

    @abstractmethod
    def __len__(self) -> int:
        """The number of episodes the source holds."""

    @abstractmethod
    def episode(self, index: int) -> Episode:
        """Episode ``index``, for ``0 <= index < len(self)``."""

    @abstractmethod
    def provenance(self) -> dict[str, Any]:
        """Where the episodes come from, as plain JSON values (for results files)."""


class EnvSource(EpisodeSource):
    """Env-backed episodes: ``count`` seeded rollouts of an env (see :func:`make_episode`).

    Args:
        env: the task's env.
        task_name: the task name (it prefixes every episode id).
        count: the number of episodes.
        seed: the task's base seed; episode ``i`` uses ``episode_seed(seed, i)``.
        context: context frames per episode (>= 1).
        horizon: predicted steps per episode (>= 1).
        policy: how the true actions are drawn (one of :data:`POLICIES`).
    """

    kind: ClassVar[str] = "env"

    def __init__(
        self,
        env: Env,
        task_name: str,
        count: int,
        *,
        seed: int = 0,
        context: int = 2,
        horizon: int = 8,
        policy: str = "random",
    ) -> None:
        self.env = env
        self.task_name = task_name
        self.count = count
        self.seed = seed
        self.context = context
        self.horizon = horizon
        self.policy = policy

    @classmethod
    def from_task(cls, task: TaskSpec, env: Env | None = None) -> EnvSource:
        """The source of an env task: its ``episodes`` spec rolled out in ``env``.

        Raises:
            ConfigError: no env was given.
        """
        if env is None:
            raise ConfigError(
                f"Task {task.name!r}: expected the task's env to build its episodes, but got None."
            )
        ep = task.episodes
        return cls(
            env,
            task.name,
            ep.count,
            seed=ep.seed,
            context=ep.context,
            horizon=ep.horizon,
            policy=ep.policy,
        )

    def __len__(self) -> int:
        return self.count

    def episode(self, index: int) -> Episode:
        return make_episode(
            self.env, self.task_name, self.seed, index, self.context, self.horizon, self.policy
        )

    def provenance(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "env": self.env.name,
            "count": self.count,
            "seed": self.seed,
            "context": self.context,
            "horizon": self.horizon,
            "policy": self.policy,
        }
