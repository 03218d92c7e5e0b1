"""Metrics: per-frame fidelity, grounded entity metrics, drift curves and statistics.

Every per-step metric has a functional twin returning ``[B, T]`` values and a torchmetrics-style
class whose ``curve()`` gives the drift curve; :mod:`panbench.metrics.registry` lists them all.
See docs/metrics.md for definitions and conventions.
"""

from __future__ import annotations

from typing import Any

from panbench.metrics.drift import (
    Curve,
    DriftSummary,
    PerStepMean,
    PerStepMetric,
    curve_auc,
    curve_mean,
    curve_slope,
    drift_curve,
    first_crossing,
    summarize_drift,
)
from panbench.metrics.frame import PSNR, SSIM, psnr_video, ssim_video
from panbench.metrics.grounded import (
    ActionFollowing,
    HoldAccuracy,
    MissRate,
    PositionError,
    PresenceAccuracy,
    action_following,
    changed_steps,
    entity_position_errors,
    hold_accuracy,
    miss_rate,
    position_error,
    presence_accuracy,
    stack_observations,
)
from panbench.metrics.registry import METRICS, MetricInfo, get_metric, metric_names
from panbench.metrics.stats import (
    CI,
    PairedComparison,
    SmallSampleWarning,
    SplitStats,
    bootstrap_ci,
    paired_bootstrap,
    split_stats,
    warn_if_small,
)

# LPIPS and FVD live in modules named like their functions. Importing them here (guarded, so this
# package imports while they are absent) rebinds ``lpips``/``fvd`` to the functions for good;
# a lazy __getattr__ alone would be bypassed once anything imported the submodule, which binds
# the module object to the same name.
_MISSING: dict[str, str] = {}
try:
    from panbench.metrics.lpips import LPIPS, lpips, lpips_video
except ModuleNotFoundError as err:  # pragma: no cover - only while lpips.py does not exist
    if err.name != "panbench.metrics.lpips":
        raise
    _MISSING.update(LPIPS="lpips", lpips="lpips", lpips_video="lpips")
try:
    from panbench.metrics.fvd import FVD, frechet_distance, fvd
except ModuleNotFoundError as err:  # pragma: no cover - only while fvd.py does not exist
    if err.name != "panbench.metrics.fvd":
        raise
    _MISSING.update(FVD="fvd", fvd="fvd", frechet_distance="fvd")


def __getattr__(name: str) -> Any:
    if name in _MISSING:
        raise ImportError(
            f"panbench.metrics.{name} is unavailable: module panbench.metrics.{_MISSING[name]} "
            "is not installed."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CI",
    "FVD",
    "LPIPS",
    "METRICS",
    "PSNR",
    "SSIM",
    "ActionFollowing",
    "Curve",
    "DriftSummary",
    "HoldAccuracy",
    "MetricInfo",
    "MissRate",
    "PairedComparison",
    "PerStepMean",
    "PerStepMetric",
    "PositionError",
    "PresenceAccuracy",
    "SmallSampleWarning",
    "SplitStats",
    "action_following",
    "bootstrap_ci",
    "changed_steps",
    "curve_auc",
    "curve_mean",
    "curve_slope",
    "drift_curve",
    "entity_position_errors",
    "first_crossing",
    "frechet_distance",
    "fvd",
    "get_metric",
    "hold_accuracy",
    "lpips",
    "lpips_video",
    "metric_names",
    "miss_rate",
    "paired_bootstrap",
    "position_error",
    "presence_accuracy",
    "psnr_video",
    "split_stats",
    "ssim_video",
    "stack_observations",
    "summarize_drift",
    "warn_if_small",
]
