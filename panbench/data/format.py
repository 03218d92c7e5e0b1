"""The episode folder format on disk: records, content hashes, shard writer/reader, index, verify.

An episode folder holds ``index.json`` plus shards ``shard-00000.safetensors``, ... Each shard is a
safetensors file with the arrays of a few episodes (frames and observable states) and, in its
metadata, the episodes' actions, seeds and content hashes. docs/data-format.md is the reference;
keep it true when anything here changes, and bump :data:`FORMAT_VERSION` when a reader of the old
version could misread a new folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from panbench import __version__
from panbench.errors import ConfigError, DataError
from panbench.io import atomic_dir, atomic_write_json, read_versioned_json

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "INDEX_FILE",
    "DatasetIndex",
    "DatasetWriter",
    "EpisodeInfo",
    "EpisodeRecord",
    "ShardInfo",
    "canonical_json",
    "episode_hash",
    "read_index",
    "read_shard",
    "verify_dataset",
]

FORMAT_NAME = "panbench-episodes"
FORMAT_VERSION = 1
INDEX_FILE = "index.json"
#: the one key of a shard's safetensors metadata. One key only: safetensors serialises its
#: metadata map in hash-map order, which varies between processes when there are several keys,
#: and that would break byte-identical regeneration.
SHARD_METADATA_KEY = "panbench"
#: dtype kinds that safetensors stores: bool, signed and unsigned integers, floats.
_STORABLE_KINDS = "biuf"
#: the action kind of placeholder actions in imported videos that come without actions.
NO_ACTION_KIND = "none"


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: equal values always give equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _normalise_array(name: str, arr: Any) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype.kind not in _STORABLE_KINDS:
        raise DataError(
            f"Expected {name} to be a bool, integer or float array, but got dtype {arr.dtype}; "
            "only numeric observable states can be stored."
        )
    # Little-endian and C order: the bytes that are hashed are then the bytes that are stored.
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))


def _normalise_action(i: int, action: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(action, Mapping):
        raise DataError(f"Expected action {i} to be a dict, but got {type(action).__name__}.")
    text, index, kind = action.get("text"), action.get("index"), action.get("kind")
    if not isinstance(text, str) or not isinstance(kind, str):
        raise DataError(f"Expected action {i} to have str 'text' and 'kind', but got {action!r}.")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise DataError(f"Expected action {i} to have an int 'index', but got {action!r}.")
    out: dict[str, Any] = {"text": text, "index": int(index), "kind": kind}
    if action.get("vector") is not None:
        out["vector"] = [float(v) for v in action["vector"]]
    return out


def episode_hash(
    frames: np.ndarray, actions: Sequence[Mapping[str, Any]], states: Mapping[str, np.ndarray]
) -> str:
    """The content hash of an episode: sha256 over its frames, actions and states.

    The hashed byte stream is, in order: ``b"panbench-episode-v1\\n"``; then for ``frames`` and
    each state (``states/<key>``, keys sorted) a header line ``f"{name}|{dtype.str}|{shape}\\n"``
    (shape as comma-separated ints) followed by the array's little-endian C-order bytes; then
    ``b"actions\\n"`` and the UTF-8 :func:`canonical_json` of the action list.

    Args:
        frames: uint8 [T, H, W, 3].
        actions: T-1 dicts with ``text`` (str), ``index`` (int), ``kind`` (str), optional ``vector``.
        states: observable state arrays, each [T, ...], numeric.

    Returns:
        64 hex characters.
    """
    h = hashlib.sha256(b"panbench-episode-v1\n")
    named = [("frames", frames)] + [(f"states/{k}", states[k]) for k in sorted(states)]
    for name, arr in named:
        arr = _normalise_array(name, arr)
        shape = ",".join(str(d) for d in arr.shape)
        h.update(f"{name}|{arr.dtype.str}|{shape}\n".encode())
        h.update(arr.tobytes())
    h.update(b"actions\n")
    h.update(canonical_json([dict(a) for a in actions]).encode())
    return h.hexdigest()


# eq=False: comparing arrays with == is elementwise, so a generated __eq__ would raise; compare
# records by their content hash instead.
@dataclass(frozen=True, eq=False)
class EpisodeRecord:
    """One episode as stored: frames, the actions between them, observable states, provenance.

    Build with :meth:`build`, which validates shapes and computes the content hash.

    Attributes:
        episode_id: the episode's id within its folder (non-negative, unique).
        frames: uint8 [T, H, W, 3].
        actions: T-1 action dicts (``text``, ``index``, ``kind``, optional ``vector``); action t
            leads from frame t to frame t+1.
        states: ``observe()`` of every frame, stacked: each value is [T, ...]; empty for videos.
        seed: the seed the env was reset with, or ``None`` (imported videos).
        source: where the episode came from beyond the folder's source (a video file name), or
            ``None``.
        hash: :func:`episode_hash` of frames, actions and states.
    """

    episode_id: int
    frames: np.ndarray
    actions: tuple[dict[str, Any], ...]
    states: dict[str, np.ndarray]
    seed: int | None
    source: str | None
    hash: str

    @classmethod
    def build(
        cls,
        episode_id: int,
        frames: np.ndarray,
        actions: Sequence[Mapping[str, Any]],
        states: Mapping[str, np.ndarray] | None = None,
        seed: int | None = None,
        source: str | None = None,
    ) -> EpisodeRecord:
        """Validates the parts of an episode and computes its hash.

        Args:
            episode_id: non-negative id, unique within the folder.
            frames: uint8 [T, H, W, 3] with T >= 1.
            actions: exactly T-1 action dicts.
            states: arrays with leading dimension T (numeric dtypes), or ``None`` for none.
            seed: the env seed, or ``None``.
            source: a free-form origin (e.g. a video file name), or ``None``.

        Raises:
            DataError: a shape, dtype, count or field is wrong; the message says which.
        """
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise DataError(
                f"Expected frames to be uint8 [T,H,W,3], but got {frames.dtype} "
                f"{tuple(frames.shape)} for episode {episode_id}."
            )
        if frames.shape[0] < 1:
            raise DataError(f"Expected at least one frame, but got none for episode {episode_id}.")
        num_frames = frames.shape[0]
        if len(actions) != num_frames - 1:
            raise DataError(
                f"Expected {num_frames - 1} actions for {num_frames} frames, but got "
                f"{len(actions)} for episode {episode_id}."
            )
        norm_actions = tuple(_normalise_action(i, a) for i, a in enumerate(actions))
        norm_states: dict[str, np.ndarray] = {}
        for key, value in (states or {}).items():
            if not isinstance(key, str) or not key or "/" in key:
                raise DataError(
                    f"Expected state keys to be non-empty str without '/', got {key!r}."
                )
            arr = _normalise_array(f"state {key!r}", value)
            if arr.ndim < 1 or arr.shape[0] != num_frames:
                raise DataError(
                    f"Expected state {key!r} to have {num_frames} rows (one per frame), but got "
                    f"shape {tuple(arr.shape)} for episode {episode_id}."
                )
            norm_states[key] = arr
        if isinstance(episode_id, bool) or not isinstance(episode_id, (int, np.integer)):
            raise DataError(f"Expected an int episode id, but got {episode_id!r}.")
        if episode_id < 0:
            raise DataError(f"Expected a non-negative episode id, but got {episode_id}.")
        frames = np.ascontiguousarray(frames)
        return cls(
            episode_id=int(episode_id),
            frames=frames,
            actions=norm_actions,
            states=norm_states,
            seed=None if seed is None else int(seed),
            source=source,
            hash=episode_hash(frames, norm_actions, norm_states),
        )

    @property
    def num_frames(self) -> int:
        """T, the number of frames."""
        return int(self.frames.shape[0])

    @property
    def action_indices(self) -> np.ndarray:
        """int64 [T-1]: each action's discrete index (-1 where an action has none)."""
        return np.array([a["index"] for a in self.actions], dtype=np.int64)


# ============================================================================================ index
@dataclass(frozen=True)
class ShardInfo:
    """One shard as listed in the index: file name, sha256, size in bytes, episode ids."""

    file: str
    sha256: str
    bytes: int
    episode_ids: tuple[int, ...]


@dataclass(frozen=True)
class EpisodeInfo:
    """One episode as listed in the index (everything but the arrays)."""

    episode_id: int
    shard: int
    seed: int | None
    hash: str
    num_frames: int
    source: str | None


@dataclass(frozen=True)
class DatasetIndex:
    """The parsed ``index.json`` of an episode folder.

    Attributes:
        root: the folder.
        data: the raw JSON object (see docs/data-format.md for every field).
        shards: the shards in order.
        episodes: the episodes in dataset order (item ``i`` of :class:`EpisodeDataset`).
    """

    root: Path
    data: dict[str, Any]
    shards: tuple[ShardInfo, ...]
    episodes: tuple[EpisodeInfo, ...] = field(repr=False)

    @property
    def env(self) -> dict[str, Any] | None:
        """``{"name", "version", "config", "fingerprint"}`` of the env, or ``None`` (videos)."""
        return self.data.get("env")

    @property
    def source(self) -> dict[str, Any]:
        """How the folder was made: ``{"kind": "env" | "video", ...}`` with the arguments."""
        return self.data["source"]

    def __len__(self) -> int:
        return len(self.episodes)

    def shard_path(self, shard: int) -> Path:
        """The path of shard number ``shard``."""
        return self.root / self.shards[shard].file

    def summary(self) -> str:
        """A few human-readable lines: source, counts, shapes, state keys."""
        env = self.env
        if env:
            origin = [
                f"  source:   env {env['name']} v{env['version']}",
                f"  config:   {canonical_json(env['config'])}",
            ]
        else:
            origin = [f"  source:   {self.source.get('kind', '?')} import"]
        lengths = sorted({e.num_frames for e in self.episodes})
        length = str(lengths[0]) if len(lengths) == 1 else f"{lengths[0]}..{lengths[-1]}"
        shape = self.data.get("frame_shape")
        lines = [
            f"{self.root}: {FORMAT_NAME} v{self.data['format_version']}, "
            f"written by panbench {self.data.get('panbench_version', '?')}",
            *origin,
            f"  episodes: {len(self.episodes)} of {length} frames, in {len(self.shards)} shard(s)",
            f"  frames:   uint8 {shape if shape else 'varying'}",
            f"  states:   {', '.join(self.data.get('state_keys') or []) or '(none)'}",
        ]
        return "\n".join(lines)


def _fail_index(path: Path, what: str) -> DataError:
    return DataError(f"Index {path} is not a valid {FORMAT_NAME} index: {what}.")


def read_index(path: str | Path) -> DatasetIndex:
    """Reads and checks the ``index.json`` of an episode folder.

    Args:
        path: the folder (or its ``index.json``).

    Raises:
        DataError: the folder or index is missing, unreadable, of another format or of a newer
            format version; the message says what was expected and found.
    """
    path = Path(path)
    root = path.parent if path.name == INDEX_FILE and path.is_file() else path
    index_path = root / INDEX_FILE
    if not root.is_dir():
        raise DataError(f"Episode folder {root} does not exist.")
    if not index_path.is_file():
        raise DataError(
            f"No {INDEX_FILE} in {root}: not a complete panbench episode folder (a run that was "
            f"interrupted leaves only a '{root.name}.tmp-<pid>' folder; generate it again)."
        )
    data = read_versioned_json(
        index_path,
        format_name=FORMAT_NAME,
        versions=range(1, FORMAT_VERSION + 1),
        what="index",
        hint="(upgrade panbench to read newer folders)",
    )
    try:
        shards = tuple(
            ShardInfo(
                file=str(s["file"]),
                sha256=str(s["sha256"]),
                bytes=int(s["bytes"]),
                episode_ids=tuple(int(i) for i in s["episode_ids"]),
            )
            for s in data["shards"]
        )
        episodes = tuple(
            EpisodeInfo(
                episode_id=int(e["episode_id"]),
                shard=int(e["shard"]),
                seed=None if e["seed"] is None else int(e["seed"]),
                hash=str(e["hash"]),
                num_frames=int(e["num_frames"]),
                source=e.get("source"),
            )
            for e in data["episodes"]
        )
        if "kind" not in data["source"]:
            raise KeyError("source.kind")
    except (KeyError, TypeError, ValueError) as err:
        raise _fail_index(index_path, f"missing or malformed field ({err!r})") from err
    for shard in shards:
        if Path(shard.file).name != shard.file:  # never read outside the folder
            raise _fail_index(index_path, f"shard file {shard.file!r} is not a plain file name")
    for info in episodes:
        if (
            not 0 <= info.shard < len(shards)
            or info.episode_id not in shards[info.shard].episode_ids
        ):
            raise _fail_index(
                index_path, f"episode {info.episode_id} is not listed in shard {info.shard}"
            )
    return DatasetIndex(root=root, data=data, shards=shards, episodes=episodes)


# ============================================================================================ shards
def _shard_bytes(records: Sequence[EpisodeRecord]) -> bytes:
    from safetensors.numpy import save

    tensors: dict[str, np.ndarray] = {}
    meta_episodes = []
    for rec in records:
        prefix = f"episodes/{rec.episode_id}"
        tensors[f"{prefix}/frames"] = rec.frames
        for key, arr in rec.states.items():
            tensors[f"{prefix}/states/{key}"] = arr
        meta_episodes.append(
            {
                "episode_id": rec.episode_id,
                "seed": rec.seed,
                "source": rec.source,
                "hash": rec.hash,
                "num_frames": rec.num_frames,
                "actions": list(rec.actions),
                "state_keys": sorted(rec.states),
            }
        )
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "episodes": meta_episodes}
    return save(tensors, metadata={SHARD_METADATA_KEY: canonical_json(meta)})


def _corrupt(path: Path, what: str) -> DataError:
    return DataError(f"Shard {path} is corrupt or unreadable: {what}.")


def read_shard(
    path: str | Path, expected_sha256: str | None = None, expected_bytes: int | None = None
) -> list[EpisodeRecord]:
    """Reads every episode of one shard file.

    The file is read once; the sha256 is checked on those same bytes before they are parsed.

    Args:
        path: a ``shard-*.safetensors`` file.
        expected_sha256: the hex sha256 the index lists; ``None`` skips the check.
        expected_bytes: the size the index lists, reported when the hash does not match.

    Returns:
        The shard's episodes in stored order.

    Raises:
        DataError: the file is missing, its sha256 differs from ``expected_sha256``, or it cannot
            be parsed; the message names the shard and what was expected and found.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError as err:
        raise DataError(f"Shard {path} listed in the index is missing.") from err
    except OSError as err:
        raise _corrupt(path, f"could not read the file ({err})") from err
    if expected_sha256 is not None:
        found = hashlib.sha256(blob).hexdigest()
        if found != expected_sha256:
            size = f"{expected_bytes} bytes" if expected_bytes is not None else "size unknown"
            raise _corrupt(
                path,
                f"expected sha256 {expected_sha256} ({size}) as listed in {INDEX_FILE}, "
                f"found {found} ({len(blob)} bytes); regenerate or re-copy the folder",
            )
    try:
        (header_len,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8 : 8 + header_len])
        meta = json.loads(header["__metadata__"][SHARD_METADATA_KEY])
        tensors = load(blob)
    except (struct.error, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise _corrupt(path, f"bad safetensors header or metadata ({err!r})") from err
    except SafetensorError as err:
        raise _corrupt(path, f"safetensors could not parse it ({err})") from err
    if meta.get("format") != FORMAT_NAME or meta.get("format_version", 0) > FORMAT_VERSION:
        raise _corrupt(
            path,
            f"expected format {FORMAT_NAME} v<={FORMAT_VERSION}, found "
            f"{meta.get('format')!r} v{meta.get('format_version')!r}",
        )
    records = []
    for ep in meta["episodes"]:
        prefix = f"episodes/{ep['episode_id']}"
        try:
            frames = tensors[f"{prefix}/frames"]
            states = {k: tensors[f"{prefix}/states/{k}"] for k in ep["state_keys"]}
        except KeyError as err:
            raise _corrupt(path, f"array {err.args[0]!r} is missing") from err
        records.append(
            EpisodeRecord(
                episode_id=int(ep["episode_id"]),
                frames=frames,
                actions=tuple(ep["actions"]),
                states=states,
                seed=ep["seed"],
                source=ep["source"],
                hash=ep["hash"],
            )
        )
    return records


def verify_dataset(path: str | Path, *, check_episode_hashes: bool = True) -> DatasetIndex:
    """Checks a whole episode folder: index, every shard's sha256, every episode's content hash.

    Args:
        path: the folder.
        check_episode_hashes: also recompute each episode's :func:`episode_hash` from its arrays
            (catches a shard rewritten together with its index entry).

    Returns:
        The parsed index.

    Raises:
        DataError: on the first problem found, naming the shard or episode, expected and found.
    """
    index = read_index(path)
    by_id = {e.episode_id: e for e in index.episodes}
    for number, shard in enumerate(index.shards):
        shard_path = index.shard_path(number)
        records = read_shard(shard_path, shard.sha256, shard.bytes)
        found_ids = tuple(r.episode_id for r in records)
        if found_ids != shard.episode_ids:
            raise _corrupt(
                shard_path, f"expected episodes {list(shard.episode_ids)}, found {list(found_ids)}"
            )
        for rec in records:
            listed = by_id.get(rec.episode_id)
            if listed is None or listed.hash != rec.hash:
                raise _corrupt(
                    shard_path,
                    f"episode {rec.episode_id} has hash {rec.hash}, the index lists "
                    f"{listed.hash if listed else 'no such episode'}",
                )
            if listed.num_frames != rec.num_frames:
                raise _corrupt(
                    shard_path,
                    f"episode {rec.episode_id} has {rec.num_frames} frames, the index lists "
                    f"{listed.num_frames}",
                )
            if check_episode_hashes:
                recomputed = episode_hash(rec.frames, rec.actions, rec.states)
                if recomputed != rec.hash:
                    raise _corrupt(
                        shard_path,
                        f"episode {rec.episode_id}: expected content hash {rec.hash}, "
                        f"recomputed {recomputed}",
                    )
    return index


# ============================================================================================ writer
class DatasetWriter:
    """Writes episodes into a new folder, shard by shard, and the index last, atomically.

    Use as a context manager; the folder appears at ``out`` only when the block ends without an
    exception (see :func:`panbench.io.atomic_dir`)::

        with DatasetWriter(out, source={"kind": "env", ...}, env=env_info) as writer:
            for record in records:
                writer.add(record)

    Args:
        out: the folder to create; must be absent or empty.
        source: how the episodes were made, recorded as ``index.json["source"]``; must hold
            ``"kind"`` and be JSON-serialisable.
        env: ``{"name", "version", "config", "fingerprint"}`` of the env, or ``None``.
        shard_size: episodes per shard file (the last shard may hold fewer).
        progress: show a rich progress bar.
        total: the number of episodes expected, for the progress bar.
        description: the progress bar's label.

    Raises:
        ConfigError: ``shard_size`` < 1, ``source`` lacks ``kind``, or ``out`` is not empty.
    """

    def __init__(
        self,
        out: str | Path,
        source: Mapping[str, Any],
        env: Mapping[str, Any] | None = None,
        shard_size: int = 64,
        *,
        progress: bool = False,
        total: int | None = None,
        description: str = "writing episodes",
    ) -> None:
        if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
            raise ConfigError(f"Expected shard_size to be an int >= 1, but got {shard_size!r}.")
        if "kind" not in source:
            raise ConfigError("Expected the dataset source to name its 'kind' (env, video, ...).")
        self.out = Path(out)
        self.source = dict(source)
        self.env = None if env is None else dict(env)
        self.shard_size = shard_size
        self._progress_args = (progress, total, description)
        self._stack = contextlib.ExitStack()
        self._tmp: Path | None = None
        self._pending: list[EpisodeRecord] = []
        self._shards: list[dict[str, Any]] = []
        self._episodes: list[dict[str, Any]] = []
        self._ids: set[int] = set()
        self._frame_shapes: set[tuple[int, ...]] = set()
        self._state_keys: set[tuple[str, ...]] = set()
        self._advance = lambda: None

    def __enter__(self) -> DatasetWriter:
        self._tmp = self._stack.enter_context(atomic_dir(self.out))
        self._advance = self._stack.enter_context(_progress(*self._progress_args))
        return self

    def add(self, record: EpisodeRecord) -> None:
        """Queues one episode; a shard is written whenever ``shard_size`` episodes are queued.

        Raises:
            DataError: the episode id was already added.
        """
        if self._tmp is None:
            raise ConfigError("DatasetWriter.add() must be called inside its `with` block.")
        if record.episode_id in self._ids:
            raise DataError(f"Episode id {record.episode_id} was added twice.")
        self._ids.add(record.episode_id)
        self._pending.append(record)
        if len(self._pending) >= self.shard_size:
            self._flush()
        self._advance()

    def _flush(self) -> None:
        assert self._tmp is not None
        if not self._pending:
            return
        number = len(self._shards)
        name = f"shard-{number:05d}.safetensors"
        blob = _shard_bytes(self._pending)
        (self._tmp / name).write_bytes(blob)
        self._shards.append(
            {
                "file": name,
                "sha256": hashlib.sha256(blob).hexdigest(),
                "bytes": len(blob),
                "episode_ids": [r.episode_id for r in self._pending],
            }
        )
        for rec in self._pending:
            self._episodes.append(
                {
                    "episode_id": rec.episode_id,
                    "shard": number,
                    "seed": rec.seed,
                    "hash": rec.hash,
                    "num_frames": rec.num_frames,
                    "source": rec.source,
                }
            )
            self._frame_shapes.add(tuple(rec.frames.shape[1:]))
            self._state_keys.add(tuple(sorted(rec.states)))
        self._pending = []

    def _write_index(self) -> None:
        assert self._tmp is not None
        if not self._episodes:
            raise DataError(f"No episodes were written to {self.out}; an empty folder is useless.")
        lengths = {e["num_frames"] for e in self._episodes}
        index = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "panbench_version": __version__,
            "source": self.source,
            "env": self.env,
            "num_episodes": len(self._episodes),
            "num_frames": lengths.pop() if len(lengths) == 1 else None,
            "frame_shape": list(self._frame_shapes.pop()) if len(self._frame_shapes) == 1 else None,
            "state_keys": list(self._state_keys.pop()) if len(self._state_keys) == 1 else None,
            "shards": self._shards,
            "episodes": self._episodes,
        }
        atomic_write_json(self._tmp / INDEX_FILE, index)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc_type is None:
            try:
                self._flush()
                self._write_index()
            except BaseException as err:
                # Hand the failure to atomic_dir so it removes the temporary folder.
                self._stack.__exit__(type(err), err, err.__traceback__)
                raise
        return bool(self._stack.__exit__(exc_type, exc, tb))


@contextlib.contextmanager
def _progress(enabled: bool, total: int | None, description: str) -> Iterator[Any]:
    """Yields a callable that advances a rich progress bar by one (a no-op when disabled)."""
    if not enabled:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)
