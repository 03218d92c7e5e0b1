"""The exit codes of the ``panbench`` command and how a failure is reported (see docs/errors.md)."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

__all__ = [
    "FAILED_CHECK",
    "INTERNAL",
    "INTERRUPTED",
    "OK",
    "PENDING",
    "REFUSED",
    "debug_requested",
    "report_failure",
]

#: the command did what was asked
OK = 0
#: a check ran and failed: `compare --gate` found a regression, a `verify`/`validate` found problems
FAILED_CHECK = 1
#: the input was refused (a bad option, file, checkpoint, adapter or results folder); also
#: argparse's code for a command line it cannot parse
REFUSED = 2
#: `evaluate` stopped with judgements pending (a human judge's sheet to fill in)
PENDING = 3
#: an error panbench did not anticipate: a bug, to be reported with the `--debug` traceback
INTERNAL = 70
#: interrupted by Ctrl-C (SIGINT); finished work is kept
INTERRUPTED = 130


def debug_requested(args: Any) -> bool:
    """Whether ``--debug`` was given (or ``PANBENCH_DEBUG`` is set to a non-empty, non-0 value)."""
    env = os.environ.get("PANBENCH_DEBUG", "").strip()
    return bool(getattr(args, "debug", False)) or env not in ("", "0")


def report_failure(err: BaseException, console: Any, *, debug: bool) -> int:
    """Prints a failure without a traceback (unless ``debug``) and returns its exit code.

    Args:
        err: the exception that ended the command.
        console: a rich console on stderr.
        debug: print the traceback as well.

    Returns:
        REFUSED for panbench's own errors and for files that cannot be read or written,
        INTERNAL for anything else.
    """
    from rich.markup import escape

    from panbench.errors import PanbenchError

    if debug:
        sys.stderr.write("".join(traceback.format_exception(err)))
    if isinstance(err, PanbenchError):
        console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
        return err.exit_code
    if isinstance(err, OSError):
        where = f" {err.filename}" if err.filename is not None else ""
        reason = err.strerror or str(err)
        console.print(
            f"[bold red]error:[/] Expected a path panbench can read or write, but{where}: "
            f"{escape(reason)}.",
            soft_wrap=True,
        )
        return REFUSED
    trace = "the traceback above" if debug else "the traceback that --debug prints"
    console.print(
        f"[bold red]internal error:[/] {escape(type(err).__name__)}: {escape(str(err))}\n"
        "This is a bug in panbench (or a plugin), not in your input; please report it with "
        f"the command you ran and {trace}.",
        soft_wrap=True,
    )
    return INTERNAL
