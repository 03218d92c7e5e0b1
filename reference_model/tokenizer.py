"""A byte-level tokenizer for action text: no vocabulary file, nothing to download."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["ByteTokenizer", "action_text"]


def action_text(action: Any) -> str:
    """The text f reads for an :class:`~panbench.envs.base.Action`.

    Text and discrete actions read as their text. A continuous action (a vector and no discrete
    id: PushT's pushes) reads as its vector in fixed numeric text, two decimals per component
    ("push +0.42 -0.13"): the same byte embedding as every other action, no extra weights, and
    one checkpoint takes all three kinds of action. (An env's own text for such a vector only
    names its nearest direction, which loses the magnitude.)

    Example:
        >>> from panbench.envs.base import Action
        >>> action_text(Action(index=-1, text="move the agent up", vector=(0.4213, -1.0)))
        'push +0.42 -1.00'
    """
    vector = getattr(action, "vector", None)
    if vector is None or action.has_index:
        return str(action.text)
    return "push " + " ".join(f"{float(v):+.2f}" for v in vector)


class ByteTokenizer:
    """Encodes text as its UTF-8 bytes (ids 0..255), right-padded with :attr:`pad_id`.

    Args:
        max_bytes: length L of every encoded row; longer texts keep their first L bytes (the
            shipped envs' actions are at most 30 bytes).
    """

    pad_id = 256
    vocab_size = 257

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids of ``texts``.

        Returns:
            int64 [len(texts), max_bytes].

        Example:
            >>> ByteTokenizer(4).encode(["up", "right"]).tolist()
            [[117, 112, 256, 256], [114, 105, 103, 104]]
        """
        out = torch.full((len(texts), self.max_bytes), self.pad_id, dtype=torch.long)
        for i, text in enumerate(texts):
            data = text.encode("utf-8")[: self.max_bytes]
            if data:
                out[i, : len(data)] = torch.tensor(list(data), dtype=torch.long)
        return out

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Inverse of :meth:`encode` (padding dropped; a cut multi-byte character is replaced)."""
        rows = ids.tolist() if ids.ndim == 2 else [ids.tolist()]
        return [bytes(i for i in row if i < 256).decode("utf-8", "replace") for row in rows]
