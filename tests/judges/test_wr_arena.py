"""Tests for WR-Arena's fidelity rubric and percentage against upstream's own aggregation."""

from __future__ import annotations

import re

import numpy as np
import pytest

from panbench.errors import DataError
from panbench.judges import WR_FIDELITY_RUBRIC, fidelity_percent, parse_score, wr_instruction


def upstream_average(scores: dict[str, list[str]]) -> dict[str, float]:
    """WR-Arena's compute_final_scores, restated without its rounding.

    Keys are upstream's ``"<image>_<prompt list 1-6>"``; values the judge's raw replies per
    round. A sample's valid replies are averaged, samples are averaged per prompt-list
    position, and agent (1-3) / environment (4-6) average their positions.
    """
    per_position: dict[int, list[float]] = {i: [] for i in range(1, 7)}
    for key, replies in scores.items():
        match = re.search(r"(\d+)_([1-6])", key)
        assert match
        valid = [int(r.strip()) for r in replies if r.strip().isdigit()]
        if valid:
            per_position[int(match.group(2))].append(sum(valid) / len(valid))
    means = {i: sum(v) / len(v) for i, v in per_position.items() if v}
    return {
        "agent": sum(means[i] for i in (1, 2, 3)) / 3,
        "env": sum(means[i] for i in (4, 5, 6)) / 3,
    }


def test_fidelity_percent_by_hand() -> None:
    # Sample means 2 and 1; their mean 1.5 of 3 is 50 %.
    assert fidelity_percent([[3, 2, 1], [0, 0, 3]]) == pytest.approx(50.0)
    assert fidelity_percent([[3, 3, 3]]) == pytest.approx(100.0)
    assert fidelity_percent([[0]]) == 0.0
    # Per round, then per sample: [[3], [0, 0, 0]] is (3 + 0) / 2 = 1.5, not 3 / 4 = 0.75.
    assert fidelity_percent([[3], [0, 0, 0]]) == pytest.approx(50.0)
    assert fidelity_percent([[1, 2]], scale=(1, 5)) == pytest.approx(12.5)


def test_fidelity_percent_matches_upstream_aggregation() -> None:
    rng = np.random.default_rng(0)
    images = 10
    replies = {
        f"{img:03d}_{pos}": [str(int(v)) for v in rng.integers(0, 4, 3)]
        for img in range(images)
        for pos in range(1, 7)
    }
    upstream = upstream_average(replies)
    for group, positions in (("agent", (1, 2, 3)), ("env", (4, 5, 6))):
        ours = fidelity_percent(
            [
                [parse_score(r, WR_FIDELITY_RUBRIC) for r in replies[f"{img:03d}_{pos}"]]
                for img in range(images)
                for pos in positions
            ]
        )
        assert ours == pytest.approx(upstream[group] / 3 * 100, abs=1e-12)


@pytest.mark.parametrize(
    ("scores", "match"),
    [
        ([], "at least one sample"),
        ([[1, 2], []], "sample 1 to have at least one"),
        ([[1, 4]], r"\[0, 3\].*sample 0 round 1"),
        ([[float("nan")]], "sample 0 round 0"),
    ],
)
def test_fidelity_percent_rejects(scores: list[list[float]], match: str) -> None:
    with pytest.raises(DataError, match=match):
        fidelity_percent(scores)


def test_wr_rubric_keeps_upstream_facts() -> None:
    r = WR_FIDELITY_RUBRIC
    assert (r.scale, r.frames) == ((0, 3), 8)
    assert "{prompt}" in r.text
    for level in "0123":
        assert re.search(rf"^{level} - ", r.text, re.MULTILINE)
    assert wr_instruction("The arm lifts the cup") == "The arm lifts the cup."
    assert wr_instruction("Done. ") == "Done."
