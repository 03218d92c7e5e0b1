"""Bad task and suite YAML handed to `evaluate`: syntax, keys, types, ranges, includes, names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.robustness.refusal import assert_refused

GOOD = """\
task: tiny
version: 1
protocol: rollout
env: {name: shapes, resolution: 32, kwargs: {}}
episodes: {count: 2, seed: 0, context: 2, horizon: 2, policy: agent}
metrics: [psnr]
headline: psnr
"""


def _edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


#: (id, the task file's text, expected fragments)
TASKS: list[tuple[str, str, list[str]]] = [
    ("syntax", GOOD.replace("[psnr]", "[psnr"), ["tiny.yaml:7", "malformed YAML"]),
    ("tab-indent", GOOD.replace("version: 1", "version:\n\t1"), ["tiny.yaml"]),
    ("empty-file", "", ["expected a mapping"]),
    ("top-level-list", "- task: tiny\n", ["expected a mapping", "list"]),
    ("unknown-key", GOOD + "metircs: [ssim]\n", ["'metircs'", "metrics"]),
    ("unknown-episode-key", _edit("policy: agent", "polcy: agent"), ["'polcy'", "policy"]),
    ("missing-protocol", _edit("protocol: rollout\n", ""), ["protocol"]),
    ("count-not-int", _edit("count: 2", "count: many"), ["count", "'many'"]),
    ("count-zero", _edit("count: 2", "count: 0"), ["count", ">= 1", "0"]),
    ("horizon-negative", _edit("horizon: 2", "horizon: -4"), ["horizon", "-4"]),
    ("seed-negative", _edit("seed: 0", "seed: -1"), ["seed", "-1"]),
    ("resolution-string", _edit("resolution: 32", "resolution: big"), ["resolution", "'big'"]),
    ("unknown-protocol", _edit("rollout", "rollot"), ["'rollot'", "rollout"]),
    ("unknown-env", _edit("name: shapes", "name: shapez"), ["'shapez'", "shapes"]),
    ("unknown-metric", _edit("metrics: [psnr]", "metrics: [psnrr]"), ["'psnrr'", "psnr"]),
    ("headline-not-listed", _edit("headline: psnr", "headline: ssim"), ["headline", "'ssim'"]),
    ("duplicate-metric", _edit("[psnr]", "[psnr, psnr]"), ["psnr"]),
    ("name-traversal", _edit("task: tiny", "task: ../../escape"), ["'../../escape'"]),
    ("name-absolute", _edit("task: tiny", "task: /etc/passwd"), ["'/etc/passwd'"]),
    ("metrics-not-list", _edit("metrics: [psnr]", "metrics: psnr"), ["metrics", "'psnr'"]),
    ("options-nan", GOOD + "options: {x: .nan}\n", ["options"]),
    ("include-missing", "include: ./nope.yaml\n" + GOOD, ["'./nope.yaml'", "not found"]),
    ("include-self", "include: ./tiny.yaml\n" + GOOD, ["include cycle"]),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=i) for i, t, e in TASKS])
def test_bad_task_files_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: list[str]
) -> None:
    task = tmp_path / "tiny.yaml"
    task.write_text(text)
    out = tmp_path / "run"
    argv = ["evaluate", "--model", "copy-last", "--tasks", str(task), "--out", str(out)]
    assert_refused(capsys, [*argv, "--no-progress"], expected, out=out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_an_include_loop_between_two_files_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yaml").write_text("include: ./b.yaml\n" + GOOD.replace("tiny", "a"))
    (tmp_path / "b.yaml").write_text("include: ./a.yaml\n" + GOOD.replace("tiny", "b"))
    argv = ["evaluate", "--model", "copy-last", "--tasks", str(tmp_path / "a.yaml")]
    out = tmp_path / "run"
    assert_refused(capsys, [*argv, "--out", str(out)], ["include cycle", "a.yaml", "b.yaml"])


SUITES: list[tuple[str, str, list[str]]] = [
    ("unknown-task", "suite: s\nversion: 1\ntasks: [agent-sm]\n", ["'agent-sm'", "agent-sim"]),
    ("duplicate-task", "suite: s\nversion: 1\ntasks: [agent-sim, agent-sim]\n", ["agent-sim"]),
    ("unknown-key", "suite: s\nversion: 1\ntasks: [agent-sim]\ntask: [x]\n", ["'task'"]),
    ("tasks-not-list", "suite: s\nversion: 1\ntasks: agent-sim\n", ["tasks", "'agent-sim'"]),
    ("no-tasks", "suite: s\nversion: 1\ntasks: []\n", ["tasks"]),
    ("syntax", "suite: s\nversion: 1\ntasks: [agent-sim\n", ["s.yaml"]),
    ("name-traversal", "suite: ../s\nversion: 1\ntasks: [agent-sim]\n", ["'../s'"]),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=i) for i, t, e in SUITES])
def test_bad_suite_files_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: list[str]
) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(text)
    out = tmp_path / "run"
    argv = ["evaluate", "--model", "copy-last", "--suite", str(suite), "--out", str(out)]
    assert_refused(capsys, argv, expected, out=out)
    assert not out.exists()


PHYSICS = Path(__file__).resolve().parents[2] / "tasks" / "physics-outcome.yaml"

#: (id, (old, new) edit of the shipped physics task, expected fragments)
PHYSICS_EDITS: list[tuple[str, tuple[str, str], list[str]]] = [
    ("option-typo", ("move_px: 2.0", "move_pix: 2.0"), ["'move_pix'", "Did you mean: move_px?"]),
    ("option-type", ("move_px: 2.0", "move_px: fast"), ["move_px to be a number >= 0", "'fast'"]),
    ("scenario", ("scenario: outcome", "scenario: explode"), ["push, outcome", "'explode'"]),
    ("objects", ("objects: 3", "objects: -2"), ["integer from 2 to 6", "got -2"]),
    ("policy", ("policy: random", "policy: agent"), ["no 'agent' actions", "interventions"]),
]


@pytest.mark.parametrize(
    ("edit", "expected"), [pytest.param(x, e, id=i) for i, x, e in PHYSICS_EDITS]
)
def test_bad_physics_tasks_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], expected: list[str]
) -> None:
    pytest.importorskip("mujoco")
    text = PHYSICS.read_text()
    assert edit[0] in text
    task = tmp_path / "physics.yaml"
    task.write_text(text.replace(*edit))
    out = tmp_path / "run"
    argv = ["evaluate", "--model", "copy-last", "--tasks", str(task), "--limit", "1"]
    assert_refused(capsys, [*argv, "--out", str(out), "--no-progress"], expected, out=out)
