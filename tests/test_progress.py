"""Progress: live bars on a terminal, periodic plain lines in a log, resume notices."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from rich.console import Console

from panbench.harness import evaluate
from panbench.progress import Reporter, eta_seconds, format_seconds
from tests.models.runs import small_tasks


def _log() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, force_terminal=False), buffer


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0s"), (59.6, "1m00s"), (75.2, "1m15s"), (3725, "1h02m")]
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_eta_is_the_rate_so_far() -> None:
    assert eta_seconds(0, 10, 5.0) is None
    assert eta_seconds(2, 10, 5.0) == pytest.approx(20.0)
    assert eta_seconds(10, 10, 5.0) == 0.0


def test_a_log_gets_heartbeat_lines_while_a_batch_runs() -> None:
    console, buffer = _log()
    reporter = Reporter(console, interval=0.05)
    assert not reporter.live
    with reporter.task("pan-ref", "env-sim", total=4) as advance:
        advance(2)
        time.sleep(0.4)  # a slow batch: no advance, but lines keep coming
        advance(2)
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "pan-ref · env-sim: started, 4 episodes to run"
    beats = [line for line in lines if line.startswith("pan-ref · env-sim: 2/4 episodes")]
    assert len(beats) >= 3
    assert all(re.search(r"elapsed \d+s, ETA \d+s$", line) for line in beats)
    assert re.fullmatch(r"pan-ref · env-sim: done, 4/4 episodes, elapsed \d+s", lines[-1])


def test_a_failure_says_where_it_stopped() -> None:
    console, buffer = _log()
    with pytest.raises(RuntimeError), Reporter(console, interval=10).task("m", "t", 3) as advance:
        advance(1)
        raise RuntimeError("boom")
    assert buffer.getvalue().splitlines()[-1].startswith("m · t: stopped at 1/3 episodes")


def test_resume_says_what_it_reused() -> None:
    console, buffer = _log()
    with Reporter(console, interval=10).task("oracle", "drift", total=5, reused=3) as advance:
        advance(2)
    text = buffer.getvalue()
    assert "oracle · drift: resuming, reused 3 of 5 episodes finished earlier" in text
    assert "started, 2 episodes to run" in text


def test_overall_count_for_several_models() -> None:
    console, buffer = _log()
    reporter = Reporter(console, interval=10)
    reporter.overall(2, "models")
    for model in ("a", "b"):
        with reporter.task(model, "t", total=1) as advance:
            advance(1)
        reporter.overall_advance()
    lines = buffer.getvalue().splitlines()
    assert lines[2].startswith("overall: 1/2 models")
    assert lines[-1].startswith("overall: 2/2 models")


def test_a_terminal_gets_bars_naming_model_and_task() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=True)
    reporter = Reporter(console, interval=10)
    assert reporter.live
    with reporter.task("copy-last", "plan-nav", total=2) as advance:
        advance(2)
    text = buffer.getvalue()
    assert "copy-last · plan-nav" in text
    assert "2/2" in text


def test_disabled_prints_nothing() -> None:
    console, buffer = _log()
    with Reporter(console, enabled=False, interval=0.01).task("m", "t", 2, reused=1) as advance:
        advance(1)
        time.sleep(0.05)
    assert buffer.getvalue() == ""


def test_evaluate_logs_progress_and_resume(tmp_path: Path) -> None:
    tasks = small_tasks(("small-rollout",))
    console, buffer = _log()
    evaluate("copy-last", out=tmp_path / "run", tasks=tasks, limit=3, console=console)
    first = buffer.getvalue()
    assert "copy-last · small-rollout: started, 3 episodes to run" in first
    assert "copy-last · small-rollout: done, 3/3 episodes" in first
    console, buffer = _log()
    evaluate("copy-last", out=tmp_path / "run", tasks=tasks, limit=3, console=console)
    assert "resuming, reused 3 of 3 episodes finished earlier" in buffer.getvalue()


def test_a_terminal_keeps_the_overall_bar_and_a_line_per_finished_task() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=True)
    reporter = Reporter(console, interval=10)
    reporter.overall(2, "models")
    for model in ("a", "b"):
        with reporter.task(model, "t", total=3) as advance:
            advance(3)
        reporter.overall_advance()
    reporter.close()
    text = buffer.getvalue()
    assert "overall (models)" in text
    assert re.search(r"a · t: 3/3 episodes, elapsed \ds", text)
    assert re.search(r"b · t: 3/3 episodes, elapsed \ds", text)
