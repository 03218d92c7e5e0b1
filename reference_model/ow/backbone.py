"""Backbone f on a pretrained causal LM: multi-turn rounds of (state, action) read by learnable queries.

PAN (arXiv 2511.09057) runs the language model of Qwen2.5-VL-7B over a multi-turn chat in which
each round is ``<user> state_k action_k <assistant> queries``; the outputs at the 256 learnable
query positions are the next latent state, at most 10 rounds of history are kept, and the VLM is
frozen in the joint stage. :class:`OWBackbone` builds that on any local ``transformers`` causal LM.

Round r's tokens, with the tokenizer's own chat markers (``N_obs`` state tokens, ``L`` =
``max_action_tokens`` action slots, ``Q`` = ``num_queries`` queries)::

    <|im_start|>user\\n [<|vision_start|>] state_r (N_obs) [<|vision_end|>] action_r (L)
    <|im_end|>\\n<|im_start|>assistant\\n queries (Q) <|im_end|>\\n

The vision markers appear only when the tokenizer has them as single tokens (every Qwen2.5
tokenizer does; the offline test tokenizer does not). The action text is tokenised without special
tokens, cut to its first ``L`` tokens and right-padded to ``L``; the pad slots are masked out of
attention and take no position, so an action's prediction does not depend on its padding.

All rounds of a window run in one causal pass: round r's queries see rounds <= r only. Position
ids are continuous over the real (unpadded) tokens of the window, starting at 0 (a Qwen2.5-VL
language model gets the same id on its three M-RoPE axes, i.e. plain 1-D RoPE).

History cap: with R <= ``history`` rounds the whole sequence is one window. With R > ``history``,
the prediction of round r uses exactly rounds ``max(0, r - history + 1) .. r``: rounds
``0 .. history-1`` come from the window of the first ``history`` rounds, and each later round r
from its own window ``r - history + 1 .. r`` (positions restarting at 0), the windows batched
together. So ``forward(x)[:, r]`` equals ``predict(x[:, max(0, r-history+1) : r+1])``, which is
what a model that only keeps ``history`` rounds sees at inference.

Encoder h: with ``use_vision_tower`` (Qwen2-VL / Qwen2.5-VL models) the model's own vision tower
(``model.visual``); frames are resized to ``image_size`` (bilinear, antialiased), mapped to the
tower's CLIP mean/std normalisation and cut into the flattened ``[t*h*w, 3*2*p*p]`` patches plus
``grid_thw`` rows ``(1, h, w)`` that its image processor produces (a still frame is repeated over
the tower's two temporal patch slots). Its merged output is
``(image_size / (patch_size * spatial_merge_size))**2`` tokens of the LLM's width (256 at 448 px
for Qwen2.5-VL-7B). Otherwise h is a trainable patch embedding: a ``patch_size`` convolution from
the resized frame, a LayerNorm whose gain starts at the LLM embeddings' standard deviation (so the
state tokens start at the scale of word embeddings) and a learned position embedding, giving
``(image_size / patch_size)**2`` tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from panbench.errors import ConfigError, ContractError

__all__ = ["TUNE_MODES", "OWBackbone", "OWBackboneConfig"]

TUNE_MODES = ("frozen", "lora", "full")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Model types whose vision tower takes Qwen2-VL-style flattened patches and grid_thw.
_VISION_TOWER_TYPES = ("qwen2_vl", "qwen2_5_vl")
# The normalisation of the Qwen2-VL / Qwen2.5-VL image processors (OpenAI CLIP statistics).
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class OWBackboneConfig:
    """Backbone f on a pretrained (or tiny random) ``transformers`` causal LM.

    Attributes:
        llm_path: local folder of a ``transformers`` model (``config.json`` + safetensors), read
            with ``local_files_only=True`` and never ``trust_remote_code``. Text causal LMs load
            with ``AutoModelForCausalLM`` (f is its decoder, the LM head is dropped); Qwen2-VL /
            Qwen2.5-VL load with ``AutoModelForImageTextToText`` (f is its language model).
        llm_config: instead of ``llm_path``, a ``transformers`` config dict with ``model_type``
            (e.g. ``qwen2`` or ``qwen2_5_vl``) to build a randomly initialised model (tests).
            Empty means not given; exactly one of ``llm_path`` and ``llm_config`` is required.
        tokenizer_path: local tokenizer folder; default ``llm_path``'s tokenizer, or the
            tokenizer passed to :class:`OWBackbone`, or the offline test tokenizer.
        llm_dtype: dtype the LLM (and vision tower) is loaded in: float32, bfloat16 or float16.
            Queries, projection, patch embedding and LoRA adapters stay float32.
        use_vision_tower: use the VL model's vision tower as encoder h (else a patch embedding).
        tune: ``frozen`` (LLM and tower fixed), ``lora`` (LoRA adapters on the LLM only, its
            base weights and the tower fixed) or ``full`` (everything trained). The queries, the
            projection and the patch embedding are trained in every mode.
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator (the update is scaled by alpha / r).
        lora_dropout: dropout on the LoRA input.
        lora_target_modules: comma-separated module names to adapt (``q_proj,v_proj``), or
            ``all-linear``; matched inside the LLM only.
        num_queries: learnable query tokens per round (PAN: 256).
        state_dim: width of each predicted state token handed to the decoder. The default is
            umT5-XXL's width (Wan's ``text_dim``), so the decoder's copied text cross-attention
            can read the state without a new input projection.
        history: rounds a prediction may see (PAN: 10); see the module docstring.
        max_action_tokens: action tokens kept per round (longer texts are cut).
        image_size: frames are resized to ``image_size x image_size`` before h.
        patch_size: patch side of the trainable patch embedding (unused with the vision tower,
            whose own patch size applies).
        attn_implementation: ``transformers`` attention backend of the LLM (``sdpa``, ``eager``,
            ``flash_attention_2``).
    """

    llm_path: str | None = None
    llm_config: dict[str, Any] = field(default_factory=dict)
    tokenizer_path: str | None = None
    llm_dtype: str = "float32"
    use_vision_tower: bool = False
    tune: str = "frozen"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: str = "q_proj,k_proj,v_proj,o_proj"
    num_queries: int = 256
    state_dim: int = 4096
    history: int = 10
    max_action_tokens: int = 32
    image_size: int = 448
    patch_size: int = 28
    attn_implementation: str = "sdpa"

    def validate(self, where: str = "backbone config") -> None:
        """Checks the values that do not need the model.

        Raises:
            ConfigError: naming the field, what was expected and what was received.
        """
        if (self.llm_path is None) == (not self.llm_config):
            raise ConfigError(
                f"{where}: expected exactly one of llm_path and llm_config, but got "
                f"llm_path={self.llm_path!r} and llm_config={'set' if self.llm_config else 'empty'}."
            )
        if self.llm_config and "model_type" not in self.llm_config:
            raise ConfigError(
                f"{where}: expected llm_config to name its model_type (e.g. 'qwen2'), but got keys "
                f"{sorted(self.llm_config)}."
            )
        if self.tune not in TUNE_MODES:
            raise ConfigError(f"{where}: expected tune in {TUNE_MODES}, but got {self.tune!r}.")
        if self.llm_dtype not in _DTYPES:
            raise ConfigError(
                f"{where}: expected llm_dtype in {tuple(_DTYPES)}, but got {self.llm_dtype!r}."
            )
        positive = ("lora_r", "lora_alpha", "num_queries", "state_dim", "history")
        for name in (*positive, "max_action_tokens", "image_size", "patch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}: expected {name} >= 1, but got {getattr(self, name)}.")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(
                f"{where}: expected lora_dropout in [0, 1), but got {self.lora_dropout}."
            )
        if not self.use_vision_tower and self.image_size % self.patch_size:
            raise ConfigError(
                f"{where}: expected image_size to be a multiple of patch_size {self.patch_size}, "
                f"but got {self.image_size}."
            )
        if not self.lora_target_modules.strip():
            raise ConfigError(f"{where}: expected lora_target_modules, but got an empty string.")


class OWBackbone(nn.Module):
    """Backbone f (and encoder h) of open-weights PAN; see the module docstring for the template.

    Attributes:
        llm: the text decoder (no LM head); ``llm(inputs_embeds=...).last_hidden_state``.
        vision: the VL model's vision tower, or ``None``.
        patch_embed: the trainable patch embedding (``None`` with the vision tower).
        queries: float32 [num_queries, hidden] learnable query tokens.
        proj: ``nn.Linear(hidden, state_dim)`` from query outputs to state tokens.
        tokenizer: the tokenizer used for actions and chat markers.

    Args:
        config: the backbone config (validated here).
        tokenizer: a tokenizer to use when ``config.tokenizer_path`` is unset (tests pass
            :func:`reference_model.ow.tokenizers.offline_tokenizer`); ignored otherwise.

    Raises:
        ConfigError: a bad config value, a missing ``llm_path`` / ``tokenizer_path``, a model that
            is not a causal LM, a vision tower asked of a model without a supported one, or a
            tokenizer without the chat markers or larger than the LLM's vocabulary.
    """

    def __init__(self, config: OWBackboneConfig, tokenizer: Any = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        llm, vision, self.model_type = _load_llm(config)
        # transformers models are untyped for mypy; they are nn.Modules with the documented API.
        self.llm: Any = llm
        self.vision: Any = vision
        self.hidden_size = int(llm.get_input_embeddings().weight.shape[1])
        self.tokenizer = _load_tokenizer(config, tokenizer)
        vocab = int(llm.get_input_embeddings().weight.shape[0])
        if len(self.tokenizer) > vocab:
            raise ConfigError(
                f"backbone: expected a tokenizer of at most the LLM's {vocab} embeddings, but got "
                f"{len(self.tokenizer)} tokens."
            )
        self._markers = _chat_marker_ids(self.tokenizer)
        for name, ids in self._markers.items():
            self.register_buffer(f"_ids_{name}", torch.tensor(ids, dtype=torch.long), False)

        # Start the new tokens at the scale of the LLM's own word embeddings.
        emb_std = float(llm.get_input_embeddings().weight.detach().float().std())
        self.queries = nn.Parameter(torch.randn(config.num_queries, self.hidden_size) * emb_std)
        self.proj = nn.Linear(self.hidden_size, config.state_dim)
        self.patch_embed: PatchEmbedding | None = None
        if vision is None:
            self.patch_embed = PatchEmbedding(
                config.image_size, config.patch_size, self.hidden_size, emb_std
            )
        else:
            vc = vision.config
            self._vision_patch = (
                int(vc.patch_size),
                int(vc.spatial_merge_size),
                int(vc.temporal_patch_size),
            )
            merge = self._vision_patch[0] * self._vision_patch[1]
            if config.image_size % merge:
                raise ConfigError(
                    f"backbone: expected image_size to be a multiple of the vision tower's "
                    f"patch_size * spatial_merge_size = {merge}, but got {config.image_size}."
                )
            out = int(vision.config.out_hidden_size)
            if out != self.hidden_size:
                raise ConfigError(
                    f"backbone: expected the vision tower's out_hidden_size to equal the LLM's "
                    f"hidden size {self.hidden_size}, but got {out}."
                )
        self._apply_tune()
        # Fixed here, so freezing the backbone later (a decoder-only stage, an eval) never changes
        # what trainable_parameters() and checkpoints contain.
        self._tuned_names = tuple(n for n, p in self.named_parameters() if p.requires_grad)

    # ----------------------------------------------------------------------------- properties
    @property
    def num_obs_tokens(self) -> int:
        """N_obs: state tokens per frame produced by :meth:`encode_observation`."""
        if self.vision is None:
            return (self.config.image_size // self.config.patch_size) ** 2
        side = self.config.image_size // (self._vision_patch[0] * self._vision_patch[1])
        return side * side

    @property
    def tokens_per_round(self) -> int:
        """T: sequence length of one round (markers, state, action slots, queries)."""
        marker = sum(len(ids) for ids in self._markers.values())
        return (
            marker + self.num_obs_tokens + self.config.max_action_tokens + self.config.num_queries
        )

    # ------------------------------------------------------------------------------- encoder h
    def encode_observation(self, frames: torch.Tensor) -> torch.Tensor:
        """Encoder h: frames to state tokens.

        Args:
            frames: float [B, 3, H, W] in [-1, 1] (any H, W; resized to ``image_size``).

        Returns:
            float [B, N_obs, hidden] (the LLM's dtype with the vision tower, else float32).

        Raises:
            ContractError: ``frames`` is not [B, 3, H, W].
        """
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ContractError(
                f"encode_observation: expected frames [B, 3, H, W], but got {tuple(frames.shape)}."
            )
        size = self.config.image_size
        x = frames.float()
        if tuple(x.shape[-2:]) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
        if self.vision is None:
            assert self.patch_embed is not None
            return self.patch_embed(x)
        patch, merge, temporal = self._vision_patch
        pixels, grid = vision_tower_inputs(x, patch, merge, temporal)
        dtype = next(self.vision.parameters()).dtype
        merged = self.vision(pixels.to(dtype), grid_thw=grid).pooler_output
        return merged.reshape(frames.shape[0], self.num_obs_tokens, self.hidden_size)

    # ------------------------------------------------------------------------------- backbone f
    def forward(
        self,
        obs_tokens: torch.Tensor,
        actions: Sequence[Sequence[str]],
        return_hidden: bool = False,
    ) -> torch.Tensor:
        """Predicted next states of every round.

        Args:
            obs_tokens: float [B, R, N_obs, hidden] state tokens (from :meth:`encode_observation`)
                of the R observed frames, oldest first.
            actions: B sequences of R action texts; ``actions[b][r]`` is taken after frame r.
            return_hidden: return the query outputs before the projection instead, float
                [B, R, num_queries, hidden] in the LLM's dtype. They live in the space of
                ``obs_tokens``, so a rollout may feed a prediction back as the next round's state
                tokens (``obs_tokens`` has one N for all rounds, so mixing predicted and encoded
                rounds needs ``num_queries == N_obs``: 256 both for Qwen2.5-VL-7B at 448 px).

        Returns:
            float32 [B, R, num_queries, state_dim]: round r's prediction of the state after
            action r, from rounds ``max(0, r - history + 1) .. r`` only.

        Raises:
            ContractError: ``obs_tokens`` is not [B, R, N, hidden] or ``actions`` is not B lists
                of R texts.
        """
        bsz, rounds = self._check_inputs(obs_tokens, actions)
        seq, mask = self._embed_rounds(obs_tokens, actions)  # [B, R, T, D], [B, R, T]
        h = self.config.history
        if rounds <= h:
            return self._run_windows(seq, mask, return_hidden)
        # Window w holds rounds w .. w+h-1; round r >= h is read from window r-h+1's last round.
        n_win = rounds - h + 1
        idx = torch.arange(n_win, device=seq.device)[:, None] + torch.arange(h, device=seq.device)
        win_seq = seq[:, idx].flatten(0, 1)  # [B * n_win, h, T, D]
        win_mask = mask[:, idx].flatten(0, 1)
        out = self._run_windows(win_seq, win_mask, return_hidden).unflatten(0, (bsz, n_win))
        return torch.cat([out[:, 0], out[:, 1:, -1]], dim=1)

    def predict(
        self,
        obs_tokens: torch.Tensor,
        actions: Sequence[Sequence[str]],
        return_hidden: bool = False,
    ) -> torch.Tensor:
        """The last round's prediction, reading only the last ``history`` rounds.

        Args:
            obs_tokens: float [B, R, N_obs, hidden].
            actions: B sequences of R action texts.
            return_hidden: as in :meth:`forward`.

        Returns:
            float32 [B, num_queries, state_dim] (or [B, num_queries, hidden] with
            ``return_hidden``); equals ``forward(obs_tokens, actions, return_hidden)[:, -1]``.
        """
        _, rounds = self._check_inputs(obs_tokens, actions)
        keep = min(rounds, self.config.history)
        tail = [list(a)[rounds - keep :] for a in actions]
        seq, mask = self._embed_rounds(obs_tokens[:, rounds - keep :], tail)
        return self._run_windows(seq, mask, return_hidden)[:, -1]

    # --------------------------------------------------------------------------- training API
    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """The parameters ``tune`` trains, by state-dict name.

        Always ``queries``, ``proj.*`` and (without the vision tower) ``patch_embed.*``; plus the
        ``llm.*lora_A*`` / ``llm.*lora_B*`` adapters under ``lora``, or every ``llm.*`` and
        ``vision.*`` weight under ``full``. The set is fixed by ``tune`` at construction (where
        ``requires_grad`` is set to match); toggling ``requires_grad`` later does not change it.
        """
        named = dict(self.named_parameters())
        return {n: named[n] for n in self._tuned_names}

    def checkpoint_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint must hold to rebuild this backbone from its config.

        With ``llm_path`` the pretrained base is re-read from that folder and not re-saved: the
        keys are exactly :meth:`trainable_parameters` (``queries``, ``proj.weight``,
        ``proj.bias``, ``patch_embed.*``; the LoRA ``llm.…lora_A.default.weight`` /
        ``llm.…lora_B.default.weight`` under ``lora``; all ``llm.*`` / ``vision.*`` under
        ``full``). A base built from ``llm_config`` is random, so then every weight
        (``state_dict()``) is included.

        Returns:
            name -> detached tensor (shared storage; copy before mutating).
        """
        if self.config.llm_path is None:
            return {k: v.detach() for k, v in self.state_dict().items()}
        return {k: v.detach() for k, v in self.trainable_parameters().items()}

    def load_checkpoint_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Loads what :meth:`checkpoint_state_dict` saved, refusing any other key set.

        Raises:
            ContractError: keys missing from or unexpected in ``state``, or a shape mismatch.
        """
        expected = set(self.checkpoint_state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ContractError(
                f"backbone checkpoint: expected the {len(expected)} keys of tune={self.config.tune!r}"
                f" (llm_path {'set' if self.config.llm_path else 'unset'}), but "
                f"{len(missing)} are missing (e.g. {missing[:3]}) and {len(unexpected)} are "
                f"unexpected (e.g. {unexpected[:3]})."
            )
        try:
            self.load_state_dict(dict(state), strict=False)
        except RuntimeError as err:
            raise ContractError(f"backbone checkpoint: {err}") from None

    def gradient_checkpointing_enable(self) -> None:
        """Recomputes the LLM's (and vision tower's) layer activations in backward (non-reentrant).

        Only takes effect in training mode, as in ``transformers`` (whose
        ``activation_checkpointing_enable`` is used where it exists, the older
        ``gradient_checkpointing_enable`` otherwise).
        """
        kwargs = {"use_reentrant": False}
        for module in (self.llm, self.vision):
            if module is None:
                continue
            enable = getattr(module, "activation_checkpointing_enable", None)
            if enable is not None:
                enable(activation_checkpointing_kwargs=kwargs)
            else:
                module.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    # -------------------------------------------------------------------------------- private
    def _apply_tune(self) -> None:
        tune = self.config.tune
        base = [self.llm] + ([self.vision] if self.vision is not None else [])
        for module in base:
            module.requires_grad_(tune == "full")
        if tune == "lora":
            from peft import LoraConfig, inject_adapter_in_model

            names = self.config.lora_target_modules.strip()
            targets: str | list[str] = (
                names if names == "all-linear" else [n.strip() for n in names.split(",")]
            )
            lora = LoraConfig(
                r=self.config.lora_r,
                lora_alpha=self.config.lora_alpha,
                lora_dropout=self.config.lora_dropout,
                target_modules=targets,
            )
            try:
                inject_adapter_in_model(lora, self.llm)
            except ValueError as err:
                raise ConfigError(
                    f"backbone: expected lora_target_modules to name modules of the LLM, but got "
                    f"{names!r} ({err})"
                ) from None
            for name, param in self.llm.named_parameters():
                param.requires_grad_("lora_" in name)
                if "lora_" in name:
                    # As peft's get_peft_model does: adapters train in float32 on a bf16 base.
                    param.data = param.data.float()

    def _check_inputs(
        self, obs_tokens: torch.Tensor, actions: Sequence[Sequence[str]]
    ) -> tuple[int, int]:
        if obs_tokens.ndim != 4 or obs_tokens.shape[-1] != self.hidden_size:
            raise ContractError(
                f"backbone: expected obs_tokens [B, R, N_obs, {self.hidden_size}], but got "
                f"{tuple(obs_tokens.shape)}."
            )
        bsz, rounds = int(obs_tokens.shape[0]), int(obs_tokens.shape[1])
        if rounds < 1:
            raise ContractError("backbone: expected at least one round, but got R = 0.")
        if isinstance(actions, str) or len(actions) != bsz:
            raise ContractError(
                f"backbone: expected actions for B = {bsz} samples, but got "
                f"{'a string' if isinstance(actions, str) else len(actions)}."
            )
        for b, row in enumerate(actions):
            if (
                isinstance(row, str)
                or len(row) != rounds
                or not all(isinstance(a, str) for a in row)
            ):
                got = "a string" if isinstance(row, str) else f"{len(row)} items"
                raise ContractError(
                    f"backbone: expected {rounds} action texts for sample {b} (one per round of "
                    f"obs_tokens [B, R={rounds}, ...]), but got {got}."
                )
        return bsz, rounds

    def _marker(self, name: str) -> torch.Tensor:
        ids: torch.Tensor = getattr(self, f"_ids_{name}")
        return ids

    def _embed_rounds(
        self, obs_tokens: torch.Tensor, actions: Sequence[Sequence[str]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings [B, R, T, D] (the LLM's dtype) and key mask bool [B, R, T]."""
        bsz, rounds, n_obs = obs_tokens.shape[:3]
        embed = self.llm.get_input_embeddings()
        dtype, device = embed.weight.dtype, embed.weight.device
        length = self.config.max_action_tokens
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        flat = [a for row in actions for a in row]
        ids = torch.full((len(flat), length), int(pad), dtype=torch.long)
        valid = torch.zeros(len(flat), length, dtype=torch.bool)
        for i, enc in enumerate(self.tokenizer(flat, add_special_tokens=False)["input_ids"]):
            enc = enc[:length]
            ids[i, : len(enc)] = torch.tensor(enc, dtype=torch.long)
            valid[i, : len(enc)] = True
        ids, valid = ids.to(device).view(bsz, rounds, length), valid.to(device)

        def marker(name: str) -> torch.Tensor:
            return embed(self._marker(name)).expand(bsz, rounds, -1, -1)

        parts = [marker("user")]
        if "state_open" in self._markers:
            parts.append(marker("state_open"))
        parts.append(obs_tokens.to(dtype))
        if "state_close" in self._markers:
            parts.append(marker("state_close"))
        parts += [
            embed(ids),
            marker("assistant"),
            self.queries.to(dtype).expand(bsz, rounds, -1, -1),
            marker("end"),
        ]
        seq = torch.cat(parts, dim=2)
        before = sum(
            len(self._markers[k])
            for k in ("user", "state_open", "state_close")
            if k in self._markers
        )
        mask = torch.ones(bsz, rounds, seq.shape[2], dtype=torch.bool, device=device)
        mask[:, :, before + n_obs : before + n_obs + length] = valid.view(bsz, rounds, length)
        return seq, mask

    def _run_windows(
        self, seq: torch.Tensor, mask: torch.Tensor, return_hidden: bool = False
    ) -> torch.Tensor:
        """One causal pass per window: seq [W, R, T, D], mask [W, R, T] -> [W, R, Q, state_dim]."""
        win, rounds, per_round, _ = seq.shape
        flat_mask = mask.reshape(win, rounds * per_round)
        # Padded action slots take no position, so padding never shifts RoPE phases.
        positions = (flat_mask.long().cumsum(1) - 1).clamp(min=0)
        out = self.llm(
            inputs_embeds=seq.reshape(win, rounds * per_round, -1),
            attention_mask=flat_mask.long(),
            position_ids=positions,
            use_cache=False,
        ).last_hidden_state
        q0 = per_round - self.config.num_queries - len(self._markers["end"])
        hidden = out.view(win, rounds, per_round, -1)[:, :, q0 : q0 + self.config.num_queries]
        if return_hidden:
            return hidden
        return self.proj(hidden.to(self.proj.weight.dtype))


class PatchEmbedding(nn.Module):
    """Trainable encoder h without a vision tower: patches -> tokens of the LLM's width.

    Args:
        image_size: side of the (already resized) input frames.
        patch_size: patch side; ``(image_size / patch_size)**2`` tokens.
        hidden: output width (the LLM's hidden size).
        scale: initial LayerNorm gain (the LLM embeddings' standard deviation).
    """

    def __init__(self, image_size: int, patch_size: int, hidden: int, scale: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, hidden, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(hidden)
        nn.init.constant_(self.norm.weight, scale)
        n = (image_size // patch_size) ** 2
        self.pos = nn.Parameter(torch.randn(n, hidden) * scale)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """float [B, 3, S, S] in [-1, 1] -> float32 [B, (S/p)**2, hidden] (row-major patches)."""
        x = self.conv(frames.to(self.conv.weight.dtype)).flatten(2).transpose(1, 2)
        return self.norm(x) + self.pos


def vision_tower_inputs(
    frames: torch.Tensor, patch_size: int, merge_size: int, temporal_patch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Qwen2-VL / Qwen2.5-VL vision-tower inputs from frames, as its image processor makes them.

    Args:
        frames: float [B, 3, H, W] in [-1, 1], H and W multiples of ``patch_size * merge_size``.
        patch_size: the tower's spatial patch side (14 for Qwen2.5-VL).
        merge_size: the tower's ``spatial_merge_size`` (2): merged groups of patches stay
            contiguous in the flattened order.
        temporal_patch_size: the tower's temporal patch (2); a still frame is repeated over it.

    Returns:
        ``pixel_values`` float32 [B * gh * gw, 3 * temporal_patch_size * p * p] (CLIP-normalised)
        and ``grid_thw`` int64 [B, 3] rows ``(1, gh, gw)`` with gh = H / p, gw = W / p.
    """
    bsz, chans, height, width = frames.shape
    mean = torch.tensor(_CLIP_MEAN, dtype=torch.float32, device=frames.device).view(1, 3, 1, 1)
    std = torch.tensor(_CLIP_STD, dtype=torch.float32, device=frames.device).view(1, 3, 1, 1)
    x = ((frames.float() + 1.0) / 2.0 - mean) / std
    gh, gw = height // patch_size, width // patch_size
    x = x.reshape(
        bsz,
        chans,
        gh // merge_size,
        merge_size,
        patch_size,
        gw // merge_size,
        merge_size,
        patch_size,
    )
    # -> [B, gh/m, gw/m, m, m, C, p, p]: each merge group's m*m patches contiguous, row-major.
    x = x.permute(0, 2, 5, 3, 6, 1, 4, 7)
    x = x.unsqueeze(6).expand(*x.shape[:6], temporal_patch_size, patch_size, patch_size)
    pixels = x.reshape(bsz * gh * gw, chans * temporal_patch_size * patch_size * patch_size)
    grid = torch.tensor([[1, gh, gw]] * bsz, dtype=torch.long, device=frames.device)
    return pixels, grid


def _load_llm(config: OWBackboneConfig) -> tuple[Any, Any, str]:
    """(text decoder, vision tower or None, model_type) from a local folder or a config dict."""
    from transformers import (
        MODEL_FOR_CAUSAL_LM_MAPPING,
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING,
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
    )

    dtype = _DTYPES[config.llm_dtype]
    if config.llm_path is not None:
        path = Path(config.llm_path)
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"backbone: expected llm_path to be a local transformers model folder with a "
                f"config.json, but got {str(path)!r} "
                f"({'no config.json in it' if path.is_dir() else 'no such folder'})."
            )
        hf_config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    else:
        kwargs = dict(config.llm_config)
        model_type = str(kwargs.pop("model_type"))
        try:
            hf_config = AutoConfig.for_model(model_type, **kwargs)
        except ValueError as err:
            raise ConfigError(f"backbone: llm_config: {err}") from None
    model_type = str(hf_config.model_type)
    is_vl = (
        model_type in _VISION_TOWER_TYPES
        and type(hf_config) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING
    )
    if not is_vl and type(hf_config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise ConfigError(
            f"backbone: expected a causal language model (a model_type with an "
            f"AutoModelForCausalLM class, e.g. 'qwen2', or one of {_VISION_TOWER_TYPES}), but got "
            f"model_type {model_type!r} ({type(hf_config).__name__})."
        )
    if config.use_vision_tower and not is_vl:
        raise ConfigError(
            f"backbone: expected a model with a vision tower ({_VISION_TOWER_TYPES}) for "
            f"use_vision_tower, but got model_type {model_type!r}."
        )
    auto = AutoModelForImageTextToText if is_vl else AutoModelForCausalLM
    common = {"attn_implementation": config.attn_implementation, "trust_remote_code": False}
    if config.llm_path is not None:
        model = auto.from_pretrained(
            config.llm_path, config=hf_config, local_files_only=True, dtype=dtype, **common
        )
    else:
        model = auto.from_config(hf_config, **common).to(dtype)
    llm = model.get_decoder()
    vision = model.model.visual if config.use_vision_tower else None
    # Only the decoder (and tower) are kept; the LM head and the wrapper are dropped with `model`.
    return llm, vision, model_type


def _load_tokenizer(config: OWBackboneConfig, given: Any) -> Any:
    from transformers import AutoTokenizer

    path = config.tokenizer_path or (config.llm_path if given is None else None)
    if path is None:
        if given is not None:
            return given
        from reference_model.ow.tokenizers import offline_tokenizer

        return offline_tokenizer()
    if not Path(path).is_dir():
        raise ConfigError(
            f"backbone: expected tokenizer_path to be a local tokenizer folder, but got "
            f"{str(path)!r} (no such folder)."
        )
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"backbone: could not read a tokenizer from {str(path)!r}: {err}"
        ) from None


def _chat_marker_ids(tokenizer: Any) -> dict[str, list[int]]:
    """Token ids of the template's fixed pieces; the vision markers only if single tokens."""

    def ids(text: str) -> list[int]:
        return [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]

    for marker in ("<|im_start|>", "<|im_end|>"):
        if len(ids(marker)) != 1:
            raise ConfigError(
                f"backbone: expected a tokenizer with the chat marker {marker} as one token, but "
                f"it encodes to {ids(marker)}."
            )
    pieces = {
        "user": ids("<|im_start|>user\n"),
        "assistant": ids("<|im_end|>\n<|im_start|>assistant\n"),
        "end": ids("<|im_end|>\n"),
    }
    unk = getattr(tokenizer, "unk_token_id", None)
    for name, text in (("state_open", "<|vision_start|>"), ("state_close", "<|vision_end|>")):
        got = ids(text)
        if len(got) == 1 and got[0] != unk:
            pieces[name] = got
    return pieces
