"""The metric catalogue: every metric's name, direction, unit and one-line description.

``panbench ls metrics`` prints it, results files take ``higher_is_better`` from it, and
:func:`get_metric` resolves a name (with "Did you mean" for typos) to its entry. Implementations
are named by lazy ``"module:attr"`` strings so reading the catalogue imports no network weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from panbench.errors import UnknownNameError
from panbench.registry import did_you_mean, import_string


@dataclass(frozen=True)
class MetricInfo:
    """One metric of the catalogue.

    Attributes:
        name: the key used in task specs and results files.
        description: one line saying what it measures.
        higher_is_better: the metric's direction.
        unit: unit of the values ("dB", "px", "fraction", "" for unitless).
        family: "frame" (pixels against pixels), "set" (distributions of videos), "grounded"
            (perceived entities against the true state) or "video" (the prediction alone, no
            reference).
        per_step: True if it yields one value per step (and hence a drift curve).
        metric_class: lazy ``"module:Class"`` path of the torchmetrics-style class.
        function: lazy ``"module:function"`` path of the functional twin.
    """

    name: str
    description: str
    higher_is_better: bool
    unit: str
    family: str
    per_step: bool
    metric_class: str
    function: str

    def load_class(self) -> Any:
        """Imports and returns the metric class."""
        return import_string(self.metric_class)

    def load_function(self) -> Any:
        """Imports and returns the functional twin."""
        return import_string(self.function)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_M = "panbench.metrics"

METRICS: tuple[MetricInfo, ...] = (
    MetricInfo(
        "psnr",
        "Peak signal-to-noise ratio of each predicted frame against the true one, capped at 100 dB.",
        True,
        "dB",
        "frame",
        True,
        f"{_M}.frame:PSNR",
        f"{_M}.frame:psnr_video",
    ),
    MetricInfo(
        "ssim",
        "Structural similarity of each predicted frame (gaussian 11/1.5, valid region, RGB mean).",
        True,
        "",
        "frame",
        True,
        f"{_M}.frame:SSIM",
        f"{_M}.frame:ssim_video",
    ),
    MetricInfo(
        "lpips",
        "Learned perceptual distance of each predicted frame from the true one (pretrained net).",
        False,
        "",
        "frame",
        True,
        f"{_M}.lpips:LPIPS",
        f"{_M}.lpips:lpips_video",
    ),
    MetricInfo(
        "fvd",
        "Frechet video distance between I3D features of predicted and true clips (set-level).",
        False,
        "",
        "set",
        False,
        f"{_M}.fvd:FVD",
        f"{_M}.fvd:fvd",
    ),
    MetricInfo(
        "position_error",
        "Mean distance between perceived and true entity positions, over entities shown in both.",
        False,
        "px",
        "grounded",
        True,
        f"{_M}.grounded:PositionError",
        f"{_M}.grounded:position_error",
    ),
    MetricInfo(
        "miss_rate",
        "Fraction of truly present entities that the predicted frame does not show.",
        False,
        "fraction",
        "grounded",
        True,
        f"{_M}.grounded:MissRate",
        f"{_M}.grounded:miss_rate",
    ),
    MetricInfo(
        "presence_accuracy",
        "Object permanence: fraction of entity slots whose presence matches the truth.",
        True,
        "fraction",
        "grounded",
        True,
        f"{_M}.grounded:PresenceAccuracy",
        f"{_M}.grounded:presence_accuracy",
    ),
    MetricInfo(
        "action_following",
        "Fraction of steps with a true effect whose every entity change the prediction reproduces.",
        True,
        "fraction",
        "grounded",
        True,
        f"{_M}.grounded:ActionFollowing",
        f"{_M}.grounded:action_following",
    ),
    MetricInfo(
        "hold_accuracy",
        "Fraction of steps without a true effect on which the prediction also changes nothing.",
        True,
        "fraction",
        "grounded",
        True,
        f"{_M}.grounded:HoldAccuracy",
        f"{_M}.grounded:hold_accuracy",
    ),
    MetricInfo(
        "smoothness",
        "WR-Arena transition smoothness per round: median flow speed x exp(-median speed change).",
        True,
        "px/frame",
        "video",
        True,
        f"{_M}.smoothness:Smoothness",
        f"{_M}.smoothness:smoothness_rounds",
    ),
)

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
