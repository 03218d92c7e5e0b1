"""Tests of the offline tokenizer: deterministic, lossless, with the Qwen chat markers, no download."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from panbench.errors import ConfigError
from reference_model.ow.tokenizers import CHAT_MARKERS, offline_tokenizer

TEXTS = ["move left", "leftover up", "héllo 世界 ✓", "", "  two  spaces\n"]


def test_chat_markers_pad_and_eos_are_single_special_tokens() -> None:
    tok = offline_tokenizer()
    for marker in CHAT_MARKERS:
        ids = tok.encode(marker)
        assert len(ids) == 1 and ids[0] in tok.all_special_ids
        assert tok.convert_ids_to_tokens(ids[0]) == marker
    assert tok.pad_token_id is not None and tok.eos_token_id is not None
    assert tok.pad_token_id != tok.eos_token_id
    assert len(tok) < 1000
    # A marker inside text is still one token, not its characters.
    ids = tok.encode("<|im_start|>user\nhi<|im_end|>")
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert ids[-1] == tok.convert_tokens_to_ids("<|im_end|>")


def test_deterministic_across_builds() -> None:
    a, b = offline_tokenizer(["left", "up"]), offline_tokenizer(["left", "up"])
    assert a.get_vocab() == b.get_vocab()
    for text in TEXTS:
        assert a.encode(text) == b.encode(text)


@pytest.mark.parametrize("text", TEXTS)
def test_any_text_round_trips(text: str) -> None:
    tok = offline_tokenizer(["left"])
    assert tok.decode(tok.encode(text)) == text
    # Byte fallback: without extra words there is one id per UTF-8 byte.
    assert len(offline_tokenizer().encode(text)) == len(text.encode("utf-8"))


def test_extra_words_get_one_id_only_as_whole_words() -> None:
    tok = offline_tokenizer(["left", "up", "left"])  # duplicate dropped
    assert len(tok) == len(offline_tokenizer()) + 2
    left = tok.convert_tokens_to_ids("left")
    assert tok.encode("move left")[-1] == left
    assert left not in tok.encode("leftover")
    assert tok.encode("left") != tok.encode("up")


def test_chat_template_matches_qwen_layout() -> None:
    tok = offline_tokenizer()
    text = tok.apply_chat_template(
        [{"role": "user", "content": "go"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\ngo<|im_end|>\n<|im_start|>assistant\n"


def test_save_and_reload_offline(tmp_path: Path) -> None:
    tok = offline_tokenizer(["left"])
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    for text in [*TEXTS, "<|im_start|>move left<|im_end|>"]:
        assert again.encode(text) == tok.encode(text)
    assert again.pad_token_id == tok.pad_token_id


@pytest.mark.parametrize("word", ["", "two words", "<|im_end|>", 3])
def test_bad_extra_words_are_refused(word: object) -> None:
    with pytest.raises(ConfigError, match="expected extra_words"):
        offline_tokenizer([word])  # type: ignore[list-item]
