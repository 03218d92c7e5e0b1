"""A tabletop of coloured blocks and a pusher: arrange the blocks into goal patterns by pushing.

The table is a ``size x size`` grid of cells; every block and the pusher fill one cell each. Blocks
come from a fixed catalogue, so block ``i`` always has the same colour and shape and its slot is
recoverable from pixels alone; blocks of one colour differ in shape (square, diamond, ring), which
is what makes colour groups possible without ambiguity:

* 3 blocks: red square, red diamond, blue square (colour groups RR B);
* 4 blocks: + blue diamond (RR BB);
* 5 blocks: + green square (RR BB G);
* 6 blocks: + red ring (RRR BB G).

Dynamics. A push moves one block one cell; it happens when the cell beyond the block is on the
table and holds no block (else the action is a no-op), and it leaves the pusher on the cell the
block left, as if it had walked behind the block and pushed. There are two ways to push:

* pusher moves (indices 0-3, ``"move the pusher up|down|left|right"``): the pusher steps one cell;
  stepping into a block pushes that block the same way; stepping off the table is a no-op.
* block pushes (index ``4 + 4 * i + d``, ``"push the red square up"``): block ``i`` is pushed in
  direction ``d`` (0 up, 1 down, 2 left, 3 right) wherever the pusher stood. The walk round to the
  block is abstracted away so that every goal needs only as many actions as block-cells moved
  (a handful to ~20), which keeps planning horizons short.

Because a push never needs the cell behind a block, no block can be stuck against an edge or in a
corner, so every goal is reachable from every state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any, ClassVar

import numpy as np

from panbench.envs._grid import TileSheet, check_seed, paint, tile_size
from panbench.envs.base import Action, Env, Observation
from panbench.errors import ConfigError, UnknownNameError
from panbench.registry import did_you_mean

#: (name, d_row, d_col) of direction 0..3
DIRECTIONS: tuple[tuple[str, int, int], ...] = (
    ("up", -1, 0),
    ("down", 1, 0),
    ("left", 0, -1),
    ("right", 0, 1),
)

#: (colour, shape) of block 0..5; a table with n blocks uses the first n
CATALOGUE: tuple[tuple[str, str], ...] = (
    ("red", "square"),
    ("red", "diamond"),
    ("blue", "square"),
    ("blue", "diamond"),
    ("green", "square"),
    ("red", "ring"),
)

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 52, 46),
    "blue": (44, 92, 212),
    "green": (44, 160, 72),
}
TABLE_RGB = (232, 222, 200)
PUSHER_RGB = (56, 56, 56)

#: goal names, see :class:`BlocksEnv` for their exact definitions
GOALS: tuple[str, ...] = ("group-by-colour", "cluster", "line", "bottom-right", "circle")

# The 8 cells round a centre in clockwise order; circle gaps are counted in steps along it.
_RING: tuple[tuple[int, int], ...] = (
    (-1, -1),
    (-1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
    (1, 0),
    (1, -1),
    (0, -1),
)
_MAX_RING_GAP = 3
_NEIGHBOURS = ((1, 0), (-1, 0), (0, 1), (0, -1))

Cell = tuple[int, int]


@dataclass(frozen=True)
class BlocksState:
    """An immutable tabletop state.

    Attributes:
        pusher: (row, col) cell of the pusher.
        blocks: (row, col) cell of every block, in catalogue order; all cells are distinct and
            none is the pusher's.
    """

    pusher: Cell
    blocks: tuple[Cell, ...]


# ----------------------------------------------------------------------------------- predicates
def _connected(cells: Sequence[Cell]) -> bool:
    """Whether ``cells`` form one 4-connected set (an empty set counts as connected)."""
    remaining = set(cells)
    if not remaining:
        return True
    stack = [remaining.pop()]
    while stack:
        r, c = stack.pop()
        for dr, dc in _NEIGHBOURS:
            if (r + dr, c + dc) in remaining:
                remaining.remove((r + dr, c + dc))
                stack.append((r + dr, c + dc))
    return not remaining


def _contiguous(values: Sequence[int]) -> bool:
    return len(set(values)) == len(values) and max(values) - min(values) == len(values) - 1


def goal_holds(goal: str, cells: Sequence[Cell], colours: Sequence[str], size: int) -> bool:
    """The exact goal predicate on block cells (see :class:`BlocksEnv` for the definitions).

    Args:
        goal: one of :data:`GOALS`.
        cells: (row, col) of each block.
        colours: colour name of each block.
        size: cells per side of the table.
    """
    cells = [(int(r), int(c)) for r, c in cells]
    if goal == "cluster":
        return _connected(cells)
    if goal == "group-by-colour":
        groups: dict[str, list[Cell]] = {}
        for cell, colour in zip(cells, colours, strict=True):
            groups.setdefault(colour, []).append(cell)
        if not all(_connected(group) for group in groups.values()):
            return False
        return not any(
            abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 and ca != cb
            for a, ca in zip(cells, colours, strict=True)
            for b, cb in zip(cells, colours, strict=True)
        )
    if goal == "line":
        rows, cols = [r for r, _ in cells], [c for _, c in cells]
        return (len(set(rows)) == 1 and _contiguous(cols)) or (
            len(set(cols)) == 1 and _contiguous(rows)
        )
    if goal == "bottom-right":
        return all(r >= size // 2 and c >= size // 2 for r, c in cells)
    if goal == "circle":
        for cr in range(1, size - 1):
            for cc in range(1, size - 1):
                offsets = [(r - cr, c - cc) for r, c in cells]
                if not all(o in _RING for o in offsets):
                    continue
                steps = sorted(_RING.index(o) for o in offsets)
                gaps = [b - a for a, b in pairwise(steps)] + [steps[0] + 8 - steps[-1]]
                if max(gaps) <= _MAX_RING_GAP:
                    return True
        return False
    raise ValueError(f"Unknown goal {goal!r}.")


# ----------------------------------------------------------------------------------- distances
def _tree_gap(cells: np.ndarray) -> float:
    """Cost of a minimum spanning tree whose edges cost (Manhattan distance - 1), floored at 0.

    Zero exactly when the cells are 4-connected; otherwise roughly the number of pushes that
    would close the gaps.
    """
    n = len(cells)
    if n < 2:
        return 0.0
    d = np.maximum(np.abs(cells[:, None, :] - cells[None, :, :]).sum(-1) - 1, 0).astype(float)
    in_tree = np.zeros(n, dtype=bool)
    in_tree[0] = True
    best = d[0].copy()
    total = 0.0
    for _ in range(n - 1):
        j = int(np.where(in_tree, np.inf, best).argmin())
        total += best[j]
        in_tree[j] = True
        best = np.minimum(best, d[j])
    return total


def _line_cost(cells: np.ndarray, size: int) -> float:
    """Fewest cell moves (ignoring collisions) that put the cells in one contiguous row or column."""
    n = len(cells)
    lanes = np.arange(size)
    starts = np.arange(size - n + 1)
    best = np.inf
    for shared, run in ((0, 1), (1, 0)):
        to_lane = np.abs(cells[None, :, shared] - lanes[:, None]).sum(1).min()
        # Sorted values go to consecutive slots: the optimal matching onto a run on a line.
        ordered = np.sort(cells[:, run])
        to_run = np.abs(ordered[None, :] - (starts[:, None] + np.arange(n))).sum(1).min()
        best = min(best, float(to_lane + to_run))
    return best


def _circle_cost(cells: np.ndarray, size: int) -> float:
    """Over every centre: cells off the 8-ring (by Chebyshev distance) plus gaps wider than 3."""
    inner = np.arange(1, size - 1)
    centres = np.stack(np.meshgrid(inner, inner, indexing="ij"), -1).reshape(-1, 2)
    offsets = cells[None, :, :] - centres[:, None, :]  # [C,n,2]
    off_ring = np.abs(np.abs(offsets).max(-1) - 1).sum(1)
    # On the ring the angle is an exact multiple of 45 degrees, so rounding recovers the step.
    steps = np.rint(np.arctan2(offsets[..., 0], offsets[..., 1]) / (np.pi / 4)).astype(int) % 8
    steps = np.sort(steps, axis=1)
    wrap = steps[:, 0] + 8 - steps[:, -1]
    widest = np.maximum(np.diff(steps, axis=1).max(1, initial=0), wrap)
    return float((off_ring + np.maximum(widest - _MAX_RING_GAP, 0)).min())


def goal_cost(goal: str, cells: np.ndarray, colour_ids: np.ndarray, size: int) -> float:
    """A non-negative cost of block cells for ``goal``, 0 exactly when :func:`goal_holds`.

    Args:
        goal: one of :data:`GOALS`.
        cells: int [n,2] (row, col) of distinct block cells, n >= 1.
        colour_ids: int [n] colour group of each block.
        size: cells per side of the table.
    """
    if goal == "cluster":
        return _tree_gap(cells)
    if goal == "group-by-colour":
        within = sum(_tree_gap(cells[colour_ids == k]) for k in np.unique(colour_ids))
        touching = np.abs(cells[:, None, :] - cells[None, :, :]).sum(-1) == 1
        mixed = colour_ids[:, None] != colour_ids[None, :]
        return float(within + (touching & mixed).sum() // 2)
    if goal == "line":
        return _line_cost(cells, size)
    if goal == "bottom-right":
        return float(np.maximum(size // 2 - cells, 0).sum())
    if goal == "circle":
        return _circle_cost(cells, size)
    raise ValueError(f"Unknown goal {goal!r}.")


# ----------------------------------------------------------------------------------- the env
class BlocksEnv(Env):
    """Coloured blocks on a grid table, moved by a pusher, with five arrangement goals.

    Entity slots: 0 = pusher, 1..n = blocks in catalogue order (see the module docstring).

    Actions (``num_actions = 4 + 4 n``; indices are stable and always available):
        ``d`` for d in 0..3: ``"move the pusher up|down|left|right"``.
        ``4 + 4 i + d``: ``"push the <colour> <shape> up|down|left|right"`` for block i.
        ``vector`` is the direction as (dx, dy).

    Observation keys (``observe`` and ``perceive``):
        positions: float64 [K,2], (x, y) pixel centres of the cells; NaN when absent.
        present: bool [K].
        cells: int64 [K,2], (row, col); (-1, -1) when absent.
        colors: uint8 [K,3], the RGB colour of each slot (fixed per slot).

    Goals (exact predicates on the block cells; the pusher never counts):
        ``group-by-colour``: the blocks of each colour form one 4-connected group, and no two
            blocks of different colours share an edge.
        ``cluster``: all blocks form one 4-connected group.
        ``line``: all blocks lie in one row at consecutive columns, or in one column at
            consecutive rows (a contiguous bar; gaps are not allowed).
        ``bottom-right``: every block has row >= size // 2 and column >= size // 2.
        ``circle``: some cell c at least one cell away from every edge has every block among its
            8 neighbours, and walking round those 8 cells, consecutive blocks are at most 3 steps
            apart (so they surround c rather than sit on one side of it).

    :meth:`goal_distance` is 0 exactly when the goal holds and is otherwise an estimate of the
    pushes still needed; each block absent from the observation adds ``2 * size`` and each pair
    of blocks on one cell adds 1.

    Args:
        resolution: frame side in pixels; a multiple of ``size`` with cells of at least 4 px.
        size: cells per side of the table (default 8: 4/8/16 px cells at 32/64/128).
        num_blocks: number of blocks, 3 to 6.
    """

    name: ClassVar[str] = "blocks"
    description: ClassVar[str] = (
        "Tabletop: push coloured blocks into groups, clusters, lines, corners and circles."
    )
    version: ClassVar[str] = "1"

    def __init__(self, resolution: int = 64, size: int = 8, num_blocks: int = 4) -> None:
        super().__init__(resolution)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 6 <= size <= 64:
            raise ConfigError(f"Expected table size to be an integer in [6, 64], but got {size!r}.")
        if (
            isinstance(num_blocks, bool)
            or not isinstance(num_blocks, (int, np.integer))
            or not 3 <= num_blocks <= len(CATALOGUE)
        ):
            raise ConfigError(
                f"Expected num_blocks to be an integer in [3, {len(CATALOGUE)}], "
                f"but got {num_blocks!r}."
            )
        self.size = int(size)
        self.num_blocks = int(num_blocks)
        self._record_config(size=self.size, num_blocks=self.num_blocks)
        t = tile_size(self.resolution, self.size, self.name)
        catalogue = CATALOGUE[: self.num_blocks]
        #: "red square", ... for block 0..n-1
        self.block_names = [f"{colour} {shape}" for colour, shape in catalogue]
        self.block_colours = [colour for colour, _ in catalogue]
        names = list(COLOURS)
        self._colour_ids = np.array([names.index(c) for c in self.block_colours])
        tiles = [paint(TABLE_RGB, [], t), paint(TABLE_RGB, [("circle", PUSHER_RGB)], t)]
        tiles += [paint(TABLE_RGB, [(shape, COLOURS[colour])], t) for colour, shape in catalogue]
        # Tile k + 1 draws slot k (0 = pusher); tile 0 is the bare table.
        self.sheet = TileSheet(np.stack(tiles), self.size)
        self.num_entities = self.num_blocks + 1
        self._colors = np.array([PUSHER_RGB] + [COLOURS[c] for c in self.block_colours], np.uint8)
        moves = [
            Action(index=d, text=f"move the pusher {name}", vector=(float(dc), float(dr)))
            for d, (name, dr, dc) in enumerate(DIRECTIONS)
        ]
        pushes = [
            Action(
                index=4 + 4 * i + d, text=f"push the {block} {name}", vector=(float(dc), float(dr))
            )
            for i, block in enumerate(self.block_names)
            for d, (name, dr, dc) in enumerate(DIRECTIONS)
        ]
        self._actions = tuple(moves + pushes)

    # ----------------------------------------------------------------------------------- dynamics
    def reset(self, seed: int) -> BlocksState:
        """A random layout for ``seed`` that satisfies none of the goals (resampled until so)."""
        rng = np.random.default_rng(check_seed(seed, self.name))
        while True:
            flat = rng.choice(self.size * self.size, size=self.num_blocks + 1, replace=False)
            cells = [(int(v) // self.size, int(v) % self.size) for v in flat]
            state = BlocksState(pusher=cells[0], blocks=tuple(cells[1:]))
            if not any(self.goal_reached(state, goal) for goal in GOALS):
                return state

    @property
    def num_actions(self) -> int:
        return 4 + 4 * self.num_blocks

    def actions(self, state: BlocksState) -> list[Action]:
        return list(self._actions)

    def _on_table(self, r: int, c: int) -> bool:
        return 0 <= r < self.size and 0 <= c < self.size

    def _push(self, state: BlocksState, block: int, dr: int, dc: int) -> BlocksState:
        r, c = state.blocks[block]
        beyond = (r + dr, c + dc)
        if not self._on_table(*beyond) or beyond in state.blocks:
            return state
        blocks = list(state.blocks)
        blocks[block] = beyond
        return BlocksState(pusher=(r, c), blocks=tuple(blocks))

    def _step(self, state: BlocksState, action: Action) -> BlocksState:
        if action.index >= 4:
            block, d = divmod(action.index - 4, 4)
            return self._push(state, block, *DIRECTIONS[d][1:])
        _, dr, dc = DIRECTIONS[action.index]
        target = (state.pusher[0] + dr, state.pusher[1] + dc)
        if not self._on_table(*target):
            return state
        if target in state.blocks:
            return self._push(state, state.blocks.index(target), dr, dc)
        return replace(state, pusher=target)

    # ----------------------------------------------------------------------------------- pixels
    def render(self, state: BlocksState) -> np.ndarray:
        return self.render_batch([state])[0]

    def render_batch(self, states: Sequence[BlocksState]) -> np.ndarray:
        """Renders states as uint8 [B,H,W,3] in one gather over the tile sheet."""
        b = len(states)
        labels = np.zeros((b, self.size, self.size), dtype=np.intp)
        if b:
            cells = np.array([(st.pusher, *st.blocks) for st in states])  # [B,K,2]
            labels[np.arange(b)[:, None], cells[..., 0], cells[..., 1]] = np.arange(
                1, self.num_entities + 1
            )
        return self.sheet.render(labels)

    def observe(self, state: BlocksState) -> Observation:
        cells = np.array([state.pusher, *state.blocks], dtype=np.int64)
        return {
            "positions": self.sheet.centres(cells),
            "present": np.ones(self.num_entities, dtype=bool),
            "cells": cells,
            "colors": self._colors.copy(),
        }

    def perceive(self, frame: np.ndarray) -> Observation:
        labels, sse = self.sheet.match(self._check_frame(frame))
        found = [self.sheet.best_cell(labels, sse, (k + 1,)) for k in range(self.num_entities)]
        present = np.array([f is not None for f in found])
        cells = np.array([f if f is not None else (-1, -1) for f in found], dtype=np.int64)
        positions = self.sheet.centres(cells)
        positions[~present] = np.nan
        return {
            "positions": positions,
            "present": present,
            "cells": cells,
            "colors": self._colors.copy(),
        }

    # ----------------------------------------------------------------------------------- goals
    def goals(self) -> list[str]:
        return list(GOALS)

    def _check_goal(self, goal: Any) -> str:
        if goal is None:
            raise ConfigError(
                f"Env {self.name!r} needs a goal name, one of: {', '.join(GOALS)}; got None."
            )
        if not isinstance(goal, str) or goal not in GOALS:
            raise UnknownNameError(
                f"Unknown goal {goal!r}.{did_you_mean(str(goal), list(GOALS))} "
                f"Goals of env {self.name!r}: {', '.join(GOALS)}."
            )
        return goal

    def goal_reached(self, state: BlocksState, goal: Any = None) -> bool:
        """Whether ``goal`` (a name from :meth:`goals`) holds for the blocks of ``state``."""
        return goal_holds(self._check_goal(goal), state.blocks, self.block_colours, self.size)

    def goal_distance(self, obs: Observation, goal: Any = None) -> float:
        """Distance from an observation to ``goal``: 0 exactly when it holds, finite always.

        Args:
            obs: an ``observe()`` or ``perceive()`` dict (``positions`` and ``present`` are used).
            goal: a name from :meth:`goals`.
        """
        goal = self._check_goal(goal)
        cells, valid = self.sheet.cells_of(obs["positions"])
        present = np.asarray(obs["present"], dtype=bool).reshape(-1)
        if len(present) != self.num_entities or len(cells) != self.num_entities:
            raise ConfigError(
                f"Expected {self.num_entities} entity slots in obs for env {self.name!r}, "
                f"but got {len(present)} presence flags and {len(cells)} positions."
            )
        seen = (present & valid)[1:]
        missing = int((~seen).sum())
        block_cells = cells[1:][seen]
        cost = float(missing * 2 * self.size)
        if len(block_cells):
            overlaps = len(block_cells) - len(np.unique(block_cells, axis=0))
            cost += overlaps + goal_cost(goal, block_cells, self._colour_ids[seen], self.size)
        return cost

    # ----------------------------------------------------------------------------------- planning
    def sensible_actions(self, frame: np.ndarray, actions: Sequence[Action]) -> list[Action] | None:
        """Block pushes that move their block in the perceived frame (target cell free, on the
        table); pusher moves are left out."""
        obs = self.perceive(frame)
        cells = obs["cells"]
        present = obs["present"]
        occupied = {(int(r), int(c)) for (r, c), p in zip(cells[1:], present[1:], strict=True) if p}
        out = []
        for action in actions:
            if action.index < 4:
                continue
            block, d = divmod(action.index - 4, 4)
            if block + 1 >= len(present) or not present[block + 1]:
                continue
            _, dr, dc = DIRECTIONS[d]
            r, c = int(cells[block + 1][0]) + dr, int(cells[block + 1][1]) + dc
            if self._on_table(r, c) and (r, c) not in occupied:
                out.append(action)
        return out

    def expert_action(self, obs: Observation, goal: Any = None) -> Action | None:
        """Greedy descent: the push that lowers :meth:`goal_distance` most, simulated on the
        layout read from ``obs`` (ties: the lowest index); None when the goal holds, an entity
        is not seen, or no action lowers the distance (a plateau of the estimate)."""
        goal = self._check_goal(goal)
        cells, valid = self.sheet.cells_of(obs["positions"])
        present = np.asarray(obs["present"], dtype=bool).reshape(-1)
        if len(present) != self.num_entities or not (present & valid).all():
            return None
        layout = [(int(r), int(c)) for r, c in cells]
        if len(set(layout)) < len(layout):
            return None  # two entities on one cell: not a layout the table can hold
        state = BlocksState(pusher=layout[0], blocks=tuple(layout[1:]))
        best, best_cost = None, self.goal_distance(self.observe(state), goal)
        for action in self._actions:
            cost = self.goal_distance(self.observe(self._step(state, action)), goal)
            if cost < best_cost:
                best, best_cost = action, cost
        return best
