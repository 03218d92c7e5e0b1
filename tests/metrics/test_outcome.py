"""Outcome metrics (reward sign, terminal F1) and invention rate against independent counts."""

from __future__ import annotations

import numpy as np
import pytest

from panbench.errors import ContractError
from panbench.metrics import grounded, outcome


def _f1_by_hand(pred: list[bool], true: list[bool]) -> float:
    # precision and recall the textbook way (an independent formula from the one in outcome.py)
    tp = sum(p and t for p, t in zip(pred, true, strict=True))
    if not any(pred) and not any(true):
        return 1.0
    precision = tp / sum(pred) if any(pred) else 0.0
    recall = tp / sum(true) if any(true) else 0.0
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("seed", range(20))
def test_terminal_f1_matches_precision_and_recall(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pred = rng.random(12) < 0.3
    true = rng.random(12) < 0.3
    assert outcome.terminal_f1(pred, true) == pytest.approx(_f1_by_hand(list(pred), list(true)))


def test_terminal_f1_edge_cases() -> None:
    none = np.zeros(5, dtype=bool)
    end = none.copy()
    end[-1] = True
    assert outcome.terminal_f1(none, none) == 1.0
    assert outcome.terminal_f1(none, end) == 0.0
    assert outcome.terminal_f1(end, none) == 0.0
    assert outcome.terminal_f1(end, end) == 1.0


def test_reward_sign_agreement_counts_signs() -> None:
    rng = np.random.default_rng(0)
    true = rng.choice([-1.0, 0.0, 1.0, 5.0], size=50)
    pred = rng.normal(size=50) * (rng.random(50) < 0.5)
    got = outcome.reward_sign_agreement(pred, true)
    expected = [
        float((p > 0) == (t > 0) and (p < 0) == (t < 0)) for p, t in zip(pred, true, strict=True)
    ]
    np.testing.assert_array_equal(got, expected)
    pred[3] = np.nan
    assert np.isnan(outcome.reward_sign_agreement(pred, true)[3])


def test_shapes_must_match() -> None:
    with pytest.raises(ContractError, match="same shape"):
        outcome.reward_sign_agreement(np.zeros(3), np.zeros(4))
    with pytest.raises(ContractError, match="same shape"):
        outcome.terminal_f1(np.zeros(3, bool), np.zeros(4, bool))


def test_invention_rate_counts_shown_but_absent_entities() -> None:
    rng = np.random.default_rng(1)
    p_on = rng.random((6, 5)) < 0.6
    t_on = rng.random((6, 5)) < 0.6
    pos = np.zeros((6, 5, 2))
    got = grounded.invention_rate(
        {"positions": pos, "present": p_on}, {"positions": pos, "present": t_on}
    )
    for t in range(6):
        shown = p_on[t].sum()
        if shown == 0:
            assert np.isnan(got[t])
        else:
            assert got[t] == pytest.approx((p_on[t] & ~t_on[t]).sum() / shown)
