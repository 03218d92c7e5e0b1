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
    values: Sequence[float], *, seed: int = BOOTSTRAP_SEED, samples: int = BOOTSTRAP_SAMPLES
) -> tuple[float, float]:
    """95% percentile-bootstrap CI of the mean over episodes (deterministic for a seed)."""
    try:
        from panbench.metrics.stats import bootstrap_ci as _ci

        ci = _ci(np.asarray(values, dtype=np.float64), seed=seed, n_resamples=samples)
        return float(ci.low), float(ci.high)
    except ImportError:  # pragma: no cover - the metrics package ships with panbench
        arr = np.asarray(values, dtype=np.float64)
        if arr.size < 2:
            return (math.nan, math.nan)
        rng = np.random.default_rng(seed)
        means = arr[rng.integers(0, arr.size, size=(samples, arr.size))].mean(axis=1)
        lo, hi = np.percentile(means, [2.5, 97.5])
        return float(lo), float(hi)


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


def _json_float(x: float) -> float | None:
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
