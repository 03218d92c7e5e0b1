"""The policy_eval protocol: ranking scripted policies in imagination against the true env."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from panbench.envs import make as make_env
from panbench.errors import ConfigError
from panbench.harness import evaluate
from panbench.metrics.policy_eval import policy_rank_correlation, spearman
from panbench.protocols import PROTOCOLS
from panbench.results import validate_results
from panbench.suite import load_task

TASK = """\
task: tiny-policy-eval
version: 1
protocol: policy_eval
env: {name: maze, resolution: 48, kwargs: {size: 6}}
episodes: {count: 12, seed: 9701, context: 1, horizon: 12, policy: random}
metrics: [policy_rank_correlation, policy_success_error]
headline: policy_rank_correlation
options: {competence: [0.0, 0.5, 1.0]}
"""


def _task(tmp_path: Path, text: str = TASK) -> str:
    path = tmp_path / "tiny-policy-eval.yaml"
    path.write_text(text)
    return str(path)


def test_spearman_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.integers(0, 4, size=6).astype(float)
        b = rng.integers(0, 4, size=6).astype(float)
        if len(set(a)) < 2 or len(set(b)) < 2:
            assert spearman(a, b) == 0.0  # no spread: no ranking information
            continue
        assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)


def test_rank_correlation_of_records() -> None:
    true = [[0, 0, 1], [0, 1, 1], [0, 1, 1], [1, 1, 1]]
    imagined = [[0, 1, 1], [0, 0, 1], [0, 1, 1], [0, 1, 1]]
    records = [
        {"policy_success": {"true": t, "imagined": i}} for t, i in zip(true, imagined, strict=True)
    ]
    entry = policy_rank_correlation([*records, {"metrics": {}}])
    rates_true, rates_imagined = np.mean(true, axis=0), np.mean(imagined, axis=0)
    assert entry["value"] == pytest.approx(spearmanr(rates_imagined, rates_true).statistic)
    assert entry["n"] == 4 and entry["n_missing"] == 1 and entry["set_level"] is True
    low, high = entry["ci95"]
    assert -1.0 <= low <= entry["value"] <= high <= 1.0


def test_maze_expert_walks_a_shortest_path() -> None:
    env = make_env("maze", resolution=48, size=6)
    for seed in range(10):
        state = env.reset(seed)
        length = len(env.shortest_path(state))
        for _ in range(length):
            state = env.step(state, env.expert_action(env.perceive(env.render(state))))
        assert env.goal_reached(state)
        assert env.expert_action(env.observe(state)) is None  # nothing left to do


def test_oracle_ranks_perfectly_and_a_frozen_frame_ranks_nothing(tmp_path: Path) -> None:
    task = _task(tmp_path)
    oracle = evaluate("oracle", out=tmp_path / "oracle", tasks=[task], progress=False)
    copy = evaluate("copy-last", out=tmp_path / "copy", tasks=[task], progress=False)
    for out in ("oracle", "copy"):
        validate_results(tmp_path / out)  # the set-level value recomputes from the samples
    o = oracle["tasks"]["tiny-policy-eval"]["metrics"]
    c = copy["tasks"]["tiny-policy-eval"]["metrics"]
    assert o["policy_rank_correlation"]["value"] == 1.0
    assert o["policy_success_error"]["value"] == 0.0
    assert c["policy_rank_correlation"]["value"] == 0.0
    low, high = c["policy_rank_correlation"]["ci95"]
    assert low <= 0.0 <= high
    assert c["policy_success_error"]["value"] > 0.2
    lines = [
        json.loads(x)
        for x in (tmp_path / "oracle/samples/tiny-policy-eval.jsonl").read_text().splitlines()
    ]
    rates = np.mean([line["policy_success"]["true"] for line in lines], axis=0)
    assert rates[0] < rates[1] < rates[2] == 1.0  # competence orders the true success


def test_shipped_blocks_task_ranks_graded_policies(tmp_path: Path) -> None:
    """policy-eval-blocks (the control suite), 10 episodes: the truth orders the five scripted
    policies by competence; the oracle ranks them perfectly, a frozen frame ranks nothing."""
    runs = {
        model: evaluate(
            model, out=tmp_path / model, tasks=["policy-eval-blocks"], limit=10, progress=False
        )["tasks"]["policy-eval-blocks"]["metrics"]
        for model in ("oracle", "copy-last")
    }
    assert runs["oracle"]["policy_rank_correlation"]["value"] == 1.0
    assert runs["oracle"]["policy_success_error"]["value"] == 0.0
    low, high = runs["copy-last"]["policy_rank_correlation"]["ci95"]
    assert low <= 0.0 <= high
    lines = [
        json.loads(x)
        for x in (tmp_path / "oracle/samples/policy-eval-blocks.jsonl").read_text().splitlines()
    ]
    rates = np.mean([line["policy_success"]["true"] for line in lines], axis=0)
    assert rates[0] < rates[2] < rates[4] == 1.0


def test_bad_policy_eval_tasks_are_refused(tmp_path: Path) -> None:
    shapes = TASK.replace(
        "{name: maze, resolution: 48, kwargs: {size: 6}}",
        "{name: bounce, resolution: 32, kwargs: {}}",
    )
    spec = load_task(_task(tmp_path, shapes))
    env = make_env("bounce", resolution=32)
    with pytest.raises(ConfigError, match=r"has no goal|no scripted expert"):
        PROTOCOLS.get("policy_eval")(spec, env)
    bad = load_task(_task(tmp_path, TASK.replace("[0.0, 0.5, 1.0]", "[0.5, 2.0]")))
    with pytest.raises(ConfigError, match="two or more numbers in \\[0, 1\\]"):
        PROTOCOLS.get("policy_eval")(bad, make_env("maze", resolution=48, size=6))
