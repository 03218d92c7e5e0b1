"""The one metric catalogue: every reported metric is there, headline scores, set-level entries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from panbench.errors import ConfigError
from panbench.metrics.info import MetricInfo
from panbench.metrics.registry import METRICS, get_metric, headline_score, metric_names
from panbench.protocols import PROTOCOLS


def _old_headline(protocol: str, metric: str, value: float) -> float:
    """The headline formulas the protocols used before the catalogue (rollout, smoothness, base)."""
    if protocol == "wr_smoothness":
        return math.nan
    # recorded_rollout is rollout on data; physics is rollout plus physical outcome metrics
    if protocol in ("rollout", "recorded_rollout", "physics", "atari"):
        if metric == "psnr":
            return float(np.clip(100.0 * value / 50.0, 0.0, 100.0))
        if not get_metric(metric).higher_is_better:
            return math.nan
    return float(np.clip(100.0 * value, 0.0, 100.0))


def test_every_metric_every_protocol_reports_is_catalogued() -> None:
    known = set(metric_names())
    reported = {m for name in PROTOCOLS.names() for m in PROTOCOLS.get(name).metrics}
    assert len(reported) >= 27
    assert reported <= known, sorted(reported - known)


def test_entries_are_consistent() -> None:
    assert len(set(metric_names())) == len(METRICS)
    for info in METRICS:
        low, high = info.range
        assert low is None or high is None or low < high, info.name
        if info.level == "set":
            assert callable(info.load_set_function()), info.name
        if info.headline_divisor is not None:
            assert info.higher_is_better, f"{info.name}: a lower-is-better headline score"
    assert get_metric("fvd").needs_weights and get_metric("lpips").needs_weights
    assert not get_metric("psnr").needs_weights
    assert {m.name for m in METRICS if m.set_level} == {
        "fvd",
        "normalized_score",
        "policy_rank_correlation",
    }


@pytest.mark.parametrize("value", [0.0, 0.123456789, 0.5, 0.987654321, 1.0, 1.7, -0.2, 31.41])
def test_headline_scores_are_bit_identical_to_the_protocols_formulas(value: float) -> None:
    checked = 0
    for protocol in PROTOCOLS.names():
        cls = PROTOCOLS.get(protocol)
        for metric in cls.metrics:
            info = get_metric(metric)
            rollout = protocol in ("rollout", "recorded_rollout", "physics", "atari")
            if info.set_level or (not info.higher_is_better and not rollout):
                continue  # never a shipped headline; the catalogue gives these no score
            if metric in ("delta_psnr", "smoothness"):
                continue  # unbounded: no 0-100 score (the base formula gave 100 x dB)
            old = _old_headline(protocol, metric, value)
            new = headline_score(metric, value)
            if math.isnan(old):
                assert new is None, (protocol, metric)
            else:
                assert new == old, (protocol, metric)  # exact, not approx
            checked += 1
    assert checked >= 18


def test_headline_score_without_a_value() -> None:
    assert headline_score("psnr", math.nan) is None
    assert headline_score("psnr", None) is None
    assert headline_score("psnr", 60.0) == 100.0
    assert headline_score("position_error", 1.0) is None


def test_set_functions_compute_results_entries() -> None:
    records = [
        {"metrics": {"success": s, "random_success": r, "oracle_success": o}}
        for s, r, o in [(1.0, 0.0, 1.0), (0.0, 0.0, 1.0), (1.0, 0.5, 1.0)]
    ]
    entry = get_metric("normalized_score").load_set_function()(records)
    assert entry["value"] == pytest.approx((2 / 3 - 1 / 6) / (1.0 - 1 / 6))
    assert entry["set_level"] is True and entry["n"] == 3
    empty = get_metric("fvd").load_set_function()([{"metrics": {}}])
    assert empty["value"] is None and empty["n_missing"] == 1


def test_bad_entries_are_refused() -> None:
    with pytest.raises(ConfigError, match="expected level to be one of"):
        MetricInfo("x", "d", True, "", "frame", False, level="batch")
    with pytest.raises(ConfigError, match="set_function exactly when level is 'set'"):
        MetricInfo("x", "d", True, "", "frame", False, level="set")
    with pytest.raises(ConfigError, match="positive headline_divisor"):
        MetricInfo("x", "d", True, "", "frame", False, headline_divisor=0.0)


def test_ls_metrics_lists_every_catalogued_metric(capsys: pytest.CaptureFixture[str]) -> None:
    from panbench.cli import main

    assert main(["ls", "metrics"]) == 0
    out = capsys.readouterr().out
    for name in metric_names():
        assert name in out
