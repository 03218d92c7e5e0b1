"""The panbench wire protocol: one versioned binary message format for requests and replies.

A message is ``MAGIC`` (4 bytes), the header length (uint32, little-endian), a UTF-8 JSON header,
then the raw bytes of each array the header lists, in order, C-contiguous. The header carries the
protocol version (``"wire"``), plain JSON fields (ids, actions, seeds, options) and, under
``"arrays"``, each array's name, dtype and shape. Nothing in a message is ever executed or
unpickled: arrays are rebuilt with :func:`numpy.frombuffer` from a fixed list of dtypes, and every
length, shape and dtype is checked against the bytes actually received.

This module needs numpy and the standard library only, so a model author's environment can
import it (with :mod:`panbench.serve.server`) without the rest of panbench's dependencies.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CONTENT_TYPE",
    "DTYPES",
    "MAGIC",
    "MAX_HEADER_BYTES",
    "TOKEN_ENV",
    "VERSION",
    "Message",
    "WireError",
    "decode",
    "encode",
]

#: the protocol version; bump it whenever a field, an endpoint or the layout changes meaning
VERSION = 1
MAGIC = b"PBW\x00"
CONTENT_TYPE = "application/x-panbench-wire"
#: the only dtypes an array may have on the wire (frames are uint8; actions and rewards float)
DTYPES = frozenset({"uint8", "int32", "int64", "float32", "float64", "bool"})
MAX_HEADER_BYTES = 16 * 1024 * 1024
#: the environment variable holding the bearer token, read by the server and the client alike
TOKEN_ENV = "PANBENCH_SERVE_TOKEN"
_PREFIX = struct.Struct("<4sI")


class WireError(ValueError):
    """A message does not follow the wire protocol (says what was expected and what came)."""


@dataclass
class Message:
    """A decoded message: its JSON fields and its arrays by name.

    Attributes:
        fields: the header's JSON fields (without ``wire`` and ``arrays``).
        arrays: the arrays by name, each a numpy view of the message's bytes.
        version: the wire version the sender declared.
    """

    fields: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    version: int = VERSION


def encode(fields: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None) -> bytes:
    """Builds a message from JSON-serialisable ``fields`` and numpy ``arrays``.

    Raises:
        WireError: an array's dtype is not one of :data:`DTYPES`, or a field is reserved.
    """
    if "wire" in fields or "arrays" in fields:
        raise WireError("Expected message fields other than 'wire' and 'arrays' (reserved).")
    specs = []
    blobs = []
    for name, value in (arrays or {}).items():
        arr = np.asarray(value)
        if arr.dtype.name not in DTYPES:
            raise WireError(
                f"Expected array {name!r} to have one of the dtypes {sorted(DTYPES)}, "
                f"but got {arr.dtype.name}."
            )
        arr = np.ascontiguousarray(arr)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        specs.append({"name": name, "dtype": arr.dtype.name, "shape": list(arr.shape)})
        blobs.append(arr.data if arr.size else b"")
    header = json.dumps(
        {"wire": VERSION, **fields, "arrays": specs}, allow_nan=False, separators=(",", ":")
    ).encode()
    return b"".join([_PREFIX.pack(MAGIC, len(header)), header, *blobs])


def decode(body: bytes | bytearray | memoryview) -> Message:
    """Parses a message; arrays are views of ``body`` (writable where ``body`` is a bytearray).

    Raises:
        WireError: a wrong magic, a header that is not a JSON object, an array spec that is
            malformed or of a dtype not allowed, or a body whose length does not match the
            arrays it declares.
    """
    view = memoryview(body)
    if len(view) < _PREFIX.size:
        raise WireError(
            f"Expected a panbench wire message of at least {_PREFIX.size} bytes, but got "
            f"{len(view)} bytes."
        )
    magic, size = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise WireError(
            f"Expected a panbench wire message (starting with {MAGIC!r}), but it starts with "
            f"{bytes(magic)!r}."
        )
    if size > MAX_HEADER_BYTES or _PREFIX.size + size > len(view):
        raise WireError(
            f"Expected a header of at most {min(MAX_HEADER_BYTES, len(view) - _PREFIX.size)} "
            f"bytes, but the message declares {size}."
        )
    try:
        header = json.loads(bytes(view[_PREFIX.size : _PREFIX.size + size]))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WireError(f"Expected a JSON header, but it does not parse: {err}.") from None
    if not isinstance(header, dict):
        raise WireError(
            f"Expected the header to be a JSON object, but got {type(header).__name__}."
        )
    version = header.pop("wire", None)
    if isinstance(version, bool) or not isinstance(version, int):
        raise WireError(f"Expected an integer 'wire' version in the header, but got {version!r}.")
    specs = header.pop("arrays", [])
    offset = _PREFIX.size + size
    arrays: dict[str, np.ndarray] = {}
    if not isinstance(specs, list):
        raise WireError(f"Expected 'arrays' to be a list, but got {type(specs).__name__}.")
    for spec in specs:
        name, dtype, shape = _array_spec(spec)
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if offset + nbytes > len(view):
            raise WireError(
                f"Expected {nbytes} bytes for array {name!r} {dtype}{list(shape)}, but only "
                f"{len(view) - offset} remain in the message."
            )
        flat = np.frombuffer(
            view,
            dtype=np.dtype(dtype).newbyteorder("<"),
            count=nbytes // np.dtype(dtype).itemsize,
            offset=offset,
        )
        arrays[name] = flat.reshape(shape)
        offset += nbytes
    if offset != len(view):
        raise WireError(
            f"Expected the message to end after its arrays ({offset} bytes), but it has "
            f"{len(view)} bytes."
        )
    return Message(fields=header, arrays=arrays, version=version)


def _array_spec(spec: Any) -> tuple[str, str, tuple[int, ...]]:
    if not isinstance(spec, dict):
        raise WireError(f"Expected each array spec to be an object, but got {spec!r}.")
    name, dtype, shape = spec.get("name"), spec.get("dtype"), spec.get("shape")
    if not isinstance(name, str):
        raise WireError(f"Expected an array name (a string), but got {name!r}.")
    if dtype not in DTYPES:
        raise WireError(
            f"Expected array {name!r} to have one of the dtypes {sorted(DTYPES)}, but got "
            f"{dtype!r}."
        )
    if not (
        isinstance(shape, list)
        and len(shape) <= 8
        and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31 for d in shape)
    ):
        raise WireError(
            f"Expected array {name!r} to have a shape of at most 8 non-negative integers, but "
            f"got {shape!r}."
        )
    return name, dtype, tuple(shape)
