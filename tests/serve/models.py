"""Test adapters served by ``panbench serve --model tests.serve.models:<Class>``.

``NoisyModel`` uses everything the wire carries (context frames, actions, per-episode seeds,
clones) and draws noise, so a served run matches an in-process one only if all of it travels
exactly. The others fail the way a real server does: dying mid-run, answering too slowly,
replying frames of the wrong shape.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from panbench.envs.base import Action
from panbench.models.api import ActionSpace, Context, ModelSpec, WorldModel

#: step calls after which ``DyingModel`` kills its own process (unset: never)
DIE_AFTER_ENV = "PANBENCH_TEST_DIE_AFTER"
#: seconds ``SlowModel`` sleeps in each step
SLEEP_ENV = "PANBENCH_TEST_SLEEP"


@dataclass
class _State:
    frames: np.ndarray  # uint8 [B,H,W,3], the last frame of each rollout
    rngs: list[np.random.Generator]


class NoisyModel(WorldModel):
    """Shifts the last frame by the action's index and adds seeded noise per rollout."""

    def __init__(self, amplitude: int = 8) -> None:
        self.amplitude = int(amplitude)
        self.spec = ModelSpec(name="noisy", action_space=ActionSpace.DISCRETE)

    def reset(self, context: Context) -> _State:
        past = [sum(a.index for a in acts) for acts in context.actions]
        rngs = [
            np.random.default_rng([int(s), p]) for s, p in zip(context.seeds, past, strict=True)
        ]
        return _State(np.ascontiguousarray(context.frames[:, -1]), rngs)

    def step(self, state: _State, actions: Sequence[Action]) -> tuple[_State, np.ndarray]:
        out = []
        rngs = self.clone(state).rngs
        for frame, action, rng in zip(state.frames, actions, rngs, strict=True):
            shifted = np.roll(frame, shift=action.index, axis=1).astype(np.int16)
            noise = rng.integers(-self.amplitude, self.amplitude + 1, frame.shape)
            out.append(np.clip(shifted + noise, 0, 255).astype(np.uint8))
        frames = np.stack(out)
        return _State(frames, rngs), frames[:, None]

    def clone(self, state: _State) -> _State:
        rngs = []
        for r in state.rngs:
            copy = np.random.Generator(type(r.bit_generator)())
            copy.bit_generator.state = r.bit_generator.state
            rngs.append(copy)
        return _State(state.frames.copy(), rngs)

    def describe(self) -> dict[str, Any]:
        return {"amplitude": self.amplitude, "checkpoint_sha256": "ab" * 32}


class DyingModel(NoisyModel):
    """``NoisyModel`` whose process exits abruptly after ``$PANBENCH_TEST_DIE_AFTER`` steps."""

    def __init__(self) -> None:
        super().__init__()
        budget = os.environ.get(DIE_AFTER_ENV)
        self.die_after = int(budget) if budget else None
        self.calls = 0

    def step(self, state: _State, actions: Sequence[Action]) -> tuple[_State, np.ndarray]:
        if self.die_after is not None and self.calls >= self.die_after:
            os._exit(1)  # a crash: no reply, no clean shutdown
        self.calls += 1
        return super().step(state, actions)


class SlowModel(NoisyModel):
    """``NoisyModel`` that sleeps ``$PANBENCH_TEST_SLEEP`` seconds in each step."""

    def step(self, state: _State, actions: Sequence[Action]) -> tuple[_State, np.ndarray]:
        time.sleep(float(os.environ.get(SLEEP_ENV, "0")))
        return super().step(state, actions)


class WrongShapeModel(NoisyModel):
    """Replies one frame too few per batch."""

    def step(self, state: _State, actions: Sequence[Action]) -> tuple[_State, np.ndarray]:
        new, frames = super().step(state, actions)
        return new, frames[1:]


class RewardModel(NoisyModel):
    """``NoisyModel`` that also predicts a reward (the last frame's mean brightness, on [0, 1],
    minus one half) and a terminal flag (the reward is positive) for each step."""

    def __init__(self) -> None:
        super().__init__()
        self.spec = ModelSpec(
            name="rewarding", action_space=ActionSpace.DISCRETE, predicts_rewards=True
        )

    def outcomes(self, state: _State) -> tuple[np.ndarray, np.ndarray]:
        rewards = state.frames.reshape(len(state.frames), -1).mean(axis=1) / 255.0 - 0.5
        return rewards, rewards > 0


class VectorModel(NoisyModel):
    """``NoisyModel`` over 2-D action vectors (shifts by the first component)."""

    def __init__(self) -> None:
        super().__init__()
        self.spec = ModelSpec(name="vector", action_space=ActionSpace.CONTINUOUS, action_dim=2)
