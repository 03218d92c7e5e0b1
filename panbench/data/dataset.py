"""EpisodeDataset: a torch Dataset over an episode folder, loading shards lazily with a small cache."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from panbench.data.format import DatasetIndex, EpisodeRecord, read_index, read_shard
from panbench.errors import ConfigError, DataError

__all__ = ["EpisodeDataset", "collate_episodes"]

_ACTION_KEYS = ("text", "index", "kind")


def _to_tensor(arr: np.ndarray) -> torch.Tensor | np.ndarray:
    try:
        return torch.from_numpy(np.array(arr))  # a writable copy: the shard's bytes stay cached
    except TypeError:  # a dtype torch lacks (e.g. uint32 on older torch): keep the array
        return np.array(arr)


class EpisodeDataset(Dataset[dict[str, Any]]):
    """The episodes of a folder written by ``panbench data generate`` or ``import-videos``.

    Item ``i`` is a dict:

    - ``frames``: uint8 tensor [T, H, W, 3]
    - ``actions``: list of T-1 dicts ``{"text": str, "index": int, "kind": str}`` (an action's
      optional ``vector`` is in :meth:`record`, whose actions are stored dicts as-is)
    - ``action_indices``: int64 tensor [T-1] (-1 where an action has no discrete index)
    - ``states``: dict of tensors [T, ...] (``observe()`` of each frame; empty for videos)
    - ``seed``: int, the env seed (-1 for imported videos, which have none)
    - ``hash``: str, the episode's content hash
    - ``episode_id``: int

    Shards are read on first use and kept in a small LRU cache. The first time each shard is read
    by this object its sha256 is checked against ``index.json`` (``verify=True``).

    Args:
        root: the episode folder.
        verify: check each shard's sha256 when it is first read.
        cache_shards: how many decoded shards to keep in memory.

    Raises:
        DataError: the index is missing or invalid; later, from ``__getitem__``, a shard is
            missing or corrupt (the message names it).
    """

    def __init__(self, root: str | Path, *, verify: bool = True, cache_shards: int = 2) -> None:
        if cache_shards < 1:
            raise ConfigError(f"Expected cache_shards >= 1, but got {cache_shards}.")
        self.index: DatasetIndex = read_index(root)
        self.root = self.index.root
        self.verify = verify
        self.cache_shards = cache_shards
        self._cache: OrderedDict[int, dict[int, EpisodeRecord]] = OrderedDict()
        self._verified: set[int] = set()

    def __len__(self) -> int:
        return len(self.index.episodes)

    def _shard(self, number: int) -> dict[int, EpisodeRecord]:
        if number in self._cache:
            self._cache.move_to_end(number)
            return self._cache[number]
        info = self.index.shards[number]
        check = self.verify and number not in self._verified
        records = read_shard(
            self.index.shard_path(number),
            expected_sha256=info.sha256 if check else None,
            expected_bytes=info.bytes,
        )
        self._verified.add(number)
        loaded = {r.episode_id: r for r in records}
        self._cache[number] = loaded
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return loaded

    def record(self, i: int) -> EpisodeRecord:
        """Episode ``i`` as stored (numpy arrays), without conversion to tensors."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"Episode index {i} is out of range for {len(self)} episodes.")
        info = self.index.episodes[i]
        shard = self._shard(info.shard)
        if info.episode_id not in shard:
            raise DataError(
                f"Shard {self.index.shard_path(info.shard)} does not contain episode "
                f"{info.episode_id}, which {self.root / 'index.json'} places there."
            )
        return shard[info.episode_id]

    def __getitem__(self, i: int) -> dict[str, Any]:
        rec = self.record(i)
        return {
            "frames": torch.from_numpy(np.array(rec.frames)),
            # Exactly these keys: default_collate needs every dict to have the same ones.
            "actions": [{k: a[k] for k in _ACTION_KEYS} for a in rec.actions],
            "action_indices": torch.from_numpy(rec.action_indices),
            "states": {k: _to_tensor(v) for k, v in rec.states.items()},
            "seed": -1 if rec.seed is None else rec.seed,
            "hash": rec.hash,
            "episode_id": rec.episode_id,
        }

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers get a copy without the cache: each fills its own.
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        return state


def collate_episodes(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batches :class:`EpisodeDataset` items of equal length (a DataLoader ``collate_fn``).

    Returns:
        ``frames`` uint8 [B,T,H,W,3], ``action_indices`` int64 [B,T-1], ``states`` dict of
        [B,T,...] tensors, ``seed`` and ``episode_id`` int64 [B], and ``actions`` (B lists of
        dicts) and ``hash`` (B strings) as lists.

    Raises:
        DataError: the episodes differ in frame count or frame size.
    """
    shapes = {tuple(it["frames"].shape) for it in items}
    if len(shapes) != 1:
        raise DataError(
            f"Expected episodes of one shape to batch, but got frames of shapes {sorted(shapes)}; "
            "use batch_size=1 or episodes of equal length and size."
        )
    return {
        "frames": torch.stack([it["frames"] for it in items]),
        "actions": [it["actions"] for it in items],
        "action_indices": torch.stack([it["action_indices"] for it in items]),
        "states": {
            k: torch.stack([torch.as_tensor(it["states"][k]) for it in items])
            for k in items[0]["states"]
        },
        "seed": torch.tensor([it["seed"] for it in items], dtype=torch.int64),
        "hash": [it["hash"] for it in items],
        "episode_id": torch.tensor([it["episode_id"] for it in items], dtype=torch.int64),
    }
