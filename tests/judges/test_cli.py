"""Tests for `panbench judges ls`."""

from __future__ import annotations

import pytest

from panbench.cli import main


def test_judges_ls(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["judges", "ls"]) == 0
    out = capsys.readouterr().out
    for word in ("openai-compatible", "human", "base_url", "api_key_env", "sheet", "scores"):
        assert word in out
