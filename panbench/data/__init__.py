"""Episodes: the scored ``Episode`` and its sources, the on-disk format, frames, video import.

``episode_seed`` here is the seed of a generated dataset folder's episodes
(:mod:`panbench.data.generate`); a task's episode seeds come from
:func:`panbench.data.episodes.episode_seed`.

``EpisodeDataset`` and ``collate_episodes`` import torch, so they load on first access; everything
else here needs only numpy, safetensors and (for video) PyAV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from panbench.data.episodes import EnvSource, Episode, EpisodeSource, make_episode
from panbench.data.format import (
    FORMAT_VERSION,
    DatasetIndex,
    DatasetWriter,
    EpisodeInfo,
    EpisodeRecord,
    ShardInfo,
    episode_hash,
    read_index,
    read_shard,
    verify_dataset,
)
from panbench.data.frames import RESIZE_MODES, resize_frames
from panbench.data.generate import (
    action_rng,
    episode_seed,
    generate_episodes,
    replay_episode,
    rollout_episode,
)
from panbench.data.sources import SOURCES, episode_source, source_kinds
from panbench.data.videos import import_videos, read_video, write_video

if TYPE_CHECKING:
    from panbench.data.dataset import EpisodeDataset, collate_episodes

__all__ = [
    "FORMAT_VERSION",
    "RESIZE_MODES",
    "SOURCES",
    "DatasetIndex",
    "DatasetWriter",
    "EnvSource",
    "Episode",
    "EpisodeDataset",
    "EpisodeInfo",
    "EpisodeRecord",
    "EpisodeSource",
    "ShardInfo",
    "action_rng",
    "collate_episodes",
    "episode_hash",
    "episode_seed",
    "episode_source",
    "generate_episodes",
    "import_videos",
    "make_episode",
    "read_index",
    "read_shard",
    "read_video",
    "replay_episode",
    "resize_frames",
    "rollout_episode",
    "source_kinds",
    "verify_dataset",
    "write_video",
]

_LAZY = {"EpisodeDataset", "collate_episodes"}


def __getattr__(name: str) -> Any:
    # Keeps `panbench data generate` from importing torch, which it does not need.
    if name in _LAZY:
        from panbench.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
