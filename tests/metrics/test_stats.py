"""Bootstrap CIs, paired comparisons and disjoint splits: coverage, power, determinism."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from panbench.errors import ConfigError, ContractError
from panbench.metrics import (
    CI,
    SmallSampleWarning,
    bootstrap_ci,
    paired_bootstrap,
    split_stats,
    warn_if_small,
)


def test_ci_coverage_on_normal_data_with_known_mean():
    rng = np.random.default_rng(0)
    reps, n, mu = 400, 50, 3.0
    hits = 0
    for i in range(reps):
        ci = bootstrap_ci(rng.normal(mu, 2.0, n), seed=i)
        hits += ci.low <= mu <= ci.high
    assert 0.90 <= hits / reps <= 0.98


def test_ci_matches_a_direct_percentile_bootstrap():
    x = np.random.default_rng(1).exponential(size=25)
    ci = bootstrap_ci(x, n_resamples=500, seed=42)
    rng = np.random.default_rng(42)
    means = np.array([x[rng.integers(0, 25, 25)].mean() for _ in range(500)])
    assert ci.value == pytest.approx(x.mean())
    assert (ci.low, ci.high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))


def test_ci_is_deterministic_and_seed_dependent():
    x = np.random.default_rng(2).normal(size=30)
    assert bootstrap_ci(x, seed=5) == bootstrap_ci(x, seed=5)
    assert bootstrap_ci(x, seed=5) != bootstrap_ci(x, seed=6)


def test_ci_small_n_and_nan_values():
    one = bootstrap_ci([3.5])
    assert one.value == 3.5 and math.isnan(one.low) and math.isnan(one.high) and one.n == 1
    assert one.to_dict() == {"value": 3.5, "low": None, "high": None, "n": 1, "confidence": 0.95}
    none = bootstrap_ci([math.nan])
    assert none.n == 0 and math.isnan(none.value)
    assert bootstrap_ci([1.0, math.nan, 3.0]).n == 2
    json.dumps(bootstrap_ci([1.0, 2.0]).to_dict())


def test_paired_bootstrap_detects_a_real_shift():
    rng = np.random.default_rng(3)
    base = rng.normal(20, 5, 60)  # large between-episode spread, shared by both models
    a = base + 0.8 + rng.normal(0, 0.5, 60)
    b = base + rng.normal(0, 0.5, 60)
    r = paired_bootstrap(a, b)
    assert r.p_value < 0.01 and r.low > 0 and r.diff == pytest.approx(np.mean(a - b))
    # the same shift is invisible to unpaired intervals, which overlap
    ca, cb = bootstrap_ci(a), bootstrap_ci(b)
    assert ca.low < cb.high


def test_paired_bootstrap_null_is_calibrated():
    rng = np.random.default_rng(4)
    p_values = []
    for i in range(100):
        base = rng.normal(0, 3, 30)
        r = paired_bootstrap(base + rng.normal(0, 1, 30), base + rng.normal(0, 1, 30), seed=i)
        p_values.append(r.p_value)
    rejected = np.mean(np.array(p_values) < 0.05)
    assert 0.0 <= rejected <= 0.12
    assert 0.35 <= np.median(p_values) <= 0.65  # roughly uniform under the null


def test_paired_bootstrap_edge_cases():
    same = paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same.diff == 0.0 and same.p_value == 1.0
    constant = paired_bootstrap([2.0, 3.0], [1.0, 2.0], n_resamples=99)
    assert constant.p_value == pytest.approx(1 / 100)
    short = paired_bootstrap([1.0, math.nan], [0.0, 1.0])
    assert short.n == 1 and math.isnan(short.p_value)
    with pytest.raises(ContractError, match=r"same shape.*\(3,\) and \(2,\)"):
        paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.0])


def test_split_stats_uses_disjoint_equal_splits():
    seen: list[np.ndarray] = []

    def compute(idx: np.ndarray) -> float:
        seen.append(idx)
        return float(idx.size)

    s = split_stats(compute, n=23, k=4, seed=0)
    assert s.k == 4 and s.split_size == 5 and s.values == (5.0,) * 4 and s.std == 0.0
    used = np.concatenate(seen)
    assert used.size == 20 and np.unique(used).size == 20  # disjoint, 3 left over
    again: list[np.ndarray] = []
    split_stats(lambda idx: again.append(idx) or 0.0, n=23, k=4, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(seen, again, strict=True))


def test_split_stats_mean_and_std_against_numpy():
    data = np.random.default_rng(5).normal(size=40)
    s = split_stats(lambda idx: float(data[idx].mean()), n=40, k=4, seed=1)
    assert s.mean == pytest.approx(np.mean(s.values))
    assert s.std == pytest.approx(np.std(s.values, ddof=1))
    assert s.mean == pytest.approx(data.mean())  # equal splits of all 40: mean of means
    assert json.loads(json.dumps(s.to_dict()))["k"] == 4
    assert math.isnan(split_stats(lambda idx: 1.0, n=3, k=1).std)


def test_split_stats_warns_for_small_splits_and_checks_k():
    with pytest.warns(SmallSampleWarning, match="n=10"):
        split_stats(lambda idx: 0.0, n=20, k=2, dim=400)
    with pytest.raises(ConfigError, match="at least k=5"):
        split_stats(lambda idx: 0.0, n=3, k=5)


def test_warn_if_small():
    with pytest.warns(SmallSampleWarning, match="rank at most 99 < 400"):
        assert warn_if_small(100, 400) is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_if_small(401, 400) is False


def test_ci_is_frozen():
    ci = CI(1.0, 0.5, 1.5, 10)
    with pytest.raises(AttributeError):
        ci.value = 2.0  # type: ignore[misc]
