"""Protocol option declarations: defaults, type checks and the messages the validator reports."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from panbench.errors import ConfigError
from panbench.protocols.declare import Option, option_problems, read_options

OPTIONS = (
    Option("n", int, 4, "a count", minimum=1),
    Option("tol", float, 1.5, "a tolerance", minimum=0),
    Option("net", str, "alex", "a backbone", choices=("alex", "vgg")),
    Option("args", dict, None, "keyword arguments"),
    Option("names", list, ("a", "b"), "some names"),
)


def _task(**options: object) -> SimpleNamespace:
    return SimpleNamespace(name="t", options=options)


def test_defaults_apply_and_values_are_read_as_declared() -> None:
    assert read_options(OPTIONS, _task(), "p") == {
        "n": 4,
        "tol": 1.5,
        "net": "alex",
        "args": None,
        "names": ("a", "b"),
    }
    got = read_options(OPTIONS, _task(n=2.0, tol=2, net="vgg", args={"k": 1}, names=("x",)), "p")
    assert got == {"n": 2, "tol": 2.0, "net": "vgg", "args": {"k": 1}, "names": ["x"]}
    assert type(got["n"]) is int and type(got["tol"]) is float


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"n": 0}, "expected n to be an integer >= 1, but got 0"),
        ({"n": True}, "expected n to be an integer >= 1, but got True"),
        ({"n": 1.5}, "expected n to be an integer >= 1, but got 1.5"),
        ({"tol": float("nan")}, "expected tol to be a number >= 0, but got nan"),
        ({"tol": "1"}, "expected tol to be a number >= 0, but got '1'"),
        ({"net": "res"}, "expected net to be one of alex, vgg, but got 'res'"),
        ({"args": [1]}, "expected args to be a mapping, but got [1]"),
        ({"names": "a"}, "expected names to be a list, but got 'a'"),
        ({"nett": "alex"}, "unknown p option 'nett'; expected some of: args, n, names, net, tol."),
    ],
)
def test_bad_values_are_refused_with_expected_and_got(given: dict, message: str) -> None:
    problems = option_problems(OPTIONS, given, "p")
    assert len(problems) == 1 and problems[0][0] == next(iter(given))
    assert message in problems[0][1]
    with pytest.raises(ConfigError, match="Task 't': "):
        read_options(OPTIONS, _task(**given), "p")


def test_unknown_option_suggests_a_close_name() -> None:
    assert "Did you mean: net?" in option_problems(OPTIONS, {"nett": 1}, "p")[0][1]


def test_an_option_type_outside_json_is_refused() -> None:
    with pytest.raises(ConfigError, match="expected a type among"):
        Option("when", tuple, (), "a tuple")
