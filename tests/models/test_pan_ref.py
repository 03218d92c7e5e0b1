"""The pan-ref adapter: contract, batch-size independence, branching, re-encoding, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from panbench.cli import main
from panbench.data.episodes import make_episode
from panbench.envs import make
from panbench.errors import DataError
from panbench.io import sha256_file
from panbench.models.api import ActionSpace
from panbench.models.registry import load_model
from panbench.protocols.base import ModelRunner

pytest.importorskip("diffusers")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.reference_model.helpers import tiny_model

    path = tmp_path_factory.mktemp("pan-ref") / "ckpt"
    tiny_model(seed=1).save_pretrained(path, training={"command": "test"})
    return path


def _episodes(n: int, horizon: int = 3) -> list:
    env = make("shapes", resolution=32)
    return [make_episode(env, "t", 7, i, 2, horizon, "agent") for i in range(n)]


def _rollout(model, episodes) -> np.ndarray:  # type: ignore[no-untyped-def]
    runner = ModelRunner(model, make("shapes", resolution=32), 32)
    state = runner.reset(episodes)
    frames = []
    for t in range(len(episodes[0].actions)):
        state, f = runner.step(state, [e.actions[t] for e in episodes], "test")
        frames.append(f)
    return np.stack(frames, axis=1)


def test_spec_and_describe(checkpoint: Path) -> None:
    model = load_model("pan-ref", {"path": str(checkpoint), "steps": "1"})
    spec = model.spec
    assert spec.action_space is ActionSpace.TEXT and spec.resolution == 32
    assert spec.frames_per_step == 1
    info = model.describe()
    assert info["checkpoint_sha256"] == sha256_file(checkpoint / "model.safetensors")
    assert info["config"]["resolution"] == 32 and info["steps"] == 1


def test_rollouts_do_not_depend_on_the_batch(checkpoint: Path) -> None:
    model = load_model("pan-ref", {"path": str(checkpoint)})
    eps = _episodes(3)
    together = _rollout(model, eps)
    alone = np.concatenate([_rollout(model, [e]) for e in eps])
    assert together.shape == (3, 3, 32, 32, 3)
    np.testing.assert_array_equal(together, alone)


def test_seed_changes_the_samples(checkpoint: Path) -> None:
    eps = _episodes(2)
    a = _rollout(load_model("pan-ref", {"path": str(checkpoint)}), eps)
    b = _rollout(load_model("pan-ref", {"path": str(checkpoint), "seed": "1"}), eps)
    assert not np.array_equal(a, b)


def test_clone_branches_and_history_is_re_encoded(checkpoint: Path) -> None:
    import torch

    model = load_model("pan-ref", {"path": str(checkpoint)})
    eps = _episodes(2)
    state = model.reset(ModelRunner(model, make("shapes", resolution=32), 32).context(eps))
    branch = model.clone(state)
    acts = [e.actions[0] for e in eps]
    s1, f1 = model.step(state, acts)
    _, f2 = model.step(branch, acts)
    np.testing.assert_array_equal(f1, f2)  # the clone carries the same noise stream
    # the history holds h(generated frame), not the model's raw latent
    with torch.no_grad():  # row by row, as the adapter runs on CPU
        z = torch.cat([model.model.encode_frames(torch.from_numpy(f1[i : i + 1])) for i in (0, 1)])
    assert torch.equal(s1.latents[:, -1], z[:, 0])
    assert s1.latents.shape[1] == 2 and len(s1.actions[0]) == 1


def test_missing_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_model("pan-ref", {"path": str(tmp_path / "nowhere")})


def test_evaluate_end_to_end(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "evaluate",
            "--model",
            "pan-ref",
            "--model-args",
            f"path={checkpoint},steps=1",
            "--tasks",
            "agent-sim",
            "--limit",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    text = json.dumps(results)
    assert sha256_file(checkpoint / "model.safetensors") in text
    metrics = results["tasks"]["agent-sim"]["metrics"]
    assert metrics["psnr"]["n"] == 2


def test_shipped_checkpoint_is_the_default() -> None:
    from panbench.models.pan_ref import default_checkpoint

    folder = default_checkpoint()
    weights = folder / "model.safetensors"
    assert weights.stat().st_size + (folder / "config.json").stat().st_size <= 20 * 2**20
    doc = json.loads((folder / "config.json").read_text())
    assert doc["training"]["command"].startswith("panbench train --config ")
    model = load_model("pan-ref")
    assert model.describe()["checkpoint_sha256"] == sha256_file(weights)
    assert model.spec.resolution == 32


def test_missing_model_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from panbench.errors import ConfigError

    monkeypatch.setitem(sys.modules, "reference_model.model", None)  # import now fails
    with pytest.raises(ConfigError, match=r"panbench\[model\]"):
        load_model("pan-ref")
