"""The model server: a small ASGI app (Starlette, run by uvicorn) around a :class:`Backend`.

Why Starlette + uvicorn: both are small, widely used and well kept, install from PyPI on any
platform with pure-Python fallbacks, and keep connections alive (HTTP/1.1) so one harness call
costs one request on an open socket. FastAPI would add pydantic and schema machinery the binary
wire format does not use.

The server never executes anything from a request: bodies are parsed by
:func:`panbench.serve.wire.decode` (JSON + raw arrays of fixed dtypes), bounded in size, and
only the backend's ``reset``/``step``/``clone``/``for_task`` run. It binds to loopback unless
told otherwise, and then only with a bearer token. Needs numpy, starlette and uvicorn only.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import sys
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from panbench.serve import wire
from panbench.serve.backend import ACTION_SPACES, Backend, StateStore, UnknownStateError

__all__ = [
    "CALLS",
    "DEFAULT_MAX_REQUEST_BYTES",
    "ServeError",
    "check_bind",
    "is_loopback",
    "make_app",
    "serve",
]

DEFAULT_MAX_REQUEST_BYTES = 512 * 1024 * 1024
#: the calls a client may make, each ``POST /v<VERSION>/<call>``
CALLS = ("info", "reset", "step", "clone", "outcomes", "release", "for_task")


class ServeError(RuntimeError):
    """The server refuses to start (a non-loopback address without a token, a bad spec)."""


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuses a non-loopback address without a bearer token.

    Raises:
        ServeError: ``host`` is reachable from other machines and ``token`` is empty.
    """
    if not is_loopback(host) and not token:
        raise ServeError(
            f"Refusing to serve on {host!r} without a token: an address other than loopback "
            "(127.0.0.1, ::1, localhost) is reachable from other machines. Set a bearer token "
            f"in the environment variable {wire.TOKEN_ENV} (see docs/remote.md), or bind "
            "to 127.0.0.1."
        )


def check_spec(spec: Any) -> dict[str, Any]:
    """The backend's spec, checked before the server starts.

    Raises:
        ServeError: a field missing or of the wrong type, or a privileged model.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ServeError(f"Expected the backend's spec() to be a dict with a 'name', got {spec!r}.")
    if spec.get("action_space") not in ACTION_SPACES:
        raise ServeError(
            f"Expected spec()['action_space'] to be one of {ACTION_SPACES}, but got "
            f"{spec.get('action_space')!r}."
        )
    if spec.get("privileged"):
        raise ServeError(
            f"Model {spec['name']!r} is privileged (it reads the true simulator, which does not "
            "travel over the wire); run it in-process instead."
        )
    return {
        "name": spec["name"],
        "action_space": spec["action_space"],
        "resolution": spec.get("resolution"),
        "context_frames": spec.get("context_frames"),
        "frames_per_step": spec.get("frames_per_step", 1),
        "predicts_rewards": bool(spec.get("predicts_rewards", False)),
        "action_dim": spec.get("action_dim"),
    }


def _reply(
    fields: dict[str, Any], arrays: dict[str, np.ndarray] | None = None, status: int = 200
) -> Any:
    from starlette.responses import Response

    return Response(wire.encode(fields, arrays), status_code=status, media_type=wire.CONTENT_TYPE)


def _actions(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(a, dict) for a in value):
        raise _Refusal(400, "malformed", f"Expected {what} to be a list of action objects.")
    return value


class _App:
    """The endpoints, bound to one backend and its states."""

    def __init__(
        self, backend: Backend, token: str | None, max_request_bytes: int, max_states: int
    ) -> None:
        self.backend = backend
        self.spec = check_spec(backend.spec())
        self.info = dict(backend.info())
        self.token = token
        self.max_request_bytes = max_request_bytes
        self.states = StateStore(max_states)
        #: requests served per call, reported by ``release`` (one per harness call, not per row)
        self.calls: dict[str, int] = dict.fromkeys(CALLS, 0)

    async def read(self, request: Any) -> wire.Message:
        if self.token is not None:
            sent = request.headers.get("authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {self.token}".encode()):
                raise _Refusal(401, "auth", "this server requires its bearer token")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_request_bytes:
            raise _Refusal(
                413,
                "too-large",
                f"request of {declared} bytes exceeds this server's limit of "
                f"{self.max_request_bytes} bytes (--max-request-mb)",
            )
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_request_bytes:
                raise _Refusal(413, "too-large", f"request exceeds {self.max_request_bytes} bytes")
        try:
            message = wire.decode(body)
        except wire.WireError as err:
            raise _Refusal(400, "malformed", str(err)) from None
        if message.version != wire.VERSION:
            raise _Refusal(
                409,
                "version",
                f"the client speaks wire version {message.version}, this server speaks "
                f"version {wire.VERSION}; install matching panbench versions",
            )
        self.states.release(message.fields.get("release") or [])
        return message

    def state(self, message: wire.Message) -> Any:
        try:
            return self.states.get(message.fields.get("state"))
        except UnknownStateError as err:
            raise _Refusal(404, "state", str(err)) from None

    def do_info(self, message: wire.Message) -> Any:
        from panbench import __version__

        return _reply({"spec": self.spec, "info": self.info, "panbench_version": __version__})

    def do_reset(self, message: wire.Message) -> Any:
        frames = message.arrays.get("frames")
        if frames is None or frames.dtype != np.uint8 or frames.ndim != 5:
            got = "none" if frames is None else f"{frames.dtype}{list(frames.shape)}"
            raise _Refusal(400, "malformed", f"Expected frames uint8 [B,T,H,W,3], got {got}.")
        seeds = message.fields.get("seeds")
        actions = message.fields.get("actions")
        b = frames.shape[0]
        if not (
            isinstance(seeds, list) and len(seeds) == b and all(isinstance(s, int) for s in seeds)
        ):
            raise _Refusal(400, "malformed", f"Expected {b} integer seeds, got {seeds!r}.")
        if not (isinstance(actions, list) and len(actions) == b):
            raise _Refusal(400, "malformed", f"Expected {b} lists of context actions.")
        past = [_actions(a, "each rollout's context actions") for a in actions]
        state = self.backend.reset(frames, past, seeds)
        return _reply({"state": self.states.put(state)})

    def do_step(self, message: wire.Message) -> Any:
        state = self.state(message)
        actions = _actions(message.fields.get("actions"), "actions")
        new, frames = self.backend.step(state, actions)
        return _reply({"state": self.states.put(new)}, {"frames": np.asarray(frames)})

    def do_clone(self, message: wire.Message) -> Any:
        return _reply({"state": self.states.put(self.backend.clone(self.state(message)))})

    def do_outcomes(self, message: wire.Message) -> Any:
        if not self.spec.get("predicts_rewards"):
            raise _Refusal(
                400, "malformed", f"Model {self.spec['name']!r} does not predict rewards."
            )
        rewards, terminals = self.backend.outcomes(self.state(message))
        arrays = {
            "rewards": np.asarray(rewards, dtype=np.float64),
            "terminals": np.asarray(terminals, dtype=bool),
        }
        return _reply({}, arrays)

    def do_release(self, message: wire.Message) -> Any:
        return _reply({"held": len(self.states), "calls": dict(self.calls)})

    def do_for_task(self, message: wire.Message) -> Any:
        task = message.fields.get("task")
        if not isinstance(task, str):
            raise _Refusal(400, "malformed", f"Expected a task name, got {task!r}.")
        return _reply({"settings": dict(self.backend.for_task(task))})

    async def dispatch(self, request: Any) -> Any:
        """``POST /v<version>/<call>``: another version or an unknown call gets a wire reply too."""
        try:
            version, call = request.path_params["version"], request.path_params["call"]
            if version != wire.VERSION:
                raise _Refusal(
                    409,
                    "version",
                    f"the client speaks wire version {version}, this server speaks version "
                    f"{wire.VERSION}; install matching panbench versions",
                )
            handler = getattr(self, f"do_{call}", None) if call in CALLS else None
            if handler is None:
                raise _Refusal(404, "call", f"Expected one of the calls {CALLS}, got {call!r}.")
            message = await self.read(request)
            self.calls[call] += 1
            return handler(message)
        except _Refusal as err:
            return _reply({"error": str(err), "code": err.code}, status=err.status)
        except MemoryError as err:
            return _reply({"error": str(err), "code": "full"}, status=503)
        except Exception as err:  # the model failed: say so to the client, log it here
            traceback.print_exc(file=sys.stderr)
            return _reply({"error": f"{type(err).__name__}: {err}", "code": "model"}, status=500)


def make_app(
    backend: Backend,
    *,
    token: str | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_states: int = 100_000,
) -> Any:
    """The Starlette app serving ``backend`` under ``/v1/<call>`` (``info``, ``reset``,
    ``step``, ``clone``, ``release``, ``for_task``; every call a POST of a wire message)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    app = _App(backend, token, max_request_bytes, max_states)
    routes = [Route("/v{version:int}/{call}", app.dispatch, methods=["POST"])]
    return Starlette(routes=routes)


def serve(
    backend: Backend,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    token: str | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_states: int = 100_000,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serves ``backend`` until interrupted.

    Args:
        backend: the model.
        host, port: where to listen (port 0: a free port, reported through ``on_ready``).
        token: the bearer token clients must send; required when ``host`` is not loopback.
        max_request_bytes: larger requests are refused (413) before they are read in full.
        max_states: model states held at once (see :class:`StateStore`).
        on_ready: called with the server's url once it listens.

    Raises:
        ServeError: ``host`` is not loopback and there is no token, or the spec is unusable.
    """
    import uvicorn

    check_bind(host, token)
    app = make_app(backend, token=token, max_request_bytes=max_request_bytes, max_states=max_states)
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
    # and without it a small reply waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as err:
        sock.close()
        raise ServeError(f"Cannot listen on {host}:{port}: {err}.") from None
    sock.listen(128)
    bound = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if family == socket.AF_INET6 else host
    if on_ready is not None:
        on_ready(f"http://{shown}:{bound}")
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_keep_alive=3600, lifespan="off"
    )
    uvicorn.Server(config).run(sockets=[sock])
