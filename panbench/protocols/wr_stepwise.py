"""WR-Arena step-wise simulation, judge-free: is the candidate nearest the prediction upstream's best?

From the sample's image and its one action, the model predicts; its last frame is compared with
the four candidate images (all made square by the task's aspect rule and resized to the task
resolution) and the nearest one is the model's choice. The score is 1 when that is upstream's
1-based ``best``; a tie among k nearest candidates that include ``best`` earns 1/k, so a model
that predicts nothing useful scores chance, not zero. Upstream compares V-JEPA embeddings by
cosine similarity; panbench uses a distance needing no model: pixel MSE (``distance: pixel``,
default) or LPIPS (``distance: lpips``, when its weights are present). The distance used is in
every record and in the task's results entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from panbench.data.episodes import Episode
from panbench.envs.base import Env
from panbench.protocols.base import ModelRunner, Record
from panbench.protocols.declare import Option
from panbench.protocols.wr_common import ImageProtocol

DISTANCES = ("pixel", "lpips")


def pixel_distances(pred: np.ndarray, choices: np.ndarray) -> np.ndarray:
    """Mean squared pixel difference of ``pred`` uint8 [H, W, 3] to each of ``choices``
    uint8 [N, H, W, 3]; returns float64 [N]."""
    d = choices.astype(np.float64) - pred.astype(np.float64)[None]
    return np.mean(d * d, axis=(1, 2, 3))


def nearest_choice_score(distances: np.ndarray, answer: int) -> tuple[float, list[int]]:
    """The score of a choice by nearest distance against the 1-based ``answer``.

    Returns:
        (score, the 1-based indices of the nearest candidates): 1/k when ``answer`` is among the
        k tied nearest, else 0.
    """
    nearest = np.flatnonzero(distances == distances.min())
    chosen = [int(i) + 1 for i in nearest]
    return (1.0 / len(chosen) if answer in chosen else 0.0), chosen


class WrStepwiseProtocol(ImageProtocol):
    """The nearest of four candidates to the prediction must be upstream's best (see ``options``)."""

    name: ClassVar[str] = "wr_stepwise"
    metrics: ClassVar[tuple[str, ...]] = ("choice_accuracy",)
    options: ClassVar[tuple[Option, ...]] = (
        Option("distance", str, "pixel", "how candidates are compared", choices=DISTANCES),
        Option("lpips_net", str, "alex", "LPIPS backbone (distance: lpips)"),
    )

    def __init__(self, task: Any, env: Env | None = None) -> None:
        super().__init__(task, env)
        self.distance: str = self.opts["distance"]
        self.lpips_net: str = self.opts["lpips_net"]
        if self.distance == "lpips":
            from panbench.weights import resolve

            # Refused up front (WeightsError names `panbench weights pull`), never swapped for
            # pixels silently: the distance decides the score.
            resolve({"alex": "alexnet", "vgg": "vgg16"}.get(self.lpips_net, self.lpips_net))

    def _distances(self, pred: np.ndarray, choices: np.ndarray) -> np.ndarray:
        if self.distance == "pixel":
            return pixel_distances(pred, choices)
        from panbench.metrics.lpips import lpips_video

        preds = np.repeat(pred[None, None], len(choices), axis=1)
        net: Literal["alex", "vgg"] = "vgg" if self.lpips_net == "vgg" else "alex"
        return np.asarray(lpips_video(preds, choices[None], net=net)[0], dtype=np.float64)

    def run_batch(self, runner: ModelRunner, batch: Sequence[Episode]) -> list[Record]:
        episodes = self.images(batch)
        state = runner.reset(episodes)
        actions = [e.actions[0] for e in episodes]
        _, frames = runner.step(state, actions, where=f"the step of task {self.task.name!r}")
        records: list[Record] = []
        for e, pred in zip(episodes, frames, strict=True):
            assert e.choices is not None
            answer = int(e.sample["answer"])
            dists = self._distances(pred, e.choices)
            score, chosen = nearest_choice_score(dists, answer)
            records.append(
                Record(
                    metrics={"choice_accuracy": score},
                    extra={
                        "sample_id": e.sample["id"],
                        "answer": answer,
                        "nearest": chosen,
                        "distances": [float(x) for x in dists],
                        "distance": self.distance,
                    },
                    frames=pred[None],
                )
            )
        return records

    def extra_results(self) -> dict[str, Any]:
        return {**super().extra_results(), "distance": self.distance}
