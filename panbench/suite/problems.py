"""Spec problems located at file:line, and the checker that collects them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from panbench.errors import ConfigError

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
