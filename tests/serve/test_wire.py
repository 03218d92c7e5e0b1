"""The wire format: exact round trips, a layout readable without panbench, refusals."""

from __future__ import annotations

import json
import pickle
import struct

import numpy as np
import pytest

from panbench.serve import wire


def _by_hand(header: dict, *blobs: bytes) -> bytes:
    """A message built from the documented layout alone (magic, uint32 LE length, JSON, bytes)."""
    text = json.dumps(header).encode()
    return b"PBW\x00" + struct.pack("<I", len(text)) + text + b"".join(blobs)


def test_round_trip_keeps_fields_and_arrays_exactly() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 2, 5, 5, 3), dtype=np.uint8)
    vector = rng.normal(size=(3, 2))
    body = wire.encode({"seeds": [1, 2, 3], "text": "move up"}, {"frames": frames, "v": vector})
    message = wire.decode(bytearray(body))
    assert message.version == wire.VERSION
    assert message.fields == {"seeds": [1, 2, 3], "text": "move up"}
    assert message.arrays["frames"].dtype == np.uint8
    np.testing.assert_array_equal(message.arrays["frames"], frames)
    np.testing.assert_array_equal(message.arrays["v"], vector)  # float64 bits unchanged
    assert message.arrays["frames"].flags.writeable  # a bytearray body gives writable arrays


def test_layout_matches_the_documented_format() -> None:
    frames = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)
    by_hand = _by_hand(
        {
            "wire": 1,
            "state": "a",
            "arrays": [{"name": "f", "dtype": "uint8", "shape": [1, 2, 2, 3]}],
        },
        frames.tobytes(),
    )
    message = wire.decode(by_hand)
    assert message.fields == {"state": "a"}
    np.testing.assert_array_equal(message.arrays["f"], frames)
    encoded = wire.encode({"state": "a"}, {"f": frames})
    assert encoded.endswith(frames.tobytes())
    (size,) = struct.unpack_from("<I", encoded, 4)
    assert json.loads(encoded[8 : 8 + size])["arrays"][0]["shape"] == [1, 2, 2, 3]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"PBW", "at least 8 bytes"),
        (pickle.dumps({"frames": 1}), "starting with"),
        (_by_hand([1, 2]), "JSON object"),
        (b"PBW\x00" + struct.pack("<I", 3) + b"{x}", "does not parse"),
        (_by_hand({"arrays": []}), "'wire' version"),
        (
            _by_hand({"wire": 1, "arrays": [{"name": "a", "dtype": "object", "shape": [1]}]}),
            "dtypes",
        ),
        (
            _by_hand({"wire": 1, "arrays": [{"name": "a", "dtype": "uint8", "shape": [-1]}]}),
            "shape",
        ),
        (
            _by_hand({"wire": 1, "arrays": [{"name": "a", "dtype": "uint8", "shape": [4]}]}, b"ab"),
            "2 remain",
        ),
        (_by_hand({"wire": 1, "arrays": []}, b"extra"), "to end after"),
        (b"PBW\x00" + struct.pack("<I", 10**9) + b"{}", "declares 1000000000"),
    ],
)
def test_malformed_messages_are_refused_saying_what_was_expected(
    body: bytes, expected: str
) -> None:
    with pytest.raises(wire.WireError, match=expected):
        wire.decode(body)


def test_encode_refuses_object_arrays_and_reserved_fields() -> None:
    with pytest.raises(wire.WireError, match="dtypes"):
        wire.encode({}, {"a": np.array([{"x": 1}], dtype=object)})
    with pytest.raises(wire.WireError, match="reserved"):
        wire.encode({"wire": 2})
