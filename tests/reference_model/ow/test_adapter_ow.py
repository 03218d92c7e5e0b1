"""pan-ref on a PanOWModel checkpoint: the harness's contract checks, batch independence, branches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from panbench.envs.base import Action
from panbench.errors import ConfigError
from panbench.models.api import Context
from panbench.models.pan_ref import PanRefModel
from tests.reference_model.ow.ow_helpers import tiny_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(seed=2).save_pretrained(tmp_path_factory.mktemp("ow") / "model")


def context(n: int) -> Context:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (n, 2, 32, 32, 3), dtype=np.uint8)
    acts = [[Action(index=i, text=f"move the red circle {d}")] for i, d in enumerate("ab"[:n])]
    return Context(frames=frames, actions=acts, seeds=list(range(7, 7 + n)))


def test_spec_and_three_chunk_rollout(checkpoint: Path) -> None:
    model = PanRefModel(path=str(checkpoint))
    assert model.spec.frames_per_step == 4 and model.spec.resolution == 32
    state = model.reset(context(2))
    for k in range(3):
        state, frames = model.step(state, [Action(index=k, text="move up")] * 2)
        assert frames.shape == (2, 4, 32, 32, 3) and frames.dtype == np.uint8
    info = model.describe()
    assert info["class_name"] == "PanOWModel" and info["mode"] == "swin"
    assert len(info["checkpoint_sha256"]) == 64


def test_rollouts_do_not_depend_on_the_batch_and_branches_replay(checkpoint: Path) -> None:
    model = PanRefModel(path=str(checkpoint))
    both = model.reset(context(2))
    alone = model.reset(Context(context(2).frames[1:], context(2).actions[1:], [8]))
    act = [Action(index=1, text="move left")]
    branch = model.clone(both)
    both, a = model.step(both, act * 2)
    alone, b = model.step(alone, act)
    np.testing.assert_array_equal(a[1], b[0])
    branch, c = model.step(branch, act * 2)
    np.testing.assert_array_equal(a, c)
    _, d = model.step(branch, [Action(index=2, text="push the block")] * 2)
    _, e = model.step(both, [Action(index=2, text="push the block")] * 2)
    np.testing.assert_array_equal(d, e)


def test_mode_option(checkpoint: Path) -> None:
    chunk = PanRefModel(path=str(checkpoint), mode="chunk")
    assert chunk.describe()["mode"] == "chunk"
    with pytest.raises(ConfigError, match="mode swin or chunk"):
        PanRefModel(path=str(checkpoint), mode="ddim")
    with pytest.raises(ConfigError, match="open-weights"):
        PanRefModel(mode="chunk")  # the shipped pan-tiny is a PanModel


def test_evaluate_runs_the_contract_checks(checkpoint: Path, tmp_path: Path) -> None:
    from panbench.harness import evaluate
    from panbench.results import validate_results

    evaluate(
        "pan-ref",
        {"path": str(checkpoint), "steps": 2},
        out=tmp_path / "eval",
        tasks=["agent-sim"],
        limit=2,
        batch_size=2,
        progress=False,
    )
    doc = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert doc["model"]["spec"]["frames_per_step"] == 4
    validate_results(tmp_path / "eval")
