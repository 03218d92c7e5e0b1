"""The strict config reader: every field's value is checked against its annotated type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from panbench.errors import ConfigError
from reference_model.config import from_dict


@dataclass
class Inner:
    size: int = 4


@dataclass
class Kinds:
    flag: bool = False
    count: int = 1
    rate: float = 0.5
    name: str = "x"
    path: str | None = None
    extra: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    levels: list[bool] | None = None
    targets: list[str] = field(default_factory=list)
    mode: Literal["a", "b"] = "a"
    inner: Inner = field(default_factory=Inner)


def test_values_of_every_kind_are_read() -> None:
    got = from_dict(
        Kinds,
        {
            "flag": True,
            "count": 3,
            "rate": 2,  # an int where a float is expected becomes a float
            "name": "y",
            "path": None,
            "extra": {"model_type": "qwen2"},  # a dict for an optional dict (was refused)
            "options": {"k": 1},
            "sizes": [3, 4],
            "levels": [True, False],
            "targets": ["q_proj", "v_proj"],  # a list of strings (was read as list[int])
            "mode": "b",
            "inner": {"size": 8},
        },
        "test.yaml",
    )
    assert got.rate == 2.0 and isinstance(got.rate, float)
    assert got.extra == {"model_type": "qwen2"} and got.targets == ["q_proj", "v_proj"]
    assert got.path is None and got.levels == [True, False] and got.inner.size == 8
    assert got.mode == "b"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"flag": 1}, r"flag to be like False \(bool\), but got int 1"),
        ({"count": True}, r"count .*but got bool True"),
        ({"count": 1.5}, r"count .*but got float 1.5"),
        ({"rate": "fast"}, r"rate .*but got str 'fast'"),
        ({"path": 3}, r"path .*but got int 3"),
        ({"extra": [1]}, r"extra .*but got list"),
        ({"sizes": [1, True]}, r"sizes .*but got list"),
        ({"targets": ["q", 1]}, r"targets .*but got list"),
        ({"levels": [1]}, r"levels .*but got list"),
        ({"mode": "c"}, r"mode .*but got str 'c'"),
        ({"inner": {"size": "big"}}, r"inner\.size .*but got str 'big'"),
        ({"sise": 1}, r"unknown key 'sise'"),
    ],
)
def test_wrong_kinds_are_refused_naming_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(Kinds, data, "test.yaml")
