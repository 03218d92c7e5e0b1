"""Open-loop rollout: the model imagines the whole horizon under the true actions; score each step.

Used by action-fidelity tasks (``agent-sim``, ``env-sim``) and long-horizon tasks. Per step it
scores pixels (PSNR, SSIM, LPIPS when its weights are present) and, through ``env.perceive`` of
each predicted frame, the grounded metrics: action following, hold accuracy, position error,
presence accuracy (object permanence) and, for envs with discrete attributes (colours,
background), change following. Every per-step metric is stored as a curve, so each also yields a
drift curve over the horizon.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from panbench.data.episodes import Episode
from panbench.envs.base import Env
from panbench.metrics import grounded
from panbench.metrics.frame import psnr_video, ssim_video
from panbench.metrics.fvd import fvd_from_records
from panbench.metrics.grounded import attribute_following, attributes_changed, tracking_accuracy
from panbench.protocols.base import ModelRunner, Protocol, Record
from panbench.protocols.declare import Option

# Metric functions live in the metric catalogue's modules; re-exported for older imports.
__all__ = ["RolloutProtocol", "attribute_following", "fvd_from_records", "tracking_accuracy"]


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    finite = x[np.isfinite(x)]
    return float(finite.mean()) if finite.size else float("nan")


def add_curves(record: Record, curves: dict[str, np.ndarray], values: dict[str, float]) -> None:
    """Adds per-step ``curves`` (each also as its NaN-skipping mean) and per-episode ``values``
    to a record that :meth:`RolloutProtocol.run_batch` scored: what the protocols built on the
    rollout report beyond it."""
    record_curves = record.curves if record.curves is not None else {}
    for key, curve in curves.items():
        record.metrics[key] = _nanmean(curve)
        record_curves[key] = [float(x) for x in curve]
    record.curves = record_curves
    record.metrics.update(values)


class RolloutProtocol(Protocol):
    """Open-loop rollout under the true actions, scored per step (options: see ``options``)."""

    name: ClassVar[str] = "rollout"
    metrics: ClassVar[tuple[str, ...]] = (
        "action_following",
        "hold_accuracy",
        "change_following",
        "position_error",
        "presence_accuracy",
        "tracking_accuracy",
        "psnr",
        "ssim",
        "lpips",
        "fvd",
    )
    options: ClassVar[tuple[Option, ...]] = (
        Option("lpips_net", str, "alex", "LPIPS backbone", choices=("alex", "vgg")),
        Option(
            "min_px", float, grounded.DEFAULT_MIN_PX, "following tolerance floor, px", minimum=0
        ),
        Option("rel", float, grounded.DEFAULT_REL, "relative following tolerance", minimum=0),
        Option("track_px", float, 2.0, "tracking_accuracy: distance counted as tracked, px"),
        Option("fvd_clip", int, 16, "frames per FVD window", minimum=1),
        Option(
            "fvd_stride", int, None, "frames between FVD windows (default: fvd_clip)", minimum=1
        ),
    )

    def __init__(self, task: Any, env: Env) -> None:
        super().__init__(task, env)
        self.skipped: dict[str, str] = {}
        opts = self.opts
        self.min_px = opts["min_px"]
        self.rel = opts["rel"]
        self.lpips_net = opts["lpips_net"]
        self.track_px = opts["track_px"]
        self.fvd_clip = opts["fvd_clip"]
        self.fvd_stride = opts["fvd_stride"] or self.fvd_clip
        self._i3d: Any = None
        if "fvd" in task.metrics:
            from panbench.weights import WeightsError

            if task.episodes.horizon < self.fvd_clip:
                self.skipped["fvd"] = (
                    f"horizon {task.episodes.horizon} is shorter than one {self.fvd_clip}-frame "
                    "FVD window"
                )
            else:
                try:
                    from panbench.metrics.fvd import load_i3d

                    self._i3d = load_i3d()
                except WeightsError as err:
                    self.skipped["fvd"] = str(err)
        if "lpips" in task.metrics:
            from panbench.weights import WeightsError, resolve

            try:
                resolve({"alex": "alexnet", "vgg": "vgg16"}[self.lpips_net])
            except WeightsError as err:
                self.skipped["lpips"] = str(err)

    def run_batch(self, runner: ModelRunner, episodes: Sequence[Episode]) -> list[Record]:
        horizon = len(episodes[0].actions)
        res = runner.resolution
        state = runner.reset(episodes)
        preds = np.empty((len(episodes), horizon, res, res, 3), dtype=np.uint8)
        for t in range(horizon):
            actions = [e.actions[t] for e in episodes]
            state, frames = runner.step(
                state, actions, where=f"step {t} of task {self.task.name!r}"
            )
            preds[:, t] = frames
        return [self._score(e, preds[i]) for i, e in enumerate(episodes)]

    def _score(self, episode: Episode, pred: np.ndarray) -> Record:
        """Scores one episode's predicted frames uint8 [T, H, W, 3] against its truth."""
        wanted = set(self.task.metrics) - set(self.skipped)
        curves: dict[str, np.ndarray] = {}
        truth = episode.frames
        if "psnr" in wanted:
            curves["psnr"] = psnr_video(pred[None], truth[None])[0].numpy()
        if "ssim" in wanted:
            curves["ssim"] = ssim_video(pred[None], truth[None])[0].numpy()
        if "lpips" in wanted:
            from panbench.metrics.lpips import lpips_video

            net: Literal["alex", "vgg"] = "vgg" if self.lpips_net == "vgg" else "alex"
            curves["lpips"] = lpips_video(pred[None], truth[None], net=net)[0].numpy()
        grounded_wanted = wanted & {
            "action_following",
            "hold_accuracy",
            "change_following",
            "position_error",
            "presence_accuracy",
            "tracking_accuracy",
        }
        if grounded_wanted:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices are expected
                curves.update(self._grounded(episode, pred, grounded_wanted))
        record = Record(
            metrics={k: _nanmean(v) for k, v in curves.items()},
            curves={k: [float(x) for x in v] for k, v in curves.items()},
            frames=pred,
        )
        if "fvd" in wanted:
            record.extra["features"] = {"fvd": self._fvd_features(pred, truth)}
        return record

    def _fvd_features(self, pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
        """I3D features of every FVD window of one episode, predicted and true.

        Stored in the episode's record so the set-level FVD_n is recomputable from the samples.
        """
        from panbench.metrics.fvd import i3d_features, to_detector_clips

        offsets = list(range(0, len(truth) - self.fvd_clip + 1, self.fvd_stride))
        out: dict[str, Any] = {"clip": self.fvd_clip, "offsets": offsets, "pred": [], "true": []}
        for offset in offsets:
            for key, video in (("pred", pred), ("true", truth)):
                clips = to_detector_clips(video[None], self.fvd_clip, offset)
                feats = i3d_features(clips, self._i3d)[0]
                out[key].append([float(x) for x in feats])
        return out

    def _grounded(
        self, episode: Episode, pred: np.ndarray, wanted: set[str]
    ) -> dict[str, np.ndarray]:
        env = self.env
        p_list = env.perceive_batch(pred)
        t_list = [env.observe(s) for s in episode.states]
        ctx = env.observe(episode.context_states[-1])
        p_obs = grounded.stack_observations(p_list)
        t_obs = grounded.stack_observations(t_list)
        out: dict[str, np.ndarray] = {}
        kw = {"min_px": self.min_px, "rel": self.rel}
        following = grounded.action_following(p_obs, t_obs, ctx, **kw)
        if "action_following" in wanted:
            out["action_following"] = following
        if "hold_accuracy" in wanted:
            out["hold_accuracy"] = grounded.hold_accuracy(p_obs, t_obs, ctx, **kw)
        if "change_following" in wanted:
            # Geometry rule of action_following, plus every discrete attribute; scored on the
            # steps where the truth changes anything (geometry or attributes).
            # Exactly one of the two is defined (non-NaN) at each step.
            hold = grounded.hold_accuracy(p_obs, t_obs, ctx, **kw)
            followed = np.where(np.isnan(following), hold, following) == 1.0
            attrs_ok = attribute_following(p_list, t_list, ctx)
            changed = grounded.changed_steps(t_obs, ctx, min_px=self.min_px) | attributes_changed(
                t_list, ctx
            )
            out["change_following"] = np.where(changed, (followed & attrs_ok).astype(float), np.nan)
        if "position_error" in wanted:
            out["position_error"] = grounded.position_error(p_obs, t_obs)
        if "presence_accuracy" in wanted:
            out["presence_accuracy"] = grounded.presence_accuracy(p_obs, t_obs)
        if "tracking_accuracy" in wanted:
            out["tracking_accuracy"] = tracking_accuracy(p_obs, t_obs, self.track_px)
        return out
