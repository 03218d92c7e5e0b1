"""Help texts of the ``panbench`` command: every option's default and examples for each command.

:func:`decorate` walks a built parser and, for every command and subcommand, switches to a
formatter that appends ``(default: ...)`` to options whose help does not already say it, and adds
the examples of :data:`EXAMPLES` as an epilog. The parser definitions in ``cli.py`` stay as they
are; a new command gets its examples here.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        "panbench demo",
        "panbench evaluate --model oracle --suite quick --out runs/oracle",
        "panbench evaluate --help",
    ),
    "ls": ("panbench ls tasks", "panbench ls metrics"),
    "tasks": ("panbench tasks validate", "panbench tasks import lerobot --root DATA --out tasks/"),
    "tasks validate": ("panbench tasks validate", "panbench tasks validate my_tasks/"),
    "tasks import": (
        "panbench tasks import wr-arena --root WorldArena/ --out tasks/wr",
        "panbench tasks import videos --root clips/ --out tasks/mine --horizon 8",
    ),
    "data": ("panbench data generate --env shapes --episodes 8 --length 16 --out eps/",),
    "data generate": (
        "panbench data generate --env shapes --episodes 8 --length 16 --out eps/",
        "panbench data generate --env blocks --episodes 64 --length 32 --resolution 128 --out b/",
    ),
    "data import-videos": ("panbench data import-videos clips/ --out eps/ --resolution 64",),
    "data info": ("panbench data info eps/",),
    "evaluate": (
        "panbench evaluate --model oracle --suite quick --out runs/oracle",
        "panbench evaluate --model pan-ref --tasks env-sim,long-horizon --limit 8 "
        "--save-videos 2 --out runs/pan-ref",
    ),
    "weights": ("panbench weights list", "panbench weights pull alexnet"),
    "weights list": ("panbench weights list", "panbench weights list --verify"),
    "weights pull": ("panbench weights pull alexnet", "panbench weights pull i3d-torchscript"),
    "weights verify": ("panbench weights verify", "panbench weights verify alexnet"),
    "weights path": ("panbench weights path alexnet",),
    "demo": ("panbench demo", "panbench demo --out /tmp/demo --threads 4"),
    "train": (
        "panbench train --config reference_model/configs/tiny.yaml --out runs/tiny",
        "panbench train --config reference_model/configs/tiny.yaml --out runs/tiny --resume",
    ),
    "submit": ("panbench submit runs/oracle --leaderboard leaderboards/quick",),
    "leaderboard": (
        "panbench leaderboard init boards/quick --suite quick",
        "panbench leaderboard build leaderboards/quick",
    ),
    "leaderboard init": ("panbench leaderboard init boards/quick --suite quick",),
    "leaderboard build": ("panbench leaderboard build leaderboards/quick",),
    "leaderboard verify": ("panbench leaderboard verify leaderboards/quick",),
    "compare": (
        "panbench compare runs/main runs/branch",
        "panbench compare runs/main runs/branch --gate --format markdown",
    ),
    "plot": (
        "panbench plot runs/oracle runs/pan-ref --out figures/",
        "panbench plot runs/* --out figures/ --format pdf,svg,png",
    ),
    "report": ("panbench report runs/pan-ref", "panbench report runs/pan-ref --out report/"),
    "serve": (
        "panbench serve --model pan-ref --port 8765",
        "panbench evaluate --model remote --model-args url=http://127.0.0.1:8765 --suite quick "
        "--out runs/remote  # from another process",
    ),
    "judges": ("panbench judges ls",),
    "judges ls": ("panbench judges ls",),
}
"""Example command lines per command path (``""`` is ``panbench`` itself)."""


UNSET_DEFAULTS: dict[str, str] = {
    "limit": "every episode",
    "seed": "each task's own seed",
    "judge": "none; judge-scored tasks are refused",
    "name": "the model's name",
    "resolution": "the source's own size",
    "max_frames": "every frame",
    "device": "cuda if available, else cpu",
    "max_steps": "the config's total steps (every stage)",
    "path": "the shipped tasks",
    "stride": "the horizon",
}
"""What an option left at None means, by its destination (else ``not set``)."""


_ONE_OF_REQUIRED = "_panbench_one_of_required"


class DefaultsFormatter(argparse.HelpFormatter):
    """Appends each option's default to its help and keeps the examples' line breaks.

    An option's default is shown unless its help already names one, it is required, or it is a
    flag (``store_true``); a None default is said in words (:data:`UNSET_DEFAULTS`).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.required or action.nargs == 0:
            return text
        if getattr(action, _ONE_OF_REQUIRED, False):  # one of a required group: no default
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text  # a required positional
        default = action.default
        if default is argparse.SUPPRESS:
            return text
        if default is None:
            shown = UNSET_DEFAULTS.get(action.dest, "not set")
        elif default == "":
            shown = "none"
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})"

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        filled = []
        for part in text.split("\n\n"):
            if part.startswith("examples:"):
                filled.append("\n".join(indent + line for line in part.splitlines()))
            else:
                filled.append(super()._fill_text(part, width, indent))
        return "\n\n".join(filled)


def _subcommands(
    parser: argparse.ArgumentParser, path: str = ""
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _subcommands(child, f"{path} {name}".strip())


def examples_text(path: str) -> str | None:
    """The epilog for command ``path``: its examples, one per line."""
    lines = EXAMPLES.get(path)
    if not lines:
        return None
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def decorate(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Gives every command of ``parser`` the defaults formatter and its examples (in place)."""
    for path, command in _subcommands(parser):
        command.formatter_class = DefaultsFormatter
        for group in command._mutually_exclusive_groups:
            for action in group._group_actions:
                setattr(action, _ONE_OF_REQUIRED, group.required)
        text = examples_text(path)
        if text is not None:
            command.epilog = f"{command.epilog}\n\n{text}" if command.epilog else text
    return parser


def commands(parser: argparse.ArgumentParser) -> list[str]:
    """Every command path of ``parser`` (``"evaluate"``, ``"weights list"``, ...)."""
    return [path for path, _ in _subcommands(parser) if path]
