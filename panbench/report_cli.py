"""``panbench report RUN_DIR``: one results folder as a static HTML page (see panbench.pages)."""

from __future__ import annotations

import argparse
from pathlib import Path

from panbench.errors import PanbenchError


def add_report(sub: argparse._SubParsersAction) -> None:
    """Adds the ``report`` command to the ``panbench`` parser."""
    p = sub.add_parser(
        "report",
        help="render one results folder as a static HTML page (scores, curves, rollouts)",
        description="Exit codes: 0 written, 2 the folder holds no readable results.",
    )
    p.add_argument("run", type=Path, help="a results folder written by `panbench evaluate`")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: RUN/report)")
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Writes the page; unusable input is exit 2 with the reason, as ``compare`` does."""
    from rich.console import Console
    from rich.markup import escape

    from panbench.pages import write_report

    try:
        page = write_report(args.run, args.out)
    except PanbenchError as err:
        Console(stderr=True, highlight=False).print(
            f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True
        )
        return 2
    Console(highlight=False).print(f"wrote {page}", soft_wrap=True)
    return 0
