"""WR-Arena import: turn a local WR-Arena checkout into versioned panbench tasks and read them back.

WR-Arena (MBZUAI-IFM/WR-Arena) ships its evaluation samples as JSON/JSONL files under
``datasets/`` with images next to them. panbench does not redistribute them (no licence
upstream); :func:`import_wr_arena` reads the user's checkout and writes, per task, a task YAML and
a manifest listing every sample: image paths relative to the checkout root, prompts, answers and
the sha256 of every image. The YAML records the manifest's sha256, so the task hash covers the
data; :class:`WrArenaSource` turns a manifest back into episodes, checking each image against its
recorded hash.

Images become square frames by one documented rule (``data.aspect`` in the task): ``crop``
(default) keeps the largest centred square, ``pad`` centres the image on black, ``squash``
resizes without keeping the aspect ratio; then an antialiased bilinear resize to
``data.resolution`` (the same resize the model runner uses). See ``docs/wr-arena.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from panbench.envs.base import Action
from panbench.errors import ConfigError, DataError
from panbench.io import atomic_write_text, read_versioned_json, sha256_file
from panbench.protocols.base import Episode, episode_seed, resize_frames

if TYPE_CHECKING:
    from panbench.suite import TaskSpec

__all__ = [
    "MANIFEST_FORMAT",
    "ROOT_ENV_VAR",
    "WR_TASKS",
    "ImportReport",
    "TaskImport",
    "WrArenaSource",
    "image_to_frame",
    "import_wr_arena",
    "load_manifest",
    "resolve_root",
]

MANIFEST_FORMAT = "panbench-wr-arena-manifest"
MANIFEST_VERSION = 1
ROOT_ENV_VAR = "PANBENCH_WR_ARENA_ROOT"
"""Environment variable naming the WR-Arena checkout; overrides the root recorded at import."""

#: bumped whenever an imported task's scoring or episode construction changes
TASK_VERSION = "1"
DEFAULT_RESOLUTION = 256
DATASETS = "datasets"

_FIDELITY_DIR = f"{DATASETS}/action_simulation_fidelity_subset"
_SMOOTHNESS_DIR = f"{DATASETS}/smoothness_eval"
_STEPWISE_DIR = f"{DATASETS}/simulative_reasoning_planning/step_wise_simulation_subset"
_PLANNING_DIR = f"{DATASETS}/simulative_reasoning_planning/structured_simulation_planning"

WR_TASKS: tuple[str, ...] = (
    "wr-action-fidelity",
    "wr-smoothness",
    "wr-stepwise",
    "wr-structured-planning",
)
"""The tasks :func:`import_wr_arena` writes, in suite order."""

_JUDGE_FREE = ("wr-smoothness", "wr-stepwise", "wr-structured-planning")


# ============================================================================ reading upstream
def _read_records(path: Path, what: str) -> list[dict[str, Any]]:
    """Reads a JSON list or a JSONL file of objects; errors name the file and line."""
    if not path.is_file():
        raise DataError(f"{path}: expected {what}, but the file is missing.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read {what}: {err}") from err
    records: list[Any]
    if path.suffix == ".jsonl":
        records = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{path}:{line_no}: malformed JSON ({err.msg}); expected one JSON object per "
                    f"line ({what})."
                ) from err
    else:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(
                f"{path}:{err.lineno}: malformed JSON ({err.msg}); expected {what}."
            ) from err
        if not isinstance(loaded, list):
            raise DataError(
                f"{path}: expected a JSON list of samples ({what}), got {type(loaded).__name__}."
            )
        records = loaded
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataError(
                f"{path}: sample {i}: expected a JSON object, got {type(rec).__name__}."
            )
    return records


def _field(
    path: Path, i: int, rec: Mapping[str, Any], key: str, kind: type | tuple[type, ...]
) -> Any:
    if key not in rec:
        raise DataError(f"{path}: sample {i} ({rec.get('id', '?')}): missing field {key!r}.")
    value = rec[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(
            f"{path}: sample {i} ({rec.get('id', '?')}): field {key!r}: expected {names}, "
            f"got {json.dumps(value)[:60]}."
        )
    return value


def _prompts(path: Path, i: int, rec: Mapping[str, Any], key: str) -> list[str]:
    value = _field(path, i, rec, key, list)
    if not value or not all(isinstance(p, str) and p.strip() for p in value):
        raise DataError(
            f"{path}: sample {i} ({rec.get('id', '?')}): field {key!r}: expected a non-empty "
            "list of non-empty strings."
        )
    return list(value)


@dataclass
class _Resolver:
    """Resolves upstream image paths: ``datasets/...`` is relative to the checkout root, any other
    relative path to the folder of the samples file that names it."""

    root: Path

    def rel(self, samples_file: Path, value: str) -> str:
        p = Path(value)
        if p.is_absolute():
            raise DataError(
                f"{samples_file}: expected image paths relative to the checkout, got {value!r}."
            )
        full = self.root / p if p.parts[:1] == (DATASETS,) else samples_file.parent / p
        return Path(os.path.relpath(full, self.root)).as_posix()

    def image(self, rel: str) -> dict[str, str] | None:
        """``{"path", "sha256"}`` of an existing image, else None."""
        path = self.root / rel
        if not path.is_file():
            return None
        return {"path": rel, "sha256": sha256_file(path)}


# ============================================================================ the import
@dataclass
class TaskImport:
    """What the import did for one task.

    Attributes:
        task: the panbench task name.
        upstream: the samples file read (relative to the root).
        listed: samples listed upstream.
        usable: samples whose images are all present (the task's episodes).
        missing: samples skipped because an image is missing (listed in the manifest).
        yaml: the task file written, or None when no sample was usable.
        manifest: the manifest written.
    """

    task: str
    upstream: str
    listed: int
    usable: int
    missing: int
    yaml: Path | None
    manifest: Path


@dataclass
class ImportReport:
    """What :func:`import_wr_arena` wrote."""

    root: Path
    out: Path
    tasks: list[TaskImport] = field(default_factory=list)
    suites: list[Path] = field(default_factory=list)

    def rows(self) -> list[tuple[str, int, int, int, str]]:
        """``(task, listed, usable, missing images, upstream file)`` per task."""
        return [(t.task, t.listed, t.usable, t.missing, t.upstream) for t in self.tasks]


def _sample_fidelity(
    res: _Resolver, path: Path, i: int, rec: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    sid = _field(path, i, rec, "id", str)
    prompts = _prompts(path, i, rec, "prompt_list")
    # WR-Arena's ids end in _1.._6: prompt lists 1-3 command the agent, 4-6 the environment.
    suffix = sid.rsplit("_", 1)[-1]
    if suffix not in ("1", "2", "3", "4", "5", "6"):
        raise DataError(
            f"{path}: sample {i}: field 'id': expected an id ending in _1.._6 (agent 1-3, "
            f"environment 4-6), got {sid!r}."
        )
    if len(prompts) < 3:
        raise DataError(
            f"{path}: sample {i} ({sid}): field 'prompt_list': expected at least 3 prompts "
            f"(three rounds), got {len(prompts)}."
        )
    image = res.rel(path, _field(path, i, rec, "image_path", str))
    group = "agent" if int(suffix) <= 3 else "environment"
    # Upstream judges the last three prompts as rounds 0-2.
    return {"id": sid, "group": group, "image": image, "prompts": prompts[-3:]}, [image]


def _sample_smoothness(
    res: _Resolver, path: Path, i: int, rec: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    sid = _field(path, i, rec, "id", str)
    prompts = _prompts(path, i, rec, "prompt_list")
    image = res.rel(path, _field(path, i, rec, "image_path", str))
    return {"id": sid, "image": image, "prompts": prompts}, [image]


def _sample_stepwise(
    res: _Resolver, path: Path, i: int, rec: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    sid = _field(path, i, rec, "id", str)
    prompt = _field(path, i, rec, "prompt", str)
    image = res.rel(path, _field(path, i, rec, "source", str))
    choices = _field(path, i, rec, "image_choices", list)
    if len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise DataError(
            f"{path}: sample {i} ({sid}): field 'image_choices': expected a list of image "
            f"paths (four upstream), got {json.dumps(choices)[:60]}."
        )
    best = _field(path, i, rec, "best", int)
    if not 1 <= best <= len(choices):
        raise DataError(
            f"{path}: sample {i} ({sid}): field 'best': expected the 1-based index of the "
            f"true choice in 1..{len(choices)}, got {best}."
        )
    rel_choices = [res.rel(path, c) for c in choices]
    sample = {
        "id": sid,
        "image": image,
        "prompts": [prompt],
        "choices": rel_choices,
        "answer": best,
    }
    return sample, [image, *rel_choices]


def _goal_images(res: _Resolver) -> dict[tuple[str, str], str]:
    """Goal images of the structured planning samples, keyed by (episode, goal without '.').

    Upstream keeps them in ``samples_vjepa2.json`` (``goal_state``), not in ``samples.jsonl``.
    """
    path = res.root / _PLANNING_DIR / "samples_vjepa2.json"
    if not path.is_file():
        return {}
    out: dict[tuple[str, str], str] = {}
    for i, rec in enumerate(_read_records(path, "structured planning samples with goal states")):
        episode = _field(path, i, rec, "episode", str)
        goal = _field(path, i, rec, "goal", str)
        if isinstance(rec.get("goal_state"), str):
            out[(episode, goal.strip().rstrip("."))] = res.rel(path, rec["goal_state"])
    return out


def _planning_sampler(res: _Resolver) -> Any:
    goals = _goal_images(res)

    def sample(
        res: _Resolver, path: Path, i: int, rec: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        episode = _field(path, i, rec, "episode", str)
        goal = _field(path, i, rec, "goal", str)
        budget = _field(path, i, rec, "max_action", int)
        if budget < 1:
            raise DataError(
                f"{path}: sample {i} ({episode}): field 'max_action': expected a positive "
                f"action budget, got {budget}."
            )
        image = res.rel(path, _field(path, i, rec, "image_path", str))
        goal_image = goals.get((episode, goal.strip().rstrip(".")))
        sample = {
            "id": f"{episode}/{goal.strip().rstrip('.')}",
            "image": image,
            "goal": goal,
            "max_action": budget,
            "goal_image": goal_image,
        }
        # A goal image is optional: its absence only disables the judge-free scorer.
        return sample, [image]

    return sample


def _task_yaml(
    name: str,
    description: str,
    protocol: str,
    manifest: Path,
    root: Path,
    count: int,
    horizon: int,
    metrics: Sequence[str],
    headline: str,
    options: Mapping[str, Any],
) -> str:
    import yaml

    doc = {
        "task": name,
        "version": TASK_VERSION,
        "description": description,
        "protocol": protocol,
        "data": {
            "kind": "wr-arena",
            "manifest": manifest.name,
            "manifest_sha256": sha256_file(manifest),
            "root": str(root),
            "resolution": DEFAULT_RESOLUTION,
            "aspect": "crop",
        },
        "episodes": {"count": count, "seed": 0, "context": 1, "horizon": horizon},
        "metrics": list(metrics),
        "headline": headline,
        "options": dict(options),
    }
    header = (
        f"# Written by `panbench tasks import wr-arena` from {root}.\n"
        "# The images stay in that checkout (WR-Arena ships no licence); the manifest next to\n"
        "# this file lists them with their sha256. Re-run the import after the data changes.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def _fidelity_options() -> dict[str, Any]:
    from panbench.judges import WR_FIDELITY_RUBRIC

    return {"rubric": WR_FIDELITY_RUBRIC.to_dict()}


def import_wr_arena(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    tasks: Sequence[str] | None = None,
) -> ImportReport:
    """Writes panbench tasks (YAML + manifest each) and suites from a WR-Arena checkout.

    Args:
        root: the checkout (the folder holding ``datasets/``).
        out: the folder to write ``<task>.yaml``, ``<task>.manifest.json``, ``wr-arena.yaml``
            (every task) and ``wr-arena-judge-free.yaml`` (the tasks scored without a judge).
        tasks: a subset of :data:`WR_TASKS` (default: all).

    Returns:
        Per task: samples listed, usable, skipped for a missing image, and the files written.

    Raises:
        DataError: no ``datasets/`` folder, a samples file missing or malformed (naming the
            file, the sample and what was expected).
        ConfigError: an unknown task name.
    """
    root = Path(root).expanduser().resolve()
    out = Path(out)
    wanted = list(tasks) if tasks else list(WR_TASKS)
    unknown = [t for t in wanted if t not in WR_TASKS]
    if unknown:
        from panbench.registry import did_you_mean

        raise ConfigError(
            f"Unknown WR-Arena task {unknown[0]!r}.{did_you_mean(unknown[0], list(WR_TASKS))} "
            f"Expected some of: {', '.join(WR_TASKS)}."
        )
    if not (root / DATASETS).is_dir():
        raise DataError(
            f"{root / DATASETS}: expected the datasets/ folder of a WR-Arena checkout "
            "(git clone https://github.com/MBZUAI-IFM/WR-Arena), but it is missing; pass the "
            "checkout's top folder as --root."
        )
    res = _Resolver(root)
    fidelity = _FIDELITY_DIR + "/samples_subset.json"
    if (root / _FIDELITY_DIR / "samples.json").is_file():
        fidelity = _FIDELITY_DIR + "/samples.json"  # the full set, where the user has it
    plans: dict[str, dict[str, Any]] = {
        "wr-action-fidelity": {
            "file": fidelity,
            "what": "action simulation fidelity samples (id, image_path, prompt_list)",
            "sample": _sample_fidelity,
            "protocol": "wr_action_fidelity",
            "metrics": ["fidelity", "agent_fidelity", "environment_fidelity"],
            "headline": "fidelity",
            "horizon": lambda s: 3,
            "description": "WR-Arena action simulation fidelity: three language-action rounds "
            "from a real image (agent prompt lists 1-3, environment 4-6), each round judged "
            "0-3 on 8 frames; a percentage of the top score. Judge-dependent.",
        },
        "wr-smoothness": {
            "file": _SMOOTHNESS_DIR + "/samples.json",
            "what": "smoothness samples (id, image_path, prompt_list)",
            "sample": _sample_smoothness,
            "protocol": "wr_smoothness",
            "metrics": ["smoothness"],
            "headline": "smoothness",
            "horizon": lambda s: len(s["prompts"]),
            "options": {"flow": "farneback", "lam": 1.0},
            "description": "WR-Arena transition smoothness: a 10-round rollout from a real "
            "image; per round median |v| * exp(-median |dv|) of optical flow, averaged over "
            "rounds then samples. Judge-free.",
        },
        "wr-stepwise": {
            "file": _STEPWISE_DIR + "/samples.jsonl",
            "what": "step-wise simulation samples (id, prompt, source, image_choices, best)",
            "sample": _sample_stepwise,
            "protocol": "wr_stepwise",
            "metrics": ["choice_accuracy"],
            "headline": "choice_accuracy",
            "horizon": lambda s: 1,
            "options": {"distance": "pixel"},
            "description": "WR-Arena step-wise simulation: from a real image and an action, "
            "the candidate nearest the model's last predicted frame must be upstream's 'best' "
            "of four. Judge-free.",
        },
        "wr-structured-planning": {
            "file": _PLANNING_DIR + "/samples.jsonl",
            "what": "structured planning samples (episode, goal, image_path, max_action)",
            "sample": None,
            "protocol": "wr_structured_planning",
            "metrics": ["goal_distance", "goal_progress"],
            "headline": "goal_progress",
            "horizon": lambda s: int(s["max_action"]),
            "options": {"scorer": "goal-image"},
            "description": "WR-Arena structured simulation planning (Language Table): within "
            "the action budget, the model imagines each candidate push and the one whose "
            "imagined frame is nearest the goal image is kept; scored by how much nearer the "
            "final imagined frame is to the goal image than the start. Judge-free in "
            "imagination only; upstream's success is judged by people.",
        },
    }
    report = ImportReport(root=root, out=out)
    out.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        plan = plans[name]
        sampler = plan["sample"] or _planning_sampler(res)
        upstream = root / plan["file"]
        records = _read_records(upstream, plan["what"])
        samples: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        for i, rec in enumerate(records):
            sample, images = sampler(res, upstream, i, rec)
            missing = [p for p in images if not (root / p).is_file()]
            if missing:
                skipped.append({"id": sample["id"], "reason": "missing image", "missing": missing})
                continue
            sample["image"] = res.image(sample["image"])
            if "choices" in sample:
                sample["choices"] = [res.image(c) for c in sample["choices"]]
            if sample.get("goal_image") is not None:
                sample["goal_image"] = res.image(sample["goal_image"])
            samples.append(sample)
        manifest_path = out / f"{name}.manifest.json"
        manifest = {
            "format": MANIFEST_FORMAT,
            "format_version": MANIFEST_VERSION,
            "kind": "wr-arena",
            "task": name,
            "upstream": {"file": plan["file"], "sha256": sha256_file(upstream)},
            "counts": {"listed": len(records), "usable": len(samples), "skipped": len(skipped)},
            "samples": samples,
            "skipped": skipped,
        }
        atomic_write_text(manifest_path, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
        yaml_path: Path | None = None
        if samples:
            options = dict(plan.get("options", {}))
            if name == "wr-action-fidelity":
                options.update(_fidelity_options())
            if name == "wr-structured-planning":
                from panbench.protocols.wr_planning import DEFAULT_CANDIDATES

                options["candidates"] = list(DEFAULT_CANDIDATES)
            yaml_path = out / f"{name}.yaml"
            text = _task_yaml(
                name,
                plan["description"],
                plan["protocol"],
                manifest_path,
                root,
                len(samples),
                max(plan["horizon"](s) for s in samples),
                plan["metrics"],
                plan["headline"],
                options,
            )
            atomic_write_text(yaml_path, text)
        report.tasks.append(
            TaskImport(
                task=name,
                upstream=plan["file"],
                listed=len(records),
                usable=len(samples),
                missing=len(skipped),
                yaml=yaml_path,
                manifest=manifest_path,
            )
        )
    report.suites = _write_suites(out, [t.task for t in report.tasks if t.yaml is not None])
    return report


def _write_suites(out: Path, written: Sequence[str]) -> list[Path]:
    import yaml

    paths = []
    for suite, names, what in (
        ("wr-arena", list(written), "every imported WR-Arena task (needs --judge)"),
        (
            "wr-arena-judge-free",
            [t for t in written if t in _JUDGE_FREE],
            "the imported WR-Arena tasks scored without a judge",
        ),
    ):
        if not names:
            continue
        doc = {"suite": suite, "version": TASK_VERSION, "description": what, "tasks": names}
        path = out / f"{suite}.yaml"
        atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False))
        paths.append(path)
    return paths


# ============================================================================ reading it back
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

    try:
        with Image.open(path) as im:
            rgb = np.array(im.convert("RGB"), dtype=np.uint8)  # a writable copy for torch
    except OSError as err:
        raise DataError(f"{path}: cannot decode the image ({err}).") from err
    h, w = rgb.shape[:2]
    if aspect == "crop":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = rgb[top : top + side, left : left + side]
    elif aspect == "pad":
        side = max(h, w)
        square = np.zeros((side, side, 3), dtype=np.uint8)
        top, left = (side - h) // 2, (side - w) // 2
        square[top : top + h, left : left + w] = rgb
    elif aspect == "squash":
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
        y = F.interpolate(
            x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
        )
        out: np.ndarray = y.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
        return np.ascontiguousarray(out)
    else:
        raise ConfigError(f"Expected aspect 'crop', 'pad' or 'squash', but got {aspect!r}.")
    return np.ascontiguousarray(resize_frames(np.ascontiguousarray(square), resolution))


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


class WrArenaSource:
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


@dataclass
class ImageEpisode(Episode):
    """An :class:`~panbench.protocols.base.Episode` from an imported image sample.

    Attributes:
        sample: the manifest entry (id, prompts, answer, goal, ...).
        choices: uint8 [N, R, R, 3] candidate frames (step-wise tasks), else None.
        goal_frame: uint8 [R, R, 3] goal image (planning tasks that have one), else None.
    """

    sample: dict[str, Any] = field(default_factory=dict)
    choices: np.ndarray | None = None
    goal_frame: np.ndarray | None = None
