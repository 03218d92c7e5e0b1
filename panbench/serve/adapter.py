"""Any panbench adapter as a served :class:`~panbench.serve.backend.Backend` (``panbench serve``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from panbench.envs.base import NO_INDEX, Action
from panbench.models.api import Context, WorldModel
from panbench.serve.backend import Backend


def action_from_wire(value: Mapping[str, Any]) -> Action:
    """An :class:`Action` from its wire dict (the fields of ``Action.to_dict``)."""
    vector = value.get("vector")
    return Action(
        index=int(value.get("index", NO_INDEX)),
        text=str(value.get("text", "")),
        kind=str(value.get("kind", "agent")),
        vector=None if vector is None else tuple(float(v) for v in vector),
    )


class AdapterBackend(Backend):
    """Serves a :class:`WorldModel`: wire actions become ``Action``s, frames a ``Context``.

    Args:
        model: the adapter, built and moved to its device.
        name: the name it was loaded under (a registered name or ``module:Class``).
        device: where it runs (recorded in the client's results).
    """

    def __init__(self, model: WorldModel, name: str, device: str = "cpu") -> None:
        self.model = model
        self.name = name
        self.device = device

    def spec(self) -> dict[str, Any]:
        return self.model.spec.to_dict()

    def info(self) -> dict[str, Any]:
        from panbench import __version__

        described = self.model.describe()
        return {"adapter": self.name, "device": self.device, "version": __version__, **described}

    def reset(
        self, frames: np.ndarray, actions: Sequence[Sequence[dict[str, Any]]], seeds: Sequence[int]
    ) -> Any:
        context = Context(
            frames=np.ascontiguousarray(frames),
            actions=[[action_from_wire(a) for a in past] for past in actions],
            seeds=[int(s) for s in seeds],
        )
        return self.model.reset(context)

    def step(self, state: Any, actions: Sequence[dict[str, Any]]) -> tuple[Any, np.ndarray]:
        new, frames = self.model.step(state, [action_from_wire(a) for a in actions])
        if hasattr(frames, "detach") and hasattr(frames, "cpu"):  # a torch tensor
            frames = frames.detach().cpu().numpy()
        return new, frames

    def clone(self, state: Any) -> Any:
        return self.model.clone(state)

    def outcomes(self, state: Any) -> tuple[np.ndarray, np.ndarray]:
        rewards, terminals = self.model.outcomes(state)
        return np.asarray(rewards), np.asarray(terminals)

    def for_task(self, task: str) -> dict[str, Any]:
        return dict(self.model.for_task(task))
