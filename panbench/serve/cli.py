"""``panbench serve``: loads an adapter and serves it (kept apart from the numpy-only server)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from panbench.errors import RemoteError
from panbench.serve.wire import TOKEN_ENV


def run_serve(args: argparse.Namespace, model_args: Mapping[str, Any], console: Any) -> int:
    """Checks the address and token, builds the adapter, serves it until interrupted.

    Raises:
        RemoteError: a non-loopback address without a token, a privileged model, a port in use.
    """
    from panbench.serve.server import ServeError, check_bind, check_spec, serve

    token = os.environ.get(TOKEN_ENV) or None
    try:
        check_bind(args.host, token)  # before loading a model that may take minutes
    except ServeError as err:
        raise RemoteError(str(err)) from None
    if args.max_request_mb <= 0 or args.max_states < 1:
        raise RemoteError(
            f"Expected --max-request-mb > 0 and --max-states >= 1, but got "
            f"{args.max_request_mb} and {args.max_states}."
        )
    from panbench.models.registry import load_model
    from panbench.serve.adapter import AdapterBackend

    model = load_model(args.model, model_args).to(args.device)
    backend = AdapterBackend(model, args.model, args.device)
    try:
        check_spec(backend.spec())
    except ServeError as err:
        raise RemoteError(str(err)) from None

    def ready(url: str) -> None:
        console.print(
            f"serving {model.spec.name!r} at {url} (score it with --model remote "
            f"--model-args url={url})",
            soft_wrap=True,
        )
        if args.ready_file is not None:
            from panbench.io import atomic_write_text

            atomic_write_text(args.ready_file, url + "\n")

    try:
        serve(
            backend,
            args.host,
            args.port,
            token=token,
            max_request_bytes=int(args.max_request_mb * 1024 * 1024),
            max_states=args.max_states,
            on_ready=ready,
        )
    except ServeError as err:
        raise RemoteError(str(err)) from None
    return 0
