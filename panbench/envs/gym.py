"""Gymnasium wrappers, so RL code can use panbench envs directly (``panbench/Shapes-v0``, ...).

Registration happens on ``import panbench.envs``; ``gymnasium.make("panbench/Maze-v0")`` then
works. Observations are the rendered uint8 [H,W,3] frames; ``info`` carries the observable truth.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from panbench.envs.base import NO_INDEX, Action, Env

GYM_IDS = {
    "shapes": "panbench/Shapes-v0",
    "bounce": "panbench/Bounce-v0",
    "maze": "panbench/Maze-v0",
    "blocks": "panbench/Blocks-v0",
    "pusht": "panbench/PushT-v0",
}
#: envs registered with their continuous action space (``actions="vector"``)
VECTOR_ACTIONS = frozenset({"pusht"})


class PanbenchGymEnv(gymnasium.Env):
    """A gymnasium view of a panbench :class:`~panbench.envs.base.Env`.

    Actions are the env's stable discrete indices (``Discrete(env.num_actions)``); an index whose
    entity is absent is a no-op. With ``actions="vector"`` (``panbench/PushT-v0``) they are
    points of the env's continuous action space (its ``VectorSpace`` as a ``Box``). Goal envs (``maze``, ``blocks``) give reward 1 and terminate when
    the goal is reached; the others give reward 0 and run until the time limit.

    Args:
        env_name: a registered panbench env name.
        render_mode: only ``"rgb_array"`` (or None) is supported.
        goal: the goal passed to ``goal_reached`` (``blocks``: a goal name).
        actions: ``"discrete"`` (indices) or ``"vector"`` (the env's continuous action space).
        **kwargs: passed to :func:`panbench.envs.make` (``resolution``, env options).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012 (gymnasium's API)

    def __init__(
        self,
        env_name: str,
        render_mode: str | None = "rgb_array",
        goal: Any = None,
        actions: str = "discrete",
        **kwargs: Any,
    ) -> None:
        from panbench.envs import make

        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"Expected render_mode 'rgb_array' or None, but got {render_mode!r}.")
        self.env: Env = make(env_name, **kwargs)
        self.render_mode = render_mode
        self.goal = goal
        res = self.env.resolution
        self.observation_space = spaces.Box(0, 255, shape=(res, res, 3), dtype=np.uint8)
        if actions not in ("discrete", "vector"):
            raise ValueError(f"Expected actions 'discrete' or 'vector', but got {actions!r}.")
        vector_space = self.env.action_space
        if actions == "vector" and vector_space is None:
            raise ValueError(f"Env {env_name!r} has no continuous action space.")
        self.vector = actions == "vector"
        self.action_space = (
            vector_space.to_gym()
            if self.vector and vector_space is not None
            else spaces.Discrete(self.env.num_actions)
        )
        self._state: Any = None
        self._has_goal = type(self.env).goal_reached is not Env.goal_reached
        goals = self.env.goals()
        if self._has_goal and goal is None:
            if len(goals) != 1:
                raise ValueError(
                    f"Env {env_name!r} has several goals; pass goal=... to gymnasium.make, "
                    f"one of: {', '.join(goals)}."
                )
            self.goal = goals[0]

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = dict(self.env.observe(self._state))
        info["action_texts"] = {a.index: a.text for a in self.env.actions(self._state)}
        return info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(2**31)) if seed is None else int(seed)
        self._state = self.env.reset(episode_seed)
        return self.env.render(self._state), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise RuntimeError("Call reset() before step().")
        if self.vector:
            vector = tuple(float(v) for v in np.ravel(action))
            self._state = self.env.step(self._state, Action(NO_INDEX, "", vector=vector))
        else:
            self._state = self.env.step(self._state, int(action))
        done = bool(self._has_goal and self.env.goal_reached(self._state, self.goal))
        return self.env.render(self._state), float(done), done, False, self._info()

    def render(self) -> np.ndarray | None:
        if self.render_mode is None or self._state is None:
            return None
        return self.env.render(self._state)


def register_envs() -> None:
    """Registers every built-in env with gymnasium (idempotent)."""
    for name, gym_id in GYM_IDS.items():
        if gym_id not in gymnasium.registry:
            gymnasium.register(
                id=gym_id,
                entry_point="panbench.envs.gym:PanbenchGymEnv",
                kwargs={
                    "env_name": name,
                    "actions": "vector" if name in VECTOR_ACTIONS else "discrete",
                },
                max_episode_steps=200,
            )
