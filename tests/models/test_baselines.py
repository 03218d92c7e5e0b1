"""The built-in baselines on the ``quick`` suite: ``oracle`` is perfect, the floors are not."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from panbench.envs import make as make_env
from panbench.models.api import Context
from panbench.models.baselines import CopyLastModel, OracleModel, RandomActionModel
from panbench.models.registry import load_model
from panbench.results import validate_results
from tests.models.runs import cached_run

LIMIT = 4
#: grounded metrics the oracle must get exactly right wherever a task reports them
PERFECT = {
    "action_following": 1.0,
    "hold_accuracy": 1.0,
    "change_following": 1.0,
    "presence_accuracy": 1.0,
    "tracking_accuracy": 1.0,
    "choice_accuracy": 1.0,
    "counterfactual_accuracy": 1.0,
    "psnr": 100.0,
    "ssim": 1.0,
}


def _quick(model: str) -> dict[str, Any]:
    folder = cached_run(model, suite="quick", limit=LIMIT)
    return validate_results(folder)


def _samples(model: str, task: str) -> list[dict[str, Any]]:
    folder = cached_run(model, suite="quick", limit=LIMIT)
    return [
        json.loads(line) for line in (folder / "samples" / f"{task}.jsonl").read_text().splitlines()
    ]


def test_oracle_is_perfect_on_every_grounded_metric() -> None:
    results = _quick("oracle")
    assert set(results["tasks"]) == {
        "agent-sim",
        "env-sim",
        "long-horizon",
        "long-horizon-bounce",
        "stepwise-sim",
        "counterfactual",
        "plan-nav",
        "plan-arrange",
    }
    seen = set()
    for name, task in results["tasks"].items():
        assert task["headline"]["score"] == 100.0, name
        for metric, entry in task["metrics"].items():
            if metric in PERFECT:
                seen.add(metric)
                assert entry["value"] == PERFECT[metric], (name, metric, entry)
                assert entry["n"] >= 1, (name, metric)
        # Per episode too, not just on average.
        for rec in _samples("oracle", name):
            for metric, value in rec["metrics"].items():
                if metric in PERFECT and value is not None:
                    assert value == PERFECT[metric], (name, rec["index"], metric, value)
    assert seen == set(PERFECT), "a grounded metric went untested"
    assert results["summary"]["score"] == 100.0


def test_oracle_position_error_is_subpixel() -> None:
    results = _quick("oracle")
    checked = 0
    for name, task in results["tasks"].items():
        entry = task["metrics"].get("position_error")
        if entry is None:
            continue
        checked += 1
        assert entry["n"] == LIMIT and 0.0 <= entry["value"] <= 0.5, (name, entry)
        for rec in _samples("oracle", name):
            curve = np.array(rec["curves"]["position_error"], dtype=float)
            assert np.nanmax(curve) <= 0.5, (name, rec["index"])
    assert checked == 4


def test_oracle_counterfactual_prefers_the_commanded_action() -> None:
    entry = _quick("oracle")["tasks"]["counterfactual"]["metrics"]["delta_psnr"]
    assert entry["value"] > 30.0  # pred_a is the truth (100 dB); pred_b is another outcome


@pytest.mark.parametrize("model", ["copy-last", "random-action"])
def test_floors_score_clearly_below_the_oracle(model: str) -> None:
    oracle = _quick("oracle")
    floor = _quick(model)
    for name, task in floor["tasks"].items():
        score = task["headline"]["score"]
        assert score is not None and score <= 70.0, (model, name, score)
        assert score < oracle["tasks"][name]["headline"]["score"] - 25.0, (model, name)
    assert floor["summary"]["score"] < 40.0
    # Neither floor follows a commanded change; neither tells the counterfactuals apart.
    assert floor["tasks"]["agent-sim"]["metrics"]["action_following"]["value"] < 0.5
    assert floor["tasks"]["env-sim"]["metrics"]["change_following"]["value"] < 0.5
    assert floor["tasks"]["counterfactual"]["metrics"]["counterfactual_accuracy"]["value"] == 0.0


def test_copy_last_repeats_the_last_context_frame() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 2, 8, 8, 3), dtype=np.uint8)
    model = CopyLastModel()
    state = model.reset(Context(frames=frames, actions=[[], [], []], seeds=[1, 2, 3]))
    for _ in range(3):
        state, out = model.step(state, [None, None, None])  # type: ignore[list-item]
        assert out.shape == (3, 1, 8, 8, 3) and out.dtype == np.uint8
        np.testing.assert_array_equal(out[:, 0], frames[:, -1])
    # Returned frames are copies: editing them does not change later predictions.
    out[:] = 0
    _, again = model.step(state, [None, None, None])  # type: ignore[list-item]
    np.testing.assert_array_equal(again[:, 0], frames[:, -1])


def _shapes_context(n: int) -> tuple[Any, list[Any], Context]:
    env = make_env("shapes", resolution=32)
    states = [env.reset(seed) for seed in range(n)]
    frames = env.render_batch(states)[:, None]
    ctx = Context(frames, [[] for _ in states], list(range(n)), env=env, states=states)
    return env, states, ctx


def _true_next(env: Any, states: list[Any], actions: list[Any]) -> np.ndarray:
    return np.stack([env.render(env.step(s, a)) for s, a in zip(states, actions, strict=True)])


def test_oracle_renders_the_true_next_state_and_clones_independently() -> None:
    env, states, ctx = _shapes_context(2)
    model = OracleModel()
    state = model.reset(ctx)
    branch = model.clone(state)
    acts = [env.actions(s)[0] for s in states]
    _, frames = model.step(state, acts)
    np.testing.assert_array_equal(frames[:, 0], _true_next(env, states, acts))
    # The clone still starts from the context: stepping it with other actions gives their outcome.
    other = [env.actions(s)[1] for s in states]
    _, frames_b = model.step(branch, other)
    np.testing.assert_array_equal(frames_b[:, 0], _true_next(env, states, other))
    assert not np.array_equal(frames, frames_b)


def test_random_action_depends_only_on_each_episodes_seed() -> None:
    env, states, ctx = _shapes_context(3)
    model = RandomActionModel(seed=5)
    acts = [env.actions(s)[0] for s in states]
    _, frames = model.step(model.reset(ctx), acts)
    # Episode 1 alone gives the same frame as inside the batch of three.
    single = Context(ctx.frames[1:2], [[]], [ctx.seeds[1]], env=env, states=[states[1]])
    _, alone = model.step(model.reset(single), acts[1:2])
    np.testing.assert_array_equal(alone[0], frames[1])
    # A clone replays the same random actions as the original.
    a = model.reset(ctx)
    b = model.clone(a)
    for _ in range(3):
        a, fa = model.step(a, acts)
        b, fb = model.step(b, acts)
        np.testing.assert_array_equal(fa, fb)


def test_privileged_baselines_refuse_a_context_without_the_simulator() -> None:
    from panbench.errors import ContractError

    _, _, ctx = _shapes_context(1)
    bare = Context(frames=ctx.frames, actions=ctx.actions, seeds=ctx.seeds)
    for model in (OracleModel(), RandomActionModel()):
        with pytest.raises(ContractError, match="needs the true simulator"):
            model.reset(bare)


def test_random_action_seed_is_a_model_argument() -> None:
    model = load_model("random-action", {"seed": 3})
    assert isinstance(model, RandomActionModel) and model.describe() == {"seed": 3}


def test_quick_runs_record_their_model() -> None:
    for model in ("oracle", "copy-last", "random-action"):
        results = _quick(model)
        assert results["model"]["name"] == model
        assert results["model"]["spec"]["privileged"] is (model != "copy-last")
        assert results["run"]["limit"] == LIMIT
        for task in results["tasks"].values():
            assert task["n_episodes"] == LIMIT and task["complete"] is False
            for entry in task["metrics"].values():
                assert entry["n"] + entry["n_missing"] == LIMIT
                assert entry["value"] is None or math.isfinite(entry["value"])
