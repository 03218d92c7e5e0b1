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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from panbench.envs.base import Action
from panbench.errors import ConfigError
from panbench.models.api import ActionSpace, Context, ModelSpec, WorldModel

__all__ = ["PanRefModel", "PanRefState", "default_checkpoint", "train_reference_model"]

#: the checkpoint shipped in the repository (trained by ``panbench train`` on the tiny config)
SHIPPED_CHECKPOINT = "reference_model/checkpoints/pan-tiny"


def default_checkpoint() -> Path:
    """The shipped pan-tiny checkpoint folder (next to the ``reference_model`` package)."""
    import reference_model

    return Path(reference_model.__file__).resolve().parent / "checkpoints" / "pan-tiny"


def train_reference_model(config: str | Path, out: str | Path, **options: Any) -> Path:
    """Runs :func:`reference_model.train.train` (see there for ``options``).

    Returns:
        The exported model folder.
    """
    from reference_model.train import train

    return train(config, out, **options)


@dataclass
class PanRefState:
    """A batch of rollouts.

    Attributes:
        latents: float [B, R', C, h, w] latents of the last R' <= R frames (oldest first).
        actions: per rollout, the texts of the R'-1 actions between those frames.
        generators: per rollout, the torch generator its noise comes from.
    """

    latents: Any
    actions: list[list[str]]
    generators: list[Any]


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

    A ``PanOWModel`` folder (the open-weights recipe, ``reference_model/ow``) loads too: each step
    is one chunk of ``frames_per_step`` video frames generated stepwise from its action.

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
        try:
            from reference_model.model import PanModel
        except ImportError as err:  # transformers/diffusers live in the `model` extra
            raise ConfigError(
                f"pan-ref needs the reference model's dependencies ({err}); install them with "
                "pip install 'panbench[model]'."
            ) from err

        self.path: Path | None = Path(path) if path else default_checkpoint()
        self.mode = mode
        if _class_name(self.path) == "PanOWModel":
            from reference_model.ow.model import PanOWModel

            self._setup(PanOWModel.from_pretrained(self.path), steps, guidance, seed)
            return
        if mode is not None:
            raise ConfigError(
                "pan-ref: mode= applies to open-weights (PanOWModel) checkpoints only."
            )
        self._setup(PanModel.from_pretrained(self.path), steps, guidance, seed)

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
        import torch

        self.steps = None if steps is None else int(steps)
        self.guidance = None if guidance is None else float(guidance)
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"pan-ref: expected steps >= 1, but got {self.steps}.")
        self.seed = int(seed)
        self.model = model.eval()
        self._torch = torch
        cfg = self.model.config
        self._ow = type(model).__name__ == "PanOWModel"
        if self._ow:
            if self.mode not in (None, "swin", "chunk"):
                raise ConfigError(f"pan-ref: expected mode swin or chunk, but got {self.mode!r}.")
            self.spec = ModelSpec(
                name="pan-ref",
                action_space=ActionSpace.TEXT,
                resolution=cfg.resolution,
                context_frames=None,
                frames_per_step=model.pixel_frames_per_chunk,
            )
            return
        self.history = cfg.history
        self.spec = ModelSpec(
            name="pan-ref",
            action_space=ActionSpace.TEXT,
            resolution=cfg.resolution,
            context_frames=None,
            frames_per_step=1,
        )

    def to(self, device: str) -> PanRefModel:
        self.model.to(device)
        return self

    @property
    def _per_rollout(self) -> bool:
        return bool(self.model.device.type == "cpu")

    def _rows(self, fn: Any, *tensors: Any) -> Any:
        """``fn(*tensors)``, row by row on CPU (batch-size independent), else in one call."""
        torch = self._torch
        # Contiguous copies: kernels may pick other (differently rounding) paths for strided views.
        if not self._per_rollout or tensors[0].shape[0] == 1:
            return fn(*(t.contiguous() for t in tensors))
        return torch.cat(
            [fn(*(t[i : i + 1].contiguous() for t in tensors)) for i in range(len(tensors[0]))]
        )

    def _generators(self, seeds: Sequence[int]) -> list[Any]:
        torch = self._torch
        return [
            torch.Generator().manual_seed(
                int(np.random.SeedSequence([self.seed, int(s)]).generate_state(1)[0])
            )
            for s in seeds
        ]

    def reset(self, context: Context) -> Any:
        torch = self._torch
        if self._ow:  # one stepwise rollout per episode (batch-size independent by construction)
            gens = self._generators(context.seeds)
            frames = torch.from_numpy(np.ascontiguousarray(context.frames))
            return [
                self.model.start_rollout(f, [a.text for a in acts], g, self.mode, self.steps)
                for f, acts, g in zip(frames, context.actions, gens, strict=True)
            ]
        frames = np.ascontiguousarray(context.frames[:, -self.history :])
        with torch.no_grad():
            latents = self._rows(self.model.encode_frames, torch.from_numpy(frames))
        keep = frames.shape[1] - 1
        actions = [
            [a.text for a in acts[len(acts) - keep :]] if keep else [] for acts in context.actions
        ]
        return PanRefState(latents, actions, self._generators(context.seeds))

    def step(self, state: Any, actions: Sequence[Action]) -> tuple[Any, np.ndarray]:
        torch = self._torch
        if self._ow:
            chunks = [
                self.model.rollout_step(r, a.text) for r, a in zip(state, actions, strict=True)
            ]
            return state, torch.stack(chunks).numpy()
        texts = [[*hist, a.text] for hist, a in zip(state.actions, actions, strict=True)]
        gens = state.generators

        def one(latents: Any, ids: Any, index: Any) -> Any:
            rows = [gens[int(i)] for i in index.tolist()]
            nxt = self.model.predict_next(latents, ids, rows, self.steps, self.guidance)
            return self.model.decode_latents(nxt)

        with torch.no_grad():
            ids = self.model.encode_actions(texts)
            index = torch.arange(len(texts), device=ids.device)
            frames = self._rows(one, state.latents, ids, index)
            # PAN re-encodes its own generated frames into the history.
            z = self._rows(self.model.encode_frames, frames[:, None])
        latents = torch.cat([state.latents, z], dim=1)[:, -self.history :]
        keep = latents.shape[1] - 1
        hist = [row[len(row) - keep :] if keep else [] for row in texts]
        return PanRefState(latents, hist, state.generators), frames[:, None].cpu().numpy()

    def clone(self, state: Any) -> Any:
        torch = self._torch
        if self._ow:
            return [r.clone() for r in state]
        gens = []
        for g in state.generators:
            new = torch.Generator(device=g.device)
            new.set_state(g.get_state())
            gens.append(new)
        return PanRefState(state.latents.clone(), [list(a) for a in state.actions], gens)

    def describe(self) -> dict[str, Any]:
        import dataclasses

        from panbench.io import sha256_file
        from reference_model.model import WEIGHTS_NAME

        if self._ow:
            dec = self.model.config.decoder
            return {
                "path": None if self.path is None else str(self.path),
                "checkpoint_sha256": (
                    None if self.path is None else sha256_file(self.path / WEIGHTS_NAME)
                ),
                "class_name": "PanOWModel",
                "steps": self.steps or dec.sample_steps,
                "mode": self.mode or dec.rollout,
                "seed": self.seed,
                "config": dataclasses.asdict(self.model.config),
            }
        return {
            "path": None if self.path is None else str(self.path),
            "checkpoint_sha256": (
                None if self.path is None else sha256_file(self.path / WEIGHTS_NAME)
            ),
            "steps": self.steps or self.model.config.decoder.sample_steps,
            "guidance": (
                self.guidance if self.guidance is not None else self.model.config.decoder.guidance
            ),
            "seed": self.seed,
            "config": dataclasses.asdict(self.model.config),
        }


def _class_name(folder: Path) -> str | None:
    """The ``class_name`` in a checkpoint folder's config.json (None when unreadable)."""
    import json

    try:
        doc = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc.get("class_name") if isinstance(doc, dict) else None
