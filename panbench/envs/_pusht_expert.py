"""PushT's scripted expert (for policy evaluation): choose a push, walk round the T to it, push.

Read from an observation alone (agent position, T pose), in world units:

1. Every candidate push (a contact point on the T's outline with its outward normal, pushed
   along the inward normal at two strengths) is simulated one control step with the true
   physics from the observed pose, the agent placed just outside the contact point; the push
   that brings the T's corners closest to the goal's wins (None when none improves).
2. If the agent is within reach of that push's start, it pushes; otherwise it walks there in a
   straight line when the way is clear of the T, else round the T (tangentially about its
   centroid, kept outside a safety ring), so that it does not knock the T on the way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: (x, y, normal x, normal y) in the T's body frame: points on its outline and outward normals
CONTACTS: tuple[tuple[float, float, float, float], ...] = (
    *((x, 0.0, 0.0, -1.0) for x in (-50.0, -25.0, 0.0, 25.0, 50.0)),  # top of the bar
    *((x, 30.0, 0.0, 1.0) for x in (-50.0, -30.0, 30.0, 50.0)),  # under the bar
    (-60.0, 15.0, -1.0, 0.0),
    (60.0, 15.0, 1.0, 0.0),  # the bar's ends
    *((-15.0, y, -1.0, 0.0) for y in (60.0, 105.0)),
    *((15.0, y, 1.0, 0.0) for y in (60.0, 105.0)),  # the stem's sides
    (0.0, 120.0, 0.0, 1.0),  # the stem's foot
)
STRENGTHS = (0.15, 0.4, 1.0)
#: how far outside the outline (beyond the agent's radius) a push starts, world units
STANDOFF = 4.0
#: the agent pushes once it is this close to a push's start
REACH = 8.0
#: radius about the T's centroid that the agent keeps outside while walking round it
RING = 110.0


def _rotate(angle: float, v: np.ndarray) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def choose_push(env: Any, state: Any, goal: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(start point, push vector) of the best one-step push from ``state``'s T pose, or None.

    ``env`` is the :class:`~panbench.envs.pusht.PushTEnv`; ``state`` a PushTState at rest.
    """
    from panbench.envs.pusht import _AGENT_RADIUS, GOAL, PushTState, keypoint_distance

    x, y = state.block
    best, best_cost = None, keypoint_distance(x, y, state.angle, GOAL)
    for cx, cy, nx, ny in CONTACTS:
        point = np.array(state.block) + _rotate(state.angle, np.array([cx, cy]))
        normal = _rotate(state.angle, np.array([nx, ny]))
        start = point + normal * (_AGENT_RADIUS + STANDOFF)
        placed = PushTState(
            (float(start[0]), float(start[1])),
            (0.0, 0.0),
            state.block,
            state.angle,
            (0.0, 0.0),
            0.0,
        )
        for strength in STRENGTHS:
            vector = -normal * strength
            after = env._step(placed, env.vector_action(placed, vector))
            cost = keypoint_distance(*after.block, after.angle, GOAL)
            if cost < best_cost - 1e-6:
                best, best_cost = (start, vector), cost
    return best


def approach(state: Any, start: np.ndarray, move_scale: float, blocked: Any) -> np.ndarray:
    """The action vector that walks the agent toward ``start`` without touching the T.

    ``blocked(a, b)`` says whether the straight way from a to b passes through the T.
    """
    from panbench.envs.pusht import _T_CENTROID_Y

    agent = np.array(state.agent)
    gap = start - agent
    if not blocked(agent, start):
        return gap / max(float(np.linalg.norm(gap)), move_scale)
    centre = np.array(state.block) + _rotate(state.angle, np.array([0.0, _T_CENTROID_Y]))
    out = agent - centre
    radius = max(float(np.linalg.norm(out)), 1e-6)
    out /= radius
    tangent = np.array([-out[1], out[0]])
    if float(np.dot(tangent, start - centre)) < 0:  # turn the short way round
        tangent = -tangent
    step = tangent + out * max(0.0, (RING - radius) / move_scale)
    return step / max(float(np.linalg.norm(step)), 1.0)
