"""Proposers: where propose-simulate-select gets its candidate actions.

A proposer looks at the :class:`~panbench.planning.base.Situation` (the true current frame,
the available actions, the goal in words) and offers up to ``m`` distinct candidate actions.
It never sees the true state: heuristics read the frame through the env's pixel perception,
and a language-model proposer would read the frame, the goal text and the action texts.

Built in: ``random`` (uniform over the available actions) and ``heuristic`` (per env: maze moves
that do not walk into a wall, blocks pushes that can move their block; other envs fall back to
all actions). Third-party proposers register under the ``panbench.proposers`` entry-point group
or with ``PROPOSERS.register(name, cls)``; a proposer class takes ``env`` and its options as
keyword arguments.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from panbench.envs.base import Action, Env
from panbench.errors import ConfigError
from panbench.planning.base import Situation
from panbench.registry import Registry

__all__ = [
    "HEURISTICS",
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


def _maze_moves(env: Any, situation: Situation) -> list[Action]:
    """Moves whose target tile is floor in the perceived frame (no walking into walls)."""
    from panbench.envs.maze import MOVES

    obs = env.perceive(situation.frame)
    if not obs["present"][0]:
        return []
    r, c = (int(v) for v in obs["cells"][0])
    walls = obs["walls"]
    out = []
    for action in situation.actions:
        if action.index >= len(MOVES):
            continue
        _, dr, dc = MOVES[action.index]
        if (
            0 <= r + dr < walls.shape[0]
            and 0 <= c + dc < walls.shape[1]
            and not walls[r + dr, c + dc]
        ):
            out.append(action)
    return out


def _blocks_pushes(env: Any, situation: Situation) -> list[Action]:
    """Block pushes that move their block in the perceived frame (target cell free, on the table)."""
    from panbench.envs.blocks import DIRECTIONS

    obs = env.perceive(situation.frame)
    cells = obs["cells"]
    present = obs["present"]
    occupied = {(int(r), int(c)) for (r, c), p in zip(cells[1:], present[1:], strict=True) if p}
    out = []
    for action in situation.actions:
        if action.index < 4:
            continue
        block, d = divmod(action.index - 4, 4)
        if block + 1 >= len(present) or not present[block + 1]:
            continue
        _, dr, dc = DIRECTIONS[d]
        r, c = int(cells[block + 1][0]) + dr, int(cells[block + 1][1]) + dc
        if 0 <= r < env.size and 0 <= c < env.size and (r, c) not in occupied:
            out.append(action)
    return out


#: per env name, the sensible actions in a situation (read from its frame by perception)
HEURISTICS: dict[str, Callable[[Any, Situation], list[Action]]] = {
    "maze": _maze_moves,
    "blocks": _blocks_pushes,
}


class HeuristicProposer(Proposer):
    """Random distinct actions among the env's sensible ones (see :data:`HEURISTICS`).

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
        rule = HEURISTICS.get(self.env.name)
        if rule is None:
            return _sample(list(situation.actions), rng, m)
        key = situation.frame.tobytes() + repr([a.index for a in situation.actions]).encode()
        pool = self._pools.get(key)
        if pool is None:
            if len(self._pools) >= self.cache_size:
                self._pools.clear()
            pool = self._pools[key] = rule(self.env, situation)
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
