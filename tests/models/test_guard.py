"""GuardedModel wraps every evaluated adapter: it must pass every WorldModel method through."""

from __future__ import annotations

import inspect
from typing import Any

from panbench.models.api import WorldModel
from panbench.models.guard import GuardedModel
from panbench.models.registry import load_model


def test_every_worldmodel_method_is_passed_through_not_inherited() -> None:
    # A method inherited from WorldModel would answer with the base class's default instead of
    # the adapter's own (a served model's identity was lost this way).
    public = [n for n, _ in inspect.getmembers(WorldModel, inspect.isfunction) if n[0] != "_"]
    inherited = [n for n in public if getattr(GuardedModel, n) is getattr(WorldModel, n)]
    assert inherited == []


def test_identity_and_settings_come_from_the_adapter() -> None:
    inner = load_model("copy-last", None)

    class WithIdentity(type(inner)):  # type: ignore[misc]
        def identity(self) -> dict[str, Any]:
            return {"checkpoint_sha256": "cd" * 32}

    inner.__class__ = WithIdentity
    guarded = GuardedModel(inner)
    assert guarded.identity() == {"checkpoint_sha256": "cd" * 32}
    assert guarded.describe() == inner.describe()
    assert guarded.spec == inner.spec
