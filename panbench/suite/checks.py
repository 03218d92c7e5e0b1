"""Field checks of task and suite mappings in their YAML shape, against the protocols' declarations."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from panbench.data.sources.wr_arena import ASPECT_MODES
from panbench.registry import did_you_mean
from panbench.suite.declared import (
    check_metrics,
    check_options,
    check_source,
    data_kinds,
    protocol_class,
    source_keys,
)
from panbench.suite.problems import KeyPath, _Checker, _dotted, _show

ASPECT_RULES: tuple[str, ...] = tuple(ASPECT_MODES)  # the WR-Arena source reads these
"""How a non-square source image becomes a square frame (see :class:`DataSpec`)."""

_TASK_KEYS = (
    "task",
    "version",
    "description",
    "protocol",
    "env",
    "episodes",
    "metrics",
    "headline",
    "options",
)
# 'env' or 'data' is required too: checked in _check_task, which says which one fits the protocol.
_TASK_REQUIRED = ("task", "version", "protocol", "episodes", "metrics", "headline")
_TASK_HINTS = {"task": " A variant does not inherit 'task' from the file it includes."}
_ENV_KEYS = ("name", "resolution", "kwargs")
_DATA_KEYS = ("kind", "manifest", "manifest_sha256", "root", "resolution", "aspect")
_DATA_REQUIRED = ("kind", "manifest", "manifest_sha256")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_EPISODE_KEYS = ("count", "seed", "context", "horizon", "policy")
_SUITE_KEYS = ("suite", "version", "description", "tasks")
_SUITE_ITEM_KEYS = ("task", "overrides")
# Names become file names (samples/<task>.jsonl) and CLI arguments, so keep them plain.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# ============================================================================ field checks
def _check_keys(
    c: _Checker,
    data: Mapping[Any, Any],
    path: KeyPath,
    allowed: Sequence[str],
    required: Sequence[str],
    what: str,
    hints: Mapping[str, str] | None = None,
) -> None:
    explained: set[str] = set()
    for key in data:
        if key not in allowed:
            c.add(
                (*path, key),
                f"unknown key {key!r} in {what} (expected one of: {', '.join(allowed)})."
                f"{did_you_mean(str(key), list(allowed))}",
            )
            explained.update(difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6))
    for key in required:
        # A misspelt key already says what is missing; repeating it as "missing" is noise.
        if key not in data and key not in explained:
            c.add(path, f"missing required key {key!r} in {what}.{(hints or {}).get(key, '')}")


def _check_mapping(c: _Checker, value: Any, path: KeyPath) -> bool:
    if isinstance(value, Mapping):
        return True
    c.add(path, f"expected a mapping for {_dotted(path)}, got {_show(value)}")
    return False


def _check_int(c: _Checker, value: Any, path: KeyPath, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        c.add(path, f"expected an integer >= {minimum} for {_dotted(path)}, got {_show(value)}")


def _check_name(c: _Checker, value: Any, path: KeyPath) -> bool:
    if isinstance(value, str) and _NAME_RE.match(value):
        return True
    c.add(
        path,
        f"expected a name of letters, digits, '.', '_' and '-' for {_dotted(path)}, "
        f"got {_show(value)}",
    )
    return False


def _check_text(c: _Checker, value: Any, path: KeyPath) -> None:
    if value is not None and not isinstance(value, str):
        c.add(path, f"expected a string for {_dotted(path)}, got {_show(value)}")


def _check_version(c: _Checker, value: Any, path: KeyPath) -> None:
    ok = isinstance(value, str) and value.strip() != ""
    ok = ok or (isinstance(value, (int, float)) and not isinstance(value, bool))
    if not ok:
        c.add(path, f"expected a version string or number for {_dotted(path)}, got {_show(value)}")


def _check_json(c: _Checker, value: Any, path: KeyPath) -> None:
    """Free-form values enter the content hash, so they must be plain JSON."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                c.add((*path, key), f"expected string keys in {_dotted(path)}, got {_show(key)}")
            _check_json(c, item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(c, item, (*path, i))
    elif isinstance(value, float) and not math.isfinite(value):
        c.add(path, f"expected a finite number for {_dotted(path)}, got {_show(value)}")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        c.add(
            path,
            f"expected a JSON value (string, number, boolean, null, list or mapping) for "
            f"{_dotted(path)}, got {type(value).__name__} {_show(value)}",
        )


def _check_env(c: _Checker, data: Any, path: KeyPath) -> None:
    if not _check_mapping(c, data, path):
        return
    _check_keys(c, data, path, _ENV_KEYS, ("name",), _dotted(path))
    if "name" in data and _check_name(c, data["name"], (*path, "name")):
        from panbench.envs import ENVS  # lazy: listing names imports no env module

        name = data["name"]
        if name not in ENVS:
            known = ENVS.names()
            c.add(
                (*path, "name"),
                f"unknown env {name!r} for {_dotted((*path, 'name'))}."
                f"{did_you_mean(name, known)} Known envs: {', '.join(known) or '(none)'}.",
            )
    if "resolution" in data:
        _check_int(c, data["resolution"], (*path, "resolution"), 1)
    if "kwargs" in data and _check_mapping(c, data["kwargs"], (*path, "kwargs")):
        _check_json(c, data["kwargs"], (*path, "kwargs"))


def _check_data(c: _Checker, data: Any, path: KeyPath) -> None:
    if not _check_mapping(c, data, path):
        return
    _check_keys(c, data, path, _DATA_KEYS, _DATA_REQUIRED, _dotted(path))
    kind = data.get("kind")
    kinds = data_kinds()
    if "kind" in data and kind not in kinds:
        c.add(
            (*path, "kind"),
            f"unknown data kind {_show(kind)} for {_dotted((*path, 'kind'))} (expected one of: "
            f"{', '.join(kinds)}).{did_you_mean(str(kind), kinds)}",
        )
    manifest = data.get("manifest")
    if "manifest" in data and (
        not isinstance(manifest, str) or not manifest.strip() or not manifest.endswith(".json")
    ):
        c.add(
            (*path, "manifest"),
            f"expected the path of a .json manifest (relative to the task file) for "
            f"{_dotted((*path, 'manifest'))}, got {_show(manifest)}",
        )
    digest = data.get("manifest_sha256")
    if "manifest_sha256" in data and not (isinstance(digest, str) and _SHA256_RE.match(digest)):
        c.add(
            (*path, "manifest_sha256"),
            f"expected 64 lowercase hex digits (the manifest's sha256) for "
            f"{_dotted((*path, 'manifest_sha256'))}, got {_show(digest)}",
        )
    root = data.get("root")
    if root is not None and (not isinstance(root, str) or not root.strip()):
        c.add(
            (*path, "root"),
            f"expected the data checkout's folder (a path) or null for "
            f"{_dotted((*path, 'root'))}, got {_show(root)}",
        )
    if "resolution" in data:
        _check_int(c, data["resolution"], (*path, "resolution"), 1)
    aspect = data.get("aspect", "crop")
    if aspect not in ASPECT_RULES:
        c.add(
            (*path, "aspect"),
            f"expected one of {', '.join(ASPECT_RULES)} for {_dotted((*path, 'aspect'))}, "
            f"got {_show(aspect)}",
        )


def _check_episodes(c: _Checker, data: Any, path: KeyPath) -> None:
    if not _check_mapping(c, data, path):
        return
    _check_keys(c, data, path, _EPISODE_KEYS, ("count",), _dotted(path))
    for key, minimum in (("count", 1), ("seed", 0), ("context", 1), ("horizon", 1)):
        if key in data:
            _check_int(c, data[key], (*path, key), minimum)
    policy = data.get("policy", "random")
    if not isinstance(policy, str) or not policy.strip():
        c.add(
            (*path, "policy"),
            f"expected a policy name for {_dotted((*path, 'policy'))}, got {_show(policy)}",
        )


def _check_header(c: _Checker, data: Mapping[str, Any], name_key: str) -> None:
    """The keys tasks and suites share: the name (under ``name_key``), version, description."""
    if name_key in data:
        _check_name(c, data[name_key], (name_key,))
    if "version" in data:
        _check_version(c, data["version"], ("version",))
    if "description" in data:
        _check_text(c, data["description"], ("description",))


def _check_task(c: _Checker, data: Any) -> None:
    """Checks a task mapping in its YAML shape (``include:`` already resolved), asking the
    protocol registry for the protocol's declared sources, metrics and options."""
    if not isinstance(data, Mapping):
        c.add((), f"expected a mapping of task keys at the top level, got {_show(data)}")
        return
    if "include" in data:
        c.add(("include",), "'include' is only resolved when a task is loaded from a file")
    cls = protocol_class(c, data["protocol"]) if "protocol" in data else None
    allowed = _task_keys(cls)
    _check_keys(c, data, (), allowed, _TASK_REQUIRED, "task", _TASK_HINTS)
    _check_header(c, data, "task")
    check_source(c, data, cls)
    if "env" in data:
        _check_env(c, data["env"], ("env",))
    if "data" in data:
        _check_data(c, data["data"], ("data",))
    if "episodes" in data:
        _check_episodes(c, data["episodes"], ("episodes",))
    metric_names = _check_metric_list(c, data)
    check_metrics(c, metric_names, cls)
    if "headline" in data:
        headline = data["headline"]
        named = _check_name(c, headline, ("headline",))
        if named and metric_names and headline not in metric_names:
            c.add(
                ("headline",),
                f"headline {headline!r} is not one of metrics "
                f"({', '.join(metric_names)}).{did_you_mean(headline, metric_names)}",
            )
    if "options" in data and _check_mapping(c, data["options"], ("options",)):
        before = len(c.problems)
        _check_json(c, data["options"], ("options",))
        if len(c.problems) == before:  # typed checks only on plain JSON values
            check_options(c, data["options"], cls)


def _check_metric_list(c: _Checker, data: Mapping[str, Any]) -> list[str]:
    """The task's metric names, each checked; duplicates and non-names are reported."""
    metrics = data.get("metrics")
    metric_names: list[str] = []
    if "metrics" not in data:
        return metric_names
    if not isinstance(metrics, (list, tuple)) or not metrics:
        c.add(
            ("metrics",),
            f"expected a non-empty list of metric names for metrics, got {_show(metrics)}",
        )
        return metric_names
    for i, metric in enumerate(metrics):
        if not _check_name(c, metric, ("metrics", i)):
            continue
        if metric in metric_names:
            c.add(("metrics", i), f"duplicate metric {metric!r} in metrics")
        metric_names.append(metric)
    return metric_names


def _task_keys(cls: Any) -> tuple[str, ...]:
    """The keys a task may have: ``env`` and/or ``data``, as its protocol's sources say."""
    keys: list[str] = []
    for key in _TASK_KEYS:
        keys += source_keys(cls) if key == "env" else [key]
    return (*keys, "include")
