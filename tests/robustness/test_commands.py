"""Every command handed a path that is missing, empty, binary or of the wrong kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.robustness.refusal import assert_refused

SHIPPED_TASK = Path(__file__).resolve().parents[2] / "tasks" / "agent-sim.yaml"

#: (id, argv with {missing} {empty} {binary} {badyaml} {task} {file} {out}, expected, exit code)
CASES: list[tuple[str, list[str], list[str], int]] = [
    ("validate-missing", ["tasks", "validate", "{missing}"], ["no such file or folder"], 1),
    ("validate-binary", ["tasks", "validate", "{binary}"], ["binary.yaml"], 1),
    ("import-wr-arena-missing", ["tasks", "import", "wr-arena", "--root", "{missing}"], ["WR-Arena"], 2),
    ("import-lerobot-missing", ["tasks", "import", "lerobot", "--root", "{missing}"], ["LeRobot dataset folder"], 2),
    ("import-videos-empty", ["tasks", "import", "videos", "--root", "{empty}"], ["expected recordings", "found none"], 2),
    ("import-episodes-empty", ["tasks", "import", "episodes", "--root", "{empty}"], ["No index.json"], 2),
    ("data-info-missing", ["data", "info", "{missing}"], ["does not exist"], 2),
    ("data-info-file", ["data", "info", "{file}"], ["file.txt"], 2),
    ("data-videos-missing", ["data", "import-videos", "{missing}"], ["does not exist"], 2),
    ("data-env-option", ["data", "generate", "--env", "shapes", "--episodes", "1", "--length", "2", "--env-args", "foo=1"], ["Unknown option 'foo'", "num_objects"], 2),
    ("train-missing-config", ["train", "--config", "{missing}"], ["not found", "tiny.yaml"], 2),
    ("train-bad-yaml", ["train", "--config", "{badyaml}"], ["not valid YAML"], 2),
    ("train-binary-config", ["train", "--config", "{binary}"], ["expected a UTF-8 YAML"], 2),
    ("train-task-as-config", ["train", "--config", "{task}"], ["unknown key 'task'"], 2),
    ("submit-no-board", ["submit", "{empty}", "--leaderboard", "{missing}"], ["No leaderboard", "leaderboard init"], 2),
    ("build-no-board", ["leaderboard", "build", "{empty}"], ["expected", "leaderboard.yaml"], 2),
    ("verify-no-board", ["leaderboard", "verify", "{missing}"], ["No leaderboard"], 1),
    ("init-unknown-suite", ["leaderboard", "init", "{out}", "--suite", "nope"], ["Unknown suite 'nope'", "quick"], 2),
    ("compare-empty", ["compare", "{empty}", "{empty}"], ["expected results.json"], 2),
    ("plot-missing", ["plot", "{missing}", "--out", "{out}"], ["expected results.json"], 2),
    ("evaluate-binary-task", ["evaluate", "--model", "oracle", "--tasks", "{binary}"], ["cannot read the file"], 2),
    ("evaluate-folder-as-task", ["evaluate", "--model", "oracle", "--tasks", "{empty}"], ["does not exist"], 2),
    ("evaluate-task-as-suite", ["evaluate", "--model", "oracle", "--suite", "{task}"], ["unknown key 'task' in suite"], 2),
    ("evaluate-text-as-task", ["evaluate", "--model", "oracle", "--tasks", "{file}"], ["expected a mapping"], 2),
    ("evaluate-same-task-twice", ["evaluate", "--model", "oracle", "--tasks", "agent-sim,agent-sim"], ["Expected distinct task names"], 2),
    ("evaluate-no-tasks", ["evaluate", "--model", "oracle", "--tasks", ""], ["Expected exactly one of --suite or --tasks"], 2),
    ("evaluate-judge-args-alone", ["evaluate", "--model", "oracle", "--tasks", "agent-sim", "--judge-args", "x=1"], ["without --judge"], 2),
    ("evaluate-unknown-model-arg", ["evaluate", "--model", "oracle", "--model-args", "foo=1", "--tasks", "agent-sim"], ["Unknown model argument 'foo'"], 2),
    ("weights-pull-unknown", ["weights", "pull", "nope"], ["Unknown weights file 'nope'", "alexnet"], 2),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "expected", "code"), [pytest.param(a, e, c, id=i) for i, a, e, c in CASES]
)
def test_bad_paths_are_refused_by_every_command(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: list[str],
    code: int,
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "binary.yaml").write_bytes(bytes(range(128, 256)) * 3)
    (tmp_path / "bad.yaml").write_text("a: [\n")
    (tmp_path / "file.txt").write_text("x\n")
    paths = {
        "{missing}": tmp_path / "missing",
        "{empty}": tmp_path / "empty",
        "{binary}": tmp_path / "binary.yaml",
        "{badyaml}": tmp_path / "bad.yaml",
        "{task}": SHIPPED_TASK,
        "{file}": tmp_path / "file.txt",
        "{out}": tmp_path / "out",
    }
    argv = [str(paths.get(a, a)) for a in argv]
    if argv[0] in ("evaluate", "train", "data", "tasks") and argv[1] not in ("validate", "info"):
        argv += ["--out", str(tmp_path / "out")]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_refused(capsys, argv, expected, code=code, out=tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "a refused command wrote"
