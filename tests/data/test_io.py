"""Atomic writes: files and folders appear complete or not at all."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from panbench.errors import ConfigError
from panbench.io import (
    atomic_dir,
    atomic_open,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    sha256_file,
)


def test_atomic_write_bytes_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_atomic_open_failure_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as f:
        f.write("half of the new cont")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_open_rejects_append_mode(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mode"), atomic_open(tmp_path / "x", "ab"):
        pass


def test_atomic_write_text_keeps_newlines_untranslated(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "t.txt", "a\nb\n")
    assert (tmp_path / "t.txt").read_bytes() == b"a\nb\n"


def test_atomic_write_json_is_sorted_and_deterministic(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    atomic_write_json(tmp_path / "b.json", {"a": [1, 2], "b": 1})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert json.loads((tmp_path / "a.json").read_text()) == {"a": [1, 2], "b": 1}
    assert (tmp_path / "a.json").read_text().index('"a"') < (tmp_path / "a.json").read_text().index(
        '"b"'
    )


def test_atomic_dir_moves_complete_folder_into_place(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "out"
    with atomic_dir(out) as tmp:
        assert tmp != out and not out.exists()
        (tmp / "f.txt").write_text("x")
    assert (out / "f.txt").read_text() == "x"
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


def test_atomic_dir_removes_everything_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt), atomic_dir(out) as tmp:
        (tmp / "f.txt").write_text("x")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_an_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with atomic_dir(out) as tmp:
        (tmp / "f.txt").write_text("x")
    assert (out / "f.txt").exists()


def test_atomic_dir_refuses_non_empty_folder_and_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"), atomic_dir(out):
        pass
    assert (out / "keep.txt").read_text() == "mine"
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="not a folder"), atomic_dir(afile):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "out"]


def test_atomic_dir_refuses_when_target_fills_meanwhile(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="filled by someone else"), atomic_dir(out) as tmp:
        (tmp / "mine.txt").write_text("x")
        out.mkdir()
        (out / "theirs.txt").write_text("y")
    assert [p.name for p in out.iterdir()] == ["theirs.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    atomic_write_bytes(tmp_path / "d", data)
    assert sha256_file(tmp_path / "d", chunk_size=1000) == hashlib.sha256(data).hexdigest()
