"""Drift curves and their summaries against numpy/scipy references."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

from panbench.errors import ContractError
from panbench.metrics import (
    PSNR,
    PerStepMean,
    curve_auc,
    curve_mean,
    curve_slope,
    drift_curve,
    first_crossing,
    psnr_video,
    summarize_drift,
)

NAN = math.nan


def test_curve_is_nan_aware_mean_over_episodes():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(7, 9))
    values[rng.random(values.shape) < 0.3] = NAN
    values[:, 4] = NAN  # a step no episode has
    c = drift_curve(values)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref = np.nanmean(values, axis=0)
    np.testing.assert_allclose(c.mean, ref, equal_nan=True)
    assert c.n.tolist() == np.isfinite(values).sum(0).tolist()
    assert c.n[4] == 0 and math.isnan(c.mean[4])
    assert json.loads(json.dumps(c.to_dict()))["mean"][4] is None


def test_mask_and_torch_input():
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    c = drift_curve(values, mask=torch.tensor([[True, False], [True, True]]))
    assert c.mean.tolist() == [2.0, 4.0] and c.n.tolist() == [2, 1]


def test_summaries_against_references():
    rng = np.random.default_rng(1)
    y = 30 - 0.7 * np.arange(12) + rng.normal(0, 0.5, 12)
    x = np.arange(12)
    assert curve_mean(y) == pytest.approx(y.mean())
    assert curve_auc(y) == pytest.approx(np.trapezoid(y, x) / 11)
    assert curve_slope(y) == pytest.approx(sps.linregress(x, y).slope)
    # with a gap: the trapezoid joins the neighbours, the fit skips the step
    y_gap = y.copy()
    y_gap[5] = NAN
    keep = np.isfinite(y_gap)
    assert curve_auc(y_gap) == pytest.approx(np.trapezoid(y[keep], x[keep]) / 11)
    assert curve_slope(y_gap) == pytest.approx(sps.linregress(x[keep], y[keep]).slope)
    assert curve_mean(y_gap) == pytest.approx(y[keep].mean())


def test_auc_is_normalised_and_degenerate_curves():
    assert curve_auc([3.0] * 10) == pytest.approx(3.0)
    assert curve_auc([0.0, 1.0]) == pytest.approx(0.5)
    assert curve_auc([5.0]) == 5.0 and math.isnan(curve_slope([5.0]))
    assert math.isnan(curve_auc([NAN, NAN])) and math.isnan(curve_mean([]))


def test_first_crossing_direction():
    psnr = [30.0, 25.0, 19.0, 21.0, 18.0]
    assert first_crossing(psnr, 20.0, higher_is_better=True) == 2
    assert first_crossing(psnr, 10.0, higher_is_better=True) is None
    err = [0.5, NAN, 3.0, 5.0]
    assert first_crossing(err, 2.0, higher_is_better=False) == 2
    assert first_crossing(err, 5.0, higher_is_better=False) is None  # strictly above


def test_summarize_drift_to_dict_is_json():
    s = summarize_drift([1.0, 2.0, 4.0], higher_is_better=False, threshold=1.5)
    d = json.loads(json.dumps(s.to_dict()))
    assert d["first_crossing"] == 1 and d["slope"] == pytest.approx(1.5)
    assert summarize_drift([1.0], higher_is_better=True).to_dict()["slope"] is None


def test_accumulator_equals_functional_curve_across_batches():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(10, 6))
    values[rng.random(values.shape) < 0.2] = NAN
    m = PerStepMean()
    for lo in range(0, 10, 3):
        m.update(values[lo : lo + 3])
    ref = drift_curve(values)
    np.testing.assert_allclose(m.curve().mean, ref.mean)
    assert m.curve().n.tolist() == ref.n.tolist()
    assert float(m.compute()) == pytest.approx(np.nanmean(values))


def test_metric_class_yields_drift_curve_of_its_functional():
    rng = np.random.default_rng(3)
    target = rng.integers(0, 256, (4, 5, 16, 16, 3), dtype=np.uint8)
    noise = rng.integers(-40, 41, target.shape) * (np.arange(1, 6)[None, :, None, None, None] / 5)
    preds = np.clip(target + noise, 0, 255).astype(np.uint8)
    m = PSNR(horizon=5)
    m.update(preds, target)
    ref = drift_curve(psnr_video(preds, target))
    np.testing.assert_allclose(m.curve().mean, ref.mean, rtol=1e-12)
    assert curve_slope(m.curve()) < 0  # noise grows with the step


def test_bad_shapes():
    with pytest.raises(ContractError, match=r"\[N, T\].*\(3,\)"):
        drift_curve(np.zeros(3))
    with pytest.raises(ContractError, match="mask"):
        drift_curve(np.zeros((2, 3)), mask=np.ones((2, 2), bool))
