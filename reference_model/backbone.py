"""Backbone f: a causal transformer over rounds of (state tokens, action bytes, learnable queries).

Round r's sequence is ``[state(o_r) | action(a_r) | queries]``; the outputs at the query positions
are the predicted next latent state. Rounds are concatenated oldest first under one causal mask,
so a single forward pass predicts every round of a training window, and round r sees exactly
the history it would see at inference.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reference_model.config import ModelConfig
from reference_model.tokenizer import ByteTokenizer

__all__ = ["Backbone", "patchify", "unpatchify"]


def patchify(z: torch.Tensor, p: int) -> torch.Tensor:
    """float [N, C, h, w] latents to [N, (h/p)*(w/p), C*p*p] tokens (row-major patches)."""
    n, c, h, w = z.shape
    z = z.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return z.reshape(n, (h // p) * (w // p), c * p * p)


def unpatchify(t: torch.Tensor, p: int, c: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: [N, L, C*p*p] to [N, C, h, w] with h = w = sqrt(L) * p."""
    n, length, _ = t.shape
    side = round(length**0.5)
    z = t.reshape(n, side, side, c, p, p).permute(0, 3, 1, 4, 2, 5)
    return z.reshape(n, c, side * p, side * p)


class Backbone(nn.Module):
    """A ``transformers`` Qwen2 model built from config, with state/query/latent heads.

    Args:
        config: the whole model config (the backbone section and the latent geometry).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        from transformers import Qwen2Config, Qwen2Model

        b = config.backbone
        self.config = config
        self.patch = b.state_patch
        self.latent_channels = config.encoder.latent_channels
        self.num_tokens = config.num_state_tokens
        tokens_per_round = 2 * self.num_tokens + b.max_action_bytes
        qcfg = Qwen2Config(
            vocab_size=ByteTokenizer.vocab_size,
            hidden_size=b.hidden_size,
            num_hidden_layers=b.num_layers,
            num_attention_heads=b.num_heads,
            num_key_value_heads=b.num_kv_heads,
            intermediate_size=b.intermediate_size,
            max_position_embeddings=max(256, tokens_per_round * config.history),
            rope_parameters={"rope_type": "default", "rope_theta": b.rope_theta},
            attention_dropout=0.0,
            tie_word_embeddings=False,
        )
        qcfg._attn_implementation = "sdpa"
        self.transformer = Qwen2Model(qcfg)
        d = self.latent_channels * self.patch**2
        self.state_in = nn.Linear(d, b.hidden_size)
        self.state_pos = nn.Parameter(torch.randn(self.num_tokens, b.hidden_size) * 0.02)
        self.queries = nn.Parameter(torch.randn(self.num_tokens, b.hidden_size) * 0.02)
        self.latent_out = nn.Linear(b.hidden_size, d)
        # Only models with a reward head carry it, so earlier checkpoints load unchanged.
        self.outcome_out = nn.Linear(b.hidden_size, 2) if config.reward_head else None

    @property
    def hidden_size(self) -> int:
        return int(self.transformer.config.hidden_size)

    def _sequence(self, latents: torch.Tensor, action_ids: torch.Tensor) -> torch.Tensor:
        """The input embeddings float [B, R*T, D]: per round, state tokens, action bytes and
        queries (T positions), oldest round first."""
        bsz, rounds = latents.shape[:2]
        state = patchify(latents.flatten(0, 1), self.patch)  # [B*R, N, d]
        state = self.state_in(state) + self.state_pos
        action = self.transformer.get_input_embeddings()(action_ids.flatten(0, 1))
        queries = self.queries.expand(bsz * rounds, -1, -1)
        seq = torch.cat([state, action.to(state.dtype), queries], dim=1)  # [B*R, T, D]
        return seq.reshape(bsz, rounds * seq.shape[1], -1)

    def forward(self, latents: torch.Tensor, action_ids: torch.Tensor) -> torch.Tensor:
        """Predicted next states for every round.

        Args:
            latents: float [B, R, C, h, w] normalised latents of the R history frames.
            action_ids: int64 [B, R, L] byte ids of the action taken after each frame.

        Returns:
            float [B, R, N, D]: query outputs of each round (N state tokens of width D).
        """
        bsz, rounds = latents.shape[:2]
        seq = self._sequence(latents, action_ids)
        per_round = seq.shape[1] // rounds
        positions = torch.arange(seq.shape[1], device=seq.device)[None].expand(bsz, -1)
        out = self.transformer(
            inputs_embeds=seq, position_ids=positions, use_cache=False
        ).last_hidden_state
        out = out.reshape(bsz, rounds, per_round, -1)
        return out[:, :, -self.num_tokens :]

    def last_round(self, latents: torch.Tensor, action_ids: torch.Tensor) -> torch.Tensor:
        """``forward(latents, action_ids)[:, -1]``, the predicted next state of a rollout step,
        without computing what it does not need.

        The last layer's outputs are read only at the last round's query positions, so that
        layer runs its queries, attention output and MLP for those positions alone (every
        position still gives its keys and values). Each position's values are computed by the
        same kernels over the same operands as in :meth:`forward`, so the result is the same
        bit for bit (tests/reference_model/test_model.py checks it). It follows transformers'
        Qwen2 decoder layer at inference (no dropout, no cache); grouped-query configs
        (``num_kv_heads < num_heads``) take :meth:`forward`.

        Args:
            latents: float [B, R, C, h, w] normalised latents of the R history frames.
            action_ids: int64 [B, R, L] byte ids of the action taken after each frame.

        Returns:
            float [B, N, D]: the last round's query outputs.
        """
        from transformers.models.qwen2.modeling_qwen2 import rotate_half

        def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
            # transformers' apply_rotary_pos_emb, one tensor at a time
            return (x * cos[:, None]) + (rotate_half(x) * sin[:, None])

        qwen: Any = self.transformer
        if qwen.layers[0].self_attn.num_key_value_groups != 1:
            return self(latents, action_ids)[:, -1]
        hidden = self._sequence(latents, action_ids)
        bsz, length, keep = hidden.shape[0], hidden.shape[1], self.num_tokens
        positions = torch.arange(length, device=hidden.device)[None].expand(bsz, -1)
        cos, sin = qwen.rotary_emb(hidden, positions)
        # the last `keep` positions see every earlier position, and each other causally
        mask = torch.ones(keep, length, dtype=torch.bool, device=hidden.device).tril(length - keep)
        for i, layer in enumerate(qwen.layers):
            last = i == len(qwen.layers) - 1
            attn = layer.self_attn
            normed = layer.input_layernorm(hidden)
            q_in = normed[:, -keep:] if last else normed
            q = attn.q_proj(q_in).view(bsz, q_in.shape[1], -1, attn.head_dim).transpose(1, 2)
            k = attn.k_proj(normed).view(bsz, length, -1, attn.head_dim).transpose(1, 2)
            v = attn.v_proj(normed).view(bsz, length, -1, attn.head_dim).transpose(1, 2)
            k = rotate(k, cos, sin)
            if last:
                q = rotate(q, cos[:, -keep:], sin[:, -keep:])
                out = nn.functional.scaled_dot_product_attention(
                    q, k, v, attn_mask=mask, scale=attn.scaling
                )
                hidden = hidden[:, -keep:]
            else:
                q = rotate(q, cos, sin)
                out = nn.functional.scaled_dot_product_attention(
                    q, k, v, is_causal=True, scale=attn.scaling
                )
            hidden = hidden + attn.o_proj(out.transpose(1, 2).reshape(bsz, q_in.shape[1], -1))
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        return qwen.norm(hidden)

    def to_latent(self, states: torch.Tensor) -> torch.Tensor:
        """The latent-objective head: states [M, N, D] to predicted latents [M, C, h, w]."""
        return unpatchify(self.latent_out(states), self.patch, self.latent_channels)

    def to_outcomes(self, states: torch.Tensor) -> torch.Tensor:
        """The reward head: states [M, N, D] to [M, 2] (reward, terminal logit).

        Raises:
            ValueError: the model was built without ``reward_head``.
        """
        if self.outcome_out is None:
            raise ValueError("This model has no reward head (model.reward_head is false).")
        return self.outcome_out(states.mean(dim=1))
