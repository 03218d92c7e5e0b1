"""Data-backed episode sources, one file per kind, found through the ``SOURCES`` registry.

A task on imported data names its kind in ``data.kind``; :func:`episode_source` builds that
kind's :class:`~panbench.data.episodes.EpisodeSource` (an env task gets an
:class:`~panbench.data.episodes.EnvSource`). A new kind is a new file here plus one
``SOURCES.register`` line; a plugin registers one under the entry-point group
``panbench.sources``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from panbench.data.episodes import EnvSource, EpisodeSource, TaskSpec
from panbench.registry import Registry

if TYPE_CHECKING:
    from panbench.envs.base import Env

__all__ = ["SOURCES", "episode_source", "source_kinds"]

SOURCES: Registry[type[EpisodeSource]] = Registry(
    "episode source", entry_point_group="panbench.sources"
)
SOURCES.register("wr-arena", "panbench.data.sources.wr_arena:WrArenaSource")
SOURCES.register("lerobot", "panbench.data.sources.lerobot:LeRobotSource")
SOURCES.register("videos", "panbench.data.sources.videos:VideosSource")
SOURCES.register("episodes", "panbench.data.sources.episodes:EpisodesSource")


def source_kinds() -> list[str]:
    """The data-source kinds a task's ``data.kind`` may name (sorted; plugins included)."""
    return SOURCES.names()


def episode_source(task: TaskSpec, env: Env | None = None) -> EpisodeSource:
    """The episode source of ``task``: its ``data.kind``'s, or an env source for an env task.

    Args:
        task: the task spec.
        env: the task's env (env tasks); None for a task on a data source.

    Raises:
        UnknownNameError: ``data.kind`` names no registered source.
        ConfigError: an env task without an env.
    """
    if task.data is None:
        return EnvSource.from_task(task, env)
    return SOURCES.get(task.data.kind).from_task(task, env)
