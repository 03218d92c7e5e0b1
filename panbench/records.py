"""The per-episode record a protocol returns and the harness writes as one samples line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from panbench.errors import DataError

__all__ = ["RESERVED_KEYS", "SampleRecord"]

#: keys of a samples line the harness owns (episode identity) or the record's typed fields fill
RESERVED_KEYS = frozenset({"index", "episode_id", "hash", "seed", "metrics", "curves"})


@dataclass
class SampleRecord:
    """One episode's scores, as a protocol's ``run_batch`` returns them.

    Only ``metrics``, ``curves`` and ``extra`` become data (one line of
    ``samples/<task>.jsonl``); ``frames`` and ``pending`` are for the harness alone.

    Attributes:
        metrics: per-episode metric values by catalogue name (NaN: not measurable here).
        curves: per-step values by metric name, the drift curves; ``None`` writes no
            ``curves`` field at all (a protocol without per-step values), which is not the same
            line as an empty object.
        extra: protocol-specific JSON fields of the line (e.g. FVD ``features``, a planning
            episode's ``actions`` and ``compute``); they may not use :data:`RESERVED_KEYS`.
        frames: predicted frames uint8 [T, H, W, 3] for ``--save-videos``; never written.
        pending: ids of judge items still awaiting a judgement (a human judge). A pending
            episode is not finished: the harness writes no line for it, and a rerun with the
            judgements scores it again.
    """

    metrics: dict[str, float]
    curves: dict[str, list[float]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    frames: np.ndarray | None = None
    pending: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        clash = sorted(RESERVED_KEYS & set(self.extra))
        if clash:
            raise DataError(
                f"Expected extra record fields other than {sorted(RESERVED_KEYS)}, but got {clash}."
            )

    def to_json(self) -> dict[str, Any]:
        """The record's data fields, without the episode identity (not yet strict JSON)."""
        out: dict[str, Any] = {"metrics": self.metrics}
        if self.curves is not None:
            out["curves"] = self.curves
        out.update(self.extra)
        return out

    def sample_line(self, identity: Mapping[str, Any]) -> dict[str, Any]:
        """The samples line: the episode's identity (index, id, hash, seed) and the data."""
        return {**identity, **self.to_json()}
