"""A training run cut short by --max-steps says which stages it left untrained, before and after."""

from __future__ import annotations

from pathlib import Path

import pytest

from panbench.cli import main
from panbench.train_notes import cut_short, stage_plan
from tests.reference_model.helpers import write_run_config

PLAN = stage_plan({"train": {"ae_steps": 1600, "steps": 1200}})


def test_stage_plan_of_both_recipes() -> None:
    assert [(s.start, s.end) for s in PLAN] == [(0, 1600), (1600, 2800)]
    assert [(s.start, s.end) for s in stage_plan({"train": {"ae_steps": 0, "steps": 5}})] == [
        (0, 5)
    ]
    (ow,) = stage_plan({"train": {"stage": 1, "steps": 7}})
    assert (ow.name, ow.end) == ("stage 1", 7)


def test_a_stop_inside_stage_one_names_the_untrained_dynamics() -> None:
    text = cut_short(PLAN, 30)
    assert text is not None
    assert "step 30 of 2800, inside stage 1 (autoencoder) (30 of 1600 steps)" in text
    assert "stage 2 (dynamics) is not trained at all" in text
    assert "backbone f and decoder g" in text


def test_a_stop_inside_stage_two_says_part_trained() -> None:
    text = cut_short(PLAN, 2000)
    assert text is not None
    assert "inside stage 2 (dynamics) (400 of 1200 steps)" in text
    assert "not trained at all" not in text


@pytest.mark.parametrize("stop", [2800, 5000])
def test_a_full_run_has_no_warning(stop: int) -> None:
    assert cut_short(PLAN, stop) is None


def test_train_warns_before_and_after(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_run_config(tmp_path / "run.yaml", ae_steps=2, steps=2)
    argv = ["train", "--config", str(config), "--out", str(tmp_path / "cut"), "--max-steps", "1"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert err.count("stage 2 (dynamics) is not trained at all") == 2
    assert "warning: not fully trained:" in err
    assert "step 1/4 (autoencoder)" in captured.out and "ETA" in captured.out
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "full")]) == 0
    assert "warning" not in capsys.readouterr().err
