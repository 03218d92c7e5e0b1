"""Long-horizon drift: per-step metric curves over the horizon and their summaries.

Every per-frame or per-step metric in panbench produces values of shape ``[N, T]`` (N episodes,
T rollout steps). Its *drift curve* is the mean over episodes at each step index, with the number
of episodes that contributed (a value may be missing: NaN, e.g. a step with no true movement for
action following). Curves are summarised by their mean, a normalised area under the curve, a
least-squares slope and the first step at which the curve crosses a threshold in the bad
direction.

:class:`PerStepMean` is the torchmetrics accumulator behind every per-step metric class: it keeps
a ``(T,)`` sum and a ``(T,)`` count, so a metric updated batch by batch yields the same curve as
:func:`drift_curve` on all values at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric

from panbench.errors import ConfigError, ContractError
from panbench.metrics.stats import _finite_or_none


@dataclass(frozen=True)
class Curve:
    """A drift curve: the mean of a per-step metric over episodes at each horizon index.

    Attributes:
        mean: float64 [T]; the mean over the episodes that have a value at step t; NaN where none.
        n: int64 [T]; how many episodes contributed at step t.
    """

    mean: np.ndarray
    n: np.ndarray

    @property
    def horizon(self) -> int:
        """The number of steps T."""
        return int(self.mean.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form; NaN steps become ``None``."""
        return {"mean": [_finite_or_none(v) for v in self.mean], "n": [int(k) for k in self.n]}


@dataclass(frozen=True)
class DriftSummary:
    """Scalar summaries of a :class:`Curve`; see :func:`summarize_drift`.

    Attributes:
        mean: mean of the curve over the steps that have data.
        auc: normalised area under the curve (trapezoid over the step index, divided by the span).
        slope: least-squares slope, in metric units per step; NaN with fewer than two steps.
        first_crossing: first step index whose value is on the bad side of ``threshold``
            (below it when higher is better, above it otherwise); ``None`` if never or no threshold.
        threshold: the threshold used, or ``None``.
        higher_is_better: the metric's direction.
    """

    mean: float
    auc: float
    slope: float
    first_crossing: int | None
    threshold: float | None
    higher_is_better: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form; NaN becomes ``None``."""
        return {
            "mean": _finite_or_none(self.mean),
            "auc": _finite_or_none(self.auc),
            "slope": _finite_or_none(self.slope),
            "first_crossing": self.first_crossing,
            "threshold": self.threshold,
            "higher_is_better": self.higher_is_better,
        }


def _as_values(values: Any, mask: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """Validates ``[N, T]`` values and returns them (float64) with a boolean validity mask."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2:
        raise ContractError(
            f"Expected per-step values of shape [N, T] (episodes, steps), but got shape "
            f"{tuple(arr.shape)}."
        )
    valid = np.isfinite(arr)
    if mask is not None:
        if isinstance(mask, torch.Tensor):
            mask = mask.detach().cpu().numpy()
        m = np.asarray(mask)
        if m.shape != arr.shape or m.dtype != np.bool_:
            raise ContractError(
                f"Expected mask to be bool of shape {tuple(arr.shape)}, but got {m.dtype} "
                f"{tuple(m.shape)}."
            )
        valid &= m
    return arr, valid


def drift_curve(values: Any, mask: Any | None = None) -> Curve:
    """Mean over episodes at each step of per-step values.

    Non-finite values (NaN marks "no value at this step") and entries where ``mask`` is False are
    left out of that step's mean and count.

    Args:
        values: float [N, T] (numpy or torch), one row per episode.
        mask: optional bool [N, T]; False leaves an entry out.

    Returns:
        A :class:`Curve` with ``mean`` float64 [T] (NaN where no episode has a value) and ``n``.

    Example:
        >>> c = drift_curve([[30.0, 20.0], [28.0, float("nan")]])
        >>> c.mean.tolist(), c.n.tolist()
        ([29.0, 20.0], [2, 1])
    """
    arr, valid = _as_values(values, mask)
    n = valid.sum(axis=0).astype(np.int64)
    total = np.where(valid, arr, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return Curve(mean=mean, n=n)


def _curve_points(curve: Curve | Any) -> tuple[np.ndarray, np.ndarray]:
    """The (step index, value) pairs of a curve's steps that have a finite value."""
    y = np.asarray(curve.mean if isinstance(curve, Curve) else curve, dtype=np.float64)
    if y.ndim != 1:
        raise ContractError(f"Expected a curve of shape [T], but got shape {tuple(y.shape)}.")
    x = np.arange(y.shape[0], dtype=np.float64)
    keep = np.isfinite(y)
    return x[keep], y[keep]


def curve_mean(curve: Curve | Any) -> float:
    """Unweighted mean of the curve over its steps that have a value (NaN if none).

    Every step weighs the same, whatever its ``n``: the summary describes the horizon, not the
    pool of frames.
    """
    _, y = _curve_points(curve)
    return float(y.mean()) if y.size else math.nan


def curve_auc(curve: Curve | Any) -> float:
    """Normalised area under the curve: trapezoid rule over the step index, divided by the span.

    Steps without a value are skipped (the trapezoid joins their neighbours). Dividing by
    ``x_last - x_first`` puts the area in the metric's own units, so it is comparable across
    horizons; a constant curve ``c`` has area ``c``. With one step the area is that step's value.
    """
    x, y = _curve_points(curve)
    if y.size == 0:
        return math.nan
    if y.size == 1:
        return float(y[0])
    area = float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)
    return area / float(x[-1] - x[0])


def curve_slope(curve: Curve | Any) -> float:
    """Least-squares slope of value against step index (units per step); NaN with < 2 steps."""
    x, y = _curve_points(curve)
    if y.size < 2:
        return math.nan
    xc = x - x.mean()
    return float(np.sum(xc * (y - y.mean())) / np.sum(xc * xc))


def first_crossing(curve: Curve | Any, threshold: float, *, higher_is_better: bool) -> int | None:
    """First step whose value is strictly on the bad side of ``threshold``; ``None`` if never.

    "Bad side" is below the threshold when higher is better (e.g. PSNR falling under 20 dB) and
    above it otherwise (e.g. position error rising over 4 px). Steps without a value are skipped.
    """
    x, y = _curve_points(curve)
    bad = y < threshold if higher_is_better else y > threshold
    hits = np.flatnonzero(bad)
    return int(x[hits[0]]) if hits.size else None


def summarize_drift(
    curve: Curve | Any, *, higher_is_better: bool, threshold: float | None = None
) -> DriftSummary:
    """Summarises a drift curve: mean, normalised AUC, slope and first threshold crossing.

    Args:
        curve: a :class:`Curve` or a float [T] array of per-step means.
        higher_is_better: the metric's direction; decides which side of ``threshold`` is bad.
        threshold: optional level for :func:`first_crossing`.

    Returns:
        A :class:`DriftSummary`.

    Example:
        >>> s = summarize_drift([30.0, 25.0, 20.0], higher_is_better=True, threshold=22.0)
        >>> s.mean, s.auc, s.slope, s.first_crossing
        (25.0, 25.0, -5.0, 2)
    """
    crossing = (
        None
        if threshold is None
        else first_crossing(curve, threshold, higher_is_better=higher_is_better)
    )
    return DriftSummary(
        mean=curve_mean(curve),
        auc=curve_auc(curve),
        slope=curve_slope(curve),
        first_crossing=crossing,
        threshold=None if threshold is None else float(threshold),
        higher_is_better=higher_is_better,
    )


class PerStepMetric(Metric):
    """Base of panbench's per-step metrics: a (T,) sum and a (T,) count over episodes.

    Subclasses turn their inputs into per-step values [B, T] (NaN = no value) and call
    :meth:`_accumulate`. ``compute()`` returns the pooled mean over every (episode, step) value;
    :meth:`curve` returns the drift curve. The state grows to the longest horizon seen; pass
    ``horizon`` to fix its size up front (needed for multi-process sync, where every rank must
    hold states of the same shape).

    Args:
        horizon: optional number of steps T to preallocate.
        kwargs: passed to :class:`torchmetrics.Metric`.
    """

    is_differentiable = False
    full_state_update = False
    sum_per_step: torch.Tensor
    count_per_step: torch.Tensor

    def __init__(self, horizon: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if horizon is not None and (isinstance(horizon, bool) or int(horizon) < 1):
            raise ConfigError(
                f"Expected horizon to be a positive int or None, but got {horizon!r}."
            )
        size = 0 if horizon is None else int(horizon)
        self.add_state(
            "sum_per_step", default=torch.zeros(size, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state(
            "count_per_step", default=torch.zeros(size, dtype=torch.int64), dist_reduce_fx="sum"
        )

    def _grow(self, steps: int) -> None:
        have = self.sum_per_step.shape[0]
        if steps > have:
            pad = steps - have
            self.sum_per_step = torch.cat([self.sum_per_step, self.sum_per_step.new_zeros(pad)])
            self.count_per_step = torch.cat(
                [self.count_per_step, self.count_per_step.new_zeros(pad)]
            )

    def _accumulate(self, values: torch.Tensor | np.ndarray) -> None:
        """Adds per-step values [B, T]; non-finite entries are left out."""
        v = torch.as_tensor(values, dtype=torch.float64, device=self.sum_per_step.device)
        if v.ndim != 2:
            raise ContractError(
                f"Expected per-step values of shape [B, T], but got shape {tuple(v.shape)}."
            )
        valid = torch.isfinite(v)
        self._grow(v.shape[1])
        steps = v.shape[1]
        self.sum_per_step[:steps] += torch.where(valid, v, torch.zeros_like(v)).sum(0)
        self.count_per_step[:steps] += valid.sum(0)

    def _reduce_states(self, incoming_state: dict[str, Any]) -> None:
        # forward() merges the batch state into the global one; with growing states the two may
        # differ in length, so pad both to the longer one before torchmetrics adds them.
        steps = max(incoming_state["sum_per_step"].shape[0], self.sum_per_step.shape[0])
        self._grow(steps)
        incoming = dict(incoming_state)
        for name in ("sum_per_step", "count_per_step"):
            t = incoming[name]
            if t.shape[0] < steps:
                incoming[name] = torch.cat([t, t.new_zeros(steps - t.shape[0])])
        super()._reduce_states(incoming)

    def compute(self) -> torch.Tensor:
        """Pooled mean over every (episode, step) value seen; NaN before any value."""
        count = self.count_per_step.sum()
        if count == 0:
            return torch.tensor(math.nan, dtype=torch.float64)
        return self.sum_per_step.sum() / count

    def curve(self) -> Curve:
        """The drift curve so far (synchronised across processes when distributed)."""
        with self.sync_context():
            total = self.sum_per_step.detach().cpu().numpy().copy()
            n = self.count_per_step.detach().cpu().numpy().astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        return Curve(mean=mean, n=n)


class PerStepMean(PerStepMetric):
    """Accumulates any per-step values [B, T] into a drift curve.

    Example:
        >>> m = PerStepMean()
        >>> m.update(torch.tensor([[1.0, 2.0], [3.0, float("nan")]]))
        >>> m.curve().mean.tolist(), float(m.compute())
        ([2.0, 2.0], 2.0)
    """

    def update(self, values: torch.Tensor | np.ndarray, mask: Any | None = None) -> None:
        """Adds values float [B, T]; NaN entries and entries where ``mask`` is False are skipped."""
        arr, valid = _as_values(values, mask)
        self._accumulate(np.where(valid, arr, np.nan))
