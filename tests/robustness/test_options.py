"""Bad command-line options, over every command: ranges, types, devices, conflicts, outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.models.runs import small_tasks
from tests.robustness.refusal import assert_refused

EVAL = ["evaluate", "--model", "copy-last", "--no-progress"]
SERVE = ["serve", "--model", "copy-last", "--port", "0"]
GEN = ["data", "generate", "--env", "shapes", "--episodes", "2", "--length", "3"]

#: (id, argv after the command, expected fragments); {out} is a fresh folder, {file} a file
CASES: list[tuple[str, list[str], list[str]]] = [
    ("evaluate-limit-0", [*EVAL, "--limit", "0"], ["Expected --limit", ">= 1", "got 0"]),
    ("evaluate-limit-negative", [*EVAL, "--limit", "-3"], ["--limit", ">= 1", "got -3"]),
    ("evaluate-limit-not-int", [*EVAL, "--limit", "ten"], ["--limit", "invalid int", "'ten'"]),
    ("evaluate-batch-0", [*EVAL, "--batch-size", "0"], ["--batch-size", ">= 1", "got 0"]),
    ("evaluate-videos-negative", [*EVAL, "--save-videos", "-1"], ["--save-videos", ">= 0"]),
    ("evaluate-seed-negative", [*EVAL, "--seed", "-5"], ["--seed", "between 0 and", "got -5"]),
    ("evaluate-seed-huge", [*EVAL, "--seed", str(2**40)], ["--seed", "between 0 and"]),
    ("evaluate-threads-0", [*EVAL, "--threads", "0"], ["--threads", ">= 1", "got 0"]),
    ("evaluate-cuda", [*EVAL, "--device", "cuda"], ["device this machine has", "'cuda'", "cpu"]),
    ("evaluate-cuda-index", [*EVAL, "--device", "cuda:7"], ["'cuda:7'"]),
    ("evaluate-device-typo", [*EVAL, "--device", "gpu"], ["cpu, cuda, cuda:N or mps", "'gpu'"]),
    ("evaluate-timeout-0", [*EVAL, "--model-timeout", "0"], ["--model-timeout", "> 0", "got 0"]),
    ("evaluate-timeout-nan", [*EVAL, "--model-timeout", "nan"], ["--model-timeout", "finite"]),
    ("evaluate-out-is-file", [*EVAL, "--out", "{file}"], ["--out to be a folder", "is a file"]),
    ("evaluate-out-under-file", [*EVAL, "--out", "{file}/run"], ["on its path is a file"]),
    (
        "evaluate-model-typo",
        ["evaluate", "--model", "orcale"],
        ["Unknown model 'orcale'", "oracle"],
    ),
    ("evaluate-model-args-no-eq", [*EVAL, "--model-args", "seed"], ["key=value", "'seed'"]),
    ("evaluate-model-args-bad-map", [*EVAL, "--model-args", "{a: [1"], ["Expected a YAML/JSON"]),
    (
        "evaluate-model-arg-type",
        ["evaluate", "--model", "random-action", "--model-args", "seed=abc"],
        ["Model 'random-action' refused its arguments seed='abc'", "ValueError"],
    ),
    ("evaluate-model-args-twice", [*EVAL, "--model-args", "a=1,a=2"], ["'a' is given twice"]),
    ("evaluate-task-typo", ["evaluate", "--model", "oracle", "--tasks", "agent-sm"], ["agent-sim"]),
    ("evaluate-judge-unknown", [*EVAL, "--judge", "gpt9"], ["gpt9"]),
    ("data-generate-episodes-0", [*GEN[:5], "0", *GEN[6:]], ["--episodes", ">= 1", "got 0"]),
    ("data-generate-length-0", [*GEN[:7], "0"], ["--length", ">= 1", "got 0"]),
    ("data-generate-resolution-0", [*GEN, "--resolution", "0"], ["--resolution", "got 0"]),
    ("data-generate-shards-0", [*GEN, "--shard-size", "0"], ["--shard-size", "got 0"]),
    ("data-generate-env-typo", ["data", "generate", "--env", "shape", *GEN[3:]], ["shapes"]),
    ("data-generate-out-is-file", [*GEN, "--out", "{file}"], ["is a file"]),
    ("data-videos-max-frames-0", ["data", "import-videos", "x", "--max-frames", "0"], ["got 0"]),
    ("train-max-steps-negative", ["train", "--config", "c.yaml", "--max-steps", "-1"], [">= 0"]),
    ("train-device", ["train", "--config", "c.yaml", "--device", "cuda"], ["'cuda'"]),
    ("demo-out-is-file", ["demo", "--out", "{file}"], ["--out to be a folder", "is a file"]),
    ("compare-alpha-high", ["compare", "a", "b", "--alpha", "1.5"], ["--alpha", "> 0", "1.5"]),
    ("compare-alpha-0", ["compare", "a", "b", "--alpha", "0"], ["--alpha", "got 0"]),
    ("compare-effect-negative", ["compare", "a", "b", "--min-effect", "-1"], ["--min-effect"]),
    ("compare-resamples-0", ["compare", "a", "b", "--resamples", "0"], ["--resamples", "got 0"]),
    ("compare-format", ["compare", "a", "b", "--format", "pdf"], ["invalid choice: 'pdf'"]),
    ("ls-unknown", ["ls", "widgets"], ["invalid choice: 'widgets'", "envs"]),
    ("serve-port-high", [*SERVE, "--port", "70000"], ["--port", "between 0 and 65535", "70000"]),
    ("serve-port-negative", [*SERVE, "--port", "-1"], ["--port", "between 0 and 65535", "-1"]),
    ("serve-request-0", [*SERVE, "--max-request-mb", "0"], ["--max-request-mb", "> 0"]),
    ("serve-states-0", [*SERVE, "--max-states", "0"], ["--max-states", ">= 1", "got 0"]),
    ("serve-cuda", [*SERVE, "--device", "cuda"], ["device this machine has", "'cuda'"]),
    ("serve-model-typo", ["serve", "--model", "copy-lst"], ["Unknown model 'copy-lst'"]),
    ("weights-unknown", ["weights", "path", "i3d-kinetic"], ["i3d-kinetic"]),
    (
        "tasks-import-context-0",
        ["tasks", "import", "videos", "--root", "r", "--context", "0"],
        ["--context", "got 0"],
    ),
]


@pytest.mark.parametrize(("argv", "expected"), [pytest.param(a, e, id=i) for i, a, e in CASES])
def test_bad_options_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: list[str]
) -> None:
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    out = tmp_path / "out"
    argv = [a.replace("{file}", str(file)) for a in argv]
    if argv[0] == "evaluate" and "--tasks" not in argv:
        argv += ["--tasks", small_tasks(("small-rollout",))[0]]
    if argv[0] in ("evaluate", "data", "demo", "train", "tasks") and "--out" not in argv:
        argv += ["--out", str(out)]
    assert_refused(capsys, argv, expected, out=out)
    assert not out.exists(), "a refused command created its output folder"
    assert file.read_text() == "not a folder"


def test_suite_and_tasks_together_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*EVAL, "--suite", "quick", "--tasks", "agent-sim", "--out", str(tmp_path / "r")]
    assert_refused(capsys, argv, ["--tasks: not allowed with argument --suite"])


def test_a_missing_required_option_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(capsys, [*EVAL, "--suite", "quick"], ["the following arguments are required"])


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    argv = [*EVAL, "--tasks", small_tasks(("small-rollout",))[0], "--out", str(locked / "r")]
    assert_refused(capsys, argv, ["--out", "not writable"])


def test_an_unwritable_out_is_refused_even_for_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from panbench import preflight

    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(
        preflight.os, "access", lambda p, mode: False if Path(p) == locked else real(p, mode)
    )
    argv = [*EVAL, "--tasks", small_tasks(("small-rollout",))[0], "--out", str(locked / "r")]
    assert_refused(capsys, argv, ["--out", f"{locked} is not writable"])
    assert not (locked / "r").exists()
