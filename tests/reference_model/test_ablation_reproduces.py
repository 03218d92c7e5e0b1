"""The objective ablation reproduces from its recorded commands on a smaller budget.

docs/figures/ablation-runs/<run>/log.csv are the logs behind docs/reference-model.md's ablation
table and figure. Training the same config for 20 steps (``--max-steps 20``: the schedule still
follows the configured 300, so the run is the start of the recorded one) must log the same
numbers at steps 10 and 20.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from reference_model.recipes import train

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ("loss", "diffusion", "latent", "collapse", "encoder_var")


def _rows(log: Path) -> dict[int, dict[str, str]]:
    with log.open(newline="") as f:
        return {int(r["step"]): r for r in csv.DictReader(f)}


@pytest.mark.parametrize("run", ["generative", "latent-joint"])
def test_first_steps_match_the_recorded_log(
    run: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the configs name the shipped h relative to the repository root
    recorded = _rows(ROOT / "docs" / "figures" / "ablation-runs" / run / "log.csv")
    assert max(recorded) == 300
    train(ROOT / "reference_model" / "configs" / f"ablation-{run}.yaml", tmp_path, max_steps=20)
    again = _rows(tmp_path / "log.csv")
    assert sorted(again) == [10, 20]
    for step in (10, 20):
        for column in COLUMNS:
            want, got = float(recorded[step][column]), float(again[step][column])
            assert got == pytest.approx(want, rel=2e-3, abs=1e-6), (step, column)
