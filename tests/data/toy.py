"""A tiny deterministic env and file helpers shared by the data tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from panbench.envs import Action, Env, Observation

TOY_ENV = "toy-dot"
_MOVES = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}


@dataclass(frozen=True)
class DotState:
    x: int
    y: int
    colour: int
    steps: int


class ToyDotEnv(Env):
    """One coloured 4x4 dot on a grid of 8 px cells; actions move it or recolour it."""

    name = "toy-dot"
    description = "a dot that moves on a grid (test fixture)"
    version = "1"
    num_entities = 1
    _COLOURS = ((255, 0, 0), (0, 200, 0), (0, 0, 255))
    _COLOUR_NAMES = ("red", "green", "blue")

    def __init__(self, resolution: int = 32, grid: int = 4) -> None:
        super().__init__(resolution)
        self.grid = grid
        self._record_config(grid=grid)

    def reset(self, seed: int) -> DotState:
        rng = np.random.default_rng(seed)
        x, y = (int(v) for v in rng.integers(0, self.grid, size=2))
        return DotState(x, y, int(rng.integers(3)), 0)

    @property
    def num_actions(self) -> int:
        return 5

    def actions(self, state: DotState) -> list[Action]:
        name = self._COLOUR_NAMES[state.colour]
        out = [
            Action(i, f"move the {name} dot {d}", "agent", vector=(float(dx), float(dy)))
            for i, (d, (dx, dy)) in enumerate(_MOVES.items())
        ]
        out.append(Action(4, f"recolour the {name} dot", "intervention"))
        return out

    def _step(self, state: DotState, action: Action) -> DotState:
        if action.index == 4:
            return DotState(state.x, state.y, (state.colour + 1) % 3, state.steps + 1)
        dx, dy = list(_MOVES.values())[action.index]
        x = min(max(state.x + dx, 0), self.grid - 1)
        y = min(max(state.y + dy, 0), self.grid - 1)
        return DotState(x, y, state.colour, state.steps + 1)

    def _cell(self) -> int:
        return self.resolution // self.grid

    def render(self, state: DotState) -> np.ndarray:
        frame = np.full((self.resolution, self.resolution, 3), 30, dtype=np.uint8)
        c = self._cell()
        frame[state.y * c : state.y * c + 4, state.x * c : state.x * c + 4] = self._COLOURS[
            state.colour
        ]
        return frame

    def observe(self, state: DotState) -> Observation:
        c = self._cell()
        pos = np.array([[state.x * c + 1.5, state.y * c + 1.5]], dtype=np.float64)
        return {
            "positions": pos,
            "present": np.array([True]),
            "colour": np.array([state.colour], dtype=np.int64),
        }

    def perceive(self, frame: np.ndarray) -> Observation:
        raise NotImplementedError


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def siblings(path: Path) -> list[str]:
    """Names in ``path``'s parent that start with ``path``'s name (catches leftover tmp dirs)."""
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))
