"""Decoder g on open weights: diffusers' Wan transformer with PAN's state stream and Causal Swin-DPM.

PAN (arXiv 2511.09057) adapts Wan2.1-T2V into its video decoder. This module makes the same
modification on diffusers' ``WanTransformer3DModel`` (any size; Wan2.1-T2V-1.3B is the practical
open one), loaded with ``from_pretrained`` from a local folder:

- **State stream** (:func:`add_state_stream`): every block gets a copy of its text
  cross-attention (``blocks.{i}.state_attn``, initialised from the text cross-attention's weights)
  whose output projection starts at exactly zero; its output is summed with the text stream's.
  The backbone's state tokens [B, S, state_dim] reach the model width through ``state_embedder``
  (a ``PixArtAlphaTextProjection`` like Wan's own text projection; a copy of it when
  ``state_dim`` equals umT5's width, 4096, else ordinarily initialised). At initialisation the
  decoder computes exactly what the pretrained one does.
- **Chunk-wise causal attention**: the latent video is ``[cond frame | chunk 1 | chunk 2 | ...]``;
  a chunk's tokens attend (self-attention) to the conditioning frame, earlier chunks and
  themselves, never to later ones; the conditioning frame attends to itself only. In
  cross-attention a chunk's tokens read only that chunk's action text (umT5) and state tokens;
  the conditioning frame reads those of the first chunk in the window. Timesteps are per token
  (per chunk), through the 2-D timestep path diffusers has for Wan 2.2 TI2V. Masks go through the
  pretrained attention modules unchanged (``WanAttnProcessor`` with ``attention_mask``), so the
  weights keep their meaning.
- **Causal Swin-DPM** (:mod:`reference_model.ow.swin`): sampling in a sliding window of one
  conditioning frame and two chunks, the earlier half a schedule less noisy; the plain
  chunk-by-chunk mode is kept for comparison. Training draws noise per chunk the same way.

Frames, latent frames and chunks: Wan's VAE keeps the first frame alone and compresses the rest
4x in time, so a clip of ``1 + 4 m`` frames has ``1 + m`` latent frames; latent frame 0 is video
frame 0 (the context, the conditioning frame) and latent frame ``j >= 1`` covers video frames
``4j - 3 .. 4j``. A chunk of ``chunk_frames`` latent frames is ``4 * chunk_frames`` video frames
(4 latent frames: 16 frames, one second at Wan's 16 fps). Encode a training clip of
``1 + 4 * chunk_frames * K`` frames as one video: latent 0 is ``cond_latent``, the rest is K chunks.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from diffusers.models.transformers.transformer_wan import WanTransformerBlock
from torch import nn

from panbench.errors import ConfigError, ContractError
from reference_model.ow.swin import (
    NUM_TRAIN_TIMESTEPS,
    Phase,
    chunk_schedule,
    draw_swin_taus,
    shift_sigma,
    swin_schedule,
)

__all__ = [
    "STATE_STREAM_FILE",
    "DecoderStream",
    "OWDecoder",
    "OWDecoderConfig",
    "OWTransformerBlock",
    "add_state_stream",
    "enable_chunk_attention",
    "is_state_stream_parameter",
    "load_transformer",
    "save_transformer",
    "window_masks",
]

STATE_STREAM_FILE = "state_stream.json"
"""Sidecar in a saved transformer folder: ``{"format_version": 1, "state_dim": D}``."""
_STATE_PREFIXES = ("state_embedder.",)
_STATE_INFIX = ".state_attn."
_MODES = ("swin", "chunk")
_SCOPES = ("full", "state")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_Gen = torch.Generator | Sequence[torch.Generator] | None


# --------------------------------------------------------------------------- the modification


class OWTransformerBlock(WanTransformerBlock):
    """A ``WanTransformerBlock`` that takes attention masks and an optional state stream.

    With no masks and no state tokens it computes exactly ``WanTransformerBlock.forward``
    (same operations in the same order); the extra arguments are positional so diffusers'
    gradient-checkpointing function can pass them through.
    """

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        rotary_emb: Any,
        self_mask: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        state_hidden_states: torch.Tensor | None = None,
        state_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One block.

        Args:
            hidden_states: [B, N, dim] video tokens.
            encoder_hidden_states: [B, n * L, dim] projected text of every chunk.
            temb: [B, 6, dim] or per token [B, N, 6, dim].
            rotary_emb: (cos, sin), each [1 or B, N, 1, head_dim].
            self_mask: bool [B, 1, N, N] (True: may attend) or None (full attention).
            text_mask: bool [B, 1, N, n * L] or None.
            state_hidden_states: [B, n * S, dim] projected state tokens, or None (the
                state stream is skipped: it would add exactly zero at initialisation).
            state_mask: bool [B, 1, N, n * S] or None.

        Returns:
            [B, N, dim].
        """
        if temb.ndim == 4:
            mods = (self.scale_shift_table.unsqueeze(0) + temb.float()).chunk(6, dim=2)
            shift_msa, scale_msa, gate_msa, c_shift_msa, c_scale_msa, c_gate_msa = (
                m.squeeze(2) for m in mods
            )
        else:
            shift_msa, scale_msa, gate_msa, c_shift_msa, c_scale_msa, c_gate_msa = (
                self.scale_shift_table + temb.float()
            ).chunk(6, dim=1)

        norm = (self.norm1(hidden_states.float()) * (1 + scale_msa) + shift_msa).type_as(
            hidden_states
        )
        attn_output = self.attn1(norm, None, self_mask, rotary_emb)
        hidden_states = (hidden_states.float() + attn_output * gate_msa).type_as(hidden_states)

        norm = self.norm2(hidden_states.float()).type_as(hidden_states)
        attn_output = self.attn2(norm, encoder_hidden_states, text_mask, None)
        if state_hidden_states is not None:
            # Summed with the text stream; its zero-initialised out-projection makes this
            # exactly + 0 until it is trained.
            state_attn = cast(nn.Module, self.state_attn)
            attn_output = attn_output + state_attn(norm, state_hidden_states, state_mask, None)
        hidden_states = hidden_states + attn_output

        norm = (self.norm3(hidden_states.float()) * (1 + c_scale_msa) + c_shift_msa).type_as(
            hidden_states
        )
        ff_output = self.ffn(norm)
        return (hidden_states.float() + ff_output.float() * c_gate_msa).type_as(hidden_states)


def enable_chunk_attention(transformer: Any) -> None:
    """Lets every block of ``transformer`` take attention masks (in place, no new weights).

    Each ``WanTransformerBlock`` becomes an ``OWTransformerBlock`` (its subclass whose forward
    also takes masks and state tokens; the class is swapped, as ``fully_shard`` does, so
    parameters, hooks and processors stay as they are). ``transformer(...)`` still computes
    exactly what it did. Idempotent.

    Args:
        transformer: a diffusers ``WanTransformer3DModel``.

    Raises:
        ConfigError: a block of another class, or a temporal patch size other than 1.
    """
    if next(iter(transformer.config.patch_size)) != 1:
        raise ConfigError(
            f"chunk-wise attention needs a temporal patch size of 1 (one token row per latent "
            f"frame), but the transformer has patch_size {tuple(transformer.config.patch_size)}."
        )
    wan, ow = WanTransformerBlock, OWTransformerBlock
    for i, block in enumerate(transformer.blocks):
        if isinstance(block, ow):
            continue
        if type(block) is not wan:
            raise ConfigError(
                f"expected transformer.blocks[{i}] to be a WanTransformerBlock, but got "
                f"{type(block).__name__}; add the state stream before wrapping blocks."
            )
        block.__class__ = ow


def add_state_stream(transformer: Any, state_dim: int) -> None:
    """Adds PAN's state stream to a (pretrained) Wan transformer, in place.

    Adds ``transformer.state_embedder`` (state_dim -> model width, a GELU-tanh MLP like Wan's
    text projection: a copy of it when ``state_dim`` equals the text width, else ordinarily
    initialised) and ``transformer.blocks[i].state_attn``, a deep copy of the
    block's text cross-attention ``attn2`` with its output projection ``to_out[0]`` (weight and
    bias) set to exactly zero. Enables chunk attention (:func:`enable_chunk_attention`).

    Args:
        transformer: a diffusers ``WanTransformer3DModel`` (text-to-video; no image context).
        state_dim: width of the state tokens, the backbone's ``state_dim``.

    Raises:
        ConfigError: the stream is already there, ``state_dim`` is not positive, or the model
            has image cross-attention (Wan I2V), which this decoder does not feed.
    """
    from diffusers.models.embeddings import PixArtAlphaTextProjection

    if hasattr(transformer, "state_embedder"):
        raise ConfigError("this transformer already has a state stream (state_embedder).")
    if not isinstance(state_dim, int) or state_dim <= 0:
        raise ConfigError(f"expected a positive integer state_dim, but got {state_dim!r}.")
    if transformer.config.added_kv_proj_dim is not None or transformer.config.image_dim:
        raise ConfigError(
            "expected a text-to-video Wan transformer, but this one has image cross-attention "
            f"(added_kv_proj_dim={transformer.config.added_kv_proj_dim}, "
            f"image_dim={transformer.config.image_dim})."
        )
    enable_chunk_attention(transformer)
    ref = transformer.proj_out.weight
    width = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    embedder = PixArtAlphaTextProjection(state_dim, width, act_fn="gelu_tanh")
    if state_dim == transformer.config.text_dim:
        # State tokens as wide as umT5's start out read like text by the copied attention.
        embedder.load_state_dict(transformer.condition_embedder.text_embedder.state_dict())
    transformer.state_embedder = embedder.to(device=ref.device, dtype=ref.dtype)
    for block in transformer.blocks:
        state_attn = copy.deepcopy(block.attn2)
        with torch.no_grad():
            state_attn.to_out[0].weight.zero_()
            state_attn.to_out[0].bias.zero_()
        block.state_attn = state_attn
    transformer._ow_state_dim = state_dim


def is_state_stream_parameter(name: str) -> bool:
    """Whether a transformer parameter name (``named_parameters`` of the transformer, or with
    a ``transformer.`` prefix) belongs to the state stream."""
    bare = name.removeprefix("transformer.")
    return bare.startswith(_STATE_PREFIXES) or _STATE_INFIX in f".{bare}"


def save_transformer(transformer: Any, directory: str | Path) -> Path:
    """Writes the transformer with ``save_pretrained`` plus the state-stream sidecar.

    The folder stays a diffusers Wan folder: ``WanTransformer3DModel.from_pretrained`` loads it
    (it ignores the state-stream weights with a warning); :func:`load_transformer` restores them.

    Returns:
        The folder.
    """
    out = Path(directory)
    transformer.save_pretrained(out, safe_serialization=True)
    state_dim = getattr(transformer, "_ow_state_dim", None)
    if state_dim is not None:
        sidecar = {"format_version": 1, "state_dim": state_dim}
        (out / STATE_STREAM_FILE).write_text(json.dumps(sidecar, indent=2), encoding="utf-8")
    return out


def _read_safetensors_keys(folder: Path, wanted: Any) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    else:
        files = ["diffusion_pytorch_model.safetensors"]
    out: dict[str, torch.Tensor] = {}
    for name in files:
        path = folder / name
        if not path.is_file():
            raise ConfigError(f"expected the weights file {path}, but it does not exist.")
        out.update({k: v for k, v in load_file(str(path)).items() if wanted(k)})
    return out


def load_transformer(path: str | Path, state_dim: int, dtype: torch.dtype | None = None) -> Any:
    """Loads a local Wan transformer folder offline and adds (or restores) the state stream.

    Args:
        path: a folder with ``config.json`` and ``diffusion_pytorch_model*.safetensors`` (a
            pretrained Wan ``transformer/`` folder, or one written by :func:`save_transformer`).
        state_dim: the state width; must match the sidecar when the folder has one.
        dtype: optional torch dtype to load the weights in.

    Returns:
        The ``WanTransformer3DModel`` with the state stream (restored from the folder when its
        sidecar is there, else freshly zero-initialised).

    Raises:
        ConfigError: a missing folder, or a sidecar whose ``state_dim`` differs.
    """
    from diffusers import WanTransformer3DModel

    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise ConfigError(
            f"expected a diffusers Wan transformer folder with config.json at {folder}, "
            "but there is none."
        )
    kwargs: dict[str, Any] = {"local_files_only": True}
    if dtype is not None:
        kwargs["torch_dtype"] = dtype
    transformer = WanTransformer3DModel.from_pretrained(str(folder), **kwargs)
    add_state_stream(transformer, state_dim)
    sidecar = folder / STATE_STREAM_FILE
    if sidecar.is_file():
        saved = json.loads(sidecar.read_text(encoding="utf-8"))
        if saved.get("state_dim") != state_dim:
            raise ConfigError(
                f"{sidecar}: the saved state stream has state_dim {saved.get('state_dim')}, "
                f"but {state_dim} was asked for."
            )
        weights = _read_safetensors_keys(folder, is_state_stream_parameter)
        expected = {k for k, _ in transformer.named_parameters() if is_state_stream_parameter(k)}
        if set(weights) != expected:
            missing = sorted(expected - set(weights))[:3]
            raise ConfigError(f"{folder}: state-stream weights missing, e.g. {missing}.")
        transformer.load_state_dict(weights, strict=False)
    return transformer


# --------------------------------------------------------------------------- masks and positions


def window_masks(
    present: torch.Tensor,
    has_cond: bool,
    chunk_frames: int,
    tokens_per_frame: int,
    text_len: int,
    state_len: int,
) -> dict[str, Any]:
    """Chunk-causal attention masks and RoPE frame positions for a window of chunk slots.

    The window is ``[cond frame (if has_cond) | slot 1 | ... | slot n]``, each slot
    ``chunk_frames`` latent frames. Self-attention: a present slot's tokens see the conditioning
    frame, present earlier slots and their own slot; the conditioning frame sees itself; an absent
    slot (a placeholder) sees only itself and nobody sees it. Cross-attention: slot j reads text
    (and state) slot j; the conditioning frame reads the first present slot's. RoPE positions
    number the present frames contiguously from 0, so a chunk keeps its position next to the
    conditioning frame whether or not an earlier slot is filled.

    Args:
        present: bool [B, n], which slots hold a chunk (at least one per row).
        has_cond: whether the window starts with one conditioning frame.
        chunk_frames: F, latent frames per slot.
        tokens_per_frame: P, tokens of one latent frame.
        text_len: L, text tokens per slot.
        state_len: S, state tokens per slot (0: none).

    Returns:
        ``self`` bool [B, 1, N, N] or None (when nothing is masked), ``text`` bool
        [B, 1, N, n*L] or None, ``state`` bool [B, 1, N, n*S] or None, and ``positions`` long
        [B, T] (T = frames, N = T * P).
    """
    if present.ndim != 2 or not bool(present.any(dim=1).all()):
        raise ContractError(
            f"expected present to be bool [B, n] with a chunk in every row, but got "
            f"{tuple(present.shape)} {present.tolist()}."
        )
    device = present.device
    batch, n = present.shape
    c = 1 if has_cond else 0
    frame_block = torch.cat(
        [
            torch.zeros(c, dtype=torch.long, device=device),
            torch.arange(1, n + 1, device=device).repeat_interleave(chunk_frames),
        ]
    )
    block_present = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=device), present], 1)
    frame_present = block_present[:, frame_block]  # [B, T]
    qb, kb = frame_block[:, None], frame_block[None, :]
    visible = (kb <= qb)[None] & frame_present[:, None, :]
    self_frames = torch.where(frame_present[:, :, None], visible, (kb == qb)[None])
    first = present.to(torch.int8).argmax(dim=1)  # first present slot, 0-based
    slot = torch.where(frame_block[None] == 0, first[:, None], frame_block[None] - 1)  # [B, T]
    cross_frames = slot[:, :, None] == torch.arange(n, device=device)[None, None]  # [B, T, n]
    positions = (frame_present.cumsum(1) - 1).clamp(min=0)

    def expand(frames: torch.Tensor, per_key: int) -> torch.Tensor | None:
        if bool(frames.all()):
            return None
        rows = frames.repeat_interleave(tokens_per_frame, dim=1)
        return rows.repeat_interleave(per_key, dim=2).unsqueeze(1)

    return {
        "self": expand(self_frames, tokens_per_frame),
        "text": expand(cross_frames, text_len),
        "state": expand(cross_frames, state_len) if state_len else None,
        "positions": positions,
    }


def _rotary(rope: Any, positions: torch.Tensor, hp: int, wp: int) -> tuple[torch.Tensor, ...]:
    """Wan's 3-D RoPE with explicit temporal positions [B, T] (spatial as diffusers builds it)."""
    batch, frames = positions.shape
    split = [rope.t_dim, rope.h_dim, rope.w_dim]
    out = []
    for table in (rope.freqs_cos, rope.freqs_sin):
        t_part, h_part, w_part = table.split(split, dim=1)
        f = t_part[positions].view(batch, frames, 1, 1, -1).expand(batch, frames, hp, wp, -1)
        h = h_part[:hp].view(1, 1, hp, 1, -1).expand(batch, frames, hp, wp, -1)
        w = w_part[:wp].view(1, 1, 1, wp, -1).expand(batch, frames, hp, wp, -1)
        out.append(torch.cat([f, h, w], dim=-1).reshape(batch, frames * hp * wp, 1, -1))
    return tuple(out)


# --------------------------------------------------------------------------- config


@dataclass
class OWDecoderConfig:
    """Decoder g on Wan: where the weights come from and how it samples.

    Each of the transformer, VAE and text encoder comes either from a local diffusers Wan folder
    (``pretrained_path`` with ``transformer/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, as
    Wan2.1-T2V-1.3B-Diffusers is laid out; loaded with ``local_files_only``, never remote code) or
    from a config dict (a tiny random model for tests). ``transformer_path`` overrides the
    folder's ``transformer/`` (e.g. a fine-tuned one written by :func:`save_transformer`).

    Attributes:
        pretrained_path: local diffusers Wan folder, or None.
        transformer_path: local transformer folder, or None (``pretrained_path/transformer``).
        tokenizer_path: local tokenizer folder, or None (``pretrained_path/tokenizer``, or the
            tokenizer handed to :class:`OWDecoder`).
        transformer_config: ``WanTransformer3DModel`` kwargs when not loading from a folder.
        vae_config: ``AutoencoderKLWan`` kwargs when not loading from a folder.
        text_encoder_config: ``transformers.UMT5Config`` kwargs when not loading from a folder.
        state_dim: width of the backbone's state tokens.
        chunk_frames: latent frames per chunk (4 video frames each; see the module docstring).
        text_len: umT5 tokens per action (Wan: 512; embeddings are zero past each prompt).
        cond_noise: noise level k of the conditioning frame (PAN: 0.055); it gets no loss.
        shift: Wan's flow-matching sigma shift (3.0 at 480p, 5.0 at 720p).
        sample_steps: denoising steps per chunk (even for Swin-DPM).
        rollout: ``"swin"`` (Causal Swin-DPM) or ``"chunk"`` (plain chunk by chunk).
        train_scope: ``"full"`` (the whole transformer trains) or ``"state"`` (the state stream
            only); the VAE and text encoder are always frozen.
        text_encoder_dtype: dtype of the frozen umT5 (``float32``, ``bfloat16``, ``float16``).
        init_seed: seed of the random init of config-built models and of the state stream's
            projection.
    """

    pretrained_path: str | None = None
    transformer_path: str | None = None
    tokenizer_path: str | None = None
    transformer_config: dict[str, Any] = field(default_factory=dict)
    vae_config: dict[str, Any] = field(default_factory=dict)
    text_encoder_config: dict[str, Any] = field(default_factory=dict)
    state_dim: int = 4096
    chunk_frames: int = 4
    text_len: int = 512
    cond_noise: float = 0.055
    shift: float = 3.0
    sample_steps: int = 50
    rollout: str = "swin"
    train_scope: str = "full"
    text_encoder_dtype: str = "float32"
    init_seed: int = 0

    def validate(self, where: str = "decoder config") -> None:
        """Raises ConfigError naming ``where`` on an inconsistent or out-of-range value."""
        checks = [
            (self.rollout in _MODES, f"rollout must be one of {_MODES}, got {self.rollout!r}"),
            (
                self.train_scope in _SCOPES,
                f"train_scope must be one of {_SCOPES}, got {self.train_scope!r}",
            ),
            (
                self.text_encoder_dtype in _DTYPES,
                f"text_encoder_dtype must be one of {list(_DTYPES)}, "
                f"got {self.text_encoder_dtype!r}",
            ),
            (self.state_dim > 0, f"state_dim must be positive, got {self.state_dim}"),
            (self.chunk_frames > 0, f"chunk_frames must be positive, got {self.chunk_frames}"),
            (self.text_len > 0, f"text_len must be positive, got {self.text_len}"),
            (0 <= self.cond_noise < 1, f"cond_noise must be in [0, 1), got {self.cond_noise}"),
            (self.shift > 0, f"shift must be positive, got {self.shift}"),
            (
                self.sample_steps >= 2 and self.sample_steps % 2 == 0,
                f"sample_steps must be even and >= 2 (Swin-DPM), got {self.sample_steps}",
            ),
        ]
        for part, cfg in (
            ("transformer", self.transformer_config),
            ("vae", self.vae_config),
            ("text_encoder", self.text_encoder_config),
        ):
            from_folder = self.pretrained_path is not None or (
                part == "transformer" and self.transformer_path is not None
            )
            checks.append(
                (
                    from_folder != bool(cfg),
                    f"the {part} needs exactly one source: pretrained_path"
                    f"{' or transformer_path' if part == 'transformer' else ''} or "
                    f"{part}_config (got {'both' if from_folder else 'neither'})",
                )
            )
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{where}: {message}.")


# --------------------------------------------------------------------------- the decoder


@dataclass
class DecoderStream:
    """What the stepwise rollout carries from one chunk to the next (see
    :meth:`OWDecoder.start_stream`). Opaque to callers; do not share between rollouts.

    Attributes:
        mode: ``"swin"`` or ``"chunk"``.
        cond_latent: [B, C, 1, h, w] the clean context latent.
        generator: the noise source (one generator, or one per batch row).
        steps: denoising steps per chunk.
        chunks_done: chunks produced so far.
        last_frame: [B, C, 1, h, w] the last clean latent frame of the latest chunk.
        prev_cond: [B, C, 1, h, w] the noised conditioning frame of the latest chunk's last phase.
        prev_trajectory: the latest chunk's inputs [B, C, F, h, w] at each window step of its
            last phase (Swin): replayed as the earlier slot while the next chunk enters.
        prev_text: [B, L, text_dim] the latest chunk's action text.
        prev_state: [B, S, state_dim] or None, its state tokens.
    """

    mode: str
    cond_latent: torch.Tensor
    generator: _Gen
    steps: int
    chunks_done: int = 0
    last_frame: torch.Tensor | None = None
    prev_cond: torch.Tensor | None = None
    prev_trajectory: list[torch.Tensor] = field(default_factory=list)
    prev_text: torch.Tensor | None = None
    prev_state: torch.Tensor | None = None


def _randn(shape: Sequence[int], generator: _Gen, device: torch.device) -> torch.Tensor:
    """float32 noise [*shape]; with one generator per row, row i comes from generator i."""
    if isinstance(generator, Sequence):
        if len(generator) != shape[0]:
            raise ContractError(
                f"expected one generator per batch row ({shape[0]}), but got {len(generator)}."
            )
        rows = [torch.randn(tuple(shape[1:]), generator=g, device=g.device) for g in generator]
        return torch.stack(rows).to(device)
    src = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, device=src).to(device)


def _euler(x: torch.Tensor, v: torch.Tensor, sigmas: tuple[float, float]) -> torch.Tensor:
    # Two separate kernels (mul, add) on purpose: elementwise results then do not depend on
    # which tensor a chunk sits in, which the stepwise == full-rollout equality relies on.
    return x + v * (sigmas[1] - sigmas[0])


class OWDecoder(nn.Module):
    """Wan transformer + frozen ``AutoencoderKLWan`` + frozen ``UMT5EncoderModel`` + tokenizer.

    Args:
        config: :class:`OWDecoderConfig`.
        tokenizer: the umT5 tokenizer when the config names no folder for it (tests pass
            ``reference_model.ow.tokenizers.offline_tokenizer()``).

    Raises:
        ConfigError: an inconsistent config, a missing folder or tokenizer.
    """

    latents_mean: torch.Tensor
    latents_std: torch.Tensor

    def __init__(self, config: OWDecoderConfig, tokenizer: Any = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.init_seed)
            self.transformer = self._build_transformer()
            self.vae = self._build_vae()
            self.text_encoder = self._build_text_encoder()
        self.tokenizer = tokenizer if tokenizer is not None else self._load_tokenizer()
        self.vae.requires_grad_(False).eval()
        self.text_encoder.requires_grad_(False).eval()
        z_dim = self.vae.config.z_dim
        if self.transformer.config.in_channels != z_dim:
            raise ConfigError(
                f"the transformer takes {self.transformer.config.in_channels} latent channels, "
                f"but the VAE makes {z_dim}."
            )
        if self.transformer.config.text_dim != self.text_encoder.config.d_model:
            raise ConfigError(
                f"the transformer reads text of width {self.transformer.config.text_dim}, but "
                f"the text encoder makes {self.text_encoder.config.d_model}."
            )
        mean = torch.tensor(self.vae.config.latents_mean, dtype=torch.float32)
        std = torch.tensor(self.vae.config.latents_std, dtype=torch.float32)
        self.register_buffer("latents_mean", mean.view(1, -1, 1, 1, 1), persistent=False)
        self.register_buffer("latents_std", std.view(1, -1, 1, 1, 1), persistent=False)

    # ------------------------------------------------------------------ construction

    def _folder(self, sub: str) -> Path:
        assert self.config.pretrained_path is not None
        path = Path(self.config.pretrained_path) / sub
        if not path.is_dir():
            raise ConfigError(
                f"expected a diffusers Wan folder with {sub}/ at {self.config.pretrained_path}, "
                f"but {path} does not exist."
            )
        return path

    def _build_transformer(self) -> Any:
        from diffusers import WanTransformer3DModel

        cfg = self.config
        if cfg.transformer_path is not None or cfg.pretrained_path is not None:
            path = (
                Path(cfg.transformer_path)
                if cfg.transformer_path is not None
                else self._folder("transformer")
            )
            return load_transformer(path, cfg.state_dim)
        transformer = WanTransformer3DModel(**cfg.transformer_config)
        add_state_stream(transformer, cfg.state_dim)
        return transformer

    def _build_vae(self) -> Any:
        from diffusers import AutoencoderKLWan

        if self.config.pretrained_path is not None:
            return AutoencoderKLWan.from_pretrained(str(self._folder("vae")), local_files_only=True)
        return AutoencoderKLWan(**self.config.vae_config)

    def _build_text_encoder(self) -> Any:
        from transformers import UMT5Config, UMT5EncoderModel

        dtype = _DTYPES[self.config.text_encoder_dtype]
        if self.config.pretrained_path is not None:
            return UMT5EncoderModel.from_pretrained(
                str(self._folder("text_encoder")), local_files_only=True, dtype=dtype
            )
        model = UMT5EncoderModel(UMT5Config(**self.config.text_encoder_config))
        return cast(Any, model).to(dtype=dtype)

    def _load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        cfg = self.config
        if cfg.tokenizer_path is not None:
            path = Path(cfg.tokenizer_path)
        elif cfg.pretrained_path is not None:
            path = self._folder("tokenizer")
        else:
            raise ConfigError(
                "the decoder needs a tokenizer: set tokenizer_path or pretrained_path, or pass "
                "tokenizer= (tests: reference_model.ow.tokenizers.offline_tokenizer())."
            )
        if not path.is_dir():
            raise ConfigError(f"expected a tokenizer folder at {path}, but it does not exist.")
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Writes a diffusers Wan folder (``transformer/`` with the state stream, ``vae/``,
        ``text_encoder/``, ``tokenizer/``) that ``OWDecoderConfig(pretrained_path=...)`` loads.

        Returns:
            The folder.
        """
        out = Path(directory)
        save_transformer(self.transformer, out / "transformer")
        self.vae.save_pretrained(out / "vae", safe_serialization=True)
        self.text_encoder.save_pretrained(out / "text_encoder", safe_serialization=True)
        self.tokenizer.save_pretrained(out / "tokenizer")
        return out

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """The parameters ``train_scope`` trains, named as in ``self.named_parameters()``.

        ``"full"``: every transformer parameter (pretrained weights and the state stream);
        ``"state"``: the state stream only (``state_embedder``, ``blocks.*.state_attn``).
        """
        out = {}
        for name, param in self.transformer.named_parameters():
            if self.config.train_scope == "full" or is_state_stream_parameter(name):
                out["transformer." + name] = param
        return out

    # ------------------------------------------------------------------ VAE and text

    @property
    def latent_channels(self) -> int:
        """C, the VAE's latent channels."""
        return int(self.vae.config.z_dim)

    @torch.no_grad()
    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames to normalised Wan latents (posterior mode, ``(z - mean) / std``).

        Args:
            frames: float [B, T, 3, H, W] in [-1, 1], ``T = 1 + 4 m`` (Wan's VAE keeps frame 0
                alone and compresses the rest 4x; see the module docstring).

        Returns:
            float32 [B, C, 1 + m, H / s, W / s] (s: the VAE's spatial factor, 8 for Wan2.1).
        """
        if frames.ndim != 5 or frames.shape[2] != 3 or (frames.shape[1] - 1) % 4:
            raise ContractError(
                "expected frames float [B, T, 3, H, W] with T = 1 + 4m (Wan's VAE), but got "
                f"{tuple(frames.shape)}."
            )
        vae_dtype = next(self.vae.parameters()).dtype
        x = frames.permute(0, 2, 1, 3, 4).to(vae_dtype)
        z = self.vae.encode(x).latent_dist.mode().float()
        return (z - self.latents_mean) / self.latents_std

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents [B, C, t, h, w] to frames float [B, 1 + 4 (t - 1), 3, H, W] in
        [-1, 1]. Wan's VAE decoder is causal in time: decode the context latent with the chunks
        (``[cond | chunks]``) and drop the first frame to get ``4 * t_chunks`` new frames."""
        if latents.ndim != 5 or latents.shape[1] != self.latent_channels:
            raise ContractError(
                f"expected latents [B, {self.latent_channels}, t, h, w], but got "
                f"{tuple(latents.shape)}."
            )
        vae_dtype = next(self.vae.parameters()).dtype
        z = (latents.float() * self.latents_std + self.latents_mean).to(vae_dtype)
        frames = self.vae.decode(z).sample.float().clamp(-1, 1)
        return frames.permute(0, 2, 1, 3, 4)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """umT5 embeddings of action texts, zero past each text's length as Wan's pipeline does.

        Cross-attention reads all ``text_len`` positions, padding included, as Wan was trained;
        the mask is returned for callers that cache or inspect it.

        Args:
            texts: B strings.

        Returns:
            ``(embeddings float32 [B, text_len, text_dim], mask bool [B, text_len])``.
        """
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ContractError(f"expected a sequence of strings, but got {texts!r}.")
        tok = self.tokenizer(
            list(texts),
            padding="max_length",
            max_length=self.config.text_len,
            truncation=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        device = next(self.text_encoder.parameters()).device
        ids, mask = tok["input_ids"].to(device), tok["attention_mask"].to(device)
        hidden = self.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        keep = mask.bool()
        return torch.where(keep[..., None], hidden, torch.zeros_like(hidden)), keep

    # ------------------------------------------------------------------ the network

    def forward(
        self,
        latents: torch.Tensor,
        sigmas: torch.Tensor,
        text: torch.Tensor,
        state: torch.Tensor | None = None,
        present: torch.Tensor | None = None,
        has_cond: bool = True,
    ) -> torch.Tensor:
        """Velocity prediction over a window ``[cond frame | slot 1 | ... | slot n]``.

        Args:
            latents: float [B, C, c + n * F, h, w] noisy latents (c = 1 with a conditioning
                frame, F = ``chunk_frames``).
            sigmas: float [B, c + n * F] noise level of every latent frame, in [0, 1] (the
                transformer's timestep is ``1000 * sigma``, per token).
            text: float [B, n, L, text_dim] each slot's action-text embeddings.
            state: float [B, n, S, state_dim] each slot's state tokens, or None (stage 1: the
                state stream is skipped).
            present: bool [B, n] which slots hold a chunk (None: all). Absent slots are
                placeholders: masked out for everyone, their outputs meaningless.
            has_cond: whether frame 0 is a conditioning frame.

        Returns:
            float [B, C, c + n * F, h, w], the predicted velocity ``noise - x0``.
        """
        tr = self.transformer
        batch, channels, frames, height, width = latents.shape
        _, p_h, p_w = tr.config.patch_size
        f = self.config.chunk_frames
        c = 1 if has_cond else 0
        n = text.shape[1] if text.ndim == 4 else -1
        if (
            channels != self.latent_channels
            or n < 1
            or frames != c + n * f
            or tuple(sigmas.shape) != (batch, frames)
            or text.shape[0] != batch
            or height % p_h
            or width % p_w
        ):
            raise ContractError(
                f"expected latents [B, {self.latent_channels}, {c} + n*{f}, h, w] (h, w divisible "
                f"by the patch), sigmas [B, frames] and text [B, n, L, D], but got latents "
                f"{tuple(latents.shape)}, sigmas {tuple(sigmas.shape)}, text {tuple(text.shape)}."
            )
        if state is not None and (state.ndim != 4 or tuple(state.shape[:2]) != (batch, n)):
            raise ContractError(
                f"expected state [{batch}, {n}, S, state_dim], but got {tuple(state.shape)}."
            )
        if present is None:
            present = torch.ones(batch, n, dtype=torch.bool, device=latents.device)
        hp, wp = height // p_h, width // p_w
        tokens = hp * wp
        masks = window_masks(
            present.to(latents.device),
            has_cond,
            f,
            tokens,
            text.shape[2],
            0 if state is None else state.shape[2],
        )
        rotary = _rotary(tr.rope, masks["positions"], hp, wp)

        hidden = tr.patch_embedding(latents.to(tr.patch_embedding.weight.dtype))
        hidden = hidden.flatten(2).transpose(1, 2).contiguous()
        timestep = (sigmas.float() * NUM_TRAIN_TIMESTEPS).repeat_interleave(tokens, dim=1)
        temb, timestep_proj, text_hidden, _ = tr.condition_embedder(
            timestep.flatten(), text.flatten(1, 2), None, timestep_seq_len=timestep.shape[1]
        )
        timestep_proj = timestep_proj.unflatten(2, (6, -1))
        state_hidden = None if state is None else tr.state_embedder(state.flatten(1, 2))
        args = (masks["self"], masks["text"], state_hidden, masks["state"])
        for block in tr.blocks:
            if torch.is_grad_enabled() and tr.gradient_checkpointing:
                hidden = tr._gradient_checkpointing_func(
                    block, hidden, text_hidden, timestep_proj, rotary, *args
                )
            else:
                hidden = block(hidden, text_hidden, timestep_proj, rotary, *args)

        shift, scale = (tr.scale_shift_table.unsqueeze(0) + temb.unsqueeze(2)).chunk(2, dim=2)
        shift, scale = shift.squeeze(2), scale.squeeze(2)
        hidden = (tr.norm_out(hidden.float()) * (1 + scale) + shift).type_as(hidden)
        hidden = tr.proj_out(hidden)
        hidden = hidden.reshape(batch, frames, hp, wp, 1, p_h, p_w, -1)
        hidden = hidden.permute(0, 7, 1, 4, 2, 5, 3, 6)
        return hidden.flatten(6, 7).flatten(4, 5).flatten(2, 3)

    # ------------------------------------------------------------------ training

    def loss(
        self,
        cond_latent: torch.Tensor,
        target: torch.Tensor,
        text: torch.Tensor,
        state: torch.Tensor | None = None,
        generator: _Gen = None,
    ) -> torch.Tensor:
        """Causal Swin-DPM flow-matching loss on K chunks after a context latent.

        Every Swin phase of the clip is one training window (K + 1 windows per clip, batched):
        phase p holds chunk p (earlier slot; none for p = 0) and chunk p + 1 (later slot; none for
        p = K) after their conditioning frame (the context latent for p <= 1, else the last
        latent frame of chunk p - 1), as sampling meets them. Per window the later chunk's flow
        time is uniform on (1/2, 1] and the earlier chunk's half a schedule lower
        (:func:`~reference_model.ow.swin.draw_swin_taus`), both shifted like the sampler. The
        conditioning frame is noised at ``cond_noise`` and gets no loss; the loss is the mean
        squared velocity error over the chunks' latents.

        Args:
            cond_latent: float [B, C, 1, h, w] normalised context latent.
            target: float [B, C, K * F, h, w] normalised latents of the K chunks.
            text: float [B, K, L, text_dim] each chunk's action-text embeddings.
            state: float [B, K, S, state_dim] each chunk's state tokens, or None (stage 1).
            generator: noise and noise-level source (one generator, or one per clip).

        Returns:
            Scalar float32 loss.
        """
        batch, _, k_chunks = self._check_clip(cond_latent, text, state, target)
        f, device = self.config.chunk_frames, target.device
        chunks = list(target.split(f, dim=2))
        zeros_x, zeros_t = torch.zeros_like(chunks[0]), torch.zeros_like(text[:, 0])
        zeros_s = None if state is None else torch.zeros_like(state[:, 0])
        conds, slots_x, texts, states, present = [], [], [], [], []
        for p in range(k_chunks + 1):
            conds.append(cond_latent if p <= 1 else chunks[p - 2][:, :, -1:])
            pair = (p - 1 if p >= 1 else None, p if p + 1 <= k_chunks else None)  # 0-based
            slots_x.append(torch.cat([chunks[i] if i is not None else zeros_x for i in pair], 2))
            texts.append(torch.stack([text[:, i] if i is not None else zeros_t for i in pair], 1))
            if state is not None and zeros_s is not None:
                states.append(
                    torch.stack([state[:, i] if i is not None else zeros_s for i in pair], 1)
                )
            present.append(torch.tensor([[i is not None for i in pair]] * batch, device=device))
        windows = (k_chunks + 1) * batch
        gens: _Gen = generator
        if isinstance(generator, Sequence):
            gens = list(generator) * (k_chunks + 1)  # window p * B + b uses clip b's generator
        x0 = torch.cat(slots_x)  # [W, C, 2F, h, w], window p * B + b
        tau_e, tau_l = self._draw_taus(windows, gens)
        sig_e = torch.as_tensor(shift_sigma(tau_e, self.config.shift)).to(device)
        sig_l = torch.as_tensor(shift_sigma(tau_l, self.config.shift)).to(device)
        slot_sig = torch.cat([sig_e[:, None].expand(-1, f), sig_l[:, None].expand(-1, f)], 1)
        noise = _randn(x0.shape, gens, device)
        cond_noise = _randn(torch.cat(conds).shape, gens, device)
        k = self.config.cond_noise
        cond_in = (1 - k) * torch.cat(conds) + k * cond_noise
        s = slot_sig[:, None, :, None, None]
        noisy = (1 - s) * x0 + s * noise
        sigmas = torch.cat([torch.full((windows, 1), k, device=device), slot_sig], 1)
        pred = self(
            torch.cat([cond_in, noisy], 2),
            sigmas,
            torch.cat(texts),
            torch.cat(states) if state is not None else None,
            torch.cat(present),
        )
        # The conditioning frame (index 0) is left out of the loss entirely.
        err = (pred[:, :, 1:].float() - (noise - x0).float()).square()
        weight = torch.cat(present).repeat_interleave(f, dim=1).float()  # [W, 2F]
        per_frame = err.mean(dim=(1, 3, 4))  # [W, 2F]
        return (per_frame * weight).sum() / weight.sum()

    @staticmethod
    def _draw_taus(n: int, generator: _Gen) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(generator, Sequence):
            pairs = [draw_swin_taus(1, g) for g in generator]
            return torch.cat([e for e, _ in pairs]), torch.cat([lt for _, lt in pairs])
        return draw_swin_taus(n, generator)

    def _check_clip(
        self,
        cond_latent: torch.Tensor,
        text: torch.Tensor,
        state: torch.Tensor | None,
        target: torch.Tensor | None = None,
    ) -> tuple[int, int, int]:
        f, ch = self.config.chunk_frames, self.latent_channels
        ok = cond_latent.ndim == 5 and cond_latent.shape[1] == ch and cond_latent.shape[2] == 1
        ok = ok and text.ndim == 4 and text.shape[0] == cond_latent.shape[0]
        k_chunks = text.shape[1] if text.ndim == 4 else 0
        if target is not None:
            ok = ok and tuple(target.shape) == (
                cond_latent.shape[0],
                ch,
                k_chunks * f,
                *cond_latent.shape[3:],
            )
        if state is not None:
            ok = ok and state.ndim == 4 and tuple(state.shape[:2]) == tuple(text.shape[:2])
        if not ok or k_chunks < 1:
            raise ContractError(
                f"expected cond_latent [B, {ch}, 1, h, w], text [B, K, L, D], state [B, K, S, "
                f"state_dim] or None and target [B, {ch}, K*{f}, h, w], but got cond_latent "
                f"{tuple(cond_latent.shape)}, text {tuple(text.shape)}, state "
                f"{None if state is None else tuple(state.shape)}, target "
                f"{None if target is None else tuple(target.shape)}."
            )
        return cond_latent.shape[0], ch, k_chunks

    # ------------------------------------------------------------------ sampling

    def _noised_cond(self, clean: torch.Tensor, generator: _Gen) -> torch.Tensor:
        k = self.config.cond_noise
        return (1 - k) * clean + k * _randn(clean.shape, generator, clean.device)

    def _velocity(
        self,
        cond: torch.Tensor,
        slots: Sequence[torch.Tensor | None],
        sigmas: Sequence[float],
        texts: Sequence[torch.Tensor | None],
        states: Sequence[torch.Tensor | None] | None,
    ) -> torch.Tensor:
        """One network call on ``[cond | slots]``; None slots become masked placeholders
        (zeros at sigma 1, zero text and state) so the window always has the same shape."""
        like = next(s for s in slots if s is not None)
        like_t = next(t for t in texts if t is not None)
        f, batch = self.config.chunk_frames, cond.shape[0]
        x = torch.cat([cond, *[s if s is not None else torch.zeros_like(like) for s in slots]], 2)
        frame_sig = [self.config.cond_noise] + [float(s) for s in sigmas for _ in range(f)]
        sig = torch.tensor(frame_sig, device=cond.device).expand(batch, -1)
        text = torch.stack([t if t is not None else torch.zeros_like(like_t) for t in texts], 1)
        state = None
        if states is not None:
            like_s = next(s for s in states if s is not None)
            state = torch.stack(
                [s if s is not None else torch.zeros_like(like_s) for s in states], 1
            )
        present = torch.tensor([[s is not None for s in slots]] * batch, device=cond.device)
        return cast(torch.Tensor, self(x, sig, text, state, present))

    @torch.no_grad()
    def rollout(
        self,
        cond_latent: torch.Tensor,
        text: torch.Tensor,
        state: torch.Tensor | None = None,
        mode: str | None = None,
        generator: _Gen = None,
        steps: int | None = None,
    ) -> torch.Tensor:
        """Samples K chunks after the context latent, all actions known up front.

        ``mode="swin"``: Causal Swin-DPM, the window table of
        :func:`~reference_model.ow.swin.swin_schedule` (K + 1 phases of ``steps / 2`` network
        calls on ``[cond | earlier | later]``). ``mode="chunk"``: each chunk alone after its
        conditioning frame, ``steps`` calls each. Noise is drawn in phase order: the
        conditioning frame's, then the entering chunk's.

        Args:
            cond_latent: float [B, C, 1, h, w] normalised context latent.
            text: float [B, K, L, text_dim] the K actions' embeddings.
            state: float [B, K, S, state_dim] or None.
            mode: ``"swin"`` or ``"chunk"`` (default: the config's ``rollout``).
            generator: the noise source (one generator, or one per batch row).
            steps: denoising steps per chunk (default: ``sample_steps``).

        Returns:
            float [B, C, K * F, h, w] clean normalised latents.
        """
        mode, steps = self._mode_steps(mode, steps)
        _, _, k_chunks = self._check_clip(cond_latent, text, state)
        chunks: list[torch.Tensor] = []
        if mode == "chunk":
            for phase in chunk_schedule(k_chunks, steps, self.config.shift):
                chunks.append(self._chunk_phase(phase, cond_latent, chunks, text, state, generator))
            return torch.cat(chunks, 2)
        carry: torch.Tensor | None = None
        for phase in swin_schedule(k_chunks, steps, self.config.shift):
            source = cond_latent if phase.cond_source == 0 else chunks[phase.cond_source - 1]
            cond = self._noised_cond(source[:, :, -1:], generator)
            earlier = carry
            later = None
            if phase.later is not None:
                later = _randn(self._chunk_shape(cond_latent), generator, cond_latent.device)
            slot_chunks = (phase.earlier, phase.later)
            texts = [text[:, i - 1] if i else None for i in slot_chunks]
            states = (
                None if state is None else [state[:, i - 1] if i else None for i in slot_chunks]
            )
            for j in range(steps // 2):
                sig = (
                    phase.earlier_sigmas[j][0] if earlier is not None else 1.0,
                    phase.later_sigmas[j][0] if later is not None else 1.0,
                )
                v = self._velocity(cond, (earlier, later), sig, texts, states)
                f = self.config.chunk_frames
                if earlier is not None:
                    earlier = _euler(earlier, v[:, :, 1 : 1 + f], phase.earlier_sigmas[j])
                if later is not None:
                    later = _euler(later, v[:, :, 1 + f :], phase.later_sigmas[j])
            if earlier is not None:
                chunks.append(earlier)
            carry = later
        return torch.cat(chunks, 2)

    def _mode_steps(self, mode: str | None, steps: int | None) -> tuple[str, int]:
        mode = mode or self.config.rollout
        steps = steps or self.config.sample_steps
        if mode not in _MODES:
            raise ConfigError(f"expected rollout mode one of {_MODES}, but got {mode!r}.")
        if mode == "swin" and (steps < 2 or steps % 2):
            raise ConfigError(f"Causal Swin-DPM needs an even number of steps, got {steps}.")
        return mode, steps

    def _chunk_shape(self, cond_latent: torch.Tensor) -> tuple[int, ...]:
        b, c, _, h, w = cond_latent.shape
        return (b, c, self.config.chunk_frames, h, w)

    def _chunk_phase(
        self,
        phase: Phase,
        cond_latent: torch.Tensor,
        chunks: Sequence[torch.Tensor],
        text: torch.Tensor,
        state: torch.Tensor | None,
        generator: _Gen,
    ) -> torch.Tensor:
        """Chunk mode: chunk ``phase.later`` alone after its conditioning frame."""
        assert phase.later is not None
        source = cond_latent if phase.cond_source == 0 else chunks[phase.cond_source - 1]
        cond = self._noised_cond(source[:, :, -1:], generator)
        x = _randn(self._chunk_shape(cond_latent), generator, cond_latent.device)
        k = phase.later - 1
        states = None if state is None else [state[:, k]]
        for sig in phase.later_sigmas:
            v = self._velocity(cond, (x,), (sig[0],), [text[:, k]], states)
            x = _euler(x, v[:, :, 1:], sig)
        return x

    def start_stream(
        self,
        cond_latent: torch.Tensor,
        generator: _Gen = None,
        mode: str | None = None,
        steps: int | None = None,
    ) -> DecoderStream:
        """Begins a stepwise rollout: :meth:`stream_step` then yields chunk k when action k
        arrives, equal (bit for bit, same generator) to chunk k of :meth:`rollout`.

        Why this is possible: under the causal mask chunk k never sees later chunks, so its
        result cannot depend on them. In Swin mode chunk k's second half runs with the later
        slot left as a masked placeholder (same window shape, so the same arithmetic); the
        inputs of its window steps are stored, and when action k + 1 arrives they are replayed
        as the earlier slot while chunk k + 1 takes its first half. Each Swin step therefore costs
        ``steps`` network calls (the replayed half plus the new half), as in the full rollout
        plus one placeholder half.

        Args:
            cond_latent: float [B, C, 1, h, w] normalised context latent.
            generator: the noise source (one generator, or one per batch row); the stream keeps
                drawing from it.
            mode: ``"swin"`` or ``"chunk"`` (default: the config's ``rollout``).
            steps: denoising steps per chunk (default: ``sample_steps``).

        Returns:
            The stream state to pass to :meth:`stream_step`.
        """
        mode, steps = self._mode_steps(mode, steps)
        if cond_latent.ndim != 5 or cond_latent.shape[1:3] != (self.latent_channels, 1):
            raise ContractError(
                f"expected cond_latent [B, {self.latent_channels}, 1, h, w], but got "
                f"{tuple(cond_latent.shape)}."
            )
        return DecoderStream(mode=mode, cond_latent=cond_latent, generator=generator, steps=steps)

    @torch.no_grad()
    def stream_step(
        self, stream: DecoderStream, text: torch.Tensor, state: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Produces the next chunk from its action (and state tokens).

        Args:
            stream: from :meth:`start_stream`; updated in place.
            text: float [B, L, text_dim] this chunk's action-text embeddings.
            state: float [B, S, state_dim] this chunk's state tokens, or None.

        Returns:
            float [B, C, F, h, w] the chunk's clean normalised latents.
        """
        self._check_clip(
            stream.cond_latent, text[:, None], None if state is None else state[:, None]
        )
        k = stream.chunks_done + 1
        source = stream.cond_latent if k == 1 else stream.last_frame
        assert source is not None
        states = None if state is None else [state]
        if stream.mode == "chunk":
            phase = chunk_schedule(1, stream.steps, self.config.shift)[0]
            cond = self._noised_cond(source[:, :, -1:], stream.generator)
            x = _randn(self._chunk_shape(stream.cond_latent), stream.generator, source.device)
            for sig in phase.later_sigmas:
                v = self._velocity(cond, (x,), (sig[0],), [text], states)
                x = _euler(x, v[:, :, 1:], sig)
        else:
            x = self._swin_stream_chunk(stream, text, state)
        stream.chunks_done = k
        stream.last_frame = x[:, :, -1:]
        return x

    def _swin_stream_chunk(
        self, stream: DecoderStream, text: torch.Tensor, state: torch.Tensor | None
    ) -> torch.Tensor:
        k = stream.chunks_done + 1
        f, half = self.config.chunk_frames, stream.steps // 2
        table = swin_schedule(2, stream.steps, self.config.shift)[1]  # a full phase's sigmas
        gen, device = stream.generator, stream.cond_latent.device
        # Phase k - 1: chunk k - 1 replayed in the earlier slot while chunk k enters.
        if k == 1:
            cond = self._noised_cond(stream.cond_latent, gen)
            replay: list[torch.Tensor | None] = [None] * half
        else:
            assert stream.prev_cond is not None
            cond, replay = stream.prev_cond, list(stream.prev_trajectory)
        x = _randn(self._chunk_shape(stream.cond_latent), gen, device)
        texts = [stream.prev_text if k > 1 else None, text]
        states = None if state is None else [stream.prev_state if k > 1 else None, state]
        for j in range(half):
            sig = (table.earlier_sigmas[j][0] if k > 1 else 1.0, table.later_sigmas[j][0])
            v = self._velocity(cond, (replay[j], x), sig, texts, states)
            x = _euler(x, v[:, :, 1 + f :], table.later_sigmas[j])
        # Phase k: chunk k finishes in the earlier slot; the later slot waits as a placeholder.
        source = stream.cond_latent if k == 1 else stream.last_frame
        assert source is not None
        cond = self._noised_cond(source[:, :, -1:], gen)
        trajectory = []
        texts = [text, None]
        states = None if state is None else [state, None]
        for j in range(half):
            trajectory.append(x)
            v = self._velocity(cond, (x, None), (table.earlier_sigmas[j][0], 1.0), texts, states)
            x = _euler(x, v[:, :, 1 : 1 + f], table.earlier_sigmas[j])
        stream.prev_cond, stream.prev_trajectory = cond, trajectory
        stream.prev_text, stream.prev_state = text, state
        return x
