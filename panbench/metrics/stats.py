"""Uncertainty of benchmark numbers: bootstrap CIs, paired comparisons, FVD over disjoint splits.

Every resampling draws from ``numpy.random.default_rng(seed)``, so the same values and seed give
the same interval on every machine. Results are small frozen dataclasses with ``to_dict()`` for
results files (NaN is written as ``None``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from panbench.errors import ConfigError, ContractError


def _finite_or_none(x: float) -> float | None:
    """JSON has no NaN/inf: missing or undefined numbers are written as ``null``."""
    return float(x) if math.isfinite(x) else None


DEFAULT_RESAMPLES = 1000
#: seed and resample count of the bootstrap CIs in results files (fixed, so results reproduce)
BOOTSTRAP_SEED = 0
BOOTSTRAP_SAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
# Bootstrap means are computed this many resampled values at a time to bound memory.
_CHUNK_ELEMENTS = 4_000_000


class SmallSampleWarning(UserWarning):
    """Too few samples for a reliable estimate (e.g. FVD covariance from fewer clips than dims)."""


@dataclass(frozen=True)
class CI:
    """A point estimate with a confidence interval.

    Attributes:
        value: the estimate (the mean of the values).
        low: lower bound; NaN when it cannot be estimated (n < 2).
        high: upper bound; NaN when it cannot be estimated (n < 2).
        n: the number of values it rests on.
        confidence: the interval's nominal coverage.
    """

    value: float
    low: float
    high: float
    n: int
    confidence: float = DEFAULT_CONFIDENCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _finite_or_none(self.value),
            "low": _finite_or_none(self.low),
            "high": _finite_or_none(self.high),
            "n": self.n,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class PairedComparison:
    """Two models on the same episodes: mean difference ``a - b``, its CI and a p-value.

    Attributes:
        diff: mean over episodes of ``a_i - b_i``.
        low: lower bound of the percentile bootstrap CI of ``diff``.
        high: upper bound.
        p_value: two-sided bootstrap p-value of "no difference" (see :func:`paired_bootstrap`).
        n: the number of paired episodes.
        confidence: the interval's nominal coverage.
    """

    diff: float
    low: float
    high: float
    p_value: float
    n: int
    confidence: float = DEFAULT_CONFIDENCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "diff": _finite_or_none(self.diff),
            "low": _finite_or_none(self.low),
            "high": _finite_or_none(self.high),
            "p_value": _finite_or_none(self.p_value),
            "n": self.n,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class SplitStats:
    """A set-level statistic (e.g. FVD) over k disjoint splits of the episodes.

    Attributes:
        mean: mean of the split values.
        std: sample standard deviation (ddof=1) of the split values; NaN when k = 1.
        values: the value of each split, in split order.
        split_size: episodes per split.
        n: episodes available (``k * split_size`` of them were used).
    """

    mean: float
    std: float
    values: tuple[float, ...]
    split_size: int
    n: int

    @property
    def k(self) -> int:
        return len(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": _finite_or_none(self.mean),
            "std": _finite_or_none(self.std),
            "values": [_finite_or_none(v) for v in self.values],
            "k": self.k,
            "split_size": self.split_size,
            "n": self.n,
        }


def _check_resampling(n_resamples: int, confidence: float) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ConfigError(f"Expected n_resamples to be a positive int, but got {n_resamples!r}.")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"Expected confidence in (0, 1), but got {confidence!r}.")


def _as_1d(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ContractError(
            f"Expected {name} to be 1-D (one value per episode), but got shape {tuple(arr.shape)}."
        )
    return arr


def _bootstrap_means(x: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Means of ``n_resamples`` resamples (with replacement) of ``x``; deterministic given seed."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    per_chunk = max(1, _CHUNK_ELEMENTS // n)
    out = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, per_chunk):
        stop = min(n_resamples, start + per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = x[idx].mean(axis=1)
    return out


def bootstrap_ci(
    values: Any,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> CI:
    """Percentile bootstrap confidence interval of the mean over episodes.

    Resamples the episodes with replacement ``n_resamples`` times and takes the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled means.
    NaN values (episodes without a value) are dropped first and ``n`` counts the rest. With
    n = 1 the interval is undefined and ``low``/``high`` are NaN (written as ``None``): a single
    episode says nothing about spread. With n = 0 the value is NaN too.

    Args:
        values: float [N], one value per episode.
        confidence: nominal coverage, default 0.95.
        n_resamples: bootstrap resamples B, default 1000.
        seed: seed of the resampling; same values and seed, same interval.

    Returns:
        A :class:`CI`.

    Example:
        >>> ci = bootstrap_ci([1.0, 2.0, 3.0, 4.0], seed=0)
        >>> ci.value, ci.low <= 2.5 <= ci.high, ci.n
        (2.5, True, 4)
    """
    _check_resampling(n_resamples, confidence)
    x = _as_1d(values, "values")
    x = x[~np.isnan(x)]
    n = int(x.shape[0])
    if n == 0:
        return CI(math.nan, math.nan, math.nan, 0, confidence)
    value = float(x.mean())
    if n == 1:
        return CI(value, math.nan, math.nan, 1, confidence)
    means = _bootstrap_means(x, n_resamples, seed)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return CI(value, float(low), float(high), n, confidence)


def paired_bootstrap(
    a: Any,
    b: Any,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """Compares two models scored on the same episodes by bootstrapping per-episode differences.

    With ``d_i = a_i - b_i`` (pairs where either is NaN are dropped) and observed mean ``D``, the
    episodes are resampled with replacement; the CI is the percentile interval of the resampled
    means ``D*``. The two-sided p-value tests ``mean(d) = 0`` by shifting the bootstrap
    distribution to the null (Efron & Tibshirani 1993, sec. 16.4):
    ``p = (1 + #{|D* - D| >= |D|}) / (B + 1)``, so it is never 0 and its smallest value is
    ``1 / (B + 1)``. If ``D = 0`` the p-value is 1. Fewer than 2 pairs give NaN bounds and p.

    Args:
        a: float [N], per-episode values of model A.
        b: float [N], per-episode values of model B on the same episodes, in the same order.
        confidence: nominal coverage of the CI.
        n_resamples: bootstrap resamples B.
        seed: seed of the resampling.

    Returns:
        A :class:`PairedComparison` of ``a - b``.

    Example:
        >>> r = paired_bootstrap([2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0])
        >>> r.diff, r.low, r.high, r.p_value
        (1.0, 1.0, 1.0, 0.000999000999000999)
    """
    _check_resampling(n_resamples, confidence)
    xa, xb = _as_1d(a, "a"), _as_1d(b, "b")
    if xa.shape != xb.shape:
        raise ContractError(
            f"Expected a and b to have the same shape (paired episodes), but got "
            f"{tuple(xa.shape)} and {tuple(xb.shape)}."
        )
    d = xa - xb
    d = d[~np.isnan(d)]
    n = int(d.shape[0])
    diff = float(d.mean()) if n else math.nan
    if n < 2:
        return PairedComparison(diff, math.nan, math.nan, math.nan, n, confidence)
    means = _bootstrap_means(d, n_resamples, seed)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    if diff == 0.0:
        p = 1.0
    else:
        extreme = int(np.count_nonzero(np.abs(means - diff) >= abs(diff)))
        p = (1 + extreme) / (n_resamples + 1)
    return PairedComparison(diff, float(low), float(high), float(p), n, confidence)


def warn_if_small(n: int, dim: int, *, what: str = "FVD") -> bool:
    """Warns (:class:`SmallSampleWarning`) when ``n`` samples cannot support ``dim``-d statistics.

    A covariance of ``dim``-dimensional features estimated from ``n`` samples has rank at most
    ``n - 1``; with ``n <= dim`` it is singular and Frechet distances from it are dominated by the
    estimation error (they also fall as ``n`` grows, so values at different n are not
    comparable).

    Args:
        n: number of samples (e.g. videos in one FVD split).
        dim: feature dimension (e.g. 400 for I3D logits).
        what: the statistic's name, for the message.

    Returns:
        True if it warned.
    """
    if n <= dim:
        warnings.warn(
            f"{what} from n={n} samples of {dim}-dimensional features: the covariance has rank "
            f"at most {max(n - 1, 0)} < {dim} and is singular, so the value is unreliable and "
            "not comparable with values at other n. Use more episodes (n > dim).",
            SmallSampleWarning,
            stacklevel=2,
        )
        return True
    return False


def split_stats(
    compute: Callable[[np.ndarray], float],
    n: int,
    *,
    k: int = 5,
    seed: int = 0,
    dim: int | None = None,
) -> SplitStats:
    """Mean and standard deviation of a set-level statistic over k disjoint splits of episodes.

    For FVD-like statistics the bootstrap is wrong: a resample repeats episodes, which shrinks the
    feature covariance and biases the Frechet distance, so its spread is not the statistic's.
    Instead the episodes are shuffled with ``seed`` and cut into ``k`` disjoint splits of equal
    size ``n // k`` (the ``n mod k`` left over are not used, since FVD's bias depends on the
    sample size and every split must have the same one); ``compute`` runs once per split.

    Args:
        compute: takes int64 episode indices [split_size] and returns the statistic on them.
        n: number of episodes, indexed ``0 .. n-1``.
        k: number of splits.
        seed: seed of the shuffle.
        dim: feature dimension; if given, :func:`warn_if_small` checks the split size.

    Returns:
        A :class:`SplitStats`.

    Example:
        >>> data = np.arange(10.0)
        >>> s = split_stats(lambda idx: float(data[idx].mean()), n=10, k=2, seed=0)
        >>> s.k, s.split_size, round(s.mean, 6)
        (2, 5, 4.5)
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"Expected k to be a positive int, but got {k!r}.")
    if n < k:
        raise ConfigError(f"Expected at least k={k} episodes to split, but got n={n}.")
    split_size = n // k
    if dim is not None:
        warn_if_small(split_size, dim)
    order = np.random.default_rng(seed).permutation(n)
    splits = order[: k * split_size].reshape(k, split_size)
    values = tuple(float(compute(np.sort(s))) for s in splits)
    arr = np.asarray(values)
    std = float(arr.std(ddof=1)) if k > 1 else math.nan
    return SplitStats(float(arr.mean()), std, values, split_size, int(n))


def empty_set_level_entry(n: int, n_records: int) -> dict[str, Any]:
    """A set-level results entry (one value for the whole task, higher is better) before its
    value and CI are filled in: NaN value and CI, ``n`` usable of ``n_records`` episodes."""
    return {
        "value": math.nan,
        "ci95": [math.nan, math.nan],
        "n": n,
        "n_missing": n_records - n,
        "higher_is_better": True,
        "set_level": True,
    }
