"""Physical outcomes: an open-loop rollout of a 3D scene, scored on what happened to each object.

The model sees the first frames of a scene (an event under way: a ball rolling at a cube, a cube
sliding towards an edge, an object passing behind a wall) and predicts the rest under the
recorded actions. On top of everything :class:`RolloutProtocol` scores per step, it reports the
outcome category of every object at the end (still, moved, gone; all must match), the final
position error, and Physics-IQ's mask scores computed on exact object masks (see
:mod:`panbench.metrics.physics`). The mask scores need an env with object masks
(``true_masks(state)`` and ``object_masks(frame)``, as ``table3d`` has).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from panbench.data.episodes import Episode
from panbench.envs.base import Env
from panbench.errors import ConfigError
from panbench.metrics import grounded, physics
from panbench.protocols.base import Record
from panbench.protocols.declare import Option
from panbench.protocols.rollout import RolloutProtocol, add_curves

_MASK_METRICS = ("spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou")


class PhysicsProtocol(RolloutProtocol):
    """Rollout plus physical outcome and Physics-IQ mask scores (options: see ``options``)."""

    name: ClassVar[str] = "physics"
    metrics: ClassVar[tuple[str, ...]] = (
        *RolloutProtocol.metrics,
        "outcome_accuracy",
        "mover_tracking",
        "final_position_error",
        *_MASK_METRICS,
        "mse",
    )
    options: ClassVar[tuple[Option, ...]] = (
        *RolloutProtocol.options,
        Option("move_px", float, 2.0, "outcome: displacement counted as moved, px", minimum=0),
    )

    def __init__(self, task: Any, env: Env) -> None:
        super().__init__(task, env)
        self.move_px = self.opts["move_px"]
        wanted = set(task.metrics) & set(_MASK_METRICS)
        if wanted and not all(hasattr(env, m) for m in ("true_masks", "object_masks")):
            raise ConfigError(
                f"Task {task.name!r}: expected an env with object masks (true_masks and "
                f"object_masks) for {', '.join(sorted(wanted))}, but env {env.name!r} has none."
            )

    def _score(self, episode: Episode, pred: np.ndarray) -> Record:
        record = super()._score(episode, pred)
        wanted = set(self.task.metrics)
        env: Any = self.env  # table3d-like: observe, perceive and object masks
        curves: dict[str, np.ndarray] = {}
        values: dict[str, float] = {}
        if wanted & {"outcome_accuracy", "final_position_error"}:
            start = env.observe(episode.context_states[-1])
            true_end = env.observe(episode.states[-1])
            pred_end = env.perceive(pred[-1])
            if "outcome_accuracy" in wanted:
                values["outcome_accuracy"] = physics.outcome_match(
                    start, pred_end, true_end, self.move_px
                )
            if "final_position_error" in wanted:
                err = grounded.position_error(
                    grounded.stack_observations([pred_end]), grounded.stack_observations([true_end])
                )
                values["final_position_error"] = float(err[0])
        if wanted & set(_MASK_METRICS):
            true_masks = np.stack(
                [env.true_masks(s) for s in [episode.context_states[-1], *episode.states]]
            )
            pred_masks = np.stack([true_masks[0], *(env.object_masks(f) for f in pred)])
            t_motion = physics.motion_masks(true_masks)
            p_motion = physics.motion_masks(pred_masks)
            if "spatiotemporal_iou" in wanted:
                curves["spatiotemporal_iou"] = physics.spatiotemporal_iou(p_motion, t_motion)
            if "spatial_iou" in wanted:
                values["spatial_iou"] = physics.spatial_iou(p_motion, t_motion)
            if "weighted_spatial_iou" in wanted:
                values["weighted_spatial_iou"] = physics.weighted_spatial_iou(p_motion, t_motion)
        if "mover_tracking" in wanted:
            truth = grounded.stack_observations([env.observe(s) for s in episode.states])
            preds = grounded.stack_observations(env.perceive_batch(pred))
            context = env.observe(episode.context_states[-1])
            curves["mover_tracking"] = physics.mover_tracking(
                preds, truth, context, self.track_px, self.move_px
            )
        if "mse" in wanted:
            curves["mse"] = physics.frame_mse(pred, episode.frames)
        add_curves(record, curves, values)
        return record
