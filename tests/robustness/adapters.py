"""Adapters that break the WorldModel contract in ways tests/models/adapters.py does not."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from panbench.envs.base import Action
from panbench.models.api import ActionSpace, Context, ModelSpec, WorldModel
from panbench.models.baselines import CopyLastModel


class _CopyLast(WorldModel):
    NAME = "robust"

    def __init__(self) -> None:
        self.spec = ModelSpec(name=self.NAME, action_space=ActionSpace.NONE, frames_per_step=1)
        self._inner = CopyLastModel()

    def reset(self, context: Context) -> Any:
        return self._inner.reset(context)

    def step(self, state: Any, actions: Sequence[Action]) -> Any:
        return self._inner.step(state, actions)


class RaisingModel(_CopyLast):
    """Raises a plain RuntimeError from step(), as a buggy adapter would."""

    NAME = "raising"

    def step(self, state: Any, actions: Sequence[Action]) -> Any:
        raise RuntimeError("CUDA out of memory (simulated)")


class RaisingResetModel(_CopyLast):
    """Raises ValueError from reset()."""

    NAME = "raising-reset"

    def reset(self, context: Context) -> Any:
        raise ValueError("cannot read context")


class HangingModel(_CopyLast):
    """Never returns from step() (sleeps far longer than any test timeout)."""

    NAME = "hanging"

    def step(self, state: Any, actions: Sequence[Action]) -> Any:
        time.sleep(600)
        return super().step(state, actions)


class NegativeFramesModel(_CopyLast):
    """Returns int64 frames with values outside 0..255."""

    NAME = "negative-frames"

    def step(self, state: Any, actions: Sequence[Action]) -> Any:
        state, frames = super().step(state, actions)
        return state, frames.astype(np.int64) - 300


class WrongBatchModel(_CopyLast):
    """Returns one rollout fewer than it was given."""

    NAME = "wrong-batch"

    def step(self, state: Any, actions: Sequence[Action]) -> Any:
        state, frames = super().step(state, actions)
        return state, frames[:-1]


class NoneFramesModel(_CopyLast):
    """Returns None for the frames."""

    NAME = "none-frames"

    def step(self, state: Any, actions: Sequence[Action]) -> Any:
        state, _ = super().step(state, actions)
        return state, None


#: environment variable read by :class:`SlowModel`: seconds each step sleeps
SLEEP_ENV = "PANBENCH_TEST_STEP_SLEEP"


class SlowModel(_CopyLast):
    """copy-last, but each step sleeps ``$PANBENCH_TEST_STEP_SLEEP`` seconds (default 0.1).

    A run long enough to be killed part way at random points; the sleep comes from the
    environment so it is no part of the run configuration a resume must match.
    """

    NAME = "slow-copy-last"

    def step(self, state: Any, actions: Sequence[Action]) -> Any:
        import os

        time.sleep(float(os.environ.get(SLEEP_ENV, "0.1")))
        return super().step(state, actions)
