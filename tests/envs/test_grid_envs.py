"""Checks the tile-grid envs (maze, blocks) share: frame validation and perception on bad frames."""

from __future__ import annotations

import numpy as np
import pytest

from panbench.envs import make
from panbench.errors import ConfigError
from tests.envs import assert_well_formed, degraded

# The most entities each env can show, so that every sprite is exercised.
GRID_ENVS = {"maze": {}, "blocks": {"num_blocks": 6}}


@pytest.mark.parametrize("name", GRID_ENVS)
def test_perceive_rejects_wrong_frames(name: str) -> None:
    env = make(name, resolution=64, **GRID_ENVS[name])
    frame = env.render(env.reset(0))
    for bad in (frame[:32], frame[..., :2], frame.astype(np.float32), frame[None]):
        with pytest.raises(ConfigError, match=r"uint8 frame of shape \(64, 64, 3\)"):
            env.perceive(bad)


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("name", GRID_ENVS)
def test_perceive_degrades_gracefully(name: str, resolution: int) -> None:
    env = make(name, resolution=resolution, **GRID_ENVS[name])
    rng = np.random.default_rng(0)
    correct: dict[str, int] = {}
    for seed in range(30):
        state = env.reset(seed)
        truth = env.observe(state)
        for kind, frame in degraded(env.render(state), rng).items():
            obs = env.perceive(frame)
            if resolution == 64:
                assert_well_formed(env, obs, truth)
            for goal in env.goals():
                assert 0 <= env.goal_distance(obs, goal) < np.inf
            same = all(np.array_equal(obs[k], truth[k]) for k in truth if k != "positions")
            correct[kind] = correct.get(kind, 0) + int(same)
    # Mild corruption leaves every cell recognisable; garbage frames are never read as the scene.
    for kind in ("noise", "shift", "salt", "quantised"):
        assert correct[kind] == 30, (kind, correct[kind])
    # A 3x3 blur smears a 4 px cell beyond recognition, but not an 8 px one.
    if resolution == 64:
        assert correct["blur"] == 30
    assert correct["random"] == correct["black"] == correct["one_colour"] == 0


@pytest.mark.parametrize("name", GRID_ENVS)
def test_perceive_on_random_frames_finds_no_entities(name: str) -> None:
    env = make(name, resolution=64, **GRID_ENVS[name])
    rng = np.random.default_rng(1)
    for _ in range(10):
        obs = env.perceive(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        assert not obs["present"].any() and np.isnan(obs["positions"]).all()
        assert (obs["cells"] == -1).all()
