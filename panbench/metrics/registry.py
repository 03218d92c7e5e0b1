"""The metric catalogue: every reported metric's name, direction, level, range and unit.

``panbench ls metrics`` prints it, results files take each metric's direction and level from
it, protocols name its entries, and :func:`get_metric` resolves a name (with "Did you mean" for
typos) to its entry. Implementations are named by lazy ``"module:attr"`` strings so reading the
catalogue imports no network weights. The table itself is :mod:`panbench.metrics.catalogue`.
"""

from __future__ import annotations

import math

import numpy as np

from panbench.errors import UnknownNameError
from panbench.metrics.catalogue import METRICS
from panbench.metrics.info import LEVELS, MetricInfo
from panbench.registry import did_you_mean

__all__ = ["LEVELS", "METRICS", "MetricInfo", "get_metric", "headline_score", "metric_names"]

_BY_NAME = {m.name: m for m in METRICS}


def metric_names() -> list[str]:
    """All metric names, in catalogue order."""
    return [m.name for m in METRICS]


def get_metric(name: str) -> MetricInfo:
    """The catalogue entry of ``name``.

    Raises:
        UnknownNameError: no metric has that name (the message suggests close names).

    Example:
        >>> get_metric("psnr").higher_is_better
        True
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        known = metric_names()
        raise UnknownNameError(
            f"Unknown metric {name!r}.{did_you_mean(name, known)} Known metrics: "
            f"{', '.join(known)}."
        ) from None


def headline_score(metric: str, mean: float | None) -> float | None:
    """A task's headline score in [0, 100] from the mean of its headline metric.

    ``clip(100 * mean / headline_divisor, 0, 100)``, computed in that order so the float is the
    one protocols computed before the catalogue.

    Args:
        metric: the headline metric's catalogue name.
        mean: the metric's mean over the task's episodes (None or NaN when it has none).

    Returns:
        The score, or None when the metric gives no 0-100 score or the mean is not finite.

    Example:
        >>> headline_score("psnr", 25.0)
        50.0
    """
    divisor = get_metric(metric).headline_divisor
    if divisor is None or mean is None or not math.isfinite(mean):
        return None
    # x / 1.0 == x exactly in IEEE arithmetic, so fractions keep the pre-catalogue 100 x mean.
    return float(np.clip(100.0 * mean / divisor, 0.0, 100.0))
