"""Fixtures for the judge tests: loopback-only sockets and a scripted chat-completions server."""

from __future__ import annotations

import _socket
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture
def loopback_only(_no_network: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets sockets reach 127.0.0.1 only; the suite-wide guard still refuses every other host."""
    real_connect = _socket.socket.connect  # the C method the suite-wide guard shadows

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if host not in LOOPBACK:
            raise RuntimeError(f"tests must not use the network (connect to {address!r})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@dataclass
class Reply:
    """One scripted HTTP answer."""

    status: int = 200
    body: Any = None  # dict -> JSON; bytes -> as is; None -> a completion with `content`
    content: str = "2"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeChatServer:
    """An OpenAI-style chat-completions server on 127.0.0.1 answering from a script.

    Scripted replies are used in order; once they run out, every request gets a completion
    whose content is :attr:`default`.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: list[Reply] = []
        self.default = "2"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                server.requests.append(Request(self.path, dict(self.headers.items()), body))
                reply = server.script.pop(0) if server.script else Reply(content=server.default)
                if reply.body is None:
                    payload = json.dumps(
                        {
                            "id": "chatcmpl-test",
                            "object": "chat.completion",
                            "model": body.get("model"),
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": reply.content},
                                    "finish_reason": "stop",
                                }
                            ],
                        }
                    ).encode()
                elif isinstance(reply.body, bytes):
                    payload = reply.body
                else:
                    payload = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def chat_server(loopback_only: None) -> Iterator[FakeChatServer]:
    with FakeChatServer() as server:
        yield server
