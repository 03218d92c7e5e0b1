"""The help texts: every command has examples that parse, and every option says its default."""

from __future__ import annotations

import argparse
import shlex

import pytest

from panbench.cli import build_parser
from panbench.cli_help import EXAMPLES, commands


def _command(parser: argparse.ArgumentParser, path: str) -> argparse.ArgumentParser:
    for name in path.split():
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def test_every_command_has_examples() -> None:
    missing = [path for path in commands(build_parser()) if path not in EXAMPLES]
    assert missing == []


@pytest.mark.parametrize("path", sorted(p for p in EXAMPLES if p))
def test_examples_parse(path: str) -> None:
    parser = build_parser()
    if path.split()[0] not in commands(parser):
        pytest.skip(f"{path} is not a command in this build")
    for line in EXAMPLES[path]:
        argv = shlex.split(line, comments=True)[1:]
        if "--help" in argv:
            continue
        args = parser.parse_args(argv)
        assert args.command == argv[0]


def test_help_shows_defaults_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "episodes per model call (default: 16)" in text
    assert "at most N episodes per task (default: every episode)" in text
    assert "examples: panbench evaluate --model oracle --suite quick" in text
    # Required options and flags carry no default.
    assert "registered model name or module:Class --model-args" in text


def test_every_option_says_its_default() -> None:
    parser = build_parser()
    for path in commands(parser):
        command = _command(parser, path)
        formatter = command._get_formatter()
        for action in command._actions:
            if action.nargs == 0 or action.required or not action.option_strings:
                continue
            if isinstance(action, argparse._SubParsersAction) or not action.help:
                continue
            text = formatter._get_help_string(action)
            grouped = getattr(action, "_panbench_one_of_required", False)
            assert grouped or "default" in text.lower(), (path, action.dest, text)
