"""The PushT tasks end to end through ``evaluate``: continuous actions, oracle and floors."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gym_pusht")

from panbench.harness import evaluate
from panbench.results import validate_results

ADAPTERS = "tests.models.adapters"


def test_pusht_sim_scores_the_truth_perfectly_and_a_frozen_frame_not(tmp_path: Path) -> None:
    runs = {}
    for model, args in (
        ("oracle", None),
        (f"{ADAPTERS}:VectorOracle", {"action_dim": 2}),  # driven by the vectors alone
        ("copy-last", None),
    ):
        out = tmp_path / model.replace(":", "_")
        runs[model] = evaluate(model, args, out=out, tasks=["pusht-sim"], limit=2, progress=False)
        validate_results(out)
    for model in ("oracle", f"{ADAPTERS}:VectorOracle"):
        metrics = runs[model]["tasks"]["pusht-sim"]["metrics"]
        assert metrics["action_following"]["value"] == 1.0, model
        assert metrics["psnr"]["value"] == 100.0, model
        assert metrics["position_error"]["value"] < 0.5, model  # perception tolerance
    frozen = runs["copy-last"]["tasks"]["pusht-sim"]["metrics"]
    assert frozen["action_following"]["value"] == 0.0
    assert frozen["position_error"]["value"] > 1.0
    assert len(frozen["position_error"]["curve"]) == 8  # the drift curve over the horizon


PLAN_PUSHT = """\
task: tiny-plan-pusht
version: 1
protocol: closed_loop
env: {name: pusht, resolution: 64, kwargs: {max_offset: 10, max_rotation: 10, move_scale: 50}}
episodes: {count: 2, seed: 9500, context: 1, horizon: 2, policy: continuous}
metrics: [success, normalized_score, random_success, oracle_success, wm_calls, tie_rate]
headline: success
options:
  planner: cem-continuous
  planner_options: {horizon: 2, block: 2, population: 4, elites: 2, iterations: 2}
  random_rollouts: 2
"""


def test_closed_loop_pusht_imagines_all_candidates_in_one_call_per_step(tmp_path: Path) -> None:
    from panbench.envs import make as make_env
    from panbench.models.baselines import CopyLastModel, OracleModel
    from panbench.protocols import PROTOCOLS
    from panbench.protocols.base import ModelRunner
    from panbench.suite import load_task

    path = tmp_path / "tiny-plan-pusht.yaml"
    path.write_text(PLAN_PUSHT)
    task = load_task(str(path))
    env = make_env(task.env.name, resolution=task.env.resolution, **dict(task.env.kwargs))
    protocol = PROTOCOLS.get("closed_loop")(task, env)
    episodes = [protocol.episode(i) for i in range(2)]
    runs = [(e, protocol.goal(e), 0) for e in episodes]
    runner = ModelRunner(OracleModel(), env, task.env.resolution)
    outcomes = protocol.run_episodes(runner, runs)
    # 2 planning steps x 2 rounds x (1 reset + 4 imagined steps), whatever the episode count
    assert runner.stats.step_calls == 2 * 2 * 4 and runner.stats.reset_calls == 2 * 2
    for outcome in outcomes:
        assert outcome.plans == 2 and outcome.compute.sequences == 2 * 2 * 4
        for action in outcome.actions:  # executed pushes, recorded by their vectors
            assert len(action) == 2 and all(-1.0 <= v <= 1.0 for v in action)
    blind = protocol.run_episodes(ModelRunner(CopyLastModel(), env, task.env.resolution), runs)
    assert all(o.tied_plans == o.plans for o in blind)  # a frozen frame ties every candidate


@pytest.mark.slow
def test_shipped_plan_pusht_oracle_is_its_reference_and_copy_last_scores_random(
    tmp_path: Path,
) -> None:
    """plan-pusht, 3 episodes (minutes on one core): the oracle as the model under test is its
    own reference, run for run, and solves the episodes; a frozen frame ties every plan, so it
    acts as the random reference and its normalised score's CI holds 0. (How often the oracle
    succeeds on all 50 is measured by benchmarks/pusht_planning.py, see docs/planning.md.)"""
    oracle = evaluate("oracle", out=tmp_path / "o", tasks=["plan-pusht"], limit=3, progress=False)
    metrics = oracle["tasks"]["plan-pusht"]["metrics"]
    assert metrics["success"]["value"] == metrics["oracle_success"]["value"]
    # planning on the true simulator solves PushT at gym-pusht's threshold (all 50 episodes in
    # benchmarks/pusht_planning.py); random targets almost never do
    assert metrics["oracle_success"]["value"] >= 2 / 3
    assert metrics["random_success"]["value"] <= 1 / 3
    copy = evaluate("copy-last", out=tmp_path / "c", tasks=["plan-pusht"], limit=3, progress=False)
    metrics = copy["tasks"]["plan-pusht"]["metrics"]
    assert metrics["tie_rate"]["value"] == 1.0
    low, high = metrics["normalized_score"]["ci95"]
    assert low <= 0.0 <= high
    validate_results(tmp_path / "c")


@pytest.mark.slow
def test_shipped_policy_eval_pusht_oracle_ranks_exactly(tmp_path: Path) -> None:
    """policy-eval-pusht, 3 episodes: the oracle imagines the true frames, so it agrees with
    the truth exactly; a frozen frame ranks nothing."""
    runs = {
        model: evaluate(
            model, out=tmp_path / model, tasks=["policy-eval-pusht"], limit=3, progress=False
        )["tasks"]["policy-eval-pusht"]["metrics"]
        for model in ("oracle", "copy-last")
    }
    assert runs["oracle"]["policy_success_error"]["value"] == 0.0
    assert runs["oracle"]["policy_rank_correlation"]["value"] == 1.0
    low, high = runs["copy-last"]["policy_rank_correlation"]["ci95"]
    assert low <= 0.0 <= high
