"""``shapes``: flat-coloured shapes on a plain background, moved by the agent or by interventions.

There are K = 5 entity slots and slot k *is* shape kind k (circle, square, triangle, diamond,
cross), so an object keeps its identity when it is recoloured, and perception can tell which
slot a blob belongs to from its outline alone. Colours are distinct within a scene; object and
background palettes are far apart in RGB, so nearest-colour segmentation is exact on rendered
frames and tolerant on generated ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from panbench.envs._render import (
    as_palette,
    background_frames,
    blob_pixels,
    count_range,
    frozen,
    palette_labels,
    stamp,
)
from panbench.envs.base import Action, Env, Observation
from panbench.errors import ConfigError

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")
"""Shape kind per slot: slot k always holds the ``SHAPES[k]``."""

COLOR_NAMES: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "cyan")
OBJECT_PALETTE = as_palette(
    [(230, 40, 40), (40, 190, 40), (40, 90, 240), (240, 220, 30), (170, 50, 230), (30, 210, 220)]
)
BACKGROUND_NAMES: tuple[str, ...] = ("black", "white", "gray")
BACKGROUND_PALETTE = as_palette([(0, 0, 0), (255, 255, 255), (128, 128, 128)])
# Object colours first, so a label < len(COLOR_NAMES) is an object colour.
_FULL_PALETTE = as_palette([*OBJECT_PALETTE.tolist(), *BACKGROUND_PALETTE.tolist()])
# Under half the smallest distance between palette colours (~122): a pixel matches at most
# one colour, and blended edge pixels of generated frames fall between colours and match none.
COLOR_TOLERANCE = 60.0

DIRECTIONS: tuple[str, ...] = ("up", "down", "left", "right")
_DIRECTION_XY = np.array([(0, -1), (0, 1), (-1, 0), (1, 0)], dtype=np.int64)

NUM_SLOTS = len(SHAPES)
NUM_MOVES = NUM_SLOTS * len(DIRECTIONS)
_ADD = NUM_MOVES
_REMOVE = _ADD + NUM_SLOTS
_RECOLOR = _REMOVE + NUM_SLOTS
_BACKGROUND = _RECOLOR + NUM_SLOTS * len(COLOR_NAMES)
NUM_ACTIONS_WITH_INTERVENTIONS = _BACKGROUND + len(BACKGROUND_NAMES)

# A blob smaller than this fraction of the smallest sprite is noise, not an object.
_MIN_AREA_FRACTION = 0.3
# A blob whose best template overlap (IoU) is below this is not recognised as any shape.
_MIN_IOU = 0.5


@dataclass(frozen=True, eq=False)
class ShapesState:
    """An immutable ``shapes`` scene.

    Attributes:
        centers: int64 [K,2] sprite-box centres (x, y) in pixels; meaningless where absent.
        present: bool [K] whether slot k (shape ``SHAPES[k]``) is in the scene.
        colors: int64 [K] index into ``COLOR_NAMES`` per slot, -1 where absent.
        background: index into ``BACKGROUND_NAMES``.
    """

    centers: np.ndarray
    present: np.ndarray
    colors: np.ndarray
    background: int


def sprite_size(resolution: int) -> int:
    """The odd side, in pixels, of every sprite at ``resolution`` (about a tenth of the frame x2)."""
    return 2 * round(0.1 * resolution) + 1


def sprite_masks(size: int) -> np.ndarray:
    """bool [K, size, size] masks of the five shapes; each touches all four sides of its box.

    Touching all sides makes the box centre (the observed position) recoverable from the blob.
    The cross is diagonal (an X): an upright plus is nearly a circle at size 7 (resolution 32),
    whereas these five outlines overlap by at most ~0.8 IoU at every size.
    """
    h = (size - 1) // 2
    dy, dx = np.mgrid[-h : h + 1, -h : h + 1]
    row = dy + h
    band = max(1, round((h - 1) / 3))
    masks = np.stack(
        [
            dx * dx + dy * dy <= (h + 0.5) ** 2,  # circle
            np.ones_like(dx, dtype=bool),  # square
            2 * np.abs(dx) <= row,  # triangle, apex up, base on the bottom row
            np.abs(dx) + np.abs(dy) <= h,  # diamond
            np.abs(np.abs(dx) - np.abs(dy)) <= band,  # cross (X)
        ]
    )
    return masks


def _erode(mask: np.ndarray, diagonal: bool) -> np.ndarray:
    """Binary erosion of a bool [S,S] mask by the 4-neighbourhood, or the 8-neighbourhood."""
    p = np.pad(mask, 1)
    s = mask.shape[0]
    shifts = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if diagonal or di * dj == 0]
    out = np.ones_like(mask)
    for di, dj in shifts:
        out &= p[1 + di : 1 + di + s, 1 + dj : 1 + dj + s]
    return out


@dataclass(frozen=True)
class _Template:
    """One appearance of a shape for perception: its mask and where its centroid sits."""

    mask: np.ndarray  # bool [S,S]
    area: int
    centroid: np.ndarray  # float64 (x, y) of the mean pixel, relative to the box centre


def _templates(masks: np.ndarray) -> list[list[_Template]]:
    """Per shape: the exact sprite, then its 4- and 8-neighbour erosions.

    Blur on a generated frame turns edge pixels into blends that match no palette colour, which
    erodes each blob by about a pixel; matching eroded templates too keeps such blobs recognised.
    """
    h = (masks.shape[1] - 1) // 2
    out = []
    for mask in masks:
        variants = []
        for m in (mask, _erode(mask, diagonal=False), _erode(mask, diagonal=True)):
            rows, cols = np.nonzero(m)
            if rows.size:
                centroid = np.array([cols.mean() - h, rows.mean() - h])
                variants.append(_Template(m, int(rows.size), centroid))
        out.append(variants)
    return out


class ShapesEnv(Env):
    """Up to five shapes of distinct colour and kind; the agent moves them one step at a time.

    Agent actions: ``"move the <colour> <shape> <up|down|left|right>"`` by :attr:`step_size`
    pixels, index ``slot * 4 + direction`` (directions up, down, left, right). A move that would
    leave the frame or overlap another object's box is a no-op (objects may end up touching).

    Interventions (``interventions=True``), kind ``"intervention"``, indices after the moves:

    - ``20 + k``: ``"add a <colour> <shape>"``: adds missing shape k in the first unused colour, at
      the free position nearest the frame centre;
    - ``25 + k``: ``"remove the <colour> <shape>"`` (while more than one object is present);
    - ``30 + 6k + c``: ``"make the <colour> <shape> <colour c>"`` (c unused in the scene);
    - ``60 + b``: ``"change the background to <black|white|gray>"``.

    Indices whose entity is absent (or whose target is taken) are no-ops named ``"wait"``.

    Observation keys (``observe`` and ``perceive``): ``positions`` float64 [5,2] sprite-box
    centres (x, y), NaN where absent; ``present`` bool [5]; ``colors`` int64 [5] index into
    :data:`COLOR_NAMES`, -1 where absent; ``background`` int64 [] index into
    :data:`BACKGROUND_NAMES` (-1 if perception finds none).

    Args:
        resolution: side of the square frame in pixels.
        num_objects: objects at reset: an int, an inclusive ``[low, high]`` pair, or None for 2-5.
        interventions: also expose the environment interventions listed above.
    """

    name: ClassVar[str] = "shapes"
    description: ClassVar[str] = "coloured shapes moved by the agent; add/remove/recolour options"
    version: ClassVar[str] = "1"
    num_entities = NUM_SLOTS

    def __init__(
        self,
        resolution: int = 64,
        num_objects: int | Sequence[int] | None = None,
        interventions: bool = False,
    ) -> None:
        super().__init__(resolution)
        counts = count_range(num_objects, "num_objects", 1, NUM_SLOTS)
        self._num_objects = counts or (2, NUM_SLOTS)
        if not isinstance(interventions, (bool, np.bool_)):
            raise ConfigError(f"Expected interventions to be a bool, but got {interventions!r}.")
        self.interventions = bool(interventions)
        self._record_config(
            num_objects=None if counts is None else list(counts),
            interventions=self.interventions,
        )
        res = self.resolution
        #: side of every sprite's square box in pixels (odd, so the box centre is a pixel)
        self.sprite_size = sprite_size(res)
        #: pixels an object moves per agent action
        self.step_size = res // 8
        self._half = (self.sprite_size - 1) // 2
        masks = sprite_masks(self.sprite_size)
        # Offsets (rows, cols) of each sprite's pixels from its box centre, for scatter rendering.
        self._offsets = [tuple(ix - self._half for ix in np.nonzero(m)) for m in masks]
        self._templates = _templates(masks)
        self._min_area = _MIN_AREA_FRACTION * min(int(m.sum()) for m in masks)
        # Every in-frame box centre (x, y), nearest the frame centre first (stable sort keeps
        # raster order among ties), for the deterministic placement of added objects.
        lo, hi = self._half, res - 1 - self._half
        ys, xs = np.mgrid[lo : hi + 1, lo : hi + 1]
        cand = np.stack([xs.ravel(), ys.ravel()], axis=1)
        dist2 = ((2 * cand - (res - 1)) ** 2).sum(axis=1)
        self._candidates = cand[np.argsort(dist2, kind="stable")]

    # ----------------------------------------------------------------------------------- dynamics
    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS_WITH_INTERVENTIONS if self.interventions else NUM_MOVES

    def reset(self, seed: int) -> ShapesState:
        rng = np.random.default_rng([int(seed), 0x5EA9E5])
        lo, hi = self._num_objects
        n = int(rng.integers(lo, hi + 1))
        slots = np.sort(rng.choice(NUM_SLOTS, size=n, replace=False))
        colors_used = rng.choice(len(COLOR_NAMES), size=n, replace=False)
        background = int(rng.integers(len(BACKGROUND_NAMES)))
        centers = np.zeros((NUM_SLOTS, 2), dtype=np.int64)
        present = np.zeros(NUM_SLOTS, dtype=bool)
        colors = np.full(NUM_SLOTS, -1, dtype=np.int64)
        lo_c, hi_c = self._half, self.resolution - 1 - self._half
        for slot, color in zip(slots, colors_used, strict=True):
            for _ in range(100):
                xy = rng.integers(lo_c, hi_c + 1, size=2)
                if self._is_free(xy, centers, present):
                    break
            else:  # a crowded draw: fall back to the deterministic free-position search
                found = self._free_center(centers, present)
                assert found is not None, "five sprites always fit in the frame"
                xy = found
            centers[slot], present[slot], colors[slot] = xy, True, color
        return ShapesState(frozen(centers), frozen(present), frozen(colors), background)

    def _is_free(
        self, xy: np.ndarray, centers: np.ndarray, present: np.ndarray, ignore: int = -1
    ) -> bool:
        """Whether a sprite box centred at ``xy`` lies in the frame and overlaps no other box."""
        lo, hi = self._half, self.resolution - 1 - self._half
        if not (lo <= xy[0] <= hi and lo <= xy[1] <= hi):
            return False
        others = present.copy()
        if ignore >= 0:
            others[ignore] = False
        gap = np.abs(centers[others] - xy)
        # Boxes of side s overlap unless their centres are at least s apart along some axis.
        return bool(np.all((gap >= self.sprite_size).any(axis=1)))

    def _free_center(self, centers: np.ndarray, present: np.ndarray) -> np.ndarray | None:
        """The free box centre nearest the frame centre (ties: first in raster order), if any."""
        occupied = centers[present]
        # Candidates are sorted by distance to the centre, so the first free one is the nearest;
        # a free spot usually lies close to the centre, so look there before scanning the frame.
        for cand in (self._candidates[:256], self._candidates):
            gap = np.abs(cand[:, None, :] - occupied[None, :, :])  # [N, M, 2]
            free = (gap >= self.sprite_size).any(axis=2).all(axis=1)
            if free.any():
                return cand[int(free.argmax())]
        return None

    def _name(self, state: ShapesState, slot: int) -> str:
        return f"{COLOR_NAMES[state.colors[slot]]} {SHAPES[slot]}"

    def actions(self, state: ShapesState) -> list[Action]:
        out: list[Action] = []
        present = [int(k) for k in np.flatnonzero(state.present)]
        for k in present:
            name = self._name(state, k)
            out.extend(
                Action(index=k * 4 + d, text=f"move the {name} {direction}")
                for d, direction in enumerate(DIRECTIONS)
            )
        if not self.interventions:
            return out
        used = {int(state.colors[k]) for k in present}
        unused = [c for c in range(len(COLOR_NAMES)) if c not in used]
        if (
            unused
            and len(present) < NUM_SLOTS
            and self._free_center(state.centers, state.present) is not None
        ):
            color = COLOR_NAMES[unused[0]]
            out.extend(
                Action(index=_ADD + k, text=f"add a {color} {SHAPES[k]}", kind="intervention")
                for k in range(NUM_SLOTS)
                if not state.present[k]
            )
        if len(present) > 1:
            out.extend(
                Action(
                    index=_REMOVE + k,
                    text=f"remove the {self._name(state, k)}",
                    kind="intervention",
                )
                for k in present
            )
        out.extend(
            Action(
                index=_RECOLOR + k * len(COLOR_NAMES) + c,
                text=f"make the {self._name(state, k)} {COLOR_NAMES[c]}",
                kind="intervention",
            )
            for k in present
            for c in unused
        )
        out.extend(
            Action(
                index=_BACKGROUND + b,
                text=f"change the background to {BACKGROUND_NAMES[b]}",
                kind="intervention",
            )
            for b in range(len(BACKGROUND_NAMES))
            if b != state.background
        )
        return sorted(out, key=lambda a: a.index)

    def _step(self, state: ShapesState, action: Action) -> ShapesState:
        i = action.index
        if action.kind == "wait":
            return state
        if i < NUM_MOVES:
            slot, direction = divmod(i, 4)
            xy = state.centers[slot] + self.step_size * _DIRECTION_XY[direction]
            if not self._is_free(xy, state.centers, state.present, ignore=slot):
                return state  # into a wall or another object: a no-op by design
            centers = state.centers.copy()
            centers[slot] = xy
            return replace(state, centers=frozen(centers))
        if i < _REMOVE:
            slot = i - _ADD
            found = self._free_center(state.centers, state.present)
            used = set(state.colors[state.present].tolist())
            color = min(c for c in range(len(COLOR_NAMES)) if c not in used)
            assert found is not None
            return self._with_slot(state, slot, found, True, color)
        if i < _RECOLOR:
            slot = i - _REMOVE
            return self._with_slot(state, slot, np.zeros(2, dtype=np.int64), False, -1)
        if i < _BACKGROUND:
            slot, color = divmod(i - _RECOLOR, len(COLOR_NAMES))
            return self._with_slot(state, slot, state.centers[slot], True, color)
        return replace(state, background=i - _BACKGROUND)

    @staticmethod
    def _with_slot(
        state: ShapesState, slot: int, xy: np.ndarray, present: bool, color: int
    ) -> ShapesState:
        centers, pres, colors = state.centers.copy(), state.present.copy(), state.colors.copy()
        centers[slot], pres[slot], colors[slot] = xy, present, color
        return replace(state, centers=frozen(centers), present=frozen(pres), colors=frozen(colors))

    # ----------------------------------------------------------------------------------- pixels
    def render(self, state: ShapesState) -> np.ndarray:
        return self.render_batch([state])[0]

    def render_batch(self, states: Sequence[ShapesState]) -> np.ndarray:
        """Renders uint8 [B,R,R,3] with one background fill and one scatter per shape kind."""
        background = np.fromiter((s.background for s in states), dtype=np.int64, count=len(states))
        frames = background_frames(BACKGROUND_PALETTE, background, self.resolution)
        if not states:
            return frames
        centers = np.stack([s.centers for s in states])
        present = np.stack([s.present for s in states])
        colors = np.stack([s.colors for s in states])
        for k, (dy, dx) in enumerate(self._offsets):
            b = np.flatnonzero(present[:, k])
            if b.size == 0:
                continue
            rows = (centers[b, k, 1][:, None] + dy[None, :]).ravel()
            cols = (centers[b, k, 0][:, None] + dx[None, :]).ravel()
            rgb = np.repeat(OBJECT_PALETTE[colors[b, k]], dy.size, axis=0)
            stamp(frames, np.repeat(b, dy.size), rows, cols, rgb)
        return frames

    def observe(self, state: ShapesState) -> Observation:
        positions = state.centers.astype(np.float64)
        positions[~state.present] = np.nan
        return {
            "positions": positions,
            "present": state.present.copy(),
            "colors": state.colors.copy(),
            "background": np.array(state.background, dtype=np.int64),
        }

    def perceive(self, frame: np.ndarray) -> Observation:
        frame = self._check_frame(frame)
        labels = palette_labels(frame, _FULL_PALETTE, COLOR_TOLERANCE)
        n_obj = len(COLOR_NAMES)
        counts = np.bincount(labels.ravel() + 1, minlength=len(_FULL_PALETTE) + 1)[1:]
        bg_counts = counts[n_obj:]
        background = int(bg_counts.argmax()) if bg_counts.max() > 0 else -1

        # Score every (colour blob, shape kind) pair by its best template IoU, then assign
        # greedily so a generated frame with two similar blobs still yields one blob per slot.
        candidates: list[tuple[float, int, int, float, float]] = []
        for c in range(n_obj):
            if counts[c] < self._min_area:
                continue
            rows, cols = blob_pixels(labels, c, half_window=self.sprite_size)
            if rows.size < self._min_area:
                continue
            centroid = np.array([cols.mean(), rows.mean()])
            scores = [self._match(rows, cols, centroid, v[0]) for v in self._templates]
            if max(scores)[0] < 1.0:  # not a pristine sprite: try the eroded appearances too
                scores = [
                    max([best, *(self._match(rows, cols, centroid, t) for t in variants[1:])])
                    for best, variants in zip(scores, self._templates, strict=True)
                ]
            candidates.extend((iou, c, k, x, y) for k, (iou, x, y) in enumerate(scores))

        positions = np.full((NUM_SLOTS, 2), np.nan)
        present = np.zeros(NUM_SLOTS, dtype=bool)
        colors = np.full(NUM_SLOTS, -1, dtype=np.int64)
        taken: set[int] = set()
        for iou, c, k, x, y in sorted(candidates, key=lambda t: -t[0]):
            if iou < _MIN_IOU or present[k] or c in taken:
                continue
            positions[k], present[k], colors[k] = (x, y), True, c
            taken.add(c)
        return {
            "positions": positions,
            "present": present,
            "colors": colors,
            "background": np.array(background, dtype=np.int64),
        }

    def _match(
        self, rows: np.ndarray, cols: np.ndarray, centroid: np.ndarray, template: _Template
    ) -> tuple[float, float, float]:
        """IoU of a blob with ``template`` aligned by centroid, and the box centre (x, y) it implies.

        Args:
            rows: int [N] blob pixel rows.
            cols: int [N] blob pixel columns.
            centroid: float64 (x, y) mean blob pixel.
            template: the shape appearance to compare with.
        """
        s, h = self.sprite_size, self._half
        x, y = centroid - template.centroid
        r = rows - (round(y) - h)
        q = cols - (round(x) - h)
        inside = (r >= 0) & (r < s) & (q >= 0) & (q < s)
        inter = int(template.mask[r[inside], q[inside]].sum())
        return inter / (rows.size + template.area - inter), float(x), float(y)


__all__ = [
    "BACKGROUND_NAMES",
    "COLOR_NAMES",
    "SHAPES",
    "ShapesEnv",
    "ShapesState",
    "sprite_masks",
    "sprite_size",
]
