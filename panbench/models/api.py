"""The WorldModel contract every adapter implements, and the checks the harness applies to it.

A world model is driven in batches: ``reset(context)`` takes the context frames of B episodes,
``step(state, actions)`` advances all of them by one action and returns the k new frames each.
State is the adapter's own value; the harness never looks inside it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from panbench.envs.base import Action, Env
from panbench.errors import ActionSpaceError, ContractError

__all__ = [
    "ActionSpace",
    "Context",
    "ContractError",
    "ModelSpec",
    "WorldModel",
    "check_action_space",
    "check_frames",
]


class ActionSpace(str, Enum):
    """Which representation of an :class:`~panbench.envs.base.Action` a model consumes."""

    TEXT = "text"
    DISCRETE = "discrete"
    CONTINUOUS = "continuous"
    NONE = "none"


@dataclass(frozen=True)
class ModelSpec:
    """What a model declares about itself.

    Attributes:
        name: the adapter's registered name.
        action_space: the action representation it consumes.
        resolution: native square frame side in pixels, or None to take frames at any size.
        context_frames: how many context frames it uses (None: all it is given).
        frames_per_step: frames returned by each ``step`` (k).
        privileged: True for baselines that read the true simulator (``oracle``,
            ``random-action``); such models receive ``Context.env`` and ``Context.states``.
        predicts_rewards: True if the model also predicts each step's reward and terminal flag
            (:meth:`WorldModel.outcomes`); tasks with reward metrics score only such models and
            mark the others "n/a".
        action_dim: for ``continuous`` models, the length of the action vectors they take
            (None: any length); the harness refuses a task whose env's action space has
            another dimension before anything runs. Must be None for other action spaces.
        differentiable: True if the model imagines with gradients with respect to its action
            vectors (:meth:`WorldModel.imagine_differentiable`), which the ``gradient`` planner
            needs; only for ``continuous`` models.
    """

    name: str
    action_space: ActionSpace = ActionSpace.TEXT
    resolution: int | None = None
    context_frames: int | None = None
    frames_per_step: int = 1
    privileged: bool = False
    predicts_rewards: bool = False
    action_dim: int | None = None
    differentiable: bool = False

    def __post_init__(self) -> None:
        # Adapters often write action_space="text"; accept the plain value, refuse anything else
        # now rather than after a whole run, when the results are written.
        try:
            object.__setattr__(self, "action_space", ActionSpace(self.action_space))
        except ValueError:
            allowed = ", ".join(repr(a.value) for a in ActionSpace)
            raise ContractError(
                f"Model {self.name!r}: expected ModelSpec.action_space to be one of {allowed}, "
                f"but got {self.action_space!r}."
            ) from None
        for attr, minimum, optional in (
            ("frames_per_step", 1, False),
            ("resolution", 1, True),
            ("context_frames", 1, True),
            ("action_dim", 1, True),
        ):
            value = getattr(self, attr)
            if optional and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ContractError(
                    f"Model {self.name!r}: expected ModelSpec.{attr} to be an integer >= "
                    f"{minimum}{' or None' if optional else ''}, but got {value!r}."
                )
        if self.action_dim is not None and self.action_space is not ActionSpace.CONTINUOUS:
            raise ContractError(
                f"Model {self.name!r}: ModelSpec.action_dim is for continuous models, but "
                f"action_space is {self.action_space.value!r} (got action_dim={self.action_dim})."
            )
        if self.differentiable and self.action_space is not ActionSpace.CONTINUOUS:
            raise ContractError(
                f"Model {self.name!r}: ModelSpec.differentiable means gradients with respect to "
                f"action vectors, so it needs action_space 'continuous', but got "
                f"{self.action_space.value!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "action_space": self.action_space.value,
            "resolution": self.resolution,
            "context_frames": self.context_frames,
            "frames_per_step": self.frames_per_step,
            "privileged": self.privileged,
            "predicts_rewards": self.predicts_rewards,
        }
        if self.action_dim is not None:  # older results files have no such key
            out["action_dim"] = self.action_dim
        if self.differentiable:  # likewise
            out["differentiable"] = True
        return out


@dataclass
class Context:
    """A batch of B episode beginnings handed to :meth:`WorldModel.reset`.

    Attributes:
        frames: uint8 [B, T, H, W, 3] context frames, oldest first, at the model's resolution.
        actions: per episode, the T-1 actions taken between the context frames.
        seeds: per-episode seeds; a stochastic model draws its noise from these so that a
            rollout does not depend on the batch it was run in.
        env: the true simulator (privileged models only, else None).
        states: the true state at the last context frame, per episode (privileged only).
        playback: on recorded data (no simulator), per episode the recorded future of another
            recording, uint8 [horizon, H, W, 3] at task resolution, or None where there is none
            (privileged only; ``random-action`` plays it back).
    """

    frames: np.ndarray
    actions: list[list[Action]]
    seeds: list[int]
    env: Env | None = None
    states: list[Any] | None = field(default=None)
    playback: list[np.ndarray | None] | None = field(default=None)

    @property
    def batch_size(self) -> int:
        return int(self.frames.shape[0])


class WorldModel(ABC):
    """A world model behind the panbench adapter API.

    Subclasses set :attr:`spec` (usually in ``__init__`` from their options) and implement
    :meth:`reset`, :meth:`step` and, when their state is not a plain value, :meth:`clone`.
    Constructor keyword arguments come from ``--model-args k=v,...``.
    """

    spec: ModelSpec

    def to(self, device: str) -> WorldModel:
        """Moves the model to ``device`` ("cpu", "cuda", ...); a no-op for numpy models."""
        return self

    @abstractmethod
    def reset(self, context: Context) -> Any:
        """Starts B rollouts from ``context`` and returns the model's state for them."""

    @abstractmethod
    def step(self, state: Any, actions: Sequence[Action]) -> tuple[Any, np.ndarray]:
        """Advances every rollout by one action.

        Args:
            state: as returned by :meth:`reset` or a previous :meth:`step`.
            actions: one action per rollout (B of them).

        Returns:
            The new state and the new frames, uint8 [B, k, H, W, 3] with k = frames_per_step and
            H = W = the model's resolution.
        """

    def outcomes(self, state: Any) -> tuple[np.ndarray, np.ndarray]:
        """The reward and terminal flag the model predicts for its last step, per rollout.

        Only called on models whose spec declares ``predicts_rewards``.

        Returns:
            (rewards float [B], terminals bool [B]).
        """
        raise ContractError(
            f"Model {self.spec.name!r} declares predicts_rewards but does not implement outcomes()."
        )

    def imagine_differentiable(self, state: Any, actions: Any) -> Any:
        """Imagines B rollouts of action vectors with gradients (``spec.differentiable`` only).

        Only the ``gradient`` planner calls it, on a state fresh from :meth:`reset`; the state
        is not advanced (the planner resets again for each rollout it asks for).

        Args:
            state: as returned by :meth:`reset` (B rollouts).
            actions: float torch tensor [B, L, D], the vectors to imagine (requires grad).

        Returns:
            float torch tensor [B, L, H, W, 3] with values in [0, 1]: the last frame of each
            step, at the model's resolution, differentiable with respect to ``actions``.
        """
        raise ContractError(
            f"Model {self.spec.name!r} was asked to imagine with gradients, but it does not "
            "implement imagine_differentiable() (ModelSpec.differentiable is "
            f"{self.spec.differentiable})."
        )

    def clone(self, state: Any) -> Any:
        """Returns an independent copy of ``state`` so a rollout can be branched."""
        import copy

        return copy.deepcopy(state)

    def describe(self) -> dict[str, Any]:
        """Provenance for results files: options, checkpoint sha256, ... (JSON-serialisable)."""
        return {}

    def identity(self) -> dict[str, Any]:
        """What a resumed run must find unchanged besides the model's name and arguments
        (JSON-serialisable; recorded in run.json): e.g. the model and checkpoint a server
        reports for a served model, whose arguments are only its url. Default: nothing."""
        return {}

    def for_task(self, task: str) -> dict[str, Any]:
        """Called before each task's episodes: the adapter may pick per-task settings (e.g.
        sampling steps). Returns the settings in force, recorded in the task's results entry
        as ``model_settings`` (JSON-serialisable); default: none."""
        return {}


def check_frames(
    frames: Any,
    *,
    model: str,
    where: str,
    batch_size: int,
    frames_per_step: int,
    resolution: int | None,
) -> np.ndarray:
    """Validates frames returned by an adapter and returns them as a numpy array.

    Raises:
        ContractError: naming the adapter, the call (``where``) and expected versus received.
    """
    prefix = f"Model {model!r} broke the WorldModel contract in {where}:"
    if hasattr(frames, "detach") and hasattr(frames, "cpu"):  # a torch tensor
        frames = frames.detach().cpu().numpy()
    if not isinstance(frames, np.ndarray):
        raise ContractError(
            f"{prefix} expected a uint8 numpy array [B,k,H,W,3], but got {type(frames).__name__}."
        )
    if frames.dtype != np.uint8:
        if np.issubdtype(frames.dtype, np.floating) and np.isnan(frames).any():
            raise ContractError(f"{prefix} expected uint8 frames, but got {frames.dtype} with NaN.")
        raise ContractError(
            f"{prefix} expected dtype uint8 (values 0..255), but got {frames.dtype}."
        )
    res = resolution
    expected = (
        batch_size,
        frames_per_step,
        res if res is not None else "H",
        res if res is not None else "W",
        3,
    )
    ok = (
        frames.ndim == 5
        and frames.shape[0] == batch_size
        and frames.shape[1] == frames_per_step
        and frames.shape[4] == 3
        and frames.shape[2] == frames.shape[3]
        and (res is None or frames.shape[2] == res)
    )
    if not ok:
        shape = "[" + ",".join(str(x) for x in expected) + "]"
        got = "[" + ",".join(str(x) for x in frames.shape) + "]"
        raise ContractError(
            f"{prefix} expected frames of shape {shape} (B={batch_size}, "
            f"k=frames_per_step={frames_per_step}), but got {got}."
        )
    return frames


def check_action_space(spec: ModelSpec, env: Env | None, task: str) -> None:
    """Refuses, before anything runs, a task whose env's actions ``spec`` cannot consume.

    A continuous model needs an env with a continuous action space (``Env.action_space``) of
    its ``action_dim``. Tasks on recorded data (``env`` None) are checked per step instead, by
    the model runner, since their vectors are only known once read.

    Raises:
        ActionSpaceError: naming the model, the task, what it expects and what the env offers.
    """
    if spec.action_space is not ActionSpace.CONTINUOUS or env is None:
        return
    space = env.action_space
    if space is None:
        raise ActionSpaceError(
            f"Model {spec.name!r} takes continuous actions (action_space='continuous'"
            f"{'' if spec.action_dim is None else f', action_dim={spec.action_dim}'}), but task "
            f"{task!r} runs env {env.name!r}, whose actions are discrete or text only (no "
            "action space); run it on a task whose env has continuous actions."
        )
    if spec.action_dim is not None and spec.action_dim != space.dim:
        raise ActionSpaceError(
            f"Model {spec.name!r} takes action vectors of dimension {spec.action_dim}, but task "
            f"{task!r} runs env {env.name!r}, whose action space has dimension {space.dim} "
            f"(low={list(space.low)}, high={list(space.high)})."
        )
