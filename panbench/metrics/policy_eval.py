"""Policy evaluation in imagination: does the world model rank policies as the true env does?

Each episode of a ``policy_eval`` task records, for every one of K fixed policies, whether it
reached the goal in the true env and in the model's imagination (``policy_success`` in the
samples line: ``{"true": [K], "imagined": [K]}``). ``policy_rank_correlation`` is set-level: the
Spearman rank correlation between the policies' imagined and true success rates over all
episodes, with a percentile bootstrap CI over episode resamples. A side with no spread (every
policy equally successful, e.g. a model that never imagines success) ranks nothing: its
correlation is 0, not undefined.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from panbench.metrics.stats import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, empty_set_level_entry

__all__ = ["policy_rank_correlation", "spearman"]


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation of two float [K] vectors; 0 when either has no spread.

    Example:
        >>> spearman([0.1, 0.5, 0.9], [0.0, 0.2, 0.3])
        1.0
    """
    from scipy.stats import rankdata  # average ranks for ties

    ra = rankdata(np.asarray(a, np.float64))
    rb = rankdata(np.asarray(b, np.float64))
    da, db = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float((da * da).sum() * (db * db).sum()))
    return float((da * db).sum() / denom) if denom > 0 else 0.0


def policy_rank_correlation(
    records: Sequence[Mapping[str, Any]],
    seed: int = BOOTSTRAP_SEED,
    n_resamples: int = BOOTSTRAP_SAMPLES,
) -> dict[str, Any]:
    """Spearman correlation of imagined versus true policy success rates, bootstrap CI.

    Args:
        records: samples lines holding ``policy_success`` (``true`` and ``imagined`` lists
            of K per-policy successes in [0, 1]).

    Returns:
        A results entry: ``value``, ``ci95``, ``n``, ``n_missing``, ``higher_is_better``,
        ``set_level``.
    """
    rows = []
    for r in records:
        ps = r.get("policy_success")
        if isinstance(ps, Mapping) and ps.get("true") is not None and ps.get("imagined"):
            rows.append((ps["true"], ps["imagined"]))
    n = len(rows)
    entry = empty_set_level_entry(n, len(records))
    if n == 0:
        return entry
    values = np.asarray(rows, dtype=np.float64)  # [N, 2, K]
    true, imagined = values[:, 0].mean(axis=0), values[:, 1].mean(axis=0)
    entry["value"] = spearman(imagined, true)
    if n >= 2:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(n_resamples, n))
        means = values[idx].mean(axis=1)  # [R, 2, K]
        boot = [spearman(m[1], m[0]) for m in means]
        low, high = np.quantile(boot, [0.025, 0.975])
        entry["ci95"] = [float(low), float(high)]
    return entry
