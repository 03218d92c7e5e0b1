"""``table3d``: a MuJoCo tabletop seen by a perspective camera: pushes, collisions, falls, occlusion.

Rigid objects of distinct primitive shapes and saturated colours rest on a table; a white pusher
moves on commands, objects slide, roll, topple and fall off the edges, and in the ``permanence``
scenario a wall hides part of the table. The physics is MuJoCo's (fixed 5 ms timestep, fixed
solver iterations, one thread), so the same seed gives the same frames on one machine, and a
state restored from :class:`Table3DState` steps exactly as an uninterrupted rollout would.

Scenarios (``scenario=``):

- ``push``: objects at rest, the pusher anywhere; the agent moves the pusher.
- ``outcome``: a scripted event plays out (no agent action, only ``wait``): a ball rolled at a
  cube (hit or miss), a cube slid towards an edge (falls or stays), two objects launched at each
  other. The event kind is drawn from the seed.
- ``permanence``: a wall stands near the front of the table and a ball rolls behind it and out.

Truth and perception: ``observe`` reads every object's 3D pose from the simulator and its image
position and visibility from the renderer's segmentation pass (an object is present when at
least :data:`MIN_PIXELS` of its pixels are visible; a pixel counts when at least
:data:`MIN_NEIGHBOURS` of its 8 neighbours show the same object); ``perceive`` finds the same from the colour
frame alone: saturated pixels are classified by hue to the nearest object colour (within
:data:`HUE_TOLERANCE` degrees), bright unsaturated ones are the pusher. Objects are lit with an
emissive term and no specular light, and multisampling is off, so on rendered frames the colour
classification reproduces the segmentation pixel for pixel and ``perceive(render(s))`` equals
``observe(s)``'s positions and presence exactly. An image position is the centre of an object's
visible pixels; ``observe`` also gives the projection of its 3D centre (``projected``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from panbench.envs import _mujoco
from panbench.envs.base import Action, Env, Observation
from panbench.errors import ConfigError

#: (colour name, shape, RGB in [0, 1]) of object slot k; the pusher is slot K (the last one)
SLOTS: tuple[tuple[str, str, tuple[float, float, float]], ...] = (
    ("red", "cube", (1.0, 0.0, 0.0)),
    ("green", "sphere", (0.0, 1.0, 0.0)),
    ("blue", "cylinder", (0.0, 0.0, 1.0)),
    ("yellow", "cube", (1.0, 1.0, 0.0)),
    ("magenta", "sphere", (1.0, 0.0, 1.0)),
    ("cyan", "cylinder", (0.0, 1.0, 1.0)),
)
SCENARIOS = ("push", "outcome", "permanence")
CAMERAS = ("front", "top")
DIRECTIONS: tuple[tuple[str, tuple[float, float]], ...] = (
    ("left", (-1.0, 0.0)),
    ("right", (1.0, 0.0)),
    ("forward", (0.0, 1.0)),
    ("back", (0.0, -1.0)),
)
WAIT_INDEX = len(DIRECTIONS)
PUSH_SPEED = 0.25
"""Pusher speed of a move command, m/s (``Action.vector`` is the target velocity)."""
TIMESTEP = 0.005
SUBSTEPS = 20
"""Physics steps per env step: one env step is 0.1 s."""
TABLE_HALF = 0.3
HALF_SIZE = 0.035
"""Half the size of an object (cube half-edge, sphere radius), m."""
MIN_PIXELS = 2
"""Visible pixels an object needs to count as present (truth and perception alike)."""
HUE_TOLERANCE = 25.0
"""Degrees of hue within which a saturated pixel belongs to an object colour (hues are 60 apart)."""
MIN_NEIGHBOURS = 2
"""Same-object neighbours (of 8) a pixel needs to count as part of the object."""
MIN_SATURATION = 0.5
MIN_VALUE = 60
PUSHER_MIN_VALUE = 150
PUSHER_MAX_SATURATION = 0.25
_HUES = np.array([0.0, 120.0, 240.0, 60.0, 300.0, 180.0])


@dataclass(frozen=True, eq=False)
class Table3DState:
    """An immutable ``table3d`` state.

    Attributes:
        physics: float64 MuJoCo integration state (``mj_getState``, ``mjSTATE_INTEGRATION``).
        t: env steps taken since reset.
        event: the scripted event of an ``outcome`` scene ("" otherwise).
    """

    physics: np.ndarray
    t: int = 0
    event: str = ""


def _material(name: str, rgb: tuple[float, ...], emission: float) -> str:
    r, g, b = rgb
    return (
        f'<material name="{name}" rgba="{r} {g} {b} 1" emission="{emission}" specular="0" '
        'shininess="0" reflectance="0"/>'
    )


def _object_xml(k: int) -> str:
    name, shape, _ = SLOTS[k]
    h = HALF_SIZE
    geom = {
        "cube": f'type="box" size="{h} {h} {h}" friction="0.1 0.005 0.0001"',
        "sphere": f'type="sphere" size="{h}" condim="6" friction="0.6 0.005 0.0002" density="4000"',
        "cylinder": f'type="cylinder" size="{0.85 * h} {1.3 * h}" friction="0.1 0.005 0.0001"',
    }[shape]
    return (
        f'<body name="{name}" pos="0 0 {2 * k + 1}"><freejoint/>'
        f'<geom name="{name}" {geom} material="m_{name}" contype="3" conaffinity="3"/></body>'
    )


def scene_xml(objects: int, occluder: bool) -> str:
    """The MJCF of a scene with ``objects`` object slots (and a wall when ``occluder``)."""
    mats = [_material(f"m_{SLOTS[k][0]}", SLOTS[k][2], 0.3) for k in range(objects)]
    mats.append(_material("m_pusher", (1.0, 1.0, 1.0), 0.8))
    mats.append(_material("m_table", (0.3, 0.3, 0.3), 0.0))
    mats.append(_material("m_wall", (0.35, 0.33, 0.3), 0.0))
    wall = (
        '<geom name="wall" type="box" pos="0 -0.12 0.09" size="0.13 0.015 0.09" '
        'material="m_wall" contype="1" conaffinity="1"/>'
        if occluder
        else ""
    )
    lim = TABLE_HALF - 0.03
    return f"""<mujoco model="panbench-table3d">
  <option timestep="{TIMESTEP}" iterations="30" ls_iterations="20" solver="Newton"/>
  <visual>
    <headlight ambient=".3 .3 .3" diffuse=".6 .6 .6" specular="0 0 0"/>
    <quality shadowsize="0" offsamples="0"/>
    <global offwidth="512" offheight="512"/>
  </visual>
  <asset>{"".join(mats)}</asset>
  <worldbody>
    <light directional="true" pos="0 0 2" dir="0 0 -1" diffuse=".4 .4 .4" specular="0 0 0"
           castshadow="false"/>
    <camera name="front" pos="0 -0.75 0.6" xyaxes="1 0 0 0 0.6247 0.7809" fovy="50"/>
    <camera name="top" pos="0 0 1.1" xyaxes="1 0 0 0 1 0" fovy="35"/>
    <geom name="table" type="box" pos="0 0 -0.02" size="{TABLE_HALF} {TABLE_HALF} 0.02"
          material="m_table" contype="1" conaffinity="1" friction="0.1 0.005 0.0001"/>
    {wall}
    <body name="pusher" pos="0 0 0.025">
      <joint name="px" type="slide" axis="1 0 0" range="{-lim} {lim}" limited="true"/>
      <joint name="py" type="slide" axis="0 1 0" range="{-lim} {lim}" limited="true"/>
      <geom name="pusher" type="box" size="0.03 0.03 0.02" mass="2" material="m_pusher"
            contype="2" conaffinity="2"/>
    </body>
    {"".join(_object_xml(k) for k in range(objects))}
  </worldbody>
  <actuator>
    <velocity joint="px" kv="60" ctrlrange="-1 1" ctrllimited="true"/>
    <velocity joint="py" kv="60" ctrlrange="-1 1" ctrllimited="true"/>
  </actuator>
</mujoco>"""


def _hue(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hue degrees, saturation, value 0-255) of uint8 [..., 3] pixels."""
    x = rgb.astype(np.float32)
    mx, mn = x.max(axis=-1), x.min(axis=-1)
    chroma = mx - mn
    sat = np.where(mx > 0, chroma / np.maximum(mx, 1), 0.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(
        mx == r,
        ((g - b) / safe) % 6,
        np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4),
    )
    return hue * 60.0, sat, mx


def _solid(masks: np.ndarray) -> np.ndarray:
    """Keeps the pixels of bool [K, H, W] masks with at least :data:`MIN_NEIGHBOURS` of their 8
    neighbours in the same mask: isolated specks (noise on a generated frame) are dropped.

    Applied to the truth's segmentation and to perception alike, so they stay equal."""
    padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)))
    h, w = masks.shape[1:]
    count = sum(
        padded[:, 1 + di : 1 + di + h, 1 + dj : 1 + dj + w].astype(np.int8)
        for di in (-1, 0, 1)
        for dj in (-1, 0, 1)
        if di or dj
    )
    return masks & (count >= MIN_NEIGHBOURS)


def _centroids(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions float64 [K,2] (x, y) pixel centroids, NaN where absent; present bool [K])."""
    counts = masks.sum(axis=(1, 2))
    rows = np.arange(masks.shape[1], dtype=np.float64)
    cols = np.arange(masks.shape[2], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = (masks.sum(axis=1) * cols).sum(axis=1) / counts
        y = (masks.sum(axis=2) * rows).sum(axis=1) / counts
    present = counts >= MIN_PIXELS
    pos = np.stack([x, y], axis=1)
    pos[~present] = np.nan
    return pos, present


class Table3DEnv(Env):
    """Objects on a MuJoCo table, a pusher that moves on commands, a fixed perspective camera.

    Actions: ``"move the pusher <left|right|forward|back>"`` (indices 0-3; left/right along the
    table's x axis as the front camera sees it, forward away from it), whose ``vector`` is the
    pusher's target velocity (vx, vy) in m/s, and ``"wait"`` (index 4, vector (0, 0)). The
    ``outcome`` and ``permanence`` scenarios offer only ``wait``: the scene plays out.

    Observation keys: ``positions`` float64 [K+1, 2] image centres (x, y) of the visible pixels
    of each object and of the pusher (slot K), NaN where absent; ``present`` bool [K+1];
    ``observe`` adds ``pose`` float64 [K+1, 7] (3D position, quaternion w x y z), ``projected``
    float64 [K+1, 2] (image position of the 3D centre) and ``pixels`` int [K+1] (visible pixel
    count). Slot k < K is the ``SLOTS[k]`` object.

    Args:
        resolution: side of the square frame in pixels (64-256).
        objects: the number of objects (2-6); slot k is always the ``SLOTS[k]`` object.
        scenario: one of :data:`SCENARIOS`.
        camera: one of :data:`CAMERAS` (``front``: perspective from the front, above the table;
            ``top``: looking straight down).
    """

    name: ClassVar[str] = "table3d"
    description: ClassVar[str] = (
        "MuJoCo tabletop: a pusher, objects that slide, roll, collide, fall off; occlusion"
    )
    version: ClassVar[str] = "1"
    min_resolution: ClassVar[int] = 64
    max_resolution: ClassVar[int] = 256

    def __init__(
        self, resolution: int = 64, objects: int = 3, scenario: str = "push", camera: str = "front"
    ) -> None:
        super().__init__(resolution)
        if isinstance(objects, bool) or not isinstance(objects, int) or not 2 <= objects <= 6:
            raise ConfigError(
                f"Expected objects to be an integer from 2 to 6 for env 'table3d', but got "
                f"{objects!r}."
            )
        for option, value, allowed in (
            ("scenario", scenario, SCENARIOS),
            ("camera", camera, CAMERAS),
        ):
            if value not in allowed:
                raise ConfigError(
                    f"Expected {option} to be one of {', '.join(allowed)} for env 'table3d', "
                    f"but got {value!r}."
                )
        self._record_config(objects=objects, scenario=scenario, camera=camera)
        self.objects, self.scenario, self.camera = objects, scenario, camera
        self.num_entities = objects + 1
        self._mj = _mujoco.import_mujoco()
        self.model = self._mj.MjModel.from_xml_string(scene_xml(objects, scenario == "permanence"))
        self.data = self._mj.MjData(self.model)
        self._renderer: Any = None
        geom_slot = np.full(self.model.ngeom, -1, dtype=np.int64)
        for k in range(objects):
            geom_slot[self.model.geom(SLOTS[k][0]).id] = k
        geom_slot[self.model.geom("pusher").id] = objects
        self._geom_slot = geom_slot
        self._bodies = [self.model.body(SLOTS[k][0]).id for k in range(objects)]
        self._bodies.append(self.model.body("pusher").id)
        self._qadr = [int(self.model.jnt_qposadr[self.model.body_jntadr[b]]) for b in self._bodies]
        self._vadr = [int(self.model.jnt_dofadr[self.model.body_jntadr[b]]) for b in self._bodies]

    def __getstate__(self) -> dict[str, Any]:
        # MuJoCo objects and GL contexts do not pickle; rebuild them from the config.
        return {"config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["config"])  # type: ignore[misc]

    # ----------------------------------------------------------------------------------- dynamics
    @property
    def num_actions(self) -> int:
        return WAIT_INDEX + 1

    def actions(self, state: Table3DState) -> list[Action]:
        wait = Action(index=WAIT_INDEX, text="wait", kind="wait", vector=(0.0, 0.0))
        if self.scenario != "push":
            return [wait]
        moves = [
            Action(
                index=i,
                text=f"move the pusher {name}",
                vector=(PUSH_SPEED * dx, PUSH_SPEED * dy),
            )
            for i, (name, (dx, dy)) in enumerate(DIRECTIONS)
        ]
        return [*moves, wait]

    def _step(self, state: Table3DState, action: Action) -> Table3DState:
        mj, m, d = self._mj, self.model, self.data
        _mujoco.set_state(mj, m, d, state.physics, forward=False)
        d.ctrl[:] = action.vector if action.vector is not None else (0.0, 0.0)
        for _ in range(SUBSTEPS):
            mj.mj_step(m, d)
        return Table3DState(_mujoco.get_state(mj, m, d), state.t + 1, state.event)

    def reset(self, seed: int) -> Table3DState:
        mj, m, d = self._mj, self.model, self.data
        rng = np.random.default_rng(seed)
        mj.mj_resetData(m, d)
        spots = self._spots(rng)
        for k in range(self.objects):
            self._place(k, spots[k], yaw=float(rng.uniform(0, np.pi)))
        pusher = spots[-1] if self.scenario == "push" else (-0.24, 0.24)
        d.qpos[self._qadr[-1] : self._qadr[-1] + 2] = pusher
        event = ""
        if self.scenario == "outcome":
            event = self._launch_event(rng)
        elif self.scenario == "permanence":
            self._place(1, (-0.26, 0.0), yaw=0.0)
            self._roll(1, (float(rng.uniform(0.28, 0.38)), 0.0))
        mj.mj_forward(m, d)
        return Table3DState(_mujoco.get_state(mj, m, d), 0, event)

    def _spots(self, rng: np.random.Generator) -> list[tuple[float, float]]:
        """Non-overlapping (x, y) spots for every object and the pusher (rejection sampling)."""
        spots: list[tuple[float, float]] = []
        lim = TABLE_HALF - 0.06
        while len(spots) < self.objects + 1:
            xy = (float(rng.uniform(-lim, lim)), float(rng.uniform(-lim, lim)))
            if self.scenario == "permanence" and -0.17 < xy[1] < 0.06:
                continue  # keep the wall's lane free for the rolling ball
            if all(np.hypot(xy[0] - a, xy[1] - b) > 0.11 for a, b in spots):
                spots.append(xy)
        return spots

    def _place(self, k: int, xy: tuple[float, float], yaw: float) -> None:
        shape = SLOTS[k][1]
        z = {"cube": HALF_SIZE, "sphere": HALF_SIZE, "cylinder": 1.3 * HALF_SIZE}[shape]
        a = self._qadr[k]
        self.data.qpos[a : a + 3] = (xy[0], xy[1], z + 1e-4)
        self.data.qpos[a + 3 : a + 7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))

    def _roll(self, k: int, v: tuple[float, float]) -> None:
        """Launches object ``k`` with velocity ``v``; a sphere rolls without slipping."""
        a = self._vadr[k]
        self.data.qvel[a : a + 2] = v
        if SLOTS[k][1] == "sphere":
            self.data.qvel[a + 3 : a + 5] = (-v[1] / HALF_SIZE, v[0] / HALF_SIZE)

    def _launch_event(self, rng: np.random.Generator) -> str:
        """Sets up one scripted event (drawn from ``rng``) and returns its name."""
        event = ("roll", "edge", "collide")[int(rng.integers(3))]
        if event == "roll":  # the green ball rolled at the red cube, aimed off by up to ~30 deg
            target = np.array([rng.uniform(-0.1, 0.1), rng.uniform(0.0, 0.12)])
            angle = rng.uniform(0, 2 * np.pi)
            start = target + 0.2 * np.array([np.cos(angle), np.sin(angle)])
            aim = angle + np.pi + rng.uniform(-0.5, 0.5)
            speed = rng.uniform(0.4, 0.8)
            self._place(0, (float(target[0]), float(target[1])), yaw=float(rng.uniform(0, np.pi)))
            self._place(1, (float(start[0]), float(start[1])), yaw=0.0)
            self._roll(1, (float(speed * np.cos(aim)), float(speed * np.sin(aim))))
            placed = [0, 1]
        elif event == "edge":  # the red cube slid towards the left, right or front edge
            side = int(rng.integers(3))
            gap = rng.uniform(0.05, 0.2)
            along = rng.uniform(-0.15, 0.15)
            edge = TABLE_HALF - HALF_SIZE - gap
            xy, direction = [
                ((-edge, along), (-1.0, 0.0)),
                ((edge, along), (1.0, 0.0)),
                ((along, -edge), (0.0, -1.0)),
            ][side]
            speed = rng.uniform(0.2, 0.8)
            self._place(0, xy, yaw=0.0)
            self._roll(0, (speed * direction[0], speed * direction[1]))
            placed = [0]
        else:  # the red cube and the blue cylinder (or green ball) launched at each other
            other = 2 if self.objects > 2 else 1
            y = rng.uniform(-0.1, 0.15)
            offset = rng.uniform(-0.04, 0.04)
            self._place(0, (-0.12, float(y)), yaw=0.0)
            self._place(other, (0.12, float(y + offset)), yaw=0.0)
            self._roll(0, (float(rng.uniform(0.4, 0.8)), 0.0))
            self._roll(other, (-float(rng.uniform(0.4, 0.8)), 0.0))
            placed = [0, other]
        self._clear_overlaps(rng, placed)
        return event

    def _clear_overlaps(self, rng: np.random.Generator, placed: list[int]) -> None:
        """Moves the objects an event did not place to spots clear of the placed ones.

        The pusher counts as placed; the launched objects' paths are not kept clear, so resting
        objects can be hit (part of the event).
        """
        qpos = self.data.qpos
        fixed = [tuple(qpos[self._qadr[k] : self._qadr[k] + 2]) for k in [*placed, -1]]
        lim = TABLE_HALF - 0.06
        for k in range(self.objects):
            if k in placed:
                continue
            while True:
                xy = (float(rng.uniform(-lim, lim)), float(rng.uniform(-lim, lim)))
                if all(np.hypot(xy[0] - a, xy[1] - b) > 0.12 for a, b in fixed):
                    break
            self._place(k, xy, yaw=float(rng.uniform(0, np.pi)))
            fixed.append(xy)

    # ----------------------------------------------------------------------------------- pixels
    def _render(self, state: Table3DState, segmentation: bool) -> np.ndarray:
        if self._renderer is None:
            self._renderer = _mujoco.make_renderer(self.model, self.resolution)
        r = self._renderer
        _mujoco.set_state(self._mj, self.model, self.data, state.physics)
        r.update_scene(self.data, camera=self.camera)
        if segmentation:
            r.enable_segmentation_rendering()
            try:
                return np.array(r.render(), copy=True)
            finally:
                r.disable_segmentation_rendering()
        return np.array(r.render(), dtype=np.uint8, copy=True)

    def render(self, state: Table3DState) -> np.ndarray:
        return self._render(state, segmentation=False)

    def true_masks(self, state: Table3DState) -> np.ndarray:
        """bool [K+1, H, W]: the visible pixels of each object and the pusher (segmentation)."""
        seg = self._render(state, segmentation=True)
        ids, types = seg[..., 0], seg[..., 1]
        is_geom = (types == int(self._mj.mjtObj.mjOBJ_GEOM)) & (ids >= 0)
        slot = np.where(is_geom, self._geom_slot[np.clip(ids, 0, None)], -1)
        return _solid(slot[None] == np.arange(self.num_entities)[:, None, None])

    def object_masks(self, frame: np.ndarray) -> np.ndarray:
        """bool [K+1, H, W]: each object's and the pusher's pixels, from colours alone."""
        hue, sat, val = _hue(self._check_frame(frame))
        coloured = (sat >= MIN_SATURATION) & (val >= MIN_VALUE)
        dist = np.abs((hue[..., None] - _HUES[: self.objects] + 180.0) % 360.0 - 180.0)
        nearest = dist.argmin(axis=-1)
        coloured &= dist.min(axis=-1) <= HUE_TOLERANCE
        masks = np.zeros((self.num_entities, *frame.shape[:2]), dtype=bool)
        for k in range(self.objects):
            masks[k] = coloured & (nearest == k)
        masks[-1] = (sat <= PUSHER_MAX_SATURATION) & (val >= PUSHER_MIN_VALUE)
        return _solid(masks)

    def observe(self, state: Table3DState) -> Observation:
        masks = self.true_masks(state)
        positions, present = _centroids(masks)
        pose = np.zeros((self.num_entities, 7))
        for i, b in enumerate(self._bodies):
            pose[i, :3] = self.data.xpos[b]
            pose[i, 3:] = self.data.xquat[b]
        return {
            "positions": positions,
            "present": present,
            "pose": pose,
            "projected": self.project(pose[:, :3]),
            "pixels": masks.sum(axis=(1, 2)),
        }

    def perceive(self, frame: np.ndarray) -> Observation:
        positions, present = _centroids(self.object_masks(frame))
        return {"positions": positions, "present": present}

    def project(self, points: np.ndarray) -> np.ndarray:
        """Image positions (x, y) in pixels of world points float [N, 3] in the env's camera.

        Uses the camera pose of the last state the env rendered or observed (the cameras are
        fixed, so any state gives the same).
        """
        cam = self.model.camera(self.camera).id
        pos, rot = self.data.cam_xpos[cam], self.data.cam_xmat[cam].reshape(3, 3)
        rel = (np.asarray(points, dtype=np.float64) - pos) @ rot  # camera axes: x right, y up
        depth = -rel[:, 2]
        half = self.resolution / 2
        focal = half / np.tan(np.deg2rad(self.model.cam_fovy[cam]) / 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            x = half + focal * rel[:, 0] / depth - 0.5
            y = half - focal * rel[:, 1] / depth - 0.5
        return np.stack([x, y], axis=1)

    def fell(self, state: Table3DState) -> np.ndarray:
        """bool [K+1]: whether each object (and the pusher, never) has fallen off the table."""
        _mujoco.set_state(self._mj, self.model, self.data, state.physics)
        return np.array([self.data.xpos[b][2] < -0.05 for b in self._bodies])
