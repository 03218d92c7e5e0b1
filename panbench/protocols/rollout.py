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
from panbench.errors import ConfigError
from panbench.metrics import grounded
from panbench.metrics.frame import psnr_video, ssim_video
from panbench.metrics.fvd import fvd_from_records
from panbench.metrics.grounded import attribute_following, attributes_changed, tracking_accuracy
from panbench.protocols.base import ModelRunner, Protocol, Record, ReportedMetric

# Metric functions live in the metric catalogue's modules; re-exported for older imports.
__all__ = ["RolloutProtocol", "attribute_following", "fvd_from_records", "tracking_accuracy"]


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    finite = x[np.isfinite(x)]
    return float(finite.mean()) if finite.size else float("nan")


class RolloutProtocol(Protocol):
    """Options: ``lpips_net`` ("alex"), ``min_px`` (1.5), ``rel`` (0.25) for following tolerance."""

    name: ClassVar[str] = "rollout"
    metrics: ClassVar[dict[str, ReportedMetric]] = {
        m.name: m
        for m in (
            ReportedMetric("action_following", True, "all-or-nothing per step with a true effect"),
            ReportedMetric("hold_accuracy", True, "steps with no true effect: nothing changes"),
            ReportedMetric("change_following", True, "action following incl. colours/background"),
            ReportedMetric("position_error", False, "px between perceived and true entity centres"),
            ReportedMetric("presence_accuracy", True, "object permanence: presence matches truth"),
            ReportedMetric("tracking_accuracy", True, "slots shown where they truly are (<= px)"),
            ReportedMetric("psnr", True, "dB, per frame, capped at 100"),
            ReportedMetric("ssim", True, "per frame"),
            ReportedMetric("lpips", False, "LPIPS v0.1 distance per frame"),
            ReportedMetric(
                "fvd",
                False,
                "FVD_n over 16-frame windows (set-level; mean over windows)",
                per_step=False,
                set_level=True,
            ),
        )
    }

    def __init__(self, task: Any, env: Env) -> None:
        super().__init__(task, env)
        self.skipped: dict[str, str] = {}
        opts = task.options
        self.min_px = float(opts.get("min_px", grounded.DEFAULT_MIN_PX))
        self.rel = float(opts.get("rel", grounded.DEFAULT_REL))
        self.lpips_net = str(opts.get("lpips_net", "alex"))
        if self.lpips_net not in ("alex", "vgg"):
            raise ConfigError(
                f"Task {task.name!r}: expected options.lpips_net 'alex' or 'vgg', "
                f"but got {self.lpips_net!r}."
            )
        self.track_px = float(opts.get("track_px", 2.0))
        self.fvd_clip = int(opts.get("fvd_clip", 16))
        self.fvd_stride = int(opts.get("fvd_stride", self.fvd_clip))
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

    def set_metrics(self, records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Set-level metrics computed over all episodes: FVD_n (see :func:`fvd_from_records`)."""
        if "fvd" not in self.task.metrics or "fvd" in self.skipped:
            return {}
        return {"fvd": fvd_from_records(records)}

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

    def headline(self, means: dict[str, float]) -> float:
        value = means[self.task.headline]
        if self.task.headline == "psnr":
            return float(np.clip(100.0 * value / 50.0, 0.0, 100.0))  # 50 dB counts as perfect
        if not self.metrics[self.task.headline].higher_is_better:
            return float("nan")  # lower-is-better metrics are not headline material
        return float(np.clip(100.0 * value, 0.0, 100.0))
