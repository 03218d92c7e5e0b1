"""A byte-level tokenizer for action text: no vocabulary file, nothing to download."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["ByteTokenizer"]


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
