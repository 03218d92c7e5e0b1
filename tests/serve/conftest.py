"""Serve tests talk to servers on this machine: loopback connections only, nothing beyond."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

_REAL_CONNECT = socket.socket.connect
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def _loopback_only(_no_network: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Allows connections to loopback addresses; any other connection fails loudly."""

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if host not in _LOOPBACK:
            raise RuntimeError(f"tests must not use the network (connect to {address!r})")
        _REAL_CONNECT(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="module")
def tmp_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("serve")
