"""ContextMeanModel: predicts the pixel-wise mean of its context frames, whatever the action."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from panbench.envs.base import Action
from panbench.models.api import ActionSpace, Context, ModelSpec, WorldModel


class ContextMeanModel(WorldModel):
    """Predicts the mean of the last ``window`` context frames at every step (ignores actions).

    Args:
        window: how many context frames to average.
    """

    def __init__(self, window: int = 2) -> None:
        self.window = int(window)
        self.spec = ModelSpec(
            name="context-mean",
            action_space=ActionSpace.NONE,
            resolution=None,  # takes frames at the task's resolution
            context_frames=self.window,
            frames_per_step=1,
        )

    def reset(self, context: Context) -> np.ndarray:
        # State: the predicted frame, uint8 [B, 1, H, W, 3].
        mean = context.frames.astype(np.float32).mean(axis=1, keepdims=True)
        return np.round(mean).astype(np.uint8)

    def step(self, state: np.ndarray, actions: Sequence[Action]) -> tuple[np.ndarray, np.ndarray]:
        return state, state.copy()

    def describe(self) -> dict[str, object]:
        return {"window": self.window}
