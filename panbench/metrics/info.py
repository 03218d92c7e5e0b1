"""The catalogue entry type: what one reported metric is, how it reads and how it is aggregated."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from panbench.errors import ConfigError
from panbench.registry import import_string

#: how a metric is aggregated over a task's episodes
LEVELS = ("episode", "set")


@dataclass(frozen=True)
class MetricInfo:
    """One metric of the catalogue.

    Attributes:
        name: the key used in task specs, samples and results files.
        description: one line saying what it measures.
        higher_is_better: the metric's direction.
        unit: unit of the values ("dB", "px", "fraction", "" for unitless).
        family: "frame" (pixels against pixels), "set" (distributions of videos), "physics"
            (object masks and outcomes of a 3D scene), "grounded"
            (perceived entities against the true state), "video" (the prediction alone, no
            reference), "choice", "planning" or "judged".
        per_step: True if it yields one value per step (and hence a drift curve).
        metric_class: lazy ``"module:Class"`` path of the torchmetrics-style class, if any.
        function: lazy ``"module:function"`` path of the functional twin, if any.
        level: "episode" (one value per episode, aggregated with a bootstrap CI) or "set"
            (computed once over all of a task's episodes, e.g. FVD).
        range: (low, high) bounds of the values; None for an open side.
        needs_weights: whether computing it needs pretrained network weights.
        headline_divisor: the task headline score is ``clip(100 * mean / divisor, 0, 100)``;
            None when the metric gives no 0-100 score (lower-is-better or unbounded).
        set_function: for set-level metrics, lazy ``"module:function"`` computing the metric's
            results entry from the list of per-episode records.
    """

    name: str
    description: str
    higher_is_better: bool
    unit: str
    family: str
    per_step: bool
    metric_class: str | None = None
    function: str | None = None
    level: str = "episode"
    range: tuple[float | None, float | None] = (None, None)
    needs_weights: bool = False
    headline_divisor: float | None = None
    set_function: str | None = None

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ConfigError(
                f"Metric {self.name!r}: expected level to be one of {', '.join(LEVELS)}, "
                f"but got {self.level!r}."
            )
        if (self.level == "set") != (self.set_function is not None):
            raise ConfigError(
                f"Metric {self.name!r}: expected a set_function exactly when level is 'set', "
                f"but got level {self.level!r} and set_function {self.set_function!r}."
            )
        if self.headline_divisor is not None and not self.headline_divisor > 0:
            raise ConfigError(
                f"Metric {self.name!r}: expected a positive headline_divisor, but got "
                f"{self.headline_divisor!r}."
            )

    @property
    def set_level(self) -> bool:
        """Whether the metric is computed once over all episodes (``level == "set"``)."""
        return self.level == "set"

    def load_class(self) -> Any:
        """Imports and returns the metric class."""
        if self.metric_class is None:
            raise ConfigError(f"Metric {self.name!r} has no metric class.")
        return import_string(self.metric_class)

    def load_function(self) -> Any:
        """Imports and returns the functional twin."""
        if self.function is None:
            raise ConfigError(f"Metric {self.name!r} has no functional twin.")
        return import_string(self.function)

    def load_set_function(self) -> Any:
        """Imports and returns the set-level function ``(records) -> results entry``."""
        if self.set_function is None:
            raise ConfigError(f"Metric {self.name!r} is not set-level; it has no set function.")
        return import_string(self.set_function)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["range"] = list(self.range)
        return out
