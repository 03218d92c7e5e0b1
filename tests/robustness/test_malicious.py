"""No code runs from data: planted pickles, YAML tags and escaping paths are refused, and nothing
is written outside the output folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from panbench.leaderboard import init_leaderboard, submit
from tests.leaderboard_runs import mini_run, suite_path
from tests.models.runs import small_tasks
from tests.robustness.refusal import assert_refused, snapshot
from tests.robustness.test_files import MARKER, planted_pickle
from tests.robustness.test_task_yaml import GOOD


def test_a_pickle_planted_as_checkpoint_weights_never_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("diffusers")
    from tests.reference_model.helpers import tiny_model

    ckpt = tmp_path / "ckpt"
    tiny_model(seed=1).save_pretrained(ckpt, training={"command": "test"})
    (ckpt / "model.safetensors").write_bytes(planted_pickle(tmp_path))
    (ckpt / "pytorch_model.bin").write_bytes(planted_pickle(tmp_path))  # a tempting fallback
    out = tmp_path / "run"
    argv = ["evaluate", "--model", "pan-ref", "--model-args", f"path={ckpt}", "--no-progress"]
    argv += ["--tasks", small_tasks(("small-rollout",))[0], "--out", str(out)]
    assert_refused(capsys, argv, ["not a readable safetensors file"], out=out)
    assert not (tmp_path / MARKER).exists()


# torch notes the planted file's pickle protocol while refusing it: expected, not a defect
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_a_pickle_planted_as_optimizer_state_never_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("diffusers")
    from tests.reference_model.helpers import write_run_config

    config = write_run_config(tmp_path / "run.yaml", ae_steps=1, steps=0)
    from panbench.cli import main

    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    (tmp_path / "run" / "checkpoint" / "optimizer.pt").write_bytes(planted_pickle(tmp_path))
    argv = ["train", "--config", str(config), "--out", str(tmp_path / "run"), "--resume"]
    assert_refused(capsys, argv, ["optimizer.pt", "cannot be loaded safely"])
    assert not (tmp_path / MARKER).exists()


TAGS = [
    "!!python/object/apply:pathlib.Path.touch [['{marker}']]",
    "!!python/object/new:pathlib.PosixPath ['{marker}']",
    "!!python/name:os.system",
]


@pytest.mark.parametrize("tag", TAGS)
def test_yaml_tags_that_construct_objects_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tag: str
) -> None:
    marker = tmp_path / MARKER
    task = tmp_path / "tiny.yaml"
    task.write_text(GOOD.replace("version: 1", "version: " + tag.format(marker=marker)))
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"suite: s\nversion: {tag.format(marker=marker)}\ntasks: [agent-sim]\n")
    out = tmp_path / "run"
    for argv in (["--tasks", str(task)], ["--suite", str(suite)]):
        full = ["evaluate", "--model", "copy-last", *argv, "--out", str(out), "--no-progress"]
        assert_refused(capsys, full, ["malformed YAML", "python/"], out=out)
    assert_refused(capsys, ["tasks", "validate", str(tmp_path)], ["python/"], code=1)
    assert not marker.exists() and not out.exists()


def test_a_submission_that_escapes_the_leaderboard_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "site" / "board"
    init_leaderboard(root, suite_path(1))
    submit(mini_run("oracle"), root)
    stored = next((root / "submissions").glob("*.json"))
    data = json.loads(stored.read_text())
    task = next(iter(data["samples"]))
    for name in ("../../../escaped", "/tmp/escaped-abs", "..\\..\\escaped"):
        evil = dict(data, name="evil", samples={**data["samples"], name: data["samples"][task]})
        (root / "submissions" / "evil.json").write_text(json.dumps(evil))
        before = snapshot(tmp_path)
        assert_refused(capsys, ["leaderboard", "build", str(root)], [repr(name)])
        assert snapshot(tmp_path) == before, "a refused build wrote files"
        assert not Path("/tmp/escaped-abs.jsonl").exists()
    shutil.rmtree(root)
