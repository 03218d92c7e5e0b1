"""``panbench evaluate`` end to end: results validation, reproducibility, resume, sharding,
contract errors and videos. Runs use tiny tasks (32 px, a few episodes) to stay fast on a CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from panbench.cli import main
from panbench.errors import ConfigError
from panbench.harness import evaluate
from panbench.results import ResultsError, validate_results
from tests.metrics.test_fvd import scripted  # noqa: F401 (the stand-in I3D fixture)
from tests.models.adapters import FAIL_AFTER_ENV
from tests.models.runs import cached_run, samples_bytes, small_tasks

ADAPTERS = "tests.models.adapters"
REPO = Path(__file__).resolve().parents[1]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _copy(folder: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(folder, dst)
    return dst


def _edit_results(folder: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "results.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def _edit_line(path: Path, line: int, edit: Callable[[dict[str, Any]], None]) -> None:
    lines = path.read_text().splitlines(keepends=True)
    rec = json.loads(lines[line])
    edit(rec)
    lines[line] = json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n"
    path.write_text("".join(lines))


def _rehash(folder: Path, task: str) -> None:
    """Updates samples_sha256 after a samples edit, as a careful forger would."""
    import hashlib

    digest = hashlib.sha256((folder / "samples" / f"{task}.jsonl").read_bytes()).hexdigest()
    _edit_results(folder, lambda d: d["tasks"][task].__setitem__("samples_sha256", digest))


def _quick_oracle() -> Path:
    return cached_run("oracle", suite="quick", limit=4)


# ============================================================================ results validation
def test_a_real_quick_run_validates() -> None:
    folder = _quick_oracle()
    data = validate_results(folder)
    assert data == json.loads((folder / "results.json").read_text())
    assert validate_results(folder / "results.json") == data
    assert data["suite"]["name"] == "quick" and len(data["tasks"]) == 8
    assert not list((folder / "samples").glob("*.part-*"))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        for key in parents:
            data = data[key]
        data[last] = value

    return edit


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        for key in parents:
            data = data[key]
        del data[last]

    return edit


def _nudge(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        for key in parents:
            data = data[key]
        if isinstance(data[last], list):
            data[last] = [x - 1e-9 for x in data[last]]
        else:
            data[last] = data[last] + (1 if isinstance(data[last], int) else 1e-9)

    return edit


T = "tasks/long-horizon-bounce"
TAMPERED_RESULTS = [
    (
        "schema_version",
        _set("schema_version", 3),
        "'schema_version': expected an integer from 1 to 2, but found 3",
    ),
    ("level", _delete(f"{T}/metrics/psnr/level"), "long-horizon-bounce.metrics.psnr.level"),
    ("schema as text", _set("schema_version", "1"), "'schema_version'"),
    (
        "value",
        _nudge(f"{T}/metrics/position_error/value"),
        "long-horizon-bounce.metrics.position_error.value",
    ),
    ("ci95", _nudge(f"{T}/metrics/psnr/ci95"), "long-horizon-bounce.metrics.psnr.ci95"),
    ("n", _nudge(f"{T}/metrics/ssim/n"), "long-horizon-bounce.metrics.ssim.n"),
    ("n_missing", _nudge(f"{T}/metrics/ssim/n_missing"), "long-horizon-bounce.metrics.ssim.n"),
    (
        "curve",
        _set(f"{T}/metrics/psnr/curve", [100.0] * 3),
        "long-horizon-bounce.metrics.psnr.curve",
    ),
    (
        "direction",
        _set(f"{T}/metrics/position_error/higher_is_better", True),
        "position_error.higher_is_better",
    ),
    ("headline", _set(f"{T}/headline/score", 99.0), "long-horizon-bounce.headline.score"),
    ("headline range", _set(f"{T}/headline/score", 101.0), "[0, 100]"),
    ("summary", _set("summary/score", 99.0), "summary.score"),
    ("dropped metric field", _delete(f"{T}/metrics/ssim/n_missing"), "metrics.ssim.n_missing"),
    ("samples path", _set(f"{T}/samples", "../../etc/passwd"), "long-horizon-bounce.samples"),
    ("samples sha", _set(f"{T}/samples_sha256", "0" * 64), "samples_sha256"),
    ("n_episodes", _set(f"{T}/n_episodes", 3), "long-horizon-bounce"),
    ("n_episodes > limit", _set(f"{T}/n_episodes", 5), "long-horizon-bounce.n_episodes"),
    ("complete", _set(f"{T}/complete", "yes"), "long-horizon-bounce.complete"),
    ("git commit", _delete("git/commit"), "'git.commit'"),
    ("git dirty", _set("git/dirty", "no"), "'git.dirty'"),
    ("panbench version", _set("panbench_version", 1), "'panbench_version'"),
    ("suite hash", _set("suite/hash", "abc"), "'suite.hash'"),
    ("suite version", _delete("suite/version"), "'suite.version'"),
    ("model args", _set("model/args", "x=1"), "'model.args'"),
    ("model spec", _delete("model/spec"), "'model.spec'"),
    ("checkpoint", _set("model/checkpoint_sha256", "deadbeef"), "'model.checkpoint_sha256'"),
    ("seed", _set("run/seed", 1.5), "'run.seed'"),
    ("limit", _set("run/limit", 0), "'run.limit'"),
    ("batch size", _set("run/batch_size", "8"), "'run.batch_size'"),
    ("world size", _set("run/world_size", True), "'run.world_size'"),
    ("device", _delete("run/device"), "'run.device'"),
    ("libraries", _delete("environment/libraries"), "'environment.libraries'"),
    ("timings", _delete("timings"), "'timings'"),
    ("task version", _set(f"{T}/version", None), "long-horizon-bounce.version"),
    ("task hash", _delete(f"{T}/hash"), "long-horizon-bounce.hash"),
]


@pytest.mark.parametrize(
    ("edit", "field"), [pytest.param(e, f, id=i) for i, e, f in TAMPERED_RESULTS]
)
def test_tampered_results_are_refused_naming_the_field(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], field: str
) -> None:
    folder = _copy(_quick_oracle(), tmp_path)
    _edit_results(folder, edit)
    with pytest.raises(ResultsError, match=r"results\.json|long-horizon-bounce\.jsonl") as err:
        validate_results(folder)
    assert field in str(err.value)


def test_a_deleted_sample_line_is_refused(tmp_path: Path) -> None:
    folder = _copy(_quick_oracle(), tmp_path)
    path = folder / "samples" / "agent-sim.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2] + lines[3:]))
    with pytest.raises(ResultsError, match=r"agent-sim.jsonl: expected 4 lines .* found 3"):
        validate_results(folder)


def test_an_edited_sample_is_refused_even_with_its_hash_updated(tmp_path: Path) -> None:
    folder = _copy(_quick_oracle(), tmp_path)
    path = folder / "samples" / "stepwise-sim.jsonl"
    _edit_line(path, 1, lambda r: r["metrics"].__setitem__("choice_accuracy", 0.5))
    with pytest.raises(ResultsError, match=r"stepwise-sim.jsonl: expected sha256 .*samples_sha256"):
        validate_results(folder)
    _rehash(folder, "stepwise-sim")  # the forger updates the hash: the aggregates still disagree
    with pytest.raises(ResultsError) as err:
        validate_results(folder)
    assert "'tasks.stepwise-sim.metrics.choice_accuracy.value': expected 0.875" in str(err.value)
    assert "found 1.0" in str(err.value)


def test_unsorted_duplicated_or_broken_samples_are_refused(tmp_path: Path) -> None:
    src = _copy(_quick_oracle(), tmp_path)
    path = src / "samples" / "counterfactual.jsonl"
    good = path.read_text()
    lines = good.splitlines(keepends=True)

    path.write_text("".join([lines[1], lines[0], *lines[2:]]))
    _rehash(src, "counterfactual")
    with pytest.raises(ResultsError, match=r"counterfactual.jsonl:1: field 'index': expected 0"):
        validate_results(src)

    path.write_text(good)
    first_hash = json.loads(lines[0])["hash"]
    _edit_line(path, 2, lambda r: r.__setitem__("hash", first_hash))
    _rehash(src, "counterfactual")
    with pytest.raises(
        ResultsError, match=r"counterfactual.jsonl:3: field 'hash': expected unique"
    ):
        validate_results(src)

    path.write_text(good[:-20] + "\n")
    with pytest.raises(ResultsError, match=r"counterfactual.jsonl:4: expected one JSON object"):
        validate_results(src)

    path.unlink()
    with pytest.raises(ResultsError, match=r"counterfactual.jsonl: expected the samples file"):
        validate_results(src)


@pytest.mark.usefixtures("scripted")
def test_set_level_fvd_recomputes_from_the_samples(tmp_path: Path) -> None:
    from tests.test_fvd_task import _task

    out = tmp_path / "run"
    evaluate("copy-last", out=out, tasks=[_task(tmp_path)], limit=4, progress=False)
    entry = validate_results(out)["tasks"]["fvd-probe"]["metrics"]["fvd"]
    assert entry["set_level"] is True and entry["value"] > 0
    _edit_results(out, _set("tasks/fvd-probe/metrics/fvd/value", entry["value"] / 2))
    with pytest.raises(ResultsError, match=r"'tasks\.fvd-probe\.metrics\.fvd\.value'"):
        validate_results(out)


def test_metric_levels_come_from_the_catalogue(tmp_path: Path) -> None:
    from panbench.metrics.registry import get_metric

    data = validate_results(_quick_oracle())
    for task in data["tasks"].values():
        for name, entry in task["metrics"].items():
            assert entry["level"] == get_metric(name).level
    folder = _copy(_quick_oracle(), tmp_path)
    _edit_results(folder, _set("tasks/agent-sim/metrics/psnr/level", "set"))
    with pytest.raises(
        ResultsError, match=r"'tasks\.agent-sim\.metrics\.psnr\.level': expected 'episode'"
    ):
        validate_results(folder)


def test_metrics_outside_the_catalogue_are_refused(tmp_path: Path) -> None:
    folder = _copy(_quick_oracle(), tmp_path)

    def rename(data: dict[str, Any]) -> None:
        metrics = data["tasks"]["agent-sim"]["metrics"]
        metrics["astrology"] = metrics.pop("psnr")

    _edit_results(folder, rename)
    with pytest.raises(ResultsError, match=r"expected metrics of the catalogue.*'astrology'"):
        validate_results(folder)


def test_a_schema_1_results_file_still_reads_and_validates(tmp_path: Path) -> None:
    from panbench.results import read_results

    folder = _copy(_quick_oracle(), tmp_path)

    def downgrade(data: dict[str, Any]) -> None:  # what panbench wrote before levels
        data["schema_version"] = 1
        for task in data["tasks"].values():
            for entry in task["metrics"].values():
                del entry["level"]

    _edit_results(folder, downgrade)
    assert validate_results(folder)["schema_version"] == 1
    from panbench.metrics.registry import get_metric

    for task in read_results(folder)["tasks"].values():
        for name, entry in task["metrics"].items():
            assert entry["level"] == get_metric(name).level
    _edit_results(folder, _set("schema_version", 3))
    with pytest.raises(ResultsError, match=r"'schema_version': expected an integer from 1 to 2"):
        validate_results(folder)


def test_missing_or_invalid_results_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="No results file"):
        validate_results(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ResultsError, match="not valid JSON"):
        validate_results(tmp_path)


# ============================================================================ reproducibility
def test_same_run_twice_gives_identical_samples(tmp_path: Path) -> None:
    tasks = tuple(small_tasks())
    first = cached_run("random-action", tasks=tasks, batch_size=5)
    evaluate("random-action", out=tmp_path / "again", tasks=tasks, batch_size=5, progress=False)
    assert samples_bytes(tmp_path / "again") == samples_bytes(first)
    assert len(samples_bytes(first)) == 3


def test_batch_size_never_changes_per_episode_values(tmp_path: Path) -> None:
    tasks = tuple(small_tasks())
    five = cached_run("random-action", tasks=tasks, batch_size=5)
    one = evaluate("random-action", out=tmp_path / "one", tasks=tasks, batch_size=1, progress=False)
    assert samples_bytes(tmp_path / "one") == samples_bytes(five)
    other = json.loads((five / "results.json").read_text())
    for name, task in one["tasks"].items():
        assert task["metrics"] == other["tasks"][name]["metrics"]
        assert task["headline"] == other["tasks"][name]["headline"]
    assert one["run"]["batch_size"] == 1 and other["run"]["batch_size"] == 5


def test_an_interrupted_run_resumes_to_the_uninterrupted_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = small_tasks()
    reference = cached_run("oracle", tasks=tuple(tasks))
    out = tmp_path / "run"
    argv = ["evaluate", "--model", f"{ADAPTERS}:InterruptingOracle", "--tasks", ",".join(tasks)]
    argv += ["--out", str(out), "--batch-size", "2", "--no-progress"]
    samples = out / "samples"
    part = samples / "small-rollout.part-0.jsonl"

    # small-rollout has a horizon of 4: each batch of two episodes takes four step calls.
    monkeypatch.setenv(FAIL_AFTER_ENV, "5")
    assert main(argv) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err
    assert not (out / "results.json").exists()
    assert [json.loads(x)["index"] for x in part.read_text().splitlines()] == [0, 1]

    monkeypatch.setenv(FAIL_AFTER_ENV, "6")  # resumes at episode 2, then stops in episodes 4-5
    assert main(argv) == 130
    assert [json.loads(x)["index"] for x in part.read_text().splitlines()] == [0, 1, 2, 3]
    # A kill in the middle of a write leaves a truncated last line; it must not poison the resume.
    with part.open("a") as fh:
        fh.write('{"curves":{"psnr":[100.0,')

    monkeypatch.delenv(FAIL_AFTER_ENV)
    assert main(argv) == 0
    assert samples_bytes(out) == samples_bytes(reference)
    data = validate_results(out)
    # Only the two unfinished episodes of small-rollout were run again: 1 batch x 4 steps.
    assert data["tasks"]["small-rollout"]["timing"]["model"]["step_calls"] == 4
    ref = json.loads((reference / "results.json").read_text())
    for name, task in data["tasks"].items():
        assert task["metrics"] == ref["tasks"][name]["metrics"]


def test_a_truncated_part_line_is_dropped_before_appending(tmp_path: Path) -> None:
    from panbench.results import read_samples
    from panbench.samples import SampleStore

    store = SampleStore(tmp_path)
    part = store.part("t", 0)
    part.write_text('{"index":0}\n{"index":1,"metr')
    assert read_samples(part, tolerate_truncated_tail=True) == [{"index": 0}]
    store.append("t", 0, [{"index": 1}, {"index": 2}])
    assert part.read_text() == '{"index":0}\n{"index":1}\n{"index":2}\n'
    assert [r["index"] for r in read_samples(part)] == [0, 1, 2]


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        ({"model": "copy-last"}, "model"),
        ({"seed": 7}, "seed, tasks"),  # a seed override changes the task hashes too
        ({"limit": 3}, "limit"),
        ({"model": "random-action", "model_args": {"seed": 1}}, "model, model_args"),
    ],
)
def test_resuming_into_a_different_run_is_refused(
    tmp_path: Path, change: dict[str, Any], differs: str
) -> None:
    folder = _copy(cached_run("oracle", tasks=tuple(small_tasks())), tmp_path)
    before = _snapshot(folder)
    kwargs: dict[str, Any] = {"model": "oracle", "tasks": small_tasks(), **change}
    with pytest.raises(ConfigError, match=f"holds a different run \\(differs in: {differs}\\)"):
        evaluate(out=folder, progress=False, **kwargs)
    assert _snapshot(folder) == before


def test_resuming_a_different_run_from_the_cli_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(cached_run("oracle", tasks=tuple(small_tasks())), tmp_path)
    before = _snapshot(folder)
    argv = ["evaluate", "--model", "copy-last", "--tasks", ",".join(small_tasks())]
    assert main([*argv, "--out", str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "holds a different run" in err and "use another --out" in err
    assert _snapshot(folder) == before


def test_rerunning_a_finished_run_changes_no_samples(tmp_path: Path) -> None:
    folder = _copy(cached_run("oracle", tasks=tuple(small_tasks())), tmp_path)
    before = samples_bytes(folder)
    results = evaluate("oracle", out=folder, tasks=small_tasks(), progress=False)
    assert samples_bytes(folder) == before
    assert all(t["timing"]["model"]["step_calls"] == 0 for t in results["tasks"].values())
    validate_results(folder)


# ============================================================================ sharding
def test_torchrun_two_processes_match_a_single_process(tmp_path: Path) -> None:
    tasks = small_tasks(("small-rollout", "small-choice"))
    single = cached_run("random-action", tasks=tuple(tasks), limit=4)
    out = tmp_path / "sharded"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "panbench.cli", "evaluate", "--model", "random-action"]
    cmd += ["--tasks", ",".join(tasks), "--limit", "4", "--out", str(out), "--no-progress"]
    cmd += ["--batch-size", "3", "--save-videos", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert samples_bytes(out) == samples_bytes(single)
    data = validate_results(out)
    assert data["run"]["world_size"] == 2
    # Each rank saves the videos of its own episodes (rank 1 holds the odd ones).
    for task in ("small-rollout", "small-choice"):
        names = sorted(p.name for p in (out / "videos" / task).iterdir())
        assert names == [f"{i:05d}.mp4" for i in range(4)]


def test_torchrun_a_contract_error_on_one_rank_stops_every_rank(tmp_path: Path) -> None:
    tasks = small_tasks(("small-rollout",))
    out = tmp_path / "failed"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "panbench.cli", "evaluate", "--model", "tests.models.adapters:NaNOnRankOneModel"]
    cmd += ["--tasks", ",".join(tasks), "--limit", "4", "--out", str(out), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    # Before the fix rank 0 waited at a barrier for rank 1 until torchrun's timeout (minutes).
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text[-3000:]
    assert "'nan-on-rank-one'" in text and "NaN" in text  # rank 1's own ContractError
    assert "Rank 0 stopped because rank 1 failed" in text
    assert not (out / "results.json").exists()


def test_the_cli_module_runs_as_a_script() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "panbench.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("panbench ")


# ============================================================================ contract errors
CONTRACT = [
    (
        "WrongShapeModel",
        "small-rollout",
        ["'wrong-shape'", "expected frames of shape [2,1,H,W,3]", "but got [2,32,32,3]"],
    ),
    (
        "FloatFramesModel",
        "small-rollout",
        ["'float-frames'", "expected dtype uint8", "but got float32"],
    ),
    (
        "NaNFramesModel",
        "small-rollout",
        ["'nan-frames'", "expected uint8 frames", "float32 with NaN"],
    ),
    (
        "WrongFrameCountModel",
        "small-rollout",
        ["'wrong-frame-count'", "k=frames_per_step=2", "but got [2,1,32,32,3]"],
    ),
    (
        "NonTupleModel",
        "small-rollout",
        ["'non-tuple'", "expected step() to return (state, frames)", "but got ndarray"],
    ),
    (
        "FloatFramesModel",
        "small-choice",
        ["'float-frames'", "step 0 of task 'small-choice'", "float32"],
    ),
    (
        "WrongShapeModel",
        "small-counterfactual",
        ["counterfactual step of task 'small-counterfactual' (true action)", "[2,32,32,3]"],
    ),
]


@pytest.mark.parametrize(
    ("adapter", "task", "expected"),
    [pytest.param(a, t, e, id=f"{a}-{t}") for a, t, e in CONTRACT],
)
def test_contract_violations_fail_the_run_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], adapter: str, task: str, expected: list[str]
) -> None:
    out = tmp_path / "run"
    argv = ["evaluate", "--model", f"{ADAPTERS}:{adapter}", "--tasks", small_tasks((task,))[0]]
    assert main([*argv, "--out", str(out), "--batch-size", "2", "--no-progress"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "broke the WorldModel contract" in err
    if "counterfactual" not in task:
        assert f"in step 0 of task '{task}'" in err
    for piece in expected:
        assert piece in err, (piece, err)
    assert not (out / "results.json").exists()
    assert not (out / "samples" / f"{task}.jsonl").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--model", "orcale"], ["Unknown model 'orcale'", "Did you mean: oracle?"]),
        (
            ["--model", "random-action", "--model-args", "sed=1"],
            ["Unknown model argument 'sed'", "Did you mean: seed?"],
        ),
        (["--model", "copy-last", "--model-args", "seed"], ["key=value", "'seed'"]),
        (["--model", "no_such_module:Model"], ["Cannot import model 'no_such_module:Model'"]),
        (["--model", f"{ADAPTERS}:Nope"], ["has no attribute 'Nope'"]),
        (["--model", f"{ADAPTERS}:FAIL_AFTER_ENV"], ["WorldModel subclass"]),
        (["--model", f"{ADAPTERS}:NeedsArgModel"], ["requires the argument(s) width"]),
        (
            ["--model", f"{ADAPTERS}:NeedsArgModel", "--model-args", "width=2,scal=1"],
            ["Unknown model argument 'scal'", "Did you mean: scale?"],
        ),
        (["--model", f"{ADAPTERS}:NoSpecModel"], ["must set `spec`"]),
        (
            ["--model", f"{ADAPTERS}:BadSpaceModel"],
            ["'bad-space'", "action_space to be one of 'text'", "but got 'pixels'"],
        ),
        (["--model", "oracle", "--limit", "0"], ["--limit"]),
        (["--model", "oracle", "--batch-size", "0"], ["--batch-size"]),
    ],
)
def test_bad_model_options_fail_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: list[str]
) -> None:
    out = tmp_path / "run"
    task = small_tasks(("small-counterfactual",))[0]
    assert main(["evaluate", *argv, "--tasks", task, "--out", str(out), "--no-progress"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    for piece in expected:
        assert piece in err, (piece, err)
    assert not out.exists()


def test_a_continuous_model_on_an_env_without_vectors_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evaluate", "--model", f"{ADAPTERS}:ContinuousModel", "--out", str(tmp_path / "r")]
    # Refused up front (exit 2: unusable input), before any episode runs or anything is written.
    assert main([*argv, "--tasks", small_tasks(("small-rollout",))[0], "--no-progress"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "'continuous' takes continuous actions" in err and "env 'shapes'" in err
    assert "task 'small-rollout'" in err and "no action space" in err
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_an_action_space_given_as_text_is_accepted(tmp_path: Path) -> None:
    out = tmp_path / "run"
    task = small_tasks(("small-counterfactual",))[0]
    results = evaluate(f"{ADAPTERS}:PlainStringSpaceModel", out=out, tasks=[task], progress=False)
    assert results["model"]["spec"]["action_space"] == "text"
    validate_results(out)


# ============================================================================ videos
def test_save_videos_writes_k_decodable_videos_per_task(tmp_path: Path) -> None:
    from panbench.data.videos import read_video
    from panbench.envs import make as make_env
    from panbench.protocols import PROTOCOLS
    from panbench.suite import load_task

    tasks = small_tasks()
    out = tmp_path / "run"
    evaluate("oracle", out=out, tasks=tasks, limit=3, batch_size=2, save_videos=2, progress=False)
    for path in tasks:
        spec = load_task(path)
        folder = out / "videos" / spec.name
        assert sorted(p.name for p in folder.iterdir()) == ["00000.mp4", "00001.mp4"]
        env = make_env(spec.env.name, resolution=spec.env.resolution, **dict(spec.env.kwargs))
        protocol = PROTOCOLS.get(spec.protocol)(spec, env)
        for index in (0, 1):
            video = read_video(folder / f"{index:05d}.mp4")
            truth = protocol.episode(index).frames
            assert video.shape == (len(truth), 32, 64, 3)
            # predicted | true side by side; the oracle's prediction is the truth.
            for half in (video[:, :, :32], video[:, :, 32:]):
                err = np.abs(half.astype(float) - truth.astype(float)).mean()
                assert err < 12.0, (spec.name, index, err)
    validate_results(out)


def test_a_resumed_run_backfills_the_videos_of_finished_episodes(tmp_path: Path) -> None:
    from panbench.data.videos import read_video

    tasks = small_tasks(("small-rollout", "small-choice"))
    fresh = tmp_path / "fresh"
    evaluate("oracle", out=fresh, tasks=tasks, limit=3, save_videos=2, progress=False)
    out = tmp_path / "run"
    evaluate("oracle", out=out, tasks=tasks, limit=3, progress=False)  # finished, no videos
    assert not (out / "videos").exists()
    before = samples_bytes(out)
    evaluate("oracle", out=out, tasks=tasks, limit=3, save_videos=2, progress=False)
    assert samples_bytes(out) == before  # the records stay as they were
    for path in tasks:
        name = Path(path).stem
        got = sorted(p.name for p in (out / "videos" / name).iterdir())
        assert got == ["00000.mp4", "00001.mp4"]
        for video in got:
            np.testing.assert_array_equal(
                read_video(out / "videos" / name / video),
                read_video(fresh / "videos" / name / video),
            )
    validate_results(out)


def test_results_record_the_commit_the_run_started_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import panbench.harness
    import panbench.results

    tasks = small_tasks()[:1]
    start = {"commit": "a" * 40, "dirty": False}
    monkeypatch.setattr(panbench.harness, "git_info", lambda: dict(start))
    monkeypatch.setattr(panbench.results, "git_info", lambda: dict(start))
    same = evaluate("copy-last", out=tmp_path / "same", tasks=tasks, limit=2, progress=False)
    assert same["git"] == start
    # a commit made while the run went on: the start's commit is kept, and marked dirty
    monkeypatch.setattr(panbench.results, "git_info", lambda: {"commit": "b" * 40, "dirty": False})
    moved = evaluate("copy-last", out=tmp_path / "moved", tasks=tasks, limit=2, progress=False)
    assert moved["git"] == {"commit": "a" * 40, "dirty": True}
    assert validate_results(tmp_path / "moved")["git"] == moved["git"]
