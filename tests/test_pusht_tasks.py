"""The PushT tasks end to end through ``evaluate``: continuous actions, oracle and floors."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gym_pusht")

from panbench.harness import evaluate
from panbench.results import validate_results

ADAPTERS = "tests.models.adapters"


def test_pusht_sim_scores_the_truth_perfectly_and_a_frozen_frame_not(tmp_path: Path) -> None:
    runs = {}
    for model, args in (
        ("oracle", None),
        (f"{ADAPTERS}:VectorOracle", {"action_dim": 2}),  # driven by the vectors alone
        ("copy-last", None),
    ):
        out = tmp_path / model.replace(":", "_")
        runs[model] = evaluate(model, args, out=out, tasks=["pusht-sim"], limit=2, progress=False)
        validate_results(out)
    for model in ("oracle", f"{ADAPTERS}:VectorOracle"):
        metrics = runs[model]["tasks"]["pusht-sim"]["metrics"]
        assert metrics["action_following"]["value"] == 1.0, model
        assert metrics["psnr"]["value"] == 100.0, model
        assert metrics["position_error"]["value"] < 0.5, model  # perception tolerance
    frozen = runs["copy-last"]["tasks"]["pusht-sim"]["metrics"]
    assert frozen["action_following"]["value"] == 0.0
    assert frozen["position_error"]["value"] > 1.0
    assert len(frozen["position_error"]["curve"]) == 8  # the drift curve over the horizon
