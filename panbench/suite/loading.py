"""YAML loading with ``include:``, suite overrides and file:line locations for every value."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from panbench.errors import ConfigError
from panbench.registry import did_you_mean
from panbench.suite.checks import (
    _NAME_RE,
    _SUITE_ITEM_KEYS,
    _SUITE_KEYS,
    _check_header,
    _check_keys,
    _check_mapping,
)
from panbench.suite.files import (
    _find_named,
    _known_names,
    _looks_like_path,
    _suite_dirs,
    _task_dirs,
    _unknown,
)
from panbench.suite.problems import (
    KeyPath,
    Location,
    SpecError,
    SpecProblem,
    _Checker,
    _dotted,
    _fail,
    _show,
)
from panbench.suite.spec import Suite, TaskSpec, _build_task, _deep_merge


# ============================================================================ YAML with line numbers
def _read_yaml(path: Path) -> tuple[Any, dict[KeyPath, Location]]:
    """Parses one YAML file; returns its data and the location of every key and list item."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        _fail(file, None, f"cannot read the file: {err}")
    loader = yaml.SafeLoader(text)
    problems: list[SpecProblem] = []
    locs: dict[KeyPath, Location] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {(): (file, 1)}
        _collect_locations(loader, node, (), file, locs, problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        what = "; ".join(str(s) for s in (err.context, err.problem) if s)
        _fail(file, mark.line + 1 if mark else None, f"malformed YAML: {what}")
    except yaml.YAMLError as err:  # reader errors (e.g. control characters) carry no mark
        _fail(file, None, f"malformed YAML: {err}")
    finally:
        loader.dispose()
    if problems:
        raise SpecError(problems)
    return data, locs


def _collect_locations(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: KeyPath,
    file: str,
    locs: dict[KeyPath, Location],
    problems: list[SpecProblem],
) -> None:
    locs.setdefault(path, (file, node.start_mark.line + 1))
    if isinstance(node, yaml.MappingNode):
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            # Merge keys (<<) and complex keys get no line of their own; their values are reported
            # at the enclosing mapping, and the constructor rejects what it cannot build.
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                key_node, yaml.ScalarNode
            ):
                continue
            key = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first_line:
                # PyYAML keeps the last value silently; a duplicated key is almost always a mistake.
                problems.append(
                    SpecProblem(
                        file, line, f"duplicate key {key!r} (first set on line {first_line[key]})"
                    )
                )
                continue
            first_line[key] = line
            key_path = (*path, key)
            locs[key_path] = (file, line)
            _collect_locations(loader, value_node, key_path, file, locs, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect_locations(loader, item, (*path, i), file, locs, problems)


def _merge_locations(
    base_locs: Mapping[KeyPath, Location],
    over: Mapping[str, Any],
    over_locs: Mapping[KeyPath, Location],
) -> dict[KeyPath, Location]:
    """Locations after ``_deep_merge(base, over)``: a value's line is where its winner was set."""

    def replaced(path: KeyPath) -> bool:
        node: Any = over
        for key in path[:-1]:
            if not isinstance(node, Mapping) or key not in node:
                return False
            node = node[key]
            if not isinstance(node, Mapping):
                return True  # over replaced this whole subtree, base's lines inside are stale
        return False

    out = {p: loc for p, loc in base_locs.items() if not replaced(p)}
    out.update(over_locs)
    return out


# ============================================================================ loading
@dataclass
class _Loaded:
    """A spec with the locations of its values, kept so later checks can still point at lines."""

    spec: Any
    locs: dict[KeyPath, Location]


def _resolve_includes(
    path: Path, dirs: Sequence[Path], chain: tuple[Path, ...]
) -> tuple[dict[str, Any], dict[KeyPath, Location]]:
    """Reads ``path`` and merges what it includes (recursively) under it."""
    file = str(path)
    data, locs = _read_yaml(path)
    if not isinstance(data, dict):
        _fail(
            file,
            locs[()][1],
            f"expected a mapping of task keys at the top level, got {_show(data)}",
        )
    if "include" not in data:
        return data, locs
    include = data.pop("include")
    line = locs.pop(("include",))[1]
    if not isinstance(include, str) or not include.strip():
        _fail(
            file, line, f"expected a task name or a relative path for include, got {_show(include)}"
        )
    search = [path.parent, *dirs]
    if _looks_like_path(include):
        target: Path | None = path.parent / include
        if not target.is_file():  # type: ignore[union-attr]
            _fail(file, line, f"included file {include!r} not found (resolved to {target})")
    else:
        target = _find_named(include, search, "task")
        if target is None:
            known = _known_names(search, "task")
            _fail(
                file,
                line,
                f"included task {include!r} not found in {', '.join(map(str, search))}."
                f"{did_you_mean(include, known)}",
            )
    assert target is not None
    if target.resolve() in chain:
        cycle = " -> ".join(p.name for p in (*chain, target.resolve()))
        _fail(file, line, f"include cycle: {cycle}")
    base, base_locs = _resolve_includes(target, dirs, (*chain, target.resolve()))
    # A variant's name is its own: inheriting the base's would make two tasks share one name.
    base.pop("task", None)
    base_locs = {p: loc for p, loc in base_locs.items() if p[:1] != ("task",)}
    base_locs[()] = locs[()]
    return _deep_merge(base, data), _merge_locations(base_locs, data, locs)


def _load_task_file(path: Path, dirs: Sequence[Path]) -> _Loaded:
    data, locs = _resolve_includes(path, dirs, (path.resolve(),))
    return _Loaded(_build_task(data, _Checker(locs, str(path)), str(path)), locs)


def _load_suite_file(path: Path, dirs: Sequence[Path]) -> tuple[Suite, list[_Loaded]]:
    file = str(path)
    data, locs = _read_yaml(path)
    c = _Checker(locs, file)
    if not isinstance(data, dict):
        _fail(
            file,
            locs[()][1],
            f"expected a mapping of suite keys at the top level, got {_show(data)}",
        )
    _check_keys(c, data, (), _SUITE_KEYS, ("suite", "version", "tasks"), "suite")
    _check_header(c, data, "suite")
    items = data.get("tasks")
    loaded: list[_Loaded] = []
    if "tasks" in data and (not isinstance(items, list) or not items):
        c.add(("tasks",), f"expected a non-empty list of tasks for tasks, got {_show(items)}")
    elif isinstance(items, list):
        # Tasks sit next to the suite, or in the tasks folder that holds a suites/ folder.
        search = [path.parent]
        if path.parent.name == "suites":
            search.append(path.parent.parent)
        search += [d for d in dirs if d not in search]
        seen: set[str] = set()
        for i, item in enumerate(items):
            task = _load_suite_item(c, item, ("tasks", i), search, dirs)
            if task is None:
                continue
            if task.spec.name in seen:
                c.add(
                    ("tasks", i),
                    f"duplicate task {task.spec.name!r} in suite (give one a new name with "
                    "overrides: {task: other-name})",
                )
            seen.add(task.spec.name)
            loaded.append(task)
    c.raise_if_any()
    suite = Suite(
        name=data["suite"],
        version=str(data["version"]),
        tasks=tuple(t.spec for t in loaded),
        description=data.get("description") or "",
        source=file,
    )
    return suite, loaded


def _load_suite_item(
    c: _Checker, item: Any, path: KeyPath, search: Sequence[Path], dirs: Sequence[Path]
) -> _Loaded | None:
    overrides: Any = {}
    if isinstance(item, Mapping):
        _check_keys(c, item, path, _SUITE_ITEM_KEYS, ("task",), _dotted(path))
        name = item.get("task")
        overrides = item.get("overrides", {})
        if not _check_mapping(c, overrides, (*path, "overrides")):
            return None
    else:
        name = item
    if not isinstance(name, str) or not _NAME_RE.match(name):
        c.add(
            path,
            f"expected a task name or a mapping with 'task' and optional 'overrides' for "
            f"{_dotted(path)}, got {_show(item if not isinstance(item, Mapping) else name)}",
        )
        return None
    target = _find_named(name, search, "task")
    if target is None:
        known = _known_names(search, "task")
        c.add(path, f"unknown task {name!r}.{did_you_mean(name, known)}")
        return None
    try:
        data, locs = _resolve_includes(target, dirs, (target.resolve(),))
    except SpecError as err:
        c.problems.extend(err.problems)
        return None
    prefix = (*path, "overrides")
    over_locs = {
        p[len(prefix) :]: loc
        for p, loc in c.locs.items()
        if p[: len(prefix)] == prefix and len(p) > len(prefix)
    }
    merged_locs = _merge_locations(locs, overrides, over_locs)
    task_checker = _Checker(merged_locs, str(target))
    try:
        spec = _build_task(_deep_merge(data, overrides), task_checker, str(target))
    except SpecError as err:
        c.problems.extend(err.problems)
        return None
    return _Loaded(spec, merged_locs)


def load_task(
    name_or_path: str | os.PathLike[str],
    *,
    search_paths: Sequence[str | os.PathLike[str]] | None = None,
) -> TaskSpec:
    """Loads, resolves and validates a task.

    Args:
        name_or_path: a task name (found as ``<name>.yaml``, else as the file declaring
            ``task: <name>``) or a path to a YAML file (a ``Path``, or a string ending in
            ``.yaml``/``.yml`` or containing a slash).
        search_paths: folders holding task files, searched in order; default: the shipped tasks.

    Raises:
        UnknownNameError: no task has that name (the message suggests close names).
        SpecError: the file is invalid (every problem, with file:line).
    """
    dirs = _task_dirs(search_paths)
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"Task file {str(path)!r} does not exist.")
    else:
        found = _find_named(str(name_or_path), dirs, "task")
        if found is None:
            raise _unknown("task", str(name_or_path), dirs, "task")
        path = found
    return _load_task_file(path, dirs).spec


def load_suite(
    name_or_path: str | os.PathLike[str],
    *,
    search_paths: Sequence[str | os.PathLike[str]] | None = None,
) -> Suite:
    """Loads a suite and every task it lists, applying the suite's overrides.

    Args:
        name_or_path: a suite name (looked up in each search path's ``suites/`` folder) or a path
            to a suite YAML file.
        search_paths: folders holding task files (suites live in their ``suites/`` subfolder);
            default: the shipped tasks. A suite's tasks are looked up next to the suite file, in
            the folder above a ``suites/`` folder, then in these.

    Raises:
        UnknownNameError: no suite has that name.
        SpecError: the suite or one of its tasks is invalid.
    """
    dirs = _task_dirs(search_paths)
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"Suite file {str(path)!r} does not exist.")
    else:
        suite_dirs = _suite_dirs(search_paths)
        found = _find_named(str(name_or_path), suite_dirs, "suite")
        if found is None:
            raise _unknown("suite", str(name_or_path), suite_dirs, "suite")
        path = found
    return _load_suite_file(path, dirs)[0]
