"""A reader of LeRobot datasets (format v2.x and v3.0) with pyarrow and PyAV, without ``lerobot``.

The ``lerobot`` package pulls torchvision, which cannot be used here, so panbench reads the
published layout itself:

- ``meta/info.json``: ``codebase_version``, ``fps``, ``features`` (dtype ``video`` or ``image``
  for camera keys, ``action`` and ``observation.state`` vectors), ``data_path`` and
  ``video_path`` templates, ``chunks_size``.
- v2.x: ``meta/episodes.jsonl`` (``episode_index``, ``tasks``, ``length``), ``meta/tasks.jsonl``
  and one parquet file and one mp4 per camera per episode
  (``data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet``).
- v3.0: ``meta/episodes/chunk-*/file-*.parquet`` (per episode: ``length``, ``tasks``,
  ``data/chunk_index``, ``data/file_index``, ``dataset_from_index``, ``dataset_to_index`` and
  per camera ``videos/<key>/chunk_index``, ``file_index``, ``from_timestamp``,
  ``to_timestamp``); many episodes share one data file and one mp4 per camera.

Every failure names the file, what was expected and what was found (:class:`DataError`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from panbench.errors import ConfigError, DataError

__all__ = [
    "LeRobotEpisode",
    "LeRobotMeta",
    "decode_images",
    "decode_segment",
    "read_episode_table",
    "read_lerobot",
    "read_task_names",
]

_CAMERA_DTYPES = ("video", "image")


@dataclass(frozen=True)
class LeRobotEpisode:
    """Where one recorded episode lives in a LeRobot dataset.

    Attributes:
        index: ``episode_index``.
        length: frames (= parquet rows) of the episode.
        tasks: its task strings (language instructions).
        data_file: the parquet file holding its rows, relative to the root.
        rows: (from, to) of its rows by the global ``index`` column (v3.0); None: the whole file.
        videos: per camera key, (mp4 relative path, from_timestamp, to_timestamp); to is None
            for "to the end of the file" (v2.x).
    """

    index: int
    length: int
    tasks: tuple[str, ...]
    data_file: str
    rows: tuple[int, int] | None = None
    videos: Mapping[str, tuple[str, float, float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class LeRobotMeta:
    """A LeRobot dataset's metadata: version, fps, features and episodes."""

    root: Path
    version: str
    fps: float
    features: dict[str, Any]
    episodes: tuple[LeRobotEpisode, ...]
    meta_files: tuple[str, ...]

    def cameras(self) -> list[str]:
        """The camera keys (features of dtype ``video`` or ``image``), sorted."""
        return sorted(k for k, v in self.features.items() if v.get("dtype") in _CAMERA_DTYPES)

    def check_camera(self, camera: str) -> None:
        """Raises DataError naming ``meta/info.json`` when ``camera`` is not a camera feature."""
        if camera not in self.cameras():
            raise DataError(
                f"{self.root / 'meta/info.json'}: expected camera key {camera!r} among the "
                f"features of dtype video/image, but found {self.cameras() or 'none'}."
            )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: expected a LeRobot metadata file, but it is missing.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(
            f"{path}: expected JSON LeRobot metadata, but cannot read it: {err}"
        ) from err


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"{path}: expected a LeRobot metadata file, but it is missing.")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{n}: expected one JSON object a line ({err.msg}).") from err
        if not isinstance(row, dict):
            raise DataError(f"{path}:{n}: expected a JSON object, found {type(row).__name__}.")
        rows.append(row)
    return rows


def _read_parquet(
    path: Path,
    columns: list[str] | None = None,
    optional: tuple[str, ...] = (),
    episode: int | None = None,
) -> Any:
    """A pyarrow Table of ``columns`` and those of ``optional`` the file has; a missing,
    corrupt or column-less file is a DataError naming it. ``episode``: only its rows (a v3.0
    data file holds many episodes; pyarrow skips the row groups of the others)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - the `data` extra
        raise ConfigError(
            "Reading LeRobot datasets needs pyarrow: pip install 'panbench[data]'."
        ) from err
    if not path.is_file():
        raise DataError(f"{path}: expected a parquet file of the dataset, but it is missing.")
    try:
        schema = pq.read_schema(path)
        if columns is not None:
            missing = [c for c in columns if c not in schema.names]
            if missing:
                raise DataError(
                    f"{path}: expected columns {missing}, but found only {schema.names}."
                )
        if columns is not None:
            columns = columns + [c for c in optional if c in schema.names]
        filters = None if episode is None else [("episode_index", "=", episode)]
        return pq.read_table(path, columns=columns, filters=filters)
    except DataError:
        raise
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... for corrupt files
        raise DataError(f"{path}: expected a readable parquet file, but: {err}") from err


def read_lerobot(root: str | Path) -> LeRobotMeta:
    """Reads a LeRobot dataset's metadata (v2.x or v3.0).

    Raises:
        DataError: missing or malformed metadata, or an unsupported ``codebase_version``.
    """
    root = Path(root)
    info_path = root / "meta" / "info.json"
    info = _read_json(info_path)
    if not isinstance(info, dict):
        raise DataError(f"{info_path}: expected a JSON object, found {type(info).__name__}.")
    version = str(info.get("codebase_version", ""))
    fps = info.get("fps")
    features = info.get("features")
    if not isinstance(fps, (int, float)) or fps <= 0 or not isinstance(features, dict):
        raise DataError(
            f"{info_path}: expected a positive 'fps' and a 'features' object, but found fps="
            f"{fps!r} and features of type {type(features).__name__}."
        )
    bad = [k for k, v in features.items() if not isinstance(v, dict)]
    if bad:
        raise DataError(
            f"{info_path}: expected each feature to be an object, but {bad[0]!r} is not."
        )
    videos = any(v.get("dtype") == "video" for v in features.values())
    for key in ("data_path", "video_path") if videos else ("data_path",):
        if not isinstance(info.get(key), str) or not info[key]:
            raise DataError(
                f"{info_path}: expected a {key!r} template, but found {info.get(key)!r}."
            )
    if version.startswith("v2."):
        episodes, metas = _episodes_v2(root, info)
    elif version.startswith("v3."):
        episodes, metas = _episodes_v3(root, info)
    else:
        raise DataError(
            f"{info_path}: expected codebase_version v2.x or v3.0, but found {version!r}."
        )
    total = info.get("total_episodes")
    if isinstance(total, int) and total != len(episodes):
        raise DataError(
            f"{root / metas[0]}: expected {total} episodes (total_episodes in meta/info.json), "
            f"but the episode metadata lists {len(episodes)}."
        )
    metas += _check_side_files(root, version)
    return LeRobotMeta(root, version, float(fps), features, episodes, ("meta/info.json", *metas))


def _check_side_files(root: Path, version: str) -> list[str]:
    """Reads the task table and the statistics files (a corrupt one is refused) and returns
    their paths, so that they are hashed with the rest of the dataset."""
    found = ["meta/tasks.jsonl" if version.startswith("v2.") else "meta/tasks.parquet"]
    read_task_names(root, version)
    for rel in ("meta/stats.json", "meta/episodes_stats.jsonl"):
        if (root / rel).is_file():
            if rel.endswith(".json"):
                _read_json(root / rel)
            else:
                _read_jsonl(root / rel)
            found.append(rel)
    return found


def read_task_names(root: Path, version: str) -> dict[int, str]:
    """The dataset's task table: ``task_index`` -> task string (its language instruction).

    v2.x: ``meta/tasks.jsonl``; v3.0: ``meta/tasks.parquet`` (the strings in a ``task`` column
    or, as pandas writes its index, ``__index_level_0__``).

    Raises:
        DataError: the table is missing, corrupt or empty, naming the file.
    """
    if version.startswith("v2."):
        path = root / "meta/tasks.jsonl"
        rows = _read_jsonl(path)
        for n, row in enumerate(rows, start=1):
            if not isinstance(row.get("task_index"), int) or not isinstance(row.get("task"), str):
                raise DataError(
                    f"{path}:{n}: expected an integer task_index and a task string, but found "
                    f"{sorted(row)}."
                )
        names = {int(r["task_index"]): str(r["task"]) for r in rows}
    else:
        path = root / "meta/tasks.parquet"
        table = _read_parquet(path, ["task_index"], optional=("task", "__index_level_0__"))
        cols = table.to_pydict()
        text = cols.get("task", cols.get("__index_level_0__"))
        if text is None:
            raise DataError(
                f"{path}: expected the task strings in a 'task' column or the index, but found "
                f"only {table.column_names}."
            )
        names = {int(i): str(t) for i, t in zip(cols["task_index"], text, strict=True)}
    if not names:
        raise DataError(f"{path}: expected at least one task, but the table is empty.")
    return names


def _video_keys(info: dict[str, Any]) -> list[str]:
    return [k for k, v in info["features"].items() if v.get("dtype") == "video"]


def _episodes_v2(root: Path, info: dict[str, Any]) -> tuple[tuple[LeRobotEpisode, ...], list[str]]:
    data_path = info.get("data_path")
    video_path = info.get("video_path")
    chunks = int(info.get("chunks_size") or 1000)
    rows = _read_jsonl(root / "meta" / "episodes.jsonl")
    out = []
    for n, row in enumerate(rows, start=1):
        try:
            index, length = int(row["episode_index"]), int(row["length"])
            tasks = tuple(str(t) for t in row.get("tasks", []))
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"{root / 'meta/episodes.jsonl'}:{n}: expected episode_index, length and tasks, "
                f"but found {sorted(row)}."
            ) from None
        keys = {"episode_chunk": index // chunks, "episode_index": index}
        try:
            videos = {
                k: (str(video_path).format(video_key=k, **keys), 0.0, None)
                for k in _video_keys(info)
            }
            data = str(data_path).format(**keys)
        except (KeyError, ValueError, IndexError) as err:
            raise DataError(
                f"{root / 'meta/info.json'}: expected data_path/video_path templates with "
                f"{{episode_chunk}}, {{episode_index}} and {{video_key}}, but: {err!r}."
            ) from None
        out.append(LeRobotEpisode(index, length, tasks, data, None, videos))
    return tuple(out), ["meta/episodes.jsonl"]


def _episodes_v3(root: Path, info: dict[str, Any]) -> tuple[tuple[LeRobotEpisode, ...], list[str]]:
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not files:
        raise DataError(
            f"{root / 'meta/episodes'}: expected chunk-*/file-*.parquet episode metadata "
            "(LeRobot v3.0), but found none."
        )
    data_path, video_path = str(info.get("data_path")), str(info.get("video_path"))
    cams = _video_keys(info)
    needed = ["episode_index", "length", "data/chunk_index", "data/file_index"]
    needed += ["dataset_from_index", "dataset_to_index"]
    for k in cams:
        needed += [f"videos/{k}/{c}" for c in ("chunk_index", "file_index")]
        needed += [f"videos/{k}/{c}" for c in ("from_timestamp", "to_timestamp")]
    out = []
    for path in files:
        table = _read_parquet(path, needed, optional=("tasks",))
        for n, r in enumerate(table.to_pylist()):
            try:
                out.append(_episode_v3(r, cams, data_path, video_path))
            except (TypeError, ValueError, KeyError, IndexError) as err:
                raise DataError(
                    f"{path}: row {n}: expected integer indices and numeric timestamps, but "
                    f"found {err}."
                ) from None
    out.sort(key=lambda e: e.index)
    return tuple(out), [p.relative_to(root).as_posix() for p in files]


def _episode_v3(
    r: dict[str, Any], cams: list[str], data_path: str, video_path: str
) -> LeRobotEpisode:
    """One row of v3.0 episode metadata."""
    videos = {}
    for k in cams:
        ref = {
            "chunk_index": r[f"videos/{k}/chunk_index"],
            "file_index": r[f"videos/{k}/file_index"],
        }
        videos[k] = (
            video_path.format(video_key=k, **ref),
            float(r[f"videos/{k}/from_timestamp"]),
            float(r[f"videos/{k}/to_timestamp"]),
        )
    data = {"chunk_index": r["data/chunk_index"], "file_index": r["data/file_index"]}
    return LeRobotEpisode(
        int(r["episode_index"]),
        int(r["length"]),
        tuple(str(t) for t in (r.get("tasks") or [])),
        data_path.format(**data),
        (int(r["dataset_from_index"]), int(r["dataset_to_index"])),
        videos,
    )


def read_episode_table(
    path: Path, episode_index: int, length: int, columns: list[str]
) -> dict[str, list[Any]]:
    """One episode's rows of ``columns`` from a LeRobot parquet file, in frame order.

    Raises:
        DataError: the file is missing or corrupt, lacks a column, or holds a number of rows
            for the episode other than its ``length``.
    """
    wanted = list(dict.fromkeys([*columns, "episode_index"]))
    table = _read_parquet(path, wanted, episode=episode_index).to_pydict()
    keep = [i for i, e in enumerate(table["episode_index"]) if int(e) == episode_index]
    if len(keep) != length:
        raise DataError(
            f"{path}: expected {length} rows of episode {episode_index} (its length in the "
            f"episode metadata), but found {len(keep)}."
        )
    out = {c: [table[c][i] for i in keep] for c in wanted}
    if "frame_index" in out:
        order = np.argsort(np.asarray(out["frame_index"]), kind="stable")
        out = {c: [v[i] for i in order] for c, v in out.items()}
    return out


def decode_segment(
    path: Path, start: float, end: float | None, fps: float, expected: int
) -> np.ndarray:
    """Decodes the frames of ``path`` whose timestamps lie in [start, end) (end None: to the end).

    A frame belongs to the segment when its presentation time, less half a frame period, falls
    inside it (timestamps of re-encoded videos are rounded).

    Returns:
        uint8 [expected, H, W, 3].

    Raises:
        DataError: the file is missing, corrupt, of another frame rate, or yields a number of
            frames other than ``expected``.
    """
    import av

    if not path.is_file():
        raise DataError(f"{path}: expected the episode's video, but the file is missing.")
    half = 0.5 / fps
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path}: expected a video stream, but found none.")
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            if rate and abs(rate - fps) > 0.01 * fps:
                raise DataError(
                    f"{path}: expected {fps:g} fps (meta/info.json), but the video has {rate:g}."
                )
            if start > 0 and stream.time_base is not None:
                container.seek(int(max(start - 1.0, 0) / stream.time_base), stream=stream)
            for frame in container.decode(stream):
                t = float(frame.time if frame.time is not None else 0.0)
                if t < start - half:
                    continue
                if end is not None and t >= end - half:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
    except DataError:
        raise
    except Exception as err:  # av.error.FFmpegError, OSError, ... for corrupt files
        raise DataError(f"{path}: expected a decodable video, but: {err}") from err
    if len(frames) != expected:
        span = f"[{start:g}s, {'end' if end is None else f'{end:g}s'})"
        raise DataError(
            f"{path}: expected {expected} frames in {span} (the episode's parquet rows), but "
            f"decoded {len(frames)}."
        )
    return np.stack(frames)


def decode_images(path: Path, column: str, cells: list[Any]) -> np.ndarray:
    """Decodes a parquet column of LeRobot ``image`` cells ({"bytes", "path"}) to uint8 frames."""
    import io

    from PIL import Image

    out = []
    for i, cell in enumerate(cells):
        blob = cell.get("bytes") if isinstance(cell, dict) else None
        try:
            with Image.open(io.BytesIO(blob or b"")) as im:
                out.append(np.array(im.convert("RGB"), dtype=np.uint8))
        except OSError as err:
            raise DataError(
                f"{path}: expected an encoded image in column {column!r} row {i}, but: {err}"
            ) from err
    return np.stack(out)
