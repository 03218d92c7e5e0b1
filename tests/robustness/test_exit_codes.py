"""The exit-code table of docs/errors.md, and --debug: each row checked on a real command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from panbench import cli, exitcodes
from panbench.cli import main

REPO = Path(__file__).resolve().parents[2]


def _boom(args: object) -> int:
    raise ZeroDivisionError("division by zero inside a command")


def test_an_unexpected_exception_is_an_internal_error_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PANBENCH_DEBUG", raising=False)
    monkeypatch.setattr(cli, "_cmd_ls", _boom)
    assert main(["ls", "envs"]) == exitcodes.INTERNAL == 70
    err = " ".join(capsys.readouterr().err.split())
    assert "internal error: ZeroDivisionError: division by zero inside a command" in err
    assert "bug in panbench" in err and "--debug" in err and "Traceback" not in err


@pytest.mark.parametrize("how", ["flag-first", "flag-last", "env"])
def test_debug_prints_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    monkeypatch.setattr(cli, "_cmd_ls", _boom)
    monkeypatch.delenv("PANBENCH_DEBUG", raising=False)
    argv = {"flag-first": ["--debug", "ls", "envs"], "flag-last": ["ls", "envs", "--debug"]}
    if how == "env":
        monkeypatch.setenv("PANBENCH_DEBUG", "1")
    assert main(argv.get(how, ["ls", "envs"])) == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in _boom" in err


def test_a_refused_input_in_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("PANBENCH_DEBUG", None)
    argv = [sys.executable, "-m", "panbench.cli", "evaluate", "--model", "oracle"]
    argv += ["--tasks", "agent-sim", "--out", str(tmp_path / "r"), "--device", "cuda:0"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode == 0:  # pragma: no cover - a machine with CUDA
        pytest.skip("this machine has CUDA")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--device" in proc.stderr and "'cuda:0'" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_the_documented_table_matches_the_codes() -> None:
    table = (REPO / "docs" / "errors.md").read_text()
    rows = dict(re.findall(r"^\| *(\d+) *\| *([^|]+?) *\|", table, flags=re.M))
    codes = {
        exitcodes.OK: "done",
        exitcodes.FAILED_CHECK: "a check ran and failed",
        exitcodes.REFUSED: "the input was refused",
        exitcodes.PENDING: "`evaluate` is waiting for human judgements",
        exitcodes.INTERNAL: "internal error",
        exitcodes.INTERRUPTED: "interrupted (Ctrl-C)",
    }
    assert {int(k): v for k, v in rows.items()} == codes
