"""Outcome metrics: a model's predicted rewards and episode ends against the emulator's, exactly.

A model that declares ``ModelSpec.predicts_rewards`` returns, after each step, its predicted
reward and terminal flag per rollout (:meth:`panbench.models.api.WorldModel.outcomes`). The truth
is the emulator's (``observe(state)["reward"]`` and ``["terminal"]``). Both are scored per step:

- :func:`reward_sign_agreement`: whether the sign of the predicted reward (-1, 0, +1) is the
  sign of the true one (Atari rewards are compared by sign, as agents clip them).
- :func:`terminal_f1`: F1 of the predicted terminal flags over an episode's steps, positives
  being "the episode ends here"; an episode where neither truth nor prediction ends scores 1
  (scikit-learn's ``f1_score(..., zero_division=1.0)`` convention).
"""

from __future__ import annotations

import numpy as np

from panbench.errors import ContractError


def _check(pred: np.ndarray, target: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ContractError(
            f"Expected predicted and true {name} of the same shape, but got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}."
        )
    return pred, target


def reward_sign_agreement(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """1.0 where the predicted reward has the true reward's sign, else 0.0; NaN where unknown.

    Args:
        pred: float [..., T] predicted rewards (NaN: the model gave none).
        target: float [..., T] true rewards.

    Returns:
        float64 [..., T].

    Example:
        >>> reward_sign_agreement(np.array([0.2, 0.0, -3.0]), np.array([1.0, 0.0, 1.0])).tolist()
        [1.0, 1.0, 0.0]
    """
    pred, target = _check(pred, target, "rewards")
    pred = pred.astype(np.float64)
    ok = (np.sign(pred) == np.sign(target.astype(np.float64))).astype(np.float64)
    return np.where(np.isfinite(pred), ok, np.nan)


def terminal_f1(pred: np.ndarray, target: np.ndarray) -> float:
    """F1 of predicted terminal flags against the true ones over one episode's steps.

    Args:
        pred: bool [T] predicted "the episode ends here" flags.
        target: bool [T] true flags.

    Returns:
        ``2 tp / (2 tp + fp + fn)``; 1.0 when neither has a positive.

    Example:
        >>> terminal_f1(np.array([False, True, True]), np.array([False, False, True]))
        0.6666666666666666
    """
    pred, target = _check(pred, target, "terminal flags")
    p, t = pred.astype(bool), target.astype(bool)
    tp = int((p & t).sum())
    wrong = int((p ^ t).sum())
    if tp == 0 and wrong == 0:
        return 1.0
    return 2.0 * tp / (2.0 * tp + wrong)
