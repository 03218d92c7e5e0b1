"""Bad results folders and submissions: tampered, duplicated or missing samples, mixed suites,
future schemas, traversal in names; handed to compare, submit, plot and leaderboard build."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from panbench.leaderboard import init_leaderboard, submit
from tests.leaderboard_runs import copy_run, edit_results, mini_run, rehash_samples, suite_path
from tests.robustness.refusal import assert_refused, snapshot

TASK = "mini-agent"


def _samples(folder: Path) -> Path:
    return folder / "samples" / f"{TASK}.jsonl"


def _lines(folder: Path, edit: Callable[[list[str]], list[str]]) -> None:
    path = _samples(folder)
    path.write_text("".join(edit(path.read_text().splitlines(keepends=True))))


def _nudge_first(lines: list[str]) -> list[str]:
    rec = json.loads(lines[0])
    key = next(k for k, v in rec["metrics"].items() if isinstance(v, float))
    rec["metrics"][key] += 0.25
    return [json.dumps(rec) + "\n", *lines[1:]]


def _set(*path: Any, value: Any) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        def apply(data: dict[str, Any]) -> None:
            node = data
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value

        edit_results(folder, apply)

    return edit


def _first_metric(folder: Path) -> str:
    data = json.loads((folder / "results.json").read_text())
    return next(iter(data["tasks"][TASK]["metrics"]))


#: (id, how the candidate folder is damaged, expected fragments)
DAMAGE: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("no-results-json", lambda f: (f / "results.json").unlink(), ["results.json"]),
    ("results-not-json", lambda f: (f / "results.json").write_text("{oops"), ["results.json"]),
    ("results-a-list", lambda f: (f / "results.json").write_text("[1, 2]"), ["results.json"]),
    ("future-schema", _set("schema_version", value=99), ["schema_version", "99"]),
    ("no-samples-file", lambda f: _samples(f).unlink(), [f"{TASK}.jsonl"]),
    ("duplicated-sample", lambda f: _lines(f, lambda ls: [ls[0], *ls]), [TASK]),
    ("deleted-sample", lambda f: _lines(f, lambda ls: ls[1:]), [TASK]),
    ("truncated-samples", lambda f: _lines(f, lambda ls: [*ls[:-1], ls[-1][:10]]), [TASK]),
    ("edited-sample", lambda f: _lines(f, _nudge_first), [TASK, "sha256"]),
    (
        "edited-sample-rehashed",
        lambda f: (_lines(f, _nudge_first), rehash_samples(f, TASK)),
        [TASK],
    ),
    ("suite-renamed", _set("suite", "name", value="other"), ["suite"]),
    ("task-hash-changed", _set("tasks", TASK, "hash", value="0" * 64), [TASK]),
]


@pytest.fixture(scope="module")
def good() -> Path:
    return mini_run("oracle")


@pytest.mark.parametrize(("damage", "expected"), [pytest.param(d, e, id=i) for i, d, e in DAMAGE])
def test_damaged_results_are_refused_by_compare(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    good: Path,
    damage: Callable[[Path], None],
    expected: list[str],
) -> None:
    bad = copy_run(good, tmp_path / "bad")
    damage(bad)
    assert_refused(capsys, ["compare", str(good), str(bad), "--resamples", "50"], expected)


def test_tampered_metric_value_is_refused_by_submit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], good: Path
) -> None:
    board = tmp_path / "board"
    init_leaderboard(board, suite_path(1))
    bad = copy_run(good, tmp_path / "bad")
    metric = _first_metric(bad)
    _set("tasks", TASK, "metrics", metric, "value", value=123.0)(bad)
    argv = ["submit", str(bad), "--leaderboard", str(board)]
    assert_refused(capsys, argv, [metric], unchanged=board)


def test_a_run_of_another_suite_version_is_refused_by_submit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    board = tmp_path / "board"
    init_leaderboard(board, suite_path(1))
    argv = ["submit", str(mini_run("oracle", version=2)), "--leaderboard", str(board)]
    assert_refused(capsys, argv, ["version"], unchanged=board)


def test_mixed_suite_versions_are_refused_by_compare_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], good: Path
) -> None:
    other = str(mini_run("oracle", version=2))
    assert_refused(capsys, ["compare", str(good), other], ["version"])
    out = tmp_path / "plots"
    assert_refused(capsys, ["plot", str(good), other, "--out", str(out)], ["version"])
    assert not out.exists() or not any(out.iterdir())


@pytest.fixture
def board(tmp_path: Path, good: Path) -> Path:
    root = tmp_path / "board"
    init_leaderboard(root, suite_path(1))
    submit(good, root)
    return root


def _stored(board: Path) -> Path:
    return next((board / "submissions").glob("*.json"))


def _edit_stored(board: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = _stored(board)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


#: (id, how a stored submission or the board is damaged, expected fragments)
BOARD_DAMAGE: list[tuple[str, Callable[[Path], None], list[str]]] = [
    (
        "stored-submission-not-json",
        lambda b: _stored(b).write_text("{"),
        ["submissions"],
    ),
    (
        "stored-submission-future-format",
        lambda b: _edit_stored(b, lambda d: d.__setitem__("format_version", 99)),
        ["format_version", "99"],
    ),
    (
        "stored-submission-tampered-sample",
        lambda b: _edit_stored(
            b,
            lambda d: d["samples"].__setitem__(
                TASK, "".join(_nudge_first(d["samples"][TASK].splitlines(keepends=True)))
            ),
        ),
        [TASK],
    ),
    (
        "stored-submission-traversal",
        lambda b: _edit_stored(
            b, lambda d: d["samples"].__setitem__("../../escaped", d["samples"][TASK])
        ),
        ["../../escaped"],
    ),
    (
        "leaderboard-yaml-broken",
        lambda b: (b / "leaderboard.yaml").write_text("suite: [unclosed\n"),
        ["leaderboard.yaml"],
    ),
    (
        "leaderboard-yaml-python-tag",
        lambda b: (b / "leaderboard.yaml").write_text(
            "suite: !!python/object/apply:os.system ['touch escaped-by-yaml']\n"
        ),
        ["leaderboard.yaml"],
    ),
    ("leaderboard-yaml-missing", lambda b: (b / "leaderboard.yaml").unlink(), ["leaderboard"]),
]


@pytest.mark.parametrize(
    ("damage", "expected"), [pytest.param(d, e, id=i) for i, d, e in BOARD_DAMAGE]
)
def test_damaged_boards_are_refused_by_build(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    board: Path,
    damage: Callable[[Path], None],
    expected: list[str],
) -> None:
    damage(board)
    outside = snapshot(tmp_path.parent)
    assert_refused(capsys, ["leaderboard", "build", str(board)], expected, unchanged=board)
    assert not (board / "index.html").exists() and not (board / "leaderboard.md").exists()
    assert snapshot(tmp_path.parent) == outside
    assert not Path("escaped-by-yaml").exists()
    assert_refused(capsys, ["leaderboard", "verify", str(board)], expected, code=1)


def test_a_submission_name_cannot_leave_the_board(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], good: Path
) -> None:
    root = tmp_path / "boards" / "board"
    init_leaderboard(root, suite_path(1))
    before = snapshot(tmp_path)
    from panbench.cli import main

    assert main(["submit", str(good), "--leaderboard", str(root), "--name", "../../escaped"]) == 0
    added = set(snapshot(tmp_path)) - set(before)
    assert added and all(p.startswith("boards/board/submissions/") for p in added), added
    shutil.rmtree(root)
