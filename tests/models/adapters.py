"""Test adapters plugged into ``panbench evaluate`` as ``tests.models.adapters:<Class>``.

Each broken adapter breaks exactly one part of the WorldModel contract, so a test can check that
the harness refuses it with a message naming the adapter, the step and expected versus received.
``InterruptingOracle`` simulates a run stopped part way (Ctrl-C after a number of step calls).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from panbench.envs.base import NO_INDEX, Action
from panbench.models.api import ActionSpace, Context, ModelSpec, WorldModel
from panbench.models.baselines import CopyLastModel, OracleModel

#: environment variable read by :class:`InterruptingOracle`: step calls before the interruption
FAIL_AFTER_ENV = "PANBENCH_TEST_FAIL_AFTER"


class InterruptingOracle(OracleModel):
    """The oracle, but raises KeyboardInterrupt once ``$PANBENCH_TEST_FAIL_AFTER`` steps ran.

    The budget comes from the environment, not from ``--model-args``, so a healthy rerun (the
    variable unset) is the very same run configuration and resumes the interrupted one.
    """

    def __init__(self) -> None:
        super().__init__()
        budget = os.environ.get(FAIL_AFTER_ENV)
        self.fail_after = int(budget) if budget else None
        self.calls = 0

    def step(self, state: Any, actions: Sequence[Action]) -> tuple[Any, np.ndarray]:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        return super().step(state, actions)


class _Broken(WorldModel):
    """Copies the last context frame, then :meth:`corrupt` breaks the returned frames."""

    NAME = "broken"
    FRAMES_PER_STEP = 1

    def __init__(self) -> None:
        self.spec = ModelSpec(
            name=self.NAME, action_space=ActionSpace.NONE, frames_per_step=self.FRAMES_PER_STEP
        )
        self._inner = CopyLastModel()

    def reset(self, context: Context) -> Any:
        return self._inner.reset(context)

    def corrupt(self, frames: np.ndarray) -> Any:
        return frames

    def step(self, state: Any, actions: Sequence[Action]) -> Any:
        state, frames = self._inner.step(state, actions)
        return state, self.corrupt(frames)


class NaNOnRankOneModel(_Broken):
    """Healthy on rank 0; under torchrun, rank 1 returns a NaN pixel on its first step."""

    NAME = "nan-on-rank-one"

    def corrupt(self, frames: np.ndarray) -> Any:
        if os.environ.get("RANK", "0") != "1":
            return frames
        out = frames.astype(np.float32)
        out[0, 0, 0, 0, 0] = np.nan
        return out


class WrongShapeModel(_Broken):
    """Returns frames without the k axis: [B, H, W, 3]."""

    NAME = "wrong-shape"

    def corrupt(self, frames: np.ndarray) -> np.ndarray:
        return frames[:, 0]


class FloatFramesModel(_Broken):
    """Returns float32 frames in [0, 1] instead of uint8."""

    NAME = "float-frames"

    def corrupt(self, frames: np.ndarray) -> np.ndarray:
        return frames.astype(np.float32) / 255.0


class NaNFramesModel(_Broken):
    """Returns float32 frames with a NaN pixel."""

    NAME = "nan-frames"

    def corrupt(self, frames: np.ndarray) -> np.ndarray:
        out = frames.astype(np.float32)
        out[0, 0, 0, 0, 0] = np.nan
        return out


class WrongFrameCountModel(_Broken):
    """Declares two frames per step but returns one."""

    NAME = "wrong-frame-count"
    FRAMES_PER_STEP = 2


class NonTupleModel(_Broken):
    """Returns only the frames from step, not (state, frames)."""

    NAME = "non-tuple"

    def step(self, state: Any, actions: Sequence[Action]) -> Any:
        return super().step(state, actions)[1]


class NeedsArgModel(_Broken):
    """Takes a required ``width`` argument (for --model-args errors)."""

    NAME = "needs-arg"

    def __init__(self, width: int, scale: float = 1.0) -> None:
        super().__init__()
        self.width, self.scale = width, scale


class NoSpecModel(WorldModel):
    """Forgets to set ``spec``."""

    def reset(self, context: Context) -> Any:
        return None

    def step(self, state: Any, actions: Sequence[Action]) -> Any:
        return state, None


class ContinuousModel(_Broken):
    """Declares continuous actions (it needs ``Action.vector``) but otherwise copies frames."""

    NAME = "continuous"

    def __init__(self) -> None:
        super().__init__()
        self.spec = ModelSpec(name=self.NAME, action_space=ActionSpace.CONTINUOUS)

    def step(self, state: Any, actions: Sequence[Action]) -> Any:
        assert all(a.vector is not None for a in actions)
        return super().step(state, actions)


class VectorOracle(OracleModel):
    """The oracle as a continuous-action model: it steps the true env with each action's vector
    alone (the index and text are dropped), so it is exact only if the vectors arrive intact.

    Args:
        action_dim: the vector length it declares (``--model-args action_dim=3``).
    """

    def __init__(self, action_dim: int | None = None) -> None:
        super().__init__()
        self.spec = ModelSpec(
            name="vector-oracle",
            action_space=ActionSpace.CONTINUOUS,
            privileged=True,
            action_dim=None if action_dim is None else int(action_dim),
        )

    def step(self, state: Any, actions: Sequence[Action]) -> tuple[Any, np.ndarray]:
        return super().step(state, [Action(NO_INDEX, "", vector=a.vector) for a in actions])


class PlainStringSpaceModel(_Broken):
    """Sets ``action_space`` as a plain string, as adapters often do."""

    NAME = "plain-string"

    def __init__(self) -> None:
        super().__init__()
        self.spec = ModelSpec(name=self.NAME, action_space="text")  # type: ignore[arg-type]


class BadSpaceModel(_Broken):
    """Declares an action space that does not exist."""

    def __init__(self) -> None:
        self.spec = ModelSpec(name="bad-space", action_space="pixels")  # type: ignore[arg-type]


class SoftBlobModel(WorldModel):
    """A differentiable continuous-action model of PushT's agent alone (the ``gradient``
    planner's test model): it finds the blue agent in the last context frame, paints it out,
    and imagines it moving ``scale`` pixels per unit of action as a soft Gaussian blob; the
    T never moves. ``imagine_differentiable`` is the same rendering in torch, so gradients
    with respect to the action vectors flow through the blob's position.

    Args:
        scale: pixels the blob moves per unit of action vector.
        sigma: the blob's radius (Gaussian standard deviation) in pixels.
    """

    AGENT = (78, 126, 255)

    def __init__(self, scale: float = 3.0, sigma: float = 2.0) -> None:
        self.spec = ModelSpec(
            name="soft-blob", action_space=ActionSpace.CONTINUOUS, action_dim=2, differentiable=True
        )
        self.scale, self.sigma = float(scale), float(sigma)

    def reset(self, context: Context) -> Any:
        import torch

        last = context.frames[:, -1].astype(np.float32) / 255.0  # [B, H, W, 3]
        agent = np.linalg.norm(context.frames[:, -1].astype(float) - self.AGENT, axis=-1) < 40
        positions = []
        for mask in agent:
            rows, cols = np.nonzero(mask)
            positions.append((cols.mean(), rows.mean()) if len(rows) else (0.0, 0.0))
        last[agent] = 1.0  # painted out: the blob draws the agent
        return {"background": torch.from_numpy(last), "position": torch.tensor(positions)}

    def _draw(self, background: Any, position: Any) -> Any:
        """float [B, H, W, 3] frames with the blob at float [B, 2] pixel (x, y)."""
        import torch

        side = background.shape[1]
        grid = torch.arange(side, dtype=torch.float32)
        dx = (grid[None, None, :] - position[:, 0, None, None]) ** 2
        dy = (grid[None, :, None] - position[:, 1, None, None]) ** 2
        mask = torch.exp(-(dx + dy) / (2 * self.sigma**2))[..., None]
        colour = torch.tensor(self.AGENT, dtype=torch.float32) / 255.0
        return background * (1 - mask) + colour * mask

    def imagine_differentiable(self, state: Any, actions: Any) -> Any:
        positions = state["position"][:, None].float() + self.scale * actions.cumsum(dim=1)
        frames = [self._draw(state["background"], positions[:, t]) for t in range(actions.shape[1])]
        import torch

        return torch.stack(frames, dim=1)

    def step(self, state: Any, actions: Sequence[Action]) -> tuple[Any, np.ndarray]:
        import torch

        move = torch.tensor([a.vector for a in actions], dtype=torch.float32)
        position = state["position"].float() + self.scale * move
        frame = self._draw(state["background"], position)
        frames = (frame.clamp(0, 1) * 255).round().to(torch.uint8).numpy()[:, None]
        return {"background": state["background"], "position": position}, frames
