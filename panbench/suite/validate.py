"""Validating task and suite files: everything wrong, each at its file and line."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from panbench.errors import ConfigError, PanbenchError
from panbench.suite.files import YAML_SUFFIXES, _declared_name, _task_dirs
from panbench.suite.loading import _load_suite_file, _load_task_file, _Loaded, _read_yaml
from panbench.suite.problems import SpecError, SpecProblem, _Checker
from panbench.suite.spec import Suite, TaskSpec


# ============================================================================ validating a tree
@dataclass
class CheckReport:
    """What :func:`check_path` found.

    Attributes:
        tasks: the valid tasks, in file order.
        suites: the valid suites, in file order.
        problems: every problem found, each with file:line.
        files: the number of YAML files checked.
    """

    tasks: list[TaskSpec] = field(default_factory=list)
    suites: list[Suite] = field(default_factory=list)
    problems: list[SpecProblem] = field(default_factory=list)
    files: int = 0


def _check_runnable(loaded: _Loaded, problems: list[SpecProblem], seen: set[str]) -> None:
    """The checks that need the env itself: its version (for the hash) and its options."""
    spec: TaskSpec = loaded.spec
    c = _Checker(loaded.locs, spec.source or "<task>")
    try:
        digest = spec.hash
    except ConfigError as err:
        c.add(("env", "name"), str(err))
        problems.extend(c.problems)
        return
    if digest in seen:
        return
    seen.add(digest)
    if spec.data is not None:
        _check_manifest(spec, c)
        problems.extend(c.problems)
        return
    assert spec.env is not None
    from panbench.envs import make

    try:
        make(spec.env.name, resolution=spec.env.resolution, **dict(spec.env.kwargs))
    except (PanbenchError, TypeError, ValueError) as err:
        c.add(("env",), f"env {spec.env.name!r} rejects this configuration: {err}")
    problems.extend(c.problems)


def _check_manifest(spec: TaskSpec, c: _Checker) -> None:
    """A data task's manifest must exist and hash to the sha256 its YAML records."""
    path = spec.manifest_path()
    try:
        blob = path.read_bytes()
    except OSError as err:
        c.add(("data", "manifest"), f"cannot read the manifest {str(path)!r}: {err}")
        return
    found = hashlib.sha256(blob).hexdigest()
    assert spec.data is not None
    if found != spec.data.manifest_sha256:
        c.add(
            ("data", "manifest_sha256"),
            f"the manifest {str(path)!r} hashes to {found}, not the recorded "
            f"{spec.data.manifest_sha256}: it changed after import (re-run `panbench tasks "
            "import`)",
        )


def check_path(
    path: str | os.PathLike[str],
    *,
    search_paths: Sequence[str | os.PathLike[str]] | None = None,
) -> CheckReport:
    """Validates one YAML file or every YAML file under a folder, collecting all problems.

    A file declaring ``suite:`` is checked as a suite, any other as a task. In a folder, template
    files (``_*.yaml``) are checked only through the files that include them, and two files
    declaring the same task or suite name are a problem. Beyond the schema, each task's env is
    imported (its version enters the hash) and built with the task's options.

    Args:
        path: a YAML file or a folder (searched recursively).
        search_paths: extra task folders for names the files refer to; default: the shipped tasks.
    """
    root = Path(path)
    report = CheckReport()
    if root.is_dir():
        paths = sorted(
            p
            for p in root.rglob("*")
            if p.suffix in YAML_SUFFIXES and p.is_file() and not p.name.startswith("_")
        )
        dirs = [root, *_task_dirs(search_paths)]
    elif root.is_file():
        paths = [root]
        dirs = [root.parent, *_task_dirs(search_paths)]
    else:
        report.problems.append(SpecProblem(str(root), None, "no such file or folder"))
        return report
    report.files = len(paths)
    first_seen: dict[tuple[str, str], str] = {}
    envs_checked: set[str] = set()
    for file in paths:
        is_suite = _declared_name(file, "suite") is not None
        try:
            if is_suite:
                suite, loaded = _load_suite_file(file, dirs)
                report.suites.append(suite)
                name, locs = suite.name, _read_yaml(file)[1]
            else:
                task = _load_task_file(file, dirs)
                report.tasks.append(task.spec)
                name, locs, loaded = task.spec.name, task.locs, [task]
        except SpecError as err:
            report.problems.extend(err.problems)
            continue
        kind = "suite" if is_suite else "task"
        if (kind, name) in first_seen:
            c = _Checker(locs, str(file))
            c.add((kind,), f"{kind} {name!r} is also declared in {first_seen[(kind, name)]}")
            report.problems.extend(c.problems)
        first_seen.setdefault((kind, name), str(file))
        for item in loaded:
            _check_runnable(item, report.problems, envs_checked)
    return report


def validate_path(
    path: str | os.PathLike[str],
    *,
    search_paths: Sequence[str | os.PathLike[str]] | None = None,
) -> list[SpecProblem]:
    """Every problem in a YAML file or folder (empty when all is valid); see :func:`check_path`."""
    return check_path(path, search_paths=search_paths).problems
