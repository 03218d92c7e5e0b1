"""The ``panbench tasks import lerobot|videos|episodes`` options and handler (kept out of cli.py).

Imported by the CLI when the parser is built, so it imports nothing heavy at module level.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["RECORDED_IMPORTS", "add_recorded_import_args", "run_recorded_import"]

RECORDED_IMPORTS = ("lerobot", "videos", "episodes")
"""The ``tasks import`` sources that turn recorded data into one task each."""


def add_recorded_import_args(parser: argparse.ArgumentParser) -> None:
    """Adds the recorded-data options to the ``tasks import`` parser."""
    g = parser.add_argument_group("recorded data (lerobot, videos, episodes)")
    g.add_argument("--name", default=None, help="task name (default: from the folder name)")
    g.add_argument("--camera", default=None, help="LeRobot camera key (needed if several)")
    g.add_argument("--action-key", default="action", help="LeRobot action column")
    g.add_argument("--revision", default=None, help="Hub dataset revision to pin (default main)")
    g.add_argument("--context", type=int, default=4, help="context frames per episode")
    g.add_argument("--horizon", type=int, default=8, help="predicted frames per episode")
    g.add_argument("--stride", type=int, default=None, help="frames between window starts")
    g.add_argument("--resolution", type=int, default=128, help="square frame side, px")
    g.add_argument("--aspect", default="crop", choices=["crop", "pad", "squash"])
    g.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of recordings held out (1: all)"
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    g.add_argument("--max-episodes", type=int, default=256, help="at most this many windows")


def run_recorded_import(args: argparse.Namespace, console: Any) -> int:
    """Runs one recorded import; bad or inconsistent data exits 2 with the message, no traceback."""
    from rich.console import Console
    from rich.markup import escape

    from panbench.data.recorded import ImportOptions, import_recorded
    from panbench.errors import PanbenchError

    try:
        root, upstream, name = Path(args.root), None, args.name
        if args.source == "lerobot" and not root.exists():
            from panbench.data.sources.lerobot import HUB_ID, fetch_hub_dataset

            if HUB_ID.match(str(args.root)):
                root, upstream = fetch_hub_dataset(str(args.root), args.revision, args.camera)
                name = name or str(args.root).split("/")[-1].lower()
        opts = ImportOptions(
            context=args.context,
            horizon=args.horizon,
            stride=args.stride,
            resolution=args.resolution,
            aspect=args.aspect,
            test_fraction=args.test_fraction,
            seed=args.seed,
            max_episodes=args.max_episodes,
            camera=args.camera,
            action_key=args.action_key,
        )
        report = import_recorded(args.source, root, args.out, opts, name=name, upstream=upstream)
    except PanbenchError as err:
        stderr = Console(stderr=True, highlight=False)
        stderr.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
        return 2
    console.print(
        f"task {report.task}: {report.episodes} episodes from {report.held_out} held-out of "
        f"{report.recordings} recordings; {report.files} files hashed"
    )
    console.print(f"wrote {report.yaml}, {report.manifest} and the suite {report.suite}")
    return 0
