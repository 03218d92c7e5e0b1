"""Grounded metrics on hand-built observation sequences, checked against per-entity loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from panbench.errors import ConfigError, ContractError
from panbench.metrics import (
    ActionFollowing,
    HoldAccuracy,
    MissRate,
    PositionError,
    PresenceAccuracy,
    action_following,
    changed_steps,
    hold_accuracy,
    miss_rate,
    position_error,
    presence_accuracy,
    stack_observations,
)

NAN = math.nan


def obs(*entities: tuple[float, float] | None) -> dict[str, np.ndarray]:
    """One observation: a position per slot, ``None`` for an absent entity (NaN position)."""
    pos = np.array([(NAN, NAN) if e is None else e for e in entities], dtype=np.float64)
    return {"positions": pos, "present": np.array([e is not None for e in entities])}


def seq(*frames: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return stack_observations(list(frames))


# Three entities; the truth moves entity 0 right by 6 px, waits, removes entity 2, moves entity 1
# down by 4 px, then moves entity 0 back left by 6 px.
CONTEXT = obs((10, 10), (30, 10), (50, 50))
TRUTH = seq(
    obs((16, 10), (30, 10), (50, 50)),
    obs((16, 10), (30, 10), (50, 50)),
    obs((16, 10), (30, 10), None),
    obs((16, 10), (30, 14), None),
    obs((10, 10), (30, 14), None),
)
CHANGED = [True, False, True, True, True]


def _reference_following(pred, true, ctx, min_px=1.5, rel=0.25):
    """Plain-loop restatement of the documented rule, one entity at a time."""
    t_steps, k_slots = true["present"].shape
    out = []
    for t in range(t_steps):
        prev_t = ctx if t == 0 else {k: v[t - 1] for k, v in true.items()}
        prev_p = ctx if t == 0 else {k: v[t - 1] for k, v in pred.items()}
        ok_all, changed = True, False
        for k in range(k_slots):
            t0, t1 = bool(prev_t["present"][k]), bool(true["present"][t, k])
            p0, p1 = bool(prev_p["present"][k]), bool(pred["present"][t, k])
            dt = true["positions"][t, k] - prev_t["positions"][k] if t0 and t1 else np.zeros(2)
            dp = pred["positions"][t, k] - prev_p["positions"][k] if p0 and p1 else np.zeros(2)
            tol = max(min_px, rel * math.hypot(*dt))
            near = math.hypot(*(dp - dt)) <= tol
            if t0 != t1:
                changed, ok = True, (p0, p1) == (t0, t1)
            elif t0 and t1 and math.hypot(*dt) > min_px:
                changed, ok = True, p0 and p1 and near
            else:
                ok = p0 == p1 and (not (p0 and p1) or near)
            ok_all &= ok
        out.append((float(ok_all) if changed else NAN, NAN if changed else float(ok_all)))
    return np.array(out)


def _assert_matches_reference(pred):
    ref = _reference_following(pred, TRUTH, CONTEXT)
    np.testing.assert_array_equal(action_following(pred, TRUTH, CONTEXT), ref[:, 0])
    np.testing.assert_array_equal(hold_accuracy(pred, TRUTH, CONTEXT), ref[:, 1])


def test_changed_steps():
    assert changed_steps(TRUTH, CONTEXT).tolist() == CHANGED


def test_perfect_prediction_follows_every_step_with_zero_error():
    np.testing.assert_array_equal(action_following(TRUTH, TRUTH, CONTEXT), [1, NAN, 1, 1, 1])
    np.testing.assert_array_equal(hold_accuracy(TRUTH, TRUTH, CONTEXT), [NAN, 1, NAN, NAN, NAN])
    np.testing.assert_array_equal(position_error(TRUTH, TRUTH), np.zeros(5))
    np.testing.assert_array_equal(presence_accuracy(TRUTH, TRUTH), np.ones(5))
    np.testing.assert_array_equal(miss_rate(TRUTH, TRUTH), np.zeros(5))


def test_perceived_prediction_within_half_pixel_still_follows():
    rng = np.random.default_rng(0)
    jittered = {
        "positions": TRUTH["positions"] + rng.uniform(-0.5, 0.5, TRUTH["positions"].shape),
        "present": TRUTH["present"].copy(),
    }
    followed = action_following(jittered, TRUTH, CONTEXT)
    assert np.nansum(followed) == 4 and hold_accuracy(jittered, TRUTH, CONTEXT)[1] == 1.0
    _assert_matches_reference(jittered)


def test_copy_last_scores_zero_on_every_changed_step():
    copy_last = seq(*[CONTEXT] * 5)
    np.testing.assert_array_equal(action_following(copy_last, TRUTH, CONTEXT), [0, NAN, 0, 0, 0])
    assert hold_accuracy(copy_last, TRUTH, CONTEXT)[1] == 1.0  # it does hold on the no-op step
    _assert_matches_reference(copy_last)


def test_wrong_entity_moved_is_not_followed():
    pred = seq(obs((10, 10), (36, 10), (50, 50)))  # moves entity 1 instead of 0
    one_step = {k: v[:1] for k, v in TRUTH.items()}
    assert action_following(pred, one_step, CONTEXT).tolist() == [0.0]
    both = seq(obs((16, 10), (36, 10), (50, 50)))  # moves 0 right, but also 1
    assert action_following(both, one_step, CONTEXT).tolist() == [0.0]


@pytest.mark.parametrize(
    "moved_to,followed",
    [
        ((16, 10), True),  # exact
        ((17.4, 10), True),  # 1.4 px off: within max(1.5, 0.25 * 6)
        ((17.6, 10), False),  # 1.6 px off
        ((14.5, 10), True),  # 25% short
        ((14.4, 10), False),  # 27% short
        ((10, 16), False),  # right length, orthogonal direction
        ((4, 10), False),  # opposite direction
    ],
)
def test_displacement_tolerance(moved_to, followed):
    pred = seq(obs(moved_to, (30, 10), (50, 50)))
    one_step = {k: v[:1] for k, v in TRUTH.items()}
    assert action_following(pred, one_step, CONTEXT).tolist() == [float(followed)]


def test_disappearing_entity_is_a_presence_error_and_a_miss():
    # the prediction is perfect except that it loses entity 1 from step 1 on
    pred = {"positions": TRUTH["positions"].copy(), "present": TRUTH["present"].copy()}
    pred["present"][1:, 1] = False
    pred["positions"][1:, 1] = NAN
    np.testing.assert_allclose(presence_accuracy(pred, TRUTH), [1, 2 / 3, 2 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(miss_rate(pred, TRUTH), [0, 1 / 3, 1 / 2, 1 / 2, 1 / 2])
    np.testing.assert_array_equal(position_error(pred, TRUTH), np.zeros(5))  # misses excluded
    # step 1 changes nothing in truth but the prediction drops an entity: not held; step 3
    # truly moves entity 1, which the prediction no longer shows: not followed
    np.testing.assert_array_equal(action_following(pred, TRUTH, CONTEXT), [1, NAN, 1, 0, 1])
    np.testing.assert_array_equal(hold_accuracy(pred, TRUTH, CONTEXT), [NAN, 0, NAN, NAN, NAN])
    _assert_matches_reference(pred)


def test_missing_removal_is_not_followed_and_hallucination_hurts_presence():
    pred = {"positions": TRUTH["positions"].copy(), "present": TRUTH["present"].copy()}
    pred["present"][2:, 2] = True  # never removes entity 2
    pred["positions"][2:, 2] = (50, 50)
    np.testing.assert_array_equal(action_following(pred, TRUTH, CONTEXT), [1, NAN, 0, 1, 1])
    np.testing.assert_allclose(presence_accuracy(pred, TRUTH), [1, 1, 2 / 3, 2 / 3, 2 / 3])
    _assert_matches_reference(pred)


def test_position_error_against_loop_reference():
    rng = np.random.default_rng(3)
    true = {"positions": rng.uniform(0, 64, (6, 4, 2)), "present": rng.random((6, 4)) < 0.7}
    pred = {"positions": rng.uniform(0, 64, (6, 4, 2)), "present": rng.random((6, 4)) < 0.7}
    ref = []
    for t in range(6):
        d = [
            math.dist(pred["positions"][t, k], true["positions"][t, k])
            for k in range(4)
            if pred["present"][t, k] and true["present"][t, k]
        ]
        ref.append(np.mean(d) if d else NAN)
    np.testing.assert_allclose(position_error(pred, true), ref)


def test_random_predictions_match_loop_reference():
    rng = np.random.default_rng(7)
    for _ in range(20):
        pred = {
            "positions": TRUTH["positions"] + rng.normal(0, 2.0, TRUTH["positions"].shape),
            "present": TRUTH["present"] ^ (rng.random(TRUTH["present"].shape) < 0.15),
        }
        _assert_matches_reference(pred)


def test_batched_inputs_equal_per_episode_calls_and_classes_accumulate():
    copy_last = seq(*[CONTEXT] * 5)
    preds = stack_observations([TRUTH, copy_last])
    truth = stack_observations([TRUTH, TRUTH])
    ctx = stack_observations([CONTEXT, CONTEXT])
    batched = action_following(preds, truth, ctx)
    assert batched.shape == (2, 5)
    np.testing.assert_array_equal(batched[1], action_following(copy_last, TRUTH, CONTEXT))

    m = ActionFollowing()
    m.update(preds, truth, ctx)
    np.testing.assert_array_equal(m.curve().mean, [0.5, NAN, 0.5, 0.5, 0.5])
    assert m.curve().n.tolist() == [2, 0, 2, 2, 2] and float(m.compute()) == 0.5
    h = HoldAccuracy()
    h.update(preds, truth, ctx)
    assert float(h.compute()) == 1.0 and h.curve().n.tolist() == [0, 2, 0, 0, 0]

    single = PositionError()
    single.update(TRUTH, TRUTH)  # one episode [T, K, 2] is accepted too
    assert float(single.compute()) == 0.0 and single.curve().n.tolist() == [1] * 5
    for cls in (MissRate, PresenceAccuracy):
        c = cls()
        c.update(preds, truth)
        assert c.curve().horizon == 5


def test_absent_flag_wins_over_nan_and_nan_means_absent():
    true = seq(obs((1, 1), (2, 2)))
    pred = {"positions": np.array([[[1.0, 1.0], [NAN, NAN]]]), "present": np.array([[True, True]])}
    assert presence_accuracy(pred, true).tolist() == [0.5]  # NaN position counts as absent


def test_bad_inputs_say_what_was_received():
    with pytest.raises(ContractError, match="same shape"):
        position_error(seq(obs((1, 1))), seq(obs((1, 1), (2, 2))))
    with pytest.raises(ContractError, match="'positions' and 'present'"):
        position_error({"positions": np.zeros((1, 1, 2))}, seq(obs((1, 1))))
    with pytest.raises(ContractError, match="bool"):
        presence_accuracy(
            {"positions": np.zeros((1, 1, 2)), "present": np.ones((1, 1))}, seq(obs((1, 1)))
        )
    with pytest.raises(ContractError, match="context positions of shape"):
        action_following(TRUTH, TRUTH, seq(CONTEXT))
    with pytest.raises(ConfigError, match="min_px"):
        action_following(TRUTH, TRUTH, CONTEXT, min_px=0.0)


@pytest.mark.parametrize("env_name", ["shapes", "bounce", "blocks"])
def test_on_real_envs_oracle_follows_and_copy_last_does_not(env_name):
    from panbench.envs import make

    env = make(env_name)
    rng = np.random.default_rng(0)
    oracle, copy_last = [], []
    for seed in range(2):
        state = env.reset(seed)
        context, context_frame = env.observe(state), env.render(state)
        truth, perceived = [], []
        for _ in range(8):
            state = env.step(state, env.random_action(state, rng))
            truth.append(env.observe(state))
            perceived.append(env.perceive(env.render(state)))
        true_seq = stack_observations(truth)
        oracle.append(action_following(stack_observations(perceived), true_seq, context))
        still = stack_observations([env.perceive(context_frame)] * 8)
        copy_last.append(action_following(still, true_seq, context))
    oracle_values, copy_values = np.array(oracle), np.array(copy_last)
    assert np.isfinite(oracle_values).sum() >= 4  # enough steps with a true effect
    assert np.nanmean(oracle_values) == 1.0 and np.nanmean(copy_values) == 0.0
