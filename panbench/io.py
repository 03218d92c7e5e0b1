"""Atomic file and folder writes, so an interrupted run never leaves output that looks complete.

Every writer in panbench (episode shards, results files, leaderboards) goes through these helpers:

- :func:`atomic_open` / :func:`atomic_write_bytes` / :func:`atomic_write_text` /
  :func:`atomic_write_json` write a single file. The data goes to a temporary file in the same
  folder (``.<name>.tmp-<pid>-<random>``), is flushed and fsynced, and only then replaces the
  target with :func:`os.replace`, which is atomic on POSIX and Windows when both paths are on the
  same filesystem (hence the temporary file lives next to the target, never in ``/tmp``). Readers
  see either the old file or the complete new one, never a prefix.
- :func:`read_versioned_json` is the one reader of panbench's versioned JSON files (results,
  submissions, episode indexes, manifests): it parses the file and checks its format name and
  version, so every reader refuses a foreign or newer file with the same kind of message.
- :func:`atomic_dir` builds a whole folder as ``<out>.tmp-<pid>`` and renames it to ``<out>`` only
  when the ``with`` block finishes without an exception; on an exception the temporary folder is
  removed. A process killed outright (SIGKILL, power loss) can leave a ``<out>.tmp-<pid>`` folder
  behind, but never a ``<out>`` folder with missing files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import IO, Any

from panbench.errors import ConfigError, DataError, PanbenchError

__all__ = [
    "atomic_dir",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_dir",
    "read_versioned_json",
    "sha256_file",
]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flushes a folder's entry table to disk, so a rename inside it survives a crash.

    A no-op where folders cannot be opened for fsync (Windows).
    """
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on folders; the rename is still atomic
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None
) -> Iterator[IO[Any]]:
    """Opens a temporary file that replaces ``path`` atomically when the block succeeds.

    Args:
        path: the file to create or replace. Its folder must exist.
        mode: ``"wb"`` or ``"w"`` (text); other modes make no sense for a whole-file replace.
        encoding: text encoding for ``mode="w"`` (default UTF-8).

    Yields:
        The open temporary file. On an exception inside the block it is deleted and ``path`` is
        left untouched.

    Raises:
        ConfigError: ``mode`` is not ``"w"`` or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ConfigError(f"Expected mode 'w' or 'wb' for an atomic write, but got {mode!r}.")
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    # newline="" for text: the caller's "\n" is written as-is on every platform, so the bytes
    # (and therefore their hashes) do not depend on the OS.
    f = open(tmp, mode, encoding=encoding, newline="" if mode == "w" else None)  # noqa: SIM115
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, target)
    except BaseException:
        f.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_open`) and returns the path."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Writes ``text`` to ``path`` atomically, newlines untranslated, and returns the path."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def atomic_write_json(
    path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2, sort_keys: bool = True
) -> Path:
    """Writes ``obj`` as JSON (UTF-8, trailing newline) to ``path`` atomically.

    Keys are sorted by default so equal objects give byte-identical files.
    """
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(dirpath)


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike[str], *, allow_existing_empty: bool = True) -> Iterator[Path]:
    """Builds a folder in ``<out>.tmp-<pid>`` and moves it to ``out`` when the block succeeds.

    Write every file of the folder inside the block, into the yielded path. On success the files
    are fsynced and the folder is renamed to ``out`` in one step; on an exception (including
    KeyboardInterrupt) the temporary folder is removed and ``out`` is left as it was.

    Args:
        out: the folder to create. Its parent is created if needed.
        allow_existing_empty: if ``out`` already exists as an empty folder, replace it (a user
            may well ``mkdir`` the output first). A non-empty ``out`` is always refused.

    Yields:
        The temporary folder to fill.

    Raises:
        ConfigError: ``out`` exists and is a file, or a non-empty folder (or an empty one with
            ``allow_existing_empty=False``); nothing is written.
    """
    target = Path(out)
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise ConfigError(f"Output {target} exists and is not a folder; choose another path.")
        if any(target.iterdir()) or not allow_existing_empty:
            raise ConfigError(
                f"Output folder {target} already exists and is not empty; refusing to overwrite "
                "it. Choose a new path or remove the folder first."
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    if tmp.exists():  # left by an earlier crashed run of a process that had our pid
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        # rename(2) replaces an empty folder atomically; re-check, it may have filled since.
        if target.is_dir() and any(target.iterdir()):
            raise ConfigError(
                f"Output folder {target} was filled by someone else while this run was "
                f"writing; the new output is not moved there."
            )
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(target.parent)


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """The hex sha256 of a file's bytes, read in chunks so large files need little memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def _versions_text(versions: Collection[int]) -> str:
    ordered = sorted(versions)
    if len(ordered) == 1:
        return str(ordered[0])
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"an integer from {ordered[0]} to {ordered[-1]}"
    return f"one of {ordered}"


def read_versioned_json(
    path: str | os.PathLike[str],
    *,
    versions: int | Collection[int],
    format_name: str | None = None,
    format_key: str = "format",
    version_key: str = "format_version",
    what: str = "file",
    error: type[PanbenchError] = DataError,
    hint: str = "",
    blob: bytes | None = None,
) -> dict[str, Any]:
    """Reads a JSON object and checks its format name and version.

    Args:
        path: the file (named in every message).
        versions: the version, or the versions, this reader understands.
        format_name: the expected value of ``format_key``; ``None`` for files without one
            (``results.json`` carries only ``schema_version``).
        format_key: the field naming the format.
        version_key: the field holding the version (``format_version``, ``schema_version``).
        what: what the file is, for messages ("results file", "index").
        error: the :class:`PanbenchError` subclass to raise.
        hint: appended to a version mismatch, e.g. what to run to get a readable file.
        blob: the file's bytes when the caller has read them already (e.g. to hash them).

    Returns:
        The parsed object.

    Raises:
        PanbenchError: ``error``, when the file cannot be read, is not a JSON object, or has
            another format or an unsupported version; the message says expected versus found.
    """
    path = Path(path)
    accepted = {versions} if isinstance(versions, int) else set(versions)
    try:
        data = json.loads(path.read_bytes() if blob is None else blob)
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"Could not read {what} {path}: {err}.") from err
    except json.JSONDecodeError as err:
        raise error(f"Could not read {what} {path}: not valid JSON ({err}).") from err
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object ({what}), but found {type(data).__name__}.")
    if format_name is not None and data.get(format_key) != format_name:
        raise error(
            f"{path}: expected format {format_name!r} (field {format_key!r}), but found "
            f"{data.get(format_key)!r}."
        )
    version = data.get(version_key)
    # bool is an int subclass: true is not version 1.
    if type(version) is not int or version not in accepted:
        sep = " " if hint else ""
        raise error(
            f"{path}: field {version_key!r}: expected {_versions_text(accepted)}, but found "
            f"{version!r}.{sep}{hint}"
        )
    return data
