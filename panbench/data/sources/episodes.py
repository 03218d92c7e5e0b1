"""The panbench-episodes source: an episode folder on disk (``data generate``, ``import-videos``).

Each stored episode (see :mod:`panbench.data.format`) is one recording; its actions keep every
representation they were stored with (text, index, vector). Placeholder actions of videos
imported without actions (kind ``none``) stay text-only, empty actions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from panbench.data.format import INDEX_FILE, read_index, read_shard
from panbench.data.recorded import ImportOptions, RecordedSource, Recording, Scan
from panbench.envs.base import Action
from panbench.errors import DataError

__all__ = ["EpisodesSource"]


class EpisodesSource(RecordedSource):
    """Episodes of a task imported from a panbench episode folder."""

    kind: ClassVar[str] = "episodes"
    root_help: ClassVar[str] = "a panbench episode folder (holding index.json)"

    @classmethod
    def scan(cls, root: Path, opts: ImportOptions) -> Scan:
        """Lists the folder's episodes from its index (each names its shard file)."""
        index = read_index(root)
        recordings = []
        for info in index.episodes:
            shard = index.shards[info.shard]
            locator = {"episode_id": info.episode_id, "shard": shard.file}
            recordings.append(
                Recording(f"episode_{info.episode_id:06d}", info.num_frames, (shard.file,), locator)
            )
        upstream = {"format": "panbench-episodes", "source": index.source, "env": index.env}
        return Scan(recordings, [INDEX_FILE], upstream)

    @classmethod
    def read(
        cls, root: Path, recording: Recording, opts: dict[str, Any]
    ) -> tuple[np.ndarray, list[Action]]:
        """One stored episode's frames and actions (its shard's sha256 is checked by the source)."""
        loc = recording.locator
        records = read_shard(root / loc["shard"])
        record = next((r for r in records if r.episode_id == loc["episode_id"]), None)
        if record is None:
            raise DataError(
                f"{root / loc['shard']}: expected episode {loc['episode_id']} (index.json lists "
                f"it there), but the shard holds {[r.episode_id for r in records]}."
            )
        actions = [
            Action(
                index=int(a["index"]),
                text=a["text"],
                kind=a["kind"],
                vector=tuple(a["vector"]) if a.get("vector") is not None else None,
            )
            for a in record.actions
        ]
        return record.frames, actions
