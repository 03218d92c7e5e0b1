"""The terminal summary: headline CIs, one-line skip notices with the fix, the suite CI."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from rich.console import Console

from panbench.demo import demo_table
from panbench.plots import HeadlineScore, headline_scores
from panbench.report import (
    human_size,
    print_summary,
    short_reason,
    skipped_notices,
    suite_ci,
)
from panbench.results_model import parse_results
from tests.models.runs import cached_run, small_tasks

MISSING = (
    "Weights file for 'alexnet' not found at /home/u/.cache/panbench/weights/alexnet.pth. Run "
    "`panbench weights pull alexnet` (needs network), or copy alexnet-owt-7be5be79.pth "
    "(sha256 7be5...) to /home/u/.cache/panbench/weights/alexnet.pth, or set "
    "PANBENCH_ALEXNET to its path."
)


def test_a_long_skip_reason_becomes_one_line_with_the_fix() -> None:
    line = short_reason(MISSING)
    assert "\n" not in line and len(line) < 160
    assert line.endswith("; fix: `panbench weights pull alexnet`")
    assert line.startswith("Weights file for 'alexnet' not found at /home/u/")


def test_skips_are_grouped_by_metric_and_reason() -> None:
    skipped = {f"task{i}": {"lpips": MISSING} for i in range(6)}
    skipped["task0"]["fvd"] = "horizon 4 is shorter than one 10-frame FVD window"
    lines = skipped_notices(skipped)
    assert len(lines) == 2
    assert lines[0].startswith("lpips on 6 tasks: Weights file for 'alexnet'")
    assert lines[1] == "fvd on task0: horizon 4 is shorter than one 10-frame FVD window"


def test_suite_ci_matches_a_normal_approximation() -> None:
    rng = np.random.default_rng(0)
    # Independent tasks whose CI half-widths are 1.96 standard errors.
    se = np.array([2.0, 3.0, 1.5])
    scores = [
        HeadlineScore(50.0 + i, 50.0 + i - 1.96 * s, 50.0 + i + 1.96 * s, "m")
        for i, s in enumerate(se)
    ]
    mean, low, high = suite_ci(scores)
    assert mean == pytest.approx(51.0)
    # Simulated means of the three tasks: the spread of their average.
    draws = rng.normal(np.arange(3) + 50.0, se, size=(200_000, 3)).mean(axis=1)
    lo_sim, hi_sim = np.quantile(draws, [0.025, 0.975])
    assert low == pytest.approx(lo_sim, abs=0.05)
    assert high == pytest.approx(hi_sim, abs=0.05)


def test_suite_ci_without_task_cis() -> None:
    mean, low, high = suite_ci([HeadlineScore(40.0, math.nan, math.nan, "m")])
    assert mean == 40.0 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(x) for x in suite_ci([]))


def _run(model: str) -> dict:
    import json

    folder = cached_run(model, tasks=small_tasks(("small-rollout",)), limit=4)
    return json.loads((folder / "results.json").read_text())


def test_summary_and_demo_table_show_headline_cis() -> None:
    results = {m: _run(m) for m in ("copy-last", "random-action")}
    buffer = io.StringIO()
    print_summary(results["copy-last"], console=Console(file=buffer, width=160))
    head = headline_scores(parse_results(results["copy-last"]))["small-rollout"]
    assert f"{head.score:.1f}" in buffer.getvalue()
    assert f"[{head.low:.1f}, {head.high:.1f}]" in buffer.getvalue()
    assert "suite score:" in buffer.getvalue() and "95% CI" in buffer.getvalue()
    buffer = io.StringIO()
    Console(file=buffer, width=160).print(demo_table(results, {"copy-last": 1.0}, 4))
    text = " ".join(buffer.getvalue().split())
    assert "4 episodes per task" in text and "not comparable to full runs" in text
    assert f"{head.score:.1f}" in text and f"[{head.low:.0f}, {head.high:.0f}]" in text


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (244408911, "233.1 MiB")]
)
def test_human_size(n: int, text: str) -> None:
    assert human_size(n) == text


def test_weights_list_keeps_names_whole_on_a_narrow_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from panbench.cli import main
    from panbench.weights import WEIGHTS, get_entry

    monkeypatch.setenv("COLUMNS", "72")
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for name in WEIGHTS.names():
        assert name in out
        assert human_size(get_entry(name).size) in out
    assert max(len(line) for line in out.splitlines()) <= 72
