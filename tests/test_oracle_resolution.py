"""``oracle --model-args resolution=S``: the true future seen through a model of side S."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from panbench.cli import main
from panbench.data.frames import resize_frames
from panbench.envs import make
from panbench.errors import ConfigError
from panbench.harness import evaluate
from panbench.models.api import Context
from panbench.models.baselines import OracleModel


def test_frames_are_the_truth_squashed_to_the_side() -> None:
    env = make("shapes", resolution=64)
    states = [env.reset(s) for s in (0, 1)]
    context = Context(
        frames=env.render_batch(states)[:, None],
        actions=[[], []],
        seeds=[0, 1],
        env=env,
        states=states,
    )
    full, small = OracleModel(), OracleModel(resolution=32)
    assert full.spec.resolution is None and small.spec.resolution == 32
    actions = [env.actions(s)[1] for s in states]
    _, truth = full.step(full.reset(context), actions)
    _, got = small.step(small.reset(context), actions)
    assert truth.shape == (2, 1, 64, 64, 3) and got.shape == (2, 1, 32, 32, 3)
    np.testing.assert_array_equal(got, resize_frames(truth, 32, mode="squash"))
    assert small.describe() == {"resolution": 32} and full.describe() == {}


def test_shapes_survive_32_pixels_and_a_breakout_paddle_does_not(tmp_path: Path) -> None:
    pytest.importorskip("ale_py")
    pytest.importorskip("ocatari")

    def score(task: str, args: dict[str, int]) -> float:
        out = tmp_path / f"{task}-{len(args)}"
        results = evaluate("oracle", args, out=out, tasks=[task], limit=4, progress=False)
        return results["tasks"][task]["metrics"]["action_following"]["value"]

    assert score("agent-sim", {"resolution": 32}) == 1.0
    assert score("atari-sim-breakout", {}) == 1.0
    assert score("atari-sim-breakout", {"resolution": 32}) < 0.5


@pytest.mark.parametrize("bad", [0, 4, -1, "big", 2.5, True])
def test_a_bad_resolution_is_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match="expected resolution to be a frame side"):
        OracleModel(resolution=bad)  # type: ignore[arg-type]


def test_the_cli_refuses_a_bad_resolution_with_code_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(
        [
            "evaluate",
            "--model",
            "oracle",
            "--model-args",
            "resolution=big",
            "--tasks",
            "agent-sim",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "expected resolution to be a frame side" in err and "'big'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "r" / "results.json").exists()
