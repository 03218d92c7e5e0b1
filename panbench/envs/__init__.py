"""Procedural ground-truth environments: ``make(name, resolution=64, **kwargs)`` and the registry."""

from __future__ import annotations

import inspect
import os
from typing import Any

from panbench.envs.base import Action, Env, Observation, State
from panbench.errors import ConfigError
from panbench.registry import Registry, did_you_mean

# MuJoCo (table3d, gymnasium's MuJoCo envs) picks its GL backend once, when first imported:
# offscreen EGL unless the user chose one, so that rendering works without a display.
os.environ.setdefault("MUJOCO_GL", "egl")

ENVS: Registry[type[Env]] = Registry("env", entry_point_group="panbench.envs")
ENVS.register("shapes", "panbench.envs.shapes:ShapesEnv")
ENVS.register("bounce", "panbench.envs.bounce:BounceEnv")
ENVS.register("maze", "panbench.envs.maze:MazeEnv")
ENVS.register("blocks", "panbench.envs.blocks:BlocksEnv")
ENVS.register("table3d", "panbench.envs.table3d:Table3DEnv")
for _game, _cls in (
    ("pong", "PongEnv"),
    ("breakout", "BreakoutEnv"),
    ("boxing", "BoxingEnv"),
    ("freeway", "FreewayEnv"),
    ("mspacman", "MsPacmanEnv"),
    ("spaceinvaders", "SpaceInvadersEnv"),
    ("seaquest", "SeaquestEnv"),
    ("asterix", "AsterixEnv"),
):
    ENVS.register(f"atari-{_game}", f"panbench.envs.atari:{_cls}")
ENVS.register("pusht", "panbench.envs.pusht:PushTEnv")


def make(name: str, resolution: int = 64, **kwargs: Any) -> Env:
    """Builds the env registered as ``name``.

    Args:
        name: a registered env name (``panbench ls envs`` lists them).
        resolution: side of the rendered square frame in pixels.
        **kwargs: env-specific options; unknown ones raise :class:`ConfigError`.

    Raises:
        UnknownNameError: no env is registered as ``name`` (the message suggests close names).
        ConfigError: an option is unknown or out of range.
    """
    cls = ENVS.get(name)
    params = inspect.signature(cls.__init__).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not accepts_any:
        allowed = [p for p in params if p not in ("self", "resolution")]
        for key in kwargs:
            if key not in allowed:
                raise ConfigError(
                    f"Unknown option {key!r} for env {name!r}.{did_you_mean(key, allowed)} "
                    f"Accepted options: {', '.join(allowed) or '(none)'}."
                )
    return cls(resolution=resolution, **kwargs)


def describe() -> list[tuple[str, str]]:
    """(name, one-line description) of every registered env, sorted by name."""
    return [(n, ENVS.get(n).description) for n in ENVS.names()]


__all__ = ["ENVS", "Action", "Env", "Observation", "State", "describe", "make"]


def _register_gym() -> None:
    # Gymnasium has no plugin entry point, so registration happens on import.
    from panbench.envs.gym import register_envs

    register_envs()


_register_gym()
