"""PushT on gym-pusht: determinism, agreement with gym-pusht's own physics, coverage and render,
perception from pixels within the documented tolerance, goals and continuous actions."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("gym_pusht")
pytest.importorskip("pymunk")

from panbench.envs import make
from panbench.envs.base import NO_INDEX, Action
from panbench.envs.pusht import GOAL, PushTState, coverage, keypoint_distance, t_polygons
from panbench.errors import ConfigError

#: the documented perception tolerance on rendered frames (docs/envs.md), per resolution:
#: (agent px, block px, block angle degrees)
TOLERANCE = {64: (0.5, 1.0, 6.0), 96: (0.5, 0.75, 3.0)}


def _angle_error(a: float, b: float) -> float:
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)


def _rollout(env, seed: int, steps: int) -> PushTState:
    rng = np.random.default_rng(seed)
    state = env.reset(seed)
    for _ in range(steps):
        state = env.step(state, env.random_action(state, rng))
    return state


def test_resets_and_steps_are_deterministic_and_pure() -> None:
    env = make("pusht", resolution=64)
    assert env.reset(4) == env.reset(4) and env.reset(4) != env.reset(5)
    state = _rollout(env, 4, 3)
    push = Action(NO_INDEX, "", vector=(0.7, -0.3))
    after = env.step(state, push)
    _rollout(env, 9, 6)  # other simulation in between leaves nothing behind
    assert env.step(state, push) == after
    assert after != state and after.steps == state.steps + 1


def test_steps_follow_gym_pushts_own_env() -> None:
    """One control step from gym-pusht's reset agrees with gym-pusht stepping itself: exactly
    without contacts, within 0.5 world units with them (gym-pusht's space keeps the contact
    impulses of its reset step; panbench's step starts from the state alone)."""
    from gym_pusht.envs.pusht import PushTEnv as GymPushT

    env = make("pusht", resolution=64, move_scale=100.0)
    gym_env = GymPushT(obs_type="state")
    exact = 0
    for seed in range(8):
        state = env.reset(seed)
        gym_env.reset(seed=seed)
        move = np.array([0.6, -0.8])
        target = np.clip(np.asarray(state.agent) + 100.0 * move, 0, 512)
        obs, _, _, _, info = gym_env.step(target)
        mine = env.step(state, Action(NO_INDEX, "", vector=tuple(move)))
        np.testing.assert_allclose(mine.agent, obs[:2], atol=1e-6)
        np.testing.assert_allclose(mine.block, obs[2:4], atol=0.5)
        assert _angle_error(mine.angle, obs[4]) < 0.01
        if info["n_contacts"] == 0:
            np.testing.assert_allclose(mine.block, obs[2:4], atol=1e-6)
            exact += 1
    assert exact >= 3


def test_control_step_is_gym_pushts_step_to_the_bit() -> None:
    """panbench runs gym-pusht's control loop without its per-step reward and observation;
    from the same rebuilt space, gym-pusht's own ``step`` gives the very same bodies, pushes
    and contacts included."""
    env = make("pusht", resolution=64, max_offset=20, max_rotation=20, move_scale=50.0)
    sim = env._sim
    rng = np.random.default_rng(0)
    moved = 0
    for seed in range(10):
        state = env.reset(seed)
        for _ in range(15):
            move = rng.uniform(-1, 1, size=2)
            mine = env.step(state, Action(NO_INDEX, "", vector=tuple(move)))
            sim._setup()
            sim.agent.position, sim.agent.velocity = state.agent, state.agent_velocity
            sim.block.angle, sim.block.position = state.angle, state.block
            sim.block.velocity, sim.block.angular_velocity = state.block_velocity, state.block_spin
            sim.step(np.clip(np.asarray(state.agent) + 50.0 * move, 0, 512))
            assert env._read(state.steps + 1) == mine
            moved += mine.block != state.block
            state = mine
    assert moved >= 3  # the agent pushed the T, so contacts were compared too


def test_coverage_matches_gym_pusht() -> None:
    from gym_pusht.envs.pusht import PushTEnv as GymPushT

    gym_env = GymPushT(obs_type="state")
    gym_env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(10):
        x, y = rng.uniform(200, 312, size=2)
        angle = float(rng.uniform(-math.pi, math.pi))
        gym_env.block.angle = angle
        gym_env.block.position = (x, y)
        assert coverage(x, y, angle) == pytest.approx(gym_env._get_coverage(), abs=1e-9)
    assert coverage(*GOAL) == pytest.approx(1.0)


def test_render_agrees_with_gym_pushts_own_frames() -> None:
    env = make("pusht", resolution=96)
    gym_env = env._sim
    for seed in (3, 5, 11):
        state = env.reset(seed)
        gym_env.reset(seed=seed)
        theirs = gym_env._render(visualize=False)  # pygame + OpenCV, 96 x 96
        mine = env.render(state)
        for rgb in ((143, 163, 184), (144, 238, 144)):
            a = np.linalg.norm(theirs.astype(float) - rgb, axis=-1) < 30
            b = np.linalg.norm(mine.astype(float) - rgb, axis=-1) < 10
            assert (a & b).sum() / (a | b).sum() > 0.6, (seed, rgb)


def _drawn_whole(env, state: PushTState) -> np.ndarray:
    """The frame by its definition, every pixel tested (what ``render`` computes only inside
    each moving shape's bounding box): each pixel's colour is what covers its centre."""
    res = env.resolution
    centres = (np.arange(res) + 0.5) * 512.0 / res
    x, y = np.meshgrid(centres, centres)
    frame = np.full((res, res, 3), 255, dtype=np.uint8)
    frame[(x < 7) | (x > 505) | (y < 7) | (y > 505)] = (211, 211, 211)

    def t_mask(bx: float, by: float, angle: float) -> np.ndarray:
        c, s = math.cos(angle), math.sin(angle)
        u = (x - bx) * c + (y - by) * s  # world -> body frame
        v = -(x - bx) * s + (y - by) * c
        bar = (np.abs(u) <= 60) & (v >= 0) & (v <= 30)
        stem = (np.abs(u) <= 15) & (v >= 30) & (v <= 120)
        return bar | stem

    frame[t_mask(*GOAL)] = (144, 238, 144)
    frame[t_mask(*state.block, state.angle)] = (143, 163, 184)
    frame[(x - state.agent[0]) ** 2 + (y - state.agent[1]) ** 2 <= 225] = (78, 126, 255)
    return frame


@pytest.mark.parametrize("resolution", [64, 96])
def test_render_draws_every_pixel_as_its_definition_says(resolution: int) -> None:
    env = make("pusht", resolution=resolution)
    for seed in range(40):
        state = _rollout(env, seed, seed % 5)
        mine, whole = env.render(state), _drawn_whole(env, state)
        # pixels whose centre lies on a shape's edge may fall either way by float rounding
        assert (mine != whole).any(-1).sum() <= 2, seed


def test_palette_labels_are_the_nearest_colour_within_tolerance() -> None:
    from panbench.envs.pusht import _COLOUR_TOLERANCE, _PALETTE, _palette_labels

    env = make("pusht", resolution=64)
    rng = np.random.default_rng(0)
    frame = env.render(env.reset(4)).astype(np.int64)
    noisy = np.clip(
        frame + rng.normal(0, 25, frame.shape) * (rng.random(frame.shape) < 0.5), 0, 255
    )
    for image in (frame, noisy.astype(np.uint8)):
        dist = np.linalg.norm(image[:, :, None, :].astype(float) - _PALETTE[None, None], axis=-1)
        expected = np.where(dist.min(-1) < _COLOUR_TOLERANCE, dist.argmin(-1), -1)
        np.testing.assert_array_equal(_palette_labels(image.astype(np.uint8)), expected)


@pytest.mark.parametrize("resolution", sorted(TOLERANCE))
def test_perceive_recovers_the_truth_on_held_back_seeds(resolution: int) -> None:
    env = make("pusht", resolution=resolution)
    agent_tol, block_tol, angle_tol = TOLERANCE[resolution]
    for seed in range(1000, 1030):
        state = _rollout(env, seed, seed % 7)
        truth, seen = env.observe(state), env.perceive(env.render(state))
        assert seen["present"].all()
        err = np.abs(truth["positions"] - seen["positions"]).max(axis=1)
        assert err[0] <= agent_tol and err[1] <= block_tol, (seed, err)
        assert math.degrees(_angle_error(truth["angle"][0], seen["angle"][0])) <= angle_tol
        assert abs(truth["coverage"][0] - seen["coverage"][0]) < 0.15


def test_perceive_degrades_gracefully() -> None:
    from scipy.ndimage import uniform_filter

    env = make("pusht", resolution=64)
    state = env.reset(2)
    frame = env.render(state)
    blurred = uniform_filter(frame.astype(float), size=(3, 3, 1)).astype(np.uint8)
    seen = env.perceive(blurred)
    assert seen["present"].all()
    assert np.abs(seen["positions"] - env.observe(state)["positions"]).max() < 3.0
    blank = np.full_like(frame, 255)
    nothing = env.perceive(blank)
    assert not nothing["present"].any() and np.isnan(nothing["positions"]).all()
    assert env.goal_distance(nothing) > 0


def _gap(state: PushTState) -> float:
    """World units from the agent's rim to the T, on densely sampled T outlines."""
    outline = np.concatenate(
        [
            np.linspace(p, np.roll(p, -1, axis=0), 400).reshape(-1, 2)
            for p in t_polygons(*state.block, state.angle)
        ]
    )
    return float(np.linalg.norm(outline - state.agent, axis=1).min()) - 15.0


def test_goal_reached_and_distance() -> None:
    env = make("pusht", resolution=96)
    at_goal = PushTState((100.0, 100.0), (0.0, 0.0), GOAL[:2], GOAL[2], (0.0, 0.0), 0.0)
    assert env.goal_reached(at_goal) and env.goal_distance(env.observe(at_goal)) == 0.0
    # from pixels: within the perception tolerance of the goal (corners) plus the approach term
    approach = 0.1 * _gap(at_goal) * 96 / 512
    assert approach < env.goal_distance(env.perceive(env.render(at_goal))) < approach + 0.75
    off = PushTState((100.0, 100.0), (0.0, 0.0), (300.0, 256.0), GOAL[2], (0.0, 0.0), 0.0)
    assert not env.goal_reached(off)
    # a pure shift moves every corner by the shift (44 world units), plus 0.1 times the gap
    # between the agent's rim and the T (measured on densely sampled T outlines)
    expected = (44 + 0.1 * _gap(off)) * 96 / 512
    assert env.goal_distance(env.observe(off)) == pytest.approx(expected, rel=1e-3)
    # from pixels, the same within the perception tolerance
    assert env.goal_distance(env.perceive(env.render(off))) == pytest.approx(expected, abs=1.0)
    with pytest.raises(ConfigError, match="expected 'push-t'"):
        env.goal_reached(off, "reach-goal")


def test_near_starts_stay_near_the_goal() -> None:
    env = make("pusht", resolution=64, max_offset=20.0, max_rotation=10.0)
    for seed in range(20):
        state = env.reset(seed)
        assert np.hypot(state.block[0] - GOAL[0], state.block[1] - GOAL[1]) <= 20.0
        assert math.degrees(_angle_error(state.angle, GOAL[2])) <= 10.0
        assert not np.isnan(env.perceive(env.render(state))["positions"]).any()


def test_actions_vectors_and_text() -> None:
    env = make("pusht", resolution=64)
    state = env.reset(0)
    assert env.action_space.dim == 2 and env.num_actions == 9
    texts = [a.text for a in env.actions(state)]
    assert "move the agent up-left" in texts and texts[-1] == "wait"
    up = env.vector_action(state, (0.1, -0.9))
    assert up.text == "move the agent up" and up.index == NO_INDEX and up.vector == (0.1, -0.9)
    # the discrete "up" and the vector (0, -1) are the same command
    assert env.step(state, 0) == env.step(state, Action(NO_INDEX, "", vector=(0.0, -1.0)))
    moved = env.step(env.step(state, 4), 4)
    assert moved.agent[1] > state.agent[1]  # "down" is +y in the frame
    with pytest.raises(ConfigError, match=r"within low=\[-1.0, -1.0\]"):
        env.vector_action(state, (2.0, 0.0))
    with pytest.raises(ConfigError, match="max_offset"):
        make("pusht", max_offset=-1)


def test_absolute_actions_place_the_pd_target_as_gym_pusht_does() -> None:
    rel = make("pusht", resolution=64, move_scale=25, max_offset=10)
    env = make("pusht", resolution=64, move_scale=25, max_offset=10, action_mode="absolute")
    assert env.config["action_mode"] == "absolute"
    state = env.reset(3)
    # gym-pusht's own env, stepped with the same absolute target, lands where this env does
    gym_env = env._sim
    target = np.array([300.0, 120.0])
    vector = target / 512 * 2 - 1
    action = env.vector_action(state, vector)
    assert action.index == NO_INDEX and action.text == "move the agent to (300, 120)"
    mine = state
    for _ in range(6):
        mine = env.step(mine, action)
    gym_env.reset(seed=0)
    gym_env.agent.position = state.agent
    gym_env.block.angle = state.angle
    gym_env.block.position = state.block
    for _ in range(6):
        gym_env.step(target)
    assert np.allclose(mine.agent, tuple(gym_env.agent.position), atol=1e-6)
    assert np.linalg.norm(np.subtract(mine.agent, target)) < 0.3 * np.linalg.norm(
        np.subtract(state.agent, target)
    )
    # discrete moves keep their meaning and carry the absolute target they give here
    for index in (0, 3, 8):
        listed = env.actions(state)[index]
        expected = np.clip(
            np.add(state.agent, 25 * np.array(rel.actions(state)[index].vector)), 0, 512
        )
        np.testing.assert_allclose((np.array(listed.vector) + 1) / 2 * 512, expected, atol=1e-9)
        assert listed.text == rel.actions(state)[index].text
        assert env.step(state, index) == rel.step(state, index)
    # the scripted pusher commands the same push in either mode
    pushed = 0
    for seed in range(12):
        start = env.reset(seed)
        obs = env.observe(start)
        mine_push, theirs = env.expert_action(obs), rel.expert_action(obs)
        assert (mine_push is None) == (theirs is None)
        if theirs is not None:
            assert env.step(start, mine_push) == rel.step(start, theirs)
            pushed += 1
    assert pushed >= 6
    with pytest.raises(ConfigError, match="action_mode"):
        make("pusht", action_mode="delta")


def test_goal_image_shows_the_goal_reached() -> None:
    from panbench.planning import goal_image

    env = make("pusht", resolution=64, max_offset=10.0)
    for seed in range(5):
        state = env.reset(seed)
        placed = env.goal_state(state)
        assert env.goal_reached(placed) and placed.agent_velocity == (0.0, 0.0)
        image = goal_image(env, state, "push-t", np.random.default_rng(0))
        np.testing.assert_array_equal(image, env.render(placed))
        seen = env.perceive(image)
        assert seen["present"].all()  # the agent stays visible, clear of the T
        assert abs(seen["coverage"][0] - 1.0) < 0.1


def test_expert_pushes_the_t_toward_the_goal_from_the_frame() -> None:
    """The scripted pusher (policy evaluation) reads the frame, walks round the T without
    knocking it (mostly) and pushes it toward the goal pose; where no push helps it gives None
    and, as in policy_eval, a random move follows. The corners end closer to the goal's than
    they started in most episodes, and the goal (coverage 0.9) is reached in half or more."""
    env = make(
        "pusht",
        resolution=64,
        max_offset=10,
        max_rotation=10,
        move_scale=50.0,
        success_threshold=0.9,
    )
    closer = reached = 0
    for seed in range(4):
        state = start = env.reset(9700 + seed)
        rng = np.random.default_rng(seed)
        for _ in range(30):
            if env.goal_reached(state):
                break
            action = env.expert_action(env.perceive(env.render(state)))
            if action is None:  # no push helps from here: a random move, as policy_eval does
                action = env.actions(state)[int(rng.integers(9))]
            state = env.step(state, action)
        before = keypoint_distance(*start.block, start.angle, GOAL)
        closer += keypoint_distance(*state.block, state.angle, GOAL) < before
        reached += env.goal_reached(state)
    assert reached >= 2 and closer >= 3, (reached, closer)
    unseen = env.observe(env.reset(0))
    unseen["present"][1] = False
    assert env.expert_action(unseen) is None
