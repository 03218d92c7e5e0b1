"""Progress for long commands: a live bar on a terminal, periodic plain lines in a log.

A researcher running ``panbench evaluate ... > run.log`` must see that a 25-minute task is
working, so when the console is not a terminal a :class:`Reporter` prints one plain line when a
task starts, one every ``interval`` seconds from a heartbeat thread (also while a slow batch
runs), and one when it ends. Every line names the model, the task, episodes done/total, the
elapsed time and an ETA. Commands that run several models or tasks add an overall line/bar with
:meth:`Reporter.overall`.

Example:
    >>> from rich.console import Console
    >>> import io
    >>> rep = Reporter(Console(file=io.StringIO()), interval=60)
    >>> with rep.task("oracle", "shapes-rollout", total=4) as advance:
    ...     advance(4)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

DEFAULT_INTERVAL = 30.0
"""Seconds between plain progress lines when the output is not a terminal."""

INTERVAL_ENV = "PANBENCH_PROGRESS_INTERVAL"


def format_seconds(seconds: float | None) -> str:
    """``75.2`` -> ``"1m15s"``; ``None`` -> ``"?"`` (no rate yet)."""
    if seconds is None:
        return "?"
    s = round(max(seconds, 0.0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def eta_seconds(done: int, total: int, elapsed: float) -> float | None:
    """The time left at the rate so far; None before the first unit finishes."""
    if done <= 0 or elapsed <= 0:
        return None
    return (total - done) * elapsed / done


@dataclass
class _Count:
    """Units done of a total, and since when (units reused from a resume are not timed)."""

    total: int
    done: int = 0
    reused: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self, unit: str) -> str:
        elapsed = time.monotonic() - self.started
        eta = eta_seconds(self.done - self.reused, self.total - self.reused, elapsed)
        text = f"{self.done}/{self.total} {unit}, elapsed {format_seconds(elapsed)}"
        if self.done >= self.total:
            return text
        left = format_seconds(eta) if eta is not None else "? (first batch running)"
        return f"{text}, ETA {left}"


class Reporter:
    """Progress of one command, on a rich console.

    Args:
        console: the rich console to write to (``console.is_terminal`` picks bars or lines).
        enabled: False prints nothing (``--no-progress``).
        interval: seconds between plain lines (default: ``$PANBENCH_PROGRESS_INTERVAL`` or 30).
        live: force bars (True) or plain lines (False); default: bars on a terminal.
    """

    def __init__(
        self,
        console: Any = None,
        *,
        enabled: bool = True,
        interval: float | None = None,
        live: bool | None = None,
    ) -> None:
        if console is None:
            from rich.console import Console

            console = Console(highlight=False)
        self.console = console
        self.enabled = enabled
        if interval is None:
            interval = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL))
        self.interval = interval
        self.live = console.is_terminal if live is None else live
        self._overall: _Count | None = None
        self._overall_unit = ""
        self._bars: Any = None
        self._overall_id: Any = None

    # ----------------------------------------------------------------------------- overall
    def overall(self, total: int, unit: str) -> None:
        """Starts an overall count (e.g. 4 models, 24 tasks) shown beside every task's progress."""
        self._overall = _Count(total)
        self._overall_unit = unit
        if self.enabled and self.live:
            self._start_bars()
            self._overall_id = self._bars.add_task(f"overall ({unit})", total=total)

    def overall_advance(self, k: int = 1) -> None:
        """Counts ``k`` more overall units as done."""
        if self._overall is None:
            return
        self._overall.done += k
        if self._bars is not None and self._overall_id is not None:
            self._bars.advance(self._overall_id, k)
        elif self.enabled and not self.live:
            self.say(f"overall: {self._overall.line(self._overall_unit)}")

    def close(self) -> None:
        """Stops the live bars (call once the command's work is done)."""
        if self._bars is not None:
            self._bars.stop()
            self._bars = None
            self._overall_id = None

    # ----------------------------------------------------------------------------- tasks
    def say(self, text: str) -> None:
        """Prints a one-line notice (above the bars on a terminal)."""
        if not self.enabled:
            return
        from rich.markup import escape

        target = self._bars.console if self._bars is not None else self.console
        target.print(escape(text), soft_wrap=True, highlight=False)

    @contextmanager
    def task(
        self, model: str, task: str, total: int, reused: int = 0, unit: str = "episodes"
    ) -> Iterator[Callable[[int], None]]:
        """Progress of one task; yields ``advance(k)``, called as ``k`` more units finish.

        Args:
            model: the model's name, shown on every line.
            task: the task's name.
            total: units of this task (this rank's episodes).
            reused: units finished by an earlier run and reused (a resume); said once.
            unit: what is counted.
        """
        if not self.enabled:
            yield lambda k: None
            return
        label = f"{model} · {task}"
        count = _Count(total, done=reused, reused=reused)
        if reused:
            self.say(f"{label}: resuming, reused {reused} of {total} {unit} finished earlier")
        if self.live:
            with self._live_task(label, count, unit) as advance:
                yield advance
        else:
            with self._plain_task(label, count, unit) as advance:
                yield advance

    def _start_bars(self) -> None:
        if self._bars is not None:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bars = Progress(
            "[bold]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            "elapsed",
            TimeElapsedColumn(),
            "ETA",
            TimeRemainingColumn(),
            console=self.console,
        )
        self._bars.start()

    @contextmanager
    def _live_task(self, label: str, count: _Count, unit: str) -> Iterator[Callable[[int], None]]:
        own = self._bars is None
        self._start_bars()
        bars = self._bars
        tid = bars.add_task(label, total=count.total, completed=count.done)

        def advance(k: int) -> None:
            count.done += k
            bars.advance(tid, k)

        try:
            yield advance
        finally:
            if own:
                self.close()
            else:  # the overall bar stays; a finished task leaves one line in its place
                bars.remove_task(tid)
                self.say(f"{label}: {count.line(unit)}")

    @contextmanager
    def _plain_task(self, label: str, count: _Count, unit: str) -> Iterator[Callable[[int], None]]:
        lock = threading.Lock()
        stop = threading.Event()

        def line() -> str:
            text = f"{label}: {count.line(unit)}"
            if self._overall is not None:
                text += (
                    f" | overall {self._overall.done}/{self._overall.total} {self._overall_unit}"
                )
            return text

        def heartbeat() -> None:
            while not stop.wait(self.interval):
                with lock:
                    self.say(line())

        def advance(k: int) -> None:
            with lock:
                count.done += k

        self.say(f"{label}: started, {count.total - count.done} {unit} to run")
        beat = threading.Thread(target=heartbeat, name="panbench-progress", daemon=True)
        beat.start()
        try:
            yield advance
        except BaseException:
            stop.set()
            beat.join()
            self.say(f"{label}: stopped at {count.line(unit)}")
            raise
        stop.set()
        beat.join()
        self.say(f"{label}: done, {count.line(unit)}")


def step_timing(done: int, first: int, stop: int, elapsed: float) -> str:
    """``"elapsed 1m02s, ETA 3m10s"`` for a loop at step ``done`` that started at ``first``.

    Example:
        >>> step_timing(30, 10, 50, 20.0)
        'elapsed 20s, ETA 20s'
    """
    eta = eta_seconds(done - first, stop - first, elapsed)
    return f"elapsed {format_seconds(elapsed)}, ETA {format_seconds(eta)}"
