"""Stored leaderboard submissions: the file format and its reader (no leaderboard logic).

A submission file (``leaderboards/<suite>/submissions/<name>.json``) packs one results folder:
``{"format", "format_version", "name", "submitted", "partial", "results", "samples"}``. Plots,
compare and the leaderboard read it through :func:`read_submission`, write it with
:func:`write_submission` and unpack it back into a results folder with :func:`unpack_submission`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from panbench.errors import DataError
from panbench.io import read_versioned_json

__all__ = [
    "SUBMISSION_FORMAT",
    "SUBMISSION_FORMAT_VERSION",
    "TASK_NAME",
    "SubmissionError",
    "read_submission",
    "sanitize_name",
    "unpack_submission",
    "write_submission",
]

SUBMISSION_FORMAT = "panbench-submission"
SUBMISSION_FORMAT_VERSION = 1

#: a plain task name: it becomes a file name when a submission is unpacked, so no path parts
TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 100


class SubmissionError(DataError):
    """A submission was refused, or a stored submission no longer verifies."""


def read_submission(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parses a stored submission file and checks its envelope (not its contents; see
    :func:`verify_submission`).

    Returns:
        ``{"format", "format_version", "name", "submitted", "partial", "results", "samples"}``.

    Raises:
        SubmissionError: not a submission file of this format version.
    """
    path = Path(path)
    data = read_versioned_json(
        path,
        format_name=SUBMISSION_FORMAT,
        versions=SUBMISSION_FORMAT_VERSION,
        what="submission",
        error=SubmissionError,
    )
    for key, kind in (("name", str), ("submitted", str), ("results", dict), ("samples", dict)):
        if not isinstance(data.get(key), kind):
            raise SubmissionError(
                f"{path}: field {key!r}: expected a {kind.__name__}, but found "
                f"{type(data.get(key)).__name__}."
            )
    return data


def sanitize_name(name: str) -> str:
    """A file-name-safe submission name: letters, digits, ``.``, ``_``, ``-``; no path parts.

    Every run of other characters (``/``, ``\\``, ``:``, spaces, ...) becomes one ``-``, and
    leading/trailing dots and dashes go, so ``"../../x"`` gives ``"x"``.

    Raises:
        SubmissionError: nothing usable is left.
    """
    cleaned = _UNSAFE.sub("-", name).strip(".-_")[:_MAX_NAME].strip(".-_")
    if not cleaned:
        raise SubmissionError(
            f"Expected a submission name with letters or digits, but got {name!r}; pass --name."
        )
    return cleaned


def unpack_submission(results: Mapping[str, Any], samples: Mapping[str, Any], folder: Path) -> None:
    """Writes results.json and samples/<task>.jsonl into ``folder`` (task names checked first).

    Raises:
        SubmissionError: a samples key is not a plain task name, or its text is not a string.
    """
    (folder / "samples").mkdir(parents=True)
    for task, text in samples.items():
        # Names become file names: only plain names, never path parts.
        if not isinstance(task, str) or not TASK_NAME.match(task) or not isinstance(text, str):
            raise SubmissionError(
                f"field 'samples': expected task names mapped to JSON-lines text, "
                f"but found key {task!r}."
            )
        (folder / "samples" / f"{task}.jsonl").write_bytes(text.encode("utf-8"))
    (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")


def write_submission(
    target: Path,
    name: str,
    results: Mapping[str, Any],
    samples: Mapping[str, str],
    *,
    partial: bool,
) -> str:
    """Stores a verified submission atomically at ``target``.

    Args:
        target: the submission file (``<leaderboard>/submissions/<name>.json``).
        name: the sanitised submission name (the file's stem).
        results: the results.json object, as verified.
        samples: ``{task: samples file text}``, as verified.
        partial: the run scored fewer episodes than the suite defines.

    Returns:
        The submission time written (ISO 8601, UTC, seconds).
    """
    from panbench.io import atomic_write_json

    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    record = {
        "format": SUBMISSION_FORMAT,
        "format_version": SUBMISSION_FORMAT_VERSION,
        "name": name,
        "submitted": now,
        "partial": partial,
        "results": dict(results),
        "samples": dict(samples),
    }
    atomic_write_json(target, record, indent=1)
    return now
