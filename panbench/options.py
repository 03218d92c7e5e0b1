"""Options given on the command line as ``k=v,k=v`` or a YAML/JSON mapping (``--model-args``,
``--judge-args``, ``--env-args``)."""

from __future__ import annotations

from typing import Any

__all__ = ["parse_kv"]


def _split_options(text: str) -> list[str]:
    """Splits ``k=v,k=v`` at the commas outside quotes; ``\\,`` is a literal comma."""
    items: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and text[i + 1 : i + 2] == ",":
            current.append(",")
            i += 2
            continue
        if quote is not None:
            quote = None if ch == quote else quote
        elif ch in "\"'" and "".join(current).rstrip().endswith("="):
            quote = ch  # only a quote that opens a value quotes (paths may hold an apostrophe)
        elif ch == ",":
            items.append("".join(current))
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    items.append("".join(current))
    return items


def parse_kv(text: str) -> dict[str, Any]:
    """Parses adapter/judge/env options given on the command line.

    Two forms: ``"a=1,b=true,c=x"`` gives ``{"a": 1, "b": True, "c": "x"}`` (each value read as a
    YAML scalar); a value with a comma is quoted (``prompt="left, then up"``) or escaped
    (``prompt=left\\, then up``). Or a YAML/JSON mapping: ``'{prompt: "left, then up", steps: 4}'``.

    Raises:
        ConfigError: an item without ``=``, a repeated key, malformed quoting or mapping.
    """
    import yaml

    from panbench.errors import ConfigError

    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = yaml.safe_load(stripped)
        except yaml.YAMLError as err:
            raise ConfigError(
                f"Expected a YAML/JSON mapping of options, but got {text!r}: {err}"
            ) from None
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise ConfigError(f"Expected a mapping with string keys, but got {text!r}.")
        return dict(data)
    out: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in _split_options(text))):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ConfigError(f"Expected options of the form key=value, but got {item!r}.")
        if key in out:
            raise ConfigError(f"Option {key!r} is given twice in {text!r}.")
        try:
            out[key] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError as err:
            raise ConfigError(
                f"Cannot read the value of option {key!r} ({value!r}): {err}"
            ) from None
    return out
