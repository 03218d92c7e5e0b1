"""Actions and contexts cross the wire unchanged; states live in the store until released."""

from __future__ import annotations

import json

import numpy as np
import pytest

from panbench.envs.base import NO_INDEX, Action
from panbench.errors import RemoteError
from panbench.models.api import Context
from panbench.models.remote import _action, _Client
from panbench.serve import wire
from panbench.serve.adapter import AdapterBackend, action_from_wire
from panbench.serve.backend import StateStore, UnknownStateError
from tests.serve.models import NoisyModel


@pytest.mark.parametrize(
    "action",
    [
        Action(3, "push the red block left", vector=(np.float32(0.1), -0.5, 1e-300)),
        Action(0, "move up"),
        Action.text_only("open the door", kind="intervention"),
    ],
)
def test_actions_survive_the_wire(action: Action) -> None:
    # Through JSON and back, as a request does.
    sent = wire.decode(wire.encode({"a": _action(action)})).fields["a"]
    back = action_from_wire(json.loads(json.dumps(sent)))
    assert back == action  # index, text, kind
    assert back.kind == action.kind and back.has_index == (action.index != NO_INDEX)
    if action.vector is None:
        assert back.vector is None
    else:
        assert back.vector == tuple(float(v) for v in action.vector)


def test_adapter_backend_matches_the_adapter() -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (2, 2, 8, 8, 3), dtype=np.uint8)
    acts = [[Action(1, "a")], [Action(2, "b")]]
    backend, model = AdapterBackend(NoisyModel(), "noisy"), NoisyModel()
    state = backend.reset(frames, [[_action(a) for a in p] for p in acts], [5, 6])
    ref = model.reset(Context(frames=frames, actions=acts, seeds=[5, 6]))
    step = [Action(1, "x"), Action(3, "y")]
    _, got = backend.step(state, [_action(a) for a in step])
    _, want = model.step(ref, step)
    np.testing.assert_array_equal(got, want)
    assert backend.spec()["name"] == "noisy" and backend.info()["adapter"] == "noisy"


def test_state_store_ids_are_opaque_per_server_run_and_bounded() -> None:
    first, second = StateStore(max_states=2), StateStore(max_states=2)
    key = first.put("s")
    assert first.get(key) == "s"
    with pytest.raises(UnknownStateError, match="made before this server started"):
        second.get(key)  # another server run never accepts this id
    first.put("t")
    with pytest.raises(MemoryError, match="does not release"):
        first.put("u")
    first.release([key, 12, None])
    assert len(first) == 1
    with pytest.raises(UnknownStateError):
        first.get(key)


def test_unencodable_requests_are_refused_before_sending() -> None:
    client = _Client("http://127.0.0.1:9", 1.0, 1.0)  # no server: the request never leaves
    with pytest.raises(RemoteError, match="Cannot send step"):
        client.call("step", {"actions": [{"vector": [float("nan")]}]})
