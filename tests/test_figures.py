"""Publication figures: CI bands checked against scipy, the PSNR cap, identical curves, order,
colours that stay apart for colour-blind readers, vector + print-resolution output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from panbench.figure_data import cap_view, curve_band, load_folder_samples
from panbench.plots import (
    FIXED_COLORS,
    PRINT_DPI,
    load_runs,
    load_samples,
    model_colors,
    plot_results,
    rank_order,
    suite_task_order,
)
from tests.models.runs import cached_run, small_tasks

SHIPPED = Path(__file__).resolve().parents[1] / "leaderboards" / "quick" / "submissions"


def test_curve_band_matches_scipy_bootstrap() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    curves = rng.normal(20.0, 4.0, size=(40, 6))
    curves[3, 2] = np.nan  # an episode without a value at one step
    records = [{"curves": {"psnr": [None if math.isnan(v) else v for v in c]}} for c in curves]
    mean, low, high = curve_band(records, "psnr", n_resamples=4000)
    np.testing.assert_allclose(mean, np.nanmean(curves, axis=0))
    for t in range(6):
        col = curves[:, t][~np.isnan(curves[:, t])]
        ref = scipy_stats.bootstrap(
            (col,), np.mean, n_resamples=4000, method="percentile", random_state=0
        ).confidence_interval
        width = ref.high - ref.low
        assert abs(low[t] - ref.low) < 0.08 * width
        assert abs(high[t] - ref.high) < 0.08 * width


def test_curve_band_without_curves() -> None:
    assert curve_band([{"curves": {}}, {}], "psnr") is None


def test_cap_view_clips_only_when_the_rest_sits_far_below() -> None:
    view = cap_view(
        {"oracle": [100.0] * 3, "a": [30.0, 10.0, 5.0], "b": [20.0, math.nan, 4.0]}, 100
    )
    assert view is not None and view.at_cap == ("oracle",)
    assert 30.0 < view.top < 40.0
    assert cap_view({"oracle": [100.0] * 3, "a": [70.0, 10.0, 5.0]}, 100) is None
    assert cap_view({"a": [30.0, 10.0]}, 100) is None  # nothing at the cap
    assert cap_view({"oracle": [100.0, 99.0], "a": [30.0, 10.0]}, 100) is None  # not always
    assert cap_view({"oracle": [100.0], "a": [3.0]}, None) is None


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(rgb_linear: np.ndarray) -> np.ndarray:
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ rgb_linear / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


# Machado, Oliveira & Fernandes (2009), severity 1.0, applied to linear RGB.
DEUTAN = np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                   [-0.011820, 0.042940, 0.968881]])  # fmt: skip
PROTAN = np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                   [-0.003882, -0.048116, 1.051998]])  # fmt: skip


def _hex(c: str) -> np.ndarray:
    return _srgb_to_linear(np.array([int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)]))


@pytest.mark.parametrize("vision", [None, DEUTAN, PROTAN])
def test_fixed_model_colours_stay_apart(vision: np.ndarray | None) -> None:
    colours = list(FIXED_COLORS.values())
    for i, a in enumerate(colours):
        for b in colours[i + 1 :]:
            ca, cb = _hex(a), _hex(b)
            if vision is not None:
                ca, cb = np.clip(vision @ ca, 0, 1), np.clip(vision @ cb, 0, 1)
            assert np.linalg.norm(_lab(ca) - _lab(cb)) > 25, (a, b)


def test_new_models_do_not_take_a_fixed_colour() -> None:
    colours = model_colors(["pan-ref", "oracle", "copy-last", "random-action", "mine", "theirs"])
    assert len(set(colours.values())) == 6


def test_shipped_board_figures(tmp_path: Path) -> None:
    paths = sorted(SHIPPED.glob("*.json"))
    runs, samples = load_runs(paths), load_samples(paths)
    order = [runs[i][0] for i in rank_order(runs)]
    assert order[0] == "oracle"
    scores = [runs[i][1].summary.score for i in rank_order(runs)]
    assert scores == sorted(scores, reverse=True)
    # The leaderboard's columns: the suite's order, not the submission's sorted keys.
    assert suite_task_order(runs[0][1])[:3] == ["agent-sim", "env-sim", "long-horizon"]
    tasks = ["agent-sim", "long-horizon", "plan-nav"]  # a drift, a capped and a budget figure
    written = plot_results(runs, tmp_path, formats=["svg", "pdf"], samples=samples, tasks=tasks)
    names = {p.name for p in written}
    assert {"drift-long-horizon.pdf", "drift-long-horizon.svg", "radar.pdf"} <= names
    assert (tmp_path / "scores.pdf").read_bytes()[:5] == b"%PDF-"
    drift = (tmp_path / "drift-long-horizon.svg").read_text()
    assert "shaded: 95% CI over episodes" in drift
    assert "oracle: 100 dB, the cap" in drift
    budget = (tmp_path / "budget-plan-nav.svg").read_text()
    assert "identical: pan-ref = copy-last = random-action" in budget


def test_bands_need_samples_and_appear_with_them(tmp_path: Path) -> None:
    folder = cached_run("copy-last", tasks=small_tasks(("small-rollout",)), limit=4)
    runs = load_runs([folder])
    samples = [load_folder_samples(folder)]
    assert set(samples[0]) == {"small-rollout"}
    plot_results(runs, tmp_path / "with", formats=["svg", "png"], samples=samples)
    plot_results(runs, tmp_path / "without", formats=["svg"])
    with_text = (tmp_path / "with" / "drift-small-rollout.svg").read_text()
    without = (tmp_path / "without" / "drift-small-rollout.svg").read_text()
    assert "95% CI over episodes" in with_text and "95% CI" not in without
    results = json.loads((folder / "results.json").read_text())
    curve = results["tasks"]["small-rollout"]["metrics"]["psnr"]["curve"]
    mean, _, _ = curve_band(samples[0]["small-rollout"], "psnr")
    np.testing.assert_allclose(mean, curve, rtol=1e-9)
    from PIL import Image

    with Image.open(tmp_path / "with" / "scores.png") as img:
        assert round(img.info["dpi"][0]) == PRINT_DPI
