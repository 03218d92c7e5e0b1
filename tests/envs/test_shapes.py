"""Tests of the ``shapes`` env: dynamics, interventions, rendering and exact perception."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from panbench.envs import make
from panbench.envs._render import min_palette_distance
from panbench.envs.base import Action
from panbench.envs.shapes import (
    BACKGROUND_NAMES,
    BACKGROUND_PALETTE,
    COLOR_NAMES,
    OBJECT_PALETTE,
    SHAPES,
    ShapesEnv,
    ShapesState,
    sprite_masks,
    sprite_size,
)
from panbench.errors import ConfigError, UnknownNameError
from tests.envs import (
    assert_observations_match,
    assert_perception_sweep,
    assert_rejects_wrong_frames,
    degraded_scores,
)

UP, DOWN, LEFT, RIGHT = range(4)


def scene(
    env: ShapesEnv,
    objects: dict[int, tuple[int, int, int]],
    background: int = 0,
) -> ShapesState:
    """A hand-made state: ``objects`` maps slot -> (x, y, colour index)."""
    centers = np.zeros((5, 2), dtype=np.int64)
    present = np.zeros(5, dtype=bool)
    colors = np.full(5, -1, dtype=np.int64)
    for slot, (x, y, color) in objects.items():
        centers[slot], present[slot], colors[slot] = (x, y), True, color
    return ShapesState(centers, present, colors, background)


def make_shapes(**kwargs: Any) -> ShapesEnv:
    made = make("shapes", **kwargs)
    assert isinstance(made, ShapesEnv)
    return made


@pytest.fixture
def env() -> ShapesEnv:
    return make_shapes(resolution=64, interventions=True)


# ----------------------------------------------------------------------------------- config
@pytest.mark.parametrize("resolution", [0, 30, 33, 36, 1024, "64", 64.0, True])
def test_bad_resolution_is_a_config_error(resolution: object) -> None:
    with pytest.raises(ConfigError, match="resolution"):
        make("shapes", resolution=resolution)  # type: ignore[arg-type]


def test_unknown_option_is_a_config_error_with_suggestion() -> None:
    with pytest.raises(ConfigError, match="Did you mean: num_objects"):
        make("shapes", num_object=3)


@pytest.mark.parametrize("num_objects", [0, 6, [3, 2], [1, 9], "3", 2.5, [1, 2, 3], True])
def test_bad_num_objects_is_a_config_error(num_objects: object) -> None:
    with pytest.raises(ConfigError, match="num_objects"):
        make("shapes", num_objects=num_objects)


def test_bad_interventions_flag_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="interventions"):
        make("shapes", interventions="yes")


def test_config_round_trips_through_make() -> None:
    env = make_shapes(resolution=32, num_objects=[3, 4], interventions=True)
    again = make("shapes", **env.config)
    assert (
        again.config
        == env.config
        == {
            "resolution": 32,
            "num_objects": [3, 4],
            "interventions": True,
        }
    )
    assert again.fingerprint() == env.fingerprint()
    assert make("shapes").fingerprint() != env.fingerprint()
    fixed = make("shapes", num_objects=3)
    assert fixed.config["num_objects"] == [3, 3]
    assert make("shapes", **fixed.config).fingerprint() == fixed.fingerprint()


# ----------------------------------------------------------------------------------- reset
def test_reset_is_deterministic_per_seed(env: ShapesEnv) -> None:
    for seed in range(20):
        a, b = env.reset(seed), env.reset(seed)
        np.testing.assert_array_equal(env.render(a), env.render(b))
        for key, value in env.observe(a).items():
            np.testing.assert_array_equal(value, env.observe(b)[key])
    frames = {env.render(env.reset(seed)).tobytes() for seed in range(20)}
    assert len(frames) == 20


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_reset_scenes_are_valid(resolution: int) -> None:
    env = make_shapes(resolution=resolution)
    counts = set()
    for seed in range(100):
        state = env.reset(seed)
        k = np.flatnonzero(state.present)
        counts.add(len(k))
        colors = state.colors[k]
        assert len(set(colors.tolist())) == len(k), "colours are distinct"
        assert (state.colors[~state.present] == -1).all()
        half = (env.sprite_size - 1) // 2
        assert (state.centers[k] >= half).all()
        assert (state.centers[k] <= resolution - 1 - half).all()
        for a in k:  # boxes never overlap
            for b in k[k > a]:
                gap = np.abs(state.centers[a] - state.centers[b])
                assert (gap >= env.sprite_size).any()
    assert counts == {2, 3, 4, 5}


def test_num_objects_option_fixes_the_count() -> None:
    for n in (1, 3, 5):
        env = make_shapes(num_objects=n)
        assert all(env.reset(seed).present.sum() == n for seed in range(20))
    env = make_shapes(num_objects=[2, 3])
    assert {int(env.reset(seed).present.sum()) for seed in range(50)} == {2, 3}


def test_states_are_immutable_values(env: ShapesEnv) -> None:
    state = env.reset(0)
    for array in (state.centers, state.present, state.colors):
        with pytest.raises(ValueError):
            array[0] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.background = 1  # type: ignore[misc]
    before = env.observe(state)
    for action in env.actions(state):
        env.step(state, action)
    for key, value in env.observe(state).items():
        np.testing.assert_array_equal(value, before[key])


# ----------------------------------------------------------------------------------- actions
def test_agent_action_layout_and_texts() -> None:
    env = make_shapes()
    assert env.num_actions == 20 and env.num_entities == 5
    state = scene(env, {0: (20, 20, 0), 2: (40, 40, 2)})
    actions = env.actions(state)
    assert [a.index for a in actions] == [0, 1, 2, 3, 8, 9, 10, 11]
    assert [a.text for a in actions[:4]] == [
        "move the red circle up",
        "move the red circle down",
        "move the red circle left",
        "move the red circle right",
    ]
    assert actions[4].text == "move the blue triangle up"
    assert all(a.kind == "agent" for a in actions)


@pytest.mark.parametrize("seed", range(30))
def test_action_texts_are_unique_lower_case_and_indices_valid(seed: int, env: ShapesEnv) -> None:
    rng = np.random.default_rng(seed)
    state = env.reset(seed)
    for _ in range(5):
        actions = env.actions(state)
        texts = [a.text for a in actions]
        assert len(set(texts)) == len(texts)
        assert all(t == t.lower() and t == " ".join(t.split()) for t in texts)
        indices = [a.index for a in actions]
        assert len(set(indices)) == len(indices)
        assert all(0 <= i < env.num_actions for i in indices)
        for a in actions:  # every representation resolves to the same action
            assert env.resolve_action(state, a.text) == a
            assert env.resolve_action(state, a.index) == a
            assert a.kind == ("agent" if a.index < 20 else "intervention")
        state = env.step(state, env.random_action(state, rng))


@pytest.mark.parametrize(
    ("direction", "delta"), [(UP, (0, -1)), (DOWN, (0, 1)), (LEFT, (-1, 0)), (RIGHT, (1, 0))]
)
def test_move_changes_exactly_that_position_by_the_step(
    env: ShapesEnv, direction: int, delta: tuple[int, int]
) -> None:
    state = scene(env, {1: (32, 32, 1), 3: (10, 10, 4), 4: (53, 53, 5)}, background=2)
    after = env.step(state, 1 * 4 + direction)
    expected = state.centers.copy()
    expected[1] += env.step_size * np.array(delta)
    np.testing.assert_array_equal(after.centers, expected)
    np.testing.assert_array_equal(after.present, state.present)
    np.testing.assert_array_equal(after.colors, state.colors)
    assert after.background == state.background
    # The same move by text and by Action object.
    text = f"move the green square {('up', 'down', 'left', 'right')[direction]}"
    np.testing.assert_array_equal(env.step(state, text).centers, expected)
    np.testing.assert_array_equal(env.step(state, Action(4 + direction, text)).centers, expected)


def test_move_into_a_wall_is_a_no_op(env: ShapesEnv) -> None:
    half = (env.sprite_size - 1) // 2
    state = scene(env, {0: (half + 1, half, 0), 1: (63 - half, 63 - half - 3, 1)})
    for action in (0 * 4 + UP, 0 * 4 + LEFT, 1 * 4 + RIGHT, 1 * 4 + DOWN):
        after = env.step(state, action)
        np.testing.assert_array_equal(after.centers, state.centers)
    # Away from the wall it moves again.
    assert env.step(state, 0 * 4 + DOWN).centers[0, 1] == half + env.step_size


def test_move_into_another_object_is_a_no_op_but_touching_is_allowed(env: ShapesEnv) -> None:
    s, step = env.sprite_size, env.step_size
    # The square sits exactly one step plus a sprite to the right: moving right makes them touch.
    state = scene(env, {0: (20, 30, 0), 1: (20 + s + step, 30, 1)})
    touching = env.step(state, 0 * 4 + RIGHT)
    assert touching.centers[0, 0] == 20 + step
    assert touching.centers[1, 0] - touching.centers[0, 0] == s
    # Now any further move into the square would overlap: a no-op, for either object.
    for action in (0 * 4 + RIGHT, 1 * 4 + LEFT):
        np.testing.assert_array_equal(env.step(touching, action).centers, touching.centers)
    # Sliding past diagonally-offset neighbours is fine once their boxes no longer overlap.
    assert env.step(touching, 0 * 4 + UP).centers[0, 1] == 30 - step


def test_unknown_actions_raise_clear_errors(env: ShapesEnv) -> None:
    state = env.reset(0)
    with pytest.raises(UnknownNameError, match="Unknown action 'fly away'"):
        env.step(state, "fly away")
    with pytest.raises(UnknownNameError, match=r"in \[0, 63\)"):
        env.step(state, 63)
    with pytest.raises(UnknownNameError, match=r"in \[0, 63\)"):
        env.step(state, -1)
    with pytest.raises(UnknownNameError, match="Expected an Action"):
        env.step(state, 2.0)  # type: ignore[arg-type]
    with pytest.raises(UnknownNameError, match=r"in \[0, 20\)"):
        make("shapes").step(state, 20)  # interventions are off: their indices do not exist
    first = env.actions(state)[0].text
    with pytest.raises(UnknownNameError, match="Did you mean"):
        env.step(state, first.replace("move", "mvoe"))


def test_actions_of_absent_objects_are_no_op_waits(env: ShapesEnv) -> None:
    state = scene(env, {0: (20, 20, 0), 1: (40, 40, 1)})
    for index in (2 * 4 + UP, 4 * 4 + RIGHT, 25 + 3, 30 + 6 * 2 + 4):
        action = env.resolve_action(state, index)
        assert action.kind == "wait" and action.text == "wait"
        after = env.step(state, index)
        for key, value in env.observe(after).items():
            np.testing.assert_array_equal(value, env.observe(state)[key])


def test_text_is_case_and_space_insensitive(env: ShapesEnv) -> None:
    state = scene(env, {0: (20, 20, 0), 1: (40, 40, 1)})
    after = env.step(state, "  Move the RED circle   down ")
    assert after.centers[0, 1] == 20 + env.step_size


# ----------------------------------------------------------------------------------- interventions
def test_intervention_layout_and_texts(env: ShapesEnv) -> None:
    state = scene(env, {0: (20, 20, 0), 2: (44, 44, 2)}, background=0)
    by_text = {a.text: a for a in env.actions(state)}
    assert by_text["add a green square"].index == 20 + 1
    assert by_text["add a green cross"].index == 20 + 4
    assert by_text["remove the red circle"].index == 25 + 0
    assert by_text["make the blue triangle yellow"].index == 30 + 6 * 2 + 3
    assert by_text["change the background to gray"].index == 60 + 2
    assert "change the background to black" not in by_text  # it already is
    assert "make the red circle blue" not in by_text  # blue is taken
    assert all(by_text[t].kind == "intervention" for t in by_text if not t.startswith("move"))
    assert env.num_actions == 63


def test_add_puts_the_missing_shape_in_a_free_spot_with_an_unused_colour(env: ShapesEnv) -> None:
    state = scene(env, {0: (32, 32, 0), 2: (10, 10, 1)}, background=1)
    after = env.step(state, "add a blue diamond")
    assert after.present.tolist() == [True, False, True, True, False]
    assert after.colors[3] == COLOR_NAMES.index("blue")
    # The free box centre nearest the frame centre (first in raster order among ties), found
    # here by brute force: the centre itself is taken by the circle.
    s, half, mid = env.sprite_size, (env.sprite_size - 1) // 2, (64 - 1) / 2
    best = None
    for y in range(half, 64 - half):
        for x in range(half, 64 - half):
            free = all((np.abs(state.centers[k] - (x, y)) >= s).any() for k in (0, 2))
            d = (x - mid) ** 2 + (y - mid) ** 2
            if free and (best is None or d < best[0]):
                best = (d, x, y)
    assert best is not None and tuple(after.centers[3]) == best[1:]
    np.testing.assert_array_equal(after.centers[[0, 2]], state.centers[[0, 2]])
    np.testing.assert_array_equal(after.colors[[0, 2]], state.colors[[0, 2]])
    assert after.background == state.background
    assert_observations_match(env.observe(after), env.perceive(env.render(after)))
    # Deterministic: the same add from the same state lands in the same spot.
    np.testing.assert_array_equal(env.step(state, 23).centers, after.centers)


def test_remove_clears_exactly_that_slot_and_keeps_one_object(env: ShapesEnv) -> None:
    state = scene(env, {0: (20, 20, 0), 4: (44, 44, 5)})
    after = env.step(state, "remove the cyan cross")
    assert after.present.tolist() == [True, False, False, False, False]
    assert np.isnan(env.observe(after)["positions"][4]).all()
    assert env.observe(after)["colors"][4] == -1
    np.testing.assert_array_equal(after.centers[0], state.centers[0])
    assert not any(a.text.startswith("remove") for a in env.actions(after))
    assert env.resolve_action(after, 25).kind == "wait"


def test_recolour_changes_only_the_colour_and_keeps_identity(env: ShapesEnv) -> None:
    state = scene(env, {0: (20, 20, 0), 1: (44, 44, 1)}, background=2)
    after = env.step(state, "make the red circle blue")
    assert after.colors.tolist() == [2, 1, -1, -1, -1]
    np.testing.assert_array_equal(after.centers, state.centers)
    assert after.background == state.background
    # Slot 0 is still the circle, and is now named by its new colour.
    assert "move the blue circle up" in [a.text for a in env.actions(after)]
    assert_observations_match(env.observe(after), env.perceive(env.render(after)))


def test_background_change_changes_only_the_background(env: ShapesEnv) -> None:
    state = scene(env, {0: (20, 20, 0), 1: (44, 44, 1)}, background=0)
    for b, name in enumerate(BACKGROUND_NAMES[1:], start=1):
        after = env.step(state, f"change the background to {name}")
        assert after.background == b
        np.testing.assert_array_equal(after.centers, state.centers)
        np.testing.assert_array_equal(after.colors, state.colors)
        frame = env.render(after)
        assert (frame[0, 0] == BACKGROUND_PALETTE[b]).all()
        assert env.perceive(frame)["background"] == b


def test_interventions_fill_and_empty_the_scene(env: ShapesEnv) -> None:
    state = scene(env, {0: (32, 32, 0)})
    for k in range(1, 5):
        state = env.step(state, 20 + k)
        assert_observations_match(env.observe(state), env.perceive(env.render(state)))
    assert state.present.all() and len(set(state.colors.tolist())) == 5
    assert not any(a.index in range(20, 25) for a in env.actions(state))
    for k in range(4):
        state = env.step(state, 25 + k)
    assert state.present.tolist() == [False, False, False, False, True]


# ----------------------------------------------------------------------------------- pixels
def test_palette_keeps_colours_far_apart() -> None:
    assert len(OBJECT_PALETTE) == len(COLOR_NAMES) > len(SHAPES)
    both = np.concatenate([OBJECT_PALETTE, BACKGROUND_PALETTE])
    assert min_palette_distance(both) >= 120


@pytest.mark.parametrize("resolution", [32, 64, 128, 512])
def test_sprites_touch_their_box_and_stay_distinct(resolution: int) -> None:
    size = sprite_size(resolution)
    masks = sprite_masks(size)
    assert size % 2 == 1 and masks.shape == (5, size, size)
    for m in masks:
        assert m[0].any() and m[-1].any() and m[:, 0].any() and m[:, -1].any()
    flat = masks.reshape(5, -1)
    for a in range(5):
        for b in range(a + 1, 5):
            iou = (flat[a] & flat[b]).sum() / (flat[a] | flat[b]).sum()
            assert iou < 0.85, (SHAPES[a], SHAPES[b], iou)


def test_render_draws_each_object_in_its_colour(env: ShapesEnv) -> None:
    state = scene(env, {1: (20, 20, 3), 4: (44, 44, 5)}, background=1)
    frame = env.render(state)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame[20, 20], OBJECT_PALETTE[3])
    np.testing.assert_array_equal(frame[44, 44], OBJECT_PALETTE[5])
    h = (env.sprite_size - 1) // 2
    square = (frame == OBJECT_PALETTE[3]).all(-1)
    assert square.sum() == env.sprite_size**2
    assert square[20 - h : 20 + h + 1, 20 - h : 20 + h + 1].all()


def test_render_batch_matches_render(env: ShapesEnv) -> None:
    rng = np.random.default_rng(0)
    states = []
    for seed in range(40):
        state = env.reset(seed)
        for _ in range(int(rng.integers(5))):
            state = env.step(state, env.random_action(state, rng))
        states.append(state)
    batch = env.render_batch(states)
    assert batch.shape == (40, 64, 64, 3) and batch.dtype == np.uint8
    for state, frame in zip(states, batch, strict=True):
        np.testing.assert_array_equal(frame, env.render(state))
    assert env.render_batch([]).shape == (0, 64, 64, 3)


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_perceive_recovers_observe_exactly(resolution: int) -> None:
    env = make_shapes(resolution=resolution, interventions=True)
    assert_perception_sweep(env, seeds=200, steps=10)


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_perceive_is_exact_on_touching_objects(resolution: int) -> None:
    env = make_shapes(resolution=resolution)
    s, c = env.sprite_size, resolution // 2
    # All five shapes packed edge to edge: a plus of four around the centre.
    state = scene(
        env,
        {0: (c, c, 0), 1: (c + s, c, 1), 2: (c - s, c, 2), 3: (c, c + s, 3), 4: (c, c - s, 4)},
        background=2,
    )
    assert_observations_match(env.observe(state), env.perceive(env.render(state)))
    diagonal = scene(env, {0: (c, c, 5), 2: (c + s, c + s, 0), 3: (c - s, c + s, 1)})
    assert_observations_match(env.observe(diagonal), env.perceive(env.render(diagonal)))


def test_perceive_rejects_wrong_frames(env: ShapesEnv) -> None:
    assert_rejects_wrong_frames(env)


@pytest.mark.parametrize("resolution", [32, 64])
def test_perceive_degrades_gracefully(resolution: int) -> None:
    correct = degraded_scores(make("shapes", resolution=resolution))
    # Mild corruption keeps perception right on every frame; garbage yields no objects.
    for kind in ("noise", "shift", "salt", "quantised"):
        assert correct[kind] == 30, (kind, correct[kind])
    assert correct["random"] == correct["black"] == correct["one_colour"] == 0
    # A 3x3 blur erodes 13 px sprites by a pixel, which eroded templates absorb; 7 px sprites
    # (resolution 32) often shrink below recognition, so there it only must not crash or invent.
    if resolution >= 64:
        assert correct["blur"] == 30, correct["blur"]


def test_perceive_on_a_random_frame_finds_no_objects(env: ShapesEnv) -> None:
    rng = np.random.default_rng(1)
    for _ in range(10):
        obs = env.perceive(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        assert not obs["present"].any()
