"""What every protocol shares: the protocol contract, a checked model runner, records.

A protocol turns (task, episodes, model) into per-episode records: a dict of scalar metric
values and, for per-step metrics, a curve over the horizon. The harness only loops, batches,
shards, resumes and writes; everything task-specific lives in the protocol a task's YAML names.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from panbench.data.episodes import Episode, EpisodeSource
from panbench.data.frames import resize_frames
from panbench.data.sources import episode_source
from panbench.envs.base import Action, Env
from panbench.errors import ConfigError, ContractError, UnknownNameError
from panbench.metrics.registry import get_metric, metric_names
from panbench.models.api import ActionSpace, Context, WorldModel, check_frames
from panbench.protocols.declare import Option, read_options
from panbench.records import SampleRecord


@dataclass
class CallStats:
    """Compute accounting for a model: calls, frames produced, seconds spent inside it."""

    reset_calls: int = 0
    step_calls: int = 0
    frames: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "reset_calls": self.reset_calls,
            "step_calls": self.step_calls,
            "frames": self.frames,
            "seconds": round(self.seconds, 6),
        }


@dataclass
class ModelRunner:
    """Drives a :class:`WorldModel` for a protocol: builds contexts, checks and resizes frames.

    Every frame an adapter returns goes through :func:`check_frames`, so a broken adapter raises
    :class:`~panbench.errors.ContractError` naming itself, the call and expected versus received,
    before anything is written.
    """

    model: WorldModel
    #: the task's env; None for tasks on an imported data source (no simulator to privilege)
    env: Env | None
    resolution: int
    stats: CallStats = field(default_factory=CallStats)

    @property
    def name(self) -> str:
        return self.model.spec.name

    def context(self, episodes: Sequence[Episode], upto: int | None = None) -> Context:
        spec = self.model.spec
        frames = np.stack([e.context_frames for e in episodes])
        if spec.context_frames is not None:
            frames = frames[:, -spec.context_frames :]
        if spec.resolution is not None:
            frames = resize_frames(frames, spec.resolution, mode="squash")
        # A task on imported images has no simulator: privileged models get none and say so.
        privileged = spec.privileged and self.env is not None
        return Context(
            frames=np.ascontiguousarray(frames),
            actions=[list(e.context_actions) for e in episodes],
            seeds=[e.seed for e in episodes],
            env=self.env if privileged else None,
            states=[e.context_states[-1] for e in episodes] if privileged else None,
            playback=[getattr(e, "alt_frames", None) for e in episodes]
            if spec.privileged and self.env is None
            else None,
        )

    def reset(self, episodes: Sequence[Episode]) -> Any:
        start = time.perf_counter()
        state = self.model.reset(self.context(episodes))
        self.stats.reset_calls += 1
        self.stats.seconds += time.perf_counter() - start
        return state

    def step(self, state: Any, actions: Sequence[Action], where: str) -> tuple[Any, np.ndarray]:
        """One model step; returns its state and the LAST of its k frames at task resolution.

        Returns:
            (state, frames uint8 [B, H, W, 3]) with H = W = the task resolution.
        """
        state, frames = self._checked_step(state, actions, where)
        return state, resize_frames(frames[:, -1], self.resolution, mode="squash")

    def step_clip(
        self, state: Any, actions: Sequence[Action], where: str
    ) -> tuple[Any, np.ndarray]:
        """One model step; returns its state and ALL its k frames at task resolution.

        Returns:
            (state, frames uint8 [B, k, H, W, 3]) with H = W = the task resolution.
        """
        state, frames = self._checked_step(state, actions, where)
        return state, resize_frames(frames, self.resolution, mode="squash")

    def _checked_step(
        self, state: Any, actions: Sequence[Action], where: str
    ) -> tuple[Any, np.ndarray]:
        """Calls the model's step and checks it; frames stay at the model's resolution.

        Raises:
            ContractError: the model cannot consume these actions (a continuous model given
                actions without a vector, a discrete model given text-only actions) or broke
                the frame contract.
        """
        spec = self.model.spec
        source = f"env {self.env.name!r}" if self.env is not None else "this task's data"
        if spec.action_space is ActionSpace.CONTINUOUS:
            bare = next((a for a in actions if a.vector is None), None)
            if bare is not None:
                raise ContractError(
                    f"Model {self.name!r} takes continuous actions (action_space='continuous'), "
                    f"but {source} gives action {bare.text!r} no vector in {where}; "
                    "run it on tasks whose env has continuous actions."
                )
            wrong = next(
                (a for a in actions if spec.action_dim not in (None, len(a.vector or ()))), None
            )
            if wrong is not None:
                raise ContractError(
                    f"Model {self.name!r} takes action vectors of dimension {spec.action_dim}, "
                    f"but {source} gives a vector of dimension {len(wrong.vector or ())} "
                    f"({wrong.text!r}) in {where}."
                )
        # A privileged baseline steps the true simulator, which resolves continuous actions.
        through_env = spec.privileged and self.env is not None
        if spec.action_space is ActionSpace.DISCRETE:
            bare = next(
                (a for a in actions if not a.has_index and not (through_env and a.vector)), None
            )
            if bare is not None:
                raise ContractError(
                    f"Model {self.name!r} takes discrete actions (action_space='discrete'), "
                    f"but {source} gives the text-only action {bare.text!r} in {where}; run "
                    "it on env tasks, or use a model that takes text or no actions."
                )
        start = time.perf_counter()
        result = self.model.step(state, list(actions))
        self.stats.seconds += time.perf_counter() - start
        self.stats.step_calls += 1
        if not (isinstance(result, tuple) and len(result) == 2):
            raise ContractError(
                f"Model {self.name!r} broke the WorldModel contract in {where}: expected step() "
                f"to return (state, frames), but got {type(result).__name__}."
            )
        new_state, frames = result
        frames = check_frames(
            frames,
            model=self.name,
            where=where,
            batch_size=len(actions),
            frames_per_step=spec.frames_per_step,
            resolution=spec.resolution,
        )
        self.stats.frames += int(frames.shape[0] * frames.shape[1])
        return new_state, frames

    def imagine_differentiable(self, episodes: Sequence[Episode], actions: Any, where: str) -> Any:
        """Imagines with gradients from each episode's context (differentiable models only).

        Args:
            episodes: B episodes whose contexts the rollouts start from.
            actions: float torch tensor [B, L, D] of action vectors.

        Returns:
            float torch tensor [B, L, H, W, 3] in [0, 1] at the task resolution (resized
            bilinearly when the model's differs), differentiable with respect to ``actions``.

        Raises:
            ContractError: the model does not declare ``differentiable``, or returned something
                else than such a tensor.
        """
        import torch

        if not self.model.spec.differentiable:
            raise ContractError(
                f"Model {self.name!r} does not declare differentiable; gradients were asked in "
                f"{where}."
            )
        state = self.reset(episodes)
        start = time.perf_counter()
        frames = self.model.imagine_differentiable(state, actions)
        self.stats.seconds += time.perf_counter() - start
        self.stats.step_calls += int(actions.shape[1])
        b, length = int(actions.shape[0]), int(actions.shape[1])
        prefix = f"Model {self.name!r} broke the imagine_differentiable contract in {where}:"
        if not isinstance(frames, torch.Tensor) or not frames.is_floating_point():
            raise ContractError(
                f"{prefix} expected a float torch tensor [B,L,H,W,3], but got "
                f"{type(frames).__name__} {getattr(frames, 'dtype', '')}."
            )
        ok = frames.ndim == 5 and tuple(frames.shape[:2]) == (b, length) and frames.shape[4] == 3
        if not ok or frames.shape[2] != frames.shape[3]:
            raise ContractError(
                f"{prefix} expected frames of shape [{b},{length},H,W,3], but got "
                f"{list(frames.shape)}."
            )
        if not bool(torch.isfinite(frames).all()):
            raise ContractError(f"{prefix} expected finite values, but got NaN or inf.")
        self.stats.frames += b * length
        if frames.shape[2] != self.resolution:
            flat = frames.reshape(b * length, *frames.shape[2:]).permute(0, 3, 1, 2)
            flat = torch.nn.functional.interpolate(
                flat, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False
            )
            frames = flat.permute(0, 2, 3, 1).reshape(
                b, length, self.resolution, self.resolution, 3
            )
        return frames

    def outcomes(self, state: Any, batch_size: int, where: str) -> tuple[np.ndarray, np.ndarray]:
        """The model's predicted reward and terminal flag of its last step, checked.

        Returns:
            (rewards float64 [B], terminals bool [B]).

        Raises:
            ContractError: the model does not declare ``predicts_rewards``, or returned
                something else than two arrays of B values (finite rewards).
        """
        if not self.model.spec.predicts_rewards:
            raise ContractError(
                f"Model {self.name!r} does not declare predicts_rewards; outcomes were asked in "
                f"{where}."
            )
        result = self.model.outcomes(state)
        prefix = f"Model {self.name!r} broke the outcomes contract in {where}:"
        if not (isinstance(result, tuple) and len(result) == 2):
            raise ContractError(
                f"{prefix} expected (rewards [B], terminals [B]), but got {type(result).__name__}."
            )
        rewards = np.asarray(result[0], dtype=np.float64)
        terminals = np.asarray(result[1])
        if rewards.shape != (batch_size,) or terminals.shape != (batch_size,):
            raise ContractError(
                f"{prefix} expected rewards and terminals of shape ({batch_size},), but got "
                f"{tuple(rewards.shape)} and {tuple(terminals.shape)}."
            )
        if not np.isfinite(rewards).all() or terminals.dtype != np.bool_:
            raise ContractError(
                f"{prefix} expected finite float rewards and bool terminals, but got "
                f"{rewards.tolist()} and dtype {terminals.dtype}."
            )
        return rewards, terminals

    def clone(self, state: Any) -> Any:
        return self.model.clone(state)


Record = SampleRecord
"""What :meth:`Protocol.run_batch` returns per episode (see :class:`panbench.records.SampleRecord`)."""


class Protocol(ABC):
    """How a task uses a model. Subclasses declare themselves and implement :meth:`run_batch`.

    A subclass states, as class attributes, its ``name``, the episode-source kinds it runs on
    (``sources``), its ``options`` (typed, with defaults; read through :attr:`opts`) and the
    ``metrics`` it can report, by metric-catalogue name (direction, level and range come from
    the catalogue, :mod:`panbench.metrics.registry`). The suite validator reads the same
    declarations, so a plugin protocol validates like a built-in one.

    Args:
        task: the task spec, a :class:`panbench.suite.TaskSpec` (typed ``Any``: the suite's
            validator imports the protocols, so protocols never import the suite).
        env: the task's env, built from ``task.env``; None for a task on a data source
            (``task.data``), whose episodes come from the source its ``data.kind`` names.

    Raises:
        ConfigError: the task names a metric the protocol does not report, or an option it
            does not declare or of the wrong type.
    """

    name: ClassVar[str]
    #: episode-source kinds: "env" (a simulator named by ``env:``) or a data kind ("wr-arena")
    sources: ClassVar[tuple[str, ...]] = ("env",)
    #: the task options it reads, with their types and defaults
    options: ClassVar[tuple[Option, ...]] = ()
    #: the metric-catalogue names it can report
    metrics: ClassVar[tuple[str, ...]] = ()

    #: a judge (``panbench.judges.Judge``) the harness attaches for judge-scored tasks
    judge: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_declarations(cls)

    def __init__(self, task: Any, env: Env | None) -> None:
        self.task = task
        self._env = env
        unknown = [m for m in task.metrics if m not in self.metrics]
        if unknown:
            from panbench.registry import did_you_mean

            raise ConfigError(
                f"Task {task.name!r}: protocol {self.name!r} has no metric {unknown[0]!r}."
                f"{did_you_mean(unknown[0], list(self.metrics))} "
                f"Available: {', '.join(self.metrics)}."
            )
        #: the task's options, defaults applied and types checked
        self.opts: dict[str, Any] = read_options(self.options, task, self.name)
        #: where the episodes come from: the env's rollouts, or the source ``data.kind`` names
        self.source: EpisodeSource = episode_source(task, env)

    @property
    def env(self) -> Env:
        """The task's env (for env tasks; a data task has none)."""
        if self._env is None:
            raise ConfigError(
                f"Task {self.task.name!r} runs on a data source and has no env; protocol "
                f"{self.name!r} needs one."
            )
        return self._env

    def requires_judge(self) -> bool:
        """Whether this task can only be scored by a judge (``--judge``); the harness refuses to
        start such a task without one. Default: no."""
        return False

    def episode(self, index: int) -> Episode:
        """Episode ``index`` of the task, from its :attr:`source`."""
        return self.source.episode(index)

    @abstractmethod
    def run_batch(self, runner: ModelRunner, episodes: Sequence[Episode]) -> list[Record]:
        """Scores a batch of episodes; returns one record per episode, in order."""

    def extra_results(self) -> dict[str, Any]:
        """Extra fields for the task's results entry that the samples cannot recompute.

        E.g. planning wall time. Called once per task after its records are merged; the
        default protocol has none.
        """
        return {}


def check_declarations(cls: type[Protocol]) -> None:
    """Checks a protocol class's declarations when the class is defined.

    Raises:
        ConfigError: a metric the catalogue lacks, an empty or non-string ``sources``, or
            options that are not :class:`Option` entries.
    """
    where = f"Protocol class {cls.__module__}.{cls.__qualname__}"
    if not isinstance(cls.metrics, tuple) or not all(isinstance(m, str) for m in cls.metrics):
        raise ConfigError(
            f"{where}: expected metrics to be a tuple of metric-catalogue names, but got "
            f"{cls.metrics!r}."
        )
    missing = [m for m in cls.metrics if m not in metric_names()]
    if missing:
        try:
            get_metric(missing[0])
        except UnknownNameError as err:
            raise UnknownNameError(f"{where} reports a metric the catalogue lacks: {err}") from None
    if not cls.sources or not all(isinstance(s, str) and s for s in cls.sources):
        raise ConfigError(
            f"{where}: expected sources to be a non-empty tuple of source kinds, but got "
            f"{cls.sources!r}."
        )
    bad = [o for o in cls.options if not isinstance(o, Option)]
    if bad:
        raise ConfigError(f"{where}: expected options to be Option entries, but got {bad[0]!r}.")
