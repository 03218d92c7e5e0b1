"""Tests of the ground-truth envs, plus checks they share (perception accuracy, degraded frames)."""

from __future__ import annotations

import numpy as np
import pytest

from panbench.envs.base import Env, Observation
from panbench.errors import ConfigError


def assert_observations_match(expected: Observation, got: Observation, tol: float = 0.5) -> None:
    """Asserts ``got`` (from ``perceive``) equals ``expected`` (from ``observe``).

    Same keys; equal presence; NaN positions exactly where absent; present positions within
    ``tol`` pixels on both axes; every other key equal.
    """
    assert set(got) == set(expected), f"keys differ: {sorted(got)} vs {sorted(expected)}"
    present = expected["present"]
    np.testing.assert_array_equal(got["present"], present)
    assert np.isnan(got["positions"][~present]).all()
    assert np.isnan(expected["positions"][~present]).all()
    err = np.abs(got["positions"][present] - expected["positions"][present])
    assert (err <= tol).all(), f"position error {err.max()} px > {tol} px"
    for key in set(expected) - {"present", "positions"}:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def assert_perception_sweep(env: Env, seeds: int = 200, steps: int = 10) -> None:
    """``perceive(render(s)) == observe(s)`` along seeded random rollouts (reset included)."""
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        state = env.reset(seed)
        for _ in range(steps + 1):
            assert_observations_match(env.observe(state), env.perceive(env.render(state)))
            state = env.step(state, env.random_action(state, rng))


def degraded(frame: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Imperfect versions of a uint8 [H,W,3] frame, as a generative model might produce them."""
    f = frame.astype(np.float64)
    padded = np.pad(f, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w, _ = frame.shape
    blur = sum(padded[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9
    versions = {
        "noise": f + rng.normal(0, 12, f.shape),
        "blur": blur,
        "shift": f + np.array([18.0, -15.0, 12.0]),
        "quantised": (f // 32) * 32 + 16,
        "salt": np.where(rng.random((*f.shape[:2], 1)) < 0.02, 255.0, f),
        "random": rng.uniform(0, 256, f.shape),
        "black": np.zeros_like(f),
        "one_colour": np.broadcast_to(f[h // 2, w // 2], f.shape),
    }
    return {k: np.clip(v, 0, 255).astype(np.uint8) for k, v in versions.items()}


def assert_well_formed(env: Env, obs: Observation, reference: Observation) -> None:
    """``obs`` has ``reference``'s keys, shapes and dtypes, and NaN positions where absent."""
    assert set(obs) == set(reference)
    for key, value in reference.items():
        assert obs[key].shape == value.shape, key
        assert obs[key].dtype == value.dtype, key
    assert obs["positions"].shape == (env.num_entities, 2)
    assert np.isnan(obs["positions"][~obs["present"]]).all()
    assert np.isfinite(obs["positions"][obs["present"]]).all()


def degraded_scores(env: Env, seeds: int = 30, tol: float = 1.0) -> dict[str, int]:
    """Perceives degraded renders of ``seeds`` reset states; counts the right ones per corruption.

    Every perception must be well formed and must not report more entities than are present
    (corruption may lose an entity, never invent one). A frame counts as right when every key but
    ``positions`` equals the truth and present positions are within ``tol`` pixels.

    Returns:
        corruption name (see :func:`degraded`) -> number of right frames, out of ``seeds``.
    """
    rng = np.random.default_rng(0)
    correct: dict[str, int] = {}
    for seed in range(seeds):
        state = env.reset(seed)
        truth = env.observe(state)
        for kind, frame in degraded(env.render(state), rng).items():
            obs = env.perceive(frame)
            assert_well_formed(env, obs, truth)
            assert obs["present"].sum() <= truth["present"].sum(), kind
            same = all(np.array_equal(obs[k], truth[k]) for k in truth if k != "positions")
            err = np.nan_to_num(np.abs(obs["positions"] - truth["positions"]), nan=0.0)
            correct[kind] = correct.get(kind, 0) + int(same and err.max(initial=0) <= tol)
    return correct


def assert_rejects_wrong_frames(env: Env) -> None:
    """``perceive`` raises ConfigError naming the expected shape for wrong shapes and dtypes."""
    frame = env.render(env.reset(0))
    res = env.resolution
    wrong = (frame[: res // 2], frame[..., :2], frame.astype(np.float32), frame[None])
    for bad in (*wrong, frame.astype(np.int64), np.zeros((res, res, 4), dtype=np.uint8)):
        with pytest.raises(ConfigError, match=rf"uint8 frame of shape \({res}, {res}, 3\)"):
            env.perceive(bad)
