"""Tests of the ground-truth envs, plus checks they share (perception accuracy, degraded frames)."""

from __future__ import annotations

import numpy as np

from panbench.envs.base import Env, Observation


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
