"""PanModel: encoder h, backbone f and decoder g, with losses, rollout steps and safe checkpoints.

Checkpoint format (``save_pretrained``/``from_pretrained``): a folder with ``config.json`` (class
name, format version, panbench version, the model config, and free-form ``training`` metadata such
as the command that produced it) and ``model.safetensors`` (every parameter and buffer). Both are
written atomically; loading checks the weights against the config and names the file and the
first mismatches when they disagree.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from panbench.errors import ConfigError, DataError
from reference_model.backbone import Backbone
from reference_model.config import ModelConfig, from_dict
from reference_model.decoder import Decoder
from reference_model.encoder import Encoder, frames_to_tensor, object_mask, tensor_to_frames
from reference_model.tokenizer import ByteTokenizer

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "PanModel",
    "check_weights",
    "read_checkpoint_doc",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
_TOP_KEYS = ("class_name", "format_version", "panbench_version", "model", "training", "weights")


def _weighted_mean(err: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``err`` [M, C, h, w] under broadcast ``weight`` [M, 1, h, w], normalised to mean 1."""
    if weight is None:
        return err.mean()
    return (err * weight).mean() / weight.mean()


class PanModel(nn.Module):
    """The PAN reference world model (Generative Latent Prediction).

    Args:
        config: the model config (validated here).
    """

    #: the training recipe this model belongs to (a key of ``reference_model.recipes.RECIPES``)
    recipe: ClassVar[str] = "classic"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.validate()
        self.tokenizer = ByteTokenizer(config.backbone.max_action_bytes)
        self.encoder = Encoder(config.encoder)
        self.backbone = Backbone(config)
        self.decoder = Decoder(
            config.decoder,
            config.encoder.latent_channels,
            config.latent_resolution,
            config.backbone.hidden_size,
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------------------- pieces
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """h: uint8 [B, T, H, W, 3] frames to normalised latents float [B, T, C, h, w]."""
        b, t = frames.shape[:2]
        x = frames_to_tensor(frames.flatten(0, 1).to(self.device))
        return self.encoder.encode(x).unflatten(0, (b, t))

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Latents float [M, C, h, w] to uint8 frames [M, H, W, 3]."""
        return tensor_to_frames(self.encoder.decode(z))

    def encode_actions(self, texts: Sequence[Sequence[str]]) -> torch.Tensor:
        """Per batch row, R action texts to byte ids int64 [B, R, L] on the model's device."""
        ids = [self.tokenizer.encode(list(row)) for row in texts]
        return torch.stack(ids).to(self.device)

    # ------------------------------------------------------------------------------- training
    def autoencoder_loss(
        self,
        frames: torch.Tensor,
        generator: torch.Generator | None = None,
        object_weight: float = 0.0,
    ) -> dict[str, torch.Tensor]:
        """First stage: reconstruction loss of h on uint8 frames [N, H, W, 3] (object pixels
        weighted ``1 + object_weight``, see :meth:`Encoder.reconstruction_loss`)."""
        x = frames_to_tensor(frames.to(self.device))
        return self.encoder.reconstruction_loss(x, generator, object_weight)

    def dynamics_loss(
        self,
        frames: torch.Tensor,
        action_ids: torch.Tensor,
        generator: torch.Generator | None,
        outcomes: torch.Tensor | None = None,
        joint_encoder: bool = False,
        unroll: int = 0,
        unroll_steps: int = 3,
        unroll_history: str = "sampled",
    ) -> dict[str, torch.Tensor]:
        """Second stage: predict frame r+1 from rounds 0..r of a window, for every r.

        Args:
            frames: uint8 [B, R+1, H, W, 3] a window of consecutive frames.
            action_ids: int64 [B, R, L] the actions between them.
            generator: all random draws of the decoder loss.
            outcomes: float [B, R, 3] per transition (reward, terminal, known): the targets of
                the reward head where ``known`` is 1 (ignored without a reward head).
            joint_encoder: h trains too (``train.joint_encoder``): its latents keep their
                gradients, and the generative objective adds h's reconstruction loss
                (``recon``) on the window's frames. Otherwise h is frozen.
            unroll: the window's last ``unroll`` frames are learned from the model's own
                predictions (``train.unroll``): the first R + 1 frames train as above; then,
                ``unroll`` times, the model samples the next frame from its history with
                ``unroll_steps`` DDIM steps (no gradient), decodes and re-encodes it as a
                rollout does, shifts it into the history and learns the following true frame
                from there (``unroll`` in the result: the mean of those losses, added to
                ``loss``). R is then the window's length minus ``unroll`` minus 1.
            unroll_history: ``sampled`` (f's history holds the samples, as above) or
                ``true`` (f keeps the true history; only g's previous frame is the sample).

        Returns:
            ``{"loss", "diffusion", "latent", "outcome", "collapse", "encoder_var"}`` (plus
            ``recon`` with a joint h under the generative objective): ``collapse`` is the
            collapse probe, the variance of the predicted state tokens across the batch (mean
            over tokens and features; detached); ``encoder_var`` the same of h's normalised
            latents of the window's frames (about 0.3 for the shipped h on shapes: most cells
            are background). With a joint h a latent-only objective can drive both towards
            zero. ``outcome`` is the reward head's loss (0 without a head or targets).
        """
        with torch.set_grad_enabled(joint_encoder and torch.is_grad_enabled()):
            latents = self.encode_frames(frames)
        rounds = latents.shape[1] - 1 - unroll
        if rounds < 1:
            raise ConfigError(
                f"dynamics_loss: expected a window of more than unroll + 1 = {unroll + 1} "
                f"frames, but got {latents.shape[1]}."
            )
        hist, nxt = latents[:, :rounds], latents[:, 1 : rounds + 1]
        states = self.backbone(hist, action_ids[:, :rounds])  # [B, R, N, D]
        flat_states = states.flatten(0, 1)
        known = None if outcomes is None else outcomes[:, :rounds]
        objects = self.object_cells(frames) if self.config.object_weight else None
        loss, diffusion, latent = self._next_losses(
            flat_states,
            hist.flatten(0, 1),
            nxt.flatten(0, 1),
            generator,
            None if objects is None else objects[:, 1 : rounds + 1].flatten(0, 1),
        )
        extra: dict[str, torch.Tensor] = {}
        if joint_encoder and self.config.objective == "generative":
            pixels = frames_to_tensor(frames.flatten(0, 1).to(self.device))
            extra["recon"] = self.encoder.reconstruction_loss(pixels)["loss"]
            loss = loss + extra["recon"]
        outcome = self.outcome_loss(flat_states, known)
        loss = loss + self.config.reward_weight * outcome
        if unroll:
            extra["unroll"] = self._unrolled_loss(
                latents,
                action_ids,
                states[:, -1],
                rounds,
                generator,
                (unroll_steps, unroll_history == "true"),
                outcomes,
                objects,
            )
            loss = loss + extra["unroll"]
        collapse = flat_states.detach().float().var(dim=0).mean()
        encoder_var = latents.detach().flatten(0, 1).float().var(dim=0).mean()
        return {
            "loss": loss,
            "diffusion": diffusion,
            "latent": latent,
            "outcome": outcome,
            "collapse": collapse,
            "encoder_var": encoder_var,
            **extra,
        }

    def _next_losses(
        self,
        states: torch.Tensor,
        prev: torch.Tensor,
        target: torch.Tensor,
        generator: torch.Generator | None,
        objects: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, diffusion, latent) of predicting ``target`` [M, C, h, w] from ``states``
        [M, N, D] after ``prev``, under the config's objective; ``objects`` [M, 1, h, w]: the
        target's object cells (:meth:`object_cells`) when ``object_weight`` is set."""
        weight = self.change_weights(prev, target, objects)
        pred_latent = self.backbone.to_latent(states)
        latent = _weighted_mean((pred_latent.float() - target) ** 2, weight)
        if self.config.objective == "generative":
            diffusion = self.decoder.loss(target, prev, states, generator, weight)
            return diffusion + self.config.latent_weight * latent, diffusion, latent
        # g renders from detached states (and, with a joint h, detached latents)
        diffusion = self.decoder.loss(
            target.detach(), prev.detach(), states.detach(), generator, weight
        )
        return diffusion + latent, diffusion, latent

    def _unrolled_loss(
        self,
        latents: torch.Tensor,
        action_ids: torch.Tensor,
        state: torch.Tensor,
        rounds: int,
        generator: torch.Generator | None,
        sampling: tuple[int, bool],
        outcomes: torch.Tensor | None,
        objects: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The mean loss of the window's last frames, each learned after the model's own
        sample of the frame before it (see :meth:`dynamics_loss`).

        Args:
            latents: float [B, R + 1 + U, C, h, w] the window's latents.
            action_ids: int64 [B, R + U, L].
            state: float [B, N, D] the teacher-forced state of frame R (sampled first).
            rounds: R, the history length.
            generator: draws the sampling noise (one seed per row) and the losses' noise.
            sampling: DDIM steps of each sample, and whether f keeps the true history (only
                g's previous frame is then the sample).
            outcomes: float [B, R + U, 3] or None.
            objects: float [B, R + 1 + U, 1, h, w] the window's object cells, or None.
        """
        steps, true_history = sampling
        hist = latents[:, :rounds]
        total = latents.new_zeros(())
        unroll = latents.shape[1] - 1 - rounds
        for k in range(unroll):
            seeds = torch.randint(0, 2**62, (hist.shape[0],), generator=generator).tolist()
            gens = [torch.Generator(device=self.device).manual_seed(int(s)) for s in seeds]
            with torch.no_grad():
                z = self.decoder.sample(hist[:, -1], state.detach(), gens, steps)
                # A rollout re-encodes its own frames (uint8) into the history.
                z = self.encode_frames(self.decode_latents(z)[:, None])[:, 0]
            hist = torch.cat([hist[:, 1:], z[:, None].to(hist.dtype)], dim=1)
            seen = latents[:, k + 1 : k + 1 + rounds] if true_history else hist
            state = self.backbone(seen, action_ids[:, k + 1 : k + 1 + rounds])[:, -1]
            target = latents[:, rounds + 1 + k]
            cells = None if objects is None else objects[:, rounds + 1 + k]
            loss, _, _ = self._next_losses(state, z, target, generator, cells)
            known = None if outcomes is None else outcomes[:, rounds + k : rounds + k + 1]
            total = total + loss + self.config.reward_weight * self.outcome_loss(state, known)
        return total / unroll

    def outcome_loss(self, states: torch.Tensor, outcomes: torch.Tensor | None) -> torch.Tensor:
        """Reward MSE (rewards clipped to [-1, 1]) plus terminal cross-entropy, over known rows.

        Args:
            states: float [M, N, D] predicted state tokens.
            outcomes: float [M', 3] (or [B, R, 3]) reward, terminal, known; None: no targets.
        """
        if not self.config.reward_head or outcomes is None:
            return states.new_zeros(())
        target = outcomes.reshape(-1, 3).to(states.device, torch.float32)
        known = target[:, 2]
        if float(known.sum()) == 0:
            return states.new_zeros(())
        pred = self.backbone.to_outcomes(states).float()
        reward = (pred[:, 0] - target[:, 0].clamp(-1, 1)) ** 2
        terminal = nn.functional.binary_cross_entropy_with_logits(
            pred[:, 1], target[:, 1], reduction="none"
        )
        return ((reward + terminal) * known).sum() / known.sum()

    def change_weights(
        self, prev: torch.Tensor, target: torch.Tensor, objects: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """Per-cell loss weights from ``change_weight`` and ``object_weight`` (None when
        both are 0, or ``object_weight`` is 0 and ``objects`` None).

        Args:
            prev: float [M, C, h, w] current latents.
            target: float [M, C, h, w] next latents.
            objects: float [M, 1, h, w] the target frame's object cells (:meth:`object_cells`),
                weighed ``object_weight`` more; None: none.

        Returns:
            float [M, 1, h, w]: 1, plus ``change_weight`` where ``max_c |target - prev|``
            exceeds ``change_threshold``, plus ``object_weight`` on object cells; or None.
        """
        cfg = self.config
        weight = None
        if cfg.change_weight:
            changed = (target - prev).abs().amax(dim=1, keepdim=True) > cfg.change_threshold
            weight = 1.0 + cfg.change_weight * changed.to(target.dtype)
        if cfg.object_weight and objects is not None:
            extra = cfg.object_weight * objects.to(target.device, target.dtype)
            weight = 1.0 + extra if weight is None else weight + extra
        return weight

    def object_cells(self, frames: torch.Tensor) -> torch.Tensor:
        """Latent cells that cover an object pixel (:func:`object_mask`) of their frame.

        Args:
            frames: uint8 [B, T, H, W, 3].

        Returns:
            float [B, T, 1, h, w]: 1 where any pixel of the cell's H/h x W/w block is an
            object pixel, else 0.
        """
        b, t = frames.shape[:2]
        x = frames_to_tensor(frames.flatten(0, 1).to(self.device))
        block = x.shape[-1] // self.config.latent_resolution
        cells = nn.functional.max_pool2d(object_mask(x).float(), block)
        return cells.unflatten(0, (b, t))

    def forward(self, stage: str, *args: Any) -> dict[str, torch.Tensor]:
        """``stage`` "autoencoder" or "dynamics": the matching loss (so DDP can wrap the model)."""
        if stage == "autoencoder":
            return self.autoencoder_loss(*args)
        return self.dynamics_loss(*args)

    # ------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_next(
        self,
        latents: torch.Tensor,
        action_ids: torch.Tensor,
        generators: Sequence[torch.Generator],
        steps: int | None = None,
        guidance: float | None = None,
    ) -> torch.Tensor:
        """One rollout step: next latents given R history rounds ending with the new action.

        Args:
            latents: float [B, R, C, h, w] latents of the last R frames (oldest first).
            action_ids: int64 [B, R, L] the action after each frame (the last is the new one).
            generators: B per-rollout generators (noise independent of the batch).
            steps / guidance: sampling options (defaults from the config).

        Returns:
            float [B, C, h, w] the sampled latent of the next frame.
        """
        return self.predict_step(latents, action_ids, generators, steps, guidance)[0]

    @torch.no_grad()
    def predict_step(
        self,
        latents: torch.Tensor,
        action_ids: torch.Tensor,
        generators: Sequence[torch.Generator],
        steps: int | None = None,
        guidance: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`predict_next` and the reward head's prediction for the same step.

        Returns:
            The next latents float [B, C, h, w] and, with a reward head, float [B, 2]
            (reward, terminal probability); else None.
        """
        states = self.backbone.last_round(latents, action_ids)
        nxt = self.decoder.sample(latents[:, -1], states, generators, steps, guidance)
        if not self.config.reward_head:
            return nxt, None
        raw = self.backbone.to_outcomes(states).float()
        return nxt, torch.stack([raw[:, 0].clamp(-1, 1), torch.sigmoid(raw[:, 1])], dim=1)

    # ------------------------------------------------------------------------------- checkpoints
    def save_pretrained(self, path: str | Path, training: dict[str, Any] | None = None) -> Path:
        """Writes ``config.json`` and ``model.safetensors`` into ``path`` (each file atomically).

        Args:
            path: the folder (created if needed).
            training: metadata recorded under ``"training"`` (command, steps, data, ...).

        Returns:
            The folder.
        """
        from safetensors.torch import save

        from panbench import __version__
        from panbench.io import atomic_write_bytes, atomic_write_json

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        atomic_write_bytes(out / WEIGHTS_NAME, save(tensors, metadata={"format": "pt"}))
        meta = {
            "class_name": type(self).__name__,
            "format_version": FORMAT_VERSION,
            "panbench_version": __version__,
            "model": dataclasses.asdict(self.config),
            "training": training or {},
            "weights": WEIGHTS_NAME,
        }
        atomic_write_json(out / CONFIG_NAME, meta)
        return out

    @staticmethod
    def read_config(path: str | Path) -> tuple[ModelConfig, dict[str, Any]]:
        """Reads and checks a checkpoint's ``config.json``.

        Returns:
            The model config and the whole JSON document.

        Raises:
            DataError: the folder or file is missing, or the file is not JSON.
            ConfigError: unknown keys, a wrong class or format version, bad values.
        """
        folder = Path(path)
        file = folder / CONFIG_NAME
        doc = read_checkpoint_doc(folder, PanModel.__name__, FORMAT_VERSION, _TOP_KEYS)
        config = from_dict(ModelConfig, doc["model"], str(file), "model")
        return config.validate(str(file)), doc

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> PanModel:
        """Rebuilds a model saved by :meth:`save_pretrained`.

        Raises:
            DataError: a missing or corrupt file (named, with where it looked).
            ConfigError: ``config.json`` is invalid, or the weights do not match it (the message
                names both files and the first mismatching tensors).
        """
        config, _ = cls.read_config(path)
        file, tensors = read_weights(path)
        model = cls(config)
        check_weights(tensors, model.state_dict(), file, Path(path) / CONFIG_NAME)
        model.load_state_dict(tensors, strict=True)
        return model.to(device).eval()

    def num_parameters(self) -> dict[str, int]:
        """Parameter counts of h, f, g and the total."""
        counts = {
            name: sum(p.numel() for p in getattr(self, name).parameters())
            for name in ("encoder", "backbone", "decoder")
        }
        counts["total"] = sum(counts.values())
        return counts


def read_checkpoint_doc(
    folder: Path, class_name: str, format_version: int, top_keys: Sequence[str]
) -> dict[str, Any]:
    """Reads a checkpoint folder's ``config.json`` and checks its class, version and keys.

    Raises:
        DataError: the folder or file is missing, or the file is not JSON.
        ConfigError: unknown keys, a wrong class or format version, no ``model`` section.
    """
    file = folder / CONFIG_NAME
    if not folder.is_dir():
        raise DataError(
            f"Checkpoint folder {folder} not found (expected a folder with {CONFIG_NAME} "
            f"and {WEIGHTS_NAME}, as written by {class_name}.save_pretrained or `panbench train`)."
        )
    if not file.is_file():
        raise DataError(f"Checkpoint {folder} has no {CONFIG_NAME} (looked for {file}).")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{file}: not valid JSON: {err}") from err
    if not isinstance(doc, dict):
        raise ConfigError(f"{file}: expected a JSON object, but got {type(doc).__name__}.")
    unknown = [k for k in doc if k not in top_keys]
    if unknown:
        raise ConfigError(f"{file}: unknown key {unknown[0]!r}; known keys: {', '.join(top_keys)}.")
    if doc.get("class_name") != class_name:
        raise ConfigError(
            f"{file}: expected class_name {class_name!r}, but got {doc.get('class_name')!r}."
        )
    if doc.get("format_version") != format_version:
        raise ConfigError(
            f"{file}: expected format_version {format_version}, but got "
            f"{doc.get('format_version')!r}."
        )
    if "model" not in doc:
        raise ConfigError(f"{file}: missing the 'model' section.")
    return doc


def read_weights(path: str | Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """The tensors of a checkpoint folder's weights file, on CPU.

    Returns:
        The file read and its tensors by name.

    Raises:
        DataError: the file is missing (says where it looked) or not readable safetensors.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = Path(path) / WEIGHTS_NAME
    if not file.is_file():
        raise DataError(f"Checkpoint {path} has no {WEIGHTS_NAME} (looked for {file}).")
    try:
        return file, load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(f"{file}: not a readable safetensors file ({err}).") from err


def check_weights(
    tensors: dict[str, torch.Tensor],
    expected: dict[str, torch.Tensor],
    file: Path,
    config_file: Path,
) -> None:
    """Refuses weights whose names, shapes or kinds of dtype differ from what the config builds.

    Raises:
        ConfigError: naming both files and the first mismatches (key and both shapes or dtypes).
    """
    problems = []
    for key in expected:
        if key not in tensors:
            problems.append(f"missing {key}")
        elif tuple(tensors[key].shape) != tuple(expected[key].shape):
            problems.append(
                f"{key} has shape {list(tensors[key].shape)} in the file but the config "
                f"builds {list(expected[key].shape)}"
            )
        elif tensors[key].dtype.is_floating_point != expected[key].dtype.is_floating_point:
            # A cast between float widths is harmless; integers for floats (or back) are not.
            problems.append(
                f"{key} has dtype {tensors[key].dtype} in the file but the config builds "
                f"{expected[key].dtype}"
            )
    problems += [f"unexpected {key}" for key in tensors if key not in expected]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ConfigError(
            f"{file} does not match {config_file}: " + "; ".join(problems[:5]) + more + "."
        )
