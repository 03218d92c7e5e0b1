"""A procedurally generated grid maze: walk the agent to the goal cell (a ground-truth planning env).

The board is ``size x size`` tiles; the outer ring is wall and the inside is carved per seed by a
randomised depth-first search that opens a tile only when it touches exactly one open tile, so the
open tiles form a tree (connected, hence always solvable, and without 2x2 open rooms). A fraction
``loops`` of the walls that separate two corridor tiles in a straight line is then opened, which
adds cycles so that shortest paths are a real choice. The agent moves one tile per action.

Entity slots (``observe``/``perceive``): 0 = agent, 1 = goal cell. Walls are full tiles, the goal
is a green tile and the agent a red dot smaller than a tile, so the agent standing on the goal
hides neither of them. ``perceive`` also reads the wall grid from the frame, so
:meth:`MazeEnv.goal_distance` can score imagined frames without the true maze.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from panbench.envs._grid import TileSheet, check_seed, paint, tile_size
from panbench.envs.base import Action, Env, Observation, VectorSpace
from panbench.errors import ConfigError, UnknownNameError
from panbench.registry import did_you_mean

#: (name, d_row, d_col) of action index 0..3
MOVES: tuple[tuple[str, int, int], ...] = (
    ("north", -1, 0),
    ("south", 1, 0),
    ("east", 0, 1),
    ("west", 0, -1),
)

#: the vector form of the moves: (dx, dy), each in [-1, 1]
_MOVE_SPACE = VectorSpace(low=(-1.0, -1.0), high=(1.0, 1.0))

#: the only goal of the maze
REACH_GOAL = "reach-goal"

# Tile labels of the sheet; FLOOR and WALL equal the bytes stored in MazeState.walls.
FLOOR, WALL, GOAL, AGENT, AGENT_ON_GOAL = range(5)

FLOOR_RGB = (236, 236, 228)
WALL_RGB = (44, 48, 66)
GOAL_RGB = (56, 184, 92)
AGENT_RGB = (222, 60, 48)


@dataclass(frozen=True)
class MazeState:
    """An immutable maze state.

    Attributes:
        size: tiles per side of the board.
        walls: ``size * size`` bytes in row-major order, 1 for a wall tile and 0 for floor.
        agent: (row, col) tile of the agent.
        goal: (row, col) tile of the goal.
    """

    size: int
    walls: bytes
    agent: tuple[int, int]
    goal: tuple[int, int]

    @property
    def wall_grid(self) -> np.ndarray:
        """Read-only bool [size, size], True on wall tiles."""
        return np.frombuffer(self.walls, dtype=np.bool_).reshape(self.size, self.size)


@lru_cache(maxsize=4096)
def _distances_from(walls: bytes, size: int, source: tuple[int, int]) -> np.ndarray:
    """BFS distances (in moves) from ``source`` over the floor tiles; -1 where unreachable.

    Cached because planners score many frames of the same maze against the same goal.

    Returns:
        read-only int64 [size, size].
    """
    grid = np.frombuffer(walls, dtype=np.bool_).reshape(size, size)
    dist = np.full((size, size), -1, dtype=np.int64)
    dist[source] = 0
    queue = deque([source])
    while queue:
        r, c = queue.popleft()
        for _, dr, dc in MOVES:
            nr, nc = r + dr, c + dc
            if 0 <= nr < size and 0 <= nc < size and not grid[nr, nc] and dist[nr, nc] < 0:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    dist.setflags(write=False)
    return dist


def _carve(rng: np.random.Generator, size: int, loops: float) -> np.ndarray:
    """Generates the wall grid bool [size, size] (True = wall) of one maze."""
    is_open = np.zeros((size, size), dtype=bool)

    def open_neighbours(r: int, c: int) -> int:
        return (
            int(is_open[r - 1, c])
            + int(is_open[r + 1, c])
            + int(is_open[r, c - 1])
            + int(is_open[r, c + 1])
        )

    start = (int(rng.integers(1, size - 1)), int(rng.integers(1, size - 1)))
    is_open[start] = True
    stack = [start]
    while stack:
        r, c = stack[-1]
        options = [
            (r + dr, c + dc)
            for _, dr, dc in MOVES
            if 1 <= r + dr < size - 1
            and 1 <= c + dc < size - 1
            and not is_open[r + dr, c + dc]
            and open_neighbours(r + dr, c + dc) == 1
        ]
        if options:
            nxt = options[int(rng.integers(len(options)))]
            is_open[nxt] = True
            stack.append(nxt)
        else:
            stack.pop()
    if loops > 0:
        for r in range(1, size - 1):
            for c in range(1, size - 1):
                if is_open[r, c]:
                    continue
                vertical = is_open[r - 1, c] and is_open[r + 1, c]
                horizontal = is_open[r, c - 1] and is_open[r, c + 1]
                # Only a wall between two corridor ends opens (one axis open, the other closed):
                # that joins corridors without ever making a 2x2 open room.
                if vertical != horizontal and open_neighbours(r, c) == 2 and rng.random() < loops:
                    is_open[r, c] = True
    return ~is_open


class MazeEnv(Env):
    """A grid maze with an agent and a goal tile; always solvable.

    Actions (index: text): 0 ``"move north"``, 1 ``"move south"``, 2 ``"move east"``,
    3 ``"move west"``. Moving into a wall is a no-op. ``vector`` is the move as (dx, dy).

    Observation keys (``observe`` and ``perceive``):
        positions: float64 [2,2], (x, y) pixel centres of the agent (slot 0) and goal (slot 1).
        present: bool [2].
        cells: int64 [2,2], (row, col) tiles of agent and goal; (-1, -1) when absent.
        walls: bool [size, size], True on wall tiles.

    Goal: ``"reach-goal"`` (the only one; ``goal`` may be omitted), reached when the agent stands
    on the goal tile. :meth:`goal_distance` is the shortest-path length in moves from the agent
    to the goal through the observation's own walls.

    Args:
        resolution: frame side in pixels; a multiple of ``size`` with tiles of at least 4 px.
        size: tiles per side, outer wall ring included (default 8: 4/8/16 px tiles at 32/64/128).
        loops: probability of opening each wall that separates two corridor ends (adds cycles).
    """

    name: ClassVar[str] = "maze"
    description: ClassVar[str] = "Grid maze: walk the agent (red dot) to the goal tile (green)."
    version: ClassVar[str] = "1"

    def __init__(self, resolution: int = 64, size: int = 8, loops: float = 0.15) -> None:
        super().__init__(resolution)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 5 <= size <= 64:
            raise ConfigError(f"Expected maze size to be an integer in [5, 64], but got {size!r}.")
        if isinstance(loops, bool) or not isinstance(loops, (int, float)) or not 0 <= loops <= 1:
            raise ConfigError(f"Expected loops to be a number in [0, 1], but got {loops!r}.")
        self.size = int(size)
        self.loops = float(loops)
        self._record_config(size=self.size, loops=self.loops)
        t = tile_size(self.resolution, self.size, self.name)
        tiles = [
            paint(FLOOR_RGB, [], t),
            paint(WALL_RGB, [], t),
            paint(GOAL_RGB, [], t),
            paint(FLOOR_RGB, [("dot", AGENT_RGB)], t),
            paint(GOAL_RGB, [("dot", AGENT_RGB)], t),
        ]
        self.sheet = TileSheet(np.stack(tiles), self.size)
        self.num_entities = 2
        self._actions = tuple(
            Action(index=i, text=f"move {name}", vector=(float(dc), float(dr)))
            for i, (name, dr, dc) in enumerate(MOVES)
        )

    # ----------------------------------------------------------------------------------- dynamics
    def reset(self, seed: int) -> MazeState:
        seed = check_seed(seed, self.name)
        rng = np.random.default_rng(seed)
        walls = _carve(rng, self.size, self.loops)
        wall_bytes = walls.astype(np.uint8).tobytes()
        floor = np.argwhere(~walls)
        agent = tuple(int(v) for v in floor[int(rng.integers(len(floor)))])
        dist = _distances_from(wall_bytes, self.size, agent)
        # A goal at least half the longest shortest path away: never reached at reset, never trivial.
        far = np.argwhere(dist >= max(1, int(dist.max()) // 2))
        goal = tuple(int(v) for v in far[int(rng.integers(len(far)))])
        return MazeState(size=self.size, walls=wall_bytes, agent=agent, goal=goal)  # type: ignore[arg-type]

    @property
    def num_actions(self) -> int:
        return len(MOVES)

    @property
    def action_space(self) -> VectorSpace:
        """The moves' vector form: (dx, dy) in [-1, 1]^2; a vector commands the nearest move
        (:meth:`Env.vector_action`), so continuous-action models can run maze tasks."""
        return _MOVE_SPACE

    def actions(self, state: MazeState) -> list[Action]:
        return list(self._actions)

    def _step(self, state: MazeState, action: Action) -> MazeState:
        _, dr, dc = MOVES[action.index]
        r, c = state.agent[0] + dr, state.agent[1] + dc
        # The outer ring is wall, so an in-maze agent never indexes outside the grid.
        if state.wall_grid[r, c]:
            return state
        return replace(state, agent=(r, c))

    def shortest_path(self, state: MazeState) -> list[Action]:
        """An optimal action sequence from the agent to the goal (BFS; ties go north, south, east, west).

        Returns:
            the actions, empty when the agent is already on the goal.
        """
        dist = _distances_from(state.walls, state.size, state.goal)
        r, c = state.agent
        if dist[r, c] < 0:
            return []
        path: list[Action] = []
        while dist[r, c] > 0:
            for action, (_, dr, dc) in zip(self._actions, MOVES, strict=True):
                if dist[r + dr, c + dc] == dist[r, c] - 1 and not state.wall_grid[r + dr, c + dc]:
                    path.append(action)
                    r, c = r + dr, c + dc
                    break
        return path

    # ----------------------------------------------------------------------------------- pixels
    def render(self, state: MazeState) -> np.ndarray:
        return self.render_batch([state])[0]

    def render_batch(self, states: Sequence[MazeState]) -> np.ndarray:
        """Renders states as uint8 [B,H,W,3] in one gather over the tile sheet."""
        b, s = len(states), self.size
        labels = np.frombuffer(b"".join(st.walls for st in states), dtype=np.uint8)
        labels = labels.reshape(b, s, s).copy()
        if b:
            agent = np.array([st.agent for st in states])
            goal = np.array([st.goal for st in states])
            rows = np.arange(b)
            labels[rows, goal[:, 0], goal[:, 1]] = GOAL
            on_goal = (agent == goal).all(1)
            labels[rows, agent[:, 0], agent[:, 1]] = np.where(on_goal, AGENT_ON_GOAL, AGENT)
        return self.sheet.render(labels)

    def observe(self, state: MazeState) -> Observation:
        cells = np.array([state.agent, state.goal], dtype=np.int64)
        return {
            "positions": self.sheet.centres(cells),
            "present": np.ones(2, dtype=bool),
            "cells": cells,
            "walls": state.wall_grid.copy(),
        }

    def perceive(self, frame: np.ndarray) -> Observation:
        labels, sse = self.sheet.match(self._check_frame(frame))
        found = [
            self.sheet.best_cell(labels, sse, (AGENT, AGENT_ON_GOAL)),
            self.sheet.best_cell(labels, sse, (GOAL, AGENT_ON_GOAL)),
        ]
        present = np.array([f is not None for f in found])
        cells = np.array([f if f is not None else (-1, -1) for f in found], dtype=np.int64)
        positions = self.sheet.centres(cells)
        positions[~present] = np.nan
        return {"positions": positions, "present": present, "cells": cells, "walls": labels == WALL}

    # ----------------------------------------------------------------------------------- goals
    def goals(self) -> list[str]:
        return [REACH_GOAL]

    def _check_goal(self, goal: Any) -> None:
        if goal is not None and goal != REACH_GOAL:
            raise UnknownNameError(
                f"Unknown goal {goal!r}.{did_you_mean(str(goal), self.goals())} "
                f"Goals of env {self.name!r}: {REACH_GOAL} (or None)."
            )

    def goal_reached(self, state: MazeState, goal: Any = None) -> bool:
        """Whether the agent stands on the goal tile (``goal``: None or ``"reach-goal"``)."""
        self._check_goal(goal)
        return state.agent == state.goal

    def goal_distance(self, obs: Observation, goal: Any = None) -> float:
        """Shortest-path length in moves from the observed agent to the observed goal.

        The path runs through ``obs["walls"]`` (the agent's and goal's own tiles count as floor,
        whatever the walls say). An absent agent or goal, or one that no path reaches, gives
        ``size * size``, more than any path is long.

        Args:
            obs: an ``observe()`` or ``perceive()`` dict (``positions``, ``present``, ``walls``).
            goal: None or ``"reach-goal"``.
        """
        self._check_goal(goal)
        unreachable = float(self.size * self.size)
        walls = np.asarray(obs["walls"], dtype=bool)
        if walls.shape != (self.size, self.size):
            raise ConfigError(
                f"Expected obs['walls'] of shape {(self.size, self.size)} for env {self.name!r}, "
                f"but got {walls.shape}."
            )
        cells, valid = self.sheet.cells_of(obs["positions"])
        present = np.asarray(obs["present"], dtype=bool).reshape(-1) & valid
        if len(present) != 2 or not present.all():
            return unreachable
        agent, goal_cell = (
            (int(cells[0, 0]), int(cells[0, 1])),
            (int(cells[1, 0]), int(cells[1, 1])),
        )
        walls = walls.copy()
        walls[agent] = walls[goal_cell] = False
        dist = _distances_from(walls.tobytes(), self.size, goal_cell)[agent]
        return float(dist) if dist >= 0 else unreachable

    def expert_action(self, obs: Observation, goal: Any = None) -> Action | None:
        """The first move of a shortest path through ``obs``'s walls (ties: north, south, east,
        west); None when the agent or goal is not seen or no path joins them."""
        self._check_goal(goal)
        cells, valid = self.sheet.cells_of(obs["positions"])
        if not (np.asarray(obs["present"], dtype=bool).reshape(-1) & valid).all():
            return None
        agent = (int(cells[0, 0]), int(cells[0, 1]))
        goal_cell = (int(cells[1, 0]), int(cells[1, 1]))
        walls = np.asarray(obs["walls"], dtype=bool).copy()
        walls[agent] = walls[goal_cell] = False
        dist = _distances_from(walls.tobytes(), self.size, goal_cell)
        here = dist[agent]
        if here <= 0:
            return None
        for action, (_, dr, dc) in zip(self._actions, MOVES, strict=True):
            r, c = agent[0] + dr, agent[1] + dc
            if 0 <= r < self.size and 0 <= c < self.size and dist[r, c] == here - 1:
                return action
        return None

    # ----------------------------------------------------------------------------------- planning
    def sensible_actions(self, frame: np.ndarray, actions: Sequence[Action]) -> list[Action] | None:
        """Moves whose target tile is floor in the perceived frame (no walking into walls)."""
        obs = self.perceive(frame)
        if not obs["present"][0]:
            return []
        r, c = (int(v) for v in obs["cells"][0])
        walls = obs["walls"]
        out = []
        for action in actions:
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
