"""The one assertion every bad-input case makes: refused cleanly, and nothing left marked done."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from panbench.cli import main


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path (empty when it does not exist)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_refused(
    capsys: pytest.CaptureFixture[str],
    argv: Sequence[str],
    expected: Sequence[str],
    *,
    code: int = 2,
    out: Path | None = None,
    unchanged: Path | None = None,
) -> str:
    """Runs ``panbench <argv>`` in-process and checks it was refused the way docs/errors.md says.

    Args:
        capsys: pytest's capture fixture.
        argv: the command line.
        expected: fragments the message must hold (what was expected, what was received); they
            are matched with whitespace folded, so line wrapping does not matter.
        code: the exit code (2: refused input).
        out: a results folder that must not hold a results.json (nothing marked complete).
        unchanged: a folder whose files must be byte-identical before and after.

    Returns:
        The message (whitespace folded).
    """
    before = snapshot(unchanged) if unchanged is not None else None
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse refuses a command line it cannot parse
        rc = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    # The message is on stderr; a check command (code 1) lists its findings on stdout.
    err = " ".join((captured.err if code == 2 else captured.err + captured.out).split())
    assert rc == code, f"exit code {rc}, expected {code}; stderr: {err}"
    assert "Traceback" not in captured.err + captured.out, captured.err
    assert "internal error" not in err, err
    for piece in expected:
        assert " ".join(piece.split()) in err, f"{piece!r} not in: {err}"
    if out is not None:
        assert not (out / "results.json").exists(), "a refused run wrote results.json"
    if unchanged is not None:
        assert snapshot(unchanged) == before, f"a refused command changed {unchanged}"
    return err
