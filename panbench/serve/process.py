"""``panbench serve`` in a child process: for scripts, benchmarks and tests on one machine."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from panbench.errors import RemoteError

__all__ = ["ServerProcess"]


class ServerProcess:
    """Starts ``panbench serve --model NAME`` on a free loopback port; stops it on exit.

    Use as a context manager; :attr:`url` is the server's url once started.

    Args:
        model: registered name or ``module:Class``.
        model_args: adapter options (``k=v`` items).
        extra: more ``panbench serve`` arguments.
        env: extra environment variables for the child (e.g. the token).
        start_timeout: seconds to wait for the server to listen.
    """

    def __init__(
        self,
        model: str,
        model_args: Mapping[str, Any] | None = None,
        *,
        extra: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.model, self.model_args, self.extra = model, dict(model_args or {}), list(extra)
        self.env = dict(env or {})
        self.start_timeout = start_timeout
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="panbench-serve-")

    def start(self, port: int = 0) -> ServerProcess:
        """Starts the server (again, after :meth:`stop`, on ``port`` to keep its url)."""
        ready = Path(self._dir.name) / "ready"
        ready.unlink(missing_ok=True)
        args = ",".join(f"{k}={v}" for k, v in self.model_args.items())
        cmd = [sys.executable, "-m", "panbench.cli", "serve", "--model", self.model]
        cmd += ["--model-args", args, "--port", str(port), "--ready-file", str(ready), *self.extra]
        log = open(Path(self._dir.name) / "log", "ab")  # noqa: SIM115 (the child writes to it)
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RemoteError(f"`{' '.join(cmd)}` did not start:\n{self.log()}")
            time.sleep(0.05)
        self.url = ready.read_text().strip()
        return self

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log(self) -> str:
        path = Path(self._dir.name) / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, kill: bool = False) -> None:
        """Stops the server (``kill``: SIGKILL, as a crash would)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._dir.cleanup()
