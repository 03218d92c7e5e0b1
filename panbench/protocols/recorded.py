"""Open-loop prediction on recorded data, with the recorded actions; scored on pixels and actions.

The protocol of tasks imported from recorded data (``panbench tasks import lerobot|videos|
episodes``; sources ``lerobot``, ``videos``, ``episodes``). From each episode's recorded context
the model imagines the horizon under the recorded actions, in whichever representation it
declares (vector, index or text); each step is scored against the recorded frame with PSNR, SSIM,
LPIPS (when its weights are present) and, over the set, FVD (when the I3D weights are present and
the horizon holds a window), each with a drift curve. Action sensitivity replays the same context
under the actions of another recording (chosen at import): the mean absolute difference between
the two predictions (0 for a model that ignores its actions), and delta-PSNR, how much nearer
the truth the prediction under the recorded actions is than under the other ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from panbench.data.episodes import Episode
from panbench.metrics.frame import psnr_video
from panbench.protocols.base import ModelRunner, Record
from panbench.protocols.rollout import RolloutProtocol

__all__ = ["RECORDED_KINDS", "RecordedRolloutProtocol", "action_sensitivity"]

RECORDED_KINDS = ("lerobot", "videos", "episodes")


def action_sensitivity(pred_a: np.ndarray, pred_b: np.ndarray) -> np.ndarray:
    """Per step, mean |pred_a - pred_b| / 255 over pixels and channels.

    Args:
        pred_a: uint8 [T, H, W, 3], the prediction under the recorded actions.
        pred_b: uint8 [T, H, W, 3], the same context under another episode's actions.

    Returns:
        float64 [T] in [0, 1]; all zeros when the two predictions are equal.
    """
    diff = np.abs(pred_a.astype(np.int16) - pred_b.astype(np.int16))
    return diff.reshape(len(diff), -1).mean(axis=1) / 255.0


class RecordedRolloutProtocol(RolloutProtocol):
    """Open-loop rollout on recorded data under the recorded actions, plus action sensitivity.

    Episodes come from a recorded source (:class:`panbench.data.recorded.RecordedSource`), whose
    episodes carry another recording's actions (``alt_actions``) where the data has one.
    """

    name: ClassVar[str] = "recorded_rollout"
    sources: ClassVar[tuple[str, ...]] = RECORDED_KINDS
    metrics: ClassVar[tuple[str, ...]] = (
        "psnr",
        "ssim",
        "lpips",
        "fvd",
        "action_sensitivity",
        "delta_psnr",
    )

    def run_batch(self, runner: ModelRunner, episodes: Sequence[Episode]) -> list[Record]:
        horizon = len(episodes[0].actions)
        res = runner.resolution
        wanted = {"action_sensitivity", "delta_psnr"} & set(self.task.metrics)
        alts = [getattr(e, "alt_actions", None) for e in episodes]
        sensitive = bool(wanted) and any(a is not None for a in alts)
        # an episode without another recording's actions replays its own; its values are NaN
        alt_actions = [
            a if a is not None else e.actions for a, e in zip(alts, episodes, strict=True)
        ]
        state = runner.reset(episodes)
        alt_state = runner.clone(state) if sensitive else None
        preds = np.empty((len(episodes), horizon, res, res, 3), dtype=np.uint8)
        alt_preds = np.empty_like(preds) if sensitive else None
        name = self.task.name
        for t in range(horizon):
            state, preds[:, t] = runner.step(
                state, [e.actions[t] for e in episodes], where=f"step {t} of task {name!r}"
            )
            if alt_preds is not None:
                where = f"step {t} under another episode's actions, task {name!r}"
                alt_state, alt_preds[:, t] = runner.step(
                    alt_state, [a[t] for a in alt_actions], where=where
                )
        records = [self._score(e, preds[i]) for i, e in enumerate(episodes)]
        for i, (e, rec) in enumerate(zip(episodes, records, strict=True)):
            if alt_preds is None or alts[i] is None:
                rec.metrics.update(dict.fromkeys(wanted, float("nan")))
                continue
            if "action_sensitivity" in wanted:
                curve = action_sensitivity(preds[i], alt_preds[i])
                rec.metrics["action_sensitivity"] = float(curve.mean())
                rec.curves = {**(rec.curves or {}), "action_sensitivity": [float(x) for x in curve]}
            if "delta_psnr" in wanted:
                own = psnr_video(preds[i][None], e.frames[None])[0].numpy()
                other = psnr_video(alt_preds[i][None], e.frames[None])[0].numpy()
                rec.metrics["delta_psnr"] = float(own.mean() - other.mean())
        return records
