"""``panbench compare``: paired differences matched by episode hash, the gate and its exit codes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from panbench.cli import main
from panbench.compare import (
    ComparisonError,
    MetricComparison,
    TaskComparison,
    _correct,
    compare_results,
    format_comparison,
    holm_adjust,
)
from panbench.errors import ConfigError
from panbench.results import (
    dumps_record,
    read_samples,
    sanitize,
    task_metrics,
    validate_results,
)
from tests.leaderboard_runs import copy_run, edit_results, mini_run, rehash_samples


def _gate(base: Path, cand: Path, *extra: str) -> int:
    return main(["compare", str(base), str(cand), "--gate", *extra])


def _episode_values(folder: Path, task: str, metric: str) -> dict[str, float]:
    out = {}
    for rec in read_samples(folder / "samples" / f"{task}.jsonl"):
        v = rec["metrics"].get(metric)
        out[rec["hash"]] = math.nan if v is None else float(v)
    return out


# ============================================================================ verdicts
def test_identical_results_pass_with_zero_differences() -> None:
    run = mini_run("random-action")
    cmp = compare_results(run, run)
    assert cmp.passed and cmp.regressions == []
    for task in cmp.tasks:
        assert task.n_shared == task.n_base == task.n_candidate
        for m in task.metrics:
            assert m.status in ("unchanged", "set-level")
            assert m.diff == 0 or math.isnan(m.diff)
    assert _gate(run, run) == 0


def test_a_clearly_worse_model_fails_the_gate() -> None:
    cmp = compare_results(mini_run("oracle"), mini_run("copy-last"))
    assert not cmp.passed
    assert ("mini-agent", "action_following") in cmp.regressions
    assert _gate(mini_run("oracle"), mini_run("copy-last")) == 1
    # the other way round it is an improvement, and the gate passes
    better = compare_results(mini_run("copy-last"), mini_run("oracle"))
    assert better.passed
    row = next(m for t in better.tasks for m in t.metrics if t.task == "mini-agent" and m.headline)
    assert row.status == "better"
    assert _gate(mini_run("copy-last"), mini_run("oracle")) == 0


def test_without_gate_a_regression_still_exits_0() -> None:
    assert main(["compare", str(mini_run("oracle")), str(mini_run("copy-last"))]) == 0


def test_direction_follows_higher_is_better() -> None:
    cmp = compare_results(mini_run("oracle"), mini_run("copy-last"))
    agent = next(t for t in cmp.tasks if t.task == "mini-agent")
    err = next(m for m in agent.metrics if m.metric == "position_error")
    assert not err.higher_is_better and err.diff > 0  # copy-last's error is larger: worse
    assert err.status == "worse"
    psnr = next(m for m in agent.metrics if m.metric == "psnr")
    assert psnr.higher_is_better and psnr.diff < 0 and psnr.status == "worse"


def test_min_effect_ignores_small_differences() -> None:
    base, cand = mini_run("oracle"), mini_run("copy-last")
    cmp = compare_results(base, cand, min_effect=1.5)  # beyond any accuracy difference
    assert cmp.passed
    assert _gate(base, cand, "--min-effect", "1.5") == 0


def test_set_level_metrics_are_shown_but_never_gated() -> None:
    cmp = compare_results(mini_run("oracle"), mini_run("copy-last"))
    long = next(t for t in cmp.tasks if t.task == "mini-long")
    fvd = next(m for m in long.metrics if m.metric == "fvd")
    results = {
        name: json.loads((mini_run(name) / "results.json").read_text())
        for name in ("oracle", "copy-last")
    }
    values = [r["tasks"]["mini-long"]["metrics"]["fvd"]["value"] for r in results.values()]
    assert fvd.status == "set-level" and math.isnan(fvd.p_value)
    assert fvd.base == pytest.approx(values[0]) and fvd.candidate == pytest.approx(values[1])
    plan = next(t for t in cmp.tasks if t.task == "mini-plan")
    assert next(m for m in plan.metrics if m.metric == "normalized_score").status == "set-level"


# ============================================================================ statistics
def _permute_episodes(folder: Path, task: str, perm: list[int]) -> None:
    """Moves episode payloads (hash, values, curves) to other lines, keeping the file valid.

    Line i keeps its index, id and seed but gets episode perm[i]'s hash and values; aggregates
    are recomputed as the harness would, so only the pairing of lines to episodes changes.
    """
    path = folder / "samples" / f"{task}.jsonl"
    recs = read_samples(path)
    fixed = ("index", "episode_id", "seed")
    moved = [
        {**{k: v for k, v in recs[j].items() if k not in fixed}, **{k: recs[i][k] for k in fixed}}
        for i, j in enumerate(perm)
    ]
    path.write_text("".join(dumps_record(r) + "\n" for r in moved))

    def fix(data: dict[str, Any]) -> None:
        entry = data["tasks"][task]
        entry["metrics"] = sanitize(task_metrics(moved, list(entry["metrics"])))
        value = entry["metrics"][entry["headline"]["metric"]]["value"]
        entry["headline"]["score"] = float(np.clip(100.0 * value, 0.0, 100.0))
        scores = [t["headline"]["score"] for t in data["tasks"].values()]
        data["summary"]["score"] = sum(scores) / len(scores)

    edit_results(folder, fix)
    rehash_samples(folder, task)


def test_episodes_are_paired_by_hash_not_by_line(tmp_path: Path) -> None:
    base = mini_run("random-action")
    moved = copy_run(base, tmp_path / "moved")
    _permute_episodes(moved, "mini-agent", [7, 6, 5, 4, 3, 2, 1, 0])
    validate_results(moved)  # still a valid results folder
    agent = next(t for t in compare_results(base, moved).tasks if t.task == "mini-agent")
    assert agent.n_shared == 8
    for m in agent.metrics:  # the same episodes, so every paired difference is exactly 0
        assert (m.diff, m.low, m.high, m.p_value) == (0.0, 0.0, 0.0, 1.0), m.metric
    # Pairing by line would have seen differences: the test can tell the two apart.
    b = _episode_values(base, "mini-agent", "psnr")
    by_line = np.array(list(b.values()))
    assert np.any(by_line[::-1] != by_line)


def test_the_difference_is_the_mean_paired_difference() -> None:
    base, cand = mini_run("random-action"), mini_run("copy-last")
    agent = next(t for t in compare_results(base, cand).tasks if t.task == "mini-agent")
    b = _episode_values(base, "mini-agent", "psnr")
    c = _episode_values(cand, "mini-agent", "psnr")
    psnr = next(m for m in agent.metrics if m.metric == "psnr")
    assert psnr.diff == pytest.approx(np.mean([c[h] - b[h] for h in b]), rel=1e-12)
    assert psnr.base == pytest.approx(np.mean(list(b.values())), rel=1e-12)
    assert psnr.n == len(b)
    assert psnr.low <= psnr.diff <= psnr.high
    assert 0.0 < psnr.p_value <= 1.0


def test_runs_with_different_limits_compare_on_shared_episodes() -> None:
    full, limited = mini_run("oracle"), mini_run("oracle", limit=3)
    cmp = compare_results(full, limited)
    for task in cmp.tasks:
        assert task.n_shared == 3 and task.n_candidate == 3
    assert cmp.passed


def test_a_larger_alpha_never_removes_a_regression() -> None:
    base, cand = mini_run("random-action"), mini_run("copy-last")
    strict = set(compare_results(base, cand, alpha=0.01).regressions)
    loose = set(compare_results(base, cand, alpha=0.2).regressions)
    assert strict <= loose


def test_the_verdict_is_deterministic() -> None:
    base, cand = mini_run("random-action"), mini_run("copy-last")
    assert compare_results(base, cand).to_dict() == compare_results(base, cand).to_dict()


# ============================================================================ correction
def _holm_rejects(p: list[float], alpha: float) -> set[int]:
    """Holm's procedure as the textbook states it: reject in order while p_(i) <= alpha/(m-i+1)."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected: set[int] = set()
    for i, idx in enumerate(order):
        if p[idx] >= alpha / (len(p) - i):  # the verdicts use a strict p < alpha
            break
        rejected.add(idx)
    return rejected


def test_holm_adjust_matches_the_sequential_procedure() -> None:
    rng = np.random.default_rng(0)
    for m in (1, 2, 3, 8):
        for _ in range(200):
            p = list(rng.uniform(0, 0.2, m) ** 2)
            adjusted = holm_adjust(p)
            assert all(a >= raw for a, raw in zip(adjusted, p, strict=True))
            for alpha in (0.01, 0.05, 0.1):
                assert {i for i, a in enumerate(adjusted) if a < alpha} == _holm_rejects(p, alpha)
    # a hand example: sorted 0.01, 0.03, 0.04 -> 0.03, 0.06, 0.06
    assert holm_adjust([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])


def _row(p: float, headline: bool = True, diff: float = -0.2) -> MetricComparison:
    return MetricComparison("m", True, headline, 0.5, 0.5 + diff, diff, -1, 1, p, p, 10, "worse")


def test_holm_decides_headlines_across_tasks_and_leaves_other_metrics() -> None:
    tasks = [
        TaskComparison("a", "m", 10, 10, 10, [_row(0.03), _row(0.001, headline=False)]),
        TaskComparison("b", "m", 10, 10, 10, [_row(0.04)]),
    ]
    none = _correct(tasks, "none", 0.05, 0.0)
    assert [m.status for t in none for m in t.metrics] == ["worse", "worse", "worse"]
    holm = _correct(tasks, "holm", 0.05, 0.0)
    # Two headline tests at p 0.03 and 0.04: adjusted 0.06 each, neither survives.
    assert [m.p_adjusted for t in holm for m in t.metrics if m.headline] == pytest.approx(
        [0.06, 0.06]
    )
    assert [m.status for t in holm for m in t.metrics if m.headline] == ["unchanged"] * 2
    assert holm[0].metrics[1].status == "worse" and holm[0].metrics[1].p_adjusted == 0.001
    assert tasks[0].metrics[0].status == "worse"  # the input is not modified
    strong = _correct([TaskComparison("a", "m", 1, 1, 1, [_row(0.01)]), tasks[1]], "holm", 0.05, 0)
    assert [t.metrics[0].status for t in strong] == ["worse", "worse"]  # 0.02 and 0.04


def test_holm_never_adds_a_regression_and_keeps_clear_ones() -> None:
    base, cand = mini_run("random-action"), mini_run("copy-last")
    holm = set(compare_results(base, cand).regressions)
    assert holm <= set(compare_results(base, cand, correction="none").regressions)
    clear = compare_results(mini_run("oracle"), mini_run("copy-last"))
    assert clear.correction == "holm" and ("mini-agent", "action_following") in clear.regressions
    assert _gate(mini_run("oracle"), mini_run("copy-last"), "--correction", "none") == 1


# ============================================================================ unusable input
def test_different_suite_versions_are_unusable(capsys: pytest.CaptureFixture[str]) -> None:
    v1, v2 = mini_run("oracle"), mini_run("oracle", version=2)
    with pytest.raises(ComparisonError, match="suite version"):
        compare_results(v1, v2)
    assert _gate(v1, v2) == 2
    assert "suite" in capsys.readouterr().err


def test_no_shared_episodes_is_unusable(tmp_path: Path) -> None:
    cand = copy_run(mini_run("copy-last"), tmp_path / "cand")
    path = cand / "samples" / "mini-choice.jsonl"
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    for i, rec in enumerate(recs):
        rec["hash"] = f"{i:064x}"
    path.write_text(
        "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in recs)
    )
    rehash_samples(cand, "mini-choice")
    with pytest.raises(ComparisonError, match="share no episodes"):
        compare_results(mini_run("oracle"), cand)
    assert _gate(mini_run("oracle"), cand) == 2


def test_tampered_or_missing_results_are_unusable(tmp_path: Path) -> None:
    cand = copy_run(mini_run("copy-last"), tmp_path / "cand")
    edit_results(cand, lambda d: d["tasks"]["mini-agent"]["metrics"]["psnr"].update(value=99.0))
    with pytest.raises(ComparisonError, match=r"tasks\.mini-agent\.metrics\.psnr\.value"):
        compare_results(mini_run("oracle"), cand)
    assert _gate(mini_run("oracle"), cand) == 2
    assert _gate(mini_run("oracle"), tmp_path / "missing") == 2


def test_bad_options_are_unusable_input() -> None:
    run = str(mini_run("oracle"))
    assert main(["compare", run, run, "--alpha", "1.5"]) == 2
    assert main(["compare", run, run, "--min-effect", "-1"]) == 2
    with pytest.raises(ConfigError, match="correction"):
        compare_results(run, run, correction="bonferroni")  # type: ignore[arg-type]


# ============================================================================ output
def test_the_formats(capsys: pytest.CaptureFixture[str]) -> None:
    base, cand = mini_run("oracle"), mini_run("copy-last")
    cmp = compare_results(base, cand)
    text = format_comparison(cmp, "text")
    assert "FAIL" in text and "mini-agent" in text and "action_following" in text
    md = format_comparison(cmp, "markdown")
    table = [line for line in md.splitlines() if line.startswith("|")]
    rows = sum(len(t.metrics) for t in cmp.tasks)
    assert len(table) == 2 + rows  # header, rule, one row per task and metric
    assert all(line.count(" | ") == table[0].count(" | ") for line in table[2:])
    assert md.startswith("### ❌")
    assert _gate(base, cand, "--format", "json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False
    assert {"task": "mini-agent", "metric": "action_following"} in data["regressions"]
    assert len(data["tasks"]) == 4
    ok = format_comparison(compare_results(base, base), "markdown")
    assert ok.startswith("### ✅")
