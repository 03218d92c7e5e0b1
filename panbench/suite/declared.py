"""What the suite validator asks the registries: a protocol's declared sources, options, metrics.

Nothing here lists protocols or data kinds: a protocol registered by a plugin (entry-point group
``panbench.protocols``) validates exactly like a built-in one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from panbench.registry import did_you_mean
from panbench.suite.problems import _Checker, _show

#: the source kind of a task that names a simulator under ``env:``
ENV_SOURCE = "env"


def protocol_class(c: _Checker, protocol: Any) -> Any:
    """The registered class of ``protocol``, or None (after adding a problem) when there is none."""
    from panbench.protocols import PROTOCOLS

    known = PROTOCOLS.names()
    if protocol not in known:
        c.add(
            ("protocol",),
            f"unknown protocol {_show(protocol)} (expected one of: "
            f"{', '.join(known)}).{did_you_mean(str(protocol), known)}",
        )
        return None
    try:
        return PROTOCOLS.get(protocol)
    except ImportError as err:  # a plugin whose dependencies are missing
        c.add(("protocol",), f"protocol {protocol!r} cannot be imported: {err}")
        return None


def data_kinds() -> list[str]:
    """Every data-source kind a task may name under ``data:``.

    The data sources' registry (``panbench.data.sources.SOURCES``), less the env kind.
    """
    from panbench.data.sources import SOURCES

    return [k for k in SOURCES.names() if k != ENV_SOURCE]


def source_keys(cls: Any) -> tuple[str, ...]:
    """The task keys that can give ``cls``'s episodes: ``env`` and/or ``data``."""
    if cls is None:
        return ("env", "data")  # unknown protocol: only the protocol is reported
    keys = ("env",) if ENV_SOURCE in cls.sources else ()
    if any(s != ENV_SOURCE for s in cls.sources):
        keys = (*keys, "data")
    return keys


def check_source(c: _Checker, data: Mapping[str, Any], cls: Any) -> None:
    """A task names a source its protocol declares: ``env:`` or a ``data:`` of a declared kind."""
    if cls is None:
        return
    keys = source_keys(cls)
    given = [k for k in keys if k in data]
    if not given:
        hint = " (see `panbench tasks import`)" if keys == ("data",) else ""
        wanted = " or ".join(repr(k) for k in keys)
        c.add((), f"missing required key {wanted} in task (protocol {cls.name!r}).{hint}")
        return
    source = data.get("data")
    kind = source.get("kind") if isinstance(source, Mapping) else None
    # an unknown kind is reported by the data checks; a known one must be the protocol's
    known = isinstance(kind, str) and kind in data_kinds()
    if "data" in given and known and kind not in cls.sources:
        c.add(
            ("data", "kind"),
            f"expected a data kind protocol {cls.name!r} runs on "
            f"({', '.join(cls.sources)}), but got {kind!r}",
        )


def check_metrics(c: _Checker, metrics: list[str], cls: Any) -> None:
    """Every metric a task names is one its protocol reports."""
    if cls is None:
        return
    declared = list(cls.metrics)
    for i, metric in enumerate(metrics):
        if metric not in declared:
            c.add(
                ("metrics", i),
                f"expected a metric protocol {cls.name!r} reports ({', '.join(declared)}), but "
                f"got {metric!r}.{did_you_mean(metric, declared)}",
            )


def check_options(c: _Checker, options: Mapping[str, Any], cls: Any) -> None:
    """A task's options against the protocol's declared options (names, types, choices)."""
    from panbench.protocols.declare import option_problems

    if cls is None:
        return
    for key, message in option_problems(cls.options, options, cls.name):
        c.add(("options", key), message)
