"""Adapters that break the WorldModel contract: refused with exit 2, finished work kept, no results."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.models.runs import small_tasks
from tests.robustness.refusal import assert_refused

OURS = "tests.robustness.adapters"
THEIRS = "tests.models.adapters"

#: (id, adapter, extra options, expected fragments)
CASES: list[tuple[str, str, list[str], list[str]]] = [
    ("nan", f"{THEIRS}:NaNFramesModel", [], ["'nan-frames'", "float32 with NaN"]),
    ("wrong-shape", f"{THEIRS}:WrongShapeModel", [], ["expected frames of shape", "but got"]),
    ("wrong-dtype", f"{THEIRS}:FloatFramesModel", [], ["expected dtype uint8", "float32"]),
    ("frame-count", f"{THEIRS}:WrongFrameCountModel", [], ["k=frames_per_step=2", "but got"]),
    ("not-a-tuple", f"{THEIRS}:NonTupleModel", [], ["(state, frames)", "ndarray"]),
    ("out-of-range", f"{OURS}:NegativeFramesModel", [], ["'negative-frames'", "int64"]),
    ("wrong-batch", f"{OURS}:WrongBatchModel", [], ["'wrong-batch'", "[2,1,", "but got [1,"]),
    ("none-frames", f"{OURS}:NoneFramesModel", [], ["'none-frames'", "NoneType"]),
    (
        "raises-in-step",
        f"{OURS}:RaisingModel",
        [],
        ["'raising'", "expected step() to return", "raised RuntimeError: CUDA out of memory"],
    ),
    (
        "raises-in-reset",
        f"{OURS}:RaisingResetModel",
        [],
        ["'raising-reset'", "expected reset() to return", "ValueError: cannot read context"],
    ),
    (
        "hangs",
        f"{OURS}:HangingModel",
        ["--model-timeout", "0.5"],
        ["'hanging'", "step() to return within --model-timeout 0.5 s", "still running"],
    ),
]


@pytest.mark.parametrize(
    ("model", "extra", "expected"), [pytest.param(m, x, e, id=i) for i, m, x, e in CASES]
)
def test_broken_adapters_are_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    model: str,
    extra: list[str],
    expected: list[str],
) -> None:
    out = tmp_path / "run"
    task = small_tasks(("small-rollout",))[0]
    argv = ["evaluate", "--model", model, "--tasks", task, "--out", str(out), "--batch-size", "2"]
    started = time.monotonic()
    assert_refused(capsys, [*argv, "--no-progress", *extra], expected, out=out)
    assert time.monotonic() - started < 120  # the hanging adapter was stopped, not waited for
    assert not (out / "samples" / "small-rollout.jsonl").exists()


def test_debug_shows_where_an_adapter_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from panbench.cli import main

    task = small_tasks(("small-rollout",))[0]
    argv = ["evaluate", "--model", f"{OURS}:RaisingModel", "--tasks", task, "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: CUDA out of memory" in err
    assert "tests/robustness/adapters.py" in err  # the adapter's own frame is shown
