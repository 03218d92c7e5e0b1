"""PanOWModel: the open-weights PAN world model (backbone f + encoder h, Wan decoder g).

It composes :class:`~reference_model.ow.backbone.OWBackbone` and
:class:`~reference_model.ow.decoder.OWDecoder` and adds what training and evaluation need: the
two stage losses over cached features (:mod:`reference_model.ow.cache`), a stepwise rollout for
the ``pan-ref`` adapter, and checkpoints.

Checkpoint format (``save_pretrained`` / ``from_pretrained``): a folder with

- ``config.json``: ``class_name`` (``PanOWModel``), ``format_version`` (1), ``panbench_version``,
  ``model`` (the :class:`~reference_model.ow.config.OWModelConfig`), ``training`` (free-form:
  command, run config, step), ``weights`` (``model.safetensors``) and ``base`` (the local
  pretrained folders the weights not saved are read from).
- ``model.safetensors``: ``backbone.*`` as :meth:`OWBackbone.checkpoint_state_dict` chooses (the
  queries, projection and patch embedding, LoRA adapters or the whole LLM by ``tune``; every
  weight of a config-built LLM) and ``decoder.*``: every weight of a part built from a config
  dict, and of a part loaded from a pretrained folder only what trains (the whole Wan transformer,
  or its state stream with ``train_scope: state``). Frozen pretrained weights (the VAE, umT5, a
  frozen LLM) are referenced by path, never copied.

Loading rebuilds the model from the config (reading the base folders) and then loads the file;
a missing or extra key, or a tensor of another shape, is an error naming the key and both
shapes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from panbench.errors import ConfigError
from reference_model.config import from_dict
from reference_model.model import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    check_weights,
    read_checkpoint_doc,
    read_weights,
)
from reference_model.ow import RECIPE
from reference_model.ow.backbone import OWBackbone
from reference_model.ow.cache import encoder_fingerprint
from reference_model.ow.config import OWModelConfig
from reference_model.ow.decoder import OWDecoder

__all__ = ["CONFIG_NAME", "FORMAT_VERSION", "WEIGHTS_NAME", "OWRollout", "PanOWModel"]

FORMAT_VERSION = 1
_TOP_KEYS = (
    "class_name",
    "format_version",
    "panbench_version",
    "model",
    "training",
    "weights",
    "base",
)


def _to_unit(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W, 3] to float [..., 3, H, W] in [-1, 1]."""
    return frames.movedim(-1, -3).float().div(127.5).sub(1.0)


def _to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """float [..., 3, H, W] in [-1, 1] to uint8 [..., H, W, 3]."""
    return frames.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).movedim(-3, -1)


class PanOWModel(nn.Module):
    """Open-weights PAN: ``backbone`` (f and h) and ``decoder`` (g, with the frozen VAE and umT5).

    Args:
        config: the model config (validated here).

    Raises:
        ConfigError: a bad config, or base weights that cannot be found.
    """

    #: the training recipe this model belongs to (a key of ``reference_model.recipes.RECIPES``)
    recipe: ClassVar[str] = RECIPE

    def __init__(self, config: OWModelConfig) -> None:
        super().__init__()
        self.config = config.validate()
        self.backbone = OWBackbone(config.backbone)
        dec = config.decoder
        tokenizer = None
        if dec.tokenizer_path is None and dec.pretrained_path is None:
            from reference_model.ow.tokenizers import offline_tokenizer

            tokenizer = offline_tokenizer()  # config-built (test-size) decoders only
        self.decoder = OWDecoder(dec, tokenizer)
        # Fixed at construction: OWBackbone.trainable_parameters() follows requires_grad, which
        # set_stage changes.
        self._backbone_trainable = sorted(self.backbone.trainable_parameters())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def pixel_frames_per_chunk(self) -> int:
        """Video frames per chunk: the VAE's temporal factor x ``chunk_frames``."""
        factor = getattr(self.decoder.vae.config, "scale_factor_temporal", None) or 4
        return int(factor) * self.config.decoder.chunk_frames

    # ------------------------------------------------------------------------------- features
    def feature_fingerprint(self) -> str:
        """sha256 of the frozen encoders whose outputs the feature cache holds (VAE, umT5)."""
        tok = self.decoder.tokenizer
        extra = {
            "text_len": self.config.decoder.text_len,
            "tokenizer": type(tok).__name__,
            "vocab": len(tok),
            "tokenizer_probe": tok("a red circle moves left")["input_ids"],
        }
        modules = {"vae": self.decoder.vae, "text_encoder": self.decoder.text_encoder}
        return encoder_fingerprint(modules, extra)

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """float [B, T, 3, H, W] in [-1, 1] to normalised latents [B, C, t, h, w] (frozen VAE)."""
        return self.decoder.encode_video(frames.to(self.device))

    def encode_text(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Action texts to umT5 embeddings [B, text_len, D] and mask [B, text_len]."""
        return self.decoder.encode_text(texts)

    # ------------------------------------------------------------------------------- training
    def trainable_parameters(self, stage: int) -> dict[str, nn.Parameter]:
        """The parameters stage ``stage`` trains, by ``named_parameters`` name.

        Stage 1: the decoder's (the Wan transformer, or its state stream per ``train_scope``).
        Stage 2: those plus the backbone's (queries, projection, encoder h; LoRA or the LLM per
        ``tune``). The VAE and umT5 never train.
        """
        if stage not in (1, 2):
            raise ConfigError(f"Expected stage 1 or 2, but got {stage!r}.")
        named = dict(self.named_parameters())
        out = {f"decoder.{n}": named[f"decoder.{n}"] for n in self.decoder.trainable_parameters()}
        if stage == 2:
            out.update({f"backbone.{n}": named[f"backbone.{n}"] for n in self._backbone_trainable})
        return out

    def set_stage(self, stage: int) -> list[str]:
        """Freezes every parameter but those of ``stage``; returns their names."""
        params = self.trainable_parameters(stage)
        for p in self.parameters():
            p.requires_grad_(False)
        for p in params.values():
            p.requires_grad_(True)
        return sorted(params)

    def enable_activation_checkpointing(self) -> None:
        """Recompute every transformer block's activations in backward (LLM, tower, Wan)."""
        self.backbone.gradient_checkpointing_enable()
        self.decoder.transformer.enable_gradient_checkpointing()

    def predict_states(self, frames: torch.Tensor, texts: Sequence[Sequence[str]]) -> torch.Tensor:
        """f over a window's rounds: the state tokens of every chunk.

        Args:
            frames: uint8 [B, K, H, W, 3], the frame at the start of each chunk.
            texts: B lists of K action texts.

        Returns:
            float32 [B, K, num_queries, state_dim]; chunk k's from rounds <= k only.
        """
        b, k = frames.shape[:2]
        x = _to_unit(frames.to(self.device).flatten(0, 1))
        obs = self.backbone.encode_observation(x).unflatten(0, (b, k))
        return self.backbone(obs, [list(t) for t in texts])

    def stage_loss(
        self, stage: int, batch: Mapping[str, Any], generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """The training loss of ``stage`` on a batch of cached windows.

        Args:
            stage: 1 (decoder alone; the state stream is idle) or 2 (the backbone's states over
                the window's rounds feed the state stream; the loss is the decoder's
                generative loss, so its gradient reaches f through g).
            batch: :meth:`reference_model.ow.cache.FeatureCache.batch`: ``latents``
                [B, C, 1 + K*F, h, w], ``text`` [B, K, L, D], ``frames`` uint8 [B, K, H, W, 3],
                ``texts``.
            generator: every noise draw of the decoder loss.

        Returns:
            ``{"loss"}``, a scalar.
        """
        latents = batch["latents"].to(self.device)
        text = batch["text"].to(self.device)
        state = None
        if stage == 2:
            state = self.predict_states(batch["frames"], batch["texts"])
        loss = self.decoder.loss(latents[:, :, :1], latents[:, :, 1:], text, state, generator)
        return {"loss": loss}

    def forward(
        self, stage: int, batch: Mapping[str, Any], generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """:meth:`stage_loss` (the root call FSDP2 and DDP hook into)."""
        return self.stage_loss(stage, batch, generator)

    # ------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def start_rollout(
        self,
        context: torch.Tensor,
        past_actions: Sequence[str],
        generator: torch.Generator,
        mode: str | None = None,
        steps: int | None = None,
    ) -> OWRollout:
        """Begins one rollout from context frames (the last is the conditioning frame).

        Args:
            context: uint8 [T, H, W, 3] context frames, oldest first (at the model's resolution).
            past_actions: the T-1 actions between them; the last ``history - 1`` (frame,
                action) pairs become the backbone's earliest rounds.
            generator: the rollout's noise source.
            mode: ``swin`` or ``chunk`` (default: the decoder config's ``rollout``).
            steps: denoising steps per chunk (default: ``sample_steps``).
        """
        if context.ndim != 4 or len(past_actions) != context.shape[0] - 1:
            raise ConfigError(
                f"Expected context uint8 [T, H, W, 3] and T-1 actions, but got "
                f"{tuple(context.shape)} and {len(past_actions)} actions."
            )
        keep = self.config.backbone.history - 1
        pairs = list(zip(context[:-1], past_actions, strict=True))[-keep:] if keep else []
        frames = context.to(self.device)
        x = _to_unit(frames[-1:])
        cond = self.decoder.encode_video(x[None])  # [1, C, 1, h, w]
        obs = [
            self.backbone.encode_observation(_to_unit(f[None].to(self.device))) for f, _ in pairs
        ]
        obs.append(self.backbone.encode_observation(x))
        stream = self.decoder.start_stream(cond, generator, mode, steps)
        return OWRollout(
            stream=stream,
            cond=cond,
            chunks=[],
            obs=obs,
            actions=[str(a) for _, a in pairs],
        )

    @torch.no_grad()
    def rollout_step(self, rollout: OWRollout, action: str) -> torch.Tensor:
        """The next chunk from one action: uint8 frames [P, H, W, 3] (P = pixel frames/chunk).

        The backbone reads the last ``history`` rounds (the new action on the latest frame),
        the decoder makes the chunk stepwise, and the chunk's last frame is decoded and
        re-encoded by h as the next round's observation, as PAN does at inference. The video is
        decoded causally from the conditioning latent through every chunk so far.
        """
        h = self.config.backbone.history
        obs = torch.stack(rollout.obs[-h:], 1)  # [1, R, N, hidden]
        acts = [*rollout.actions, action][-h:]
        state = self.backbone.predict(obs, [acts])  # [1, Q, S]
        (text, _) = self.decoder.encode_text([action])
        chunk = self.decoder.stream_step(rollout.stream, text, state)
        rollout.chunks.append(chunk)
        video = self.decoder.decode_latents(torch.cat([rollout.cond, *rollout.chunks], 2))
        frames = video[0, -self.pixel_frames_per_chunk :]  # [P, 3, H, W]
        rollout.actions.append(action)
        rollout.obs.append(self.backbone.encode_observation(frames[-1:]))
        # Older rounds never come back into view.
        rollout.obs = rollout.obs[-h:]
        rollout.actions = rollout.actions[len(rollout.actions) - (len(rollout.obs) - 1) :]
        return _to_uint8(frames).cpu()

    @torch.no_grad()
    def rollout(
        self,
        context: torch.Tensor,
        past_actions: Sequence[str],
        actions: Sequence[str],
        generator: torch.Generator,
        mode: str | None = None,
        steps: int | None = None,
    ) -> torch.Tensor:
        """A whole rollout: uint8 frames [len(actions) * P, H, W, 3] after the context."""
        run = self.start_rollout(context, past_actions, generator, mode, steps)
        return torch.cat([self.rollout_step(run, a) for a in actions])

    # ------------------------------------------------------------------------------- checkpoints
    def checkpoint_keys(self) -> list[str]:
        """The state-dict names a checkpoint holds (see the module docstring for the rule).

        Tied weights (umT5's ``shared`` / ``encoder.embed_tokens``) are one tensor: only the
        name ``named_parameters`` gives it is kept; loading it fills every alias.
        """
        canonical = {n for n, _ in self.named_parameters()} | {n for n, _ in self.named_buffers()}
        chosen = {f"backbone.{k}" for k in self.backbone.checkpoint_state_dict()}
        chosen |= set(self._decoder_checkpoint_keys())
        return [k for k in self.state_dict() if k in chosen and k in canonical]

    def checkpoint_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint holds (:meth:`checkpoint_keys`), detached."""
        state = self.state_dict()
        return {k: state[k].detach() for k in self.checkpoint_keys()}

    def _decoder_checkpoint_keys(self) -> list[str]:
        cfg = self.config.decoder
        from_config = {
            "transformer": cfg.pretrained_path is None and cfg.transformer_path is None,
            "vae": cfg.pretrained_path is None,
            "text_encoder": cfg.pretrained_path is None,
        }
        trainable = {f"decoder.{n}" for n in self.decoder.trainable_parameters()}
        keys = []
        for key in self.state_dict():
            if not key.startswith("decoder."):
                continue
            part = key.split(".")[1]
            if from_config.get(part, True) or key in trainable:
                keys.append(key)
        return keys

    def _base_folders(self) -> dict[str, str | None]:
        b, d = self.config.backbone, self.config.decoder
        return {
            "llm": b.llm_path,
            "backbone_tokenizer": b.tokenizer_path,
            "wan": d.pretrained_path,
            "transformer": d.transformer_path,
            "decoder_tokenizer": d.tokenizer_path,
        }

    def save_pretrained(
        self,
        path: str | Path,
        training: dict[str, Any] | None = None,
        state_dict: Mapping[str, torch.Tensor] | None = None,
    ) -> Path:
        """Writes ``config.json`` and ``model.safetensors`` into ``path`` (each atomically).

        Args:
            path: the folder (created if needed).
            training: metadata recorded under ``"training"``.
            state_dict: the full ``state_dict()`` to take the tensors from (a gathered FSDP2
                state); default: this module's own.

        Returns:
            The folder.
        """
        from safetensors.torch import save

        from panbench import __version__
        from panbench.io import atomic_write_bytes, atomic_write_json

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        wanted = self.checkpoint_keys()
        source = self.state_dict() if state_dict is None else state_dict
        missing = [k for k in wanted if k not in source]
        if missing:
            raise ConfigError(f"save_pretrained: the state dict lacks {missing[:3]}.")
        tensors = {k: source[k].detach().cpu().contiguous() for k in wanted}
        atomic_write_bytes(out / WEIGHTS_NAME, save(tensors, metadata={"format": "pt"}))
        meta = {
            "class_name": "PanOWModel",  # not type(self): FSDP2 renames the class
            "format_version": FORMAT_VERSION,
            "panbench_version": __version__,
            "model": dataclasses.asdict(self.config),
            "training": training or {},
            "weights": WEIGHTS_NAME,
            "base": self._base_folders(),
        }
        atomic_write_json(out / CONFIG_NAME, meta)
        return out

    @staticmethod
    def read_config(path: str | Path) -> tuple[OWModelConfig, dict[str, Any]]:
        """Reads and checks a checkpoint's ``config.json``.

        Raises:
            DataError: the folder or file is missing, or the file is not JSON.
            ConfigError: unknown keys, a wrong class or format version, bad values.
        """
        folder = Path(path)
        file = folder / CONFIG_NAME
        doc = read_checkpoint_doc(folder, "PanOWModel", FORMAT_VERSION, _TOP_KEYS)
        config = from_dict(OWModelConfig, doc["model"], str(file), "model")
        return config.validate(str(file)), doc

    def load_weights(self, path: str | Path) -> None:
        """Loads a checkpoint folder's weights into this model (configs must agree).

        Raises:
            DataError: a missing or unreadable file.
            ConfigError: another model config, or keys / shapes that do not match (named).
        """
        config, _ = self.read_config(path)
        if dataclasses.asdict(config) != dataclasses.asdict(self.config):
            raise ConfigError(
                f"{Path(path) / CONFIG_NAME}: its model config differs from this model's; "
                "initialise from a checkpoint of the same model config."
            )
        file, tensors = read_weights(path)
        check_weights(tensors, self.checkpoint_state_dict(), file, Path(path) / CONFIG_NAME)
        self.load_state_dict(tensors, strict=False)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> PanOWModel:
        """Rebuilds a model saved by :meth:`save_pretrained` (base weights from their folders).

        Raises:
            DataError / ConfigError: as :meth:`read_config` and :meth:`load_weights`.
        """
        config, _ = cls.read_config(path)
        model = cls(config)
        model.load_weights(path)
        return model.to(device).eval()

    def num_parameters(self) -> dict[str, int]:
        """Parameter counts of the backbone, the decoder and the total."""
        counts = {
            name: sum(p.numel() for p in getattr(self, name).parameters())
            for name in ("backbone", "decoder")
        }
        counts["total"] = sum(counts.values())
        return counts


@dataclass
class OWRollout:
    """One rollout in progress (see :meth:`PanOWModel.start_rollout`).

    Attributes:
        stream: the decoder's stepwise state.
        cond: [1, C, 1, h, w] the conditioning (context) latent.
        chunks: the latent chunks made so far, each [1, C, F, h, w].
        obs: the backbone's observation tokens of the rounds in view, each [1, N, hidden].
        actions: the actions of the rounds in view except the newest.
    """

    stream: Any
    cond: torch.Tensor
    chunks: list[torch.Tensor]
    obs: list[torch.Tensor]
    actions: list[str]

    def clone(self) -> OWRollout:
        """An independent copy (a branch): tensors shared (never mutated), lists and the
        decoder stream's generator copied."""
        import copy

        stream = copy.copy(self.stream)
        gen = getattr(stream, "generator", None)
        if isinstance(gen, torch.Generator):
            new = torch.Generator(device=gen.device)
            new.set_state(gen.get_state())
            stream.generator = new
        if hasattr(stream, "prev_trajectory"):
            stream.prev_trajectory = list(stream.prev_trajectory)
        return OWRollout(stream, self.cond, list(self.chunks), list(self.obs), list(self.actions))
