"""Recorded data as scored tasks: the shared importer and episode source of every recorded kind.

A recorded dataset (a LeRobot dataset, a folder of videos with actions, a panbench episode
folder) becomes a task in one step, :func:`import_recorded`: its recordings are split into
held-out ones (the task's) and the rest, every recording is read once (so a corrupt file, a
missing camera or a frame count that disagrees with the actions is refused before anything is
written), the held-out ones are cut into windows of ``context + horizon`` frames every ``stride`` frames, and a
manifest lists the windows and the sha256 of every file of the dataset. The task YAML records the
manifest's sha256, so the task hash covers the data, which stays where it is.

:class:`RecordedSource` turns the manifest back into episodes; each kind subclasses it in
``panbench/data/sources/`` and says how to list (:meth:`RecordedSource.scan`) and read
(:meth:`RecordedSource.read`) its recordings. Every episode also carries the actions and true
future of another recording (``alt_*``, chosen at import): the ``recorded_rollout`` protocol's
action sensitivity replays the same context under those actions, and ``random-action`` plays
that other future back. See ``docs/recorded-data.md``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from panbench.data.episodes import Episode, EpisodeSource, TaskSpec, episode_seed
from panbench.data.frames import resize_frames
from panbench.envs.base import Action
from panbench.errors import ConfigError, DataError
from panbench.io import atomic_write_text, read_versioned_json, sha256_file

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "ImportOptions",
    "RecordedEpisode",
    "RecordedSource",
    "Recording",
    "Scan",
    "hash_recorded_episode",
    "import_recorded",
]

MANIFEST_FORMAT = "panbench-recorded-manifest"
MANIFEST_VERSION = 1
#: bumped whenever an imported task's episode construction or scoring changes
TASK_VERSION = "1"
PROTOCOL = "recorded_rollout"
METRICS = ("psnr", "ssim", "lpips", "fvd", "action_sensitivity", "delta_psnr")
_ASPECTS = {"crop": "center-crop", "pad": "pad", "squash": "squash"}


@dataclass(frozen=True)
class Recording:
    """One recorded sequence, as a kind lists it.

    Attributes:
        id: a stable name (``episode_000003``, ``clip.mp4``).
        length: its frame count as the metadata says (checked against what is decoded).
        files: the files it reads, relative to the root (their sha256 enter the manifest).
        locator: what the kind's reader needs to find it (plain JSON).
    """

    id: str
    length: int
    files: tuple[str, ...]
    locator: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scan:
    """What a kind found at a root: its recordings, shared metadata files and upstream facts."""

    recordings: list[Recording]
    meta_files: list[str]
    upstream: dict[str, Any]


@dataclass(frozen=True)
class ImportOptions:
    """How recordings become a task's episodes (the defaults of ``panbench tasks import``).

    Attributes:
        context: context frames per episode.
        horizon: predicted frames per episode.
        stride: frames between the starts of two windows (None: context + horizon, no overlap).
        resolution: side of the square frames, in pixels.
        aspect: ``crop`` (centred square), ``pad`` (on black) or ``squash``.
        test_fraction: the share of recordings held out as the task's (1.0: all of them).
        seed: seeds the held-out split.
        max_episodes: at most this many windows (the first ones, in recording order).
        camera: the camera key (LeRobot).
        action_key: the action column (LeRobot).
    """

    context: int = 4
    horizon: int = 8
    stride: int | None = None
    resolution: int = 128
    aspect: str = "crop"
    test_fraction: float = 0.2
    seed: int = 0
    max_episodes: int = 256
    camera: str | None = None
    action_key: str = "action"

    def check(self) -> None:
        """Raises ConfigError naming the first option out of range."""
        for name in ("context", "horizon", "stride", "resolution", "max_episodes"):
            value = getattr(self, name)
            if value is None and name == "stride":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"Expected --{name} to be an integer >= 1, but got {value!r}.")
        if not 0 < self.test_fraction <= 1:
            raise ConfigError(
                f"Expected --test-fraction in (0, 1], but got {self.test_fraction!r}."
            )
        if self.aspect not in _ASPECTS:
            raise ConfigError(
                f"Expected --aspect to be one of {', '.join(_ASPECTS)}, but got {self.aspect!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "horizon": self.horizon,
            "stride": self.stride or self.context + self.horizon,
            "test_fraction": self.test_fraction,
            "seed": self.seed,
            "max_episodes": self.max_episodes,
            "camera": self.camera,
            "action_key": self.action_key,
        }


@dataclass
class RecordedEpisode(Episode):
    """An :class:`~panbench.data.episodes.Episode` cut from a recording.

    Attributes:
        recording: the recording's id.
        start: the window's first frame in the recording.
        alt_actions: the horizon's actions of another recording (action sensitivity), or None.
        alt_frames: uint8 [horizon, R, R, 3] that recording's true future, or None.
    """

    recording: str = ""
    start: int = 0
    alt_actions: list[Action] | None = None
    alt_frames: np.ndarray | None = None


def hash_recorded_episode(frames: np.ndarray, actions: Sequence[Action]) -> str:
    """sha256 over an episode's frames (shape and bytes) and its actions (text, index, vector)."""
    h = hashlib.sha256(b"panbench-recorded-episode-v1\n")
    h.update(f"{frames.dtype.str}|{','.join(map(str, frames.shape))}\n".encode())
    h.update(np.ascontiguousarray(frames).tobytes())
    blob = json.dumps([a.to_dict() for a in actions], sort_keys=True, separators=(",", ":"))
    h.update(blob.encode("utf-8"))
    return h.hexdigest()


def _actions_signature(actions: Sequence[Action]) -> str:
    blob = json.dumps([a.to_dict() for a in actions], sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class RecordedSource(EpisodeSource):
    """Episodes of a task imported from recorded data (a kind subclasses it, one file each).

    Subclasses implement :meth:`scan` (list the recordings under a root) and :meth:`read`
    (one recording's frames and actions). Every file an episode reads is checked against its
    sha256 in the manifest, once per process.

    Args:
        task: a task with a ``data`` spec of this kind.

    Raises:
        DataError: the manifest is missing or changed, a data file changed, or the data root
            is not there.
    """

    kind: ClassVar[str]
    #: what ``--root`` names, for messages
    root_help: ClassVar[str] = "the data folder"

    def __init__(self, task: TaskSpec) -> None:
        if task.data is None:
            raise ConfigError(f"Task {task.name!r} has no data source.")
        self.task = task
        self.data = task.data
        self.manifest_path = task.manifest_path()
        self.manifest = load_recorded_manifest(self.manifest_path, task.data.manifest_sha256)
        # where the data lives is the task's data.root (not hashed), never in the manifest
        self.root = Path(task.data.root or "").expanduser()
        if not self.root.is_dir():
            raise DataError(
                f"{self.root}: the data of task {task.name!r} is not there (data.root in the "
                "task names where it was imported from)."
            )
        self.options: dict[str, Any] = dict(self.manifest["options"])
        self.recordings = [Recording(**r) for r in self.manifest["recordings"]]
        self.windows: list[dict[str, Any]] = list(self.manifest["windows"])
        self._sha = {f["path"]: f["sha256"] for f in self.manifest["files"]}
        self._checked: set[str] = set()
        self._cache: dict[int, tuple[np.ndarray, list[Action]]] = {}
        if task.episodes.count > len(self.windows):
            raise DataError(
                f"Task {task.name!r} counts {task.episodes.count} episodes, but its manifest "
                f"{self.manifest_path} lists {len(self.windows)} windows."
            )

    # ------------------------------------------------------------------ what a kind implements
    @classmethod
    def scan(cls, root: Path, opts: ImportOptions) -> Scan:
        """Lists the recordings under ``root`` (cheap: metadata only)."""
        raise NotImplementedError

    @classmethod
    def read(
        cls, root: Path, recording: Recording, opts: dict[str, Any]
    ) -> tuple[np.ndarray, list[Action]]:
        """One recording: frames uint8 [T, H, W, 3] and at least T-1 actions.

        Raises:
            DataError: naming the file, what was expected and what was found.
        """
        raise NotImplementedError

    # ---------------------------------------------------------------------------- the source
    def __len__(self) -> int:
        return self.task.episodes.count

    def provenance(self) -> dict[str, Any]:
        return {
            "kind": self.data.kind,
            "root": str(self.root),
            "manifest": str(self.manifest_path),
            "manifest_sha256": self.data.manifest_sha256,
            "upstream": dict(self.manifest.get("upstream", {})),
            "counts": dict(self.manifest.get("counts", {})),
            "resolution": self.data.resolution,
            "aspect": self.data.aspect,
        }

    def _verify(self, paths: Sequence[str]) -> None:
        for rel in paths:
            if rel in self._checked:
                continue
            path = self.root / rel
            if not path.is_file():
                raise DataError(f"{path}: a data file of task {self.task.name!r} is missing.")
            found = sha256_file(path)
            if found != self._sha.get(rel):
                raise DataError(
                    f"{path}: the file changed since import (sha256 {found[:12]}..., manifest "
                    f"{str(self._sha.get(rel))[:12]}...); re-run `panbench tasks import "
                    f"{self.kind}` (this changes the task hash)."
                )
            self._checked.add(rel)

    def _recording(self, i: int) -> tuple[np.ndarray, list[Action]]:
        """Recording ``i`` at the task's resolution (a few are kept: windows come in order)."""
        if i not in self._cache:
            rec = self.recordings[i]
            self._verify([*self.manifest["meta_files"], *rec.files])
            frames, actions = self.read(self.root, rec, self.options)
            frames = resize_frames(
                frames,
                self.data.resolution,
                mode=_ASPECTS[self.data.aspect],  # type: ignore[arg-type]
            )
            if len(self._cache) >= 3:
                self._cache.pop(next(iter(self._cache)))
            self._cache[i] = (np.ascontiguousarray(frames), actions)
        return self._cache[i]

    def episode(self, index: int) -> RecordedEpisode:
        """Episode ``index``: the manifest's window ``index``."""
        ctx, hor = self.task.episodes.context, self.task.episodes.horizon
        win = self.windows[index]
        frames, actions = self._recording(win["recording"])
        s = win["start"]
        clip, acts = frames[s : s + ctx + hor], actions[s : s + ctx + hor - 1]
        alt_actions = alt_frames = None
        alt = win.get("alt")
        if alt is not None:
            a_frames, a_actions = self._recording(alt["recording"])
            a0 = alt["start"] + ctx
            alt_actions = a_actions[a0 - 1 : a0 - 1 + hor]
            alt_frames = a_frames[a0 : a0 + hor]
        return RecordedEpisode(
            index=index,
            episode_id=f"{self.task.name}/{index:05d}",
            seed=episode_seed(self.task.episodes.seed, index),
            context_frames=clip[:ctx],
            context_actions=acts[: ctx - 1],
            context_states=[],
            actions=acts[ctx - 1 :],
            states=[],
            frames=clip[ctx:],
            hash=hash_recorded_episode(clip, acts),
            recording=self.recordings[win["recording"]].id,
            start=s,
            alt_actions=alt_actions,
            alt_frames=alt_frames,
        )


def load_recorded_manifest(path: Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Reads a manifest written by :func:`import_recorded`, checking its sha256 and format.

    Raises:
        DataError: missing, malformed, of another format, or changed since the task was written.
    """
    try:
        blob = path.read_bytes()
    except OSError as err:
        raise DataError(
            f"{path}: cannot read the task's data manifest ({err}); re-run `panbench tasks import`."
        ) from err
    digest = hashlib.sha256(blob).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise DataError(
            f"{path}: the manifest hashes to {digest}, not the {expected_sha256} its task "
            "records: it changed after import; re-run `panbench tasks import`."
        )
    return read_versioned_json(
        path,
        format_name=MANIFEST_FORMAT,
        versions=MANIFEST_VERSION,
        what="manifest",
        hint="Re-run `panbench tasks import`.",
        blob=blob,
    )


# ================================================================================ the import
@dataclass
class ImportReport:
    """What :func:`import_recorded` wrote and from what."""

    task: str
    yaml: Path
    manifest: Path
    suite: Path
    recordings: int
    held_out: int
    episodes: int
    files: int
    upstream: dict[str, Any]


def _task_name(root: str, given: str | None) -> str:
    name = given or re.sub(r"[^a-z0-9]+", "-", Path(str(root)).name.lower()).strip("-")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name or ""):
        raise ConfigError(
            f"Expected --name to be lower-case letters, digits, '-', '_' or '.', but got {name!r}."
        )
    return name


def _split(recordings: Sequence[Recording], opts: ImportOptions) -> list[int]:
    """Indices of the held-out recordings: a seeded draw of ``test_fraction`` of them, sorted."""
    n = len(recordings)
    k = n if opts.test_fraction >= 1 else max(1, round(opts.test_fraction * n))
    order = np.random.default_rng([opts.seed, 20]).permutation(n)
    return sorted(int(i) for i in order[:k])


def _windows(
    cls: type[RecordedSource],
    root: Path,
    recs: Sequence[Recording],
    held: Sequence[int],
    opts: ImportOptions,
) -> list[dict[str, Any]]:
    """Reads every recording (the checks: nothing unread is vouched for) and cuts the held-out
    ones into the task's windows; a window's ``recording`` is its position in ``recs``.

    Each window is paired (``alt``) with a window of another recording whose actions differ,
    held out or not (only the actions and true future are borrowed): the next held-out one
    after it, else the first other one; a window of the same recording only when no other
    recording has one.
    """
    span = opts.context + opts.horizon
    stride = opts.stride or span
    windows: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []  # windows of the recordings that are not held out
    for i, rec in enumerate(recs):
        frames, actions = cls.read(root, rec, opts.to_dict())
        if len(actions) < len(frames) - 1:
            raise DataError(
                f"{root / rec.files[0]}: expected {len(frames) - 1} actions for {len(frames)} "
                f"frames of recording {rec.id!r}, but found {len(actions)}."
            )
        for s in range(0, len(frames) - span + 1, stride):
            sig = _actions_signature(actions[s + opts.context - 1 : s + span - 1])
            (windows if i in held else others).append({"recording": i, "start": s, "actions": sig})
    if not windows:
        longest = max((recs[i].length for i in held), default=0)
        raise DataError(
            f"{root}: expected held-out recordings of at least context + horizon = {span} "
            f"frames, but the longest has {longest}; lower --context or --horizon."
        )
    windows = windows[: opts.max_episodes]
    for w, win in enumerate(windows):
        order = windows[w + 1 :] + others + windows[:w]
        other = [x for x in order if x["actions"] != win["actions"]]
        pick = next((x for x in other if x["recording"] != win["recording"]), None)
        pick = pick or (other[0] if other else None)
        win["alt"] = None if pick is None else {k: pick[k] for k in ("recording", "start")}
    return [{k: v for k, v in win.items() if k != "actions"} for win in windows]


def import_recorded(
    kind: str,
    root: str | Path,
    out: str | Path,
    opts: ImportOptions,
    *,
    name: str | None = None,
    upstream: dict[str, Any] | None = None,
) -> ImportReport:
    """Writes a task YAML, its manifest and a one-task suite from recorded data of ``kind``.

    Every check runs before anything is written; then the manifest, the task YAML and the
    suite ``<name>-suite.yaml``, each atomically.

    Args:
        kind: a recorded source kind (``lerobot``, ``videos``, ``episodes``).
        root: the data folder.
        out: the folder for ``<name>.yaml`` and ``<name>.manifest.json``.
        opts: windows, resolution, split (see :class:`ImportOptions`).
        name: the task name (default: from the folder name).
        upstream: facts to record about where the data came from (e.g. a Hub id and revision).

    Raises:
        DataError: the data is missing, corrupt or inconsistent (naming the file).
        ConfigError: an option is out of range.
    """

    from panbench.data.sources import SOURCES

    opts.check()
    cls = SOURCES.get(kind)
    if not (isinstance(cls, type) and issubclass(cls, RecordedSource)):
        raise ConfigError(f"Expected a recorded data kind, but {kind!r} is not one.")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"{root}: expected {cls.root_help}, but it is not a folder.")
    task = _task_name(str(root), name)
    scan = cls.scan(root, opts)
    if not scan.recordings:
        raise DataError(f"{root}: expected recordings ({cls.root_help}), but found none.")
    held = _split(scan.recordings, opts)
    windows = _windows(cls, root, scan.recordings, held, opts)
    used = sorted(
        {w["recording"] for w in windows} | {w["alt"]["recording"] for w in windows if w["alt"]}
    )
    keep = {old: new for new, old in enumerate(used)}
    for w in windows:
        w["recording"] = keep[w["recording"]]
        if w["alt"]:
            w["alt"]["recording"] = keep[w["alt"]["recording"]]
    recordings = [scan.recordings[i] for i in used]
    # every file of the dataset, held out or not: the task hash covers all the data
    paths = sorted(set(scan.meta_files) | {f for r in scan.recordings for f in r.files})
    files = [{"path": p, "sha256": sha256_file(root / p)} for p in paths]
    up = {**scan.upstream, **(upstream or {})}
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "kind": kind,
        "task": task,
        "upstream": up,
        "options": opts.to_dict(),
        "counts": {
            "recordings": len(scan.recordings),
            "held_out": len(held),
            "windows": len(windows),
        },
        "meta_files": list(scan.meta_files),
        "files": files,
        "recordings": [
            {"id": r.id, "length": r.length, "files": list(r.files), "locator": r.locator}
            for r in recordings
        ],
        "windows": windows,
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / f"{task}.manifest.json"
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    yaml_path, suite_path = _write_task(kind, task, root, out, manifest_path, windows, opts)
    return ImportReport(
        task, yaml_path, manifest_path, suite_path, len(scan.recordings), len(held),
        len(windows), len(files), up,
    )  # fmt: skip


def _write_task(
    kind: str,
    task: str,
    root: Path,
    out: Path,
    manifest_path: Path,
    windows: Sequence[dict[str, Any]],
    opts: ImportOptions,
) -> tuple[Path, Path]:
    """Writes the task YAML (recording the manifest's sha256) and its one-task suite."""
    import yaml

    has_alt = any(w["alt"] is not None for w in windows)
    metrics = [m for m in METRICS if has_alt or m not in ("action_sensitivity", "delta_psnr")]
    doc = {
        "task": task,
        "version": TASK_VERSION,
        "description": f"Open-loop prediction on recorded {kind} data from {root.name}: "
        f"{opts.context} context frames, then {opts.horizon} frames under the recorded actions.",
        "protocol": PROTOCOL,
        "data": {
            "kind": kind,
            "manifest": manifest_path.name,
            "manifest_sha256": sha256_file(manifest_path),
            "root": str(root),
            "resolution": opts.resolution,
            "aspect": opts.aspect,
        },
        "episodes": {
            "count": len(windows),
            "seed": opts.seed,
            "context": opts.context,
            "horizon": opts.horizon,
        },
        "metrics": metrics,
        "headline": "psnr",
        "options": {},
    }
    header = (
        f"# Written by `panbench tasks import {kind}` from {root}.\n"
        "# The data stays there; the manifest next to this file lists every file it reads with\n"
        "# its sha256. Re-run the import after the data changes.\n"
    )
    yaml_path = out / f"{task}.yaml"
    atomic_write_text(yaml_path, header + yaml.safe_dump(doc, sort_keys=False, width=100))
    # a one-task suite, so leaderboards (which hold one suite) take the task as it is
    suite = {"suite": f"{task}-suite", "version": TASK_VERSION, "tasks": [task]}
    suite["description"] = f"The recorded-data task {task} alone (for leaderboards)."
    suite_path = out / f"{task}-suite.yaml"
    atomic_write_text(suite_path, yaml.safe_dump(suite, sort_keys=False))
    return yaml_path, suite_path
