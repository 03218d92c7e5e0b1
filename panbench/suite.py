"""Declarative task and suite specs: load ``tasks/*.yaml``, validate with file:line errors, hash.

A task file names a protocol, an env, how episodes are drawn and which metrics are scored; a suite
file lists tasks (optionally with overrides). Specs are frozen values. Their content hash covers
every field that affects scoring plus the env's class-level ``version``, so results made under
different specs or env dynamics can never be mixed by accident. The YAML schema, ``include:``
semantics and the versioning rules are documented in ``docs/tasks.md``.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, NoReturn

import yaml

from panbench.errors import ConfigError, PanbenchError, UnknownNameError
from panbench.registry import did_you_mean

__all__ = [
    "KNOWN_PROTOCOLS",
    "CheckReport",
    "DataSpec",
    "EnvSpec",
    "EpisodeSpec",
    "SpecError",
    "SpecProblem",
    "Suite",
    "TaskSpec",
    "check_path",
    "list_suites",
    "list_tasks",
    "load_suite",
    "load_task",
    "shipped_tasks_dir",
    "validate_path",
]

DATA_PROTOCOLS: tuple[str, ...] = (
    "wr_stepwise",
    "wr_smoothness",
    "wr_action_fidelity",
    "wr_structured_planning",
)
"""Protocols that run on an imported image data source (``data:``) instead of an env."""

KNOWN_PROTOCOLS: tuple[str, ...] = (
    "rollout",
    "choice",
    "counterfactual",
    "closed_loop",
    *DATA_PROTOCOLS,
)
"""Protocol names a task may use (the harness owns their implementations)."""

DATA_KINDS: tuple[str, ...] = ("wr-arena",)
"""Kinds of data source a task may name under ``data:`` (see ``docs/wr-arena.md``)."""

ASPECT_RULES: tuple[str, ...] = ("crop", "pad", "squash")
"""How a non-square source image becomes a square frame (see :class:`DataSpec`)."""

YAML_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")

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

KeyPath = tuple[str | int, ...]
Location = tuple[str, int | None]


# ============================================================================ problems and errors
@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a spec, located in its file.

    Attributes:
        file: the file the offending value came from (``"<TaskSpec>"`` etc. for Python-built specs).
        line: 1-based line number, or ``None`` when unknown.
        message: what was expected and what was found.
    """

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.message}


class SpecError(ConfigError):
    """A task or suite spec is invalid; ``problems`` lists every problem found, each with file:line.

    Args:
        problems: the problems, in the order they were found (at least one).
    """

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems = list(problems)
        lines = [str(p) for p in self.problems]
        if len(lines) > 1:
            lines.insert(0, f"{len(lines)} problems in task specs:")
        super().__init__("\n".join(lines))


class _Checker:
    """Collects problems, placing each at the line of the value it is about."""

    def __init__(self, locs: Mapping[KeyPath, Location] | None, default_file: str) -> None:
        self.locs = dict(locs or {})
        self.default_file = default_file
        self.problems: list[SpecProblem] = []

    def where(self, path: KeyPath) -> Location:
        # A value without its own line (a merged-in default, a key that is missing) is reported at
        # the nearest enclosing mapping that has one.
        for end in range(len(path), -1, -1):
            if path[:end] in self.locs:
                return self.locs[path[:end]]
        return (self.default_file, None)

    def add(self, path: KeyPath, message: str) -> None:
        file, line = self.where(path)
        self.problems.append(SpecProblem(file, line, message))

    def raise_if_any(self) -> None:
        if self.problems:
            # Read top to bottom, like the file; checks run in schema order, not line order.
            raise SpecError(sorted(self.problems, key=lambda p: (p.file, p.line or 0)))


def _fail(file: str, line: int | None, message: str) -> NoReturn:
    raise SpecError([SpecProblem(file, line, message)])


def _dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the top level"


def _show(value: Any) -> str:
    """How a found value is shown in messages: YAML-ish, short."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ============================================================================ immutable containers
class _FrozenDict(dict[str, Any]):
    """A read-only dict: a spec's hash must not drift because someone edited its options in place.

    Unlike ``MappingProxyType`` it pickles (specs cross process boundaries in sharded runs) and
    ``json.dumps`` accepts it.
    """

    def _readonly(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("Specs are immutable; use TaskSpec.with_overrides() to derive a new one.")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly
    __ior__ = _readonly

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FrozenDict, (dict(self),))


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _FrozenDict({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return value


def _canonical_hash(payload: Any) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


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
    if "kind" in data and kind not in DATA_KINDS:
        c.add(
            (*path, "kind"),
            f"unknown data kind {_show(kind)} for {_dotted((*path, 'kind'))} (expected one of: "
            f"{', '.join(DATA_KINDS)}).{did_you_mean(str(kind), list(DATA_KINDS))}",
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
    """Checks a task mapping in its YAML shape (``include:`` already resolved)."""
    if not isinstance(data, Mapping):
        c.add((), f"expected a mapping of task keys at the top level, got {_show(data)}")
        return
    if "include" in data:
        c.add(("include",), "'include' is only resolved when a task is loaded from a file")
    allowed = _task_keys(data.get("protocol"))
    _check_keys(c, data, (), allowed, _TASK_REQUIRED, "task", _TASK_HINTS)
    _check_header(c, data, "task")
    protocol = data.get("protocol")
    if "protocol" in data and protocol not in KNOWN_PROTOCOLS:
        c.add(
            ("protocol",),
            f"unknown protocol {_show(protocol)} (expected one of: "
            f"{', '.join(KNOWN_PROTOCOLS)}).{did_you_mean(str(protocol), list(KNOWN_PROTOCOLS))}",
        )
    _check_source(c, data, protocol)
    if "env" in data:
        _check_env(c, data["env"], ("env",))
    if "data" in data:
        _check_data(c, data["data"], ("data",))
    if "episodes" in data:
        _check_episodes(c, data["episodes"], ("episodes",))
    metrics = data.get("metrics")
    metric_names: list[str] = []
    if "metrics" in data:
        if not isinstance(metrics, (list, tuple)) or not metrics:
            c.add(
                ("metrics",),
                f"expected a non-empty list of metric names for metrics, got {_show(metrics)}",
            )
        else:
            for i, metric in enumerate(metrics):
                if not _check_name(c, metric, ("metrics", i)):
                    continue
                if metric in metric_names:
                    c.add(("metrics", i), f"duplicate metric {metric!r} in metrics")
                metric_names.append(metric)
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
        _check_json(c, data["options"], ("options",))


def _task_keys(protocol: Any) -> tuple[str, ...]:
    """The keys a task may have: a data protocol's task names ``data`` where others name ``env``
    (an unknown protocol may have either, so only the protocol is reported)."""
    keys = (*_TASK_KEYS, "include")
    if protocol in DATA_PROTOCOLS:
        return tuple("data" if k == "env" else k for k in keys)
    if protocol not in KNOWN_PROTOCOLS:
        return (*keys, "data")
    return keys


def _check_source(c: _Checker, data: Mapping[str, Any], protocol: Any) -> None:
    """A task runs on an env (``env:``) or, for data protocols, a data source (``data:``)."""
    if protocol not in KNOWN_PROTOCOLS:
        return
    key = "data" if protocol in DATA_PROTOCOLS else "env"
    if key not in data:
        hint = " (see `panbench tasks import`)" if key == "data" else ""
        c.add((), f"missing required key {key!r} in task (protocol {protocol!r}).{hint}")


# ============================================================================ the specs
@dataclass(frozen=True)
class EnvSpec:
    """Which env a task runs and how it is configured.

    Attributes:
        name: a registered env name (``panbench ls envs``).
        resolution: side of the rendered square frame in pixels.
        kwargs: env-specific options passed to :func:`panbench.envs.make`.
    """

    name: str
    resolution: int = 64
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kwargs", _freeze(self.kwargs))
        c = _Checker(None, "<EnvSpec>")
        _check_env(c, self.to_dict(), ("env",))
        c.raise_if_any()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "resolution": self.resolution, "kwargs": _thaw(self.kwargs)}


@dataclass(frozen=True)
class DataSpec:
    """An imported data source a task runs on instead of an env (e.g. WR-Arena's images).

    The task's episodes are the samples listed in a manifest written by ``panbench tasks
    import``: each names its images (relative to the data checkout's root) with their sha256,
    so the manifest's own sha256, recorded here, makes the task hash cover the data.

    Attributes:
        kind: the kind of source, one of :data:`DATA_KINDS`.
        manifest: the manifest file, relative to the task file (or absolute).
        manifest_sha256: sha256 (hex) of the manifest file's bytes; checked when it is read.
        root: the user's data checkout (absolute path) recorded at import; ``None`` to rely on
            the ``PANBENCH_WR_ARENA_ROOT`` environment variable, which overrides it when set.
            It does not enter the hash: the image hashes in the manifest do.
        resolution: side of the square frames images become, in pixels.
        aspect: how a non-square image becomes square: ``"crop"`` (the largest centred square,
            default), ``"pad"`` (centred on black, nothing lost) or ``"squash"`` (resized
            without keeping the aspect ratio, as WR-Arena's own scripts do at 256 px).
    """

    kind: str
    manifest: str
    manifest_sha256: str
    root: str | None = None
    resolution: int = 256
    aspect: str = "crop"

    def __post_init__(self) -> None:
        c = _Checker(None, "<DataSpec>")
        _check_data(c, self.to_dict(), ("data",))
        c.raise_if_any()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "manifest": self.manifest,
            "manifest_sha256": self.manifest_sha256,
            "root": self.root,
            "resolution": self.resolution,
            "aspect": self.aspect,
        }


@dataclass(frozen=True)
class EpisodeSpec:
    """How a task's episodes are drawn.

    Attributes:
        count: number of episodes.
        seed: base seed; episode seeds derive from it.
        context: number of context frames given to the model (>= 1).
        horizon: number of predicted steps (>= 1).
        policy: how the true actions are drawn: ``"random"`` (uniform over available actions)
            or a protocol-defined name such as ``"agent"``, ``"intervention"``, ``"mixed"``.
    """

    count: int
    seed: int = 0
    context: int = 2
    horizon: int = 8
    policy: str = "random"

    def __post_init__(self) -> None:
        c = _Checker(None, "<EpisodeSpec>")
        _check_episodes(c, self.to_dict(), ("episodes",))
        c.raise_if_any()

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "seed": self.seed,
            "context": self.context,
            "horizon": self.horizon,
            "policy": self.policy,
        }


@dataclass(frozen=True)
class TaskSpec:
    """One task: a protocol run on an env's (or a data source's) episodes and scored by metrics.

    Build one with :func:`load_task` or :meth:`from_dict`; constructing it directly validates too.

    Attributes:
        name: the task name (``task:`` in YAML); results are keyed by it.
        version: bumped whenever the task's scoring changes (stored as a string).
        protocol: one of :data:`KNOWN_PROTOCOLS`.
        env: the env and its configuration; ``None`` for a task on a data source.
        episodes: how episodes are drawn.
        metrics: metric names, in reporting order.
        headline: the metric leaderboards rank by; one of ``metrics``.
        description: free text; does not enter the hash.
        options: protocol-specific options (plain JSON values).
        source: the file the spec was loaded from, if any; does not enter the hash.
        data: the imported data source the episodes come from (protocols in
            :data:`DATA_PROTOCOLS`), instead of ``env``.
    """

    name: str
    version: str
    protocol: str
    env: EnvSpec | None
    episodes: EpisodeSpec
    metrics: tuple[str, ...]
    headline: str
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None
    data: DataSpec | None = None

    def __post_init__(self) -> None:
        c = _Checker(None, self.source or "<TaskSpec>")
        checks: tuple[tuple[str, type], ...] = (
            ("env", EnvSpec),
            ("episodes", EpisodeSpec),
            ("data", DataSpec),
        )
        for attr, cls in checks:
            if attr in ("env", "data") and getattr(self, attr) is None:
                continue
            if not isinstance(getattr(self, attr), cls):
                c.add(
                    (attr,), f"expected {cls.__name__} for {attr}, got {_show(getattr(self, attr))}"
                )
        if not isinstance(self.metrics, (list, tuple)):
            c.add(("metrics",), f"expected a tuple of metric names, got {_show(self.metrics)}")
        c.raise_if_any()
        if isinstance(self.version, (int, float)) and not isinstance(self.version, bool):
            object.__setattr__(self, "version", str(self.version))
        if isinstance(self.metrics, list):
            object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "options", _freeze(self.options))
        _check_task(c, self.to_dict())
        c.raise_if_any()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> TaskSpec:
        """Builds a task from its YAML-shaped mapping (as :meth:`to_dict` returns).

        Raises:
            SpecError: listing every problem found.
        """
        return _build_task(data, _Checker(None, source or "<task>"), source)

    def to_dict(self) -> dict[str, Any]:
        """The task in its YAML shape (plain JSON types); :meth:`from_dict` inverts it.

        A task on a data source has a ``data`` key where an env task has ``env``.
        """
        out: dict[str, Any] = {
            "task": self.name,
            "version": self.version,
            "description": self.description,
            "protocol": self.protocol,
        }
        if self.env is not None:
            out["env"] = self.env.to_dict()
        if self.data is not None:
            out["data"] = self.data.to_dict()
        out.update(
            {
                "episodes": self.episodes.to_dict(),
                "metrics": list(self.metrics),
                "headline": self.headline,
                "options": _thaw(self.options),
            }
        )
        return out

    @property
    def resolution(self) -> int:
        """Side in pixels of the square frames the task is scored at (its env's or data's)."""
        if self.env is not None:
            return self.env.resolution
        assert self.data is not None
        return self.data.resolution

    def manifest_path(self) -> Path:
        """The data source's manifest file: relative paths resolve against the task file.

        Raises:
            ConfigError: the task has no data source.
        """
        if self.data is None:
            raise ConfigError(f"Task {self.name!r} runs on an env; it has no data manifest.")
        path = Path(self.data.manifest)
        if not path.is_absolute() and self.source is not None:
            path = Path(self.source).parent / path
        return path

    def hash_payload(self) -> dict[str, Any]:
        """What the hash covers: every scoring field plus the env class's ``version``.

        For a task on a data source: the data spec less ``root`` (where the user keeps the
        checkout does not change what is scored; the manifest's sha256, which covers every
        image's sha256, does).

        Raises:
            ConfigError: the env cannot be imported, so its version is unknown.
        """
        payload = self.to_dict()
        del payload["description"]
        if self.env is not None:
            payload["env"]["version"] = _env_version(self.env.name, self.name)
        else:
            del payload["data"]["root"]
        return payload

    @property
    def hash(self) -> str:
        """sha256 (hex) of the canonical JSON of :meth:`hash_payload`."""
        return _canonical_hash(self.hash_payload())

    def with_overrides(self, overrides: Mapping[str, Any]) -> TaskSpec:
        """Returns a new task: ``overrides`` (YAML-shaped) deep-merged over this one, re-validated.

        Mappings merge key by key; any other value (lists included) replaces.

        Raises:
            SpecError: the result is invalid.
        """
        where = f"<overrides of task {self.name!r}>"
        c = _Checker(None, where)
        if not _check_mapping(c, overrides, ()):
            c.raise_if_any()
        return _build_task(_deep_merge(self.to_dict(), overrides), c, self.source)


@dataclass(frozen=True)
class Suite:
    """An ordered set of tasks run and reported together.

    Attributes:
        name: the suite name (``suite:`` in YAML).
        version: bumped whenever a task is added, removed or changed.
        tasks: the tasks, in order, with any suite overrides applied; names are unique.
        description: free text; does not enter the hash.
        source: the file the suite was loaded from, if any.
    """

    name: str
    version: str
    tasks: tuple[TaskSpec, ...]
    description: str = ""
    source: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.version, (int, float)) and not isinstance(self.version, bool):
            object.__setattr__(self, "version", str(self.version))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        c = _Checker(None, self.source or "<Suite>")
        _check_name(c, self.name, ("suite",))
        _check_version(c, self.version, ("version",))
        _check_text(c, self.description, ("description",))
        if not self.tasks:
            c.add(("tasks",), "expected at least one task in tasks")
        seen: set[str] = set()
        for i, task in enumerate(self.tasks):
            if not isinstance(task, TaskSpec):
                c.add(("tasks", i), f"expected a TaskSpec for tasks[{i}], got {_show(task)}")
            elif task.name in seen:
                c.add(("tasks", i), f"duplicate task {task.name!r} in suite {self.name!r}")
            else:
                seen.add(task.name)
        c.raise_if_any()

    def task(self, name: str) -> TaskSpec:
        """The suite's task called ``name``."""
        for task in self.tasks:
            if task.name == name:
                return task
        known = [t.name for t in self.tasks]
        raise UnknownNameError(
            f"Suite {self.name!r} has no task {name!r}.{did_you_mean(name, known)} "
            f"Its tasks: {', '.join(known)}."
        )

    def to_dict(self) -> dict[str, Any]:
        """The suite with every task expanded to its full YAML shape (plain JSON types)."""
        return {
            "suite": self.name,
            "version": self.version,
            "description": self.description,
            "tasks": [t.to_dict() for t in self.tasks],
        }

    @property
    def hash(self) -> str:
        """sha256 (hex) over the name, the version and the ordered task hashes."""
        return _canonical_hash(
            {"suite": self.name, "version": self.version, "tasks": [t.hash for t in self.tasks]}
        )


def _env_version(env_name: str, task_name: str) -> str:
    from panbench.envs import ENVS

    try:
        cls = ENVS.get(env_name)
    except (ImportError, PanbenchError) as err:
        raise ConfigError(
            f"Cannot hash task {task_name!r}: env {env_name!r} could not be loaded "
            f"({type(err).__name__}: {err}); its class-level version enters the task hash."
        ) from err
    version = getattr(cls, "version", None)
    if version is None:
        raise ConfigError(
            f"Cannot hash task {task_name!r}: env class {cls!r} has no 'version' attribute."
        )
    return str(version)


def _build_task(data: Any, c: _Checker, source: str | None) -> TaskSpec:
    _check_task(c, data)
    c.raise_if_any()
    env = data.get("env")
    data_source = data.get("data")
    episodes = data["episodes"]
    return TaskSpec(
        name=data["task"],
        version=str(data["version"]),
        protocol=data["protocol"],
        env=None
        if env is None
        else EnvSpec(
            name=env["name"], resolution=env.get("resolution", 64), kwargs=env.get("kwargs", {})
        ),
        data=None if data_source is None else DataSpec(**data_source),
        episodes=EpisodeSpec(**episodes),
        metrics=tuple(data["metrics"]),
        headline=data["headline"],
        description=data.get("description") or "",
        options=data.get("options") or {},
        source=source,
    )


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


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` wins; mappings merge key by key; lists and scalars replace."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


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


# ============================================================================ finding files
def shipped_tasks_dir() -> Path:
    """The folder of the task specs shipped with panbench (the package ``panbench.tasks``)."""
    return Path(str(files("panbench.tasks")))


def _task_dirs(search_paths: Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    if search_paths is None:
        return [shipped_tasks_dir()]
    if isinstance(search_paths, (str, os.PathLike)):  # one folder, not a sequence of letters
        return [Path(search_paths)]
    return [Path(p) for p in search_paths]


def _suite_dirs(search_paths: Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    return [d / "suites" for d in _task_dirs(search_paths)]


def _looks_like_path(name_or_path: str | os.PathLike[str]) -> bool:
    if isinstance(name_or_path, os.PathLike):
        return True
    return name_or_path.endswith(YAML_SUFFIXES) or "/" in name_or_path or os.sep in name_or_path


def _yaml_files(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.suffix in YAML_SUFFIXES and path.is_file():
                yield path


def _declared_name(path: Path, key: str) -> str | None:
    """The ``task:``/``suite:`` a file declares, or None (unreadable files are skipped here and
    reported when loaded)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _find_named(name: str, dirs: Sequence[Path], key: str) -> Path | None:
    """A file ``<name>.yaml`` in the first folder that has one, else the file declaring
    ``<key>: <name>`` (templates named ``_*`` are found only by file name)."""
    for folder in dirs:
        for suffix in YAML_SUFFIXES:
            if (folder / f"{name}{suffix}").is_file():
                return folder / f"{name}{suffix}"
    for folder in dirs:
        for path in _yaml_files(folder):
            if not path.name.startswith("_") and _declared_name(path, key) == name:
                return path
    return None


def _known_names(dirs: Sequence[Path], key: str) -> list[str]:
    names = set()
    for folder in dirs:
        for path in _yaml_files(folder):
            if not path.name.startswith("_"):
                names.add(_declared_name(path, key) or path.stem)
    return sorted(names)


def _unknown(kind: str, name: str, dirs: Sequence[Path], key: str) -> UnknownNameError:
    known = _known_names(dirs, key)
    return UnknownNameError(
        f"Unknown {kind} {name!r}.{did_you_mean(name, known)} Known {kind}s: "
        f"{', '.join(known) or '(none)'} (looked in: {', '.join(str(d) for d in dirs)})."
    )


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
