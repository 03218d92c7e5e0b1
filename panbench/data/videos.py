"""Video IO with PyAV (read, write) and import of a folder of videos as episodes."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from panbench.data.format import NO_ACTION_KIND, DatasetWriter, EpisodeRecord
from panbench.data.frames import resize_frames
from panbench.errors import ConfigError, DataError
from panbench.io import atomic_open

__all__ = [
    "ACTIONS_FILE",
    "VIDEO_SUFFIXES",
    "default_codec",
    "import_videos",
    "read_actions_file",
    "read_video",
    "write_video",
]

#: file extensions :func:`import_videos` picks up (lower case).
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
#: the optional per-step action file of an import folder.
ACTIONS_FILE = "actions.jsonl"
#: how imported videos are resampled (:func:`~panbench.data.frames.resize_frames`, mode
#: ``"center-crop"``), recorded in the index of imported folders.
RESAMPLING = (
    "center crop to a square of the shorter side, then torch.nn.functional.interpolate("
    "mode='bilinear', antialias=True, align_corners=False) in float32, rounded and clamped to uint8"
)
_CONTAINER_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}


@cache
def default_codec() -> str:
    """``"libx264"`` when PyAV's ffmpeg can encode H.264, else ``"mpeg4"`` (always bundled)."""
    import av

    try:
        av.codec.Codec("libx264", "w")
    except Exception:  # PyAV raises several types for a missing encoder; any means "not usable"
        return "mpeg4"
    return "libx264"


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: int = 8,
    codec: str | None = None,
    quality: int | None = None,
) -> Path:
    """Encodes frames into a video file, atomically (a failed write leaves no file).

    Args:
        path: the output file; its suffix picks the container (.mp4, .mov, .mkv, .avi).
        frames: uint8 [T, H, W, 3] RGB with even H and W (yuv420p needs them).
        fps: frames per second.
        codec: an ffmpeg encoder name; default :func:`default_codec`.
        quality: for libx264, the CRF (0 = lossless ... 51; default 18); for other codecs, the
            qscale (1 = best ... 31; default 2).

    Returns:
        ``path`` as a Path.

    Raises:
        ConfigError: bad frames, an unknown container suffix or an unavailable codec.
    """
    import av

    path = Path(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ConfigError(
            f"Expected frames to be uint8 [T,H,W,3] with T >= 1, but got {frames.dtype} "
            f"{tuple(frames.shape)}."
        )
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ConfigError(f"Expected even frame height and width, but got {height}x{width}.")
    fmt = _CONTAINER_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"Expected a video path ending in one of {sorted(_CONTAINER_FORMATS)}, but got {path}."
        )
    codec = codec or default_codec()
    if codec == "libx264":
        options = {"crf": str(18 if quality is None else quality), "preset": "medium"}
    else:
        options = {"qscale": str(2 if quality is None else quality)}
    with atomic_open(path, "wb") as f, av.open(f, mode="w", format=fmt) as container:
        try:
            stream = container.add_stream(codec, rate=fps, options=options)
        except (av.error.FFmpegError, ValueError) as err:  # ValueError: unknown codec name
            raise ConfigError(f"Cannot encode {path} with codec {codec!r}: {err}") from err
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "mpeg4":
            stream.codec_context.qmin = stream.codec_context.qmax = int(options["qscale"])
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def read_video(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """Decodes the first video stream of a file into RGB frames.

    Args:
        path: a video file.
        max_frames: stop after this many frames (``None``: all).

    Returns:
        uint8 [T, H, W, 3], T >= 1.

    Raises:
        DataError: the file is missing, cannot be opened, has no video stream, fails to decode or
            holds no frames; the message names the file and the step that failed.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise DataError(f"Video {path} does not exist.")
    step = "opening the container"
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            step = "finding a video stream"
            if not container.streams.video:
                raise DataError(f"Could not decode video {path}: it has no video stream.")
            stream = container.streams.video[0]
            step = "decoding frames"
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (av.error.FFmpegError, OSError, ValueError, EOFError) as err:
        raise DataError(f"Could not decode video {path} while {step}: {err}") from err
    if not frames:
        raise DataError(f"Could not decode video {path}: it holds no decodable frames.")
    return np.stack(frames)


def read_actions_file(path: str | Path) -> dict[str, list[str]]:
    """Parses ``actions.jsonl``: one ``{"video": "name.mp4", "actions": ["text", ...]}`` a line.

    Blank lines are skipped. Each object must have exactly the keys ``video`` (a file name in the
    same folder) and ``actions`` (a list of strings); a video may appear once.

    Returns:
        Video file name -> its list of action texts.

    Raises:
        DataError: a line is not such an object; the message gives the line number.
    """
    path = Path(path)
    out: dict[str, list[str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"Could not read {path}: {err}.") from err
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: not valid JSON ({err.msg}).") from err
        if not isinstance(entry, dict) or set(entry) != {"video", "actions"}:
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise DataError(
                f'{where}: expected an object with exactly the keys "video" and "actions", '
                f"but got {got}."
            )
        video, actions = entry["video"], entry["actions"]
        if not isinstance(video, str) or Path(video).name != video or not video:
            raise DataError(f'{where}: expected "video" to be a file name, but got {video!r}.')
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise DataError(f'{where}: expected "actions" to be a list of strings.')
        if video in out:
            raise DataError(f"{where}: video {video!r} is listed a second time.")
        out[video] = actions
    return out


def import_videos(
    src: str | Path,
    out: str | Path,
    resolution: int | None = None,
    max_frames: int | None = None,
    progress: bool = True,
) -> Path:
    """Turns a folder of videos (and optional ``actions.jsonl``) into an episode folder.

    Each video (suffix in :data:`VIDEO_SUFFIXES`, sorted by name) becomes episode ``0, 1, ...``
    with its file name as ``source``, no seed and no states. With ``actions.jsonl`` every video
    must be listed and have exactly (decoded frames - 1) actions, stored as
    ``{"text": t, "index": -1, "kind": "agent"}``; without it, each step gets the placeholder
    ``{"text": "", "index": -1, "kind": "none"}``.

    Args:
        src: the folder of videos.
        out: the episode folder to create; must be absent or empty.
        resolution: resize every frame to this square side (see :data:`RESAMPLING`); ``None``
            keeps the native size, which must then be the same for every video.
        max_frames: keep only the first ``max_frames`` frames of each video (and their actions).
        progress: show a progress bar.

    Returns:
        ``out`` as a Path.

    Raises:
        DataError: ``src`` is missing or holds no videos, a video cannot be decoded, actions
            do not match frame counts, or native sizes differ without ``resolution``.
        ConfigError: ``resolution`` or ``max_frames`` < 1, or ``out`` is not empty.
    """
    src = Path(src)
    for name, value in (("resolution", resolution), ("max_frames", max_frames)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ConfigError(f"Expected {name} to be an integer >= 1, but got {value!r}.")
    if not src.is_dir():
        raise DataError(f"Video folder {src} does not exist or is not a folder.")
    videos = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise DataError(
            f"No videos found in {src}: expected files ending in {', '.join(VIDEO_SUFFIXES)}."
        )
    actions_by_video: dict[str, list[str]] | None = None
    if (src / ACTIONS_FILE).is_file():
        actions_by_video = read_actions_file(src / ACTIONS_FILE)
        names = {v.name for v in videos}
        unknown = sorted(set(actions_by_video) - names)
        missing = sorted(names - set(actions_by_video))
        if unknown or missing:
            raise DataError(
                f"{src / ACTIONS_FILE} must list every video in {src} exactly once; "
                f"not listed: {missing or 'none'}; listed but not found: {unknown or 'none'}."
            )
    source: dict[str, Any] = {
        "kind": "video",
        "import": {
            "src": str(src),
            "videos": [v.name for v in videos],
            "actions_file": ACTIONS_FILE if actions_by_video is not None else None,
            "resolution": resolution,
            "resampling": RESAMPLING if resolution is not None else None,
            "max_frames": max_frames,
        },
    }
    native_size: tuple[tuple[int, int], str] | None = None
    with DatasetWriter(
        out, source, None, progress=progress, total=len(videos), description="importing videos"
    ) as writer:
        for episode_id, video in enumerate(videos):
            texts = None if actions_by_video is None else actions_by_video[video.name]
            # With actions, decode everything: their count is checked against the full video.
            frames = read_video(video, max_frames=None if texts is not None else max_frames)
            if texts is not None and len(texts) != len(frames) - 1:
                raise DataError(
                    f"{src / ACTIONS_FILE}: expected {len(frames) - 1} actions for {video.name} "
                    f"({len(frames)} decoded frames), but got {len(texts)}."
                )
            if max_frames is not None:
                frames = frames[:max_frames]
            if resolution is not None:
                frames = resize_frames(frames, resolution, mode="center-crop")
            elif native_size is None:
                native_size = (frames.shape[1:3], video.name)
            elif frames.shape[1:3] != native_size[0]:
                raise DataError(
                    f"Videos differ in size: {native_size[1]} is {native_size[0][1]}x"
                    f"{native_size[0][0]}, {video.name} is {frames.shape[2]}x{frames.shape[1]}; "
                    "pass --resolution to resize them all."
                )
            if texts is None:
                actions = [{"text": "", "index": -1, "kind": NO_ACTION_KIND}] * (len(frames) - 1)
            else:
                actions = [
                    {"text": t, "index": -1, "kind": "agent"} for t in texts[: len(frames) - 1]
                ]
            writer.add(EpisodeRecord.build(episode_id, frames, actions, source=video.name))
    return Path(out)
