"""Guards every call into a world model: a time limit (``--model-timeout``), exceptions as contract errors."""

from __future__ import annotations

import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from panbench.envs.base import Action
from panbench.errors import ContractError, PanbenchError
from panbench.models.api import Context, WorldModel

__all__ = ["GuardedModel", "ModelTimeout", "deadline"]

T = TypeVar("T")


class ModelTimeout(ContractError):
    """An adapter call ran past the time limit."""


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def deadline(seconds: float | None, message: Callable[[], str]) -> Iterator[None]:
    """Raises :class:`ModelTimeout` inside the block once ``seconds`` have passed.

    Uses ``SIGALRM``: the block is interrupted at the next Python bytecode (a call blocked in C
    code for longer is interrupted when it returns to Python). Without ``SIGALRM`` (Windows,
    or outside the main thread) the block runs unbounded.

    Args:
        seconds: the limit; None for none.
        message: builds the error's message (called only on a timeout).
    """
    if seconds is None or not _can_alarm():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise ModelTimeout(message())

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class GuardedModel(WorldModel):
    """Wraps a world model so that each call into it keeps to the contract or is refused.

    Each call (``to``, ``for_task``, ``reset``, ``step``, ``clone``, ``imagine_differentiable``,
    ``describe``, ``identity``;
    every method of :class:`WorldModel`, which a test keeps true) must return
    within ``seconds`` (when given), and an exception other than panbench's own becomes a
    :class:`ContractError` naming the adapter, the call and the exception (chained, so
    ``--debug`` shows where it came from). ``KeyboardInterrupt`` passes through.

    Args:
        model: the adapter to guard.
        seconds: the limit per call, > 0; None for no limit.
    """

    def __init__(self, model: WorldModel, seconds: float | None = None) -> None:
        self.inner = model
        self.seconds = None if seconds is None else float(seconds)
        self.spec = model.spec
        if self.seconds is not None and not _can_alarm():
            warnings.warn(
                "--model-timeout needs SIGALRM in the main thread; calls run unbounded here.",
                RuntimeWarning,
                stacklevel=2,
            )

    def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        name = self.spec.name

        def message() -> str:
            return (
                f"Model {name!r} broke the WorldModel contract: expected {what}() to return "
                f"within --model-timeout {self.seconds:g} s, but it was still running. Raise "
                "--model-timeout or fix the adapter; finished episodes are kept and a rerun "
                "resumes."
            )

        try:
            with deadline(self.seconds, message):
                return fn(*args)
        except PanbenchError:
            raise
        except Exception as err:
            raise ContractError(
                f"Model {name!r} broke the WorldModel contract: expected {what}() to return, "
                f"but it raised {type(err).__name__}: {err}. Fix the adapter (--debug shows "
                "where); finished episodes are kept and a rerun resumes."
            ) from err

    def to(self, device: str) -> WorldModel:
        self.inner = self._call("to", self.inner.to, device)
        return self

    def reset(self, context: Context) -> Any:
        return self._call("reset", self.inner.reset, context)

    def step(self, state: Any, actions: Sequence[Action]) -> tuple[Any, np.ndarray]:
        return self._call("step", self.inner.step, state, actions)

    def clone(self, state: Any) -> Any:
        return self._call("clone", self.inner.clone, state)

    def outcomes(self, state: Any) -> tuple[np.ndarray, np.ndarray]:
        return self._call("outcomes", self.inner.outcomes, state)

    def imagine_differentiable(self, state: Any, actions: Any) -> Any:
        return self._call(
            "imagine_differentiable", self.inner.imagine_differentiable, state, actions
        )

    def describe(self) -> dict[str, Any]:
        return self._call("describe", self.inner.describe)

    def for_task(self, task: str) -> dict[str, Any]:
        return self._call("for_task", self.inner.for_task, task)

    def identity(self) -> dict[str, Any]:
        return self._call("identity", self.inner.identity)

    def __getattr__(self, name: str) -> Any:  # anything else an adapter offers (planners, ...)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
