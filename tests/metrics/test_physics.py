"""Physics-IQ mask scores and outcome categories against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from panbench.errors import ContractError
from panbench.metrics import physics
from panbench.metrics.physics import GONE, MOVED, STILL


def _masks(*frames: list[str]) -> np.ndarray:
    """bool [T, H, W] from rows of '.' and '#'."""
    return np.array([[[c == "#" for c in row] for row in f] for f in frames])


# Two 2x4 frames each. Truth moves in the left half, the prediction in the middle.
TRUE = _masks(["##..", "...."], ["#...", "#..."])
PRED = _masks([".##.", "...."], [".#..", ".#.."])


def test_spatiotemporal_iou_is_the_per_frame_iou() -> None:
    # frame 0: inter {(0,1)} = 1, union {(0,0),(0,1),(0,2)} = 3; frame 1: inter 0, union 4.
    np.testing.assert_allclose(physics.spatiotemporal_iou(PRED, TRUE), [1 / 3, 0.0])


def test_spatial_iou_collapses_time_with_or() -> None:
    # true any: (0,0),(0,1),(1,0); pred any: (0,1),(0,2),(1,1); inter 1, union 5.
    assert physics.spatial_iou(PRED, TRUE) == pytest.approx(1 / 5)


def test_weighted_spatial_iou_weighs_pixels_by_their_motion_frequency() -> None:
    # true weights: (0,0)=1, (0,1)=.5, (1,0)=.5; pred: (0,1)=1, (0,2)=.5, (1,1)=.5.
    # sum min = .5 (at (0,1)); sum max = 1 + 1 + .5 + .5 + .5 = 3.5.
    assert physics.weighted_spatial_iou(PRED, TRUE) == pytest.approx(0.5 / 3.5)


def test_empty_masks_are_a_perfect_match_as_in_physics_iq() -> None:
    empty = np.zeros((3, 4, 4), dtype=bool)
    np.testing.assert_array_equal(physics.spatiotemporal_iou(empty, empty), [1.0, 1.0, 1.0])
    assert physics.spatial_iou(empty, empty) == 1.0
    assert physics.weighted_spatial_iou(empty, empty) == 1.0
    assert physics.spatial_iou(empty, np.ones_like(empty)) == 0.0


def test_motion_masks_mark_pixels_an_object_enters_or_leaves() -> None:
    # One object moving one pixel right, a second one at rest.
    obj = np.zeros((3, 2, 1, 5), dtype=bool)
    obj[0, 0, 0, 0:2] = obj[1, 0, 0, 1:3] = obj[2, 0, 0, 1:3] = True
    obj[:, 1, 0, 4] = True
    motion = physics.motion_masks(obj)
    np.testing.assert_array_equal(motion[0, 0], [True, False, True, False, False])
    assert not motion[1].any()


def test_frame_mse_scales_pixels_to_one() -> None:
    a = np.zeros((2, 2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0, 0] = 255  # one of 12 values off by 1.0 in frame 0
    np.testing.assert_allclose(physics.frame_mse(a, b), [1 / 12, 0.0])
    with pytest.raises(ContractError, match="same shape"):
        physics.frame_mse(a, b[:1])


def _obs(xy: list[tuple[float, float] | None]) -> dict[str, np.ndarray]:
    pos = np.array([p if p is not None else (np.nan, np.nan) for p in xy], dtype=float)
    return {"positions": pos, "present": np.array([p is not None for p in xy])}


def test_outcome_categories_and_the_all_or_nothing_match() -> None:
    start = _obs([(10, 10), (20, 20), (30, 30), None])
    truth = _obs([(10, 11), (25, 20), None, None])
    assert physics.outcome_categories(start, truth, move_px=2.0).tolist() == [
        STILL,
        MOVED,
        GONE,
        physics.ABSENT,
    ]
    assert physics.outcome_match(start, truth, truth, 2.0) == 1.0
    frozen = start  # a model that shows the last context frame again
    assert physics.outcome_match(start, frozen, truth, 2.0) == 0.0
    close = _obs([(10, 10), (24, 21), None, None])  # same categories, other positions
    assert physics.outcome_match(start, close, truth, 2.0) == 1.0


def test_mover_tracking_ignores_objects_at_rest() -> None:
    context = _obs([(0, 0), (10, 10)])
    truth = {
        "positions": np.array([[[0, 0], [12, 10]], [[0, 0], [np.nan, np.nan]]], float),
        "present": np.array([[True, True], [True, False]]),
    }
    frozen = {
        "positions": np.array([[[0, 0], [10, 10]], [[0, 0], [10, 10]]], float),
        "present": np.ones((2, 2), bool),
    }
    np.testing.assert_array_equal(physics.mover_tracking(frozen, truth, context, 1.0, 1.0), [0, 0])
    np.testing.assert_array_equal(physics.mover_tracking(truth, truth, context, 1.0, 1.0), [1, 1])
    still = {"positions": np.zeros((2, 2, 2)), "present": np.ones((2, 2), bool)}
    assert np.isnan(physics.mover_tracking(still, still, _obs([(0, 0), (0, 0)]), 1.0, 1.0)).all()
