"""The WR-Arena episode source: episodes of an imported task, read from its manifest and checkout.

:func:`panbench.data.wr_arena.import_wr_arena` writes, per task, a manifest listing every sample
(image paths relative to the user's WR-Arena checkout, with their sha256, prompts, answers). This
module reads it back: :class:`WrArenaSource` turns each sample into an :class:`ImageEpisode`,
checking every image against its recorded hash.

Images become square frames by one documented rule (``data.aspect`` in the task): ``crop``
(default) keeps the largest centred square, ``pad`` centres the image on black, ``squash``
resizes without keeping the aspect ratio; each is a mode of :func:`panbench.data.frames.
resize_frames` (antialiased bilinear to ``data.resolution``). See ``docs/wr-arena.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from panbench.data.episodes import Episode, EpisodeSource, TaskSpec, episode_seed
from panbench.data.frames import ResizeMode, resize_frames
from panbench.envs.base import Action
from panbench.errors import ConfigError, DataError
from panbench.io import read_versioned_json, sha256_file

__all__ = [
    "ASPECT_MODES",
    "DEFAULT_CANDIDATES",
    "LANGUAGE_TABLE_BLOCKS",
    "LANGUAGE_TABLE_DIRECTIONS",
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "ROOT_ENV_VAR",
    "ImageEpisode",
    "WrArenaSource",
    "image_to_frame",
    "load_manifest",
    "resolve_root",
]

MANIFEST_FORMAT = "panbench-wr-arena-manifest"
MANIFEST_VERSION = 1
ROOT_ENV_VAR = "PANBENCH_WR_ARENA_ROOT"
"""Environment variable naming the WR-Arena checkout; overrides the root recorded at import."""

ASPECT_MODES: dict[str, ResizeMode] = {"crop": "center-crop", "pad": "pad", "squash": "squash"}
"""A task's ``data.aspect`` -> the :func:`~panbench.data.frames.resize_frames` mode it uses."""

#: Language Table's eight blocks (the 8-block board of Lynch et al., 2022)
LANGUAGE_TABLE_BLOCKS = (
    "red moon",
    "red pentagon",
    "blue moon",
    "blue cube",
    "green cube",
    "green star",
    "yellow star",
    "yellow pentagon",
)
LANGUAGE_TABLE_DIRECTIONS = ("left", "right", "up", "down")
DEFAULT_CANDIDATES = tuple(
    f"push the {b} {d}" for b in LANGUAGE_TABLE_BLOCKS for d in LANGUAGE_TABLE_DIRECTIONS
)
"""The structured-planning candidate actions the import writes into the task's options."""


def load_manifest(path: Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Reads a manifest written by :func:`import_wr_arena`, checking its sha256 and format.

    Raises:
        DataError: missing, malformed, of another format, or changed since the task was written.
    """
    try:
        blob = path.read_bytes()
    except OSError as err:
        raise DataError(
            f"{path}: cannot read the task's data manifest ({err}); re-run `panbench tasks "
            "import wr-arena`."
        ) from err
    digest = hashlib.sha256(blob).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise DataError(
            f"{path}: the manifest hashes to {digest}, not the {expected_sha256} its task "
            "records: it changed after import; re-run `panbench tasks import wr-arena`."
        )
    return read_versioned_json(
        path,
        format_name=MANIFEST_FORMAT,
        versions=MANIFEST_VERSION,
        what="manifest",
        hint="Re-run `panbench tasks import wr-arena`.",
        blob=blob,
    )


def resolve_root(recorded: str | None, task: str) -> Path:
    """The checkout to read images from: ``$PANBENCH_WR_ARENA_ROOT`` if set, else the root the
    import recorded.

    Raises:
        ConfigError: neither is set.
    """
    override = os.environ.get(ROOT_ENV_VAR)
    if override:
        return Path(override).expanduser()
    if recorded:
        return Path(recorded).expanduser()
    raise ConfigError(
        f"Task {task!r} names no WR-Arena checkout: set {ROOT_ENV_VAR}=/path/to/WR-Arena or "
        "data.root in the task (re-running the import records it)."
    )


def image_to_frame(path: Path, resolution: int, aspect: str = "crop") -> np.ndarray:
    """Reads an image and makes it a square frame.

    Args:
        path: a PNG/JPEG file (any mode; converted to RGB, alpha dropped).
        resolution: the side of the output frame in pixels.
        aspect: ``crop`` (largest centred square), ``pad`` (centred on black) or ``squash``.

    Returns:
        uint8 [resolution, resolution, 3].
    """
    from PIL import Image

    mode = ASPECT_MODES.get(aspect)
    if mode is None:
        raise ConfigError(f"Expected aspect 'crop', 'pad' or 'squash', but got {aspect!r}.")
    try:
        with Image.open(path) as im:
            rgb = np.array(im.convert("RGB"), dtype=np.uint8)
    except OSError as err:
        raise DataError(f"{path}: cannot decode the image ({err}).") from err
    return np.ascontiguousarray(resize_frames(rgb, resolution, mode=mode))


def _hash_episode(sample: Mapping[str, Any]) -> str:
    """sha256 over the sample's image hashes (the image bytes), prompts, goal and answer."""
    payload = {
        "image": sample["image"]["sha256"],
        "prompts": sample.get("prompts", []),
        "choices": [c["sha256"] for c in sample.get("choices", [])],
        "answer": sample.get("answer"),
        "goal": sample.get("goal"),
        "goal_image": (sample.get("goal_image") or {}).get("sha256"),
        "max_action": sample.get("max_action"),
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class ImageEpisode(Episode):
    """An :class:`~panbench.data.episodes.Episode` from an imported image sample.

    Attributes:
        sample: the manifest entry (id, prompts, answer, goal, ...).
        choices: uint8 [N, R, R, 3] candidate frames (step-wise tasks), else None.
        goal_frame: uint8 [R, R, 3] goal image (planning tasks that have one), else None.
    """

    sample: dict[str, Any] = field(default_factory=dict)
    choices: np.ndarray | None = None
    goal_frame: np.ndarray | None = None


class WrArenaSource(EpisodeSource):
    """Episodes of an imported WR-Arena task, built from its manifest and the user's checkout.

    Each episode's context is the sample's image as one frame; its actions are the sample's
    prompts as text-only actions (``kind`` ``"intervention"`` for environment prompts); there
    are no true future frames (``frames`` is empty). Step-wise samples carry their candidate
    frames and 1-based answer, planning samples their goal text, budget and goal frame.

    Args:
        task: a task with a ``data`` spec.

    Raises:
        DataError: the manifest is missing, changed or holds fewer samples than the task counts.
        ConfigError: no checkout root is known.
    """

    kind: ClassVar[str] = "wr-arena"

    def __init__(self, task: TaskSpec) -> None:
        if task.data is None:
            raise ConfigError(f"Task {task.name!r} has no data source.")
        self.task = task
        self.data = task.data
        self.manifest_path = task.manifest_path()
        self.manifest = load_manifest(self.manifest_path, task.data.manifest_sha256)
        self.samples: list[dict[str, Any]] = list(self.manifest["samples"])
        if task.episodes.count > len(self.samples):
            raise DataError(
                f"Task {task.name!r} counts {task.episodes.count} episodes, but its manifest "
                f"{self.manifest_path} lists {len(self.samples)} usable samples."
            )
        self.root = resolve_root(task.data.root, task.name)
        if not self.root.is_dir():
            raise DataError(
                f"{self.root}: the WR-Arena checkout of task {task.name!r} is not there; set "
                f"{ROOT_ENV_VAR} to where it is."
            )

    def __len__(self) -> int:
        return self.task.episodes.count

    def provenance(self) -> dict[str, Any]:
        """Where the episodes came from, for the task's results entry."""
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

    def frame(self, image: Mapping[str, str]) -> np.ndarray:
        """One image of the manifest as a task frame uint8 [R, R, 3], checked against its hash.

        Raises:
            DataError: the file is missing or its bytes changed since import.
        """
        path = self.root / image["path"]
        if not path.is_file():
            raise DataError(
                f"{path}: image of task {self.task.name!r} is missing (is {ROOT_ENV_VAR} or "
                "data.root the right checkout?)."
            )
        found = sha256_file(path)
        if found != image["sha256"]:
            raise DataError(
                f"{path}: the image changed since import (sha256 {found[:12]}..., manifest "
                f"{image['sha256'][:12]}...); re-run `panbench tasks import wr-arena` (this "
                "changes the task hash)."
            )
        return image_to_frame(path, self.data.resolution, self.data.aspect)

    def frames(self, images: Iterable[Mapping[str, str]]) -> np.ndarray:
        return np.stack([self.frame(im) for im in images])

    def episode(self, index: int) -> ImageEpisode:
        """Episode ``index`` (the manifest's sample ``index``)."""
        sample = self.samples[index]
        kind = "intervention" if sample.get("group") == "environment" else "agent"
        actions = [Action.text_only(p, kind=kind) for p in sample.get("prompts", [])]
        context = self.frame(sample["image"])[None]
        res = self.data.resolution
        return ImageEpisode(
            index=index,
            episode_id=f"{self.task.name}/{index:05d}",
            seed=episode_seed(self.task.episodes.seed, index),
            context_frames=context,
            context_actions=[],
            context_states=[],
            actions=actions,
            states=[],
            frames=np.zeros((0, res, res, 3), dtype=np.uint8),
            hash=_hash_episode(sample),
            sample=sample,
            choices=self.frames(sample["choices"]) if sample.get("choices") else None,
            goal_frame=self.frame(sample["goal_image"]) if sample.get("goal_image") else None,
        )
