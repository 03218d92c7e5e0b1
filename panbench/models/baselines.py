"""Built-in baselines: ``oracle`` (upper bound), ``copy-last`` and ``random-action`` (floors).

On recorded data (no simulator) ``random-action`` plays back the true future of another
recording from the same context: real motion, but not the commanded one.

``oracle`` and ``random-action`` are privileged: they read the true simulator from the context.
``oracle`` renders the true future, so it scores perfectly on every grounded metric;
``random-action`` runs the true simulator under random actions, so it scores what a model gets
while ignoring the commanded action; ``copy-last`` repeats the last context frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from panbench.data.frames import resize_frames
from panbench.envs.base import Action, Env
from panbench.errors import ConfigError, ContractError
from panbench.models.api import ActionSpace, Context, ModelSpec, WorldModel


@dataclass
class _SimState:
    env: Env
    states: list[Any]
    rngs: list[np.random.Generator] | None = None


def _require_truth(context: Context, name: str) -> tuple[Env, list[Any]]:
    if context.env is None or context.states is None:
        raise ContractError(
            f"Model {name!r} needs the true simulator, but the context carries none "
            "(this task has no ground-truth env, e.g. imported videos)."
        )
    return context.env, list(context.states)


@dataclass(frozen=True)
class _Playback:
    """``random-action`` on recorded data: another recording's true future, frame by frame
    (the last context frame where a task has no other recording)."""

    futures: tuple[np.ndarray | None, ...]
    last: np.ndarray
    t: int = 0

    @classmethod
    def start(cls, context: Context) -> _Playback:
        assert context.playback is not None
        return cls(tuple(context.playback), np.ascontiguousarray(context.frames[:, -1]))

    def advance(self) -> tuple[_Playback, np.ndarray]:
        frames = []
        for i, future in enumerate(self.futures):
            ok = (
                future is not None
                and self.t < len(future)
                and future.shape[1:] == self.last.shape[1:]
            )
            frames.append(future[self.t] if ok else self.last[i])  # type: ignore[index]
        return _Playback(self.futures, self.last, self.t + 1), np.stack(frames)[:, None]


class OracleModel(WorldModel):
    """Renders the true future with the true simulator: the upper bound on every metric.

    Args:
        resolution: None (default): frames at the task's side. A side ``S``: the true frames
            squashed to ``S x S`` (antialiased, as the harness resizes frames for a model of
            that resolution), which the harness then resizes back to the task's side. Its
            scores are the ceiling of any model that works at side ``S``: what survives the
            round trip, e.g. whether a Pong paddle is still found in frames of 32 pixels.
    """

    def __init__(self, resolution: int | None = None) -> None:
        if resolution is not None and (
            isinstance(resolution, bool)
            or not isinstance(resolution, int | str)
            or not str(resolution).isdigit()
            or int(resolution) < 8
        ):
            raise ConfigError(
                "Model 'oracle': expected resolution to be a frame side in pixels (an integer "
                f">= 8), but got {resolution!r}."
            )
        self.resolution = None if resolution is None else int(resolution)
        self.spec = ModelSpec(
            name="oracle",
            action_space=ActionSpace.DISCRETE,
            privileged=True,
            predicts_rewards=True,
            resolution=self.resolution,
        )

    def reset(self, context: Context) -> _SimState:
        env, states = _require_truth(context, self.spec.name)
        return _SimState(env, states)

    def step(self, state: _SimState, actions: Sequence[Action]) -> tuple[_SimState, np.ndarray]:
        new = [state.env.step(s, a) for s, a in zip(state.states, actions, strict=True)]
        frames = state.env.render_batch(new)[:, None]
        if self.resolution is not None:
            frames = resize_frames(frames, self.resolution, mode="squash")
        return _SimState(state.env, new), frames

    def outcomes(self, state: _SimState) -> tuple[np.ndarray, np.ndarray]:
        """The true reward and terminal flag of the last step (envs with rewards only)."""
        found = [state.env.outcome(s) for s in state.states]
        if any(o is None for o in found):
            raise ContractError(
                f"Model 'oracle' predicts rewards from the simulator, but env "
                f"{state.env.name!r} has none (expected an env whose outcome() gives them)."
            )
        rewards = np.array([o[0] for o in found if o is not None], dtype=np.float64)
        return rewards, np.array([o[1] for o in found if o is not None], dtype=bool)

    def clone(self, state: _SimState) -> _SimState:
        return _SimState(state.env, list(state.states))  # env states are immutable values

    def describe(self) -> dict[str, Any]:
        return {} if self.resolution is None else {"resolution": self.resolution}


class RandomActionModel(WorldModel):
    """The true simulator driven by random actions (seeded per episode): ignores the command.

    On recorded data (no simulator; ``Context.playback`` set) it plays back the true future of
    the window the task pairs with each episode: real motion, not the commanded one.

    Args:
        seed: offset mixed into each episode's seed, so several random baselines can differ.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.spec = ModelSpec(name="random-action", action_space=ActionSpace.NONE, privileged=True)

    def reset(self, context: Context) -> _SimState | _Playback:
        if context.env is None and context.playback is not None:
            return _Playback.start(context)
        env, states = _require_truth(context, self.spec.name)
        rngs = [np.random.default_rng([self.seed, int(s)]) for s in context.seeds]
        return _SimState(env, states, rngs)

    def step(
        self, state: _SimState | _Playback, actions: Sequence[Action]
    ) -> tuple[Any, np.ndarray]:
        if isinstance(state, _Playback):
            return state.advance()
        assert state.rngs is not None
        env = state.env
        new = [
            env.step(s, env.random_action(s, rng))
            for s, rng in zip(state.states, state.rngs, strict=True)
        ]
        return _SimState(env, new, state.rngs), env.render_batch(new)[:, None]

    def clone(self, state: _SimState | _Playback) -> _SimState | _Playback:
        if isinstance(state, _Playback):
            return state  # immutable: advance() returns a new value
        assert state.rngs is not None
        rngs = [np.random.Generator(type(r.bit_generator)()) for r in state.rngs]
        for dst, src in zip(rngs, state.rngs, strict=True):
            dst.bit_generator.state = src.bit_generator.state
        return _SimState(state.env, list(state.states), rngs)

    def describe(self) -> dict[str, Any]:
        return {"seed": self.seed}


class CopyLastModel(WorldModel):
    """Repeats the last context frame forever: what a model scores by predicting no change."""

    def __init__(self) -> None:
        self.spec = ModelSpec(name="copy-last", action_space=ActionSpace.NONE)

    def reset(self, context: Context) -> np.ndarray:
        return np.ascontiguousarray(context.frames[:, -1:])

    def step(self, state: np.ndarray, actions: Sequence[Action]) -> tuple[np.ndarray, np.ndarray]:
        return state, state.copy()

    def clone(self, state: np.ndarray) -> np.ndarray:
        return state
