"""What a protocol declares about itself: its options (typed, with defaults) and how they are read.

A protocol class lists its options as :class:`Option` entries; :func:`read_options` applies the
defaults and checks the types of a task's ``options`` (the protocol reads them through it), and
:func:`option_problems` gives the same checks as (option, message) pairs, so the suite validator
reports a wrong option at its file and line without building the protocol.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from panbench.errors import ConfigError
from panbench.registry import did_you_mean

__all__ = ["Option", "option_problems", "read_options"]

#: the JSON-shaped types an option may have, as words for messages
_TYPE_WORDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "a mapping",
    list: "a list",
}


@dataclass(frozen=True)
class Option:
    """One option a protocol reads from its task's ``options``.

    Attributes:
        name: the key under ``options:`` in the task YAML.
        type: ``str``, ``int``, ``float``, ``bool``, ``dict`` or ``list``; an int is accepted
            for a float (and read as a float), a tuple for a list.
        default: the value when the task does not give one; None means "not set" (then None
            is also accepted from the task).
        description: one line for ``panbench ls protocols``.
        choices: the values allowed, if only a few are.
        minimum: the smallest value allowed (numbers).
    """

    name: str
    type: type
    default: Any
    description: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None

    def __post_init__(self) -> None:
        if self.type not in _TYPE_WORDS:
            raise ConfigError(
                f"Option {self.name!r}: expected a type among "
                f"{', '.join(t.__name__ for t in _TYPE_WORDS)}, but got {self.type!r}."
            )

    def expected(self) -> str:
        """What a valid value is, in words (for messages and listings)."""
        if self.choices is not None:
            return f"one of {', '.join(str(c) for c in self.choices)}"
        words = _TYPE_WORDS[self.type]
        if self.minimum is not None:
            bound = int(self.minimum) if self.type is int else self.minimum
            words = f"{words} >= {bound}"
        return words

    def coerce(self, value: Any) -> Any:
        """The value as the protocol reads it.

        Raises:
            ValueError: the value has the wrong type, is not a choice or is below the minimum
                (the message is :meth:`expected`).
        """
        if value is None and self.default is None:
            return None
        out = self._typed(value)
        if self.choices is not None and out not in self.choices:
            raise ValueError(self.expected())
        if self.minimum is not None and out < self.minimum:
            raise ValueError(self.expected())
        return out

    def _typed(self, value: Any) -> Any:
        kind = self.type
        # bool is an int in Python but never a count, a length or a tolerance here
        if isinstance(value, bool) != (kind is bool):
            raise ValueError(self.expected())
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if kind is float and isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
        if kind is list and isinstance(value, (list, tuple)):
            return list(value)
        if kind is dict and isinstance(value, Mapping):
            return dict(value)
        if kind in (bool, int, str) and isinstance(value, kind):
            return value
        raise ValueError(self.expected())


def option_problems(
    declared: Sequence[Option], given: Mapping[str, Any], protocol: str
) -> list[tuple[str, str]]:
    """Every problem with a task's options: unknown keys and wrong values.

    Returns:
        ``(option name, message)`` pairs, in the order of ``given``; empty when all is well.
    """
    by_name = {o.name: o for o in declared}
    problems: list[tuple[str, str]] = []
    for key, value in given.items():
        option = by_name.get(key)
        if option is None:
            known = list(by_name)
            problems.append(
                (
                    key,
                    f"unknown {protocol} option {key!r}; expected some of: "
                    f"{', '.join(sorted(known)) or '(none)'}.{did_you_mean(str(key), known)}",
                )
            )
            continue
        try:
            option.coerce(value)
        except ValueError as err:
            problems.append((key, f"expected {key} to be {err}, but got {value!r}"))
    return problems


def read_options(declared: Sequence[Option], task: Any, protocol: str) -> dict[str, Any]:
    """A task's options with defaults applied and types checked.

    Args:
        declared: the protocol's :class:`Option` entries.
        task: the task spec (its ``name`` and ``options``).
        protocol: the protocol's name, for messages.

    Returns:
        ``{name: value}`` for every declared option (the default where the task gives none).

    Raises:
        ConfigError: an unknown option or a wrong value (the first one found).
    """
    given = dict(task.options)
    problems = option_problems(declared, given, protocol)
    if problems:
        raise ConfigError(f"Task {task.name!r}: {problems[0][1]}.")
    out = {o.name: o.default for o in declared}
    out.update({o.name: o.coerce(given[o.name]) for o in declared if o.name in given})
    return out
