"""The sample store of a results folder: per-rank part files, resume points, the final merge.

While a task runs, each rank appends its finished episodes to ``samples/<task>.part-<rank>.jsonl``
(flushed and fsynced per batch); when every rank is done, rank 0 merges the parts into
``samples/<task>.jsonl``, sorted by episode index and written atomically, and removes the parts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from panbench.errors import DataError
from panbench.io import atomic_write_text
from panbench.results import dumps_record, read_samples

__all__ = ["SampleStore", "drop_truncated_tail"]


def drop_truncated_tail(path: Path) -> None:
    """Cuts a part file back to its last complete line.

    A killed process can leave a truncated last line. Resuming skips it (its episode is run
    again), but appending after it would bury it mid-file, where it no longer reads as a
    truncated tail and makes the file unreadable; so it is removed before anything is appended.
    """
    if not path.exists():
        return
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        fh.truncate(data.rfind(b"\n") + 1)
        fh.flush()
        os.fsync(fh.fileno())


class SampleStore:
    """The ``samples/`` folder of one results folder.

    Args:
        folder: the ``samples`` folder (created by the caller).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def final(self, task: str) -> Path:
        """The merged samples file of ``task``."""
        return self.folder / f"{task}.jsonl"

    def part(self, task: str, rank: int) -> Path:
        """The part file rank ``rank`` appends to while ``task`` runs."""
        return self.folder / f"{task}.part-{rank}.jsonl"

    def parts(self, task: str) -> list[Path]:
        """Every rank's part file of ``task`` that exists, sorted."""
        return sorted(self.folder.glob(f"{task}.part-*.jsonl"))

    def done(self, task: str) -> dict[int, dict[str, Any]]:
        """The samples lines already on disk for ``task``, by episode index (a resume point)."""
        done: dict[int, dict[str, Any]] = {}
        for rec in read_samples(self.final(task)):
            done[int(rec["index"])] = rec
        for part in self.parts(task):
            for rec in read_samples(part, tolerate_truncated_tail=True):
                done.setdefault(int(rec["index"]), rec)
        return done

    def append(self, task: str, rank: int, lines: Sequence[Mapping[str, Any]]) -> None:
        """Appends samples lines to this rank's part file, durably (fsynced)."""
        path = self.part(task, rank)
        drop_truncated_tail(path)
        with open(path, "a", encoding="utf-8") as fh:
            for rec in lines:
                fh.write(dumps_record(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def merge(self, task: str, n: int) -> list[dict[str, Any]]:
        """Writes ``samples/<task>.jsonl`` from every part (episodes ``0..n-1``) and removes them.

        Raises:
            DataError: an episode has no line after every rank finished.
        """
        done = self.done(task)
        missing = [i for i in range(n) if i not in done]
        if missing:
            raise DataError(
                f"Task {task!r}: episodes {missing[:10]} have no records after every rank finished."
            )
        records = [done[i] for i in range(n)]
        atomic_write_text(self.final(task), "".join(dumps_record(r) + "\n" for r in records))
        for part in self.parts(task):
            part.unlink()
        return records
