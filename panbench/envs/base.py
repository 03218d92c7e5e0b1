"""The Env contract: pure, deterministic, numpy ground-truth simulators with pixel-exact perception.

Every environment in panbench implements :class:`Env`. States are immutable values: ``step``
returns a new state and never mutates its input, so a rollout can be branched by keeping a
reference. Everything an env does is a deterministic function of ``(config, seed, actions)``.

Coordinates: ``observe()["positions"]`` are entity centres in pixels of the rendered frame at the
env's resolution, ``(x, y)`` with x to the right and y down, where pixel ``(i, j)`` (row i, column j)
has its centre at ``x = j, y = i``. ``perceive(render(s))`` recovers them to within 0.5 px.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from panbench.errors import ConfigError, UnknownNameError
from panbench.registry import did_you_mean

State = Any
"""An env's own immutable state value (a frozen dataclass in the built-in envs)."""

Observation = dict[str, np.ndarray]
"""The observable truth: at least ``positions`` float [K,2] and ``present`` bool [K]."""


NO_INDEX = -1
"""``Action.index`` of a free-form text action that belongs to no env (e.g. an imported
WR-Arena prompt). ``ModelRunner`` refuses to hand such actions to discrete-action models, so an
adapter never sees the sentinel as an id."""


@dataclass(frozen=True)
class Action:
    """One action, in every representation a world model may consume.

    Attributes:
        index: stable discrete id in ``range(env.num_actions)``; the same index means the same
            action (same entity slot, same direction) throughout an episode and across episodes.
            :data:`NO_INDEX` for a text-only action (build it with :meth:`text_only`).
        text: natural-language form, e.g. ``"move the red circle up"``.
        kind: ``"agent"`` for the agent's own actions, ``"intervention"`` for environment
            interventions (add/remove/recolour objects, change background), ``"wait"`` for no-ops.
        vector: optional continuous form (e.g. a push direction), ``None`` where not natural.
    """

    index: int
    text: str
    kind: str = "agent"
    vector: tuple[float, ...] | None = field(default=None, compare=False)

    @classmethod
    def text_only(cls, text: str, kind: str = "agent") -> Action:
        """A free-form language action with no discrete id and no vector."""
        return cls(index=NO_INDEX, text=text, kind=kind)

    @property
    def has_index(self) -> bool:
        """Whether the action has a discrete id (False for :meth:`text_only` actions)."""
        return self.index != NO_INDEX

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "text": self.text, "kind": self.kind}
        if self.vector is not None:
            out["vector"] = list(self.vector)
        return out


@dataclass(frozen=True)
class VectorSpace:
    """A continuous action space as gymnasium's ``Box``: per-component bounds of ``Action.vector``.

    Attributes:
        low: the smallest value of each component.
        high: the largest value of each component (``high[i] > low[i]``).

    Example:
        >>> space = VectorSpace(low=(-1.0, -1.0), high=(1.0, 1.0))
        >>> space.dim, space.contains((0.5, -1.0)), space.contains((2.0, 0.0))
        (2, True, False)
    """

    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        low = tuple(float(v) for v in self.low)
        high = tuple(float(v) for v in self.high)
        if (
            not low
            or len(low) != len(high)
            or not all(h > lo for lo, h in zip(low, high, strict=False))
        ):
            raise ConfigError(
                f"Expected VectorSpace bounds of one length >= 1 with high > low, but got "
                f"low={low} and high={high}."
            )
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def dim(self) -> int:
        """The number of components of a vector action."""
        return len(self.low)

    def contains(self, vector: Sequence[float] | np.ndarray) -> bool:
        """Whether ``vector`` has :attr:`dim` finite components within the bounds."""
        v = np.asarray(vector, dtype=np.float64)
        return (
            v.shape == (self.dim,)
            and bool(np.isfinite(v).all())
            and bool((v >= np.asarray(self.low)).all() and (v <= np.asarray(self.high)).all())
        )

    def clip(self, vector: Sequence[float] | np.ndarray) -> np.ndarray:
        """``vector`` clipped into the bounds, float64 [dim] (NaN becomes the centre)."""
        v = np.asarray(vector, dtype=np.float64).reshape(self.dim)
        v = np.where(np.isfinite(v), v, self.center)
        return np.clip(v, self.low, self.high)

    @property
    def center(self) -> np.ndarray:
        """float64 [dim], the middle of the box."""
        return (np.asarray(self.low) + np.asarray(self.high)) / 2.0

    def sample(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        """Uniform draws: float64 [dim], or [n, dim] when ``n`` is given."""
        shape = (self.dim,) if n is None else (n, self.dim)
        return rng.uniform(self.low, self.high, size=shape)

    def check(self, vector: Any, where: str) -> np.ndarray:
        """``vector`` as float64 [dim] if it lies in the space.

        Raises:
            ConfigError: naming ``where``, the expected dimension and bounds and what was given.
        """
        try:
            v = np.asarray(vector, dtype=np.float64)
        except (TypeError, ValueError):
            v = np.asarray([np.nan])
        if v.shape != (self.dim,) or not self.contains(v):
            raise ConfigError(
                f"{where}: expected an action vector of {self.dim} finite numbers within "
                f"low={list(self.low)}, high={list(self.high)}, but got {vector!r}."
            )
        return v

    def to_gym(self) -> Any:
        """The same space as a ``gymnasium.spaces.Box`` (float32)."""
        from gymnasium import spaces

        return spaces.Box(
            low=np.asarray(self.low, np.float32), high=np.asarray(self.high, np.float32)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"dim": self.dim, "low": list(self.low), "high": list(self.high)}


class Env(ABC):
    """A procedural ground-truth environment.

    Subclasses set ``name``, ``description`` and ``version`` (bump ``version`` whenever dynamics,
    rendering or action semantics change: it enters every task's content hash), and implement the
    abstract methods. Constructor keyword arguments must be JSON-serialisable; they are recorded
    in :attr:`config`.

    Args:
        resolution: side of the square rendered frame in pixels.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    version: ClassVar[str] = "1"
    #: the number of entity slots K in ``observe``/``perceive`` (fixed per env config)
    num_entities: int
    #: supported resolutions are multiples of this, within [min_resolution, max_resolution]
    resolution_multiple: ClassVar[int] = 8
    min_resolution: ClassVar[int] = 32
    max_resolution: ClassVar[int] = 512

    def __init__(self, resolution: int = 64) -> None:
        self.resolution = self._check_resolution(resolution)
        self._config: dict[str, Any] = {"resolution": self.resolution}

    # ----------------------------------------------------------------------------------- config
    @classmethod
    def _check_resolution(cls, resolution: Any) -> int:
        if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
            raise ConfigError(
                f"Expected resolution to be an integer, but got {type(resolution).__name__} "
                f"{resolution!r} for env {cls.name!r}."
            )
        res = int(resolution)
        if not (cls.min_resolution <= res <= cls.max_resolution) or res % cls.resolution_multiple:
            raise ConfigError(
                f"Env {cls.name!r} supports resolutions that are multiples of "
                f"{cls.resolution_multiple} between {cls.min_resolution} and {cls.max_resolution}, "
                f"but got {res}."
            )
        return res

    def _record_config(self, **kwargs: Any) -> None:
        """Subclasses call this with their own keyword arguments so :attr:`config` is complete."""
        self._config.update(kwargs)

    @property
    def config(self) -> dict[str, Any]:
        """The keyword arguments that reproduce this env with :func:`panbench.envs.make`."""
        return dict(self._config)

    def fingerprint(self) -> str:
        """sha256 of (name, version, config): identifies what this env renders and simulates."""
        blob = json.dumps(
            {"name": self.name, "version": self.version, "config": self._config}, sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    # ----------------------------------------------------------------------------------- dynamics
    @abstractmethod
    def reset(self, seed: int) -> State:
        """Returns the initial state for ``seed`` (a non-negative int); same seed, same state."""

    @property
    @abstractmethod
    def num_actions(self) -> int:
        """The size of the stable action index space."""

    @abstractmethod
    def actions(self, state: State) -> list[Action]:
        """The actions available in ``state``, with text naming entities as they look now."""

    @abstractmethod
    def _step(self, state: State, action: Action) -> State:
        """Applies a resolved, valid action. Must not mutate ``state``."""

    def step(self, state: State, action: Action | int | str) -> State:
        """Returns the state after ``action`` (an :class:`Action`, its index, or its text).

        An :class:`Action` without a discrete id that carries a ``vector`` (a continuous action,
        e.g. a planner's proposal) is resolved through :meth:`vector_action`.
        """
        if isinstance(action, Action) and not action.has_index and action.vector is not None:
            return self._step(state, self.vector_action(state, action.vector))
        return self._step(state, self.resolve_action(state, action))

    # ----------------------------------------------------------------------------------- vectors
    @property
    def action_space(self) -> VectorSpace | None:
        """The continuous action space (bounds of ``Action.vector``), or None for envs whose
        actions have no vector form. Envs with continuous controls override this."""
        return None

    def vector_action(self, state: State, vector: Sequence[float] | np.ndarray) -> Action:
        """The action that ``vector`` (a point of :attr:`action_space`) commands in ``state``.

        Envs with continuous controls override this to return an action carrying the vector
        itself (``index`` :data:`NO_INDEX`). The default, for envs whose discrete actions carry
        vectors (maze and blocks moves), snaps to the available action whose vector is nearest.

        Raises:
            ConfigError: the env has no vector form, or ``vector`` is not in its space.
        """
        space = self.action_space
        if space is None:
            raise ConfigError(
                f"Env {self.name!r} has no continuous action space: expected a discrete action "
                f"(an index or a text), but got the vector {list(np.ravel(vector))!r}."
            )
        v = space.check(vector, f"Env {self.name!r}")
        pool = [a for a in self.actions(state) if a.vector is not None and len(a.vector) == len(v)]
        if not pool:
            raise ConfigError(f"Env {self.name!r} offers no vector actions in this state.")
        dists = [float(np.sum((np.asarray(a.vector) - v) ** 2)) for a in pool]
        return pool[int(np.argmin(dists))]

    def resolve_action(self, state: State, action: Action | int | str) -> Action:
        """Turns an index or text into the :class:`Action` available in ``state``.

        Raises:
            UnknownNameError: the index or text names no action of this env in this state.
        """
        available = self.actions(state)
        if isinstance(action, Action):
            key: int = action.index
        elif isinstance(action, (int, np.integer)) and not isinstance(action, bool):
            key = int(action)
        elif isinstance(action, str):
            wanted = " ".join(action.lower().split())
            for candidate in available:
                if candidate.text == wanted:
                    return candidate
            texts = [a.text for a in available]
            raise UnknownNameError(
                f"Unknown action {action!r} for env {self.name!r} in this state."
                f"{did_you_mean(wanted, texts)} Available: {', '.join(texts[:12])}"
                f"{', ...' if len(texts) > 12 else ''}."
            )
        else:
            raise UnknownNameError(
                f"Expected an Action, an int index or a text for env {self.name!r}, "
                f"but got {type(action).__name__}."
            )
        for candidate in available:
            if candidate.index == key:
                return candidate
        if not 0 <= key < self.num_actions:
            raise UnknownNameError(
                f"Expected an action index in [0, {self.num_actions}) for env {self.name!r}, "
                f"but got {key}."
            )
        return self._unavailable_action(state, key)

    def _unavailable_action(self, state: State, index: int) -> Action:
        """The action for a valid index that is not available now (e.g. its entity is absent).

        Such an action is a no-op; envs may override to give it a better text.
        """
        return Action(index=index, text="wait", kind="wait")

    def random_action(self, state: State, rng: np.random.Generator) -> Action:
        """A uniformly random available action, drawn from ``rng``."""
        available = self.actions(state)
        return available[int(rng.integers(len(available)))]

    # ----------------------------------------------------------------------------------- pixels
    @abstractmethod
    def render(self, state: State) -> np.ndarray:
        """Renders ``state`` as uint8 [H, W, 3] with H = W = resolution."""

    def render_batch(self, states: Sequence[State]) -> np.ndarray:
        """Renders several states as uint8 [B, H, W, 3]. Envs override this with a vectorised path."""
        out = np.empty((len(states), self.resolution, self.resolution, 3), dtype=np.uint8)
        for i, s in enumerate(states):
            out[i] = self.render(s)
        return out

    @abstractmethod
    def observe(self, state: State) -> Observation:
        """The observable truth of ``state``: ``positions`` float [K,2], ``present`` bool [K], ..."""

    @abstractmethod
    def perceive(self, frame: np.ndarray) -> Observation:
        """Recovers ``observe``'s keys from a uint8 [H,W,3] frame alone.

        Exact on frames from :meth:`render`; on generated frames it degrades gracefully
        (nearest-colour matching with a tolerance): absent or unrecognisable entities come back
        with ``present=False`` and NaN positions, never an exception.
        """

    def perceive_batch(self, frames: np.ndarray) -> list[Observation]:
        """Applies :meth:`perceive` to uint8 [B,H,W,3] frames."""
        return [self.perceive(f) for f in frames]

    def _check_frame(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        expected = (self.resolution, self.resolution, 3)
        if frame.shape != expected or frame.dtype != np.uint8:
            raise ConfigError(
                f"Expected a uint8 frame of shape {expected} for env {self.name!r}, but got "
                f"{frame.dtype} {tuple(frame.shape)}."
            )
        return frame

    def outcome(self, state: State) -> tuple[float, bool] | None:
        """(reward of the step that led to ``state``, whether the episode is over) for envs
        with rewards (the Atari games); None for envs without (the default)."""
        return None

    # ----------------------------------------------------------------------------------- goals
    def goals(self) -> list[str]:
        """Names of the goals this env defines (empty for envs without goals)."""
        return []

    def goal_reached(self, state: State, goal: Any = None) -> bool:
        """Whether ``goal`` holds in the true ``state`` (planning envs only)."""
        raise NotImplementedError(f"Env {self.name!r} defines no goals.")

    def goal_distance(self, obs: Observation, goal: Any = None) -> float:
        """A non-negative distance from an observation to ``goal``; 0 exactly when it is reached.

        ``obs`` is an ``observe()`` or ``perceive()`` dict, so planners can score imagined frames.
        Entities that are absent or NaN in ``obs`` make the distance large but finite.
        """
        raise NotImplementedError(f"Env {self.name!r} defines no goals.")

    # ----------------------------------------------------------------------------------- planning
    def sensible_actions(self, frame: np.ndarray, actions: Sequence[Action]) -> list[Action] | None:
        """The actions among ``actions`` worth proposing in the scene ``frame`` shows (optional).

        A planning heuristic (the ``heuristic`` proposer) read from pixels alone through
        :meth:`perceive`, never from a true state: e.g. maze moves that do not walk into a wall.

        Args:
            frame: uint8 [H, W, 3], the current frame.
            actions: the actions available now.

        Returns:
            A sub-list of ``actions`` in their order (empty when perception found nothing
            usable), or None: this env has no heuristic (the default), so every action is one.
        """
        return None

    def goal_state(self, state: State, goal: Any = None) -> State | None:
        """A state where ``goal`` holds, close to ``state`` (optional; for goal images).

        None (the default): image-goal scoring finds one by greedy descent on the true goal
        distance (:func:`panbench.planning.scoring.goal_image`). Envs whose goal a few greedy
        steps cannot reach (PushT) place it directly.
        """
        return None

    def expert_action(self, obs: Observation, goal: Any = None) -> Action | None:
        """A scripted expert's action toward ``goal`` from an observation (optional).

        Read from ``obs`` alone (an ``observe()`` or ``perceive()`` dict), so the same expert
        acts in the true env and in a model's imagination (the ``policy_eval`` protocol's
        policies mix it with random actions). None: no move found, or (the default) this env
        has no scripted expert.
        """
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config.items())
        return f"{type(self).__name__}({args})"
