"""Results folders: provenance, per-task aggregates with CIs, per-episode samples; read/verify.

Layout of an evaluation folder::

    results.json             aggregates + provenance (schema_version below)
    samples/<task>.jsonl     one JSON object per episode, sorted by index; the aggregates in
                             results.json are recomputable from these lines alone
    run.json                 the run's configuration, used to refuse resuming a different run

``results.json`` is read through one typed model (:mod:`panbench.results_model`):
:func:`load_results` parses and checks its fields, :func:`verify_results` also recomputes every
aggregate from the samples. :func:`read_results` and :func:`validate_results` are the same two
returning the plain JSON dict. This module also computes the aggregates the harness writes
(:func:`task_metrics`), with the same code the verifier uses, so both agree bit for bit.
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
from typing import Any

import numpy as np

from panbench.io import read_versioned_json
from panbench.metrics.registry import get_metric, headline_score
from panbench.metrics.stats import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED

# The typed model lives in results_model; its public names are re-exported here, where readers
# have always found them.
from panbench.results_model import (
    READABLE_SCHEMA_VERSIONS,
    SCHEMA_VERSION,
    FieldPath,
    Results,
    ResultsError,
    TaskResult,
    is_sha256,
    metric_level,
    parse_results,
)

__all__ = [
    "READABLE_SCHEMA_VERSIONS",
    "SCHEMA_VERSION",
    "Results",
    "ResultsError",
    "aggregate_records",
    "bootstrap_ci",
    "dumps_record",
    "environment_info",
    "git_info",
    "library_versions",
    "load_results",
    "metric_level",
    "parse_results",
    "read_results",
    "read_samples",
    "sanitize",
    "task_metrics",
    "validate_results",
    "verify_results",
]

_LIBRARIES = ("numpy", "torch", "torchmetrics", "scipy", "diffusers", "transformers", "av")


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


def task_metrics(
    records: Sequence[Mapping[str, Any]],
    names: Sequence[str],
    skipped: Mapping[str, Any] | Iterable[str] = (),
    *,
    with_level: bool = True,
) -> dict[str, dict[str, Any]]:
    """A task's metric entries from its samples lines, as results.json holds them.

    Per-episode metrics are aggregated with :func:`aggregate_records`; set-level ones (FVD,
    the planning normalised score) come from their catalogue ``set_function`` over all lines.
    The harness writes these entries and :func:`validate_results` recomputes them with this
    same function, so both agree bit for bit.

    Args:
        records: the task's samples lines, sorted by episode index.
        names: the task's metrics (catalogue names), in the task's order.
        skipped: metrics the run could not compute (e.g. weights missing); left out.
        with_level: add each entry's catalogue ``level`` (schema 2; version-1 files lack it).

    Returns:
        ``{metric: entry}`` in the order of ``names``.
    """
    infos = {m: get_metric(m) for m in names if m not in set(skipped)}
    per_episode = {m: i.higher_is_better for m, i in infos.items() if not i.set_level}
    out = aggregate_records(records, per_episode)
    for m, info in infos.items():
        if info.set_level:
            out[m] = info.load_set_function()(records)
    ordered = {m: out[m] for m in names if m in out}
    if with_level:
        for m, entry in ordered.items():
            entry["level"] = infos[m].level
    return ordered


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


# ------------------------------------------------------------------------------------ reading
def _results_file(path: str | os.PathLike[str]) -> Path:
    """``<folder>/results.json`` for a folder or the file itself; refuses a missing one."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise ResultsError(
            f"No results file at {path}: expected results.json from `panbench evaluate`."
        )
    return path


def load_results(path: str | os.PathLike[str]) -> Results:
    """Reads ``results.json`` (a file or the folder holding it) into the typed model.

    Checks the schema version and every field (:func:`panbench.results_model.parse_results`),
    not the samples: use :func:`verify_results` for that.

    Raises:
        ResultsError: the file is missing, not JSON, of an unknown schema version, or a field
            is malformed (naming the file and field).
    """
    path = _results_file(path)
    data = read_versioned_json(
        path,
        versions=READABLE_SCHEMA_VERSIONS,
        version_key="schema_version",
        what="results file",
        error=ResultsError,
        hint="(a results file from a newer panbench: upgrade panbench to read it)",
    )
    return parse_results(data, source=path)


def read_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """:func:`load_results` as a plain dict, with every metric entry's ``level`` filled in.

    For readers of the JSON layout; a version-1 file gets each entry's level as schema 2
    records it, so such readers may rely on ``level`` in any readable version.
    """
    results = load_results(path)
    data = results.to_dict()
    for name, task in results.tasks.items():
        for metric, entry in task.metrics.items():
            data["tasks"][name]["metrics"][metric].setdefault("level", entry.level)
    return data


# ------------------------------------------------------------------------------------ verification
_NUMBER = (int, float)


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


def _same(at: FieldPath, expected: Any, found: Any) -> None:
    if not _json_equal(expected, found):
        at.fail(repr(expected) + " (recomputed from the samples)", found)


def _check_sample_line(path: Path, line: int, rec: Mapping[str, Any], task: str) -> str:
    """One samples line is the episode it should be; returns its episode hash."""
    where = f"{path}:{line}"
    index = rec.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or index != line - 1:
        raise ResultsError(
            f"{where}: field 'index': expected {line - 1} (lines sorted by episode index, "
            f"one per episode), but found {index!r}."
        )
    ep_hash = rec.get("hash")
    if not is_sha256(ep_hash):
        raise ResultsError(
            f"{where}: field 'hash': expected an episode sha256, but found {ep_hash!r}."
        )
    if rec.get("episode_id") != f"{task}/{index:05d}":
        raise ResultsError(
            f"{where}: field 'episode_id': expected {task + '/' + format(index, '05d')!r}, "
            f"but found {rec.get('episode_id')!r}."
        )
    if not isinstance(rec.get("metrics"), dict):
        raise ResultsError(
            f"{where}: field 'metrics': expected an object of metric values, "
            f"but found {rec.get('metrics')!r}."
        )
    return str(ep_hash)


def _verify_samples(root: Path, task: TaskResult, at: FieldPath) -> list[dict[str, Any]]:
    """The task's samples file: where it should be, one line per episode, hashing as recorded."""
    expected_rel = f"samples/{task.name}.jsonl"
    if task.samples != expected_rel:
        (at / "samples").fail(repr(expected_rel), task.samples)
    path = root / expected_rel
    if not path.is_file():
        raise ResultsError(
            f"{path}: expected the samples file of task {task.name!r}, but it is missing."
        )
    data = path.read_bytes()
    records = read_samples(path)
    n_lines = data.count(b"\n")
    if len(records) != task.n_episodes or n_lines != task.n_episodes:
        raise ResultsError(
            f"{path}: expected {task.n_episodes} lines (tasks.{task.name}.n_episodes), but found "
            f"{len(records)} records on {n_lines} lines."
        )
    seen: dict[str, int] = {}
    for line, rec in enumerate(records, start=1):
        ep_hash = _check_sample_line(path, line, rec, task.name)
        if ep_hash in seen:
            raise ResultsError(
                f"{path}:{line}: field 'hash': expected unique episode hashes, but "
                f"{ep_hash[:16]}... repeats line {seen[ep_hash]}."
            )
        seen[ep_hash] = line
    found = hashlib.sha256(data).hexdigest()
    if found != task.samples_sha256:
        raise ResultsError(
            f"{path}: expected sha256 {task.samples_sha256} (tasks.{task.name}.samples_sha256 in "
            f"results.json), but the file hashes to {found}."
        )
    return records


def _verify_task(root: Path, task: TaskResult, at: FieldPath, version: int) -> None:
    """Every aggregate and the headline score of a task recompute from its samples."""
    records = _verify_samples(root, task, at)
    recomputed = sanitize(task_metrics(records, list(task.metrics), with_level=version >= 2))
    for metric, parsed in task.metrics.items():
        entry, fresh = parsed.raw, recomputed.get(metric, {})
        for key in [*fresh, *(k for k in entry if k not in fresh)]:  # value first
            where = at / "metrics" / metric / key
            if key not in entry:
                where.fail("the field to be present", "<missing>")
            if key not in fresh:
                where.fail("no such field (not recomputable from the samples)", entry[key])
            _same(where, fresh[key], entry[key])
    head = task.headline.metric
    if head in task.metrics:
        expected = headline_score(head, task.metrics[head].raw["value"])
        _same(at / "headline" / "score", expected, task.raw["headline"]["score"])


def verify_results(results_dir: str | os.PathLike[str]) -> Results:
    """Reads a results folder into the typed model and checks it against its samples.

    On top of :func:`load_results`'s field checks: per task, ``samples/<task>.jsonl`` exists,
    holds ``n_episodes`` lines sorted by episode index with unique episode hashes, hashes to
    ``samples_sha256``, and every aggregate (value, CI, n, n_missing, curve) and the headline
    score recompute exactly from those lines; the summary is the mean of the headline scores.
    Leaderboards and compare use this to refuse tampered or inconsistent results.

    Args:
        results_dir: the folder written by ``panbench evaluate`` (or its ``results.json``).

    Returns:
        The verified results.

    Raises:
        ResultsError: naming the file and field, expected versus found.
    """
    path = _results_file(results_dir)
    results = load_results(path)
    at = FieldPath(str(path))
    for name, task in results.tasks.items():
        _verify_task(path.parent, task, at / "tasks" / name, results.schema_version)
    summary = results.raw.get("summary")
    if summary is not None:
        scores = [t.headline.score for t in results.tasks.values()]
        valid = [s for s in scores if s is not None]
        expected = sum(valid) / len(valid) if valid else None
        _same(at / "summary" / "score", expected, summary.get("score"))
        _same(at / "summary" / "n_tasks", len(results.tasks), summary.get("n_tasks"))
    return results


def validate_results(results_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """:func:`verify_results`, returning the parsed ``results.json`` as a plain dict.

    Raises:
        ResultsError: naming the file and field, expected versus found.
    """
    return verify_results(results_dir).to_dict()
