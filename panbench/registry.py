"""A small generic registry: decorators, lazy "module:attr" entries, entry points, "Did you mean"."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from panbench.errors import ConfigError, UnknownNameError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str]) -> str:
    """Returns ' Did you mean: a, b?' for close matches of ``name`` among ``choices``, else ''."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if not close:
        close = [c for c in choices if name.lower() in c.lower() or c.lower() in name.lower()][:3]
    return f" Did you mean: {', '.join(close)}?" if close else ""


def import_string(path: str) -> object:
    """Imports ``"package.module:attr"`` and returns ``attr``."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"Expected an import path of the form 'module:attr', but got {path!r}.")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as err:
        raise UnknownNameError(f"Module {module_name!r} has no attribute {attr!r}.") from err


class Registry(Generic[T]):
    """Maps names to objects (or to lazy ``"module:attr"`` strings resolved on first use).

    Args:
        kind: what the registry holds, used in error messages ("env", "model", ...).
        entry_point_group: an importlib entry-point group scanned for third-party entries.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T | str] = {}
        self._entry_points_loaded = False

    def register(
        self, name: str, obj: T | str | None = None, *, override: bool = False
    ) -> Callable[[T], T]:
        """Registers ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""

        def add(target: T | str) -> T | str:
            if name in self._entries and not override and self._entries[name] is not target:
                raise ConfigError(f"A {self.kind} named {name!r} is already registered.")
            self._entries[name] = target
            return target

        if obj is not None:
            add(obj)
            return lambda x: x
        return add  # type: ignore[return-value]

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or self.entry_point_group is None:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            self._entries.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """Returns the object registered as ``name``, importing it if it was registered lazily."""
        self._load_entry_points()
        if name not in self._entries:
            known = self.names()
            raise UnknownNameError(
                f"Unknown {self.kind} {name!r}.{did_you_mean(name, known)} "
                f"Known {self.kind}s: {', '.join(known) or '(none)'}."
            )
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = import_string(entry)  # type: ignore[assignment]
            self._entries[name] = entry
        return entry  # type: ignore[return-value]
