"""The numbers behind figures that ``results.json`` alone does not hold: per-step CI bands and caps.

``results.json`` stores each metric's mean drift curve; the band around it needs the per-episode
curves in ``samples/<task>.jsonl`` (or in a leaderboard submission). :func:`curve_band` gives,
per horizon step, the mean and the 95% percentile-bootstrap CI of the mean over episodes, with
the same resampling as the task-level CIs (:func:`panbench.metrics.stats.bootstrap_ci`).

:func:`cap_view` decides how a capped metric is drawn: PSNR is capped at 100 dB (identical
frames), so an oracle's flat line at 100 would squash every other curve into the bottom fifth of
the panel. When some curves sit at the cap and the rest stay well below it, the axis is clipped
above the others and the capped curves are drawn at its top edge, marked as "at the cap".
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CapView", "RunSamples", "cap_view", "curve_band", "load_folder_samples", "parse_jsonl"]

RunSamples = Mapping[str, Sequence[Mapping[str, Any]]]
"""One run's per-episode records by task (the lines of ``samples/<task>.jsonl``)."""

CAP_SHARE = 0.6
"""Curves below this share of the cap count as "well below" it (see :func:`cap_view`)."""


def parse_jsonl(text: str) -> list[dict[str, Any]]:
    """The records of a samples JSON-lines text (blank lines skipped)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_folder_samples(folder: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """Every ``samples/<task>.jsonl`` of a results folder (or of ``results.json``'s folder)."""
    path = Path(folder)
    if path.name == "results.json":
        path = path.parent
    samples = path / "samples"
    if not samples.is_dir():
        return {}
    return {
        f.stem: parse_jsonl(f.read_text(encoding="utf-8"))
        for f in sorted(samples.glob("*.jsonl"))
        if ".part-" not in f.name
    }


def curve_band(
    records: Sequence[Mapping[str, Any]], metric: str, *, n_resamples: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per step: the mean of ``metric``'s per-episode curves and its 95% bootstrap CI.

    Args:
        records: per-episode sample records; each may carry ``curves[metric]`` (float [T]).
        metric: the metric name.
        n_resamples: bootstrap resamples per step.
        seed: the resampling seed (the task-level CIs' default).

    Returns:
        ``(mean, low, high)``, float [T] each (NaN where a step has under 2 finite values), or
        None when no record has the curve.
    """
    from panbench.metrics.stats import bootstrap_ci

    curves = [r.get("curves", {}).get(metric) for r in records]
    curves = [c for c in curves if c]
    if not curves:
        return None
    length = max(len(c) for c in curves)
    mat = np.full((len(curves), length), np.nan)
    for i, c in enumerate(curves):
        mat[i, : len(c)] = [np.nan if v is None else float(v) for v in c]
    mean, low, high = (np.full(length, np.nan) for _ in range(3))
    for t in range(length):
        ci = bootstrap_ci(mat[:, t], n_resamples=n_resamples, seed=seed)
        mean[t], low[t], high[t] = ci.value, ci.low, ci.high
    return mean, low, high


@dataclass(frozen=True)
class CapView:
    """How a panel of a capped metric is drawn.

    Attributes:
        cap: the metric's cap (the catalogue's upper bound).
        top: the clipped axis' upper limit.
        at_cap: labels of the curves drawn at the top edge (every finite value at the cap).
    """

    cap: float
    top: float
    at_cap: tuple[str, ...]


def cap_view(curves: Mapping[str, Sequence[float]], cap: float | None) -> CapView | None:
    """Whether to clip a panel's axis below a metric's cap, and where.

    Args:
        curves: ``{label: values}`` of the panel (NaN allowed).
        cap: the metric's upper bound, or None when it has none.

    Returns:
        A :class:`CapView` when at least one curve is at the cap for every finite value and
        every other curve stays below ``CAP_SHARE * cap``; else None (drawn as is).

    Example:
        >>> view = cap_view({"oracle": [100.0, 100.0], "model": [30.0, 12.0]}, 100.0)
        >>> view.at_cap, round(view.top, 1)
        (('oracle',), 37.2)
    """
    if cap is None or not math.isfinite(cap) or cap <= 0:
        return None
    finite = {label: _finite(values) for label, values in curves.items()}
    finite = {label: v for label, v in finite.items() if v.size}
    at_cap = tuple(label for label, v in finite.items() if v.min() >= cap * (1 - 1e-9))
    rest = [v for label, v in finite.items() if label not in at_cap]
    if not at_cap or not rest:
        return None
    high = max(float(v.max()) for v in rest)
    if high >= CAP_SHARE * cap:
        return None
    low = min(0.0, min(float(v.min()) for v in rest))
    return CapView(float(cap), high + 0.24 * max(high - low, 1e-9), at_cap)


def _finite(values: Sequence[float | None]) -> np.ndarray:
    arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return arr[np.isfinite(arr)]
