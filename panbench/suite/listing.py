"""Listing the tasks and suites found in the task folders."""

from __future__ import annotations

import os
from collections.abc import Sequence

from panbench.suite.files import _suite_dirs, _task_dirs, _yaml_files
from panbench.suite.loading import _load_suite_file, _load_task_file
from panbench.suite.spec import Suite, TaskSpec


def _listing(specs: Sequence[TaskSpec | Suite]) -> list[tuple[str, str, str]]:
    rows: dict[str, tuple[str, str, str]] = {}
    for spec in specs:
        rows.setdefault(spec.name, (spec.name, spec.version, spec.description))  # first path wins
    return sorted(rows.values())


def list_tasks(
    search_paths: Sequence[str | os.PathLike[str]] | None = None,
) -> list[tuple[str, str, str]]:
    """``(name, version, description)`` of every task in the search paths, sorted by name.

    Template files (names starting with ``_``) are not tasks and are left out.

    Raises:
        SpecError: a task file is invalid.
    """
    dirs = _task_dirs(search_paths)
    specs = [
        _load_task_file(path, dirs).spec
        for folder in dirs
        for path in _yaml_files(folder)
        if not path.name.startswith("_")
    ]
    return _listing(specs)


def list_suites(
    search_paths: Sequence[str | os.PathLike[str]] | None = None,
) -> list[tuple[str, str, str]]:
    """``(name, version, description)`` of every suite in the search paths, sorted by name.

    Raises:
        SpecError: a suite or one of its tasks is invalid.
    """
    dirs = _task_dirs(search_paths)
    specs = [
        _load_suite_file(path, dirs)[0]
        for folder in _suite_dirs(search_paths)
        for path in _yaml_files(folder)
        if not path.name.startswith("_")
    ]
    return _listing(specs)
