"""End-to-end tests of the WR-Arena tasks through `panbench evaluate` on a fake checkout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from panbench.cli import main
from panbench.data.wr_arena import import_wr_arena
from panbench.errors import ContractError
from panbench.harness import evaluate
from panbench.results import read_samples, validate_results
from tests.wr_arena_fake import write_fake_wr_arena


@pytest.fixture
def imported(tmp_path: Path):
    tree = write_fake_wr_arena(tmp_path / "WR-Arena")
    out = tmp_path / "tasks"
    import_wr_arena(tree.root, out)
    return tree, out


def test_copy_last_on_stepwise_through_the_cli(imported, tmp_path: Path) -> None:
    tree, tasks = imported
    out = tmp_path / "run"
    argv = ["evaluate", "--model", "copy-last", "--tasks", str(tasks / "wr-stepwise.yaml")]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    results = validate_results(out)
    entry = results["tasks"]["wr-stepwise"]
    # copy-last predicts the source image, so it picks the candidate that is the source: it
    # scores exactly where upstream's best is that candidate.
    expected = [
        float(a == c) for a, c in zip(tree.stepwise_answers, tree.stepwise_copy, strict=True)
    ]
    records = read_samples(out / "samples" / "wr-stepwise.jsonl")
    assert [r["metrics"]["choice_accuracy"] for r in records] == expected
    assert [r["nearest"] for r in records] == [[c] for c in tree.stepwise_copy]
    assert entry["metrics"]["choice_accuracy"]["value"] == pytest.approx(np.mean(expected))
    assert entry["headline"]["score"] == pytest.approx(100 * np.mean(expected))
    assert entry["distance"] == "pixel"
    assert entry["data"]["counts"] == {"listed": 4, "usable": 4, "skipped": 0}
    assert "env" not in entry


def test_stepwise_pixel_distances_match_numpy(imported, tmp_path: Path) -> None:
    from PIL import Image

    tree, tasks = imported
    out = tmp_path / "run"
    evaluate("copy-last", out=out, tasks=[str(tasks / "wr-stepwise.yaml")], progress=False)
    rec = read_samples(out / "samples" / "wr-stepwise.jsonl")[1]
    manifest = json.loads((tasks / "wr-stepwise.manifest.json").read_text())
    sample = manifest["samples"][1]

    def frame(rel: str) -> np.ndarray:  # crop to the centred square, then resize (PIL, box)
        im = Image.open(tree.root / rel).convert("RGB")
        w, h = im.size
        s = min(w, h)
        box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
        return np.asarray(im.crop(box).resize((256, 256), Image.Resampling.BILINEAR), float)

    src = frame(sample["image"]["path"])
    ref = [np.mean((frame(c["path"]) - src) ** 2) for c in sample["choices"]]
    # An independent resize differs by interpolation only: the order must agree.
    assert np.argsort(rec["distances"]).tolist() == np.argsort(ref).tolist()
    assert rec["distances"][tree.stepwise_copy[1] - 1] == 0.0


def test_discrete_models_are_refused_on_text_only_actions(imported, tmp_path: Path) -> None:
    _, tasks = imported
    with pytest.raises(ContractError, match="text-only action"):
        evaluate(
            "tests.test_wr_arena:DiscreteModel",
            out=tmp_path / "r",
            tasks=[str(tasks / "wr-stepwise.yaml")],
            progress=False,
        )


def test_privileged_models_say_there_is_no_simulator(imported, tmp_path: Path) -> None:
    _, tasks = imported
    with pytest.raises(ContractError, match="needs the true simulator"):
        evaluate(
            "oracle", out=tmp_path / "r", tasks=[str(tasks / "wr-stepwise.yaml")], progress=False
        )


from panbench.models.api import ActionSpace, Context, ModelSpec, WorldModel  # noqa: E402


class DiscreteModel(WorldModel):
    """Takes discrete actions: must never see a text-only action."""

    def __init__(self) -> None:
        self.spec = ModelSpec(name="discrete", action_space=ActionSpace.DISCRETE)

    def reset(self, context: Context) -> np.ndarray:
        return context.frames[:, -1:]

    def step(self, state, actions):  # type: ignore[no-untyped-def]
        raise AssertionError("step must not be reached")
