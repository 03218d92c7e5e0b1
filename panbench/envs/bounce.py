"""``bounce``: balls under gravity with elastic walls and ball-ball collisions, pushed by the agent.

Chaotic over long horizons on purpose: ball-ball collisions amplify tiny differences, so it probes
long-horizon drift. The physics runs in a unit box in float64 with fixed substeps, so it is
deterministic and independent of the rendering resolution. Balls never overlap after a step
(positional correction), and a pixel belongs to a ball when its centre lies strictly inside the
ball's disk, so the centroid of a rendered ball's pixels is within 0.5 px of its true centre.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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

COLOR_NAMES: tuple[str, ...] = ("red", "green", "blue", "yellow")
"""Ball colour per slot: slot k is always the ``COLOR_NAMES[k]`` ball."""
BALL_PALETTE = as_palette([(230, 40, 40), (40, 190, 40), (40, 90, 240), (240, 220, 30)])
BACKGROUND_RGB = (24, 24, 32)
_FULL_PALETTE = as_palette([*BALL_PALETTE.tolist(), BACKGROUND_RGB])
# Below half the smallest palette distance: a pixel matches at most one colour.
COLOR_TOLERANCE = 60.0

DIRECTIONS: tuple[str, ...] = ("up", "down", "left", "right")
_DIRECTION_XY = np.array([(0.0, -1.0), (0.0, 1.0), (-1.0, 0.0), (1.0, 0.0)])

NUM_SLOTS = len(COLOR_NAMES)
WAIT_INDEX = NUM_SLOTS * len(DIRECTIONS)

RADIUS = 0.075
"""Ball radius in units of the frame side."""
GRAVITY = 2.0
"""Downward acceleration, frame sides per second squared."""
STEP_SECONDS = 0.05
SUBSTEPS = 8
PUSH_SPEED = 0.6
"""Velocity change of one push, frame sides per second."""
MAX_SPEED = 3.0
"""Pushes cannot make a ball faster than this, which also rules out tunnelling within a substep."""
_CONTACT = 2 * RADIUS
# Overlapping balls are pushed to slightly more than touching, so that rounding cannot leave them
# overlapping and the correction settles in one pass.
_SEPARATION = _CONTACT * (1 + 1e-9)
_CORRECTION_ITERS = 10

# A blob smaller than this fraction of a ball's area is noise, not a ball.
_MIN_AREA_FRACTION = 0.3
# A blob whose overlap (IoU) with a disk at its centroid is below this is not a ball.
_MIN_IOU = 0.5


@dataclass(frozen=True, eq=False)
class BounceState:
    """An immutable ``bounce`` state, in frame-side units (x right, y down, the box is [0, 1]^2).

    Attributes:
        positions: float64 [K,2] ball centres (x, y); 0 where absent.
        velocities: float64 [K,2] per second; 0 where absent.
        present: bool [K] whether slot k (the ``COLOR_NAMES[k]`` ball) is in the scene.
        t: steps taken since reset.
    """

    positions: np.ndarray
    velocities: np.ndarray
    present: np.ndarray
    t: int = 0


def _overlapping_pairs(pos: np.ndarray, slots: np.ndarray) -> list[tuple[int, int]]:
    return [
        (int(i), int(j))
        for a, i in enumerate(slots)
        for j in slots[a + 1 :]
        if np.hypot(*(pos[j] - pos[i])) < _CONTACT
    ]


def _substep(pos: np.ndarray, vel: np.ndarray, slots: np.ndarray, dt: float) -> None:
    """Advances present balls by ``dt`` in place: ballistic flight, walls, then collisions."""
    before = pos.copy()
    # Exact ballistic motion under constant gravity between collisions.
    pos[slots, 0] += vel[slots, 0] * dt
    pos[slots, 1] += vel[slots, 1] * dt + 0.5 * GRAVITY * dt * dt
    vel[slots, 1] += GRAVITY * dt
    lo, hi = RADIUS, 1.0 - RADIUS
    # Elastic walls: mirror the position back inside and point the velocity inwards.
    p, v = pos[slots], vel[slots]
    below, above = p < lo, p > hi
    mirrored = np.clip(np.where(below, 2 * lo - p, np.where(above, 2 * hi - p, p)), lo, hi)
    v = np.where(below, np.abs(v), np.where(above, -np.abs(v), v))
    # Mirroring moves a ball vertically by a jump gravity did no work for; set the vertical speed
    # from energy conservation instead, or every floor bounce would gain energy.
    vy2 = v[:, 1] ** 2 + 2 * GRAVITY * (mirrored[:, 1] - p[:, 1])
    v[:, 1] = np.sign(v[:, 1]) * np.sqrt(np.maximum(vy2, 0.0))
    pos[slots], vel[slots] = mirrored, v
    flown = pos.copy()

    pairs = _overlapping_pairs(pos, slots)
    for i, j in pairs:  # equal masses: exchange the velocity components along the normal
        n = _normal(pos[i], pos[j])
        approach = float((vel[j] - vel[i]) @ n)
        if approach < 0:
            vel[i] += approach * n
            vel[j] -= approach * n
    for _ in range(_CORRECTION_ITERS):
        if not pairs:
            break
        for i, j in pairs:
            n = _normal(pos[i], pos[j])
            push = 0.5 * (_SEPARATION - float(np.hypot(*(pos[j] - pos[i])))) * n
            pos[i] = np.clip(pos[i] - push, lo, hi)
            pos[j] = np.clip(pos[j] + push, lo, hi)
        pairs = _overlapping_pairs(pos, slots)
    if pairs:
        # Correction did not converge (balls wedged in a corner): keep the last valid positions,
        # which never overlap, so rendering and perception stay exact.
        pos[slots] = before[slots]
    _conserve_energy(pos, vel, slots, flown)


def _conserve_energy(
    pos: np.ndarray, vel: np.ndarray, slots: np.ndarray, flown: np.ndarray
) -> None:
    """Rescales velocities in place so positional corrections neither add nor remove energy.

    The total kinetic energy absorbs the potential energy the correction moved, spread over all
    balls: a ball a collision just brought to rest has no speed of its own to rescale.

    Args:
        pos: float64 [K,2] corrected positions.
        vel: float64 [K,2] velocities, rescaled in place.
        slots: int [N] present slots.
        flown: float64 [K,2] positions before the correction.
    """
    kinetic = 0.5 * float((vel[slots] ** 2).sum())
    target = kinetic + GRAVITY * float((pos[slots, 1] - flown[slots, 1]).sum())
    if kinetic > 0:
        vel[slots] *= np.sqrt(max(target, 0.0) / kinetic)


def _normal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = b - a
    dist = float(np.hypot(*d))
    # Coincident centres cannot arise from a valid state; pick a fixed axis rather than divide by 0.
    return d / dist if dist > 0 else np.array([1.0, 0.0])


class BounceEnv(Env):
    """Two to four balls of distinct colour bouncing under gravity; the agent pushes one or waits.

    Actions: ``"push the <colour> ball <up|down|left|right>"``, index ``slot * 4 + direction``
    (directions up, down, left, right), changes that ball's velocity by :data:`PUSH_SPEED` in the
    given direction (``vector`` is the unit direction (dx, dy), y down), capped at
    :data:`MAX_SPEED`; ``"wait"``, index 16, lets the world run. Either way the world then advances
    :data:`STEP_SECONDS` in :data:`SUBSTEPS` substeps. Pushes of absent balls are no-op "wait"s.

    Observation keys (``observe`` and ``perceive``): ``positions`` float64 [4,2] ball centres
    (x, y) in pixels, NaN where absent; ``present`` bool [4]. Slot k is the ``COLOR_NAMES[k]``
    ball.

    Args:
        resolution: side of the square frame in pixels.
        num_balls: balls at reset: an int, an inclusive ``[low, high]`` pair, or None for 2-4.
    """

    name: ClassVar[str] = "bounce"
    description: ClassVar[str] = "balls under gravity with elastic collisions, pushed by the agent"
    version: ClassVar[str] = "1"
    num_entities = NUM_SLOTS

    def __init__(self, resolution: int = 64, num_balls: int | Sequence[int] | None = None) -> None:
        super().__init__(resolution)
        counts = count_range(num_balls, "num_balls", 1, NUM_SLOTS)
        self._num_balls = counts or (2, NUM_SLOTS)
        self._record_config(num_balls=None if counts is None else list(counts))
        #: ball radius in pixels
        self.radius_px = RADIUS * self.resolution
        reach = int(np.ceil(self.radius_px))
        # Offsets of the window that covers any ball's disk, relative to floor(centre) - reach.
        self._window = np.arange(2 * reach + 2)
        self._reach = reach

    # ----------------------------------------------------------------------------------- dynamics
    @property
    def num_actions(self) -> int:
        return WAIT_INDEX + 1

    def reset(self, seed: int) -> BounceState:
        rng = np.random.default_rng([int(seed), 0xB0B0CE])
        lo, hi = self._num_balls
        n = int(rng.integers(lo, hi + 1))
        slots = np.sort(rng.choice(NUM_SLOTS, size=n, replace=False))
        pos = np.zeros((NUM_SLOTS, 2))
        vel = np.zeros((NUM_SLOTS, 2))
        present = np.zeros(NUM_SLOTS, dtype=bool)
        for k in slots:
            # Rejection sampling always succeeds quickly: four balls fill ~7% of the box.
            while True:
                xy = rng.uniform(RADIUS, 1 - RADIUS, size=2)
                others = pos[present]
                if np.all(np.hypot(*(others - xy).T) >= 1.5 * _SEPARATION):
                    break
            angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 1.0)
            pos[k], vel[k], present[k] = xy, speed * np.array([np.cos(angle), np.sin(angle)]), True
        return BounceState(frozen(pos), frozen(vel), frozen(present), 0)

    def actions(self, state: BounceState) -> list[Action]:
        out = [
            Action(
                index=int(k) * 4 + d,
                text=f"push the {COLOR_NAMES[k]} ball {direction}",
                vector=tuple(_DIRECTION_XY[d].tolist()),
            )
            for k in np.flatnonzero(state.present)
            for d, direction in enumerate(DIRECTIONS)
        ]
        out.append(Action(index=WAIT_INDEX, text="wait", kind="wait"))
        return out

    def _step(self, state: BounceState, action: Action) -> BounceState:
        pos, vel = state.positions.copy(), state.velocities.copy()
        if action.kind == "agent":
            slot, direction = divmod(action.index, 4)
            v = vel[slot] + PUSH_SPEED * _DIRECTION_XY[direction]
            speed = float(np.hypot(*v))
            vel[slot] = v if speed <= MAX_SPEED else v * (MAX_SPEED / speed)
        slots = np.flatnonzero(state.present)
        for _ in range(SUBSTEPS):
            _substep(pos, vel, slots, STEP_SECONDS / SUBSTEPS)
        return BounceState(frozen(pos), frozen(vel), state.present, state.t + 1)

    def energy(self, state: BounceState) -> float:
        """Total kinetic plus potential energy per unit mass (the floor is zero potential)."""
        p, v = state.positions[state.present], state.velocities[state.present]
        return float(0.5 * (v**2).sum() + GRAVITY * ((1.0 - RADIUS) - p[:, 1]).sum())

    # ----------------------------------------------------------------------------------- pixels
    def _pixel_centers(self, positions: np.ndarray) -> np.ndarray:
        # Pixel j spans [j, j+1) / R in frame units, so its centre j maps to (j + 0.5) / R.
        return positions * self.resolution - 0.5

    def render(self, state: BounceState) -> np.ndarray:
        return self.render_batch([state])[0]

    def render_batch(self, states: Sequence[BounceState]) -> np.ndarray:
        """Renders uint8 [B,R,R,3]: every (frame, ball) disk is rasterised in one vectorised pass."""
        res = self.resolution
        frames = background_frames(_FULL_PALETTE, np.full(len(states), NUM_SLOTS), res)
        if not states:
            return frames
        present = np.stack([s.present for s in states])
        b, k = np.nonzero(present)
        centers = self._pixel_centers(np.stack([s.positions for s in states])[b, k])  # [N,2]
        origin = np.floor(centers).astype(np.int64) - self._reach  # [N,2] window corner (x, y)
        cols = origin[:, 0, None, None] + self._window[None, None, :]  # [N,1,W]
        rows = origin[:, 1, None, None] + self._window[None, :, None]  # [N,W,1]
        dx = cols - centers[:, 0, None, None]
        dy = rows - centers[:, 1, None, None]
        # Strictly inside: balls that touch exactly share no pixel, and every pixel is in frame.
        inside = dx * dx + dy * dy < self.radius_px**2  # [N,W,W]
        n, r, c = np.nonzero(inside)
        stamp(
            frames,
            b[n],
            rows[n, r, 0],
            cols[n, 0, c],
            BALL_PALETTE[k[n]],
        )
        return frames

    def observe(self, state: BounceState) -> Observation:
        positions = self._pixel_centers(state.positions)
        positions[~state.present] = np.nan
        return {"positions": positions, "present": state.present.copy()}

    def perceive(self, frame: np.ndarray) -> Observation:
        frame = self._check_frame(frame)
        labels = palette_labels(frame, _FULL_PALETTE, COLOR_TOLERANCE)
        counts = np.bincount(labels.ravel() + 1, minlength=len(_FULL_PALETTE) + 1)[1:]
        min_area = _MIN_AREA_FRACTION * np.pi * self.radius_px**2
        positions = np.full((NUM_SLOTS, 2), np.nan)
        present = np.zeros(NUM_SLOTS, dtype=bool)
        for k in range(NUM_SLOTS):
            if counts[k] < min_area:
                continue
            # Any two pixels of one disk are less than a diameter apart, so the window around
            # the median keeps every pixel of a rendered ball.
            rows, cols = blob_pixels(labels, k, half_window=2 * self.radius_px + 1)
            if rows.size < min_area:
                continue
            cx, cy = cols.mean(), rows.mean()
            if self._disk_iou(rows, cols, cx, cy) < _MIN_IOU:
                continue  # scattered pixels of this colour, not a ball
            positions[k] = cx, cy
            present[k] = True
        return {"positions": positions, "present": present}

    def _disk_iou(self, rows: np.ndarray, cols: np.ndarray, cx: float, cy: float) -> float:
        """Best IoU of blob pixels with a ball's disk at (cx, cy), or with it eroded by 1 px.

        Blur on a generated frame erodes a ball by about a pixel (its blended rim matches no
        colour), so the eroded disk counts as a ball too.

        Args:
            rows: int [N] blob pixel rows.
            cols: int [N] blob pixel columns.
            cx: blob centre x in pixels.
            cy: blob centre y in pixels.
        """
        ox, oy = int(np.floor(cx)) - self._reach, int(np.floor(cy)) - self._reach
        wy, wx = np.meshgrid(oy + self._window, ox + self._window, indexing="ij")
        window_d2 = (wx - cx) ** 2 + (wy - cy) ** 2
        blob_d2 = (cols - cx) ** 2 + (rows - cy) ** 2
        best = 0.0
        for radius in (self.radius_px, self.radius_px - 1):
            disk = int((window_d2 < radius**2).sum())
            inter = int((blob_d2 < radius**2).sum())
            best = max(best, inter / (rows.size + disk - inter))
        return best


__all__ = ["COLOR_NAMES", "BounceEnv", "BounceState"]
