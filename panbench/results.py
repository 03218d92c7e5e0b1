"""The results schema: provenance, per-task aggregates with CIs, per-episode samples; read/write/validate.

Layout of an evaluation folder::

    results.json             aggregates + provenance (schema_version below)
    samples/<task>.jsonl     one JSON object per episode, sorted by index; the aggregates in
                             results.json are recomputable from these lines alone
    run.json                 the run's configuration, used to refuse resuming a different run

Field order in results.json is fixed by :func:`build_results`; readers must not depend on it, but
keep it stable so files diff cleanly. Bump :data:`SCHEMA_VERSION` on any incompatible change.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from panbench.errors import DataError

SCHEMA_VERSION = 1
BOOTSTRAP_SEED = 0
BOOTSTRAP_SAMPLES = 1000

_LIBRARIES = ("numpy", "torch", "torchmetrics", "scipy", "diffusers", "transformers", "av")


class ResultsError(DataError):
    """A results file or samples file is malformed, inconsistent or tampered with."""


# ------------------------------------------------------------------------------------ provenance
def git_info(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The git commit and dirty flag of the checkout containing ``path`` (panbench's own by default)."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=where,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment_info() -> dict[str, Any]:
    from panbench import __version__

    return {
        "panbench_version": __version__,
        "git": git_info(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": library_versions(),
    }


# ------------------------------------------------------------------------------------ aggregates
def _finite(values: Iterable[Any]) -> np.ndarray:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    return arr[np.isfinite(arr)]


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    seed: int = BOOTSTRAP_SEED,
    samples: int = BOOTSTRAP_SAMPLES,
) -> tuple[float, float]:
    """95% percentile-bootstrap CI of the mean over episodes (deterministic for a seed)."""
    from panbench.metrics.stats import bootstrap_ci as _ci

    ci = _ci(np.asarray(values, dtype=np.float64), seed=seed, n_resamples=samples)
    return float(ci.low), float(ci.high)


def aggregate_records(
    records: Sequence[Mapping[str, Any]], higher_is_better: Mapping[str, bool]
) -> dict[str, dict[str, Any]]:
    """Per metric: mean over episodes, 95% bootstrap CI, n, direction; plus per-step curves.

    Non-finite per-episode values (e.g. a position error where nothing was perceived) are left
    out of that metric's mean and counted in ``n_missing``.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, hib in higher_is_better.items():
        raw = [r["metrics"].get(name) for r in records]
        vals = _finite(raw)
        n = int(vals.size)
        lo, hi = bootstrap_ci(vals) if n >= 2 else (math.nan, math.nan)
        entry: dict[str, Any] = {
            "value": float(vals.mean()) if n else math.nan,
            "ci95": [lo, hi],
            "n": n,
            "n_missing": len(raw) - n,
            "higher_is_better": bool(hib),
        }
        curves = [r.get("curves", {}).get(name) for r in records]
        curves = [c for c in curves if c is not None]
        if curves:
            length = max(len(c) for c in curves)
            mat = np.full((len(curves), length), np.nan)
            for i, c in enumerate(curves):
                mat[i, : len(c)] = np.asarray(c, dtype=np.float64)
            with np.errstate(all="ignore"):
                counts = np.isfinite(mat).sum(axis=0)
                sums = np.where(np.isfinite(mat), mat, 0.0).sum(axis=0)
                curve = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            entry["curve"] = [_json_float(x) for x in curve]
        out[name] = entry
    return out


def _json_float(x: float | np.floating) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def sanitize(obj: Any) -> Any:
    """Makes ``obj`` strict-JSON: NaN/inf become None, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return _json_float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return sanitize(obj.tolist())
    return obj


# ------------------------------------------------------------------------------------ samples
def dumps_record(record: Mapping[str, Any]) -> str:
    """One samples line: compact, key-sorted, strict JSON (so equal values give equal bytes)."""
    return json.dumps(sanitize(record), sort_keys=True, separators=(",", ":"), allow_nan=False)


def read_samples(
    path: str | os.PathLike[str], *, tolerate_truncated_tail: bool = False
) -> list[dict[str, Any]]:
    """Reads a samples .jsonl file.

    Args:
        tolerate_truncated_tail: drop an incomplete last line (a run killed mid-write) instead of
            failing; used when resuming from a partial file.

    Raises:
        ResultsError: a line is not valid JSON (naming the file and line number).
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().splitlines(keepends=True)
    out: list[dict[str, Any]] = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            if tolerate_truncated_tail and i == len(lines) and not line.endswith("\n"):
                break
            raise ResultsError(
                f"{path}:{i}: expected one JSON object per line, but got: {err}."
            ) from err
        if not isinstance(rec, dict):
            raise ResultsError(f"{path}:{i}: expected a JSON object, but got {type(rec).__name__}.")
        out.append(rec)
    return out


def read_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Loads ``results.json`` (a file or the folder holding it) and checks its schema version."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.exists():
        raise ResultsError(
            f"No results file at {path}: expected results.json from `panbench evaluate`."
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ResultsError(f"{path}: not valid JSON ({err}).") from err
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: expected schema_version {SCHEMA_VERSION}, but got {version!r}."
        )
    return data


# ------------------------------------------------------------------------------------ validation
_HEX64 = frozenset("0123456789abcdef")
_NUMBER = (int, float)


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX64


def _typename(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class _Checker:
    """Walks a results dict, raising :class:`ResultsError` that names the file and field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, expected: str, found: Any) -> NoReturn:
        shown = found if isinstance(found, str) and found.startswith("<") else repr(found)
        if len(shown) > 200:
            shown = shown[:200] + "..."
        raise ResultsError(f"{self.path}: field {field!r}: expected {expected}, but found {shown}.")

    def get(self, obj: Mapping[str, Any], key: str, field: str) -> Any:
        if not isinstance(obj, Mapping):
            self.fail(field.rpartition(".")[0] or field, "an object", f"<{_typename(obj)}>")
        if key not in obj:
            self.fail(field, "the field to be present", "<missing>")
        return obj[key]

    def typed(
        self,
        obj: Mapping[str, Any],
        key: str,
        field: str,
        types: tuple[type, ...],
        *,
        nullable: bool = False,
    ) -> Any:
        value = self.get(obj, key, field)
        if value is None and nullable:
            return value
        # bool is an int subclass; only accept it where bool is asked for.
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            names = " or ".join(t.__name__ for t in types) + (" or null" if nullable else "")
            self.fail(field, f"a value of type {names}", f"<{_typename(value)}: {value!r}>")
        return value

    def obj(self, obj: Mapping[str, Any], key: str, field: str) -> dict[str, Any]:
        return self.typed(obj, key, field, (dict,))

    def count(self, obj: Mapping[str, Any], key: str, field: str, minimum: int, **kw: Any) -> Any:
        value = self.typed(obj, key, field, (int,), **kw)
        if value is not None and value < minimum:
            self.fail(field, f"an integer >= {minimum}", value)
        return value

    def sha256(
        self, obj: Mapping[str, Any], key: str, field: str, *, nullable: bool = False
    ) -> Any:
        value = self.get(obj, key, field)
        if not (_is_sha256(value) or (nullable and value is None)):
            self.fail(
                field, "a 64-digit lowercase hex sha256" + (" or null" if nullable else ""), value
            )
        return value

    def equal(self, field: str, expected: Any, found: Any) -> None:
        if not _json_equal(expected, found):
            self.fail(field, repr(expected) + " (recomputed from the samples)", found)


def _json_equal(a: Any, b: Any) -> bool:
    """Exact equality of JSON values, where 1 == 1.0 but True != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, _NUMBER) and isinstance(b, _NUMBER):
        return a == b
    return type(a) is type(b) and a == b


def _check_provenance(c: _Checker, data: Mapping[str, Any]) -> None:
    c.typed(data, "panbench_version", "panbench_version", (str,))
    git = c.obj(data, "git", "git")
    commit = c.typed(git, "commit", "git.commit", (str,), nullable=True)
    if commit is not None and not (len(commit) in (40, 64) and set(commit) <= _HEX64):
        c.fail("git.commit", "a hex commit id or null", commit)
    c.typed(git, "dirty", "git.dirty", (bool,), nullable=True)

    suite = c.obj(data, "suite", "suite")
    c.typed(suite, "name", "suite.name", (str,))
    c.typed(suite, "version", "suite.version", (str,))
    c.sha256(suite, "hash", "suite.hash")

    model = c.obj(data, "model", "model")
    c.typed(model, "name", "model.name", (str,))
    c.obj(model, "args", "model.args")
    spec = c.obj(model, "spec", "model.spec")
    c.typed(spec, "name", "model.spec.name", (str,))
    c.typed(spec, "action_space", "model.spec.action_space", (str,))
    c.count(spec, "resolution", "model.spec.resolution", 1, nullable=True)
    c.count(spec, "context_frames", "model.spec.context_frames", 1, nullable=True)
    c.count(spec, "frames_per_step", "model.spec.frames_per_step", 1)
    c.typed(spec, "privileged", "model.spec.privileged", (bool,))
    c.sha256(model, "checkpoint_sha256", "model.checkpoint_sha256", nullable=True)

    run = c.obj(data, "run", "run")
    c.typed(run, "seed", "run.seed", (int,), nullable=True)
    c.count(run, "limit", "run.limit", 1, nullable=True)
    c.count(run, "batch_size", "run.batch_size", 1)
    c.count(run, "world_size", "run.world_size", 1)
    c.typed(run, "device", "run.device", (str,))

    env = c.obj(data, "environment", "environment")
    libs = c.obj(env, "libraries", "environment.libraries")
    for name in libs:
        c.typed(libs, name, f"environment.libraries.{name}", (str,), nullable=True)
    timings = c.obj(data, "timings", "timings")
    total = c.typed(timings, "total_seconds", "timings.total_seconds", _NUMBER)
    if total < 0:
        c.fail("timings.total_seconds", "a duration >= 0", total)


def _check_metric_entry(c: _Checker, entry: Any, field: str) -> None:
    if not isinstance(entry, dict):
        c.fail(field, "an object", f"<{_typename(entry)}>")
    c.typed(entry, "value", f"{field}.value", _NUMBER, nullable=True)
    ci = c.typed(entry, "ci95", f"{field}.ci95", (list,))
    if len(ci) != 2 or not all(x is None or isinstance(x, _NUMBER) for x in ci):
        c.fail(f"{field}.ci95", "[lo, hi] (numbers or nulls)", ci)
    if None not in ci and ci[0] > ci[1]:
        c.fail(f"{field}.ci95", "lo <= hi", ci)
    c.count(entry, "n", f"{field}.n", 0)
    c.count(entry, "n_missing", f"{field}.n_missing", 0)
    c.typed(entry, "higher_is_better", f"{field}.higher_is_better", (bool,))


def _protocol_shell(protocol: str, metric: str | None) -> Any:
    """An uninitialised instance of the named protocol whose task names only ``metric``.

    Enough for the protocol's pure functions of records and means (:meth:`headline`,
    :meth:`set_metrics`), which read only ``task.headline``/``task.metrics`` and ``skipped``.
    """
    from types import SimpleNamespace

    from panbench.protocols import PROTOCOLS

    cls = PROTOCOLS.get(protocol)
    shell: Any = cls.__new__(cls)
    shell.task = SimpleNamespace(headline=metric, metrics=[metric] if metric else [])
    shell.skipped = {}
    return shell


def headline_score(protocol: str, metric: str, means: dict[str, Any]) -> float | None:
    """The protocol's headline score from metric means, as the harness computes it.

    Public for readers of results files (validation, plots of bootstrap intervals).

    Args:
        protocol: a registered protocol name (a task entry's ``protocol``).
        metric: the task's headline metric.
        means: metric means (``None`` for a skipped metric).

    Returns:
        The score in [0, 100], or ``None`` when the headline metric has no value or the
        protocol gives no 0-100 score for it.
    """
    if means.get(metric) is None:
        return None
    values = {k: (math.nan if v is None else v) for k, v in means.items()}
    return _json_float(_protocol_shell(protocol, metric).headline(values))


def _recompute_metrics(
    protocol: str, records: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]
) -> dict[str, Any]:
    """Every metric entry recomputed from the samples, as the harness computes it.

    Per-episode metrics are aggregated with :func:`aggregate_records`; set-level ones (FVD)
    come from the protocol's :meth:`set_metrics` over all records.
    """
    from panbench.metrics.registry import get_metric

    declared = {m: get_metric(m) for m in metrics}
    per_episode = {
        m: bool(declared[m].higher_is_better) for m in metrics if not declared[m].set_level
    }
    out = dict(sanitize(aggregate_records(records, per_episode)))
    for m in metrics:
        if declared[m].set_level:
            out.update(sanitize(_protocol_shell(protocol, m).set_metrics(records)))
    return out


def _check_samples(
    c: _Checker, root: Path, name: str, task: Mapping[str, Any], n: int
) -> list[dict[str, Any]]:
    field = f"tasks.{name}.samples"
    expected_rel = f"samples/{name}.jsonl"
    rel = c.typed(task, "samples", field, (str,))
    if rel != expected_rel:
        c.fail(field, repr(expected_rel), rel)
    path = root / expected_rel
    if not path.is_file():
        raise ResultsError(
            f"{path}: expected the samples file of task {name!r}, but it is missing."
        )
    data = path.read_bytes()
    digest = c.sha256(task, "samples_sha256", f"tasks.{name}.samples_sha256")
    found = hashlib.sha256(data).hexdigest()
    records = read_samples(path)
    n_lines = data.count(b"\n")
    if len(records) != n or n_lines != n:
        raise ResultsError(
            f"{path}: expected {n} lines (tasks.{name}.n_episodes), but found {len(records)} "
            f"records on {n_lines} lines."
        )
    seen: dict[str, int] = {}
    for line, rec in enumerate(records, start=1):
        where = f"{path}:{line}"
        index = rec.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index != line - 1:
            raise ResultsError(
                f"{where}: field 'index': expected {line - 1} (lines sorted by episode index, "
                f"one per episode), but found {index!r}."
            )
        ep_hash = rec.get("hash")
        if not _is_sha256(ep_hash):
            raise ResultsError(
                f"{where}: field 'hash': expected an episode sha256, but found {ep_hash!r}."
            )
        ep_hash = str(ep_hash)
        if ep_hash in seen:
            raise ResultsError(
                f"{where}: field 'hash': expected unique episode hashes, but {ep_hash[:16]}... "
                f"repeats line {seen[ep_hash]}."
            )
        seen[ep_hash] = line
        if rec.get("episode_id") != f"{name}/{index:05d}":
            raise ResultsError(
                f"{where}: field 'episode_id': expected {name + '/' + format(index, '05d')!r}, "
                f"but found {rec.get('episode_id')!r}."
            )
        if not isinstance(rec.get("metrics"), dict):
            raise ResultsError(
                f"{where}: field 'metrics': expected an object of metric values, "
                f"but found {rec.get('metrics')!r}."
            )
    if found != digest:
        raise ResultsError(
            f"{path}: expected sha256 {digest} (tasks.{name}.samples_sha256 in results.json), "
            f"but the file hashes to {found}."
        )
    return records


def _check_task(c: _Checker, root: Path, name: str, task: Any, limit: int | None) -> float | None:
    prefix = f"tasks.{name}"
    if not isinstance(task, dict):
        c.fail(prefix, "an object", f"<{_typename(task)}>")
    c.typed(task, "version", f"{prefix}.version", (str,))
    c.sha256(task, "hash", f"{prefix}.hash")
    protocol = c.typed(task, "protocol", f"{prefix}.protocol", (str,))
    n = c.count(task, "n_episodes", f"{prefix}.n_episodes", 1)
    if limit is not None and n > limit:
        c.fail(f"{prefix}.n_episodes", f"at most run.limit = {limit}", n)
    complete = c.typed(task, "complete", f"{prefix}.complete", (bool,))
    if limit is None and not complete:
        c.fail(f"{prefix}.complete", "true (no run.limit: every episode is scored)", complete)
    if complete and limit is not None and n < limit:
        c.fail(f"{prefix}.complete", f"false (n_episodes {n} < run.limit {limit})", complete)
    headline = c.obj(task, "headline", f"{prefix}.headline")
    head_metric = c.typed(headline, "metric", f"{prefix}.headline.metric", (str,))
    score = c.typed(headline, "score", f"{prefix}.headline.score", _NUMBER, nullable=True)
    if score is not None and not 0.0 <= score <= 100.0:
        c.fail(f"{prefix}.headline.score", "a score in [0, 100] or null", score)
    metrics = c.obj(task, "metrics", f"{prefix}.metrics")
    skipped = task.get("skipped", {})
    if not isinstance(skipped, dict):
        c.fail(f"{prefix}.skipped", "an object", f"<{_typename(skipped)}>")
    for metric, entry in metrics.items():
        _check_metric_entry(c, entry, f"{prefix}.metrics.{metric}")
        if entry["n"] + entry["n_missing"] != n:
            c.fail(
                f"{prefix}.metrics.{metric}.n",
                f"n + n_missing == n_episodes ({n})",
                f"n={entry['n']}, n_missing={entry['n_missing']}",
            )
    if head_metric not in metrics and head_metric not in skipped:
        c.fail(
            f"{prefix}.headline.metric", f"one of the task's metrics {sorted(metrics)}", head_metric
        )

    from panbench.metrics.registry import get_metric
    from panbench.protocols import PROTOCOLS

    if protocol not in PROTOCOLS:
        c.fail(f"{prefix}.protocol", f"a known protocol ({', '.join(PROTOCOLS.names())})", protocol)
    declared = PROTOCOLS.get(protocol).metrics
    for metric, entry in metrics.items():
        if metric not in declared:
            c.fail(f"{prefix}.metrics", f"only metrics of protocol {protocol!r}", metric)
        if entry["higher_is_better"] is not get_metric(metric).higher_is_better:
            c.fail(
                f"{prefix}.metrics.{metric}.higher_is_better",
                f"{get_metric(metric).higher_is_better} (the metric catalogue's direction)",
                entry["higher_is_better"],
            )

    records = _check_samples(c, root, name, task, n)
    recomputed = _recompute_metrics(protocol, records, metrics)
    for metric, entry in metrics.items():
        fresh = recomputed.get(metric, {})
        for key in [*fresh, *(k for k in entry if k not in fresh)]:  # value first
            field = f"{prefix}.metrics.{metric}.{key}"
            if key not in entry:
                c.fail(field, "the field to be present", "<missing>")
            if key not in fresh:
                c.fail(field, "no such field (not recomputable from the samples)", entry[key])
            c.equal(field, fresh[key], entry[key])
    if head_metric in metrics:
        means = {m: e["value"] for m, e in metrics.items()}
        c.equal(f"{prefix}.headline.score", headline_score(protocol, head_metric, means), score)
    return score


def validate_results(results_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Checks a results folder field by field and against its samples; returns results.json.

    Checks the schema version, that every provenance field is present and typed, and per task
    that ``samples/<task>.jsonl`` exists, holds ``n_episodes`` lines sorted by episode index with
    unique episode hashes, hashes to ``samples_sha256``, and that every aggregate (value, CI, n,
    n_missing, curve) and the headline score recompute exactly from those lines. Leaderboards
    use this to refuse tampered or inconsistent submissions.

    Args:
        results_dir: the folder written by ``panbench evaluate`` (or its ``results.json``).

    Returns:
        The parsed ``results.json``.

    Raises:
        ResultsError: naming the file and field, expected versus found.
    """
    root = Path(results_dir)
    if root.name == "results.json" and root.is_file():
        root = root.parent
    path = root / "results.json"
    if not path.is_file():
        raise ResultsError(
            f"No results file at {path}: expected results.json from `panbench evaluate`."
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResultsError(f"{path}: not valid JSON ({err}).") from err
    c = _Checker(path)
    if not isinstance(data, dict):
        c.fail("<root>", "a JSON object", f"<{_typename(data)}>")
    version = c.get(data, "schema_version", "schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        c.fail("schema_version", repr(SCHEMA_VERSION), version)
    _check_provenance(c, data)
    tasks = c.obj(data, "tasks", "tasks")
    if not tasks:
        c.fail("tasks", "at least one task", tasks)
    limit = data["run"]["limit"]
    scores = [_check_task(c, root, name, task, limit) for name, task in tasks.items()]
    summary = data.get("summary")
    if summary is not None:
        if not isinstance(summary, dict):
            c.fail("summary", "an object", f"<{_typename(summary)}>")
        valid = [s for s in scores if s is not None]
        expected = sum(valid) / len(valid) if valid else None
        c.equal("summary.score", expected, summary.get("score"))
        c.equal("summary.n_tasks", len(tasks), summary.get("n_tasks"))
    return data
