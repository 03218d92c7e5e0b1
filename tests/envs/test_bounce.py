"""Tests of the ``bounce`` env: physics, pushes, rendering and exact perception."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from panbench.envs import make
from panbench.envs.base import Action
from panbench.envs.bounce import (
    BALL_PALETTE,
    GRAVITY,
    MAX_SPEED,
    PUSH_SPEED,
    RADIUS,
    STEP_SECONDS,
    WAIT_INDEX,
    BounceEnv,
    BounceState,
)
from panbench.errors import ConfigError, UnknownNameError
from tests.envs import (
    assert_observations_match,
    assert_perception_sweep,
    assert_rejects_wrong_frames,
    degraded_scores,
)

UP, DOWN, LEFT, RIGHT = range(4)


def balls(**slots: tuple[float, float, float, float]) -> BounceState:
    """A hand-made state: ``slot<k>=(x, y, vx, vy)`` in frame units."""
    pos, vel, present = np.zeros((4, 2)), np.zeros((4, 2)), np.zeros(4, dtype=bool)
    for key, (x, y, vx, vy) in slots.items():
        k = int(key[-1])
        pos[k], vel[k], present[k] = (x, y), (vx, vy), True
    return BounceState(pos, vel, present)


@pytest.fixture
def env() -> BounceEnv:
    made = make("bounce", resolution=64)
    assert isinstance(made, BounceEnv)
    return made


def min_gap(state: BounceState) -> float:
    """Smallest centre distance between two present balls (inf for fewer than two)."""
    p = state.positions[state.present]
    d = np.hypot(*(p[:, None, :] - p[None, :, :]).transpose(2, 0, 1))
    d[np.diag_indices(len(p))] = np.inf
    return float(d.min()) if len(p) > 1 else np.inf


# ----------------------------------------------------------------------------------- config
@pytest.mark.parametrize("resolution", [0, 31, 60, 520, "64", None])
def test_bad_resolution_is_a_config_error(resolution: object) -> None:
    with pytest.raises(ConfigError, match="resolution"):
        make("bounce", resolution=resolution)  # type: ignore[arg-type]


@pytest.mark.parametrize("num_balls", [0, 5, [3, 1], "2", [2], False])
def test_bad_num_balls_is_a_config_error(num_balls: object) -> None:
    with pytest.raises(ConfigError, match="num_balls"):
        make("bounce", num_balls=num_balls)


def test_unknown_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Did you mean: num_balls"):
        make("bounce", num_ball=2)
    with pytest.raises(ConfigError, match="Accepted options: num_balls"):
        make("bounce", gravity=1.0)


def test_config_round_trips_through_make() -> None:
    env = make("bounce", resolution=32, num_balls=[3, 4])
    assert env.config == {"resolution": 32, "num_balls": [3, 4]}
    assert make("bounce", **env.config).fingerprint() == env.fingerprint()
    fixed = make("bounce", num_balls=2)
    assert fixed.config["num_balls"] == [2, 2]
    assert make("bounce", **fixed.config).fingerprint() == fixed.fingerprint()


# ----------------------------------------------------------------------------------- reset
def test_reset_is_deterministic_and_valid(env: BounceEnv) -> None:
    counts = set()
    for seed in range(100):
        a, b = env.reset(seed), env.reset(seed)
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.velocities, b.velocities)
        np.testing.assert_array_equal(env.render(a), env.render(b))
        counts.add(int(a.present.sum()))
        p = a.positions[a.present]
        assert ((p >= RADIUS) & (p <= 1 - RADIUS)).all()
        assert min_gap(a) >= 2 * RADIUS
        assert (a.velocities[~a.present] == 0).all()
    assert counts == {2, 3, 4}
    assert make("bounce", num_balls=1).reset(0).present.sum() == 1


def test_rollouts_are_deterministic(env: BounceEnv) -> None:
    for seed in range(5):
        runs = []
        for _ in range(2):
            rng, state = np.random.default_rng(seed), env.reset(seed)
            frames = []
            for _ in range(50):
                state = env.step(state, env.random_action(state, rng))
                frames.append(env.render(state))
            runs.append(np.stack(frames))
        np.testing.assert_array_equal(runs[0], runs[1])


def test_states_are_immutable_values(env: BounceEnv) -> None:
    state = env.reset(0)
    for array in (state.positions, state.velocities, state.present):
        with pytest.raises(ValueError):
            array[0] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.t = 3  # type: ignore[misc]
    copy = (state.positions.copy(), state.velocities.copy())
    after = env.step(state, 0)
    assert after is not state and after.t == 1 and state.t == 0
    np.testing.assert_array_equal(state.positions, copy[0])
    np.testing.assert_array_equal(state.velocities, copy[1])


# ----------------------------------------------------------------------------------- actions
def test_action_layout_texts_and_vectors(env: BounceEnv) -> None:
    assert env.num_actions == 17 and env.num_entities == 4
    state = balls(slot0=(0.3, 0.3, 0, 0), slot2=(0.7, 0.7, 0, 0))
    actions = env.actions(state)
    assert [a.index for a in actions] == [0, 1, 2, 3, 8, 9, 10, 11, WAIT_INDEX]
    assert [a.text for a in actions[4:]] == [
        "push the blue ball up",
        "push the blue ball down",
        "push the blue ball left",
        "push the blue ball right",
        "wait",
    ]
    assert [a.vector for a in actions[:4]] == [(0.0, -1.0), (0.0, 1.0), (-1.0, 0.0), (1.0, 0.0)]
    assert actions[-1].kind == "wait" and actions[-1].vector is None
    assert all(a.kind == "agent" for a in actions[:-1])
    texts = [a.text for a in actions]
    assert len(set(texts)) == len(texts)


def test_unknown_actions_raise_clear_errors(env: BounceEnv) -> None:
    state = env.reset(0)
    with pytest.raises(UnknownNameError, match="Unknown action 'push the ball'"):
        env.step(state, "push the ball")
    with pytest.raises(UnknownNameError, match=r"in \[0, 17\)"):
        env.step(state, 17)
    with pytest.raises(UnknownNameError, match="Expected an Action"):
        env.step(state, None)  # type: ignore[arg-type]


def test_pushing_an_absent_ball_is_a_wait(env: BounceEnv) -> None:
    state = balls(slot0=(0.3, 0.3, 0.2, 0), slot1=(0.7, 0.7, 0, 0))
    action = env.resolve_action(state, 3 * 4 + UP)
    assert action.kind == "wait" and action.text == "wait"
    np.testing.assert_array_equal(
        env.step(state, action).positions, env.step(state, "wait").positions
    )


@pytest.mark.parametrize("direction", [UP, DOWN, LEFT, RIGHT])
def test_push_changes_exactly_that_velocity_by_the_push(env: BounceEnv, direction: int) -> None:
    state = balls(slot1=(0.5, 0.4, 0.1, -0.2), slot3=(0.2, 0.8, 0.0, 0.0))
    pushed = env.step(state, 1 * 4 + direction)
    waited = env.step(state, "wait")
    vector = np.array(env.resolve_action(state, 1 * 4 + direction).vector)
    np.testing.assert_allclose(
        pushed.velocities[1] - waited.velocities[1], PUSH_SPEED * vector, atol=1e-12
    )
    np.testing.assert_allclose(
        pushed.positions[1] - waited.positions[1], PUSH_SPEED * vector * STEP_SECONDS, atol=1e-12
    )
    np.testing.assert_array_equal(pushed.positions[3], waited.positions[3])
    np.testing.assert_array_equal(pushed.velocities[3], waited.velocities[3])


def test_push_by_text_and_by_action_object_agree(env: BounceEnv) -> None:
    state = env.reset(3)
    first = env.actions(state)[0]
    by_text = env.step(state, first.text.upper())
    by_action = env.step(state, Action(first.index, "ignored"))
    np.testing.assert_array_equal(by_text.velocities, by_action.velocities)
    np.testing.assert_array_equal(by_text.velocities, env.step(state, first.index).velocities)


def test_pushes_are_capped_at_max_speed(env: BounceEnv) -> None:
    state = balls(slot0=(0.5, 0.5, 0.0, 0.0))
    for _ in range(20):
        state = env.step(state, 0 * 4 + UP)
        assert np.hypot(*state.velocities[0]) <= MAX_SPEED + GRAVITY * STEP_SECONDS + 1e-9


# ----------------------------------------------------------------------------------- physics
def test_free_flight_follows_gravity(env: BounceEnv) -> None:
    state = balls(slot0=(0.5, 0.3, 0.2, -0.5))
    after = env.step(state, "wait")
    t = STEP_SECONDS
    np.testing.assert_allclose(
        after.positions[0], (0.5 + 0.2 * t, 0.3 - 0.5 * t + GRAVITY * t * t / 2)
    )
    np.testing.assert_allclose(after.velocities[0], (0.2, -0.5 + GRAVITY * t))


@pytest.mark.parametrize(("x", "vx"), [(1 - RADIUS - 0.01, 1.0), (RADIUS + 0.01, -1.0)])
def test_side_wall_bounce_reverses_horizontal_velocity(env: BounceEnv, x: float, vx: float) -> None:
    state = balls(slot0=(x, 0.5, vx, 0.0))
    after = env.step(state, "wait")
    assert after.velocities[0, 0] == pytest.approx(-vx, abs=1e-12)
    # Mirrored at the wall: it ends as far inside as it would have travelled beyond.
    wall = 1 - RADIUS if vx > 0 else RADIUS
    travelled = abs(vx) * STEP_SECONDS - abs(wall - x)
    assert after.positions[0, 0] == pytest.approx(wall - np.sign(vx) * travelled, abs=1e-12)


def test_floor_bounce_reverses_vertical_velocity_and_keeps_energy(env: BounceEnv) -> None:
    state = balls(slot0=(0.5, 1 - RADIUS - 0.01, 0.0, 1.0))
    after = env.step(state, "wait")
    assert after.velocities[0, 1] < 0
    assert after.positions[0, 1] <= 1 - RADIUS
    assert env.energy(after) == pytest.approx(env.energy(state), rel=1e-9)


def test_head_on_collision_exchanges_velocities(env: BounceEnv) -> None:
    gap = 2 * RADIUS + 0.02
    state = balls(slot0=(0.5 - gap / 2, 0.5, 1.0, 0.0), slot1=(0.5 + gap / 2, 0.5, -1.0, 0.0))
    after = env.step(state, "wait")
    np.testing.assert_allclose(after.velocities[:, 0][:2], [-1.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(after.velocities[0], after.velocities[1] * [-1, 1], atol=1e-9)
    assert min_gap(after) >= 2 * RADIUS
    # A moving ball hitting a resting one stops and sets the other moving (equal masses).
    state = balls(slot0=(0.5 - gap / 2, 0.5, 1.0, 0.0), slot1=(0.5 + gap / 2, 0.5, 0.0, 0.0))
    after = env.step(state, "wait")
    np.testing.assert_allclose(after.velocities[:2, 0], [0.0, 1.0], atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_energy_is_conserved_without_pushes(env: BounceEnv, seed: int) -> None:
    state = env.reset(seed)
    start = env.energy(state)
    energies = []
    for _ in range(300):
        state = env.step(state, "wait")
        energies.append(env.energy(state))
    assert np.max(np.abs(np.array(energies) / start - 1)) < 1e-5


@pytest.mark.parametrize("seed", range(20))
def test_balls_stay_in_the_box_and_never_overlap(seed: int) -> None:
    env = make("bounce", num_balls=4)
    rng, state = np.random.default_rng(seed), env.reset(seed)
    for _ in range(100):
        state = env.step(state, env.random_action(state, rng))
        p = state.positions[state.present]
        assert ((p >= RADIUS) & (p <= 1 - RADIUS)).all()
        assert min_gap(state) >= 2 * RADIUS


def test_dynamics_are_chaotic(env: BounceEnv) -> None:
    a = make("bounce", num_balls=4).reset(0)
    nudged = a.positions.copy()
    nudged[a.present] += 1e-9
    b = dataclasses.replace(a, positions=nudged)
    for _ in range(150):
        a, b = env.step(a, "wait"), env.step(b, "wait")
    assert np.abs(a.positions - b.positions).max() > 0.05


# ----------------------------------------------------------------------------------- pixels
def test_render_uses_strict_pixel_centre_inside_disk(env: BounceEnv) -> None:
    # Centre at pixel coordinates (20, 30): radius 4.8 px, so (20 +- 4, 30) are in, +-5 not.
    state = balls(slot2=((20 + 0.5) / 64, (30 + 0.5) / 64, 0, 0))
    frame = env.render(state)
    mask = (frame == BALL_PALETTE[2]).all(-1)
    rows, cols = np.nonzero(mask)
    expected = (cols - 20.0) ** 2 + (rows - 30.0) ** 2 < (RADIUS * 64) ** 2
    assert expected.all()
    ii, jj = np.mgrid[:64, :64]
    np.testing.assert_array_equal(mask, (jj - 20.0) ** 2 + (ii - 30.0) ** 2 < (RADIUS * 64) ** 2)
    assert mask[30, 24] and not mask[30, 25] and mask[26, 20] and not mask[25, 20]


def test_render_batch_matches_render(env: BounceEnv) -> None:
    rng = np.random.default_rng(0)
    states = [env.reset(seed) for seed in range(30)]
    states = [env.step(s, env.random_action(s, rng)) for s in states]
    batch = env.render_batch(states)
    assert batch.shape == (30, 64, 64, 3) and batch.dtype == np.uint8
    for state, frame in zip(states, batch, strict=True):
        np.testing.assert_array_equal(frame, env.render(state))
    assert env.render_batch([]).shape == (0, 64, 64, 3)


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_perceive_recovers_observe_exactly(resolution: int) -> None:
    assert_perception_sweep(make("bounce", resolution=resolution), seeds=200, steps=10)


@pytest.mark.parametrize("resolution", [32, 40, 64, 128])
def test_perceived_centre_is_within_half_a_pixel_at_every_subpixel_offset(resolution: int) -> None:
    env = make("bounce", resolution=resolution)
    grid = np.linspace(0, 1, 41)
    for fx in grid:
        for fy in grid[::4]:
            state = balls(slot1=(0.5 + fx / resolution, 0.5 + fy / resolution, 0, 0))
            assert_observations_match(env.observe(state), env.perceive(env.render(state)))


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_perceive_is_exact_on_touching_balls(resolution: int) -> None:
    env = make("bounce", resolution=resolution)
    d = 2 * RADIUS
    # Four balls exactly touching in a chain and a diagonal, against the walls too.
    state = balls(
        slot0=(RADIUS, 0.5, 0, 0),
        slot1=(RADIUS + d, 0.5, 0, 0),
        slot2=(RADIUS + d + d / np.sqrt(2), 0.5 + d / np.sqrt(2), 0, 0),
        slot3=(1 - RADIUS, 1 - RADIUS, 0, 0),
    )
    assert_observations_match(env.observe(state), env.perceive(env.render(state)))


def test_perceive_rejects_wrong_frames(env: BounceEnv) -> None:
    assert_rejects_wrong_frames(env)


@pytest.mark.parametrize("resolution", [32, 64])
def test_perceive_degrades_gracefully(resolution: int) -> None:
    correct = degraded_scores(make("bounce", resolution=resolution))
    for kind in ("noise", "shift", "salt", "quantised"):
        assert correct[kind] == 30, (kind, correct[kind])
    assert correct["random"] == correct["black"] == correct["one_colour"] == 0
    # A 3x3 blur erodes a 2.4 px radius ball (resolution 32) to a few pixels: some are lost.
    assert correct["blur"] >= (30 if resolution >= 64 else 20), correct["blur"]


def test_perceive_on_random_frames_finds_no_balls(env: BounceEnv) -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        obs = env.perceive(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        assert not obs["present"].any()
