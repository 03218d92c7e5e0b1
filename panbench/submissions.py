"""Stored leaderboard submissions: the file format and its reader (no leaderboard logic).

A submission file (``leaderboards/<suite>/submissions/<name>.json``) packs one results folder:
``{"format", "format_version", "name", "submitted", "partial", "results", "samples"}``. Plots,
compare and the leaderboard read it through :func:`read_submission`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from panbench.errors import DataError
from panbench.io import read_versioned_json

__all__ = ["SUBMISSION_FORMAT", "SUBMISSION_FORMAT_VERSION", "SubmissionError", "read_submission"]

SUBMISSION_FORMAT = "panbench-submission"
SUBMISSION_FORMAT_VERSION = 1


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
