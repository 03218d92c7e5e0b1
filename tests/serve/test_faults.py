"""Every fault stops the run with exit 2 and a message naming the server, never a traceback."""

from __future__ import annotations

import http.server
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from panbench.cli import main
from panbench.errors import RemoteError
from panbench.models import remote
from panbench.models.api import Context
from panbench.models.remote import TIMEOUT_ENV, RemoteModel
from panbench.serve import wire
from panbench.serve.process import ServerProcess
from panbench.serve.server import ServeError, check_bind
from tests.models.runs import small_tasks
from tests.serve.models import SLEEP_ENV


def _evaluate(url: str, extra_args: str = "") -> list[str]:
    args = f"url={url}" + (f",{extra_args}" if extra_args else "")
    task = small_tasks(("small-choice",))[0]
    return ["evaluate", "--model", "remote", "--model-args", args, "--tasks", task]


def _run(argv: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code = main([*argv, "--out", str(out), "--no-progress", "--limit", "2"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return " ".join(err.split())  # rich wraps long lines


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused_connection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    err = _run(_evaluate(url), tmp_path / "out", capsys)
    assert f"Remote model server {url} refused the connection" in err


def test_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with ServerProcess("tests.serve.models:SlowModel", env={SLEEP_ENV: "3"}) as srv:
        err = _run(_evaluate(srv.url, "timeout=0.5"), tmp_path / "out", capsys)
        assert f"{srv.url} did not answer step within 0.5 s" in err
        # The environment's timeout is not a run argument: a resume may change it.
        monkeypatch.setenv(TIMEOUT_ENV, "0.25")
        err = _run(_evaluate(srv.url), tmp_path / "env", capsys)
        # (info or step: the server may still be busy with the step that timed out before)
        assert re.search(r"did not answer (info|step) within 0\.25 s", err) and TIMEOUT_ENV in err
        monkeypatch.setenv(TIMEOUT_ENV, "soon")
        err = _run(_evaluate(srv.url), tmp_path / "env", capsys)
        assert f"Expected ${TIMEOUT_ENV} to be a number of seconds, but got 'soon'" in err


def test_wrong_shape_reply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with ServerProcess("tests.serve.models:WrongShapeModel") as srv:
        err = _run(_evaluate(srv.url), tmp_path / "out", capsys)
    assert f"{srv.url} replied to step with frames uint8 [1, 1, 32, 32, 3]" in err
    assert "expected uint8 [2,1,H,W,3]" in err


class _Fake(http.server.BaseHTTPRequestHandler):
    """A server that is not panbench's: replies ``reply`` to every request."""

    reply: tuple[str, bytes] = ("text/html", b"<html>hello</html>")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        ctype, body = self.reply
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake() -> Iterator[tuple[str, type[_Fake]]]:
    handler = type("Handler", (_Fake,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _newer_wire(fields: dict) -> bytes:
    body = bytearray(wire.encode(fields))
    return bytes(body).replace(b'"wire":1', b'"wire":2', 1)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            ("text/html", b"<html>hello</html>"),
            "content type text/html, not a panbench wire message",
        ),
        ((wire.CONTENT_TYPE, b"PBW\x00garbage"), "sent a malformed reply to info"),
        ((wire.CONTENT_TYPE, _newer_wire({"spec": {"name": "x"}})), "speaks wire version 2, this"),
    ],
    ids=["not-panbench", "malformed", "version-mismatch"],
)
def test_malformed_or_foreign_replies(
    fake: tuple[str, type[_Fake]],
    reply: tuple[str, bytes],
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, handler = fake
    handler.reply = reply
    err = _run(_evaluate(url), tmp_path / "out", capsys)
    assert f"Remote model server {url}" in err and expected in err


def _post_raw(url: str, path: str, body: bytes) -> tuple[bytes, wire.Message]:
    host, port = url[len("http://") :].rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        sock.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    return head, wire.decode(payload)


@pytest.fixture(scope="module")
def copy_last() -> Iterator[ServerProcess]:
    with ServerProcess("copy-last") as srv:
        yield srv


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/info", _newer_wire({})), ("/v2/info", wire.encode({}))],
    ids=["header", "path"],
)
def test_server_refuses_a_client_of_another_wire_version(
    copy_last: ServerProcess, path: str, body: bytes
) -> None:
    head, message = _post_raw(copy_last.url, path, body)
    assert head.startswith(b"HTTP/1.1 409")
    assert message.fields["code"] == "version"
    assert "client speaks wire version 2, this server speaks version 1" in message.fields["error"]


def test_server_refuses_unknown_calls_with_a_wire_reply(copy_last: ServerProcess) -> None:
    head, message = _post_raw(copy_last.url, "/v1/__init__", wire.encode({}))
    assert head.startswith(b"HTTP/1.1 404")
    assert message.fields["code"] == "call"
    assert "Expected one of the calls" in message.fields["error"]


def test_server_that_dies_mid_run_and_unknown_states(tmp_path: Path) -> None:
    with ServerProcess("copy-last") as srv:
        model = RemoteModel(srv.url)
        frames = np.zeros((2, 1, 8, 8, 3), np.uint8)
        state = model.reset(Context(frames=frames, actions=[[], []], seeds=[0, 1]))
        srv.stop(kill=True)
        with pytest.raises(RemoteError, match=r"closed the connection during step|refused"):
            model.step(state, [])
        srv.start(port=srv.port)  # back, but the states died with the old process
        with pytest.raises(
            RemoteError, match=r"refused clone: unknown state id .* made before this server started"
        ):
            model.clone(state)


def test_request_size_is_bounded() -> None:
    with ServerProcess("copy-last", extra=["--max-request-mb", "0.01"]) as srv:
        model = RemoteModel(srv.url)
        frames = np.zeros((4, 2, 32, 32, 3), np.uint8)  # 24 KiB > 10 KiB
        with pytest.raises(RemoteError, match="exceeds this server's limit of 10485 bytes"):
            model.reset(Context(frames=frames, actions=[[]] * 4, seeds=[0, 1, 2, 3]))
        # Without a Content-Length the body is counted as it streams in, and refused too.
        host, port = srv.url[len("http://") :].rsplit(":", 1)
        body = wire.encode({"seeds": [0, 1, 2, 3], "actions": [[]] * 4}, {"frames": frames})
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        with socket.create_connection((host, int(port))) as sock:
            head = "POST /v1/reset HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            sock.sendall(head.encode() + b"Connection: close\r\n\r\n" + chunked)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 413")


def test_token_is_required_when_the_server_has_one(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[remote._Client] = []
    close = remote._Client.close
    monkeypatch.setattr(remote._Client, "close", lambda self: (closed.append(self), close(self))[1])
    with ServerProcess("copy-last", env={wire.TOKEN_ENV: "s3cret"}) as srv:
        monkeypatch.delenv(wire.TOKEN_ENV, raising=False)
        with pytest.raises(RemoteError, match="refused info: this server requires its bearer"):
            RemoteModel(srv.url)
        monkeypatch.setenv(wire.TOKEN_ENV, "wrong")
        with pytest.raises(RemoteError, match="bearer token"):
            RemoteModel(srv.url)
        # each refused handshake closed its connection at once, not at garbage collection
        assert len(closed) == 2 and all(c._conn is None for c in closed)
        monkeypatch.setenv(wire.TOKEN_ENV, "s3cret")
        assert RemoteModel(srv.url).spec.name == "copy-last"


def test_credentials_in_the_url_are_refused() -> None:
    with pytest.raises(RemoteError, match="without credentials"):
        RemoteModel("http://user:pw@127.0.0.1:1")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_non_loopback_without_token_refuses_to_start(
    host: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(wire.TOKEN_ENV, raising=False)
    assert main(["serve", "--model", "copy-last", "--host", host, "--port", "0"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"Refusing to serve on '{host}' without a token" in err and "Traceback" not in err


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_needs_no_token(host: str) -> None:
    check_bind(host, None)
    with pytest.raises(ServeError):
        check_bind("10.0.0.1", None)
    check_bind("10.0.0.1", "token")


def test_privileged_models_are_not_served(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model", "oracle", "--port", "0"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Model 'oracle' is privileged" in err and "Traceback" not in err


def test_server_modules_import_without_the_rest_of_panbench() -> None:
    code = (
        "import sys; import panbench.serve.server, panbench.serve.backend; "
        "heavy = [m for m in ('torch', 'yaml', 'rich', 'scipy', 'panbench.models', "
        "'panbench.envs', 'starlette', 'uvicorn') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # starlette and uvicorn load only when serving
