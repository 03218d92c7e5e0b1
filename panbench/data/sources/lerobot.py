"""The LeRobot episode source: a LeRobot dataset (v2.x or v3.0, local or from the Hub) as a task.

Listing and reading go through :mod:`panbench.data.lerobot` (pyarrow + PyAV). One camera key
gives the frames; the ``action`` column (``--action-key``) gives each step's vector; each frame's
task string (its ``task_index`` in the task table; else the episode's first task) is the action's
text, so a text model
and a continuous-action model both run on the same task. A Hugging Face dataset id is fetched
once with ``huggingface_hub.snapshot_download`` at a pinned revision into
``$PANBENCH_HOME/datasets``; the task then reads that snapshot offline.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from panbench.data.lerobot import (
    decode_images,
    decode_segment,
    read_episode_table,
    read_lerobot,
    read_task_names,
)
from panbench.data.recorded import ImportOptions, RecordedSource, Recording, Scan
from panbench.envs.base import NO_INDEX, Action
from panbench.errors import ConfigError, DataError

__all__ = ["HUB_ID", "LeRobotSource", "fetch_hub_dataset"]

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
"""A Hugging Face dataset id (``owner/name``)."""


def fetch_hub_dataset(
    repo_id: str, revision: str | None = None, camera: str | None = None
) -> tuple[Path, dict[str, Any]]:
    """Downloads a LeRobot dataset from the Hub once, at a pinned revision.

    A snapshot already in the cache is used without the network; otherwise it is downloaded
    (only the metadata, the parquet files and, when ``camera`` is given, that camera's videos).

    Args:
        repo_id: ``owner/name``.
        revision: a branch, tag or commit (default ``main``); the commit it resolves to is
            recorded, and the snapshot folder is named by it.
        camera: the one camera key whose videos are needed (None: every file).

    Returns:
        The local snapshot folder and ``{"hub_id", "revision", "commit"}`` for the manifest.

    Raises:
        DataError: the download failed (no network, unknown id or revision).
    """
    import huggingface_hub

    home = Path(os.environ.get("PANBENCH_HOME", Path.home() / ".cache" / "panbench"))
    kw: dict[str, Any] = {
        "repo_id": repo_id,
        "repo_type": "dataset",
        "revision": revision or "main",
        "cache_dir": str(home / "datasets"),
    }
    if camera is not None:
        kw["allow_patterns"] = [
            "meta/**",
            "data/**",
            f"videos/{camera}/**",
            f"videos/*/{camera}/**",
        ]
    try:
        folder = huggingface_hub.snapshot_download(**kw, local_files_only=True)
    except Exception:  # not in the cache yet (huggingface_hub raises several types)
        folder = None
    try:
        folder = folder or huggingface_hub.snapshot_download(**kw)
    except Exception as err:  # network, auth and not-found errors of huggingface_hub
        raise DataError(
            f"Hugging Face dataset {repo_id!r} at revision {revision or 'main'!r}: expected a "
            f"downloadable LeRobot dataset, but the download failed: {err}"
        ) from err
    path = Path(folder)
    return path, {"hub_id": repo_id, "revision": revision or "main", "commit": path.name}


def _vector(value: Any, where: str) -> tuple[float, ...]:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(
            f"{where}: expected a vector of numbers, but found {value!r:.60}."
        ) from None
    if not arr.size or not np.isfinite(arr).all():
        raise DataError(f"{where}: expected finite action values, but found {arr.tolist()}.")
    return tuple(float(x) for x in arr)


def _check_timestamps(path: Path, episode: int, stamps: list[Any], fps: float) -> None:
    """Refuses an episode whose ``timestamp`` column runs at another rate than ``fps``."""
    t = np.asarray(stamps, dtype=np.float64).reshape(-1)
    want = t[0] + np.arange(len(t)) / fps
    worst = int(np.argmax(np.abs(t - want))) if len(t) else 0
    if len(t) and abs(t[worst] - want[worst]) > 0.25 / fps:
        rate = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else float("nan")
        raise DataError(
            f"{path}: expected the timestamps of episode {episode} {1 / fps:g} s apart "
            f"({fps:g} fps, meta/info.json), but found {rate:.4g} fps (row {worst}: "
            f"{t[worst]:g} s, expected {want[worst]:g} s)."
        )


class LeRobotSource(RecordedSource):
    """Episodes of a task imported from a LeRobot dataset (see the module docstring)."""

    kind: ClassVar[str] = "lerobot"
    root_help: ClassVar[str] = "a LeRobot dataset folder (holding meta/info.json)"

    @classmethod
    def scan(cls, root: Path, opts: ImportOptions) -> Scan:
        """Lists the dataset's episodes from its metadata, checking camera and action keys.

        Raises:
            DataError: unreadable metadata, an unknown camera or action key, or a camera whose
                fps differs from the dataset's.
        """
        meta = read_lerobot(root)
        info = root / "meta" / "info.json"
        cameras = meta.cameras()
        camera = opts.camera
        if camera is None:
            if len(cameras) != 1:
                raise ConfigError(
                    f"{info}: expected --camera KEY to pick one of the cameras {cameras}."
                    if cameras
                    else f"{info}: expected a camera feature (dtype video or image), found none."
                )
            camera = cameras[0]
        meta.check_camera(camera)
        action = meta.features.get(opts.action_key)
        if action is None:
            raise DataError(
                f"{info}: expected an action feature {opts.action_key!r} (--action-key), but "
                f"found only {sorted(meta.features)}."
            )
        feature = meta.features[camera]
        cam_fps = (feature.get("info") or {}).get("video.fps")
        if cam_fps is not None and abs(float(cam_fps) - meta.fps) > 1e-6:
            raise DataError(
                f"{info}: expected camera {camera!r} at the dataset's {meta.fps:g} fps, but its "
                f"video.fps is {cam_fps}."
            )
        recordings = []
        for ep in meta.episodes:
            video = ep.videos.get(camera) if feature["dtype"] == "video" else None
            files = (ep.data_file,) + ((video[0],) if video else ())
            locator = {
                "episode_index": ep.index,
                "tasks": list(ep.tasks),
                "data_file": ep.data_file,
                "camera": camera,
                "camera_dtype": feature["dtype"],
                "video": list(video) if video else None,
                "fps": meta.fps,
                "timestamps": "timestamp" in meta.features,
                "task_index": "task_index" in meta.features,
                "version": meta.version,
            }
            recordings.append(Recording(f"episode_{ep.index:06d}", ep.length, files, locator))
        upstream = {
            "format": "lerobot",
            "codebase_version": meta.version,
            "fps": meta.fps,
            "camera": camera,
            "cameras": cameras,
            "action_key": opts.action_key,
            "action_shape": list(action.get("shape", [])),
            "episodes": len(meta.episodes),
        }
        return Scan(recordings, list(meta.meta_files), upstream)

    @classmethod
    def read(
        cls, root: Path, recording: Recording, opts: dict[str, Any]
    ) -> tuple[np.ndarray, list[Action]]:
        """One episode's camera frames and its action vectors (texts: its task string).

        Raises:
            DataError: naming the parquet or video file whose content disagrees.
        """
        loc = recording.locator
        key = opts.get("action_key", "action")
        path = root / loc["data_file"]
        columns = [key, "frame_index"]
        if loc["camera_dtype"] == "image":
            columns.append(loc["camera"])
        if loc.get("timestamps"):
            columns.append("timestamp")
        if loc.get("task_index"):
            columns.append("task_index")
        table = read_episode_table(path, loc["episode_index"], recording.length, columns)
        if loc.get("timestamps"):
            _check_timestamps(path, loc["episode_index"], table["timestamp"], loc["fps"])
        if loc["video"]:
            rel, start, end = loc["video"]
            frames = decode_segment(root / rel, start, end, loc["fps"], recording.length)
        else:
            frames = decode_images(path, loc["camera"], table[loc["camera"]])
        default = loc["tasks"][0] if loc["tasks"] else ""
        texts = [default] * recording.length
        if loc.get("task_index"):  # each frame's own instruction, from the task table
            names = read_task_names(root, loc["version"])
            texts = [names.get(int(i), default) for i in table["task_index"]]
        vectors = [_vector(v, f"{path}: column {key!r} row {i}") for i, v in enumerate(table[key])]
        if len({len(v) for v in vectors}) > 1:
            raise DataError(
                f"{path}: expected action vectors of one size in column {key!r}, but found "
                f"sizes {sorted({len(v) for v in vectors})}."
            )
        actions = [
            Action(index=NO_INDEX, text=t, vector=v) for t, v in zip(texts, vectors, strict=True)
        ]
        return frames, actions
