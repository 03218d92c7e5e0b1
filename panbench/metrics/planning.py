"""Planning metrics: the normalised closed-loop score and the goal-image distance.

``normalized_score`` is set-level: it is computed once from all of a task's per-episode records
(success, random-reference and oracle-reference values), with a paired bootstrap CI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from panbench.metrics.stats import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, empty_set_level_entry

__all__ = ["goal_distance", "normalized_score"]


def goal_distance(frame: np.ndarray, goal: np.ndarray) -> float:
    """Mean squared difference of two uint8 [H, W, 3] frames, with pixels scaled to [0, 1]."""
    d = (frame.astype(np.float64) - goal.astype(np.float64)) / 255.0
    return float(np.mean(d * d))


def _bootstrap_ratio(values: np.ndarray, seed: int, n_resamples: int) -> tuple[float, float]:
    """Percentile CI of (s - r) / (o - r) over episode resamples of float [N, 3] (s, r, o) rows."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_resamples, len(values)))
    means = values[idx].mean(axis=1)
    denom = means[:, 2] - means[:, 1]
    ok = denom > 0  # resamples where the oracle does no better than random define no ratio
    if not ok.any():
        return math.nan, math.nan
    ratios = (means[ok, 0] - means[ok, 1]) / denom[ok]
    low, high = np.quantile(ratios, [0.025, 0.975])
    return float(low), float(high)


def normalized_score(
    records: Sequence[Mapping[str, Any]],
    seed: int = BOOTSTRAP_SEED,
    n_resamples: int = BOOTSTRAP_SAMPLES,
) -> dict[str, Any]:
    """(model - random) / (oracle - random) success over episodes, with a paired bootstrap CI.

    Episodes are resampled whole (model, random and oracle values together). Resamples in which
    the oracle does no better than random define no ratio and are left out of the interval.
    ``curve`` is the same ratio for success within b steps (None where undefined).

    Args:
        records: per-episode records holding ``success``, ``random_success`` and
            ``oracle_success`` metrics and curves.

    Returns:
        A results entry: ``value``, ``ci95``, ``n``, ``n_missing``, ``higher_is_better``,
        ``curve``, ``set_level``.
    """
    keys = ("success", "random_success", "oracle_success")
    rows = []
    curves = []
    for r in records:
        vals = [r.get("metrics", {}).get(k) for k in keys]
        if all(v is not None and math.isfinite(v) for v in vals):
            rows.append(vals)
            curves.append([r.get("curves", {}).get(k) for k in keys])
    n = len(rows)
    entry = empty_set_level_entry(n, len(records))
    if n == 0:
        return entry
    values = np.asarray(rows, dtype=np.float64)
    s, r, o = values.mean(axis=0)
    entry["value"] = (s - r) / (o - r) if o > r else math.nan
    if n >= 2:
        entry["ci95"] = list(_bootstrap_ratio(values, seed, n_resamples))
    if all(c is not None for row in curves for c in row):
        mat = np.asarray(curves, dtype=np.float64).mean(axis=0)  # [3, budget]
        with np.errstate(all="ignore"):
            ratio = np.where(mat[2] > mat[1], (mat[0] - mat[1]) / (mat[2] - mat[1]), np.nan)
        entry["curve"] = [float(x) for x in ratio]
    return entry
