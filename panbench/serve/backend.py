"""What a served model implements: :class:`Backend`, numpy in and out, no panbench types.

``panbench serve`` wraps any registered panbench adapter in one (:mod:`panbench.serve.adapter`);
a model living in its own environment subclasses :class:`Backend` directly and passes it to
:func:`panbench.serve.server.serve` (see ``examples/remote-model-example``). This module needs
numpy and the standard library only.

Actions arrive as plain dicts, one per rollout, with the fields of ``panbench.envs.base.Action``:
``index`` (discrete id, -1 for text-only actions), ``text``, ``kind`` and, where the env has
continuous controls, ``vector`` (a list of floats).
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ACTION_SPACES", "Backend", "StateStore", "UnknownStateError"]

#: the values ``spec()["action_space"]`` may take (those of ``panbench.models.api.ActionSpace``)
ACTION_SPACES = ("text", "discrete", "continuous", "none")


class Backend(ABC):
    """A world model as the server sees it.

    Subclasses implement :meth:`spec`, :meth:`reset` and :meth:`step`; :meth:`clone` defaults to
    a deep copy, :meth:`info` and :meth:`for_task` to nothing; a model that predicts rewards
    (``predicts_rewards`` in its spec) implements :meth:`outcomes`.
    """

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """The model's ModelSpec as a dict: ``name``, ``action_space`` (one of
        :data:`ACTION_SPACES`), ``resolution`` (int or None), ``context_frames`` (int or None),
        ``frames_per_step`` (int)."""

    def info(self) -> dict[str, Any]:
        """What results record about the served model: ``version``, ``checkpoint_sha256`` and
        any other JSON fields (the adapter's ``describe()``)."""
        return {}

    @abstractmethod
    def reset(
        self, frames: np.ndarray, actions: Sequence[Sequence[dict[str, Any]]], seeds: Sequence[int]
    ) -> Any:
        """Starts B rollouts from context frames uint8 [B,T,H,W,3], the T-1 actions between them
        per rollout, and a seed per rollout; returns the model's state (kept on the server)."""

    @abstractmethod
    def step(self, state: Any, actions: Sequence[dict[str, Any]]) -> tuple[Any, np.ndarray]:
        """Advances every rollout by its action; returns the new state and frames uint8
        [B,k,H,W,3]. Must not change ``state``: the client may step or clone it again."""

    def clone(self, state: Any) -> Any:
        """An independent copy of ``state`` (a branch of the rollouts)."""
        return copy.deepcopy(state)

    def outcomes(self, state: Any) -> tuple[np.ndarray, np.ndarray]:
        """The reward (float [B]) and terminal flag (bool [B]) the model predicts for the step
        that made ``state``; only asked of models whose spec says ``predicts_rewards``."""
        raise NotImplementedError("this model does not predict rewards")

    def for_task(self, task: str) -> dict[str, Any]:
        """Per-task settings before a task's episodes (see ``WorldModel.for_task``)."""
        return {}


class UnknownStateError(LookupError):
    """A state id the server does not hold (released, or from before a restart)."""


class StateStore:
    """Model states under opaque ids; ids from another server run are never valid here.

    Args:
        max_states: states held at most at once; beyond that :meth:`put` refuses (a client that
            never releases its states would otherwise fill the server's memory).
    """

    def __init__(self, max_states: int = 100_000) -> None:
        self.max_states = max_states
        self._nonce = secrets.token_hex(6)
        self._ids = itertools.count()
        self._states: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._states)

    def put(self, state: Any) -> str:
        with self._lock:
            if len(self._states) >= self.max_states:
                raise MemoryError(
                    f"the server holds {len(self._states)} states, its limit (--max-states); "
                    "the client does not release the states it is done with"
                )
            key = f"{self._nonce}-{next(self._ids)}"
            self._states[key] = state
        return key

    def get(self, key: Any) -> Any:
        try:
            return self._states[key]
        except (KeyError, TypeError):
            raise UnknownStateError(
                f"unknown state id {key!r} (released, or made before this server started)"
            ) from None

    def release(self, keys: Sequence[Any]) -> None:
        with self._lock:
            for key in keys:
                if isinstance(key, str):
                    self._states.pop(key, None)
