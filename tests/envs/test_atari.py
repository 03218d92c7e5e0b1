"""Tests of the ``atari-*`` envs: ALE determinism, exact branching, actions, RAM truth, perception."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from panbench.data.episodes import make_episode
from panbench.envs import ENVS, make
from panbench.envs._atari_games import GAMES, action_text
from panbench.envs._atari_perceive import agreement
from panbench.errors import ConfigError

pytest.importorskip("ale_py")
pytest.importorskip("ocatari")

ATARI = sorted(n for n in ENVS.names() if n.startswith("atari-"))


def _rollout(env, seed: int, steps: int) -> list:
    rng = np.random.default_rng(seed)
    state = env.reset(seed)
    states = [state]
    for _ in range(steps):
        state = env.step(state, int(rng.integers(env.num_actions)))
        states.append(state)
    return states


def test_eight_games_are_registered() -> None:
    assert len(ATARI) >= 8
    assert {f"atari-{g}" for g in GAMES} == set(ATARI)


@pytest.mark.parametrize("name", ["atari-pong", "atari-mspacman"])
def test_same_seed_same_frames_and_two_envs_agree(name: str) -> None:
    a = _rollout(make(name), 5, 20)
    b = _rollout(make(name), 5, 20)
    for sa, sb in zip(a, b, strict=True):
        np.testing.assert_array_equal(sa.screen, sb.screen)
        assert sa.reward == sb.reward and sa.terminal == sb.terminal


def test_branching_from_a_state_is_exact() -> None:
    env = make("atari-breakout")
    states = _rollout(env, 3, 12)
    # step elsewhere (the emulator now holds another state), then come back to states[6]
    other = env.step(states[2], 1)
    env.step(other, 2)
    again = env.step(states[6], 0)
    replay = make("atari-breakout")
    fresh = _rollout(replay, 3, 6)[-1]
    direct = replay.step(fresh, 0)
    np.testing.assert_array_equal(again.screen, direct.screen)
    np.testing.assert_array_equal(again.ram, direct.ram)
    # the original states are untouched values
    np.testing.assert_array_equal(
        states[7].screen, _rollout(make("atari-breakout"), 3, 12)[7].screen
    )


def test_seeds_give_diverse_starts() -> None:
    env = make("atari-pong")
    starts = {env.reset(seed).ram.tobytes() for seed in range(8)}
    assert len(starts) >= 5


def test_actions_carry_index_meaning_and_text() -> None:
    env = make("atari-pong")
    state = env.reset(0)
    actions = env.actions(state)
    assert [a.index for a in actions] == list(range(env.num_actions))
    meanings = [env.meaning(a.index) for a in actions]
    assert meanings[0] == "NOOP" and actions[0].kind == "wait" and actions[0].text == "wait"
    texts = {env.meaning(a.index): a.text for a in actions}
    assert texts["RIGHT"] == "move the green paddle up"
    assert texts["LEFTFIRE"] == "move the green paddle down and serve"
    assert len(set(texts.values())) == len(texts)
    assert env.step(state, "move the green paddle up").t == 1


def test_action_text_names_every_direction() -> None:
    game = GAMES["boxing"]
    assert action_text(game, "UPLEFTFIRE") == "move the white boxer up and left and punch"
    assert action_text(game, "FIRE") == "punch"
    assert action_text(game, "NOOP") == "wait"


def test_the_player_moves_as_commanded_in_pong() -> None:
    env = make("atari-pong", resolution=84)
    state = _rollout(env, 1, 20)[-1]
    up = env.step(env.step(state, "move the green paddle up"), "move the green paddle up")
    down = env.step(env.step(state, "move the green paddle down"), "move the green paddle down")
    y_up = env.observe(up)["positions"][0, 1]
    y_down = env.observe(down)["positions"][0, 1]
    assert y_up < y_down  # y grows downwards


def test_observe_carries_ram_truth_reward_and_terminal() -> None:
    env = make("atari-pong")
    obs = env.observe(env.reset(0))
    k = env.num_entities
    assert obs["positions"].shape == (k, 2) and obs["present"].shape == (k,)
    assert obs["ram_positions"].shape == (k, 2) and obs["ram_present"].dtype == bool
    assert obs["reward"].shape == () and obs["terminal"].dtype == bool
    # perception of the render is the pixel truth, by construction
    seen = env.perceive(env.render(env.reset(0)))
    np.testing.assert_array_equal(seen["present"], obs["present"])


def test_a_point_scored_in_pong_is_a_reward() -> None:
    env = make("atari-pong", warmup=0)
    state = env.reset(0)
    rewards = []
    for _ in range(400):  # NOOP: the computer wins points
        state = env.step(state, 0)
        rewards.append(state.reward)
        if state.reward:
            break
    assert min(rewards) == -1.0


@pytest.mark.parametrize("name", ATARI)
def test_perception_agrees_with_ram_on_native_frames(name: str) -> None:
    """>= 95% of OCAtari's RAM objects found in pixels (held-back seeds; 2,000 frames: slow)."""
    env = make(name)
    matched = total = 0
    for seed in (9100, 9101):
        for state in _rollout(env, seed, 40)[1:]:
            m, t = agreement(env.game, env.perceive_native(state.screen), env.ram_truth(state))
            matched, total = matched + m, total + t
    assert total > 0
    assert matched / total >= 0.95, f"{name}: {matched}/{total}"


#: Ms. Pac-Man: OCAtari keeps reporting the four ghosts while the screen hides them (after a life
#: is lost), so ~7% of its RAM ghosts have nothing to be found in pixels (docs/envs.md)
RAM_FLOOR = {"atari-mspacman": 0.9}


@pytest.mark.slow
@pytest.mark.parametrize("name", ATARI)
def test_perception_agrees_with_ram_over_2000_frames(name: str) -> None:
    env = make(name)
    matched = total = frames = 0
    seed = 9200
    while frames < 2000:
        for state in _rollout(env, seed, 100)[1:]:
            m, t = agreement(env.game, env.perceive_native(state.screen), env.ram_truth(state))
            matched, total, frames = matched + m, total + t, frames + 1
        seed += 1
    assert matched / total >= RAM_FLOOR.get(name, 0.95), f"{name}: {matched}/{total}"


@pytest.mark.parametrize("name", ["atari-pong", "atari-mspacman", "atari-asterix"])
def test_perception_survives_the_84px_resize(name: str) -> None:
    """Blends of object and background at the edges stay the object's (docs/envs.md table)."""
    env = make(name, resolution=84)
    matched = total = 0
    for state in _rollout(env, 9150, 40)[1:]:
        m, t = agreement(env.game, env.perceive_native(env.render(state)), env.ram_truth(state))
        matched, total = matched + m, total + t
    assert matched / total >= 0.9, f"{name}: {matched}/{total}"


def test_perception_reads_frames_of_any_size() -> None:
    env = make("atari-boxing", resolution=64)
    state = _rollout(env, 2, 10)[-1]
    truth = env.observe(state)
    import cv2

    big = cv2.resize(state.screen, (168, 168), interpolation=cv2.INTER_AREA)
    seen = env.perceive(big)  # positions come back in the env's 64 px frame
    both = truth["present"] & seen["present"]
    assert both.sum() == 2
    assert np.abs(seen["positions"][both] - truth["positions"][both]).max() < 1.0


def test_degraded_frames_never_raise() -> None:
    env = make("atari-freeway")
    frame = env.render(env.reset(0))
    rng = np.random.default_rng(0)
    for corrupt in (rng.uniform(0, 256, frame.shape), np.zeros(frame.shape)):
        obs = env.perceive(corrupt.astype(np.uint8))
        assert np.isnan(obs["positions"][~obs["present"]]).all()


def test_episodes_are_byte_identical_across_generations() -> None:
    a = make_episode(make("atari-seaquest"), "t", 3, 0, 2, 6, "agent")
    b = make_episode(make("atari-seaquest"), "t", 3, 0, 2, 6, "agent")
    assert a.hash == b.hash
    np.testing.assert_array_equal(a.frames, b.frames)


def test_env_pickles_and_keeps_its_config() -> None:
    env = make("atari-asterix", resolution=84, frameskip=3)
    copy = pickle.loads(pickle.dumps(env))
    assert copy.config == env.config
    np.testing.assert_array_equal(copy.reset(4).screen, env.reset(4).screen)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frameskip": 0}, "frameskip"),
        ({"warmup": -1}, "warmup"),
        ({"resolution": 30}, "resolution"),
    ],
)
def test_bad_options_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make("atari-pong", **kwargs)


def test_a_bad_frame_is_refused() -> None:
    with pytest.raises(ConfigError, match="uint8 frame"):
        make("atari-pong").perceive(np.zeros((8, 8), dtype=np.uint8))


def test_data_generate_writes_atari_episodes_with_truth(tmp_path) -> None:
    from panbench.cli import main
    from panbench.data.dataset import EpisodeDataset

    out = tmp_path / "eps"
    args = ["data", "generate", "--env", "atari-breakout", "--episodes", "2", "--length", "5"]
    assert main([*args, "--out", str(out)]) in (0, None)
    episode = EpisodeDataset(out)[0]
    assert tuple(episode["frames"].shape) == (5, 64, 64, 3)
    assert {"reward", "terminal", "ram_positions", "positions"} <= set(episode["states"])
    assert all(a["text"] for a in episode["actions"])
