"""The ``pan-ref`` adapter: the trainable PAN reference model (``reference_model/``) as a WorldModel.

This module is panbench's only way into ``reference_model``: it imports it lazily, inside
functions, so panbench works without the ``model`` extra (transformers, diffusers) until a
reference model is actually loaded or trained.

Rollouts are autoregressive: each step encodes nothing new from the truth; the frame the model
generated is decoded to pixels and re-encoded by h into the history, as PAN does at inference.
Every rollout draws its noise from its own generator seeded by the episode's seed, and on CPU
each rollout runs through the networks on its own (batched float kernels round differently for
different batch sizes), so a rollout's frames do not depend on the batch it ran in. On CUDA the
batch runs together, for speed.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from panbench.envs.base import Action
from panbench.errors import ConfigError
from panbench.models.api import ActionSpace, Context, ModelSpec, WorldModel

__all__ = ["ROLLOUTS", "PanRefModel", "PanRefState", "default_checkpoint", "train_reference_model"]

#: the checkpoint shipped in the repository (trained by ``panbench train`` on the tiny config)
SHIPPED_CHECKPOINT = "reference_model/checkpoints/pan-tiny"


def default_checkpoint() -> Path:
    """The shipped pan-tiny checkpoint folder (next to the ``reference_model`` package)."""
    import reference_model

    return Path(reference_model.__file__).resolve().parent / "checkpoints" / "pan-tiny"


def train_reference_model(config: str | Path, out: str | Path, **options: Any) -> Path:
    """Trains with the recipe the config declares (:func:`reference_model.recipes.train`).

    Returns:
        The exported model folder.
    """
    from reference_model.recipes import train

    return train(config, out, **options)


@dataclass
class PanRefState:
    """A batch of rollouts of a classic-recipe model.

    Attributes:
        latents: float [B, R', C, h, w] latents of the last R' <= R frames (oldest first).
        actions: per rollout, the texts of the R'-1 actions between those frames.
        generators: per rollout, the torch generator its noise comes from.
    """

    latents: Any
    actions: list[list[str]]
    generators: list[Any]


class _Rollouts(ABC):
    """How ``pan-ref`` rolls out the models of one recipe (one row of :data:`ROLLOUTS`).

    Args:
        adapter: the adapter (its ``model``, ``steps``, ``guidance``, ``seed``, ``mode``).
    """

    #: whether the recipe's models take ``mode=`` (a rollout scheme)
    takes_mode: ClassVar[bool] = False

    def __init__(self, adapter: PanRefModel) -> None:
        self.adapter = adapter
        self.model = adapter.model

    @classmethod
    def check_mode(cls, mode: str | None) -> None:
        """Refuses a ``mode=`` the recipe's models do not take (before any weights load)."""
        if mode is not None and not cls.takes_mode:
            raise ConfigError(
                "pan-ref: mode= applies to open-weights (PanOWModel) checkpoints only."
            )

    @abstractmethod
    def spec(self) -> ModelSpec:
        """The adapter's spec for this model."""

    @abstractmethod
    def reset(self, context: Context) -> Any:
        """Starts the batch's rollouts (see :meth:`WorldModel.reset`)."""

    @abstractmethod
    def step(self, state: Any, actions: Sequence[Action]) -> tuple[Any, np.ndarray]:
        """One action per rollout (see :meth:`WorldModel.step`)."""

    @abstractmethod
    def clone(self, state: Any) -> Any:
        """An independent copy of ``state`` (see :meth:`WorldModel.clone`)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Provenance recorded in the results."""

    def _checkpoint(self) -> dict[str, Any]:
        """The path and weights sha256 every description starts with."""
        from panbench.io import sha256_file
        from reference_model.model import WEIGHTS_NAME

        path = self.adapter.path
        return {
            "path": None if path is None else str(path),
            "checkpoint_sha256": None if path is None else sha256_file(path / WEIGHTS_NAME),
        }


class _ClassicRollouts(_Rollouts):
    """Classic recipe: one frame per step, the generated frame re-encoded into the history.

    On CPU each rollout runs through the networks on its own (batched float kernels round
    differently for different batch sizes); on CUDA the batch runs together.
    """

    def spec(self) -> ModelSpec:
        cfg = self.model.config
        return ModelSpec(
            name="pan-ref",
            action_space=ActionSpace.TEXT,
            resolution=cfg.resolution,
            context_frames=None,
            frames_per_step=1,
        )

    @property
    def history(self) -> int:
        return int(self.model.config.history)

    def _rows(self, fn: Any, *tensors: Any) -> Any:
        """``fn(*tensors)``, row by row on CPU (batch-size independent), else in one call."""
        import torch

        # Contiguous copies: kernels may pick other (differently rounding) paths for strided views.
        if self.model.device.type != "cpu" or tensors[0].shape[0] == 1:
            return fn(*(t.contiguous() for t in tensors))
        return torch.cat(
            [fn(*(t[i : i + 1].contiguous() for t in tensors)) for i in range(len(tensors[0]))]
        )

    def reset(self, context: Context) -> PanRefState:
        import torch

        frames = np.ascontiguousarray(context.frames[:, -self.history :])
        with torch.no_grad():
            latents = self._rows(self.model.encode_frames, torch.from_numpy(frames))
        keep = frames.shape[1] - 1
        actions = [
            [a.text for a in acts[len(acts) - keep :]] if keep else [] for acts in context.actions
        ]
        return PanRefState(latents, actions, self.adapter._generators(context.seeds))

    def step(self, state: PanRefState, actions: Sequence[Action]) -> tuple[Any, np.ndarray]:
        import torch

        model, adapter = self.model, self.adapter
        texts = [[*hist, a.text] for hist, a in zip(state.actions, actions, strict=True)]
        gens = state.generators

        def one(latents: Any, ids: Any, index: Any) -> Any:
            rows = [gens[int(i)] for i in index.tolist()]
            nxt = model.predict_next(latents, ids, rows, adapter.steps, adapter.guidance)
            return model.decode_latents(nxt)

        with torch.no_grad():
            ids = model.encode_actions(texts)
            index = torch.arange(len(texts), device=ids.device)
            frames = self._rows(one, state.latents, ids, index)
            # PAN re-encodes its own generated frames into the history.
            z = self._rows(model.encode_frames, frames[:, None])
        latents = torch.cat([state.latents, z], dim=1)[:, -self.history :]
        keep = latents.shape[1] - 1
        hist = [row[len(row) - keep :] if keep else [] for row in texts]
        return PanRefState(latents, hist, state.generators), frames[:, None].cpu().numpy()

    def clone(self, state: PanRefState) -> PanRefState:
        import torch

        gens = []
        for g in state.generators:
            new = torch.Generator(device=g.device)
            new.set_state(g.get_state())
            gens.append(new)
        return PanRefState(state.latents.clone(), [list(a) for a in state.actions], gens)

    def describe(self) -> dict[str, Any]:
        dec, adapter = self.model.config.decoder, self.adapter
        return {
            **self._checkpoint(),
            "steps": adapter.steps or dec.sample_steps,
            "guidance": adapter.guidance if adapter.guidance is not None else dec.guidance,
            "seed": adapter.seed,
            "config": dataclasses.asdict(self.model.config),
        }


class _OpenWeightsRollouts(_Rollouts):
    """Open-weights recipe: one stepwise rollout per episode, a chunk of frames per action."""

    takes_mode: ClassVar[bool] = True

    def __init__(self, adapter: PanRefModel) -> None:
        super().__init__(adapter)
        if adapter.mode not in (None, "swin", "chunk"):
            raise ConfigError(f"pan-ref: expected mode swin or chunk, but got {adapter.mode!r}.")

    def spec(self) -> ModelSpec:
        return ModelSpec(
            name="pan-ref",
            action_space=ActionSpace.TEXT,
            resolution=self.model.config.resolution,
            context_frames=None,
            frames_per_step=self.model.pixel_frames_per_chunk,
        )

    def reset(self, context: Context) -> list[Any]:
        import torch

        adapter = self.adapter
        gens = adapter._generators(context.seeds)
        frames = torch.from_numpy(np.ascontiguousarray(context.frames))
        # One rollout per episode: batch-size independent by construction.
        return [
            self.model.start_rollout(f, [a.text for a in acts], g, adapter.mode, adapter.steps)
            for f, acts, g in zip(frames, context.actions, gens, strict=True)
        ]

    def step(self, state: list[Any], actions: Sequence[Action]) -> tuple[Any, np.ndarray]:
        import torch

        chunks = [self.model.rollout_step(r, a.text) for r, a in zip(state, actions, strict=True)]
        return state, torch.stack(chunks).numpy()

    def clone(self, state: list[Any]) -> list[Any]:
        return [r.clone() for r in state]

    def describe(self) -> dict[str, Any]:
        dec, adapter = self.model.config.decoder, self.adapter
        return {
            **self._checkpoint(),
            "class_name": type(self.model).__name__,
            "steps": adapter.steps or dec.sample_steps,
            "mode": adapter.mode or dec.rollout,
            "seed": adapter.seed,
            "config": dataclasses.asdict(self.model.config),
        }


#: per training recipe (``reference_model.recipes.RECIPES``), how pan-ref rolls its models out
ROLLOUTS: dict[str, type[_Rollouts]] = {
    "classic": _ClassicRollouts,
    "open-weights": _OpenWeightsRollouts,
}


def _rollouts_for(recipe: str) -> type[_Rollouts]:
    if recipe not in ROLLOUTS:
        raise ConfigError(
            f"pan-ref: expected a model of a recipe in {sorted(ROLLOUTS)}, but got recipe "
            f"{recipe!r}."
        )
    return ROLLOUTS[recipe]


class PanRefModel(WorldModel):
    """The PAN reference world model loaded from a ``save_pretrained`` folder.

    Args:
        path: checkpoint folder (``config.json`` + ``model.safetensors``); default: the shipped
            pan-tiny checkpoint.
        steps: DDIM sampling steps (default: the checkpoint's ``sample_steps``).
        guidance: classifier-free guidance scale (default: the checkpoint's; 1 = off).
        seed: offset mixed into every episode's seed (different samples of the same model).
        mode: (open-weights checkpoints) ``swin`` (Causal Swin-DPM) or ``chunk`` (plain
            chunk by chunk); default: the checkpoint's ``rollout``.

    The folder's recipe (``reference_model.recipes.checkpoint_recipe``) picks the model class
    and the rollout scheme (:data:`ROLLOUTS`): a ``PanOWModel`` folder (the open-weights recipe,
    ``reference_model/ow``) steps one chunk of ``frames_per_step`` video frames per action.

    Raises:
        DataError / ConfigError: a missing, corrupt or inconsistent checkpoint (named).
    """

    def __init__(
        self,
        path: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
        mode: str | None = None,
    ) -> None:
        self.path: Path | None = Path(path) if path else default_checkpoint()
        self.mode = mode
        try:
            from reference_model.recipes import checkpoint_recipe

            recipe = checkpoint_recipe(self.path)
            _rollouts_for(recipe.name).check_mode(mode)
            model_class = recipe.model()
        except ImportError as err:  # transformers/diffusers live in the `model` extra
            raise ConfigError(
                f"pan-ref needs the reference model's dependencies ({err}); install them with "
                "pip install 'panbench[model]'."
            ) from err
        self._setup(model_class.from_pretrained(self.path), steps, guidance, seed)

    @classmethod
    def from_model(
        cls, model: Any, steps: int | None = None, guidance: float | None = None, seed: int = 0
    ) -> PanRefModel:
        """Wraps an in-memory :class:`reference_model.model.PanModel` (benchmarks, notebooks)."""
        self = cls.__new__(cls)
        self.path = None
        self.mode = None
        self._setup(model, steps, guidance, seed)
        return self

    def _setup(self, model: Any, steps: int | None, guidance: float | None, seed: int) -> None:
        self.steps = None if steps is None else int(steps)
        self.guidance = None if guidance is None else float(guidance)
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"pan-ref: expected steps >= 1, but got {self.steps}.")
        self.seed = int(seed)
        self.model = model.eval()
        self._rollouts = _rollouts_for(getattr(model, "recipe", None) or "")(self)
        self.spec = self._rollouts.spec()

    def to(self, device: str) -> PanRefModel:
        self.model.to(device)
        return self

    def _generators(self, seeds: Sequence[int]) -> list[Any]:
        """Per rollout, a CPU generator seeded by (``seed`` option, episode seed)."""
        import torch

        return [
            torch.Generator().manual_seed(
                int(np.random.SeedSequence([self.seed, int(s)]).generate_state(1)[0])
            )
            for s in seeds
        ]

    def reset(self, context: Context) -> Any:
        return self._rollouts.reset(context)

    def step(self, state: Any, actions: Sequence[Action]) -> tuple[Any, np.ndarray]:
        return self._rollouts.step(state, actions)

    def clone(self, state: Any) -> Any:
        return self._rollouts.clone(state)

    def describe(self) -> dict[str, Any]:
        return self._rollouts.describe()
