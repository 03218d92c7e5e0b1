"""Metrics: per-frame fidelity, grounded entity metrics, drift curves and statistics.

Every per-step metric has a functional twin returning ``[B, T]`` values and a torchmetrics-style
class whose ``curve()`` gives the drift curve; :mod:`panbench.metrics.registry` lists them all
(the one metric catalogue). See docs/metrics.md for definitions and conventions.

The names below are imported on first use (PEP 562): reading the catalogue (``panbench ls
metrics``, results, leaderboards, compare) must not pay for torch and torchmetrics, which take
seconds to import. ``panbench.metrics.lpips`` and ``panbench.metrics.fvd`` are the modules; the
functions of the same name live in them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the submodule that defines it
_EXPORTS: dict[str, str] = {
    "ActionFollowing": "grounded",
    "CI": "stats",
    "Curve": "drift",
    "DriftSummary": "drift",
    "FVD": "fvd",
    "HoldAccuracy": "grounded",
    "LPIPS": "lpips",
    "METRICS": "registry",
    "MetricInfo": "registry",
    "MissRate": "grounded",
    "PSNR": "frame",
    "PairedComparison": "stats",
    "PerStepMean": "drift",
    "PerStepMetric": "drift",
    "PositionError": "grounded",
    "PresenceAccuracy": "grounded",
    "SSIM": "frame",
    "SmallSampleWarning": "stats",
    "SplitStats": "stats",
    "action_following": "grounded",
    "bootstrap_ci": "stats",
    "changed_steps": "grounded",
    "curve_auc": "drift",
    "curve_mean": "drift",
    "curve_slope": "drift",
    "drift_curve": "drift",
    "entity_position_errors": "grounded",
    "first_crossing": "drift",
    "frechet_distance": "fvd",
    "get_metric": "registry",
    "hold_accuracy": "grounded",
    "lpips_video": "lpips",
    "metric_names": "registry",
    "miss_rate": "grounded",
    "paired_bootstrap": "stats",
    "position_error": "grounded",
    "presence_accuracy": "grounded",
    "psnr_video": "frame",
    "split_stats": "stats",
    "ssim_video": "frame",
    "stack_observations": "grounded",
    "summarize_drift": "drift",
    "warn_if_small": "stats",
}

if TYPE_CHECKING:  # what a type checker and an IDE see; nothing here runs
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
    from panbench.metrics.fvd import FVD, frechet_distance
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
    from panbench.metrics.lpips import LPIPS, lpips_video
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


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
    "get_metric",
    "hold_accuracy",
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
