"""WR-Arena transition smoothness: the formula against a numpy reference, rankings, the class."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch

from panbench.errors import ConfigError, ContractError
from panbench.metrics import get_metric
from panbench.metrics.flow import FarnebackFlow
from panbench.metrics.smoothness import (
    Smoothness,
    smoothness,
    smoothness_details,
    smoothness_from_flow,
    smoothness_rounds,
)

pytest.importorskip("cv2")


def reference_smoothness(flow: np.ndarray, lam: float = 1.0) -> float:
    """Independent reading of WR-Arena's compute_video_smoothness, pair by pair in plain Python
    lists: per-pixel speed, |speed change| with zeros for the first pair, medians of the pooled
    values, then v * exp(-lam * a)."""
    speeds: list[float] = []
    changes: list[float] = []
    previous = None
    for pair in flow.astype(np.float32):
        speed = np.hypot(pair[..., 0], pair[..., 1]).astype(np.float32).ravel()
        speeds.extend(speed.tolist())
        if previous is None:
            changes.extend([0.0] * speed.size)
        else:
            changes.extend(np.abs(speed - previous).tolist())
        previous = speed
    return statistics.median(speeds) * math.exp(-lam * statistics.median(changes))


def uniform_flow(speeds: list[tuple[float, float]], h: int = 4, w: int = 5) -> np.ndarray:
    """float32 [N, h, w, 2] with flow (dx, dy) = speeds[n] everywhere in pair n."""
    out = np.zeros((len(speeds), h, w, 2), dtype=np.float32)
    for n, (dx, dy) in enumerate(speeds):
        out[n, ..., 0], out[n, ..., 1] = dx, dy
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0, 3.0])
def test_formula_matches_reference_on_random_flow(seed: int, lam: float) -> None:
    rng = np.random.default_rng(seed)
    flow = rng.normal(0.0, 2.0, size=(int(rng.integers(1, 6)), 7, 9, 2)).astype(np.float32)
    got = smoothness_from_flow(flow, lam=lam)
    assert got == pytest.approx(reference_smoothness(flow, lam), rel=1e-6, abs=1e-9)


def test_constant_motion_has_no_penalty() -> None:
    # 3-4-5 triangle: speed 5 px/frame in every pair, so |a| = 0 and the factor is exp(0) = 1
    result = smoothness_details_from_flow(uniform_flow([(3.0, 4.0)] * 4))
    assert result == (5.0, 5.0, 0.0)


def smoothness_details_from_flow(flow: np.ndarray) -> tuple[float, float, float]:
    from panbench.metrics.smoothness import _details_from_flow

    r = _details_from_flow(flow, 1.0, "")
    return r.score, r.vmag_median, r.amag_median


def test_accelerating_motion_by_hand() -> None:
    # speeds 1, 2, 3, 4 (equal pixel counts): median |v| = 2.5; |a| = 0 (first pair), 1, 1, 1:
    # median 1; score 2.5 / e
    flow = uniform_flow([(1.0, 0.0), (0.0, 2.0), (3.0, 0.0), (0.0, -4.0)])
    assert smoothness_from_flow(flow) == pytest.approx(2.5 * math.exp(-1.0), rel=1e-7)
    assert smoothness_from_flow(flow, lam=2.0) == pytest.approx(2.5 * math.exp(-2.0), rel=1e-7)


def test_first_pair_zeros_take_part_in_the_median() -> None:
    # speeds 1 then 3: |a| pools P zeros (first pair) and P twos, so its median is 1, not 2
    flow = uniform_flow([(1.0, 0.0), (3.0, 0.0)])
    assert smoothness_details_from_flow(flow) == pytest.approx((2.0 * math.exp(-1.0), 2.0, 1.0))


def test_reversal_at_equal_speed_costs_nothing() -> None:
    # a is the change of the flow *magnitude* (upstream), not of the flow vector
    flow = uniform_flow([(2.0, 0.0), (-2.0, 0.0), (2.0, 0.0)])
    assert smoothness_from_flow(flow) == 2.0


def test_zero_motion_scores_zero() -> None:
    assert smoothness_from_flow(np.zeros((3, 8, 8, 2), dtype=np.float32)) == 0.0


def test_single_flow_field_and_torch_input() -> None:
    flow = uniform_flow([(0.0, 1.5)])
    assert smoothness_from_flow(flow) == 1.5
    assert smoothness_from_flow(torch.from_numpy(flow).double()) == 1.5


@pytest.mark.parametrize(
    ("flow", "match"),
    [
        (np.zeros((3, 8, 8), dtype=np.float32), r"\[N, H, W, 2\].*\(3, 8, 8\)"),
        (np.zeros((0, 8, 8, 2), dtype=np.float32), "at least one flow field"),
        (np.zeros((2, 8, 8, 2), dtype=np.int32), "floating point.*int32"),
        (np.full((2, 4, 4, 2), np.nan, dtype=np.float32), "NaN"),
        ([[0.0, 0.0]], "numpy array.*list"),
    ],
)
def test_bad_flow_is_rejected(flow: object, match: str) -> None:
    with pytest.raises(ContractError, match=match):
        smoothness_from_flow(flow)


@pytest.mark.parametrize("lam", [-1.0, math.inf, True, "1"])
def test_bad_lambda_is_rejected(lam: object) -> None:
    with pytest.raises(ConfigError, match="lam"):
        smoothness_from_flow(uniform_flow([(1.0, 0.0)]), lam=lam)  # type: ignore[arg-type]


def texture(size: int = 400, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture, uint8 [size, size, 3] spanning the full range."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (size, size, 3)).astype(np.uint8)
    blurred = cv2.GaussianBlur(noise, (0, 0), 2.0).astype(np.float64)
    blurred = (blurred - blurred.min()) / (blurred.max() - blurred.min())
    return (blurred * 255).round().astype(np.uint8)


def translating_video(offsets: list[tuple[int, int]], size: int = 96) -> np.ndarray:
    """Frames whose content sits at the given cumulative (x, y) offsets: content moves by the
    difference between consecutive offsets."""
    big = texture(size + 80)
    frames = [big[40 - y : 40 - y + size, 40 - x : 40 - x + size] for x, y in offsets]
    return np.stack(frames)


@pytest.mark.parametrize(("dx", "dy"), [(3, -2), (0, 5), (7, 4)])
def test_farneback_recovers_a_known_translation(dx: int, dy: int) -> None:
    video = translating_video([(0, 0), (dx, dy)], size=128)
    flow = FarnebackFlow()(video[0], video[1])
    assert flow.dtype == np.float32 and flow.shape == (128, 128, 2)
    inner = flow[24:-24, 24:-24]  # away from the borders, where content enters and leaves
    assert np.abs(inner[..., 0] - dx).mean() < 0.05
    assert np.abs(inner[..., 1] - dy).mean() < 0.05


def test_smooth_motion_ranks_above_jitter_and_static() -> None:
    steady = translating_video([(3 * t, 0) for t in range(6)])
    jitter_x = np.cumsum([0, 6, 0, 6, 0, 6])  # stop-go: 6 and 0 px/frame alternately
    jittery = translating_video([(int(x), 0) for x in jitter_x])
    static = translating_video([(0, 0)] * 6)
    s_steady, s_jitter, s_static = (smoothness(v) for v in (steady, jittery, static))
    assert s_steady == pytest.approx(3.0, abs=0.05)  # a smooth video scores its speed
    assert s_static == pytest.approx(0.0, abs=1e-3)
    assert s_steady > s_jitter and s_steady > s_static
    # the stop-go video moves further (18 px against 15) but pays exp(-6) for its jerks
    assert s_jitter == pytest.approx(6.0 * math.exp(-6.0), rel=0.05)


def test_details_name_the_estimator_and_count_pairs() -> None:
    video = translating_video([(t, 0) for t in range(4)], size=48)
    result = smoothness_details(video, "farneback")
    assert result.estimator == "farneback" and result.pairs == 3 and result.lam == 1.0
    assert result.to_dict()["score"] == result.score


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        (np.zeros((1, 16, 16, 3), dtype=np.uint8), "at least 2 frames.*but got 1"),
        (np.zeros((3, 16, 16, 3), dtype=np.float32), "uint8.*float32"),
        (np.zeros((3, 3, 16, 16), dtype=np.uint8), r"\[T, H, W, 3\].*\(3, 3, 16, 16\)"),
        (np.zeros((16, 16, 3), dtype=np.uint8), r"\[T, H, W, 3\]"),
        ([np.zeros((16, 16, 3), dtype=np.uint8)] * 3, "numpy array.*list"),
    ],
)
def test_bad_frames_are_rejected(frames: object, match: str) -> None:
    with pytest.raises(ContractError, match=match):
        smoothness(frames)


class SpeedFromBrightness:
    """A stand-in estimator: uniform horizontal flow equal to the next frame's mean level / 10,
    so a video's expected flow is known without estimating anything."""

    name = "brightness"

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        flow = np.zeros((*prev.shape[:2], 2), dtype=np.float32)
        flow[..., 0] = float(nxt.mean()) / 10.0
        return flow


def levels_video(levels: list[int], size: int = 4) -> np.ndarray:
    return np.stack([np.full((size, size, 3), v, dtype=np.uint8) for v in levels])


def test_metric_class_matches_per_round_scores_across_batch_splits() -> None:
    rng = np.random.default_rng(3)
    videos = rng.integers(0, 60, size=(5, 3, 4, 1, 1, 1)).astype(np.uint8)
    videos = np.broadcast_to(videos, (5, 3, 4, 4, 4, 3)).copy()
    est = SpeedFromBrightness()
    expected = np.array(
        [
            [
                smoothness_from_flow(uniform_flow([(v / 10, 0) for v in rnd[1:, 0, 0, 0]]))
                for rnd in ep
            ]
            for ep in videos.astype(np.float64)
        ]
    )
    np.testing.assert_allclose(smoothness_rounds(videos, est), expected, rtol=1e-6)
    whole, split = Smoothness(est), Smoothness(est)
    whole.update(videos)
    split.update(videos[:2])
    split.update(videos[2:])
    # WR-Arena: mean over rounds per instance, then mean over instances
    upstream_summary = expected.mean(axis=1).mean()
    assert float(whole.compute()) == pytest.approx(upstream_summary, rel=1e-9)
    assert float(split.compute()) == pytest.approx(upstream_summary, rel=1e-9)
    np.testing.assert_allclose(whole.curve().mean, expected.mean(axis=0), rtol=1e-9)
    assert whole.curve().n.tolist() == [5, 5, 5]


def test_ragged_rounds_are_padded_with_nan() -> None:
    est = SpeedFromBrightness()
    episodes = [[levels_video([0, 10, 20])], [levels_video([0, 10]), levels_video([0, 30, 30])]]
    got = smoothness_rounds(episodes, est)
    assert got.shape == (2, 2) and math.isnan(got[0, 1])
    np.testing.assert_allclose(got[1], [1.0, 3.0])
    assert got[0, 0] == pytest.approx(1.5 * math.exp(-0.5))  # speeds 1, 2: a pools 0s and 1s
    with pytest.raises(ContractError, match=r"\[B, R, T, H, W, 3\]"):
        smoothness_rounds(np.zeros((2, 3, 16, 16, 3), dtype=np.uint8), est)


def test_catalogue_entry() -> None:
    info = get_metric("smoothness")
    assert info.higher_is_better and info.load_class() is Smoothness
    assert info.load_function() is smoothness_rounds
