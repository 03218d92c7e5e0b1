"""PushT (gym-pusht on pymunk) behind the Env contract: push the T-block onto its goal pose.

The physics is gym-pusht's own (its pymunk space, agent, T-block and PD controller, pinned with
the package version); panbench adds what its contract needs:

* immutable states that hold every moving quantity (agent position and velocity, block pose and
  velocities), so a state is cloned by keeping it. Each step rebuilds gym-pusht's space from the
  state and runs its control step, so a step is a pure function of (state, action): the same
  state and action give the same next state whatever was simulated before.
* continuous actions: ``Action.vector`` = (dx, dy) in [-1, 1]^2 moves the PD target to the agent
  position plus ``move_scale`` world units times (dx, dy) (clipped to the 512 x 512 workspace);
  nine discrete actions (eight directions and wait) with the same vectors and their texts. With
  ``action_mode="absolute"`` the vector is instead the PD target's place in the workspace
  (gym-pusht's own action, scaled from [0, 512]^2 to [-1, 1]^2), and the discrete actions carry
  the targets their moves give in each state.
* rendering in numpy at the env's resolution (flat colours, each pixel's colour is what covers
  its centre), so perception from pixels is exact up to the pixel grid:
  ``perceive`` fits the agent (disk centroid) and the T pose (centroid, principal axis and the
  sign of the third moment along it) from their fixed colours.

World coordinates are gym-pusht's: 512 x 512 units, x to the right, y down as drawn. Observations
are in pixels of the rendered frame (panbench's convention, see :mod:`panbench.envs.base`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from panbench.envs.base import NO_INDEX, Action, Env, Observation, VectorSpace
from panbench.errors import ConfigError

__all__ = ["GOAL", "SUCCESS_THRESHOLD", "PushTEnv", "PushTState", "t_polygons"]

#: the workspace side in world units (gym-pusht's)
WORLD = 512.0
#: gym-pusht's goal pose (x, y, angle) and success threshold on coverage
GOAL = (256.0, 256.0, math.pi / 4)
SUCCESS_THRESHOLD = 0.95
#: weight of the agent's distance to the T in ``goal_distance`` (a planning cost that is flat
#: while the agent is away from the T gives a planner nothing to follow)
APPROACH_WEIGHT = 0.1
#: the T in the block's body frame (gym-pusht's ``add_tee`` with scale 30, length 4)
_BAR = ((-60.0, 0.0), (60.0, 30.0))  # (x0, y0), (x1, y1)
_STEM = ((-15.0, 30.0), (15.0, 120.0))
_AGENT_RADIUS = 15.0
#: area centroid of the T along its symmetry axis (body-frame y), world units
_T_CENTROID_Y = (3600.0 * 15.0 + 2700.0 * 75.0) / 6300.0
#: keypoints of the T in the body frame (the eight corners, gym-pusht's ``get_keypoints`` order)
_KEYPOINTS = np.array(
    [[-60, 30], [60, 30], [60, 0], [-60, 0], [-15, 30], [-15, 120], [15, 120], [15, 30]], float
)

# The colours of gym-pusht's own frames: the goal is LightGreen; pymunk's debug drawing fills
# the block (LightSlateGray) and the agent (RoyalBlue) lighter, as below.
BACKGROUND_RGB = (255, 255, 255)
GOAL_RGB = (144, 238, 144)
BLOCK_RGB = (143, 163, 184)
AGENT_RGB = (78, 126, 255)
WALL_RGB = (211, 211, 211)
_PALETTE = np.array([BACKGROUND_RGB, GOAL_RGB, BLOCK_RGB, AGENT_RGB, WALL_RGB], dtype=np.int32)
_PALETTE_BLOCK, _PALETTE_AGENT = 2, 3
_COLOUR_TOLERANCE = 50.0  # max RGB distance of a pixel to its palette colour

#: (name, dx, dy) of discrete actions 0..7; 8 is "wait"
_DIAG = math.sqrt(0.5)
DIRECTIONS: tuple[tuple[str, float, float], ...] = (
    ("up", 0.0, -1.0),
    ("up-right", _DIAG, -_DIAG),
    ("right", 1.0, 0.0),
    ("down-right", _DIAG, _DIAG),
    ("down", 0.0, 1.0),
    ("down-left", -_DIAG, _DIAG),
    ("left", -1.0, 0.0),
    ("up-left", -_DIAG, -_DIAG),
)
WAIT_INDEX = 8
#: what ``Action.vector`` commands: a move of the PD target from the agent, or its place
ACTION_MODES = ("relative", "absolute")
_SPACE = VectorSpace(low=(-1.0, -1.0), high=(1.0, 1.0))


@dataclass(frozen=True)
class PushTState:
    """Everything that moves, in world units (gym-pusht's bodies), and the step count."""

    agent: tuple[float, float]
    agent_velocity: tuple[float, float]
    block: tuple[float, float]
    angle: float
    block_velocity: tuple[float, float]
    block_spin: float
    steps: int = 0


def t_polygons(x: float, y: float, angle: float) -> list[np.ndarray]:
    """The T's two rectangles at pose (x, y, angle) as float [4, 2] world-coordinate corners."""
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    out = []
    for (x0, y0), (x1, y1) in (_BAR, _STEM):
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        out.append(corners @ rot.T + (x, y))
    return out


def coverage(x: float, y: float, angle: float, goal: tuple[float, float, float] = GOAL) -> float:
    """Fraction of the goal T's area that the T at (x, y, angle) covers (gym-pusht's reward)."""
    target = _t_shape(*goal)
    return float(target.intersection(_t_shape(x, y, angle)).area / target.area)


@functools.lru_cache(maxsize=8)
def _t_shape(x: float, y: float, angle: float) -> Any:
    """The T at a pose as a shapely MultiPolygon (cached: the goal's is asked for every step)."""
    from shapely.geometry import MultiPolygon, Polygon

    return MultiPolygon([Polygon(p) for p in t_polygons(x, y, angle)])


def keypoint_distance(x: float, y: float, angle: float, goal: tuple[float, float, float]) -> float:
    """Mean distance (world units) between the T's eight corners at a pose and at ``goal``."""
    a = _KEYPOINTS @ _rotation(angle).T + (x, y)
    b = _KEYPOINTS @ _rotation(goal[2]).T + goal[:2]
    return float(np.linalg.norm(a - b, axis=1).mean())


def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _wrap(angle: float) -> float:
    """``angle`` in (-pi, pi]."""
    return float(math.pi - (math.pi - angle) % (2 * math.pi))


def _gym_pusht() -> Any:
    """gym-pusht's env class, imported lazily (the ``pusht`` extra), quietly."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from gym_pusht.envs.pusht import PushTEnv as GymPushT
    except ImportError as err:
        raise ConfigError(
            f"The pusht env needs gym-pusht and pymunk ({err}); install them with "
            "`pip install -e .[pusht]` and `pip install --no-deps gym-pusht==0.1.8`."
        ) from None
    return GymPushT


class PushTEnv(Env):
    """PushT: a blue disk agent pushes a grey T-block onto the green goal T.

    Actions: ``Action.vector`` (dx, dy) in [-1, 1]^2 (:attr:`action_space`) moves gym-pusht's
    PD target ``move_scale`` world units times (dx, dy) from the agent; one action is one
    gym-pusht control step (0.1 s, ten physics steps). Discrete indices 0-7 are the unit
    directions (``"move the agent up-left"``), 8 is ``"wait"`` (target at the agent). Index-less
    vector actions (:meth:`vector_action`) carry the vector itself and a text naming its nearest
    direction.

    Observation keys (``observe`` and ``perceive``):
        positions: float64 [2, 2], pixel (x, y) of the agent centre (slot 0) and of the
            T-block's body origin (slot 1: the middle of the top edge of the T's bar).
        present: bool [2].
        angle: float64 [1], the T's angle in radians, in (-pi, pi].
        coverage: float64 [1], the fraction of the goal T covered (gym-pusht's measure).

    With ``action_mode="absolute"``, ``Action.vector`` (x, y) in [-1, 1]^2 is the PD target
    itself, at world ((x + 1) / 2 * 512, (y + 1) / 2 * 512), as gym-pusht's own actions (and
    LeRobot's PushT recordings) give it; its text is ``"move the agent to (x, y)"`` in world
    units. Discrete actions keep their moves (``move_scale`` from the agent) and carry the
    absolute target each gives in the state they are listed for.

    Goal ``"push-t"``: coverage above ``success_threshold`` (gym-pusht's 0.95 by default).
    :meth:`goal_distance` is, in pixels, the mean distance between the T's eight corners and the
    goal's plus 0.1 times the gap between the agent and the T, 0 once the goal is reached.

    Args:
        resolution: frame side in pixels (multiples of 8, 32 to 512; gym-pusht renders 96).
        move_scale: world units the PD target moves for a unit vector.
        max_offset: None: gym-pusht's own random reset (agent and block anywhere). A number: the
            block starts within this many world units of the goal position (uniform in a disk)
            and ``max_rotation`` degrees of its angle, the agent anywhere clear of the block;
            the short-horizon starts planning tasks use.
        max_rotation: see ``max_offset`` (degrees).
        success_threshold: the coverage above which the goal is reached (gym-pusht's 0.95).
        action_mode: ``"relative"`` (vectors move the PD target from the agent) or
            ``"absolute"`` (vectors place it in the workspace, gym-pusht's own actions).
    """

    name: ClassVar[str] = "pusht"
    description: ClassVar[str] = "PushT (gym-pusht, pymunk): push the grey T onto the green goal T."
    version: ClassVar[str] = "1"

    def __init__(
        self,
        resolution: int = 96,
        move_scale: float = 100.0,
        max_offset: float | None = None,
        max_rotation: float = 30.0,
        success_threshold: float = SUCCESS_THRESHOLD,
        action_mode: str = "relative",
    ) -> None:
        super().__init__(resolution)
        if action_mode not in ACTION_MODES:
            raise ConfigError(
                f"Expected action_mode to be one of {', '.join(ACTION_MODES)}, but got "
                f"{action_mode!r}."
            )
        self.action_mode = action_mode
        if (
            isinstance(success_threshold, bool)
            or not isinstance(success_threshold, (int, float))
            or not 0.5 <= success_threshold < 1.0
        ):
            raise ConfigError(
                f"Expected success_threshold in [0.5, 1), but got {success_threshold!r}."
            )
        self.success_threshold = float(success_threshold)
        for label, value, lo, hi in (
            ("move_scale", move_scale, 1.0, 512.0),
            ("max_rotation", max_rotation, 0.0, 180.0),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not lo <= value <= hi
            ):
                raise ConfigError(
                    f"Expected {label} to be a number in [{lo:g}, {hi:g}], but got {value!r}."
                )
        if max_offset is not None and (
            isinstance(max_offset, bool)
            or not isinstance(max_offset, (int, float))
            or not 0 <= max_offset <= 200
        ):
            raise ConfigError(
                f"Expected max_offset to be None or in [0, 200], but got {max_offset!r}."
            )
        self.move_scale = float(move_scale)
        self.max_offset = None if max_offset is None else float(max_offset)
        self.max_rotation = float(max_rotation)
        self._record_config(
            move_scale=self.move_scale,
            max_offset=self.max_offset,
            max_rotation=self.max_rotation,
            success_threshold=self.success_threshold,
            action_mode=self.action_mode,
        )
        self.num_entities = 2
        self._sim = _gym_pusht()(obs_type="state")
        self._scale = self.resolution / WORLD  # pixels per world unit
        centres = (np.arange(self.resolution) + 0.5) / self._scale
        self._grid = np.stack(np.meshgrid(centres, centres), axis=-1)  # [R, R, 2] world (x, y)
        self._backdrop: np.ndarray | None = None
        self._actions = [
            Action(index=i, text=f"move the agent {name}", vector=(dx, dy))
            for i, (name, dx, dy) in enumerate(DIRECTIONS)
        ] + [Action(index=WAIT_INDEX, text="wait", kind="wait", vector=(0.0, 0.0))]

    # ----------------------------------------------------------------------------------- dynamics
    def reset(self, seed: int) -> PushTState:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"Expected a non-negative integer seed, but got {seed!r}.")
        sim = self._sim
        if self.max_offset is None:
            sim.reset(seed=int(seed))
            return self._read(0)
        rng = np.random.default_rng([int(seed), 7])
        radius = self.max_offset * math.sqrt(rng.random())
        phi = rng.uniform(0, 2 * math.pi)
        block = (GOAL[0] + radius * math.cos(phi), GOAL[1] + radius * math.sin(phi))
        angle = GOAL[2] + math.radians(rng.uniform(-self.max_rotation, self.max_rotation))
        from shapely.geometry import Point

        body = _t_shape(*block, angle)
        while True:  # the agent 5 to 60 units clear of the block
            agent = (float(rng.uniform(80, 432)), float(rng.uniform(80, 432)))
            if 5 < body.distance(Point(agent)) - _AGENT_RADIUS < 60:
                break
        state = PushTState(agent, (0.0, 0.0), block, _wrap(angle), (0.0, 0.0), 0.0)
        return state

    def _read(self, steps: int) -> PushTState:
        sim = self._sim
        return PushTState(
            agent=(float(sim.agent.position.x), float(sim.agent.position.y)),
            agent_velocity=(float(sim.agent.velocity.x), float(sim.agent.velocity.y)),
            block=(float(sim.block.position.x), float(sim.block.position.y)),
            angle=_wrap(float(sim.block.angle)),
            block_velocity=(float(sim.block.velocity.x), float(sim.block.velocity.y)),
            block_spin=float(sim.block.angular_velocity),
            steps=steps,
        )

    @property
    def num_actions(self) -> int:
        return len(self._actions)

    @property
    def action_space(self) -> VectorSpace:
        """[-1, 1]^2: the PD target's move in units of ``move_scale`` (``relative``), or its
        place in the workspace (``absolute``)."""
        return _SPACE

    def actions(self, state: PushTState) -> list[Action]:
        if self.action_mode == "relative":
            return list(self._actions)
        return [
            dataclasses.replace(a, vector=self._from_move(state, a.vector)) for a in self._actions
        ]

    def _moved(self, state: PushTState | None, move: Any) -> np.ndarray:
        """World (x, y) of the PD target ``move_scale`` world units times ``move`` from the
        agent (a relative move)."""
        assert state is not None, "a relative move needs the state it starts from"
        target = np.asarray(state.agent) + self.move_scale * np.asarray(move, dtype=np.float64)
        return np.clip(target, 0.0, WORLD)

    def _from_move(self, state: PushTState, move: Any) -> tuple[float, float]:
        """The vector (in this env's ``action_mode``) that commands the relative ``move``."""
        if self.action_mode == "relative":
            return (float(move[0]), float(move[1]))
        v = self._moved(state, move) / WORLD * 2.0 - 1.0
        return (float(v[0]), float(v[1]))

    def _target(self, state: PushTState | None, vector: Any) -> tuple[float, float]:
        """World (x, y) of the PD target that ``vector`` commands in ``state`` (any state, or
        None, in ``absolute`` mode)."""
        v = np.asarray(vector if vector is not None else (0.0, 0.0), dtype=np.float64)
        if self.action_mode == "absolute":
            target = np.clip((v + 1.0) / 2.0 * WORLD, 0.0, WORLD)
        else:
            target = self._moved(state, v)
        return (float(target[0]), float(target[1]))

    def vector_action(self, state: PushTState, vector: Any) -> Action:
        v = _SPACE.check(vector, f"Env {self.name!r}")
        if self.action_mode == "absolute":
            x, y = self._target(state, v)
            text = f"move the agent to ({x:.0f}, {y:.0f})"
        elif float(np.hypot(*v)) < 0.1:
            text = "wait"
        else:
            nearest = max(DIRECTIONS, key=lambda d: d[1] * v[0] + d[2] * v[1])
            text = f"move the agent {nearest[0]}"
        return Action(index=NO_INDEX, text=text, vector=(float(v[0]), float(v[1])))

    def random_action(self, state: PushTState, rng: np.random.Generator) -> Action:
        """A uniform vector of the action space (PushT's controls are continuous)."""
        return self.vector_action(state, _SPACE.sample(rng))

    def _step(self, state: PushTState, action: Action) -> PushTState:
        sim = self._sim
        sim._setup()  # a fresh space: no contact cache carried over from other states
        sim.agent.position = state.agent
        sim.agent.velocity = state.agent_velocity
        # Chipmunk turns a body about its centre of gravity: set the angle first, so that the
        # position set next is the body origin's.
        sim.block.angle = state.angle
        sim.block.position = state.block
        sim.block.velocity = state.block_velocity
        sim.block.angular_velocity = state.block_spin
        _control_step(sim, self._target(state, action.vector))
        return self._read(state.steps + 1)

    # ----------------------------------------------------------------------------------- pixels
    def _t_mask(
        self, x: float, y: float, angle: float, grid: np.ndarray | None = None
    ) -> np.ndarray:
        """bool [h, w]: the pixels of ``grid`` (world centres [h, w, 2], the whole frame's by
        default) whose centre the T at (x, y, angle) covers."""
        grid = self._grid if grid is None else grid
        local = (grid - (x, y)) @ _rotation(angle)  # world -> body frame (R^T applied)
        mask = np.zeros(grid.shape[:2], dtype=bool)
        for (x0, y0), (x1, y1) in (_BAR, _STEM):
            mask |= (
                (local[..., 0] >= x0)
                & (local[..., 0] <= x1)
                & (local[..., 1] >= y0)
                & (local[..., 1] <= y1)
            )
        return mask

    def _background(self) -> np.ndarray:
        """uint8 [R, R, 3]: what every frame shows under the T and the agent (walls, goal T);
        drawn once per env."""
        if self._backdrop is None:
            frame = np.empty((self.resolution, self.resolution, 3), dtype=np.uint8)
            frame[:] = BACKGROUND_RGB
            g = self._grid
            wall = (g < 7.0) | (g > WORLD - 7.0)  # gym-pusht's wall segments at 5 and 506, radius 2
            frame[wall.any(-1)] = WALL_RGB
            frame[self._t_mask(*GOAL)] = GOAL_RGB
            self._backdrop = frame
        return self._backdrop

    def _window(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice]:
        """(rows, cols) of the pixels whose centres may lie in the world box [lo, hi]."""
        a = np.clip(np.floor(np.asarray(lo) * self._scale - 1).astype(int), 0, self.resolution)
        b = np.clip(np.ceil(np.asarray(hi) * self._scale + 1).astype(int), 0, self.resolution)
        return slice(int(a[1]), int(b[1])), slice(int(a[0]), int(b[0]))

    def render(self, state: PushTState) -> np.ndarray:
        # The same per-pixel tests as a full-frame drawing, evaluated only inside each moving
        # shape's bounding box (the pixels outside it fail them): identical frames, less work.
        frame = self._background().copy()
        corners = np.concatenate(t_polygons(*state.block, state.angle))
        rows, cols = self._window(corners.min(axis=0), corners.max(axis=0))
        mask = self._t_mask(*state.block, state.angle, self._grid[rows, cols])
        frame[rows, cols][mask] = BLOCK_RGB
        agent = np.asarray(state.agent)
        rows, cols = self._window(agent - _AGENT_RADIUS, agent + _AGENT_RADIUS)
        disk = ((self._grid[rows, cols] - state.agent) ** 2).sum(-1) <= _AGENT_RADIUS**2
        frame[rows, cols][disk] = AGENT_RGB
        return frame

    def _pixels(self, xy: tuple[float, float] | np.ndarray) -> np.ndarray:
        return np.asarray(xy, dtype=np.float64) * self._scale - 0.5

    def observe(self, state: PushTState) -> Observation:
        return {
            "positions": np.stack([self._pixels(state.agent), self._pixels(state.block)]),
            "present": np.array([True, True]),
            "angle": np.array([state.angle]),
            "coverage": np.array([coverage(*state.block, state.angle)]),
        }

    def perceive(self, frame: np.ndarray) -> Observation:
        label = _palette_labels(self._check_frame(frame))
        positions = np.full((2, 2), np.nan)
        present = np.zeros(2, dtype=bool)
        angle = math.nan
        min_pixels = max(3.0, 0.25 * (self._scale * _AGENT_RADIUS) ** 2)
        agent = _largest_blob(label == _PALETTE_AGENT)
        if agent.sum() >= min_pixels:
            rows, cols = np.nonzero(agent)
            positions[0] = (cols.mean(), rows.mean())
            present[0] = True
        block = _largest_blob(label == _PALETTE_BLOCK)
        if block.sum() >= 4 * min_pixels:
            pose = _fit_t(block)
            if pose is not None:
                centre, angle = pose
                origin = centre - self._scale * _rotation(angle) @ (0.0, _T_CENTROID_Y)
                positions[1] = origin
                present[1] = True
        cover = math.nan
        if present[1]:
            cover = coverage(*self._world(positions[1]), angle)
        return {
            "positions": positions,
            "present": present,
            "angle": np.array([angle]),
            "coverage": np.array([cover]),
        }

    def _world(self, pixel_xy: np.ndarray) -> tuple[float, float]:
        x, y = (np.asarray(pixel_xy) + 0.5) / self._scale
        return float(x), float(y)

    # ----------------------------------------------------------------------------------- goals
    def goals(self) -> list[str]:
        return ["push-t"]

    def _check_goal(self, goal: Any) -> None:
        if goal not in (None, "push-t"):
            raise ConfigError(f"Unknown goal {goal!r} for env 'pusht'; expected 'push-t'.")

    def goal_state(self, state: PushTState, goal: Any = None) -> PushTState:
        """``state`` with the T on the goal pose, at rest (the agent where it is, or beside
        the goal T if it would overlap it): the goal image of image-goal scoring."""
        self._check_goal(goal)
        from shapely.geometry import Point

        body = _t_shape(*GOAL)
        agent = state.agent
        if body.distance(Point(agent)) < _AGENT_RADIUS:
            agent = (GOAL[0], GOAL[1] - 60.0)  # above the bar, clear of the T
        return PushTState(agent, (0.0, 0.0), GOAL[:2], GOAL[2], (0.0, 0.0), 0.0, state.steps)

    def goal_reached(self, state: PushTState, goal: Any = None) -> bool:
        self._check_goal(goal)
        return coverage(*state.block, state.angle) > self.success_threshold

    def goal_distance(self, obs: Observation, goal: Any = None) -> float:
        self._check_goal(goal)
        if not bool(np.asarray(obs["present"])[1]):
            return float(WORLD * self._scale)  # no T seen: as far as the frame is wide
        if float(np.asarray(obs["coverage"])[0]) > self.success_threshold:
            return 0.0
        x, y = self._world(np.asarray(obs["positions"])[1])
        angle = float(np.asarray(obs["angle"])[0])
        distance = keypoint_distance(x, y, angle, GOAL)
        if bool(np.asarray(obs["present"])[0]):  # approach: the T only moves when touched
            distance += APPROACH_WEIGHT * _gap(
                self._world(np.asarray(obs["positions"])[0]), x, y, angle
            )
        return distance * self._scale

    def expert_action(self, obs: Observation, goal: Any = None) -> Action | None:
        """A scripted pusher (the expert of policy evaluation): of candidate pushes at
        points of the T's outline, the one whose simulated step from the observed pose (at
        rest) brings the T's corners closest to the goal's; the agent pushes when at that
        push's start, else walks there, round the T when it is in the way. None when the goal
        holds, the agent or the T is not seen, or no push helps."""
        self._check_goal(goal)
        present = np.asarray(obs["present"], dtype=bool).reshape(-1)
        if not present.all() or self.goal_distance(obs, goal) == 0.0:
            return None
        positions = np.asarray(obs["positions"], dtype=np.float64)
        angle = float(np.asarray(obs["angle"])[0])
        state = PushTState(
            self._world(positions[0]), (0.0, 0.0), self._world(positions[1]), angle, (0.0, 0.0), 0.0
        )
        push = _choose_push(self, state, goal)
        if push is None:
            return None
        start, vector = push
        if float(np.linalg.norm(np.asarray(state.agent) - start)) > _REACH:
            vector = _approach(state, start, self.move_scale, self._blocked(state))
        return self.vector_action(state, self._from_move(state, np.clip(vector, -1.0, 1.0)))

    def _blocked(self, state: PushTState) -> Any:
        """``blocked(a, b)``: whether the agent, walking from a to b, would touch the T."""
        from shapely.geometry import LineString

        body = _t_shape(*state.block, state.angle)

        def blocked(a: np.ndarray, b: np.ndarray) -> bool:
            return bool(body.distance(LineString([tuple(a), tuple(b)])) < _AGENT_RADIUS + 1.0)

        return blocked


def _control_step(sim: Any, target: tuple[float, float]) -> None:
    """One gym-pusht control step toward the PD ``target``: its gains, rates and space.

    gym-pusht's own ``step`` runs the same physics and then computes its reward, observation
    and info (shapely coverage included), which panbench does not need per step: done here,
    the physics is the same to the last bit (``tests/envs/test_pusht.py``) at a third of the
    cost, which is what a planner imagining with the true simulator spends its time on.
    """
    from pymunk import Vec2d

    agent, dt = sim.agent, sim.dt
    goal = Vec2d(*target)
    for _ in range(int(1 / (dt * sim.control_hz))):
        agent.velocity += (sim.k_p * (goal - agent.position) - sim.k_v * agent.velocity) * dt
        sim.space.step(dt)


def _gap(agent: tuple[float, float], x: float, y: float, angle: float) -> float:
    """World units between the agent's rim and the T at (x, y, angle) (0 when touching)."""
    from shapely.geometry import Point

    return max(0.0, float(_t_shape(x, y, angle).distance(Point(agent))) - _AGENT_RADIUS)


_PALETTE_KEYS = (_PALETTE[:, 0] << 16) | (_PALETTE[:, 1] << 8) | _PALETTE[:, 2]


def _palette_labels(frame: np.ndarray) -> np.ndarray:
    """int [H, W]: each pixel's nearest palette colour (index into ``_PALETTE``), or -1 when
    none is within ``_COLOUR_TOLERANCE``: blurred or noisy pixels go to the colour they are
    closest to, not to none. Pixels of exactly a palette colour (all of a rendered frame) are
    looked up; only the others are measured against every colour."""
    rgb = frame.astype(np.int32)
    keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    label = np.full(keys.shape, -1, dtype=np.int64)
    exact = np.zeros(keys.shape, dtype=bool)
    for index, key in enumerate(_PALETTE_KEYS):
        hit = keys == key
        label[hit] = index
        exact |= hit
    rest = rgb[~exact]  # [M, 3]
    if len(rest):
        diff = rest[:, None, :] - _PALETTE[None]
        dist2 = np.einsum("mpc,mpc->mp", diff, diff)  # squared RGB distances, integers
        nearest = dist2.argmin(axis=-1)
        close = dist2[np.arange(len(rest)), nearest] < _COLOUR_TOLERANCE**2
        label[~exact] = np.where(close, nearest, -1)
    return label


def _largest_blob(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of ``mask`` (stray pixels of noise dropped)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return labels == int(np.argmax(sizes)) + 1


def _fit_t(mask: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The T's area centroid (pixel x, y) and angle from its pixel mask, or None if degenerate.

    Coarse angle: the T's symmetry axis is its major principal axis (variance ~1214 versus
    ~718 world units^2) and its mass lies towards the bar, so the third moment along the axis
    pointing from bar to stem is positive, which fixes the axis's sign; the body frame's +y
    points from bar to stem. The principal axes of a T are weakly separated, so pixelisation
    moves them by degrees; the angle is refined from the edges: every edge of the T is at the
    block's angle modulo 90 degrees, so the gradient orientations of the (lightly smoothed)
    mask, averaged as ``exp(4i phi)`` weighted by gradient strength, give it to a fraction of a
    degree, and the coarse angle picks the quarter turn.
    """
    from scipy import ndimage

    rows, cols = np.nonzero(mask)
    pts = np.stack([cols, rows], axis=1).astype(np.float64)
    centre = pts.mean(axis=0)
    d = pts - centre
    cov = d.T @ d / len(d)
    values, vectors = np.linalg.eigh(cov)
    if values[1] <= values[0] * 1.05:
        return None  # no clear axis: not a T
    axis = vectors[:, 1]
    if ((d @ axis) ** 3).mean() < 0:
        axis = -axis
    coarse = math.atan2(-axis[0], axis[1])
    r0, c0 = max(rows.min() - 3, 0), max(cols.min() - 3, 0)
    crop = mask[r0 : rows.max() + 4, c0 : cols.max() + 4].astype(np.float64)
    soft = ndimage.gaussian_filter(crop, 1.0)
    gy, gx = ndimage.sobel(soft, axis=0), ndimage.sobel(soft, axis=1)
    z = (np.hypot(gx, gy) * np.exp(4j * np.arctan2(gy, gx))).sum()
    if abs(z) == 0:
        return centre, _wrap(coarse)
    edges = float(np.angle(z)) / 4.0
    quarter = round((coarse - edges) / (math.pi / 2))
    return centre, _wrap(edges + quarter * math.pi / 2)


# ----------------------------------------------------------------------------- the scripted pusher
# PushT's expert (policy evaluation), read from an observation alone, in world units:
# 1. every candidate push (a point of the T's outline with its outward normal, pushed along the
#    inward normal at three strengths) is simulated one control step with the true physics from
#    the observed pose at rest, the agent placed just outside the point; the push that brings the
#    T's corners closest to the goal's wins (None when none improves);
# 2. within reach of that push's start the agent pushes; otherwise it walks there, straight when
#    the way is clear of the T, else round it (tangentially about its centroid, outside a ring),
#    so that it does not knock the T on the way.

#: (x, y, normal x, normal y) in the T's body frame: points on its outline and outward normals
_CONTACTS: tuple[tuple[float, float, float, float], ...] = (
    *((x, 0.0, 0.0, -1.0) for x in (-50.0, -25.0, 0.0, 25.0, 50.0)),  # top of the bar
    *((x, 30.0, 0.0, 1.0) for x in (-50.0, -30.0, 30.0, 50.0)),  # under the bar
    (-60.0, 15.0, -1.0, 0.0),
    (60.0, 15.0, 1.0, 0.0),  # the bar's ends
    *((-15.0, y, -1.0, 0.0) for y in (60.0, 105.0)),
    *((15.0, y, 1.0, 0.0) for y in (60.0, 105.0)),  # the stem's sides
    (0.0, 120.0, 0.0, 1.0),  # the stem's foot
)
_STRENGTHS = (0.15, 0.4, 1.0)
#: how far outside the outline (beyond the agent's radius) a push starts, world units
_STANDOFF = 4.0
#: the agent pushes once it is this close to a push's start
_REACH = 8.0
#: radius about the T's centroid that the agent keeps outside while walking round it
_RING = 110.0


def _choose_push(env: Any, state: Any, goal: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(start point, push vector) of the best one-step push from ``state``'s T pose, or None.

    ``env`` is the :class:`PushTEnv`; ``state`` a :class:`PushTState` at rest.
    """
    x, y = state.block
    best, best_cost = None, keypoint_distance(x, y, state.angle, GOAL)
    for cx, cy, nx, ny in _CONTACTS:
        point = np.array(state.block) + _rotation(state.angle) @ np.array([cx, cy])
        normal = _rotation(state.angle) @ np.array([nx, ny])
        start = point + normal * (_AGENT_RADIUS + _STANDOFF)
        placed = PushTState(
            (float(start[0]), float(start[1])),
            (0.0, 0.0),
            state.block,
            state.angle,
            (0.0, 0.0),
            0.0,
        )
        for strength in _STRENGTHS:
            vector = -normal * strength
            after = env._step(placed, env.vector_action(placed, env._from_move(placed, vector)))
            cost = keypoint_distance(after.block[0], after.block[1], after.angle, GOAL)
            if cost < best_cost - 1e-6:
                best, best_cost = (start, vector), cost
    return best


def _approach(state: Any, start: np.ndarray, move_scale: float, blocked: Any) -> np.ndarray:
    """The action vector that walks the agent toward ``start`` without touching the T.

    ``blocked(a, b)`` says whether the straight way from a to b passes through the T.
    """
    agent = np.array(state.agent)
    gap = start - agent
    if not blocked(agent, start):
        return gap / max(float(np.linalg.norm(gap)), move_scale)
    centre = np.array(state.block) + _rotation(state.angle) @ np.array([0.0, _T_CENTROID_Y])
    out = agent - centre
    radius = max(float(np.linalg.norm(out)), 1e-6)
    out /= radius
    tangent = np.array([-out[1], out[0]])
    if float(np.dot(tangent, start - centre)) < 0:  # turn the short way round
        tangent = -tangent
    step = tangent + out * max(0.0, (_RING - radius) / move_scale)
    return step / max(float(np.linalg.norm(step)), 1.0)
