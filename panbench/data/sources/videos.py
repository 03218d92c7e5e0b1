"""The videos source: a folder of plain recordings, each with an optional actions file.

Every video (``*.mp4``, ``*.mov``, ``*.mkv``, ``*.avi``, ``*.webm``, sorted by name) is one
recording; all must share one frame rate. Next to ``clip.mp4``, an optional actions file holds one
row per frame (a last row past the final frame may be left out):

- ``clip.actions.json``: a JSON list whose rows are numbers lists (vectors), integers (discrete
  indices) or strings (text);
- ``clip.actions.csv``: numeric rows (vectors), or one column of text; an optional header line;
- ``clip.actions.npy``: a 2-D float array (vectors) or a 1-D integer array (indices), read with
  ``allow_pickle=False``.

A video without an actions file gets empty, text-only actions.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from panbench.data.recorded import ImportOptions, RecordedSource, Recording, Scan
from panbench.data.videos import VIDEO_SUFFIXES, read_video
from panbench.envs.base import NO_INDEX, Action
from panbench.errors import DataError

__all__ = ["ACTION_SUFFIXES", "VideosSource", "read_actions"]

ACTION_SUFFIXES = (".actions.json", ".actions.csv", ".actions.npy")


def _video_info(path: Path) -> tuple[float, int]:
    """(fps, frame count) from the container, without decoding."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path}: expected a video stream, but found none.")
            stream = container.streams.video[0]
            return float(stream.average_rate or stream.guessed_rate or 0), int(stream.frames)
    except DataError:
        raise
    except Exception as err:  # av.error.FFmpegError, OSError for a corrupt file
        raise DataError(f"{path}: expected a readable video, but: {err}") from err


def _row_action(path: Path, i: int, row: Any) -> Action:
    if isinstance(row, str):
        return Action.text_only(row)
    if isinstance(row, (int, np.integer)) and not isinstance(row, bool):
        return Action(index=int(row), text="")
    if isinstance(row, (list, tuple, np.ndarray)) and len(row) > 0:
        try:
            vec = tuple(float(x) for x in row)
        except (TypeError, ValueError):
            vec = ()
        if vec and all(np.isfinite(vec)):
            return Action(index=NO_INDEX, text="", vector=vec)
    raise DataError(
        f"{path}: row {i}: expected a vector of numbers, an integer index or a text, but found "
        f"{json.dumps(row) if not isinstance(row, np.ndarray) else row.tolist()!r:.60}."
    )


def read_actions(path: Path) -> list[Action]:
    """Reads an actions file (see the module docstring) into one action per row.

    Raises:
        DataError: naming the file and the row that is malformed.
    """
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
            if arr.ndim == 1 and arr.dtype.kind in "iu":
                rows: list[Any] = [int(x) for x in arr]
            elif arr.ndim == 2 and arr.dtype.kind in "fiu":
                rows = [list(map(float, r)) for r in arr]
            else:
                raise DataError(
                    f"{path}: expected a 2-D float array or a 1-D integer array, but found "
                    f"{arr.dtype} {arr.shape}."
                )
        elif path.suffix == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(rows, list):
                raise DataError(
                    f"{path}: expected a JSON list of rows, found {type(rows).__name__}."
                )
        else:
            rows = _csv_rows(path)
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as err:  # JSONDecodeError, a corrupt or empty .npy
        raise DataError(f"{path}: expected an actions file, but cannot read it: {err}") from err
    return [_row_action(path, i, r) for i, r in enumerate(rows)]


def _csv_rows(path: Path) -> list[Any]:
    lines = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    lines = [r for r in lines if r]

    def numeric(row: list[str]) -> bool:
        try:
            [float(x) for x in row]
        except ValueError:
            return False
        return True

    if lines and not numeric(lines[0]) and len(lines) > 1 and numeric(lines[1]):
        lines = lines[1:]  # a header
    if all(numeric(r) for r in lines):
        return [[float(x) for x in r] for r in lines]
    if all(len(r) == 1 for r in lines):
        return [r[0] for r in lines]
    raise DataError(f"{path}: expected numeric rows or one column of text in every row.")


def _actions_file(video: Path) -> Path | None:
    found = [video.with_name(video.stem + s) for s in ACTION_SUFFIXES]
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        raise DataError(
            f"{video}: expected at most one actions file, but found {[p.name for p in found]}."
        )
    return found[0] if found else None


class VideosSource(RecordedSource):
    """Episodes of a task imported from a folder of videos (see the module docstring)."""

    kind: ClassVar[str] = "videos"
    root_help: ClassVar[str] = "a folder of videos (with optional <name>.actions.* files)"

    @classmethod
    def scan(cls, root: Path, opts: ImportOptions) -> Scan:
        """Lists the videos, refusing mixed frame rates (naming the two files)."""
        videos = sorted(p for p in root.iterdir() if p.is_file() and p.suffix in VIDEO_SUFFIXES)
        recordings = []
        first: tuple[float, str] | None = None
        for video in videos:
            fps, count = _video_info(video)
            if first is None:
                first = (fps, video.name)
            elif abs(fps - first[0]) > 1e-3 * first[0]:
                raise DataError(
                    f"{video}: expected {first[0]:g} fps like {first[1]}, but found {fps:g}; "
                    "import videos of one frame rate together."
                )
            actions = _actions_file(video)
            files = (video.name,) + ((actions.name,) if actions else ())
            locator = {"video": video.name, "actions": actions.name if actions else None}
            recordings.append(Recording(video.name, count, files, locator))
        upstream = {"format": "videos", "fps": first[0] if first else None}
        return Scan(recordings, [], upstream)

    @classmethod
    def read(
        cls, root: Path, recording: Recording, opts: dict[str, Any]
    ) -> tuple[np.ndarray, list[Action]]:
        """One video's frames and its actions (one row per frame, the last optional).

        Raises:
            DataError: the video cannot be decoded, or the actions file has another row count.
        """
        loc = recording.locator
        frames = read_video(root / loc["video"])
        if loc["actions"] is None:
            return frames, [Action.text_only("", kind="none")] * (len(frames) - 1)
        path = root / loc["actions"]
        actions = read_actions(path)
        if len(actions) not in (len(frames), len(frames) - 1):
            raise DataError(
                f"{path}: expected one row per frame of {loc['video']} ({len(frames)} rows, or "
                f"{len(frames) - 1}), but found {len(actions)}."
            )
        sizes = {len(a.vector) for a in actions if a.vector is not None}
        if len(sizes) > 1:
            raise DataError(
                f"{path}: expected vectors of one size, but found sizes {sorted(sizes)}."
            )
        return frames, actions
