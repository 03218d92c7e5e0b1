"""``python -m remote_model_example --port 8765``: serves :class:`DriftModel` to panbench."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from panbench.serve.server import ServeError, serve
from panbench.serve.wire import TOKEN_ENV
from remote_model_example.model import DriftModel


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--noise", type=int, default=4)
    parser.add_argument("--ready-file", type=Path, default=None, help="write the url here")
    args = parser.parse_args()

    def ready(url: str) -> None:
        print(f"serving drift-example at {url}", flush=True)
        if args.ready_file is not None:
            args.ready_file.write_text(url + "\n")

    try:
        serve(
            DriftModel(args.noise),
            args.host,
            args.port,
            token=os.environ.get(TOKEN_ENV),
            on_ready=ready,
        )
    except ServeError as err:
        print(f"error: {err}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
