"""The frozen spec values (env, data, episodes, task, suite) and their content hashes."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from panbench.errors import ConfigError, PanbenchError, UnknownNameError
from panbench.registry import did_you_mean
from panbench.suite.checks import (
    _check_data,
    _check_env,
    _check_episodes,
    _check_mapping,
    _check_name,
    _check_task,
    _check_text,
    _check_version,
)
from panbench.suite.problems import _Checker, _show


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


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` wins; mappings merge key by key; lists and scalars replace."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
