"""End-to-end tests of the WR-Arena tasks through `panbench evaluate` on a fake checkout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from panbench.cli import main
from panbench.data.wr_arena import import_wr_arena
from panbench.errors import ConfigError, ContractError
from panbench.harness import evaluate
from panbench.judges import JUDGES, Judge, Rubric, Score, fidelity_percent
from panbench.models.api import ActionSpace, Context, ModelSpec, WorldModel
from panbench.results import read_samples, validate_results
from tests.judges.conftest import FakeChatServer, loopback_only  # noqa: F401 (a fixture)
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


class DiscreteModel(WorldModel):
    """Takes discrete actions: must never see a text-only action."""

    def __init__(self) -> None:
        self.spec = ModelSpec(name="discrete", action_space=ActionSpace.DISCRETE)

    def reset(self, context: Context) -> np.ndarray:
        return context.frames[:, -1:]

    def step(self, state, actions):  # type: ignore[no-untyped-def]
        raise AssertionError("step must not be reached")


# ----------------------------------------------------------------------------- smoothness
class ShiftModel(WorldModel):
    """A tiny video model: each step returns 3 frames, each the previous rolled right by
    ``speed`` px (the speed grows by one per round, so rounds differ)."""

    def __init__(self) -> None:
        self.spec = ModelSpec(name="shift", action_space=ActionSpace.TEXT, frames_per_step=3)

    def reset(self, context: Context) -> tuple[np.ndarray, int]:
        return context.frames[:, -1].copy(), 1

    def step(self, state, actions):  # type: ignore[no-untyped-def]
        frame, speed = state
        out = []
        for _ in range(3):
            frame = np.roll(frame, speed, axis=2)
            out.append(frame)
        return (frame, speed + 1), np.stack(out, axis=1)


def shifted_clips(context: np.ndarray, rounds: int) -> list[np.ndarray]:
    """What ShiftModel's rounds look like, rebuilt independently: start frame + 3 frames."""
    clips, frame = [], context
    for r in range(rounds):
        frames = [frame]
        for _ in range(3):
            frame = np.roll(frame, r + 1, axis=1)
            frames.append(frame)
        clips.append(np.stack(frames))
    return clips


def test_smoothness_end_to_end_with_a_tiny_video_model(imported, tmp_path: Path) -> None:
    from panbench.data.sources.wr_arena import WrArenaSource
    from panbench.metrics.smoothness import smoothness
    from panbench.suite import load_task

    _, tasks = imported
    task = load_task(tasks / "wr-smoothness.yaml").with_overrides(
        {"data": {"resolution": 32}, "episodes": {"horizon": 3}}
    )
    path = tmp_path / "smooth.yaml"
    import yaml

    spec = task.to_dict()
    spec["data"]["manifest"] = str(task.manifest_path())
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "run"
    evaluate("tests.test_wr_arena:ShiftModel", out=out, tasks=[str(path)], progress=False)
    results = validate_results(out)
    entry = results["tasks"]["wr-smoothness"]
    assert entry["flow"]["name"] == "farneback" and entry["lam"] == 1.0
    assert entry["headline"]["score"] is None
    records = read_samples(out / "samples" / "wr-smoothness.jsonl")
    assert len(records) == 2  # three listed, one image missing
    source = WrArenaSource(load_task(path))
    for rec in records:
        context = source.episode(rec["index"]).context_frames[0]
        expected = [smoothness(c, "farneback") for c in shifted_clips(context, 3)]
        assert rec["curves"]["smoothness"] == pytest.approx(expected)
        assert rec["metrics"]["smoothness"] == pytest.approx(np.mean(expected))
    means = [r["metrics"]["smoothness"] for r in records]
    assert entry["metrics"]["smoothness"]["value"] == pytest.approx(np.mean(means))
    assert entry["metrics"]["smoothness"]["value"] > 0


def test_copy_last_is_perfectly_still(imported, tmp_path: Path) -> None:
    _, tasks = imported
    out = tmp_path / "run"
    evaluate("copy-last", out=out, tasks=[str(tasks / "wr-smoothness.yaml")], progress=False)
    entry = validate_results(out)["tasks"]["wr-smoothness"]
    # Farneback finds (almost) no motion between identical frames: a still video scores ~0.
    assert 0.0 <= entry["metrics"]["smoothness"]["value"] < 1e-3


# ----------------------------------------------------------------------------- action fidelity


class ScriptedJudge(Judge):
    """Scores from the prompt alone: round r scores r, plus one for environment prompts."""

    kind = "scripted"
    calls: ClassVar[list[tuple[tuple[int, ...], str]]] = []

    def _score(self, frames: np.ndarray, prompt: str, rubric: Rubric) -> Score:
        ScriptedJudge.calls.append((frames.shape, prompt))
        r = int(prompt.rstrip(".").split()[-1])
        return Score(float(min(3, r + (1 if prompt.startswith("env") else 0))), f"{r}")

    def provenance(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": "script", "endpoint": None}


def expected_round_scores(prompts: list[str]) -> list[float]:
    return [min(3.0, int(p.split()[-1]) + (1.0 if p.startswith("env") else 0.0)) for p in prompts]


@pytest.fixture
def scripted_judge() -> Iterator[None]:
    JUDGES.register("scripted", ScriptedJudge)
    ScriptedJudge.calls = []
    yield
    JUDGES.unregister("scripted")


def test_judged_task_is_refused_without_a_judge(imported, tmp_path: Path) -> None:
    _, tasks = imported
    with pytest.raises(ConfigError, match=r"wr-action-fidelity are scored by a judge.*--judge"):
        evaluate(
            "copy-last",
            out=tmp_path / "r",
            tasks=[str(tasks / "wr-stepwise.yaml"), str(tasks / "wr-action-fidelity.yaml")],
            progress=False,
        )
    assert not (tmp_path / "r").exists()  # refused before anything ran


def test_fidelity_with_a_scripted_judge(imported, scripted_judge: None, tmp_path: Path) -> None:
    _, tasks = imported
    out = tmp_path / "run"
    fidelity = str(tasks / "wr-action-fidelity.yaml")
    evaluate("copy-last", out=out, tasks=[fidelity], progress=False, judge="scripted")
    entry = validate_results(out)["tasks"]["wr-action-fidelity"]
    manifest = json.loads((tasks / "wr-action-fidelity.manifest.json").read_text())
    per_sample = [expected_round_scores(s["prompts"]) for s in manifest["samples"]]
    percent = fidelity_percent(per_sample, (0, 3))
    assert entry["headline"]["score"] == pytest.approx(percent)
    assert entry["metrics"]["fidelity"]["value"] * 100 == pytest.approx(percent)
    agent = [
        p for p, s in zip(per_sample, manifest["samples"], strict=True) if s["group"] == "agent"
    ]
    assert entry["metrics"]["agent_fidelity"]["value"] * 100 == pytest.approx(
        fidelity_percent(agent, (0, 3))
    )
    assert entry["metrics"]["agent_fidelity"]["n"] == 6
    assert entry["metrics"]["environment_fidelity"]["n_missing"] == 6
    judge = entry["judge"]
    assert judge["kind"] == "scripted" and judge["rubric"]["name"] == "wr-action-fidelity"
    assert judge["rubric"]["hash"] == Rubric.from_dict(manifest_rubric(tasks)).hash()
    # Every round: its start frame + copy-last's one frame, sampled up to the rubric's 8 frames;
    # the instruction ends with a period, as upstream quotes it.
    assert len(ScriptedJudge.calls) == 12 * 3
    assert all(shape[1:] == (256, 256, 3) for shape, _ in ScriptedJudge.calls)
    assert all(prompt.endswith(".") for _, prompt in ScriptedJudge.calls)


def manifest_rubric(tasks: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((tasks / "wr-action-fidelity.yaml").read_text())["options"]["rubric"]


@pytest.mark.usefixtures("loopback_only")
def test_fidelity_with_the_openai_compatible_judge(
    imported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, tasks = imported
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    fidelity = str(tasks / "wr-action-fidelity.yaml")
    with FakeChatServer() as server:
        server.default = "3"
        args = {"base_url": server.base_url, "model": "tiny-vlm", "cache_dir": str(tmp_path / "c")}
        kw = {"tasks": [fidelity], "progress": False, "judge": "openai-compatible"}
        evaluate("copy-last", out=tmp_path / "a", judge_args=args, **kw)  # type: ignore[arg-type]
        assert len(server.requests) == 12 * 3
        body = server.requests[0].body
        assert body["model"] == "tiny-vlm" and body["temperature"] == 0
        entry = validate_results(tmp_path / "a")["tasks"]["wr-action-fidelity"]
        assert entry["metrics"]["fidelity"]["value"] == 1.0
        assert entry["judge"]["model"] == "tiny-vlm"
        assert entry["judge"]["endpoint"].startswith("http://127.0.0.1")
        # A second run is answered from the cache: same scores, no request.
        evaluate("copy-last", out=tmp_path / "b", judge_args=args, **kw)  # type: ignore[arg-type]
        assert len(server.requests) == 12 * 3
    again = validate_results(tmp_path / "b")["tasks"]["wr-action-fidelity"]
    assert again["metrics"] == entry["metrics"]


def test_human_judge_pending_sheet_scores_resume(
    imported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from panbench.judges.human import read_manifest

    _, tasks = imported
    out, sheet = tmp_path / "run", tmp_path / "sheet"
    argv = ["evaluate", "--model", "copy-last", "--tasks", str(tasks / "wr-action-fidelity.yaml")]
    argv += ["--out", str(out), "--no-progress", "--judge", "human"]
    code = main([*argv, "--judge-args", f"sheet={sheet}"])
    text = capsys.readouterr().out
    assert code == 3
    assert "12 episode(s) await human judgements" in text and "judging-sheet.html" in text
    assert "--judge-args" in text and "scores=" in text  # the rerun command
    assert not (out / "results.json").exists()
    assert not (out / "samples" / "wr-action-fidelity.jsonl").exists()
    items = read_manifest(sheet / "judging-sheet.html")["items"]
    assert len(items) == 12 * 3
    # A person scores every item 3 except the ones for the first round (1), and exports.
    scores = {
        item["id"]: {
            "score": 1 if item["prompt"].endswith("round 0.") else 3,
            "scale": [0, 3],
            "rubric": item["rubric"]["tag"],
        }
        for item in items
    }
    export = tmp_path / "panbench-scores.json"
    export.write_text(
        json.dumps({"format": "panbench-human-scores", "version": 1, "scores": scores})
    )
    code = main([*argv, "--judge-args", f"sheet={sheet},scores={export}"])
    assert code == 0, capsys.readouterr()
    entry = validate_results(out)["tasks"]["wr-action-fidelity"]
    assert entry["metrics"]["fidelity"]["value"] == pytest.approx((1 + 3 + 3) / 9)
    assert entry["judge"]["kind"] == "human"


# ----------------------------------------------------------------------------- leaderboard
class OtherScriptedJudge(ScriptedJudge):
    """The same scores from another 'model': must not share a leaderboard column."""

    kind = "scripted"

    def provenance(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": "another-script", "endpoint": None}


def test_leaderboard_marks_judged_columns_and_refuses_mixed_judges(
    imported, scripted_judge: None, tmp_path: Path
) -> None:
    import pandas as pd

    from panbench.leaderboard import (
        SubmissionError,
        build_leaderboard,
        init_leaderboard,
        submit,
    )

    _, tasks = imported
    suite = tasks / "mini.yaml"
    suite.write_text("suite: wr-mini\nversion: 1\ntasks: [wr-stepwise, wr-action-fidelity]\n")
    board = tmp_path / "board"
    init_leaderboard(board, str(suite))
    for model in ("copy-last", "tests.test_wr_arena:ShiftModel"):
        out = tmp_path / model.replace(":", "_")
        evaluate(model, out=out, suite=str(suite), progress=False, judge="scripted")
        submit(out, board)
    JUDGES.unregister("scripted")
    JUDGES.register("scripted", OtherScriptedJudge)
    other = tmp_path / "other"
    evaluate(
        "tests.test_wr_arena:StillShiftModel",
        out=other,
        suite=str(suite),
        progress=False,
        judge="scripted",
    )
    with pytest.raises(
        SubmissionError,
        match=r"task 'wr-action-fidelity' was scored by .*another-script.* but .* by scripted judge script",
    ):
        submit(other, board)
    build_leaderboard(board)
    md = (board / "leaderboard.md").read_text()
    assert "| wr-stepwise | wr-action-fidelity \u2020 |" in md
    assert (
        "\u2020 Judge-dependent" in md
        and "scripted judge script, rubric wr-action-fidelity@1" in md
    )
    page = (board / "index.html").read_text()
    assert 'class="judged">wr-action-fidelity \u2020</th>' in page
    assert "Judge-dependent" in page
    df = pd.read_csv(board / "leaderboard.csv")
    assert "wr-action-fidelity_judge" in df and "wr-stepwise_judge" not in df
    assert set(df["wr-action-fidelity_judge"]) == {
        "scripted judge script, rubric wr-action-fidelity@1 ("
        + Rubric.from_dict(manifest_rubric(tasks)).hash()[:12]
        + ")"
    }


class StillShiftModel(ShiftModel):
    """ShiftModel under another name (a third, distinct submission)."""

    def __init__(self) -> None:
        super().__init__()
        self.spec = ModelSpec(name="still-shift", action_space=ActionSpace.TEXT, frames_per_step=3)


# ----------------------------------------------------------------------------- planning
class DimmerModel(WorldModel):
    """Imagines 'push the red moon left' as halving every pixel; any other push changes nothing."""

    def __init__(self) -> None:
        self.spec = ModelSpec(name="dimmer", action_space=ActionSpace.TEXT)

    def reset(self, context: Context) -> np.ndarray:
        return context.frames[:, -1].copy()

    def step(self, state, actions):  # type: ignore[no-untyped-def]
        out = np.stack(
            [
                (f // 2).astype(np.uint8) if a.text == "push the red moon left" else f
                for f, a in zip(state, actions, strict=True)
            ]
        )
        return out, out[:, None]


def test_structured_planning_keeps_the_actions_that_approach_the_goal(
    imported, tmp_path: Path
) -> None:
    from panbench.data.sources.wr_arena import DEFAULT_CANDIDATES, WrArenaSource
    from panbench.suite import load_task

    _, tasks = imported
    path = tasks / "wr-structured-planning.yaml"
    out = tmp_path / "run"
    evaluate("tests.test_wr_arena:DimmerModel", out=out, tasks=[str(path)], progress=False)
    entry = validate_results(out)["tasks"]["wr-structured-planning"]
    assert entry["candidates"] == len(DEFAULT_CANDIDATES) == 32
    source = WrArenaSource(load_task(path))
    records = read_samples(out / "samples" / "wr-structured-planning.jsonl")
    for rec in records:
        episode = source.episode(rec["index"])
        budget = episode.sample["max_action"]
        assert rec["plan"] == ["push the red moon left"] * budget
        frame = episode.context_frames[0].astype(np.float64)
        start = np.mean((frame / 255) ** 2)  # the goal is black
        for _ in range(budget):
            frame = np.floor(frame / 2)
        final = np.mean((frame / 255) ** 2)
        assert rec["metrics"]["goal_distance"] == pytest.approx(final)
        assert rec["metrics"]["goal_progress"] == pytest.approx((start - final) / start)
    progress = [r["metrics"]["goal_progress"] for r in records]
    assert entry["headline"]["score"] == pytest.approx(100 * np.mean(progress))


def test_copy_last_makes_no_plan(imported, tmp_path: Path) -> None:
    _, tasks = imported
    out = tmp_path / "run"
    path = tasks / "wr-structured-planning.yaml"
    evaluate("copy-last", out=out, tasks=[str(path)], progress=False)
    records = read_samples(out / "samples" / "wr-structured-planning.jsonl")
    assert all(r["plan"] == [] and r["metrics"]["goal_progress"] == 0.0 for r in records)


def test_whole_suite_judge_free_and_judged(imported, scripted_judge: None, tmp_path: Path) -> None:
    _, tasks = imported
    free = evaluate(
        "copy-last",
        out=tmp_path / "a",
        suite=str(tasks / "wr-arena-judge-free.yaml"),
        progress=False,
    )
    assert list(free["tasks"]) == ["wr-smoothness", "wr-stepwise", "wr-structured-planning"]
    with pytest.raises(ConfigError, match="wr-action-fidelity are scored by a judge"):
        evaluate(
            "copy-last", out=tmp_path / "b", suite=str(tasks / "wr-arena.yaml"), progress=False
        )
    full = evaluate(
        "copy-last",
        out=tmp_path / "b",
        suite=str(tasks / "wr-arena.yaml"),
        progress=False,
        judge="scripted",
    )
    assert len(full["tasks"]) == 4
    validate_results(tmp_path / "b")
