"""Proposers: where propose-simulate-select gets its candidate actions.

A proposer looks at the :class:`~panbench.planning.base.Situation` (the true current frame,
the available actions, the goal in words) and offers up to ``m`` distinct candidate actions.
It never sees the true state: heuristics read the frame through the env's pixel perception,
and a language-model proposer would read the frame, the goal text and the action texts.

Built in: ``random`` (uniform over the available actions) and ``heuristic`` (the env's own
:meth:`~panbench.envs.base.Env.sensible_actions`: maze moves that do not walk into a wall, blocks
pushes that can move their block; envs without one fall back to all actions). Third-party proposers register under the ``panbench.proposers`` entry-point group
or with ``PROPOSERS.register(name, cls)``; a proposer class takes ``env`` and its options as
keyword arguments.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from panbench.envs.base import Action, Env
from panbench.errors import ConfigError
from panbench.planning.base import Situation
from panbench.registry import Registry

__all__ = [
    "PROPOSERS",
    "HeuristicProposer",
    "Proposer",
    "RandomProposer",
    "make_proposer",
]


class Proposer(ABC):
    """Offers candidate actions.

    Args:
        env: the task's env (for pixel perception; proposers must not read true states).
    """

    name: ClassVar[str]

    def __init__(self, env: Env) -> None:
        self.env = env

    @abstractmethod
    def propose(self, situation: Situation, rng: np.random.Generator, m: int) -> list[Action]:
        """Up to ``m`` distinct candidate actions (at least one), drawn with ``rng``."""


def _sample(pool: list[Action], rng: np.random.Generator, m: int) -> list[Action]:
    """``m`` distinct actions of ``pool`` uniformly at random (all of them, shuffled, if fewer)."""
    if m < 1:
        raise ConfigError(f"Expected at least 1 candidate per step, but got {m}.")
    pick = rng.permutation(len(pool))[:m]
    return [pool[int(i)] for i in pick]


class RandomProposer(Proposer):
    """Uniformly random distinct actions among the available ones."""

    name: ClassVar[str] = "random"

    def propose(self, situation: Situation, rng: np.random.Generator, m: int) -> list[Action]:
        return _sample(list(situation.actions), rng, m)


class HeuristicProposer(Proposer):
    """Random distinct actions among the env's sensible ones (:meth:`Env.sensible_actions`).

    Falls back to all available actions when the env has no heuristic or the heuristic finds
    nothing (e.g. perception failed on the frame).
    """

    name: ClassVar[str] = "heuristic"

    #: distinct (frame, actions) situations remembered; random walks revisit many
    cache_size: ClassVar[int] = 4096

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self._pools: dict[bytes, list[Action]] = {}

    def propose(self, situation: Situation, rng: np.random.Generator, m: int) -> list[Action]:
        key = situation.frame.tobytes() + repr([a.index for a in situation.actions]).encode()
        pool = self._pools.get(key)
        if pool is None:
            pool = self.env.sensible_actions(situation.frame, situation.actions)
            if pool is None:  # the env has no heuristic: nothing worth remembering
                return _sample(list(situation.actions), rng, m)
            if len(self._pools) >= self.cache_size:
                self._pools.clear()
            self._pools[key] = pool
        return _sample(pool or list(situation.actions), rng, m)


PROPOSERS: Registry[type[Proposer]] = Registry("proposer", entry_point_group="panbench.proposers")
PROPOSERS.register("random", RandomProposer)
PROPOSERS.register("heuristic", HeuristicProposer)


def make_proposer(name: str, env: Env, **options: Any) -> Proposer:
    """Builds the proposer registered as ``name`` for ``env``.

    Raises:
        UnknownNameError: no such proposer (with close matches).
        ConfigError: its options are wrong.
    """
    cls = PROPOSERS.get(name)
    try:
        return cls(env=env, **options)
    except TypeError as err:
        raise ConfigError(f"Proposer {name!r}: bad options {options}: {err}.") from err
