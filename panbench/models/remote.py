"""The ``remote`` adapter: a model served by ``panbench serve`` (or any wire-protocol server).

``--model remote --model-args url=http://127.0.0.1:8765`` reads the server's ModelSpec and maps
each harness call (``reset``, ``step``, ``clone``, ``for_task``) onto one request over one
kept-alive HTTP connection: batches stay batches. States stay on the server under opaque ids;
this side holds :class:`RemoteState` handles, and a handle the harness drops is released with
the next request. Every fault (refused, timed out, a server that died, a malformed or wrong-shape
reply, another wire version) raises :class:`~panbench.errors.RemoteError` naming the server.
See docs/remote.md.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import weakref
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from panbench.envs.base import Action
from panbench.errors import ContractError, RemoteError
from panbench.models.api import Context, ModelSpec, WorldModel
from panbench.serve import wire

__all__ = ["RemoteModel", "RemoteState"]

TOKEN_ENV = wire.TOKEN_ENV
#: the environment variable with the reply timeout in seconds (when ``timeout`` is not given)
TIMEOUT_ENV = "PANBENCH_REMOTE_TIMEOUT"
DEFAULT_TIMEOUT = 600.0


class RemoteState:
    """A handle on a state held by the server; dropping it releases the state there."""

    __slots__ = ("__weakref__", "id")

    def __init__(self, state_id: str) -> None:
        self.id = state_id

    def __repr__(self) -> str:
        return f"RemoteState({self.id!r})"


class _Connection(http.client.HTTPConnection):
    """Connects within ``connect_timeout``; then each read waits up to ``timeout``."""

    def __init__(self, host: str, port: int | None, timeout: float, connect_timeout: float) -> None:
        super().__init__(host, port, timeout=connect_timeout)
        self.read_timeout = timeout

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(self.read_timeout)


class _Client:
    """One server: its url, the kept-alive connection, the ids of states dropped here."""

    def __init__(self, url: str, timeout: float, connect_timeout: float) -> None:
        parts = urlsplit(str(url))
        if parts.scheme != "http" or not parts.hostname:
            raise RemoteError(
                f"Expected the remote model's url as http://HOST:PORT, but got {url!r}."
            )
        if parts.username or parts.password:
            raise RemoteError(
                f"Expected a url without credentials (it is recorded in results), but got one in "
                f"{parts.scheme}://...@{parts.hostname}; put the token in ${TOKEN_ENV} instead."
            )
        try:
            port = parts.port
        except ValueError:
            raise RemoteError(f"Expected a port number in the url, but got {url!r}.") from None
        self.url = f"http://{parts.netloc}{parts.path.rstrip('/')}"
        self.timeout, self.connect_timeout = float(timeout), float(connect_timeout)
        self._host, self._port, self._prefix = parts.hostname, port, parts.path.rstrip("/")
        self._conn: _Connection | None = None
        self.released: list[str] = []
        token = os.environ.get(TOKEN_ENV)
        self._headers = {"Content-Type": wire.CONTENT_TYPE}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def who(self) -> str:
        return f"Remote model server {self.url}"

    def close(self) -> None:
        """Releases the states dropped so far (best effort) and closes the connection."""
        if self.released:
            with contextlib.suppress(RemoteError):  # a server that is gone took its states
                self.call("release", {})
        self._drop()

    def call(
        self, verb: str, fields: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
    ) -> wire.Message:
        """One request; a kept-alive connection the server closed meanwhile is reopened once."""
        release, self.released[:] = list(self.released), []
        try:
            body = wire.encode({**fields, "release": release}, arrays)
        except (TypeError, ValueError) as err:  # WireError is a ValueError
            raise RemoteError(f"Cannot send {verb} to {self.who()}: {err}") from None
        for attempt in range(2):
            reused = self._conn is not None
            try:
                status, ctype, data = self._post(f"{self._prefix}/v{wire.VERSION}/{verb}", body)
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as err:
                self._drop()
                if not reused or attempt:
                    raise RemoteError(
                        f"{self.who()} closed the connection during {verb} ({err or type(err).__name__}): "
                        "did the server stop? Episodes finished so far are kept; restart the "
                        "server and rerun the same command to resume."
                    ) from None
            except TimeoutError:
                self._drop()
                raise RemoteError(
                    f"{self.who()} did not answer {verb} within {self.timeout:g} s. Episodes "
                    f"finished so far are kept; raise the limit with ${TIMEOUT_ENV}=SECONDS and "
                    "rerun the same command to resume."
                ) from None
            except ConnectionRefusedError:
                self._drop()
                raise RemoteError(
                    f"{self.who()} refused the connection during {verb}: is `panbench serve` "
                    "running there? Episodes finished so far are kept; rerun the same command "
                    "once it is."
                ) from None
            except (OSError, http.client.HTTPException) as err:
                self._drop()
                raise RemoteError(f"{self.who()} failed during {verb}: {err}.") from None
        return self._parse(verb, status, ctype, data)

    def _post(self, path: str, body: bytes) -> tuple[int, str, bytearray]:
        if self._conn is None:
            self._conn = _Connection(self._host, self._port, self.timeout, self.connect_timeout)
        self._conn.request("POST", path, body=body, headers=self._headers)
        resp = self._conn.getresponse()
        if resp.length is not None:
            data = bytearray(resp.length)
            view, got = memoryview(data), 0
            while got < resp.length:
                n = resp.readinto(view[got:])
                if not n:
                    raise http.client.IncompleteRead(bytes(data[:got]), resp.length - got)
                got += n
        else:
            data = bytearray(resp.read())
        if resp.will_close:
            self._drop()
        return resp.status, resp.getheader("Content-Type", ""), data

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _parse(self, verb: str, status: int, ctype: str, data: bytearray) -> wire.Message:
        if not ctype.startswith(wire.CONTENT_TYPE):
            text = bytes(data[:200]).decode("utf-8", "replace")
            raise RemoteError(
                f"{self.who()} replied to {verb} with HTTP {status} and content type "
                f"{ctype or '(none)'}, not a panbench wire message: is it a panbench server? "
                f"({text!r})"
            )
        try:
            reply = wire.decode(data)
        except wire.WireError as err:
            raise RemoteError(f"{self.who()} sent a malformed reply to {verb}: {err}") from None
        if status != 200:
            error = reply.fields.get("error", f"HTTP {status}")
            raise RemoteError(f"{self.who()} refused {verb}: {error}")
        if reply.version != wire.VERSION:
            raise RemoteError(
                f"{self.who()} speaks wire version {reply.version}, this panbench speaks "
                f"version {wire.VERSION}; install matching panbench versions."
            )
        return reply


class RemoteModel(WorldModel):
    """A world model served from another process or machine, over the panbench wire protocol.

    Args:
        url: the server, ``http://HOST:PORT`` (no credentials: the url is recorded in results;
            the bearer token comes from the environment variable ``PANBENCH_SERVE_TOKEN``).
        timeout: seconds to wait for one reply (a diffusion model's step may need minutes);
            default ``$PANBENCH_REMOTE_TIMEOUT`` or 600. The environment variable is not part
            of the run's arguments, so a resumed run may raise it.
        connect_timeout: seconds to wait for the connection itself.
    """

    def __init__(
        self, url: str, timeout: float | None = None, connect_timeout: float = 10.0
    ) -> None:
        if timeout is None:
            try:
                timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
            except ValueError:
                raise RemoteError(
                    f"Expected ${TIMEOUT_ENV} to be a number of seconds, but got "
                    f"{os.environ[TIMEOUT_ENV]!r}."
                ) from None
        if not float(timeout) > 0 or not float(connect_timeout) > 0:
            raise RemoteError(
                f"Expected positive timeouts, but got timeout={timeout!r}, "
                f"connect_timeout={connect_timeout!r}."
            )
        self._client = _Client(url, float(timeout), connect_timeout)
        self.url = self._client.url
        try:
            self._handshake()
        except BaseException:  # a refused handshake leaves no connection open
            self._client.close()
            raise
        weakref.finalize(self, self._client.close)

    def _handshake(self) -> None:
        """Asks the server for its model (``info``) and accepts only a usable, unprivileged spec."""
        reply = self._client.call("info", {})
        self.server = dict(reply.fields)
        try:
            self.spec = ModelSpec(**_spec_fields(reply.fields.get("spec")))
        except (ContractError, TypeError) as err:
            raise RemoteError(f"{self._who()} sent an unusable model spec: {err}") from None
        if self.spec.privileged:
            raise RemoteError(
                f"{self._who()} serves a privileged model, which cannot run remotely."
            )

    # ------------------------------------------------------------------------------- the calls
    def reset(self, context: Context) -> RemoteState:
        fields = {
            "seeds": [int(s) for s in context.seeds],
            "actions": [[_action(a) for a in past] for past in context.actions],
        }
        reply = self._client.call("reset", fields, {"frames": context.frames})
        return self._handle(reply)

    def step(self, state: RemoteState, actions: Sequence[Action]) -> tuple[RemoteState, np.ndarray]:
        fields = {"state": self._state_id(state), "actions": [_action(a) for a in actions]}
        reply = self._client.call("step", fields)
        frames = reply.arrays.get("frames")
        self._check_frames(frames, len(actions))
        return self._handle(reply), frames  # type: ignore[return-value]

    def clone(self, state: RemoteState) -> RemoteState:
        return self._handle(self._client.call("clone", {"state": self._state_id(state)}))

    def outcomes(self, state: RemoteState) -> tuple[np.ndarray, np.ndarray]:
        reply = self._client.call("outcomes", {"state": self._state_id(state)})
        rewards, terminals = reply.arrays.get("rewards"), reply.arrays.get("terminals")
        if not (
            isinstance(rewards, np.ndarray)
            and isinstance(terminals, np.ndarray)
            and rewards.ndim == 1
            and terminals.shape == rewards.shape
        ):
            raise RemoteError(
                f"{self._who()} replied to outcomes without rewards and terminals of one length "
                f"(got {_shape(rewards)} and {_shape(terminals)})."
            )
        return rewards, terminals

    def for_task(self, task: str) -> dict[str, Any]:
        settings = self._client.call("for_task", {"task": task}).fields.get("settings") or {}
        if not isinstance(settings, dict):
            raise RemoteError(
                f"{self._who()} replied to for_task with {settings!r}, not an object."
            )
        return settings

    def describe(self) -> dict[str, Any]:
        info = dict(self.server.get("info") or {})
        return {
            "remote": {
                "url": self.url,
                "wire_version": wire.VERSION,
                "model": self.spec.name,
                "version": info.pop("version", None),
                "panbench_version": self.server.get("panbench_version"),
            },
            "checkpoint_sha256": info.pop("checkpoint_sha256", None),
            **info,
        }

    def identity(self) -> dict[str, Any]:
        """The served model as the server reports it: a resume behind the same url must find
        the same model, spec, version and checkpoint (else the run is refused, not mixed)."""
        info = self.server.get("info") or {}
        return {
            "spec": self.spec.to_dict(),
            "version": info.get("version"),
            "checkpoint_sha256": info.get("checkpoint_sha256"),
        }

    def close(self) -> None:
        """Releases the states dropped so far and closes the connection."""
        self._client.close()

    # ------------------------------------------------------------------------------- plumbing
    def _who(self) -> str:
        return self._client.who()

    def _handle(self, reply: wire.Message) -> RemoteState:
        state_id = reply.fields.get("state")
        if not isinstance(state_id, str):
            raise RemoteError(f"{self._who()} replied without a state id (got {state_id!r}).")
        handle = RemoteState(state_id)
        weakref.finalize(handle, self._client.released.append, state_id).atexit = False
        return handle

    def _state_id(self, state: Any) -> str:
        if not isinstance(state, RemoteState):
            raise ContractError(
                f"Model {self.spec.name!r} (remote) expected a state it returned, but got "
                f"{type(state).__name__}."
            )
        return state.id

    def _check_frames(self, frames: Any, batch: int) -> None:
        res = self.spec.resolution
        expected = f"uint8 [{batch},{self.spec.frames_per_step},{res or 'H'},{res or 'W'},3]"
        ok = (
            isinstance(frames, np.ndarray)
            and frames.dtype == np.uint8
            and frames.ndim == 5
            and frames.shape[:2] == (batch, self.spec.frames_per_step)
            and frames.shape[4] == 3
            and frames.shape[2] == frames.shape[3]
            and (res is None or frames.shape[2] == res)
        )
        if not ok:
            got = "no frames" if frames is None else f"{frames.dtype} {list(frames.shape)}"
            raise RemoteError(
                f"{self._who()} replied to step with frames {got}, expected {expected}."
            )


def _action(action: Action) -> dict[str, Any]:
    """An action's wire dict (``Action.to_dict`` with plain ints and floats, never numpy's)."""
    out: dict[str, Any] = {"index": int(action.index), "text": str(action.text)}
    out["kind"] = str(action.kind)
    if action.vector is not None:
        out["vector"] = [float(v) for v in action.vector]
    return out


def _shape(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} {list(value.shape)}"
    return "nothing"


def _spec_fields(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise TypeError(f"expected an object, got {spec!r}")
    keys = (
        "name",
        "action_space",
        "resolution",
        "context_frames",
        "frames_per_step",
        "privileged",
        "predicts_rewards",
        "action_dim",
    )
    return {k: spec[k] for k in keys if k in spec and spec[k] is not None}
