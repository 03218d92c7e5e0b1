"""The pan-ref adapter: contract, batch-size independence, branching, re-encoding, end to end."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from panbench.cli import main
from panbench.data.episodes import make_episode
from panbench.envs import make
from panbench.errors import DataError
from panbench.io import sha256_file
from panbench.models.api import ActionSpace
from panbench.models.registry import load_model
from panbench.protocols.base import ModelRunner

pytest.importorskip("diffusers")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.reference_model.helpers import tiny_model

    path = tmp_path_factory.mktemp("pan-ref") / "ckpt"
    tiny_model(seed=1).save_pretrained(path, training={"command": "test"})
    return path


def _episodes(n: int, horizon: int = 3) -> list:
    env = make("shapes", resolution=32)
    return [make_episode(env, "t", 7, i, 2, horizon, "agent") for i in range(n)]


def _rollout(model, episodes) -> np.ndarray:  # type: ignore[no-untyped-def]
    runner = ModelRunner(model, make("shapes", resolution=32), 32)
    state = runner.reset(episodes)
    frames = []
    for t in range(len(episodes[0].actions)):
        state, f = runner.step(state, [e.actions[t] for e in episodes], "test")
        frames.append(f)
    return np.stack(frames, axis=1)


def test_spec_and_describe(checkpoint: Path) -> None:
    model = load_model("pan-ref", {"path": str(checkpoint), "steps": "1"})
    spec = model.spec
    assert spec.action_space is ActionSpace.TEXT and spec.resolution == 32
    assert spec.frames_per_step == 1
    info = model.describe()
    assert info["checkpoint_sha256"] == sha256_file(checkpoint / "model.safetensors")
    assert info["config"]["resolution"] == 32 and info["steps"] == 1


def test_rollouts_do_not_depend_on_the_batch(checkpoint: Path) -> None:
    model = load_model("pan-ref", {"path": str(checkpoint)})
    eps = _episodes(3)
    together = _rollout(model, eps)
    alone = np.concatenate([_rollout(model, [e]) for e in eps])
    assert together.shape == (3, 3, 32, 32, 3)
    np.testing.assert_array_equal(together, alone)


def test_seed_changes_the_samples(checkpoint: Path) -> None:
    eps = _episodes(2)
    a = _rollout(load_model("pan-ref", {"path": str(checkpoint)}), eps)
    b = _rollout(load_model("pan-ref", {"path": str(checkpoint), "seed": "1"}), eps)
    assert not np.array_equal(a, b)


def test_clone_branches_and_history_is_re_encoded(checkpoint: Path) -> None:
    import torch

    model = load_model("pan-ref", {"path": str(checkpoint), "micro_batch": 1})
    eps = _episodes(2)
    state = model.reset(ModelRunner(model, make("shapes", resolution=32), 32).context(eps))
    branch = model.clone(state)
    acts = [e.actions[0] for e in eps]
    s1, f1 = model.step(state, acts)
    _, f2 = model.step(branch, acts)
    np.testing.assert_array_equal(f1, f2)  # the clone carries the same noise stream
    # the generated frame is re-encoded when the rollout steps again, not before
    assert s1.pending is not None and s1.latents.shape[1] == 2
    latents = model._rollouts._settle(s1)
    # the history holds h(generated frame), not the model's raw latent
    with torch.no_grad():  # row by row, as micro_batch=1 runs
        z = torch.cat([model.model.encode_frames(torch.from_numpy(f1[i : i + 1])) for i in (0, 1)])
    assert torch.equal(latents[:, -1], z[:, 0])
    assert s1.pending is None and latents.shape[1] == 2 and len(s1.actions[0]) == 1


def test_micro_batches_keep_rows_independent(checkpoint: Path) -> None:
    # A batch that spans two micro-batches, its rows in another order, and each row alone:
    # with the micro-batch size fixed, a row's frames depend on that row only.
    model = load_model("pan-ref", {"path": str(checkpoint), "micro_batch": 4, "steps": 2})
    eps = _episodes(5, horizon=2)
    together = _rollout(model, eps)
    reordered = _rollout(model, eps[::-1])[::-1]
    alone = np.concatenate([_rollout(model, [e]) for e in eps])
    np.testing.assert_array_equal(together, reordered)
    np.testing.assert_array_equal(together, alone)
    # The row-by-row scheme differs only by float rounding.
    rows = _rollout(
        load_model("pan-ref", {"path": str(checkpoint), "micro_batch": 1, "steps": 2}), eps
    )
    assert np.abs(rows.astype(int) - together.astype(int)).mean() < 2.0


def test_identical_contexts_are_encoded_once(checkpoint: Path) -> None:
    import torch

    model = load_model("pan-ref", {"path": str(checkpoint)})
    eps = _episodes(2)
    runner = ModelRunner(model, make("shapes", resolution=32), 32)
    calls: list[int] = []
    encode = model.model.encode_frames

    def counting(frames: torch.Tensor) -> torch.Tensor:
        calls.append(int(frames.shape[0]))
        return encode(frames)

    model.model.encode_frames = counting  # type: ignore[method-assign]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(4)  # fixed micro-batches
        repeated = model.reset(runner.context([eps[0], eps[1], eps[0], eps[0]]))
        assert calls == [16]  # one micro-batch holding the distinct frames, one a row (padded)
        model._rollouts.forget()
        torch.set_num_threads(1)  # flexible calls: the distinct frames, in pairs
        model.reset(runner.context([eps[0], eps[1], eps[0], eps[0]]))
        distinct = {f.tobytes() for e in eps for f in e.context_frames[-2:]}
        assert calls == [16, len(distinct) + len(distinct) % 2]
    finally:
        model.model.encode_frames = encode  # type: ignore[method-assign]
        torch.set_num_threads(threads)
    unique = model.reset(runner.context(eps))
    assert torch.equal(repeated.latents[[0, 1]], unique.latents)
    assert torch.equal(repeated.latents[2], repeated.latents[0])


def test_repeated_rows_are_computed_once_with_the_same_frames(checkpoint: Path) -> None:
    # Closed-loop repeats imagine identical rows (same context, action and seed) until they
    # part: each is computed once, and every copy gets the frames and noise stream it would get.
    model = load_model("pan-ref", {"path": str(checkpoint), "micro_batch": 2, "steps": 1})
    eps = _episodes(2, horizon=2)
    rows: list[int] = []
    predict = model.model.predict_step

    def counting(latents, *args):  # type: ignore[no-untyped-def]
        rows.append(int(latents.shape[0]))
        return predict(latents, *args)

    model.model.predict_step = counting  # type: ignore[method-assign]
    try:
        repeated = _rollout(model, [eps[0], eps[1], eps[0], eps[0]])
    finally:
        model.model.predict_step = predict  # type: ignore[method-assign]
    assert rows == [2, 2]  # two distinct rows per step: one micro-batch each, not two
    distinct = _rollout(model, eps)
    np.testing.assert_array_equal(repeated[[0, 1]], distinct)
    np.testing.assert_array_equal(repeated[2], distinct[0])
    np.testing.assert_array_equal(repeated[3], distinct[0])
    # rows that share a context but not the noise stream stay apart
    other = load_model("pan-ref", {"path": str(checkpoint), "micro_batch": 2, "steps": 1})
    ctx = ModelRunner(other, make("shapes", resolution=32), 32).context([eps[0], eps[0]])
    state = other.reset(ctx)
    state.generators[1].manual_seed(123)
    _, frames = other.step(state, [eps[0].actions[0]] * 2)
    assert not np.array_equal(frames[0], frames[1])


@pytest.mark.parametrize("bad", ["0", "-2", "x"])
def test_bad_micro_batch_is_refused(checkpoint: Path, bad: str) -> None:
    from panbench.errors import ConfigError, PanbenchError

    with pytest.raises((ConfigError, PanbenchError), match="micro_batch"):
        load_model("pan-ref", {"path": str(checkpoint), "micro_batch": bad})


def test_missing_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_model("pan-ref", {"path": str(tmp_path / "nowhere")})


def test_evaluate_end_to_end(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "evaluate",
            "--model",
            "pan-ref",
            "--model-args",
            f"path={checkpoint},steps={{agent-sim: 1}}",
            "--tasks",
            "agent-sim",
            "--limit",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    text = json.dumps(results)
    assert sha256_file(checkpoint / "model.safetensors") in text
    metrics = results["tasks"]["agent-sim"]["metrics"]
    assert metrics["psnr"]["n"] == 2
    # the task's sampling steps and the checkpoint's default, in the task's entry
    assert results["tasks"]["agent-sim"]["model_settings"] == {
        "steps": 1,
        "checkpoint_steps": 2,
        "spacing": "leading",
    }
    assert results["run"]["threads"]["intra_op"] >= 1


def test_shipped_checkpoint_is_the_default() -> None:
    from panbench.models.pan_ref import default_checkpoint

    folder = default_checkpoint()
    weights = folder / "model.safetensors"
    assert weights.stat().st_size + (folder / "config.json").stat().st_size <= 20 * 2**20
    doc = json.loads((folder / "config.json").read_text())
    assert doc["training"]["command"].startswith("panbench train --config ")
    model = load_model("pan-ref")
    assert model.describe()["checkpoint_sha256"] == sha256_file(weights)
    assert model.spec.resolution == 32


def test_missing_model_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from panbench.errors import ConfigError

    monkeypatch.setitem(sys.modules, "reference_model.model", None)  # import now fails
    with pytest.raises(ConfigError, match=r"panbench\[model\]"):
        load_model("pan-ref")


def test_steps_per_task_are_used_and_recorded(checkpoint: Path, tmp_path: Path) -> None:
    model = load_model("pan-ref", {"path": str(checkpoint), "steps": {"a": 1, "default": 2}})
    assert model.for_task("a") == {"steps": 1, "checkpoint_steps": 2, "spacing": "leading"}
    assert model.steps == 1
    assert model.for_task("b")["steps"] == 2 and model.steps == 2
    plain = load_model("pan-ref", {"path": str(checkpoint)})
    assert plain.for_task("a") == {"steps": 2, "checkpoint_steps": 2, "spacing": "leading"}
    eps = _episodes(1)
    model.for_task("a")
    one = _rollout(model, eps)
    model.for_task("b")
    assert not np.array_equal(one, _rollout(model, eps))  # the steps really changed
    with pytest.raises(Exception, match="expected steps >= 1"):
        load_model("pan-ref", {"path": str(checkpoint), "steps": {"a": 0}})


def test_default_micro_batches_do_not_depend_on_the_thread_count(checkpoint: Path) -> None:
    # The thread policy gives torch 1 or 2 threads depending on the machine's load; with the
    # micro-batch size fixed at 16 the values must not change with it.
    import torch

    model = load_model("pan-ref", {"path": str(checkpoint)})
    eps = _episodes(3)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _rollout(model, eps)
        torch.set_num_threads(2)
        two = _rollout(model, eps)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def _timesteps(model, eps) -> list[int]:  # type: ignore[no-untyped-def]
    """The timesteps at which the decoder's UNet runs for one rollout step of ``eps``."""
    seen: list[int] = []
    denoise = model.model.decoder.denoise

    def recording(noisy, prev, t, states):  # type: ignore[no-untyped-def]
        seen.append(int(t[0]))
        return denoise(noisy, prev, t, states)

    model.model.decoder.denoise = recording
    try:
        runner = ModelRunner(model, make("shapes", resolution=32), 32)
        runner.step(runner.reset(eps), [e.actions[0] for e in eps], "test")
    finally:
        model.model.decoder.denoise = denoise
    return seen


def test_planning_tasks_sample_one_trailing_step_unless_told_otherwise(checkpoint: Path) -> None:
    from panbench.models.pan_ref import PLANNING_SAMPLING

    eps = _episodes(1, horizon=1)
    plain = load_model("pan-ref", {"path": str(checkpoint)})  # checkpoint: 2 steps
    steps, spacing = PLANNING_SAMPLING["plan-nav"]
    assert plain.for_task("plan-nav") == {
        "steps": steps,
        "checkpoint_steps": 2,
        "spacing": spacing,
    }
    assert (steps, spacing) == (1, "trailing")
    assert _timesteps(plain, eps) == [999]  # one x0 prediction from the last timestep
    assert plain.for_task("agent-sim") == {"steps": 2, "checkpoint_steps": 2, "spacing": "leading"}
    assert _timesteps(plain, eps) == [500, 0]  # the checkpoint's own schedule again
    assert plain.describe()["planning_sampling"]["plan-arrange"] == {
        "steps": 1,
        "spacing": "trailing",
    }
    # a user's choice for every task (or for the task) replaces the planning default
    every = load_model("pan-ref", {"path": str(checkpoint), "steps": 2})
    assert every.for_task("plan-nav")["spacing"] == "leading" and every.steps == 2
    assert every.describe()["planning_sampling"] is None
    told = load_model("pan-ref", {"path": str(checkpoint), "spacing": {"plan-nav": "leading"}})
    assert told.for_task("plan-nav") == {"steps": 2, "checkpoint_steps": 2, "spacing": "leading"}
    assert told.for_task("plan-arrange")["steps"] == 1  # still the default there
    both = load_model("pan-ref", {"path": str(checkpoint), "steps": 3, "spacing": "trailing"})
    both.for_task("agent-sim")
    assert _timesteps(both, eps) == [999, 666, 332]


@pytest.mark.parametrize("bad", ["middle", "{a: 3}"])
def test_bad_spacing_is_refused(checkpoint: Path, bad: str) -> None:
    from panbench.options import parse_kv

    with pytest.raises(Exception, match="expected spacing leading or trailing"):
        load_model("pan-ref", {"path": str(checkpoint), **parse_kv(f"spacing={bad}")})


def test_network_calls() -> None:
    from panbench.models.pan_ref import MAX_CALL_ROWS, _calls

    assert _calls(20, 16, None) == [(0, 16, 16), (16, 20, 16)]  # fixed micro-batches
    assert _calls(5, 16, (16, 1)) == [(0, 5, 16)]  # padded to 16
    assert _calls(20, 16, (16, 1)) == [(0, 20, 20)]  # one call, not 16 + 4 padded to 16
    assert _calls(5, 16, (2, 2)) == [(0, 5, 6)]  # frames in pairs
    for total in (17, 64, 65, 100, 300):
        for flexible in ((16, 1), (2, 2)):
            calls = _calls(total, 16, flexible)
            assert calls[0][0] == 0 and calls[-1][1] == total
            assert all(a[1] == b[0] for a, b in itertools.pairwise(calls))
            for start, stop, width in calls:
                assert stop - start <= width <= MAX_CALL_ROWS and width % flexible[1] == 0


def test_flexible_calls_keep_rows_independent(checkpoint: Path) -> None:
    # On 1 and 2 threads more rows than a micro-batch go through in one call (20 here, not
    # 16 + 4 padded) and frames are encoded in pairs (40 in one call; 2 for one episode): a
    # row's frames are still those it gets alone, and those of fixed 16-row calls (4 threads).
    import torch

    eps = _episodes(20, horizon=2)
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            model = load_model("pan-ref", {"path": str(checkpoint), "steps": 1})
            together = _rollout(model, eps)
            fresh = load_model("pan-ref", {"path": str(checkpoint), "steps": 1})
            alone = [_rollout(fresh, [e]) for e in eps[:3] + eps[-2:]]
            np.testing.assert_array_equal(together[[0, 1, 2, -2, -1]], np.concatenate(alone))
            runs.append(together)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


@pytest.mark.parametrize("threads", [1, 2])
def test_shipped_networks_compute_a_row_alike_in_calls_of_16_rows_or_more(threads: int) -> None:
    # The property WIDE_CALLS_FROM rests on, for pan-tiny: a row's values are the same in a
    # 16-row call and in a call of 17 to MAX_CALL_ROWS rows (backbone, UNet, VAE decoder), or
    # of any even number of frames (VAE encoder).
    import torch

    from panbench.models.pan_ref import MAX_CALL_ROWS, default_checkpoint
    from reference_model.model import PanModel

    model = PanModel.from_pretrained(default_checkpoint())
    n = MAX_CALL_ROWS
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(n, 2, 4, 16, 16, generator=gen)
    ids = model.encode_actions([["move the red circle up", "move the blue square left"]] * n)
    states = torch.randn(n, 16, 128, generator=gen)
    t = torch.full((n,), 999)
    frames = torch.randint(0, 256, (n, 1, 32, 32, 3), dtype=torch.uint8, generator=gen)
    nets = {
        "encoder": lambda i: model.encode_frames(frames[i]),
        "backbone": lambda i: model.backbone.last_round(latents[i], ids[i]),
        "unet": lambda i: model.decoder.denoise(latents[i, 1], latents[i, 0], t[i], states[i]),
        "decoder": lambda i: model.encoder.decode(latents[i, 1]),
    }
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        with torch.no_grad():
            for name, net in nets.items():
                rows = torch.arange(n)
                ref = torch.cat([net(rows[i : i + 16]) for i in range(0, n, 16)])
                sizes = (2, 4, 6, 10, 18, 40, n) if name == "encoder" else (17, 23, 40, n)
                for size in sizes:
                    assert torch.equal(net(rows[:size]), ref[:size]), (name, size)
    finally:
        torch.set_num_threads(before)


def test_remembered_latents_are_those_of_a_fresh_encoding(checkpoint: Path) -> None:
    # A closed-loop context slides by one frame per step: only the new frame is encoded, and
    # the latents of remembered frames are byte-identical to encoding everything afresh.
    import dataclasses

    import torch

    model = load_model("pan-ref", {"path": str(checkpoint)})
    env = make("shapes", resolution=32)
    eps = [make_episode(env, "t", 7, i, 3, 1, "agent") for i in range(3)]
    context = ModelRunner(model, env, 32).context(eps)  # 3 frames; the model reads the last 2
    early = dataclasses.replace(
        context, frames=context.frames[:, :2], actions=[a[:1] for a in context.actions]
    )
    calls: list[int] = []
    encode = model.model.encode_frames

    def counting(frames: torch.Tensor) -> torch.Tensor:
        calls.append(int(frames.shape[0]) * int(frames.shape[1]))
        return encode(frames)

    def distinct(frames: np.ndarray) -> set[bytes]:
        return {f.tobytes() for f in frames.reshape(-1, *frames.shape[2:])}

    model.model.encode_frames = counting  # type: ignore[method-assign]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # flexible calls: distinct frames in pairs
        model.reset(early)
        first = len(distinct(early.frames))
        assert calls == [first + first % 2] and len(model._rollouts._latents) == first
        late = model.reset(context)
        new = len(distinct(early.frames) | distinct(context.frames[:, 1:])) - first
        assert new > 0 and calls == [first + first % 2, new + new % 2]  # the new frames only
        again = model.reset(context)
        assert len(calls) == 2  # nothing new
    finally:
        model.model.encode_frames = encode  # type: ignore[method-assign]
        torch.set_num_threads(threads)
    fresh = load_model("pan-ref", {"path": str(checkpoint)}).reset(context)
    assert torch.equal(late.latents, fresh.latents)
    assert torch.equal(again.latents, fresh.latents)
    model.to("cpu")  # forgets what it remembered
    assert not model._rollouts._latents
