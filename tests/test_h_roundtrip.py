"""benchmarks/h_roundtrip.py: its errors against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from panbench.metrics.frame import DEFAULT_MAX_DB
from tests.scripts import load_script


def test_object_error_counts_only_object_pixels() -> None:
    script = load_script("h_roundtrip")
    truth = np.full((1, 32, 32, 3), 40, dtype=np.uint8)
    truth[0, 4:8, 10:14] = (220, 60, 60)  # a 4x4 red agent on a plain background
    truth[0, 30, 30] = (45, 42, 40)  # close to the background: not an object
    recon = truth.copy()
    recon[0, 4:8, 10:14, 0] = 210  # the agent drawn 10 levels too dark in red
    recon[0, 0:2, 0:16] = 43  # background off by 3 (not counted in the object error)
    psnr, obj = script.roundtrip_errors(truth, recon)
    assert obj == pytest.approx((10 * 16) / (16 * 3))  # red channel only, over 3 channels
    mse = (16 * 10**2 + 32 * 3 * 3**2) / (32 * 32 * 3)
    assert psnr == pytest.approx(10 * math.log10(255**2 / mse))
    # the tasks' cap on identical frames, and a mean over frames (not one pooled MSE)
    assert script.roundtrip_errors(truth, truth)[0] == DEFAULT_MAX_DB
    two = script.roundtrip_errors(np.concatenate([truth, truth]), np.concatenate([recon, truth]))
    assert two[0] == pytest.approx((10 * math.log10(255**2 / mse) + DEFAULT_MAX_DB) / 2)
