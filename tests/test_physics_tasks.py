"""The physics suite (MuJoCo table3d): oracle perfect, copy-last low, with CIs; protocol checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from panbench.envs import make
from panbench.errors import ConfigError
from panbench.harness import evaluate

pytest.importorskip("mujoco")

TASKS = ("physics-push", "physics-outcome", "physics-permanence")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("physics")
    return {
        m: evaluate(m, out=out / m, suite="physics", limit=6, progress=False)
        for m in ("oracle", "copy-last")
    }


def test_the_oracle_scores_100_on_every_physics_task(runs: dict[str, dict]) -> None:
    for task in TASKS:
        result = runs["oracle"]["tasks"][task]
        assert result["headline"]["score"] == pytest.approx(100.0), task
        assert result["metrics"]["psnr"]["value"] == pytest.approx(100.0)


def test_copy_last_scores_low_and_its_ci_stays_below_the_oracle(runs: dict[str, dict]) -> None:
    for task in TASKS:
        result = runs["copy-last"]["tasks"][task]
        headline = result["headline"]["metric"]
        metric = result["metrics"][headline]
        assert metric["value"] <= 0.3, (task, metric)
        assert metric["ci95"][1] < 1.0, (task, metric)
    outcome = runs["copy-last"]["tasks"]["physics-outcome"]["metrics"]
    assert outcome["spatial_iou"]["value"] < 0.5  # a frozen scene shows no motion
    assert outcome["final_position_error"]["value"] > 0.5


def test_mask_metrics_need_an_env_with_object_masks() -> None:
    from panbench.protocols.physics import PhysicsProtocol
    from panbench.suite import load_task

    task = load_task("physics-outcome")
    with pytest.raises(ConfigError, match="env with object masks"):
        PhysicsProtocol(task, make("bounce"))


def test_data_generate_writes_table3d_episodes(tmp_path: Path) -> None:
    from panbench.cli import main

    out = tmp_path / "eps"
    args = ["data", "generate", "--env", "table3d", "--episodes", "2", "--length", "5"]
    code = main([*args, "--env-args", "scenario=outcome", "--out", str(out)])
    assert code in (0, None)
    from panbench.data.dataset import EpisodeDataset

    data = EpisodeDataset(out)
    assert len(data) == 2
    episode = data[0]
    assert tuple(episode["frames"].shape) == (5, 64, 64, 3)
    assert tuple(episode["states"]["pose"].shape) == (5, 4, 7)  # 3D truth of 3 objects + pusher
