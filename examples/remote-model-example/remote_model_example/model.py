"""The model: each step drifts the last frame in the commanded direction and adds seeded noise.

It stands in for a model whose stack clashes with panbench's (another torch, jax, an old
diffusers): it implements :class:`panbench.serve.backend.Backend` directly, with numpy in and
out, and never imports panbench's adapter API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from panbench.serve.backend import Backend

#: pixel shift (rows, columns) per discrete action index; other indices stay put
SHIFTS = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1)}


@dataclass(frozen=True)
class DriftState:
    frames: np.ndarray  # uint8 [B,H,W,3], the last frame of each rollout
    seeds: tuple[int, ...]
    t: int


class DriftModel(Backend):
    """Moves the whole frame one pixel per step in the action's direction, plus seeded noise.

    Args:
        noise: the noise amplitude in grey levels.
    """

    def __init__(self, noise: int = 4) -> None:
        self.noise = noise

    def spec(self) -> dict[str, Any]:
        return {
            "name": "drift-example",
            "action_space": "discrete",
            "resolution": None,  # any size: frames come back at the size they came in
            "context_frames": 1,
            "frames_per_step": 1,
        }

    def info(self) -> dict[str, Any]:
        return {"version": "0.1.0", "checkpoint_sha256": None, "noise": self.noise}

    def reset(
        self, frames: np.ndarray, actions: Sequence[Sequence[dict[str, Any]]], seeds: Sequence[int]
    ) -> DriftState:
        return DriftState(np.array(frames[:, -1]), tuple(int(s) for s in seeds), 0)

    def step(
        self, state: DriftState, actions: Sequence[dict[str, Any]]
    ) -> tuple[DriftState, np.ndarray]:
        out = []
        for frame, action, seed in zip(state.frames, actions, state.seeds, strict=True):
            dy, dx = SHIFTS.get(int(action.get("index", -1)), (0, 0))
            moved = np.roll(frame, (dy, dx), axis=(0, 1)).astype(np.int16)
            rng = np.random.default_rng([seed, state.t])  # the same rollout, the same noise
            moved += rng.integers(-self.noise, self.noise + 1, frame.shape, dtype=np.int16)
            out.append(np.clip(moved, 0, 255).astype(np.uint8))
        frames = np.stack(out)
        return DriftState(frames, state.seeds, state.t + 1), frames[:, None]

    def clone(self, state: DriftState) -> DriftState:
        return state  # immutable: step returns a new state
