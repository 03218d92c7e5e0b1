"""Grounded metrics: what a predicted frame shows, read back by ``env.perceive``, against the truth.

The inputs are observation dicts (see :mod:`panbench.envs.base`): ``positions`` float [..., K, 2]
(pixel centres x, y) and ``present`` bool [..., K], with slot k the same entity for the whole
episode. Predictions come from ``env.perceive(predicted frame)``; the truth from
``env.observe(state)``. Every function here is batched over steps: stack an episode's T
observations with :func:`stack_observations` into ``positions`` [T, K, 2] and ``present``
[T, K] (any further leading axes, e.g. episodes [B, T, K, 2], are carried through), and get one
value per step, [..., T], NaN where a step has no value. An entity counts as present only if
``present`` is True and its position is finite.

Action following is all or nothing per step (see :func:`action_following`): a step is followed
when every entity the true step changed changed the same way in the prediction, within the
displacement tolerance ``max(min_px, rel * |true displacement|)`` (defaults 1.5 px and 0.25), and
every entity the true step left alone stayed put. Displacements of the prediction are measured
between consecutive perceived predicted frames, the first from the true observation of the last
context frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from panbench.errors import ConfigError, ContractError
from panbench.metrics.drift import PerStepMetric

Observation = dict[str, np.ndarray]

#: displacement tolerance floor in px: perception is exact to 0.5 px per axis on each of the two
#: frames of a displacement, so its error is at most sqrt(2) ~ 1.41 px on rendered frames
DEFAULT_MIN_PX = 1.5
#: relative displacement tolerance: 0.25 accepts up to 25% magnitude error or ~14 degrees of
#: direction error; an opposite, orthogonal or missing move is always rejected
DEFAULT_REL = 0.25


def stack_observations(observations: Sequence[Observation]) -> Observation:
    """Stacks T observation dicts into one with a leading step axis (``positions`` and ``present``).

    Args:
        observations: T dicts with ``positions`` float [..., K, 2] and ``present`` bool [..., K].

    Returns:
        ``{"positions": float64 [T, ..., K, 2], "present": bool [T, ..., K]}``.

    Example:
        >>> obs = [{"positions": np.zeros((2, 2)), "present": np.ones(2, bool)}] * 3
        >>> stack_observations(obs)["positions"].shape
        (3, 2, 2)
    """
    if len(observations) == 0:
        raise ContractError("Expected at least one observation to stack, but got none.")
    return {
        "positions": np.stack([np.asarray(o["positions"], dtype=np.float64) for o in observations]),
        "present": np.stack([np.asarray(o["present"], dtype=bool) for o in observations]),
    }


def _read(obs: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns (positions float64 [..., K, 2], present bool [..., K]) of an observation dict."""
    if not isinstance(obs, dict) or "positions" not in obs or "present" not in obs:
        got = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
        raise ContractError(
            f"Expected {name} to be an observation dict with 'positions' and 'present', but got "
            f"{got}."
        )
    pos = np.asarray(obs["positions"], dtype=np.float64)
    present = np.asarray(obs["present"])
    if pos.ndim < 2 or pos.shape[-1] != 2 or present.shape != pos.shape[:-1]:
        raise ContractError(
            f"Expected {name}['positions'] of shape [..., K, 2] and {name}['present'] of shape "
            f"[..., K], but got {tuple(pos.shape)} and {tuple(present.shape)}."
        )
    if present.dtype != np.bool_:
        raise ContractError(f"Expected {name}['present'] to be bool, but got {present.dtype}.")
    return pos, present & np.isfinite(pos).all(axis=-1)


def _read_pair(preds: Any, target: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    p_pos, p_on = _read(preds, "preds")
    t_pos, t_on = _read(target, "target")
    if p_pos.shape != t_pos.shape:
        raise ContractError(
            f"Expected preds and target positions to have the same shape, but got "
            f"{tuple(p_pos.shape)} and {tuple(t_pos.shape)}."
        )
    return p_pos, p_on, t_pos, t_on


def _nanmean_last(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the entries where ``keep``; NaN where none is kept."""
    n = keep.sum(axis=-1)
    total = np.where(keep, x, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def entity_position_errors(preds: Observation, target: Observation) -> np.ndarray:
    """Euclidean position error of each entity, in px.

    Args:
        preds: perceived predictions, ``positions`` [..., T, K, 2], ``present`` [..., T, K].
        target: true observations, same shapes.

    Returns:
        float64 [..., T, K]; NaN where the entity is not present in both.
    """
    p_pos, p_on, t_pos, t_on = _read_pair(preds, target)
    both = p_on & t_on
    with np.errstate(invalid="ignore"):
        err = np.linalg.norm(p_pos - t_pos, axis=-1)
    return np.where(both, err, np.nan)


def position_error(preds: Observation, target: Observation) -> np.ndarray:
    """Mean position error per step over the entities present in both, in px (lower is better).

    Entities the prediction lost are not in this mean; they are counted by :func:`miss_rate`.

    Args:
        preds: perceived predictions, ``positions`` [..., T, K, 2], ``present`` [..., T, K].
        target: true observations, same shapes.

    Returns:
        float64 [..., T]; NaN at steps where no entity is present in both.

    Example:
        >>> true = {"positions": np.array([[[0.0, 0.0], [5.0, 5.0]]]), "present": np.ones((1, 2), bool)}
        >>> pred = {"positions": np.array([[[3.0, 4.0], [5.0, 5.0]]]), "present": np.ones((1, 2), bool)}
        >>> position_error(pred, true).tolist()
        [2.5]
    """
    err = entity_position_errors(preds, target)
    return _nanmean_last(err, np.isfinite(err))


def miss_rate(preds: Observation, target: Observation) -> np.ndarray:
    """Fraction of truly present entities that the prediction does not show (lower is better).

    Returns:
        float64 [..., T]; NaN at steps where no entity is truly present.
    """
    _, p_on, _, t_on = _read_pair(preds, target)
    return _nanmean_last((~p_on).astype(np.float64), t_on)


def invention_rate(preds: Observation, target: Observation) -> np.ndarray:
    """Fraction of the entities the prediction shows that are truly absent (lower is better).

    The other half of object permanence, beside :func:`miss_rate`: objects the prediction
    invents.

    Returns:
        float64 [..., T]; NaN at steps where the prediction shows no entity.

    Example:
        >>> on = {"positions": np.zeros((1, 2, 2)), "present": np.array([[True, True]])}
        >>> half = {"positions": np.zeros((1, 2, 2)), "present": np.array([[True, False]])}
        >>> invention_rate(on, half).tolist()
        [0.5]
    """
    _, p_on, _, t_on = _read_pair(preds, target)
    return _nanmean_last((~t_on).astype(np.float64), p_on)


def presence_accuracy(preds: Observation, target: Observation) -> np.ndarray:
    """Object permanence: fraction of the K slots whose presence matches the truth.

    Counts both lost entities (truly present, not shown) and hallucinated ones (shown, truly
    absent).

    Returns:
        float64 [..., T] in [0, 1].
    """
    _, p_on, _, t_on = _read_pair(preds, target)
    return (p_on == t_on).mean(axis=-1)


def _check_tolerance(min_px: float, rel: float) -> None:
    if not min_px > 0 or not rel >= 0:
        raise ConfigError(
            f"Expected min_px > 0 and rel >= 0 for the displacement tolerance, but got "
            f"min_px={min_px!r} and rel={rel!r}."
        )


def _previous(
    pos: np.ndarray, on: np.ndarray, ctx_pos: np.ndarray, ctx_on: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions/presence one step earlier: step -1 is the context frame's true observation."""
    prev_pos = np.concatenate([ctx_pos[..., None, :, :], pos[..., :-1, :, :]], axis=-3)
    prev_on = np.concatenate([ctx_on[..., None, :], on[..., :-1, :]], axis=-2)
    return prev_pos, prev_on


def _following(
    preds: Observation, target: Observation, context: Observation, min_px: float, rel: float
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (followed bool [..., T], changed bool [..., T]) for :func:`action_following`."""
    _check_tolerance(min_px, rel)
    p_pos, p_on, t_pos, t_on = _read_pair(preds, target)
    c_pos, c_on = _read(context, "context")
    if c_pos.shape != t_pos.shape[:-3] + t_pos.shape[-2:]:
        raise ContractError(
            f"Expected context positions of shape {t_pos.shape[:-3] + t_pos.shape[-2:]} (the "
            f"true observation of the last context frame), but got {tuple(c_pos.shape)}."
        )
    tp_pos, tp_on = _previous(t_pos, t_on, c_pos, c_on)
    pp_pos, pp_on = _previous(p_pos, p_on, c_pos, c_on)

    t_both, p_both = tp_on & t_on, pp_on & p_on
    t_flip, p_flip = tp_on != t_on, pp_on != p_on
    d_true = np.where(t_both[..., None], t_pos - tp_pos, 0.0)
    d_pred = np.where(p_both[..., None], p_pos - pp_pos, 0.0)
    true_norm = np.linalg.norm(d_true, axis=-1)
    tol = np.maximum(min_px, rel * true_norm)
    close = np.linalg.norm(d_pred - d_true, axis=-1) <= tol

    moved = t_both & (true_norm > min_px)
    changed = t_flip | moved
    ok_flip = (pp_on == tp_on) & (p_on == t_on)  # the same appearance or disappearance
    ok_moved = p_both & close
    ok_still = ~p_flip & (~p_both | close)
    ok = np.where(t_flip, ok_flip, np.where(moved, ok_moved, ok_still))
    return ok.all(axis=-1), changed.any(axis=-1)


def changed_steps(
    target: Observation, context: Observation, *, min_px: float = DEFAULT_MIN_PX
) -> np.ndarray:
    """Steps where the truth changes something: an entity appears, disappears or moves > min_px.

    Returns:
        bool [..., T].
    """
    _, changed = _following(target, target, context, min_px, DEFAULT_REL)
    return changed


def action_following(
    preds: Observation,
    target: Observation,
    context: Observation,
    *,
    min_px: float = DEFAULT_MIN_PX,
    rel: float = DEFAULT_REL,
) -> np.ndarray:
    """Whether each step's true effect shows in the prediction, all or nothing (higher is better).

    For each step t and entity k, with displacements measured from step t-1 (step -1 is the true
    observation ``context`` of the last context frame, for the prediction too):

    - the truth flips k's presence (appears or disappears): the prediction must show the same
      presence at t-1 and at t;
    - the truth moves k by more than ``min_px``: the prediction must show k at t-1 and t, with
      ``|d_pred - d_true| <= max(min_px, rel * |d_true|)``;
    - otherwise (k left alone): the prediction must not flip k's presence and, where it shows k at
      both t-1 and t, must keep it within the same tolerance of the true displacement.

    A step is followed only if this holds for every entity. Steps where the truth changes nothing
    (no flip, no move > ``min_px``) are not scored here (NaN; see :func:`hold_accuracy`): every
    scored step has a real effect, so a model that copies the last frame scores exactly 0.

    Args:
        preds: perceived predictions, ``positions`` [..., T, K, 2], ``present`` [..., T, K].
        target: true observations, same shapes.
        context: true observation of the last context frame, ``positions`` [..., K, 2].
        min_px: tolerance floor and movement threshold in px.
        rel: tolerance as a fraction of the true displacement's length.

    Returns:
        float64 [..., T]: 1.0 followed, 0.0 not, NaN where the truth changed nothing.

    Example:
        >>> ctx = {"positions": np.array([[10.0, 10.0]]), "present": np.array([True])}
        >>> true = {"positions": np.array([[[10.0, 14.0]], [[10.0, 18.0]]]),
        ...         "present": np.ones((2, 1), bool)}
        >>> copy_last = {"positions": np.array([[[10.0, 10.0]], [[10.0, 10.0]]]),
        ...              "present": np.ones((2, 1), bool)}
        >>> action_following(true, true, ctx).tolist(), action_following(copy_last, true, ctx).tolist()
        ([1.0, 1.0], [0.0, 0.0])
    """
    followed, changed = _following(preds, target, context, min_px, rel)
    return np.where(changed, followed.astype(np.float64), np.nan)


def hold_accuracy(
    preds: Observation,
    target: Observation,
    context: Observation,
    *,
    min_px: float = DEFAULT_MIN_PX,
    rel: float = DEFAULT_REL,
) -> np.ndarray:
    """On steps where the truth changes nothing, whether the prediction also keeps everything.

    The complement of :func:`action_following`: scores only the steps it leaves out (NaN
    elsewhere), with the same per-entity rule, so hallucinated motion on no-op steps is caught.

    Returns:
        float64 [..., T]: 1.0 held, 0.0 not, NaN where the truth changed something.
    """
    followed, changed = _following(preds, target, context, min_px, rel)
    return np.where(changed, np.nan, followed.astype(np.float64))


def _as_episodes(values: np.ndarray) -> np.ndarray:
    """Per-step values [T] or [B, T] (or more leading axes) as [B, T] for the accumulators."""
    return values.reshape(-1, values.shape[-1]) if values.ndim != 1 else values[None, :]


class PositionError(PerStepMetric):
    """:func:`position_error` accumulated per step; ``compute()`` pools every (episode, step).

    Example:
        >>> true = {"positions": np.zeros((1, 3, 2, 2)), "present": np.ones((1, 3, 2), bool)}
        >>> m = PositionError()
        >>> m.update(true, true)
        >>> float(m.compute())
        0.0
    """

    higher_is_better = False

    def update(self, preds: Observation, target: Observation) -> None:
        """Adds observations stacked as ``positions`` [B, T, K, 2] (or [T, K, 2])."""
        self._accumulate(_as_episodes(position_error(preds, target)))


class MissRate(PerStepMetric):
    """:func:`miss_rate` accumulated per step."""

    higher_is_better = False

    def update(self, preds: Observation, target: Observation) -> None:
        """Adds observations stacked as ``positions`` [B, T, K, 2] (or [T, K, 2])."""
        self._accumulate(_as_episodes(miss_rate(preds, target)))


class PresenceAccuracy(PerStepMetric):
    """:func:`presence_accuracy` accumulated per step."""

    higher_is_better = True

    def update(self, preds: Observation, target: Observation) -> None:
        """Adds observations stacked as ``positions`` [B, T, K, 2] (or [T, K, 2])."""
        self._accumulate(_as_episodes(presence_accuracy(preds, target)))


class _FollowingMetric(PerStepMetric):
    higher_is_better = True

    def __init__(
        self,
        min_px: float = DEFAULT_MIN_PX,
        rel: float = DEFAULT_REL,
        horizon: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(horizon=horizon, **kwargs)
        _check_tolerance(min_px, rel)
        self.min_px = float(min_px)
        self.rel = float(rel)


class ActionFollowing(_FollowingMetric):
    """:func:`action_following` accumulated per step over the steps where the truth changes.

    Args:
        min_px: tolerance floor and movement threshold in px.
        rel: tolerance as a fraction of the true displacement's length.
        horizon: optional number of steps to preallocate.
    """

    def update(self, preds: Observation, target: Observation, context: Observation) -> None:
        """Adds stacked observations [B, T, K, ...] and the context observation [B, K, ...]."""
        values = action_following(preds, target, context, min_px=self.min_px, rel=self.rel)
        self._accumulate(_as_episodes(values))


class HoldAccuracy(_FollowingMetric):
    """:func:`hold_accuracy` accumulated per step over the steps where the truth changes nothing."""

    def update(self, preds: Observation, target: Observation, context: Observation) -> None:
        """Adds stacked observations [B, T, K, ...] and the context observation [B, K, ...]."""
        values = hold_accuracy(preds, target, context, min_px=self.min_px, rel=self.rel)
        self._accumulate(_as_episodes(values))


#: observation keys scored by position/presence rules; every other key is a discrete attribute
GEOMETRY_KEYS = ("positions", "present")


def attribute_following(
    preds: Sequence[Observation], target: Sequence[Observation], context: Observation
) -> np.ndarray:
    """Whether discrete attributes (colours, background, ...) change exactly as the truth does.

    For every attribute key other than positions/presence and every step t: where the truth's
    value changes between t-1 and t, the prediction must show the true old value at t-1 and the
    true new value at t; where it does not change, the prediction must not change it either
    (step -1 is the true context).

    Returns:
        bool [T].
    """
    keys = [k for k in context if k not in GEOMETRY_KEYS]
    ok = np.ones(len(target), dtype=bool)
    for key in keys:
        t_prev, p_prev = np.asarray(context[key]), np.asarray(context[key])
        for t, (p, tr) in enumerate(zip(preds, target, strict=True)):
            pv, tv = np.asarray(p[key]), np.asarray(tr[key])
            changed = tv != t_prev
            # A true change must show as the same change: from the true old value (so a model
            # that missed an earlier change does not score when the truth changes back) to the
            # true new value.
            good = np.where(changed, (pv == tv) & (p_prev == t_prev), pv == p_prev)
            ok[t] &= bool(np.all(good))
            t_prev, p_prev = tv, pv
    return ok


def attributes_changed(target: Sequence[Observation], context: Observation) -> np.ndarray:
    """bool [T]: whether any discrete attribute of the truth changes at step t."""
    keys = [k for k in context if k not in GEOMETRY_KEYS]
    out = np.zeros(len(target), dtype=bool)
    prev = context
    for t, obs in enumerate(target):
        out[t] = any(not np.array_equal(np.asarray(obs[k]), np.asarray(prev[k])) for k in keys)
        prev = obs
    return out


def tracking_accuracy(preds: Observation, target: Observation, max_px: float) -> np.ndarray:
    """Per step, the fraction of slots the prediction gets right: absent where the truth is
    absent, or present within ``max_px`` of the true centre where the truth is present.

    Args:
        preds: perceived predictions, ``positions`` [T, K, 2], ``present`` [T, K].
        target: true observations, same shapes.
        max_px: the distance within which a shown entity counts as tracked.

    Returns:
        float64 [T] in [0, 1].
    """
    p_pos, t_pos = np.asarray(preds["positions"]), np.asarray(target["positions"])
    p_on = np.asarray(preds["present"]) & np.isfinite(p_pos).all(-1)
    t_on = np.asarray(target["present"]) & np.isfinite(t_pos).all(-1)
    with np.errstate(invalid="ignore"):
        err = np.linalg.norm(p_pos - t_pos, axis=-1)
    ok = np.where(t_on, p_on & (err <= max_px), ~p_on)
    return ok.mean(axis=-1)


def counterfactual_agreement(
    pred_a: Observation,
    pred_b: Observation,
    true_a: Observation,
    true_b: Observation,
    *,
    min_px: float = DEFAULT_MIN_PX,
    rel: float = DEFAULT_REL,
) -> bool:
    """Whether the predicted a-versus-b difference matches the true one for every entity.

    For each slot k: the presence of k under a and under b must be as in the truth; where k is
    present in all four, ``|(pa - pb) - (ta - tb)| <= max(min_px, rel * |ta - tb|)``. Discrete
    attributes (every other key) must differ between a and b exactly where the truth's differ.
    """
    on = {}
    for name, obs in (("pa", pred_a), ("pb", pred_b), ("ta", true_a), ("tb", true_b)):
        pos = np.asarray(obs["positions"], dtype=np.float64)
        on[name] = np.asarray(obs["present"], dtype=bool) & np.isfinite(pos).all(-1)
    if not (np.array_equal(on["pa"], on["ta"]) and np.array_equal(on["pb"], on["tb"])):
        return False
    both = on["ta"] & on["tb"]
    d_true = np.asarray(true_a["positions"]) - np.asarray(true_b["positions"])
    d_pred = np.asarray(pred_a["positions"]) - np.asarray(pred_b["positions"])
    norm = np.linalg.norm(np.where(both[:, None], d_true, 0.0), axis=-1)
    gap = np.linalg.norm(np.where(both[:, None], d_pred - d_true, 0.0), axis=-1)
    if np.any(gap > np.maximum(min_px, rel * norm)):
        return False
    for key in true_a:
        if key in GEOMETRY_KEYS:
            continue
        true_diff = np.asarray(true_a[key]) != np.asarray(true_b[key])
        pred_diff = np.asarray(pred_a[key]) != np.asarray(pred_b[key])
        if not np.array_equal(true_diff, pred_diff):
            return False
    return True
