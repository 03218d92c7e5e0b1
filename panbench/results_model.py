"""The typed results model: ``results.json`` parsed into frozen dataclasses, checked field by field.

:func:`parse_results` turns the JSON object of a results file (schema 2, or a version-1 file)
into a :class:`Results` holding :class:`Provenance`, one :class:`TaskResult` per task and one
:class:`MetricEntry` per metric. Parsing is the validation: every field is checked for presence,
type and range and against the metric catalogue (direction and level), and a failure raises
:class:`ResultsError` naming the file, the field path, what was expected and what was found.
What can only be checked against the samples files (aggregates, hashes, headline and summary
scores) is :func:`panbench.results.verify_results`'s job, on top of this model.

Why plain frozen dataclasses with a small ``from_dict`` layer and not pydantic: pydantic is not
a dependency of panbench; the schema is small and stable, and adding a validation library that
GPU users must reconcile with their own environments would buy little. Each object also keeps
the JSON object it was parsed from (``raw``), so a file round-trips exactly (submissions store
the results as they were read, and the validator compares stored aggregates with recomputed
ones key by key).

WARNING: the field names of results.json (and of each object below that mirrors one) ARE the file
format: renaming, removing or changing the meaning of one breaks every stored results file and
submission. Add fields with a reader for files without them, and bump :data:`SCHEMA_VERSION` on
any incompatible change (keeping a reader for the old version). Files are written with sorted
keys (``panbench.io.atomic_write_json``), so field order does not carry meaning, but keep the
dataclass field order matching the JSON to make the two easy to read side by side.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from panbench.errors import DataError, UnknownNameError
from panbench.metrics.registry import LEVELS, get_metric

__all__ = [
    "READABLE_SCHEMA_VERSIONS",
    "SCHEMA_VERSION",
    "FieldPath",
    "GitInfo",
    "Headline",
    "JudgeInfo",
    "MetricEntry",
    "ModelInfo",
    "ModelSpecInfo",
    "Provenance",
    "Results",
    "ResultsError",
    "RunInfo",
    "SuiteRef",
    "Summary",
    "TaskResult",
    "as_results",
    "is_sha256",
    "metric_level",
    "parse_results",
]

#: 2: every metric entry carries its catalogue ``level`` ("episode" | "set")
SCHEMA_VERSION = 2
#: every schema version the readers understand; a version-1 file (no ``level``) is read with
#: each metric's level taken from its ``set_level`` flag, as the catalogue defines it
READABLE_SCHEMA_VERSIONS = (1, 2)

_HEX64 = frozenset("0123456789abcdef")
_NUMBER = (int, float)


class ResultsError(DataError):
    """A results file or samples file is malformed, inconsistent or tampered with."""


# ------------------------------------------------------------------------------------ field access
def _typename(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def is_sha256(value: Any) -> bool:
    """``value`` is a 64-digit lowercase hex string."""
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX64


@dataclass(frozen=True)
class FieldPath:
    """Where a value sits: the file and the dotted field path; ``fail`` raises naming both.

    ``FieldPath("r.json") / "tasks" / "x"`` is field ``tasks.x`` of ``r.json``.
    """

    file: str
    field: str = ""

    def __truediv__(self, key: str) -> FieldPath:
        return FieldPath(self.file, f"{self.field}.{key}" if self.field else key)

    def fail(self, expected: str, found: Any) -> NoReturn:
        shown = found if isinstance(found, str) and found.startswith("<") else repr(found)
        if len(shown) > 200:
            shown = shown[:200] + "..."
        raise ResultsError(
            f"{self.file}: field {self.field!r}: expected {expected}, but found {shown}."
        )


def _get(obj: Mapping[str, Any], key: str, at: FieldPath) -> Any:
    if key not in obj:
        (at / key).fail("the field to be present", "<missing>")
    return obj[key]


def _typed(
    obj: Mapping[str, Any],
    key: str,
    at: FieldPath,
    types: tuple[type, ...],
    *,
    nullable: bool = False,
) -> Any:
    value = _get(obj, key, at)
    if value is None and nullable:
        return value
    # bool is an int subclass; only accept it where bool is asked for.
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        names = " or ".join(t.__name__ for t in types) + (" or null" if nullable else "")
        (at / key).fail(f"a value of type {names}", f"<{_typename(value)}: {value!r}>")
    return value


def _object(value: Any, at: FieldPath) -> dict[str, Any]:
    if not isinstance(value, dict):
        at.fail("an object", f"<{_typename(value)}>")
    return value


def _child(obj: Mapping[str, Any], key: str, at: FieldPath) -> dict[str, Any]:
    return _typed(obj, key, at, (dict,))


def _count(obj: Mapping[str, Any], key: str, at: FieldPath, minimum: int, **kw: Any) -> Any:
    value = _typed(obj, key, at, (int,), **kw)
    if value is not None and value < minimum:
        (at / key).fail(f"an integer >= {minimum}", value)
    return value


def _sha256(obj: Mapping[str, Any], key: str, at: FieldPath, *, nullable: bool = False) -> Any:
    value = _get(obj, key, at)
    if not (is_sha256(value) or (nullable and value is None)):
        expected = "a 64-digit lowercase hex sha256" + (" or null" if nullable else "")
        (at / key).fail(expected, value)
    return value


def _numbers(value: Any) -> tuple[float | None, ...] | None:
    """A JSON list of numbers or nulls as a tuple, or None when ``value`` is not one."""
    if not isinstance(value, list):
        return None
    if not all(x is None or (isinstance(x, _NUMBER) and not isinstance(x, bool)) for x in value):
        return None
    return tuple(None if x is None else float(x) for x in value)


# ------------------------------------------------------------------------------------ provenance
@dataclass(frozen=True)
class GitInfo:
    """The checkout panbench ran from: commit id (or None outside git) and dirty flag."""

    commit: str | None
    dirty: bool | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], at: FieldPath) -> GitInfo:
        commit = _typed(data, "commit", at, (str,), nullable=True)
        if commit is not None and not (len(commit) in (40, 64) and set(commit) <= _HEX64):
            (at / "commit").fail("a hex commit id or null", commit)
        return cls(commit, _typed(data, "dirty", at, (bool,), nullable=True))


@dataclass(frozen=True)
class SuiteRef:
    """The suite a run scored: name, version and content hash."""

    name: str
    version: str
    hash: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], at: FieldPath) -> SuiteRef:
        return cls(
            _typed(data, "name", at, (str,)),
            _typed(data, "version", at, (str,)),
            _sha256(data, "hash", at),
        )

    def to_dict(self) -> dict[str, str]:
        """``{"hash", "name", "version"}`` in the key order panbench writes (sorted)."""
        return {"hash": self.hash, "name": self.name, "version": self.version}


@dataclass(frozen=True)
class ModelSpecInfo:
    """The model's declared spec (``WorldModel.spec``) as recorded."""

    name: str
    action_space: str
    resolution: int | None
    context_frames: int | None
    frames_per_step: int
    privileged: bool
    #: absent in files written before models could declare reward prediction
    predicts_rewards: bool = False
    #: continuous models' action vector length (absent from files of other models)
    action_dim: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], at: FieldPath) -> ModelSpecInfo:
        rewards = (
            _typed(data, "predicts_rewards", at, (bool,)) if "predicts_rewards" in data else False
        )
        return cls(
            _typed(data, "name", at, (str,)),
            _typed(data, "action_space", at, (str,)),
            _count(data, "resolution", at, 1, nullable=True),
            _count(data, "context_frames", at, 1, nullable=True),
            _count(data, "frames_per_step", at, 1),
            _typed(data, "privileged", at, (bool,)),
            rewards,
            _count(data, "action_dim", at, 1, nullable=True) if "action_dim" in data else None,
        )


@dataclass(frozen=True)
class ModelInfo:
    """The model that ran: registry name, adapter options, spec and checkpoint hash."""

    name: str
    args: Mapping[str, Any]
    spec: ModelSpecInfo
    checkpoint_sha256: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], at: FieldPath) -> ModelInfo:
        return cls(
            _typed(data, "name", at, (str,)),
            _child(data, "args", at),
            ModelSpecInfo.from_dict(_child(data, "spec", at), at / "spec"),
            _sha256(data, "checkpoint_sha256", at, nullable=True),
        )


@dataclass(frozen=True)
class RunInfo:
    """How the run was made: seed, ``--limit``, batch size, world size and device."""

    seed: int | None
    limit: int | None
    batch_size: int
    world_size: int
    device: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], at: FieldPath) -> RunInfo:
        return cls(
            _typed(data, "seed", at, (int,), nullable=True),
            _count(data, "limit", at, 1, nullable=True),
            _count(data, "batch_size", at, 1),
            _count(data, "world_size", at, 1),
            _typed(data, "device", at, (str,)),
        )


@dataclass(frozen=True)
class Provenance:
    """Everything that says where a results file came from.

    Attributes:
        panbench_version: the panbench that wrote the file.
        git: its checkout's commit and dirty flag.
        suite: the suite scored.
        model: the model scored.
        run: the run's settings.
        libraries: ``{library: version or None}`` of the environment.
        total_seconds: the run's wall time.
    """

    panbench_version: str
    git: GitInfo
    suite: SuiteRef
    model: ModelInfo
    run: RunInfo
    libraries: Mapping[str, str | None]
    total_seconds: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], at: FieldPath) -> Provenance:
        version = _typed(data, "panbench_version", at, (str,))
        git = GitInfo.from_dict(_child(data, "git", at), at / "git")
        suite = SuiteRef.from_dict(_child(data, "suite", at), at / "suite")
        model = ModelInfo.from_dict(_child(data, "model", at), at / "model")
        run = RunInfo.from_dict(_child(data, "run", at), at / "run")
        env_at = at / "environment"
        libs = _child(_child(data, "environment", at), "libraries", env_at)
        for name in libs:
            _typed(libs, name, env_at / "libraries", (str,), nullable=True)
        timings = _child(data, "timings", at)
        total = _typed(timings, "total_seconds", at / "timings", _NUMBER)
        if total < 0:
            (at / "timings" / "total_seconds").fail("a duration >= 0", total)
        return cls(version, git, suite, model, run, libs, float(total))


# ------------------------------------------------------------------------------------ metrics
def metric_level(entry: Mapping[str, Any]) -> str:
    """A results metric entry's level, "episode" or "set", in any readable schema version.

    Schema 2 records it as ``level``; version 1 marked set-level entries with ``set_level``.
    """
    level = entry.get("level")
    if isinstance(level, str):
        return level
    return "set" if entry.get("set_level") else "episode"


#: the keys :class:`MetricEntry` types; any other key of an entry is kept in ``extra``
_METRIC_KEYS = ("value", "ci95", "n", "n_missing", "higher_is_better", "level", "curve")


@dataclass(frozen=True)
class MetricEntry:
    """One metric of one task, aggregated over episodes (or over the set, for set-level ones).

    Attributes:
        name: the metric's catalogue name.
        value: the mean over episodes (or the set-level value); None when nothing was finite.
        ci95: the 95% bootstrap CI ``(low, high)``; ``(None, None)`` when unknown.
        n: episodes with a finite value.
        n_missing: episodes without one.
        higher_is_better: the catalogue's direction.
        level: "episode" or "set" (version-1 files: from their ``set_level`` flag).
        curve: the per-step (or per-budget, per-offset) curve, if the metric has one.
        extra: every other field, as stored (e.g. ``offsets``, ``budgets``, ``set_level``).
        raw: the JSON object this entry was parsed from.
    """

    name: str
    value: float | None
    ci95: tuple[float | None, float | None]
    n: int
    n_missing: int
    higher_is_better: bool
    level: str
    curve: tuple[float | None, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def budgets(self) -> tuple[Any, ...] | None:
        """The planning budgets the curve is plotted against, as stored, when the entry has them."""
        found = self.extra.get("budgets")
        return tuple(found) if isinstance(found, list) else None

    @property
    def offsets(self) -> tuple[Any, ...] | None:
        """The window offsets of a set-level curve (FVD_n), as stored, when the entry has them."""
        found = self.extra.get("offsets")
        return tuple(found) if isinstance(found, list) else None

    @classmethod
    def from_dict(cls, name: str, data: Any, at: FieldPath, version: int) -> MetricEntry:
        entry = _object(data, at)
        value = _typed(entry, "value", at, _NUMBER, nullable=True)
        ci = _typed(entry, "ci95", at, (list,))
        if len(ci) != 2 or not all(x is None or isinstance(x, _NUMBER) for x in ci):
            (at / "ci95").fail("[lo, hi] (numbers or nulls)", ci)
        if None not in ci and ci[0] > ci[1]:
            (at / "ci95").fail("lo <= hi", ci)
        n = _count(entry, "n", at, 0)
        n_missing = _count(entry, "n_missing", at, 0)
        hib = _typed(entry, "higher_is_better", at, (bool,))
        if version >= 2:
            level = _typed(entry, "level", at, (str,))
            if level not in LEVELS:
                (at / "level").fail(f"one of {', '.join(LEVELS)}", level)
        else:
            level = metric_level(entry)
        curve = None
        if entry.get("curve") is not None:
            curve = _numbers(entry["curve"])
            if curve is None:
                (at / "curve").fail("a list of numbers or nulls", entry["curve"])
        extra = {k: v for k, v in entry.items() if k not in _METRIC_KEYS}
        low, high = ci
        return cls(name, value, (low, high), n, n_missing, hib, level, curve, extra, entry)

    def check_catalogue(self, at: FieldPath) -> None:
        """The entry names a catalogue metric and states its direction and level.

        Raises:
            ResultsError: an unknown metric, or a direction or level the catalogue does not give.
        """
        try:
            info = get_metric(self.name)
        except UnknownNameError:
            at.fail("metrics of the catalogue (`panbench ls metrics`)", self.name)
        # Only stored fields are compared: a version-1 entry's level is derived, not stated.
        for key, value in (("higher_is_better", info.higher_is_better), ("level", info.level)):
            if key in self.raw and self.raw[key] != value:
                (at / self.name / key).fail(f"{value!r} (the catalogue's)", self.raw[key])


# ------------------------------------------------------------------------------------ tasks
@dataclass(frozen=True)
class Headline:
    """A task's headline: the metric it comes from and its 0-100 score (None when unknown)."""

    metric: str
    score: float | None


@dataclass(frozen=True)
class JudgeInfo:
    """The judge that scored a judged task (WR-Arena fidelity): its kind, model and rubric.

    Fields are kept as stored (a judge's provenance is free-form beyond these); the endpoint is
    recorded in ``raw`` but is no part of :attr:`key`: the same model served at another address
    judges the same way.
    """

    kind: Any
    model: Any
    rubric_name: Any
    rubric_version: Any
    rubric_hash: Any
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeInfo:
        rubric = data.get("rubric") or {}
        if not isinstance(rubric, Mapping):
            rubric = {}
        return cls(
            data.get("kind"),
            data.get("model"),
            rubric.get("name"),
            rubric.get("version"),
            rubric.get("hash"),
            data,
        )

    @property
    def key(self) -> tuple[Any, ...]:
        """What makes two judged scores comparable: judge kind, model and the rubric's hash."""
        return (self.kind, self.model, self.rubric_hash)

    @property
    def label(self) -> str:
        """``"<kind> judge <model>, rubric <name>@<version> (<hash prefix>)"``."""
        return (
            f"{self.kind} judge {self.model!s}, rubric {self.rubric_name}@{self.rubric_version} "
            f"({str(self.rubric_hash)[:12]})"
        )


@dataclass(frozen=True)
class TaskResult:
    """One task of a run.

    Attributes:
        name: the task's name.
        version: the task spec's version.
        hash: the task spec's content hash.
        protocol: the protocol that scored it.
        n_episodes: episodes scored.
        complete: every episode of the task was scored (no ``--limit`` cut).
        headline: the headline metric and score.
        metrics: ``{metric: MetricEntry}`` in the file's order.
        skipped: ``{metric: reason}`` of metrics the run could not compute.
        samples: the samples file, relative to the results folder.
        samples_sha256: that file's sha256.
        judge: the judge that scored the task (kind, model, rubric), or None.
        planning: the planning settings of closed-loop tasks, or None.
        extra: every other field, as stored (e.g. ``env``, ``timing``).
        raw: the JSON object this task was parsed from.
    """

    name: str
    version: str
    hash: str
    protocol: str
    n_episodes: int
    complete: bool
    headline: Headline
    metrics: Mapping[str, MetricEntry]
    skipped: Mapping[str, Any]
    samples: str
    samples_sha256: str
    judge: JudgeInfo | None = None
    planning: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(
        cls, name: str, data: Any, at: FieldPath, *, version: int, limit: int | None
    ) -> TaskResult:
        task = _object(data, at)
        task_version = _typed(task, "version", at, (str,))
        task_hash = _sha256(task, "hash", at)
        protocol = _typed(task, "protocol", at, (str,))
        n = _count(task, "n_episodes", at, 1)
        if limit is not None and n > limit:
            (at / "n_episodes").fail(f"at most run.limit = {limit}", n)
        complete = _typed(task, "complete", at, (bool,))
        if limit is None and not complete:
            (at / "complete").fail("true (no run.limit: every episode is scored)", complete)
        if complete and limit is not None and n < limit:
            (at / "complete").fail(f"false (n_episodes {n} < run.limit {limit})", complete)
        head = _child(task, "headline", at)
        head_metric = _typed(head, "metric", at / "headline", (str,))
        score = _typed(head, "score", at / "headline", _NUMBER, nullable=True)
        if score is not None and not 0.0 <= score <= 100.0:
            (at / "headline" / "score").fail("a score in [0, 100] or null", score)
        raw_metrics = _child(task, "metrics", at)
        skipped = task.get("skipped", {})
        if not isinstance(skipped, dict):
            (at / "skipped").fail("an object", f"<{_typename(skipped)}>")
        metrics = {}
        for metric, entry in raw_metrics.items():
            parsed = MetricEntry.from_dict(metric, entry, at / "metrics" / metric, version)
            if parsed.n + parsed.n_missing != n:
                (at / "metrics" / metric / "n").fail(
                    f"n + n_missing == n_episodes ({n})",
                    f"n={parsed.n}, n_missing={parsed.n_missing}",
                )
            metrics[metric] = parsed
        if head_metric not in metrics and head_metric not in skipped:
            (at / "headline" / "metric").fail(
                f"one of the task's metrics {sorted(metrics)}", head_metric
            )
        for parsed in metrics.values():
            parsed.check_catalogue(at / "metrics")
        samples = _typed(task, "samples", at, (str,))
        digest = _sha256(task, "samples_sha256", at)
        judge, planning = task.get("judge"), task.get("planning")
        typed_keys = {*cls.__dataclass_fields__, "headline", "metrics"} - {"name", "extra", "raw"}
        extra = {k: v for k, v in task.items() if k not in typed_keys}
        return cls(
            name,
            task_version,
            task_hash,
            protocol,
            n,
            complete,
            Headline(head_metric, None if score is None else float(score)),
            metrics,
            skipped,
            samples,
            digest,
            JudgeInfo.from_dict(judge) if isinstance(judge, Mapping) else None,
            planning if isinstance(planning, Mapping) else None,
            extra,
            task,
        )


# ------------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class Summary:
    """The suite score (mean of the task headlines that have one) and the number of tasks."""

    score: float | None
    n_tasks: int | None


@dataclass(frozen=True)
class Results:
    """A parsed, field-checked ``results.json``.

    Attributes:
        schema_version: the file's schema version (one of :data:`READABLE_SCHEMA_VERSIONS`).
        provenance: where the results came from (versions, suite, model, run, timings).
        tasks: ``{task: TaskResult}`` in the file's order.
        summary: the suite score, when the file has one.
        source: the file (or submission) the results were read from, for messages.
        raw: the JSON object as read (see :meth:`to_dict`).
    """

    schema_version: int
    provenance: Provenance
    tasks: Mapping[str, TaskResult]
    summary: Summary | None = None
    source: str = field(default="", compare=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def suite(self) -> SuiteRef:
        """The suite scored."""
        return self.provenance.suite

    @property
    def model(self) -> ModelInfo:
        """The model scored."""
        return self.provenance.model

    @property
    def run(self) -> RunInfo:
        """The run's settings."""
        return self.provenance.run

    @property
    def partial(self) -> bool:
        """The run did not score every episode (``--limit``, or an incomplete task)."""
        return self.run.limit is not None or any(not t.complete for t in self.tasks.values())

    @property
    def n_episodes(self) -> int:
        """Episodes scored over all tasks."""
        return sum(t.n_episodes for t in self.tasks.values())

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the JSON object the results were parsed from (exact round trip)."""
        return copy.deepcopy(dict(self.raw))


def parse_results(data: Any, *, source: str | Path = "results.json") -> Results:
    """Parses and checks the JSON object of a results file into :class:`Results`.

    Checks the schema version, that every provenance field is present and typed, and per task
    its identity, episode counts against ``run.limit``, headline, metric entries (typed, ``n +
    n_missing == n_episodes``, direction and level as the catalogue gives them). Samples and
    aggregates are checked by :func:`panbench.results.verify_results`.

    Args:
        data: the parsed JSON of a results file.
        source: the file it came from, named in error messages.

    Returns:
        The typed results; ``.raw`` is ``data`` itself.

    Raises:
        ResultsError: naming the file and field, expected versus found.
    """
    at = FieldPath(str(source))
    data = _object(data, at)
    version = _get(data, "schema_version", at)
    if (
        not isinstance(version, int)
        or isinstance(version, bool)
        or version not in READABLE_SCHEMA_VERSIONS
    ):
        lo, hi = min(READABLE_SCHEMA_VERSIONS), max(READABLE_SCHEMA_VERSIONS)
        (at / "schema_version").fail(f"an integer from {lo} to {hi}", version)
    provenance = Provenance.from_dict(data, at)
    raw_tasks = _child(data, "tasks", at)
    if not raw_tasks:
        (at / "tasks").fail("at least one task", raw_tasks)
    limit = provenance.run.limit
    tasks = {
        name: TaskResult.from_dict(name, task, at / "tasks" / name, version=version, limit=limit)
        for name, task in raw_tasks.items()
    }
    summary = None
    if data.get("summary") is not None:
        raw_summary = _object(data["summary"], at / "summary")
        score, n_tasks = raw_summary.get("score"), raw_summary.get("n_tasks")
        summary = Summary(
            float(score) if isinstance(score, _NUMBER) and math.isfinite(score) else None,
            n_tasks if isinstance(n_tasks, int) else None,
        )
    return Results(version, provenance, tasks, summary, str(source), data)


def as_results(results: Results | Mapping[str, Any], *, source: str | Path = "results") -> Results:
    """``results`` itself when typed, else the plain results dict parsed by :func:`parse_results`."""
    return results if isinstance(results, Results) else parse_results(results, source=source)
