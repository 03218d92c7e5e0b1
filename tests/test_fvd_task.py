"""FVD_n inside a rollout task: features in the samples, set-level value, skipped without weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from panbench.harness import evaluate
from panbench.protocols.rollout import fvd_from_records
from panbench.results import read_samples

# The FVD tests' scripted stand-in I3D, pinned as i3d-torchscript, used here as a fixture.
from tests.metrics.test_fvd import scripted  # noqa: F401

TASK = """
task: fvd-probe
version: 1
protocol: rollout
env: {{name: bounce, resolution: 32}}
episodes: {{count: 6, seed: 7, context: 2, horizon: 16, policy: random}}
metrics: [psnr, fvd]
headline: psnr
options: {{fvd_clip: {clip}, fvd_stride: {clip}}}
"""


def _task(tmp_path: Path, clip: int = 8) -> str:
    path = tmp_path / "fvd-probe.yaml"
    path.write_text(TASK.format(clip=clip))
    return str(path)


@pytest.mark.usefixtures("scripted")
def test_fvd_curve_is_recomputable_from_samples(tmp_path: Path) -> None:
    task = _task(tmp_path)
    scores = {}
    for model in ("oracle", "copy-last"):
        out = tmp_path / model
        res = evaluate(model, out=out, tasks=[task], progress=False)
        entry = res["tasks"]["fvd-probe"]["metrics"]["fvd"]
        assert entry["set_level"] is True and entry["n"] == 6
        assert entry["offsets"] == [0, 8]
        records = read_samples(out / "samples" / "fvd-probe.jsonl")
        assert all(len(r["features"]["fvd"]["pred"]) == 2 for r in records)
        again = fvd_from_records(records)
        assert again["curve"] == pytest.approx(entry["curve"], rel=1e-9)
        assert again["value"] == pytest.approx(entry["value"], rel=1e-9)
        scores[model] = entry["value"]
    assert scores["oracle"] == pytest.approx(0.0, abs=1e-6)
    assert scores["copy-last"] > 1e-3


def test_fvd_is_skipped_with_the_fix_when_weights_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PANBENCH_HOME", str(tmp_path / "empty-home"))
    monkeypatch.delenv("PANBENCH_WEIGHTS_I3D_TORCHSCRIPT", raising=False)
    res = evaluate("copy-last", out=tmp_path / "run", tasks=[_task(tmp_path)], progress=False)
    task = res["tasks"]["fvd-probe"]
    assert "fvd" not in task["metrics"]
    assert "panbench weights pull i3d-torchscript" in task["skipped"]["fvd"]
    assert task["metrics"]["psnr"]["n"] == 6
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["tasks"]["fvd-probe"]["skipped"] == task["skipped"]


def test_fvd_is_skipped_when_the_horizon_is_shorter_than_a_window(tmp_path: Path) -> None:
    res = evaluate(
        "copy-last", out=tmp_path / "run", tasks=[_task(tmp_path, clip=32)], progress=False
    )
    assert "shorter than one 32-frame" in res["tasks"]["fvd-probe"]["skipped"]["fvd"]
