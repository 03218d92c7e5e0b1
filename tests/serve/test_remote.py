"""A served model scores exactly as in-process, resumes after its server died, frees states."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from panbench.cli import main
from panbench.envs.base import Action
from panbench.harness import evaluate
from panbench.models.api import Context
from panbench.models.remote import RemoteModel
from panbench.serve.process import ServerProcess
from tests.models.runs import samples_bytes, small_tasks
from tests.serve.models import DIE_AFTER_ENV

NOISY = "tests.serve.models:NoisyModel"


@pytest.fixture(scope="module")
def server() -> ServerProcess:
    with ServerProcess(NOISY) as srv:
        yield srv


@pytest.fixture(scope="module")
def local_run(tmp_module: Path) -> Path:
    out = tmp_module / "local"
    evaluate(NOISY, out=out, tasks=small_tasks(), batch_size=4, progress=False)
    return out


def test_served_model_gives_byte_identical_samples(
    server: ServerProcess, local_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "remote"
    # Another batch size on purpose: a served model keeps the per-episode seeds too.
    evaluate(
        "remote", {"url": server.url}, out=out, tasks=small_tasks(), batch_size=3, progress=False
    )
    assert samples_bytes(out) == samples_bytes(local_run)
    remote, local = (json.loads((d / "results.json").read_text()) for d in (out, local_run))
    assert remote["tasks"].keys() == local["tasks"].keys()
    for task, entry in local["tasks"].items():
        assert remote["tasks"][task]["metrics"] == entry["metrics"]


def test_results_record_the_server_and_its_model(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "remote"
    tasks = small_tasks(("small-choice",))
    evaluate("remote", {"url": server.url}, out=out, tasks=tasks, limit=2, progress=False)
    model = json.loads((out / "results.json").read_text())["model"]
    assert model["name"] == "remote"
    assert model["args"] == {"url": server.url}
    assert model["spec"]["name"] == "noisy"
    assert model["checkpoint_sha256"] == "ab" * 32
    assert model["info"]["remote"]["url"] == server.url
    assert model["info"]["remote"]["model"] == "noisy"
    assert model["info"]["remote"]["wire_version"] == 1
    assert model["info"]["adapter"] == NOISY
    assert model["info"]["device"] == "cpu"  # where the server runs it
    assert model["info"]["amplitude"] == 8


def test_killed_server_then_rerun_completes_with_identical_results(
    local_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "resumed"
    tasks = small_tasks(("small-rollout",))
    command = ["evaluate", "--model", "remote", "--tasks", tasks[0], "--out", str(out)]
    command += ["--batch-size", "2", "--no-progress"]
    with ServerProcess("tests.serve.models:DyingModel", env={DIE_AFTER_ENV: "10"}) as dying:
        url = dying.url
        assert main([*command, "--model-args", f"url={url}"]) == 2
        err = capsys.readouterr().err
        assert url in err and "Traceback" not in err
        assert "rerun the same command" in err
        part = next((out / "samples").glob("small-rollout.part-*.jsonl"))
        finished = part.read_text().splitlines()
        assert 0 < len(finished) < 6  # some batches finished before the crash, not all
        dying.proc.wait(timeout=10)
        # The same server, back on the same port: the same command resumes the run.
        dying.env.pop(DIE_AFTER_ENV)
        dying.start(port=dying.port)
        assert main([*command, "--model-args", f"url={url}"]) == 0
    resumed = samples_bytes(out)["small-rollout.jsonl"]
    assert resumed == samples_bytes(local_run)["small-rollout.jsonl"]
    lines = resumed.decode().splitlines()
    assert lines[: len(finished)] == finished  # what finished before the crash was kept


def _context(batch: int, res: int = 16) -> Context:
    frames = np.zeros((batch, 2, res, res, 3), np.uint8)
    return Context(frames=frames, actions=[[Action(0, "a")]] * batch, seeds=list(range(batch)))


def test_states_dropped_by_the_harness_are_released_on_the_server(server: ServerProcess) -> None:
    model = RemoteModel(server.url)
    held = model._client.call("release", {}).fields["held"]
    state = model.reset(_context(4))
    branch = model.clone(state)
    for _ in range(20):
        state, frames = model.step(state, [Action(1, "b")] * 4)
        assert frames.shape == (4, 1, 16, 16, 3)
    # Only the two live handles remain held (the 20 superseded states were released).
    assert model._client.call("release", {}).fields["held"] == held + 2
    del branch, state
    assert model._client.call("release", {}).fields["held"] == held
    model.close()


def test_served_steps_match_in_process_steps_through_clones(server: ServerProcess) -> None:
    from tests.serve.models import NoisyModel

    remote, local = RemoteModel(server.url), NoisyModel()
    states = [m.reset(_context(3)) for m in (remote, local)]
    actions = [Action(i, f"a{i}") for i in range(3)]
    branches = [m.clone(s) for m, s in zip((remote, local), states, strict=True)]
    for model_states in (states, branches):
        for _ in range(3):
            (rs, rf), (ls, lf) = (
                m.step(s, actions) for m, s in zip((remote, local), model_states, strict=True)
            )
            model_states[:] = [rs, ls]
            np.testing.assert_array_equal(rf, lf)


@pytest.mark.slow
def test_quick_suite_served_is_byte_identical_to_in_process(
    server: ServerProcess, tmp_path: Path
) -> None:
    local, remote = tmp_path / "local", tmp_path / "remote"
    evaluate(NOISY, out=local, suite="quick", progress=False)
    evaluate("remote", {"url": server.url}, out=remote, suite="quick", progress=False)
    assert samples_bytes(remote) == samples_bytes(local)
    assert len(samples_bytes(local)) == 8  # every task of quick


@pytest.mark.slow
def test_served_pan_ref_is_byte_identical_to_in_process(tmp_path: Path) -> None:
    # A torch model with seeded diffusion sampling, served by `panbench serve --model pan-ref`.
    tasks = small_tasks(("small-rollout", "small-counterfactual"))
    evaluate("pan-ref", out=tmp_path / "local", tasks=tasks, limit=3, progress=False)
    with ServerProcess("pan-ref", start_timeout=300) as srv:
        url = {"url": srv.url}
        evaluate("remote", url, out=tmp_path / "remote", tasks=tasks, limit=3, progress=False)
    assert samples_bytes(tmp_path / "remote") == samples_bytes(tmp_path / "local")


def test_resume_behind_the_same_url_refuses_another_served_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    task = small_tasks(("small-choice",))[0]
    with ServerProcess(NOISY) as first:
        url, port = first.url, first.port
        command = ["evaluate", "--model", "remote", "--model-args", f"url={url}"]
        command += ["--tasks", task, "--out", str(out), "--limit", "2", "--no-progress"]
        assert main(command) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["model_identity"]["spec"]["name"] == "noisy"
    assert run["model_identity"]["checkpoint_sha256"] == "ab" * 32
    other = ServerProcess("copy-last")
    try:
        other.start(port=port)
        assert main(command) == 2  # input refused (docs/errors.md)
    finally:
        other.__exit__()
    err = " ".join(capsys.readouterr().err.split())
    assert "holds a different run (differs in: model_identity)" in err


def test_one_request_per_harness_call_whatever_the_batch(tmp_path: Path) -> None:
    tasks = small_tasks(("small-rollout",))
    with ServerProcess(NOISY) as srv:
        results = evaluate(
            "remote",
            {"url": srv.url},
            out=tmp_path / "r",
            tasks=tasks,
            batch_size=3,
            progress=False,
        )
        probe = RemoteModel(srv.url)
        calls = probe._client.call("release", {}).fields["calls"]
        probe.close()
    harness = results["tasks"]["small-rollout"]["timing"]["model"]
    # 6 episodes in batches of 3: the harness made 2 resets; each was one request, as each step.
    assert harness["reset_calls"] == 2
    assert calls["reset"] == harness["reset_calls"]
    assert calls["step"] == harness["step_calls"] == 2 * 4  # horizon 4
    assert calls["info"] == 2  # the run's adapter and this check's


def test_served_reward_predictions_match_in_process_ones() -> None:
    from tests.serve.models import RewardModel

    with ServerProcess("tests.serve.models:RewardModel") as srv:
        remote, local = RemoteModel(srv.url), RewardModel()
        assert remote.spec.predicts_rewards
        context = _context(3)
        context.frames[1] = 200  # one rollout bright, so rewards and terminals differ by row
        states = [m.reset(context) for m in (remote, local)]
        for step in range(2):
            actions = [Action(i + step, f"a{i}") for i in range(3)]
            states = [m.step(s, actions)[0] for m, s in zip((remote, local), states, strict=True)]
            (r_rew, r_term), (l_rew, l_term) = (
                m.outcomes(s) for m, s in zip((remote, local), states, strict=True)
            )
            np.testing.assert_array_equal(r_rew, l_rew)
            np.testing.assert_array_equal(r_term, l_term)
            assert r_term.dtype == bool and r_term.tolist() == [False, True, False]


def test_a_model_without_rewards_is_refused_outcomes_and_vector_specs_travel(
    server: ServerProcess,
) -> None:
    from panbench.errors import RemoteError

    model = RemoteModel(server.url)
    state = model.reset(_context(2))
    with pytest.raises(RemoteError, match="does not predict rewards"):
        model.outcomes(state)
    with ServerProcess("tests.serve.models:VectorModel") as srv:
        spec = RemoteModel(srv.url).spec
    assert (spec.action_space.value, spec.action_dim) == ("continuous", 2)
