"""WR-Arena transition smoothness, judge-free: optical-flow smoothness of a 10-round rollout.

From the sample's image the model rolls out one round per prompt. Each round's clip (the frame
it starts from, then the model's k frames; see :mod:`panbench.protocols.wr_common`) is scored
with :func:`panbench.metrics.smoothness.smoothness_details`: ``median|v| * exp(-lam *
median|dv|)`` over its optical flow. As upstream, a sample's score is the mean over its rounds
and the task's the mean over samples. The flow estimator (``options.flow``, default OpenCV's
Farneback, offline) is named in the results: Farneback numbers are not comparable with
WR-Arena's SEA-RAFT numbers (``flow: sea-raft`` where its weights are present).

Smoothness is in pixels per frame at the task resolution and rewards motion (a static video
scores 0), so it has no 0-100 headline score; leaderboards show the raw value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from panbench.data.episodes import Episode
from panbench.envs.base import Env
from panbench.protocols.base import ModelRunner, Record
from panbench.protocols.declare import Option
from panbench.protocols.wr_common import ImageProtocol, rollout_clips


class WrSmoothnessProtocol(ImageProtocol):
    """Optical-flow smoothness of every round of a rollout (options: see ``options``)."""

    name: ClassVar[str] = "wr_smoothness"
    metrics: ClassVar[tuple[str, ...]] = ("smoothness",)
    options: ClassVar[tuple[Option, ...]] = (
        Option("flow", str, "farneback", "optical-flow estimator (a registered one)"),
        Option("flow_args", dict, None, "the estimator's options"),
        Option("lam", float, 1.0, "weight of the speed-change penalty", minimum=0),
    )

    def __init__(self, task: Any, env: Env | None = None) -> None:
        super().__init__(task, env)
        from panbench.metrics.flow import estimator_provenance, make_flow_estimator

        self.lam: float = self.opts["lam"]
        self.estimator = make_flow_estimator(self.opts["flow"], **(self.opts["flow_args"] or {}))
        self.flow = estimator_provenance(self.estimator)

    def run_batch(self, runner: ModelRunner, batch: Sequence[Episode]) -> list[Record]:
        from panbench.metrics.smoothness import smoothness_details

        episodes = self.images(batch)
        rounds = self.task.episodes.horizon
        clips = rollout_clips(runner, episodes, rounds, where=f"task {self.task.name!r}")
        records: list[Record] = []
        for e, episode_clips in zip(episodes, clips, strict=True):
            details = [smoothness_details(c, self.estimator, self.lam) for c in episode_clips]
            scores = [d.score for d in details]
            records.append(
                Record(
                    metrics={"smoothness": float(np.mean(scores))},
                    curves={"smoothness": scores},
                    extra={
                        "sample_id": e.sample["id"],
                        "rounds": [
                            {"vmag_median": d.vmag_median, "amag_median": d.amag_median}
                            for d in details
                        ],
                    },
                    frames=np.concatenate([c[1:] for c in episode_clips]),
                )
            )
        return records

    def extra_results(self) -> dict[str, Any]:
        """The flow estimator and lambda behind the numbers, and where the data came from."""
        return {**super().extra_results(), "flow": self.flow, "lam": self.lam}
