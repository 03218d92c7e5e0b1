"""Small recorded datasets for the recorded-data tests: LeRobot v2.1 and v3.0, and plain videos.

Written independently of the readers, after LeRobot's published layout (``meta/info.json``,
``meta/episodes.jsonl`` + one parquet and mp4 per episode in v2.x; ``meta/episodes/chunk-*/
file-*.parquet`` + shared data and video files in v3.0), with real parquet (pyarrow) and real
mp4 (PyAV). Each frame shows a white square on black that moves by the recorded action (dx, dy)
in pixels, so a model that applies the actions predicts the future and one that does not cannot.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from panbench.envs.base import Action
from panbench.models.api import ActionSpace, Context, ModelSpec, WorldModel

SIZE = 32
SQUARE = 6
FPS = 10
CAMERA = "observation.images.top"
TASKS = ("push the square", "wiggle the square")


def trajectory(seed: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 [T, 32, 32, 3] and actions float32 [T, 2] (the last one leads nowhere)."""
    rng = np.random.default_rng(seed)
    pos = np.array([13, 13])
    frames, actions = [], []
    for _ in range(length):
        frame = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
        frame[pos[1] : pos[1] + SQUARE, pos[0] : pos[0] + SQUARE] = 255
        frames.append(frame)
        step = rng.integers(-3, 4, size=2)
        nxt = np.clip(pos + step, 2, SIZE - SQUARE - 2)
        actions.append((nxt - pos).astype(np.float32))
        pos = nxt
    return np.stack(frames), np.stack(actions)


def _write_video(path: Path, frames: np.ndarray, fps: int = FPS) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.qmin = stream.codec_context.qmax = 2
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def _table(rows: dict[str, list]) -> object:
    import pyarrow as pa

    cols = {}
    for k, v in rows.items():
        if k in ("action", "observation.state"):
            cols[k] = pa.array(v, type=pa.list_(pa.float32()))
        elif k == "timestamp":
            cols[k] = pa.array(v, type=pa.float32())
        else:
            cols[k] = pa.array(v, type=pa.int64())
    return pa.table(cols)


def _features() -> dict:
    return {
        CAMERA: {
            "dtype": "video",
            "shape": [SIZE, SIZE, 3],
            "names": ["height", "width", "channels"],
            "info": {"video.fps": FPS, "video.codec": "mpeg4", "video.pix_fmt": "yuv420p"},
        },
        "observation.state": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
        "action": {"dtype": "float32", "shape": [2], "names": ["dx", "dy"]},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }


def _rows(ep: int, start: int, actions: np.ndarray) -> dict[str, list]:
    n = len(actions)
    return {
        "action": [list(map(float, a)) for a in actions],
        "observation.state": [[0.0, 0.0]] * n,
        "timestamp": [i / FPS for i in range(n)],
        "frame_index": list(range(n)),
        "episode_index": [ep] * n,
        "index": list(range(start, start + n)),
        "task_index": [ep % 2] * n,
    }


def _info(version: str, episodes: int, frames: int, data_path: str, video_path: str) -> dict:
    return {
        "codebase_version": version,
        "robot_type": "square",
        "total_episodes": episodes,
        "total_frames": frames,
        "total_tasks": len(TASKS),
        "chunks_size": 1000,
        "fps": FPS,
        "splits": {"train": f"0:{episodes}"},
        "data_path": data_path,
        "video_path": video_path,
        "features": _features(),
    }


def make_lerobot_v2(root: Path, lengths: Sequence[int] = (14, 14, 14, 14)) -> Path:
    """A LeRobot v2.1 dataset: one parquet file and one mp4 per episode."""
    import pyarrow.parquet as pq

    (root / "meta").mkdir(parents=True)
    start = 0
    episodes = []
    for ep, length in enumerate(lengths):
        frames, actions = trajectory(100 + ep, length)
        (root / "data/chunk-000").mkdir(parents=True, exist_ok=True)
        pq.write_table(
            _table(_rows(ep, start, actions)), root / f"data/chunk-000/episode_{ep:06d}.parquet"
        )
        _write_video(root / f"videos/chunk-000/{CAMERA}/episode_{ep:06d}.mp4", frames)
        episodes.append({"episode_index": ep, "tasks": [TASKS[ep % 2]], "length": length})
        start += length
    info = _info(
        "v2.1",
        len(lengths),
        start,
        "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
    )
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    (root / "meta/episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in episodes))
    tasks = "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(TASKS))
    (root / "meta/tasks.jsonl").write_text(tasks)
    return root


def make_lerobot_v3(root: Path, lengths: Sequence[int] = (14, 14, 14, 14)) -> Path:
    """A LeRobot v3.0 dataset: every episode in one data file and one mp4, indexed in meta."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for sub in ("meta/episodes/chunk-000", "data/chunk-000", f"videos/{CAMERA}/chunk-000"):
        (root / sub).mkdir(parents=True)
    rows: dict[str, list] = {}
    all_frames, meta = [], []
    start = 0
    for ep, length in enumerate(lengths):
        frames, actions = trajectory(100 + ep, length)
        for k, v in _rows(ep, start, actions).items():
            rows.setdefault(k, []).extend(v)
        all_frames.append(frames)
        meta.append(
            {
                "episode_index": ep,
                "tasks": [TASKS[ep % 2]],
                "length": length,
                "data/chunk_index": 0,
                "data/file_index": 0,
                "dataset_from_index": start,
                "dataset_to_index": start + length,
                f"videos/{CAMERA}/chunk_index": 0,
                f"videos/{CAMERA}/file_index": 0,
                f"videos/{CAMERA}/from_timestamp": start / FPS,
                f"videos/{CAMERA}/to_timestamp": (start + length) / FPS,
                "meta/episodes/chunk_index": 0,
                "meta/episodes/file_index": 0,
            }
        )
        start += length
    pq.write_table(_table(rows), root / "data/chunk-000/file-000.parquet")
    _write_video(root / f"videos/{CAMERA}/chunk-000/file-000.mp4", np.concatenate(all_frames))
    pq.write_table(pa.Table.from_pylist(meta), root / "meta/episodes/chunk-000/file-000.parquet")
    tasks = pa.table({"task_index": list(range(len(TASKS))), "task": list(TASKS)})
    pq.write_table(tasks, root / "meta/tasks.parquet")
    info = _info(
        "v3.0",
        len(lengths),
        start,
        "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
    )
    info["data_files_size_in_mb"] = info["video_files_size_in_mb"] = 100
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    return root


def make_videos(root: Path, lengths: Sequence[int] = (14, 14, 14), kind: str = "json") -> Path:
    """A folder of videos, each with a ``<stem>.actions.<kind>`` file of one row per frame."""
    root.mkdir(parents=True)
    for i, length in enumerate(lengths):
        frames, actions = trajectory(200 + i, length)
        _write_video(root / f"clip{i}.mp4", frames)
        if kind == "json":
            (root / f"clip{i}.actions.json").write_text(json.dumps(actions.tolist()))
        elif kind == "csv":
            text = "dx,dy\n" + "".join(f"{a[0]},{a[1]}\n" for a in actions)
            (root / f"clip{i}.actions.csv").write_text(text)
        else:
            np.save(root / f"clip{i}.actions.npy", actions.astype(np.float64))
    return root


class ShiftModel(WorldModel):
    """A test adapter that uses the actions: shifts the last frame by each action vector (px)."""

    def __init__(self) -> None:
        self.spec = ModelSpec(name="shift", action_space=ActionSpace.CONTINUOUS)

    def reset(self, context: Context) -> np.ndarray:
        return np.ascontiguousarray(context.frames[:, -1])

    def step(self, state: np.ndarray, actions: Sequence[Action]) -> tuple[np.ndarray, np.ndarray]:
        out = np.stack(
            [
                np.roll(f, (round(a.vector[1]), round(a.vector[0])), axis=(0, 1))
                for f, a in zip(state, actions, strict=True)
                if a.vector is not None
            ]
        )
        return out, out[:, None]


class IndexModel(ShiftModel):
    """A discrete-action model: recorded vector actions carry no index, so it is refused."""

    def __init__(self) -> None:
        self.spec = ModelSpec(name="index", action_space=ActionSpace.DISCRETE)


def make_lerobot_v2_images(root: Path, lengths: Sequence[int] = (13, 13)) -> Path:
    """A LeRobot v2.1 dataset whose camera is an ``image`` feature: PNGs inside the parquet."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    (root / "meta").mkdir(parents=True)
    (root / "data/chunk-000").mkdir(parents=True)
    start, episodes = 0, []
    for ep, length in enumerate(lengths):
        frames, actions = trajectory(100 + ep, length)
        table = _table(_rows(ep, start, actions))
        pngs = []
        for frame in frames:
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="PNG")
            pngs.append({"bytes": buf.getvalue(), "path": f"frame_{len(pngs):06d}.png"})
        image = pa.array(pngs, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
        pq.write_table(
            table.append_column(CAMERA, image), root / f"data/chunk-000/episode_{ep:06d}.parquet"
        )
        episodes.append({"episode_index": ep, "tasks": [TASKS[ep % 2]], "length": length})
        start += length
    info = _info(
        "v2.1",
        len(lengths),
        start,
        "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
    )
    info["features"][CAMERA] = {"dtype": "image", "shape": [SIZE, SIZE, 3], "names": None}
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    (root / "meta/episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in episodes))
    tasks = "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(TASKS))
    (root / "meta/tasks.jsonl").write_text(tasks)
    return root
