"""Kill/resume loops: `evaluate`, `train` and `leaderboard build` killed at random points (SIGKILL
and SIGINT), rerun each time, end byte-identical to an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.models.runs import small_tasks
from tests.robustness.adapters import SLEEP_ENV

REPO = Path(__file__).resolve().parents[2]
KILLS = 20  # at least this many kills per command, SIGKILL and SIGINT drawn at random
SIGNALS = (signal.SIGKILL, signal.SIGINT)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OMP_NUM_THREADS": "1",
            "PANBENCH_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            SLEEP_ENV: "0.1",
        }
    )
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "panbench.cli", *args]


def _run(argv: list[str]) -> float:
    """Runs a command to the end; returns its wall time."""
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return time.monotonic() - started


def kill_loop(
    argv_for: Callable[[Path], list[str]],
    fresh: Callable[[int], Path],
    reference_seconds: float,
    rng: random.Random,
    kills: int = KILLS,
) -> list[Path]:
    """Kills runs at random points until ``kills`` kills landed, resuming each run to the end.

    Args:
        argv_for: the command line to (re)run for an output folder.
        fresh: a new output folder for round ``i`` (a round ends when a rerun finishes).
        reference_seconds: how long an uninterrupted run takes; kill delays are drawn below it.
        rng: draws the delays and the signals.
        kills: how many kills must land.

    Returns:
        The output folders of every round, each finished.
    """
    landed, rounds = 0, []
    while landed < kills:
        out = fresh(len(rounds))
        rounds.append(out)
        for _ in range(200):
            proc = subprocess.Popen(
                argv_for(out),
                cwd=REPO,
                env=_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                _, err = proc.communicate(timeout=rng.uniform(0.3, reference_seconds))
            except subprocess.TimeoutExpired:
                proc.send_signal(rng.choice(SIGNALS))
                proc.communicate()
                landed += 1
                if landed >= kills:
                    proc = subprocess.Popen(argv_for(out), cwd=REPO, env=_env())
                    assert proc.wait() == 0, "the final resume failed"
                    break
                continue
            assert proc.returncode == 0, err[-3000:]
            assert "Traceback" not in err
            break
        else:
            pytest.fail("a run never finished while being killed")
    return rounds


def _tree(folder: Path, pattern: str) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.glob(pattern))
        if p.is_file()
    }


@pytest.mark.slow
def test_evaluate_killed_at_random_points_resumes_byte_identical(tmp_path: Path) -> None:
    tasks = ",".join(small_tasks(("small-rollout", "small-choice")))

    def argv_for(out: Path) -> list[str]:
        model = "tests.robustness.adapters:SlowModel"
        return _cli("evaluate", "--model", model, "--tasks", tasks, "--out", str(out),
                    "--batch-size", "2", "--no-progress")  # fmt: skip

    reference = tmp_path / "reference"
    seconds = _run(argv_for(reference))
    expected = _tree(reference, "samples/*")
    assert sorted(expected) == ["samples/small-choice.jsonl", "samples/small-rollout.jsonl"]
    rounds = kill_loop(argv_for, lambda i: tmp_path / f"round-{i}", seconds, random.Random(22))
    for out in rounds:
        assert _tree(out, "samples/*") == expected, out  # no part files left, same bytes
        assert (out / "results.json").is_file()
        assert not [p for p in out.rglob("*") if ".tmp-" in p.name], "temporary files left"


@pytest.mark.slow
def test_train_killed_at_random_points_resumes_to_identical_weights(tmp_path: Path) -> None:
    pytest.importorskip("diffusers")
    from tests.reference_model.helpers import write_run_config

    config = write_run_config(tmp_path / "run.yaml", ae_steps=2, steps=4)
    config.write_text(config.read_text().replace("checkpoint_every: 100", "checkpoint_every: 1"))

    def argv_for(out: Path) -> list[str]:
        argv = _cli("train", "--config", str(config), "--out", str(out), "--device", "cpu")
        started = (out / "checkpoint").exists() or (out / "checkpoint.old").exists()
        return [*argv, "--resume"] if started else argv

    reference = tmp_path / "reference"
    seconds = _run(argv_for(reference))
    expected = _tree(reference, "*/*.safetensors")
    assert "model/model.safetensors" in expected and "checkpoint/ema.safetensors" in expected
    rounds = kill_loop(argv_for, lambda i: tmp_path / f"round-{i}", seconds, random.Random(7))
    for out in rounds:
        assert _tree(out, "*/*.safetensors") == expected, out
        log = (out / "log.csv").read_text().splitlines()
        assert [int(row.split(",")[0]) for row in log[1:]] == list(range(1, 7))


@pytest.mark.slow
def test_leaderboard_build_killed_at_random_points_is_never_half_written(tmp_path: Path) -> None:
    """After every kill the board is the previous build or the new one, file for file."""
    import shutil

    from panbench.leaderboard import build_leaderboard, init_leaderboard, submit
    from tests.leaderboard_runs import mini_run, suite_path

    old = tmp_path / "old"
    init_leaderboard(old, suite_path(1))
    submit(mini_run("oracle"), old)
    build_leaderboard(old)
    new = Path(shutil.copytree(old, tmp_path / "new"))
    submit(mini_run("copy-last"), new)
    argv = _cli("leaderboard", "build", str(new))
    seconds = _run(argv)
    before, after = _tree(old, "**/*"), _tree(new, "**/*")
    assert before != after

    board = tmp_path / "board"
    rng = random.Random(3)
    landed, finished = 0, 0
    while landed < KILLS:
        if not board.exists() or _tree(board, "**/*") == after:
            shutil.rmtree(board, ignore_errors=True)
            shutil.copytree(old, board)  # the previous build, with the new submission added
            shutil.copy2(next((new / "submissions").glob("copy-last*.json")), board / "submissions")
            before_here = _tree(board, "**/*")
        argv = _cli("leaderboard", "build", str(board))
        proc = subprocess.Popen(argv, cwd=REPO, env=_env(), stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(0.3, seconds))
            finished += 1
        except subprocess.TimeoutExpired:
            proc.send_signal(rng.choice(SIGNALS))
            proc.wait()
            landed += 1
        left = {k: v for k, v in _tree(board, "**/*").items() if not k.startswith(".build-")}
        assert left in (before_here, after), "a killed build left a half-written board"
    # A rerun cleans up what the kills left and builds the new board.
    _run(_cli("leaderboard", "build", str(board)))
    assert _tree(board, "**/*") == after
    assert not list(board.glob(".build-*")) and not (board / "plots.old").exists()
