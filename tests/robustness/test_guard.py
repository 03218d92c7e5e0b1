"""GuardedModel: every WorldModel method reaches the adapter, under the time limit."""

from __future__ import annotations

import inspect
import signal
import time
from typing import Any

import pytest

from panbench.errors import ConfigError, ContractError
from panbench.models.api import WorldModel
from panbench.models.baselines import CopyLastModel
from panbench.models.guard import GuardedModel, ModelTimeout, deadline


def test_every_worldmodel_method_is_guarded() -> None:
    public = {n for n, _ in inspect.getmembers(WorldModel, inspect.isfunction) if n[0] != "_"}
    missing = sorted(n for n in public if n not in vars(GuardedModel))
    assert not missing, f"GuardedModel would answer {missing} itself, not the adapter"


class _Described(CopyLastModel):
    def describe(self) -> dict[str, Any]:
        return {"checkpoint_sha256": "ab" * 32}

    def identity(self) -> dict[str, Any]:
        return {"served": "model-x"}

    def for_task(self, task: str) -> dict[str, Any]:
        return {"steps": len(task)}


def test_the_adapter_answers_through_the_guard() -> None:
    guarded = GuardedModel(_Described(), seconds=5)
    assert guarded.identity() == {"served": "model-x"}
    assert guarded.describe() == {"checkpoint_sha256": "ab" * 32}
    assert guarded.for_task("abc") == {"steps": 3}
    assert guarded.spec is guarded.inner.spec


class _Failing(CopyLastModel):
    def for_task(self, task: str) -> dict[str, Any]:
        raise ConfigError("bad steps for this task")

    def identity(self) -> dict[str, Any]:
        raise KeyError("server")


def test_panbench_errors_pass_through_and_others_become_contract_errors() -> None:
    guarded = GuardedModel(_Failing())
    with pytest.raises(ConfigError, match="bad steps"):
        guarded.for_task("t")
    with pytest.raises(ContractError, match=r"expected identity\(\) to return, but it raised "):
        guarded.identity()


def test_deadline_interrupts_and_restores_the_previous_handler() -> None:
    before = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    with pytest.raises(ModelTimeout, match="too slow"), deadline(0.2, lambda: "too slow"):
        time.sleep(5)
    assert time.monotonic() - started < 3
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    with deadline(1.0, lambda: "unused"):
        pass  # a fast block: no alarm fires later
    time.sleep(0.05)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
