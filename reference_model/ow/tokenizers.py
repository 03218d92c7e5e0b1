"""An offline byte-level tokenizer built in code, with the Qwen chat markers, for tiny-config tests.

Real runs load the pretrained model's own tokenizer from a local folder; tests must never download
one, so :func:`offline_tokenizer` builds a ``transformers.PreTrainedTokenizerFast`` from the
``tokenizers`` library alone. It is a byte-level BPE without merges: every UTF-8 byte is a token, so
any text (action sentences, umT5 prompts) encodes losslessly, and a few ``extra_words`` may be given
whole-word ids. The same call always yields the same ids.

Vocabulary layout (ids):

====================  =========================================================
0                     ``<pad>`` (padding; also T5's decoder start, as in umT5)
1                     ``</s>`` (end of sequence)
2                     ``<|im_start|>`` (Qwen chat marker, special)
3                     ``<|im_end|>`` (Qwen chat marker, special)
4 .. 259              the 256 byte symbols of the GPT-2 byte-level alphabet
260 ..                ``extra_words`` in the order given (duplicates dropped)
====================  =========================================================
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerFast

from panbench.errors import ConfigError

__all__ = ["CHAT_MARKERS", "EOS_TOKEN", "PAD_TOKEN", "offline_tokenizer"]

PAD_TOKEN = "<pad>"
EOS_TOKEN = "</s>"
CHAT_MARKERS = ("<|im_start|>", "<|im_end|>")
_SPECIALS = (PAD_TOKEN, EOS_TOKEN, *CHAT_MARKERS)
# Qwen's own template, reduced to what the tests use (no system prompt, no tools).
_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def offline_tokenizer(extra_words: Sequence[str] = ()) -> PreTrainedTokenizerFast:
    """A small deterministic tokenizer (vocab 260 + ``len(extra_words)``), built without download.

    Args:
        extra_words: words that get one id each when they stand alone (e.g. an env's action
            words); any other text falls back to one id per UTF-8 byte. Must not contain
            whitespace and must not be a special token.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``pad_token`` ``<pad>`` (id 0), ``eos_token`` ``</s>``
        (id 1), the chat markers ``<|im_start|>`` / ``<|im_end|>`` as special tokens (ids 2, 3) and
        a Qwen-style ``chat_template``; ``add_special_tokens`` adds nothing, so ``encode`` returns
        exactly the text's tokens.

    Raises:
        ConfigError: an extra word is empty, contains whitespace or is a special token.

    Example:
        >>> tok = offline_tokenizer(["left"])
        >>> tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
        [2, 3]
        >>> tok.decode(tok.encode("move left"))
        'move left'
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    words: list[str] = []
    for word in extra_words:
        if not isinstance(word, str) or not word or any(c.isspace() for c in word):
            raise ConfigError(
                f"offline_tokenizer: expected extra_words to be non-empty words without "
                f"whitespace, but got {word!r}."
            )
        if word in _SPECIALS:
            raise ConfigError(
                f"offline_tokenizer: expected extra_words to exclude the special tokens "
                f"{list(_SPECIALS)}, but got {word!r}."
            )
        if word not in words:
            words.append(word)

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())  # sorted: set order is not stable
    vocab = {tok: i for i, tok in enumerate(_SPECIALS)}
    vocab.update({sym: len(_SPECIALS) + i for i, sym in enumerate(alphabet)})
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in _SPECIALS])
    # single_word: "left" gets its own id in "move left" but not inside "leftover".
    backend.add_tokens([AddedToken(w, single_word=True, normalized=False) for w in words])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        additional_special_tokens=list(CHAT_MARKERS),
        model_max_length=1 << 20,
    )
    tokenizer.chat_template = _CHAT_TEMPLATE
    return tokenizer
