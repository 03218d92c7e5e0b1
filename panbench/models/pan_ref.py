"""The ``pan-ref`` adapter: the trainable PAN reference model (``reference_model/``) as a WorldModel.

This module is panbench's only way into ``reference_model``: it imports it lazily, inside
functions, so panbench works without the ``model`` extra (transformers, diffusers) until a
reference model is actually loaded or trained.

Rollouts are autoregressive: each step encodes nothing new from the truth; the frame the model
generated is decoded to pixels and re-encoded by h into the history, as PAN does at inference.
Every rollout draws its noise from its own generator seeded by the episode's seed, and rows go
through the networks in calls whose sizes keep a row's values independent of the other rows
(see :class:`_ClassicRollouts`), so a rollout's frames do not depend on the batch it ran in.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from panbench.envs.base import Action
from panbench.errors import ConfigError
from panbench.models.api import ActionSpace, Context, ModelSpec, WorldModel


def action_text(action: Action) -> str:
    """What the classic model reads for ``action`` (see ``reference_model.tokenizer``)."""
    from reference_model.tokenizer import action_text as text_of

    return text_of(action)


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


def _steps_by_task(steps: Any) -> dict[str, int]:
    """``steps`` as {task or "default": steps}; refuses anything but integers >= 1."""
    if steps is None:
        return {}
    table = dict(steps) if isinstance(steps, dict) else {"default": steps}
    out = {}
    for task, value in table.items():
        try:
            n = int(value)
        except (TypeError, ValueError):
            n = 0
        if isinstance(value, bool) or n < 1 or str(n) != str(value).strip():
            raise ConfigError(
                f"pan-ref: expected steps >= 1 (a number, or a mapping of task to number), but "
                f"got {value!r}" + (f" for {task!r}." if task != "default" else ".")
            )
        out[str(task)] = n
    return out


#: DDIM timestep spacings (diffusers' ``timestep_spacing``); "leading" is the checkpoints' own
SPACINGS = ("leading", "trailing")

#: pan-ref's DDIM sampling (steps, spacing) on the shipped planning tasks when the user sets
#: neither ``steps`` nor ``spacing`` for them: planning imagines every candidate of every step
#: and scores only what the task's scorer perceives in the frame, which a single x0-prediction
#: step from the last timestep reads as well as the checkpoint's 10 steps do
#: (``benchmarks/planning_steps.py``, docs/benchmarks.md); recorded per task in the results
PLANNING_SAMPLING: dict[str, tuple[int, str]] = {
    "plan-nav": (1, "trailing"),
    "plan-arrange": (1, "trailing"),
}


def _spacing_by_task(spacing: Any) -> dict[str, str]:
    """``spacing`` as {task or "default": spacing}; refuses anything but :data:`SPACINGS`."""
    if spacing is None:
        return {}
    table = dict(spacing) if isinstance(spacing, dict) else {"default": spacing}
    for task, value in table.items():
        if value not in SPACINGS:
            raise ConfigError(
                f"pan-ref: expected spacing {' or '.join(SPACINGS)} (or a mapping of task to "
                f"spacing), but got {value!r}" + (f" for {task!r}." if task != "default" else ".")
            )
    return {str(task): str(value) for task, value in table.items()}


#: rows per network call of a classic-recipe model (see :class:`_ClassicRollouts`)
DEFAULT_MICRO_BATCH = 16

#: Flexible calls. With the call's size fixed a row's values depend on that row alone, but
#: tiny's CPU kernels (oneDNN convolutions, MKL matrix products, flash attention) also compute
#: a row alike across call sizes, on 1 and 2 torch threads: the backbone, UNet and VAE decoder
#: in every call of 16 to :data:`MAX_CALL_ROWS` rows, the VAE encoder in every call of an even
#: number of frames up to that (tests/models/test_pan_ref.py checks both for pan-tiny and the
#: test model). So there, with a micro-batch of at least 16, a step's rows go through in one
#: call instead of a second padded one, and frames are encoded in pairs instead of padded
#: micro-batches; the values are those of fixed micro-batches. With more threads oneDNN splits
#: some of those calls differently (measured: 3 and 4 threads), so calls keep exactly
#: ``micro_batch`` rows there.
WIDE_CALLS_FROM = 16
#: the most torch threads at which flexible calls are used
WIDE_CALLS_THREADS = 2
#: the most rows of one flexible network call
MAX_CALL_ROWS = 64

#: distinct frames whose latents a classic rollout scheme remembers (see ``_encode``)
LATENT_CACHE_SIZE = 4096


def _calls(total: int, size: int, flexible: tuple[int, int] | None) -> list[tuple[int, int, int]]:
    """The network calls over ``total`` rows: (start, stop, width) each, ``width`` being the
    call's rows with its padding.

    Args:
        total: the rows.
        size: the micro-batch: with ``flexible`` None, every call has exactly ``size`` rows.
        flexible: (least, multiple) for flexible calls (see :data:`WIDE_CALLS_FROM`): as few
            calls of at most :data:`MAX_CALL_ROWS` rows as possible, each padded to a multiple
            of ``multiple`` rows and to at least ``least``.
    """
    if flexible is None:
        return [(start, min(start + size, total), size) for start in range(0, total, size)]
    least, multiple = flexible
    calls = -(-total // MAX_CALL_ROWS)
    edges = [total * i // calls for i in range(calls + 1)]
    return [
        (start, stop, max(least, -(-(stop - start) // multiple) * multiple))
        for start, stop in itertools.pairwise(edges)
    ]


def _frame_key(frame: np.ndarray) -> bytes:
    """A digest of one uint8 frame's shape and pixels (the latent cache's key)."""
    import hashlib

    digest = hashlib.blake2b(repr(frame.shape).encode(), digest_size=16)
    digest.update(np.ascontiguousarray(frame).data)
    return digest.digest()


def _action_space(value: Any) -> str:
    """``text`` (every action read as text, vectors as numbers) or ``continuous``."""
    if value not in ("text", "continuous"):
        raise ConfigError(f"pan-ref: expected action_space text or continuous, but got {value!r}.")
    return str(value)


def _micro_batch(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"pan-ref: expected micro_batch >= 1, but got {value!r}.")
    return value


@dataclass
class PanRefState:
    """A batch of rollouts of a classic-recipe model.

    Attributes:
        latents: float [B, R', C, h, w] latents of the last R' <= R frames (oldest first).
        actions: per rollout, the texts of the R'-1 actions between those frames.
        generators: per rollout, the torch generator its noise comes from.
        pending: uint8 [B, H, W, 3] frames generated by the last step and not yet encoded
            into ``latents`` (encoded when the rollout steps again), or None.
        outcomes: float [B, 2] (reward, terminal probability) the reward head predicted for
            the last step, or None (no step yet, or no reward head).
    """

    latents: Any
    actions: list[list[str]]
    generators: list[Any]
    pending: Any = None
    outcomes: Any = None


def _distinct_rows(
    latents: Any, texts: list[list[str]], gens: list[Any]
) -> tuple[list[int], list[int]]:
    """Rows that would compute the same frame: same history latents, actions and noise stream.

    Closed-loop repeats of an episode imagine the same candidates from the same observation with
    the same seed until their choices part, so their rows repeat exactly.

    Returns:
        (the first row of each distinct row, in order; per row, the index of its distinct row).
    """
    flat = latents.reshape(latents.shape[0], -1).cpu().numpy()
    seen: dict[tuple[bytes, tuple[str, ...], bytes], int] = {}
    firsts: list[int] = []
    inverse: list[int] = []
    for i, (row, text, gen) in enumerate(zip(flat, texts, gens, strict=True)):
        key = (row.tobytes(), tuple(text), gen.get_state().numpy().tobytes())
        if key not in seen:
            seen[key] = len(firsts)
            firsts.append(i)
        inverse.append(seen[key])
    return firsts, inverse


class _Rollouts(ABC):
    """How ``pan-ref`` rolls out the models of one recipe (one row of :data:`ROLLOUTS`).

    Args:
        adapter: the adapter (its ``model``, ``steps``, ``guidance``, ``seed``, ``mode``).
    """

    #: whether the recipe's models take ``mode=`` (a rollout scheme)
    takes_mode: ClassVar[bool] = False
    #: whether the recipe's models take ``spacing=`` (and the planning tasks' defaults)
    takes_spacing: ClassVar[bool] = False

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

    def default_steps(self) -> int:
        """The checkpoint's DDIM sampling steps."""
        return int(self.model.config.decoder.sample_steps)

    def set_spacing(self, spacing: str | None) -> None:
        """Samples with this DDIM timestep spacing from now on (None: the checkpoint's)."""
        if spacing is not None:
            raise ConfigError("pan-ref: spacing= applies to classic (PanModel) checkpoints only.")

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

    def outcomes(self, state: Any) -> tuple[np.ndarray, np.ndarray]:
        """Predicted reward and terminal flag of the last step (models with a reward head)."""
        raise ConfigError("pan-ref: this checkpoint predicts no rewards.")

    def forget(self) -> None:  # noqa: B027 - optional hook, most schemes remember nothing
        """Drops whatever the scheme remembers of earlier calls (the weights or their device
        changed)."""

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

    Rows go through the networks in micro-batches of exactly ``micro_batch`` rows, the last one
    padded with copies of its first row: float kernels round differently for different batch
    sizes, but with the batch size fixed a row's values depend on that row alone (checked by
    tests/models/test_pan_ref.py), so rollouts stay independent of the batch they ran in while
    the networks see many rows per call. Where the kernels are known to compute a row alike
    across call sizes (:data:`WIDE_CALLS_FROM`), calls take more rows, or fewer frames, with
    the same values. ``micro_batch=1`` is the original row-by-row scheme. Each distinct frame is encoded once and remembered (a planner's
    candidates share their observation, and a closed-loop context slides by one frame a step),
    a generated frame is re-encoded only when the rollout takes another step, and rows of one
    step that repeat exactly (history, action and noise stream) are computed once.
    """

    takes_spacing: ClassVar[bool] = True

    def __init__(self, adapter: PanRefModel) -> None:
        super().__init__(adapter)
        #: latents float [C, h, w] by :func:`_frame_key` of the frame they encode
        self._latents: dict[bytes, Any] = {}

    def set_spacing(self, spacing: str | None) -> None:
        # "leading" is diffusers' default: None keeps the scheduler exactly as trained
        self.model.decoder.spacing = None if spacing in (None, "leading") else spacing

    def spec(self) -> ModelSpec:
        cfg = self.model.config
        continuous = self.adapter.action_space == ActionSpace.CONTINUOUS.value
        if continuous and not cfg.action_dim:
            raise ConfigError(
                "pan-ref: action_space=continuous needs a checkpoint trained on action vectors "
                "(model.action_dim > 0), but this one has action_dim 0; use action_space=text."
            )
        return ModelSpec(
            name="pan-ref",
            action_space=ActionSpace.CONTINUOUS if continuous else ActionSpace.TEXT,
            resolution=cfg.resolution,
            context_frames=None,
            frames_per_step=1,
            predicts_rewards=bool(cfg.reward_head),
            action_dim=int(cfg.action_dim) if continuous else None,
        )

    @property
    def history(self) -> int:
        return int(self.model.config.history)

    def _rows(self, fn: Any, *tensors: Any, pairs: bool = False) -> Any:
        """``fn(*chunk, n_real)`` over network calls of the rows (:func:`_calls`), concatenated.

        A call has exactly ``micro_batch`` rows or, where flexible calls are sound (a
        micro-batch of 16 to :data:`MAX_CALL_ROWS`, at most :data:`WIDE_CALLS_THREADS` torch
        threads), up to :data:`MAX_CALL_ROWS` rows: at least ``micro_batch``, or with ``pairs``
        (the VAE encoder) an even number. Short calls are padded with copies of their first row
        (contiguous copies: kernels may round differently for strided views); ``fn`` learns how
        many rows are real.
        """
        import torch

        size = self.adapter.micro_batch
        flexible = None
        if WIDE_CALLS_FROM <= size <= MAX_CALL_ROWS and (
            torch.get_num_threads() <= WIDE_CALLS_THREADS
        ):
            flexible = (2, 2) if pairs else (size, 1)
        out = []
        calls = _calls(int(tensors[0].shape[0]), size, flexible)
        for start, stop, width in calls:
            n = stop - start
            chunk = []
            for t in tensors:
                part = t[start:stop]
                if n < width:
                    pad = part[:1].expand(width - n, *part.shape[1:])
                    part = torch.cat([part, pad])
                chunk.append(part.contiguous())
            out.append(fn(*chunk, n)[:n])
        return torch.cat(out)

    def _encode(self, frames: Any) -> Any:
        """Latents float [B, T, C, h, w] of uint8 frames [B, T, H, W, 3].

        Each distinct frame is encoded once, one frame per row, and its latents are remembered
        (up to :data:`LATENT_CACHE_SIZE` frames): a closed-loop context slides by one true
        frame per step, and a planner's candidates share their context, so most frames of a
        reset were encoded before. The encoder computes each frame alone (a row's values do not
        depend on its micro-batch), so a remembered latent is the one a fresh encoding gives.
        """
        import torch

        b, t = frames.shape[:2]
        flat = frames.reshape(b * t, *frames.shape[2:])
        keys = [_frame_key(f) for f in flat.cpu().numpy()]
        found = {k: self._latents[k] for k in keys if k in self._latents}
        todo = {k: i for i, k in enumerate(keys) if k not in found}  # distinct, first seen
        if todo:
            rows = flat[torch.as_tensor(list(todo.values()))][:, None]
            new = self._rows(lambda f, n: self.model.encode_frames(f), rows, pairs=True)[:, 0]
            if len(self._latents) + len(todo) > LATENT_CACHE_SIZE:
                self._latents.clear()
            for key, latent in zip(todo, new, strict=True):
                found[key] = self._latents[key] = latent
        return torch.stack([found[k] for k in keys]).unflatten(0, (b, t))

    def forget(self) -> None:
        self._latents.clear()

    def reset(self, context: Context) -> PanRefState:
        import torch

        frames = np.ascontiguousarray(context.frames[:, -self.history :])
        with torch.no_grad():
            latents = self._encode(torch.from_numpy(frames))
        keep = frames.shape[1] - 1
        actions = [
            [action_text(a) for a in acts[len(acts) - keep :]] if keep else []
            for acts in context.actions
        ]
        return PanRefState(latents, actions, self.adapter._generators(context.seeds))

    def _settle(self, state: PanRefState) -> Any:
        """The history latents, with the last generated frame encoded into them (once)."""
        import torch

        if state.pending is None:
            return state.latents
        with torch.no_grad():
            # PAN re-encodes its own generated frames into the history.
            z = self._encode(state.pending[:, None])
        state.latents = torch.cat([state.latents, z], dim=1)[:, -self.history :]
        state.pending = None
        return state.latents

    def step(self, state: PanRefState, actions: Sequence[Action]) -> tuple[Any, np.ndarray]:
        import torch

        model, adapter = self.model, self.adapter
        latents = self._settle(state)
        texts = [[*hist, action_text(a)] for hist, a in zip(state.actions, actions, strict=True)]
        gens = state.generators
        outcomes: list[Any] = []
        firsts, inverse = _distinct_rows(latents, texts, gens)

        def chunk(latents: Any, ids: Any, index: Any, n: int) -> Any:
            # Padding rows draw from throwaway generators: the real rows' streams stay intact.
            rows = [gens[firsts[int(i)]] for i in index[:n].tolist()]
            rows += [torch.Generator(device=g.device) for g in rows[:1] * (len(index) - n)]
            nxt, out = model.predict_step(latents, ids, rows, adapter.steps, adapter.guidance)
            if out is not None:
                outcomes.append(out[:n])
            return model.decode_latents(nxt)

        with torch.no_grad():
            ids = model.encode_actions([texts[i] for i in firsts])
            index = torch.arange(len(firsts), device=ids.device)
            frames = self._rows(chunk, latents[firsts], ids, index)
        if len(firsts) < len(texts):
            # A repeated row's output is its first copy's (rows are independent), and its
            # generator moves on exactly as the first copy's did.
            frames = frames[torch.as_tensor(inverse)]
            for i, j in enumerate(inverse):
                if firsts[j] != i:
                    gens[i].set_state(gens[firsts[j]].get_state())
        keep = min(latents.shape[1] + 1, self.history) - 1
        hist = [row[len(row) - keep :] if keep else [] for row in texts]
        predicted = torch.cat(outcomes).cpu() if outcomes else None
        if predicted is not None and len(firsts) < len(texts):
            predicted = predicted[torch.as_tensor(inverse)]
        new = PanRefState(latents, hist, state.generators, pending=frames, outcomes=predicted)
        return new, frames[:, None].cpu().numpy()

    def outcomes(self, state: PanRefState) -> tuple[np.ndarray, np.ndarray]:
        """The reward head's reward and terminal flag (probability > 0.5) of the last step."""
        if state.outcomes is None:
            raise ConfigError("pan-ref: outcomes() before any step, or without a reward head.")
        out = state.outcomes.numpy()
        return out[:, 0].astype(np.float64), out[:, 1] > 0.5

    def clone(self, state: PanRefState) -> PanRefState:
        import torch

        gens = []
        for g in state.generators:
            new = torch.Generator(device=g.device)
            new.set_state(g.get_state())
            gens.append(new)
        pending = None if state.pending is None else state.pending.clone()
        outcomes = None if state.outcomes is None else state.outcomes.clone()
        return PanRefState(
            state.latents.clone(),
            [list(a) for a in state.actions],
            gens,
            pending=pending,
            outcomes=outcomes,
        )

    def describe(self) -> dict[str, Any]:
        dec, adapter = self.model.config.decoder, self.adapter
        return {
            **self._checkpoint(),
            "steps": adapter.steps_by_task.get("default") or dec.sample_steps,
            "steps_by_task": adapter.steps_by_task or None,
            "spacing_by_task": adapter.spacing_by_task or None,
            "planning_sampling": None
            if adapter.user_sampling
            else {t: {"steps": n, "spacing": sp} for t, (n, sp) in PLANNING_SAMPLING.items()},
            "guidance": adapter.guidance if adapter.guidance is not None else dec.guidance,
            "micro_batch": adapter.micro_batch,
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
            "steps": adapter.steps_by_task.get("default") or dec.sample_steps,
            "steps_by_task": adapter.steps_by_task or None,
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
        steps: DDIM sampling steps: a number, or per task a mapping such as
            ``{plan-nav: 3, plan-arrange: 3, default: 10}`` (``default``: every other task;
            without it, the checkpoint's ``sample_steps``, except on the planning tasks of
            :data:`PLANNING_SAMPLING`). Each task's steps are recorded in its results entry
            (``model_settings``).
        spacing: (classic checkpoints) DDIM timestep spacing, ``leading`` (the checkpoint's)
            or ``trailing`` (starts from the last timestep, for few steps); a value or a
            mapping of task to value, as ``steps``. A task for which neither ``steps`` nor
            ``spacing`` is given (nor a ``default``) samples as :data:`PLANNING_SAMPLING` says
            if it is listed there, else as the checkpoint does.
        guidance: classifier-free guidance scale (default: the checkpoint's; 1 = off).
        seed: offset mixed into every episode's seed (different samples of the same model).
        mode: (open-weights checkpoints) ``swin`` (Causal Swin-DPM) or ``chunk`` (plain
            chunk by chunk); default: the checkpoint's ``rollout``.
        micro_batch: (classic checkpoints) rows per network call, fixed so that a rollout's
            frames never depend on the batch it ran in (default 16; 1 runs row by row, the
            scheme before micro-batches, whose values differ from these by float rounding).
        action_space: (classic checkpoints) ``text`` (default): every action is read as text,
            and one without a discrete id but with a vector (PushT's pushes) as its numbers
            (``reference_model.tokenizer.action_text``), so the model runs on every task;
            ``continuous`` declares continuous actions of the checkpoint's ``action_dim``
            (checkpoints trained on vectors only), for continuous-only tasks and planners.

    A checkpoint with a reward head (``model.reward_head``) declares ``predicts_rewards``;
    :meth:`outcomes` gives the head's reward and terminal flag for the last step.

    The folder's recipe (``reference_model.recipes.checkpoint_recipe``) picks the model class
    and the rollout scheme (:data:`ROLLOUTS`): a ``PanOWModel`` folder (the open-weights recipe,
    ``reference_model/ow``) steps one chunk of ``frames_per_step`` video frames per action.

    Raises:
        DataError / ConfigError: a missing, corrupt or inconsistent checkpoint (named).
    """

    def __init__(
        self,
        path: str | None = None,
        steps: int | dict[str, int] | None = None,
        guidance: float | None = None,
        seed: int = 0,
        mode: str | None = None,
        micro_batch: int = DEFAULT_MICRO_BATCH,
        action_space: str = "text",
        spacing: str | dict[str, str] | None = None,
    ) -> None:
        self.path: Path | None = Path(path) if path else default_checkpoint()
        self.mode = mode
        self.micro_batch = _micro_batch(micro_batch)
        self.action_space = _action_space(action_space)
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
        self._setup(model_class.from_pretrained(self.path), steps, guidance, seed, spacing)

    @classmethod
    def from_model(
        cls,
        model: Any,
        steps: int | dict[str, int] | None = None,
        guidance: float | None = None,
        seed: int = 0,
        micro_batch: int = DEFAULT_MICRO_BATCH,
        action_space: str = "text",
        spacing: str | dict[str, str] | None = None,
    ) -> PanRefModel:
        """Wraps an in-memory :class:`reference_model.model.PanModel` (benchmarks, notebooks)."""
        self = cls.__new__(cls)
        self.path = None
        self.mode = None
        self.micro_batch = _micro_batch(micro_batch)
        self.action_space = _action_space(action_space)
        self._setup(model, steps, guidance, seed, spacing)
        return self

    def _setup(
        self, model: Any, steps: Any, guidance: float | None, seed: int, spacing: Any = None
    ) -> None:
        self.steps_by_task = _steps_by_task(steps)
        self.steps = self.steps_by_task.get("default")
        self.spacing_by_task = _spacing_by_task(spacing)
        #: whether the user chose the sampling of every task (no planning defaults then)
        self.user_sampling = "default" in self.steps_by_task or "default" in self.spacing_by_task
        self.guidance = None if guidance is None else float(guidance)
        if self.guidance is not None and not (math.isfinite(self.guidance) and self.guidance >= 0):
            raise ConfigError(
                f"pan-ref: expected guidance to be a number >= 0 (1 = off), but got {guidance!r}."
            )
        self.seed = int(seed)
        if self.seed < 0:
            raise ConfigError(f"pan-ref: expected seed >= 0, but got {seed!r}.")
        self.model = model.eval()
        self._rollouts = _rollouts_for(getattr(model, "recipe", None) or "")(self)
        if self.spacing_by_task and not self._rollouts.takes_spacing:
            self._rollouts.set_spacing(next(iter(self.spacing_by_task.values())))  # refuses
        self._rollouts.set_spacing(self.spacing_by_task.get("default"))
        self.spec = self._rollouts.spec()

    def for_task(self, task: str) -> dict[str, Any]:
        """Picks the task's DDIM steps and spacing (see ``steps``, ``spacing``); returns them
        for the results."""
        steps = self.steps_by_task.get(task, self.steps_by_task.get("default"))
        spacing = self.spacing_by_task.get(task, self.spacing_by_task.get("default"))
        planning = steps is None and spacing is None and task in PLANNING_SAMPLING
        if planning and self._rollouts.takes_spacing:
            steps, spacing = PLANNING_SAMPLING[task]
        self.steps = steps
        self._rollouts.set_spacing(spacing)
        default = self._rollouts.default_steps()
        settings: dict[str, Any] = {"steps": steps or default, "checkpoint_steps": default}
        if self._rollouts.takes_spacing:
            settings["spacing"] = spacing or "leading"
        return settings

    def to(self, device: str) -> PanRefModel:
        self.model.to(device)
        self._rollouts.forget()
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

    def outcomes(self, state: Any) -> tuple[np.ndarray, np.ndarray]:
        return self._rollouts.outcomes(state)

    def describe(self) -> dict[str, Any]:
        return self._rollouts.describe()

    def identity(self) -> dict[str, Any]:
        """The weights' sha256: a resume must find the same weights, not a retrained checkpoint
        saved to the same path (one run would mix two models' samples)."""
        from panbench.io import sha256_file
        from reference_model.model import WEIGHTS_NAME

        if self.path is None:
            return {}
        return {"checkpoint_sha256": sha256_file(self.path / WEIGHTS_NAME)}
