"""Recorded data as scored tasks: LeRobot v2.1/v3.0, plain videos and episode folders, end to end."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from panbench.cli import main
from panbench.data.recorded import ImportOptions, import_recorded
from panbench.data.sources import episode_source
from panbench.errors import DataError
from panbench.harness import evaluate
from panbench.results import validate_results
from panbench.suite import load_task
from tests.data.recorded_fake import (
    CAMERA,
    FPS,
    TASKS,
    _write_video,
    make_lerobot_v2,
    make_lerobot_v3,
    make_videos,
    trajectory,
)

SHIFT = "tests.data.recorded_fake:ShiftModel"
ALL = ["--test-fraction", "1", "--resolution", "32"]


def _import(kind: str, root: Path, out: Path, *extra: str) -> int:
    return main(["tasks", "import", kind, "--root", str(root), "--out", str(out), *ALL, *extra])


@pytest.fixture(scope="module")
def lerobot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("lerobot")
    return {"v2": make_lerobot_v2(base / "v2"), "v3": make_lerobot_v3(base / "v3")}


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_lerobot_reader_gives_the_recorded_frames_actions_and_instructions(
    lerobot: dict[str, Path], version: str, tmp_path: Path
) -> None:
    assert _import("lerobot", lerobot[version], tmp_path, "--stride", "2") == 0
    task = load_task(tmp_path / f"{version}.yaml")
    assert task.protocol == "recorded_rollout" and task.data is not None
    source = episode_source(task)
    # 4 episodes of 14 frames, windows of 4 + 8 every 2 frames: starts 0 and 2 in each
    assert len(source) == 8
    for index in (0, 3, 7):  # the last is episode 3 of the shared v3 file: segment timestamps
        ep = source.episode(index)
        rec = int(ep.recording.split("_")[-1])
        frames, actions = trajectory(100 + rec, 14)
        clip = np.concatenate([ep.context_frames, ep.frames]).astype(int)
        # lossy mp4: close to the truth; a frame off by one would move the square (255 levels)
        assert np.abs(clip - frames[ep.start : ep.start + 12]).mean() < 3
        want = actions[ep.start + 3 : ep.start + 11]
        np.testing.assert_array_equal([a.vector for a in ep.actions], want)
        assert all(a.text == TASKS[rec % 2] for a in ep.actions)
        assert len(ep.context_actions) == 3
        # the sensitivity actions are another recording's
        assert ep.alt_actions is not None and ep.alt_frames is not None
        assert [a.vector for a in ep.alt_actions] != [a.vector for a in ep.actions]
    assert source.episode(3).hash == episode_source(task).episode(3).hash


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_action_sensitivity_separates_a_model_that_uses_actions_from_baselines(
    lerobot: dict[str, Path], version: str, tmp_path: Path
) -> None:
    assert _import("lerobot", lerobot[version], tmp_path / "tasks") == 0
    yaml_path = str(tmp_path / "tasks" / f"{version}.yaml")
    scores = {}
    for model in ("copy-last", "random-action", SHIFT):
        out = tmp_path / model.split(":")[-1]
        evaluate(model, out=out, tasks=[yaml_path], progress=False)
        entry = validate_results(out)["tasks"][version]
        scores[model] = {k: v["value"] for k, v in entry["metrics"].items()}
        assert set(entry["skipped"]) <= {"lpips", "fvd"}  # no weights offline; horizon < 16
    for blind in ("copy-last", "random-action"):
        assert scores[blind]["action_sensitivity"] == 0.0
        assert scores[blind]["delta_psnr"] == 0.0
    assert scores[SHIFT]["action_sensitivity"] > 0.02
    assert scores[SHIFT]["delta_psnr"] > 10
    assert scores[SHIFT]["psnr"] > scores["copy-last"]["psnr"] + 20
    # random-action plays back another recording's real motion, which differs from copy-last
    assert scores["random-action"]["psnr"] != scores["copy-last"]["psnr"]
    # the CI gate reads these runs unchanged: the action-blind model regresses on psnr
    gate = ["compare", str(tmp_path / "ShiftModel"), str(tmp_path / "copy-last"), "--gate"]
    assert main([*gate, "--resamples", "200"]) == 1


def test_hash_covers_the_data_and_a_changed_byte_is_caught(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    root = make_lerobot_v2(tmp_path / "ds", lengths=(13, 13))
    assert _import("lerobot", root, tmp_path / "a", "--name", "t") == 0
    before = load_task(tmp_path / "a" / "t.yaml")
    data = root / "data/chunk-000/episode_000001.parquet"
    table = pq.read_table(data).to_pydict()
    table["action"][5] = [table["action"][5][0] + 1.0, table["action"][5][1]]
    import pyarrow as pa

    pq.write_table(pa.table(table, schema=pq.read_schema(data)), data)
    # the old task refuses the changed file, naming it
    with pytest.raises(DataError, match=r"episode_000001\.parquet: the file changed"):
        for i in range(len(episode_source(before))):
            episode_source(before).episode(i)
    assert _import("lerobot", root, tmp_path / "b", "--name", "t") == 0
    assert load_task(tmp_path / "b" / "t.yaml").hash != before.hash
    # where the data lives does not enter the hash
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    assert _import("lerobot", moved, tmp_path / "c", "--name", "t") == 0
    assert load_task(tmp_path / "c" / "t.yaml").hash == load_task(tmp_path / "b" / "t.yaml").hash


def _refused(capsys: pytest.CaptureFixture[str], kind: str, root: Path, out: Path, *extra: str):
    assert _import(kind, root, out, *extra) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert not list(out.glob("*.yaml")) if out.exists() else True  # nothing marked complete
    return err


def test_corrupt_and_inconsistent_lerobot_data_is_refused_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def fresh(name: str, version: str = "v2") -> Path:
        make = make_lerobot_v2 if version == "v2" else make_lerobot_v3
        return make(tmp_path / name, lengths=(12, 12, 12))

    root = fresh("corrupt-parquet")
    (root / "data/chunk-000/episode_000002.parquet").write_bytes(b"not parquet at all")
    err = _refused(capsys, "lerobot", root, tmp_path / "o1")
    assert "episode_000002.parquet" in err and "parquet" in err

    root = fresh("corrupt-video", "v3")
    video = root / f"videos/{CAMERA}/chunk-000/file-000.mp4"
    video.write_bytes(video.read_bytes()[:200])
    err = _refused(capsys, "lerobot", root, tmp_path / "o2")
    assert "file-000.mp4" in err

    root = fresh("camera")
    err = _refused(capsys, "lerobot", root, tmp_path / "o3", "--camera", "observation.images.wrist")
    assert "info.json" in err and "observation.images.wrist" in err and CAMERA in err

    root = fresh("frames")  # a video one frame short of its parquet rows
    frames, _ = trajectory(101, 11)
    _write_video(root / f"videos/chunk-000/{CAMERA}/episode_000001.mp4", frames)
    err = _refused(capsys, "lerobot", root, tmp_path / "o4")
    assert "episode_000001.mp4" in err and "expected 12 frames" in err and "decoded 11" in err

    root = fresh("fps")  # one episode's video at another frame rate
    frames, _ = trajectory(100, 12)
    _write_video(root / f"videos/chunk-000/{CAMERA}/episode_000000.mp4", frames, fps=2 * FPS)
    err = _refused(capsys, "lerobot", root, tmp_path / "o5")
    assert "episode_000000.mp4" in err and f"expected {FPS} fps" in err

    root = fresh("stamps")  # one episode's parquet timestamps at twice the dataset's fps
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = root / "data/chunk-000/episode_000002.parquet"
    table = pq.read_table(data).to_pydict()
    table["timestamp"] = [i / (2 * FPS) for i in range(12)]
    pq.write_table(pa.table(table, schema=pq.read_schema(data)), data)
    err = _refused(capsys, "lerobot", root, tmp_path / "o7")
    assert (
        "episode_000002.parquet" in err and f"({FPS} fps" in err and f"found {2 * FPS} fps" in err
    )

    root = fresh("count")  # info.json counts another number of episodes than the metadata
    info = json.loads((root / "meta/info.json").read_text())
    (root / "meta/info.json").write_text(json.dumps({**info, "total_episodes": 4}))
    err = _refused(capsys, "lerobot", root, tmp_path / "o8")
    assert "episodes.jsonl" in err and "expected 4 episodes" in err and "lists 3" in err

    root = fresh("rows")  # episode metadata that disagrees with the parquet rows
    lines = (root / "meta/episodes.jsonl").read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), "length": 13})
    (root / "meta/episodes.jsonl").write_text("\n".join(lines) + "\n")
    err = _refused(capsys, "lerobot", root, tmp_path / "o6")
    assert "episode_000001.parquet" in err and "expected 13 rows" in err and "found 12" in err


def test_videos_with_json_csv_and_npy_actions(tmp_path: Path) -> None:
    for kind in ("json", "csv", "npy"):
        root = make_videos(tmp_path / kind, kind=kind)
        assert _import("videos", root, tmp_path / f"t-{kind}") == 0
        task = load_task(tmp_path / f"t-{kind}" / f"{kind}.yaml")
        ep = episode_source(task).episode(1)
        _, actions = trajectory(201, 14)
        np.testing.assert_array_equal([a.vector for a in ep.actions], actions[3:11])
    out = tmp_path / "run"
    evaluate(SHIFT, out=out, tasks=[str(tmp_path / "t-npy" / "npy.yaml")], progress=False)
    metrics = validate_results(out)["tasks"]["npy"]["metrics"]
    assert metrics["psnr"]["value"] > 40 and metrics["action_sensitivity"]["value"] > 0.02


def test_videos_refuse_mixed_fps_and_wrong_action_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_videos(tmp_path / "fps", lengths=(12, 12))
    _write_video(root / "clip1.mp4", trajectory(201, 12)[0], fps=2 * FPS)
    err = _refused(capsys, "videos", root, tmp_path / "o1")
    assert "clip1.mp4" in err and f"expected {FPS} fps" in err and f"found {2 * FPS}" in err

    root = make_videos(tmp_path / "rows", lengths=(12, 12))
    (root / "clip0.actions.json").write_text(json.dumps([[1, 0]] * 5))
    err = _refused(capsys, "videos", root, tmp_path / "o2")
    assert "clip0.actions.json" in err and "found 5" in err

    root = make_videos(tmp_path / "npy", lengths=(12, 12), kind="npy")
    (root / "clip1.actions.npy").write_bytes(b"")
    err = _refused(capsys, "videos", root, tmp_path / "o3")
    assert "clip1.actions.npy" in err


def test_import_videos_output_becomes_a_scored_task(tmp_path: Path) -> None:
    src = make_videos(tmp_path / "src", lengths=(13, 13))
    for p in src.glob("*.actions.json"):
        p.unlink()
    lines = [{"video": f"clip{i}.mp4", "actions": [f"move {i}"] * 12} for i in range(2)]
    (src / "actions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    episodes = tmp_path / "episodes"
    assert main(["data", "import-videos", str(src), "--out", str(episodes)]) == 0
    assert _import("episodes", episodes, tmp_path / "tasks", "--name", "imp") == 0
    task = load_task(tmp_path / "tasks" / "imp.yaml")
    assert task.data is not None and task.data.kind == "episodes"
    assert episode_source(task).episode(0).actions[0].text == "move 0"
    out = tmp_path / "run"
    assert main(["evaluate", "--model", "copy-last", "--tasks", str(tmp_path / "tasks/imp.yaml"),
                 "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    entry = validate_results(out)["tasks"]["imp"]
    assert entry["n_episodes"] == 2 and 0 < entry["metrics"]["psnr"]["value"] < 100
    assert entry["metrics"]["action_sensitivity"]["value"] == 0.0


def test_hub_id_is_fetched_once_at_a_pinned_revision(
    lerobot: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    calls = []
    snapshot = tmp_path / "hub" / ("ab" * 20)

    def fake_download(**kw):
        calls.append(kw)
        if not snapshot.exists():
            if kw.get("local_files_only"):
                raise FileNotFoundError("not in the cache")
            shutil.copytree(lerobot["v3"], snapshot)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    monkeypatch.setenv("PANBENCH_HOME", str(tmp_path / "home"))
    args = ("--revision", "v1", "--camera", CAMERA)
    assert _import("lerobot", Path("someone/squares"), tmp_path / "t", *args) == 0
    want = {
        "repo_id": "someone/squares",
        "repo_type": "dataset",
        "revision": "v1",
        "cache_dir": str(tmp_path / "home" / "datasets"),
        "allow_patterns": ["meta/**", "data/**", f"videos/{CAMERA}/**", f"videos/*/{CAMERA}/**"],
    }
    assert calls == [{**want, "local_files_only": True}, want]  # the cache first, then the Hub
    manifest = json.loads((tmp_path / "t" / "squares.manifest.json").read_text())
    assert manifest["upstream"]["hub_id"] == "someone/squares"
    assert manifest["upstream"]["commit"] == "ab" * 20
    # a second import finds the snapshot in the cache: no download
    assert _import("lerobot", Path("someone/squares"), tmp_path / "t2", *args) == 0
    assert calls[2:] == [{**want, "local_files_only": True}]
    # the task reads the snapshot offline
    monkeypatch.setattr(huggingface_hub, "snapshot_download", None)
    task = load_task(tmp_path / "t" / "squares.yaml")
    assert task.data is not None and Path(task.data.root or "") == snapshot
    assert len(episode_source(task).episode(0).frames) == 8


def test_leaderboard_of_an_imported_task(tmp_path: Path) -> None:
    from panbench.leaderboard import build_leaderboard, init_leaderboard, submit

    root = make_videos(tmp_path / "clips", lengths=(12, 12))
    assert _import("videos", root, tmp_path / "tasks") == 0
    suite = tmp_path / "tasks" / "clips-suite.yaml"
    board = tmp_path / "board"
    init_leaderboard(board, str(suite))
    for model in ("copy-last", SHIFT):
        out = tmp_path / model.split(":")[-1]
        evaluate(model, out=out, suite=str(suite), progress=False)
        submit(out, board)
    build_leaderboard(board)
    table = (board / "leaderboard.md").read_text()
    assert table.index("ShiftModel") < table.index("copy-last")  # best first


def test_short_recordings_and_bad_options_are_refused(tmp_path: Path) -> None:
    root = make_videos(tmp_path / "short", lengths=(6, 6))
    with pytest.raises(DataError, match="at least context \\+ horizon = 12"):
        import_recorded("videos", root, tmp_path / "o", ImportOptions(test_fraction=1.0))
    from panbench.errors import ConfigError

    with pytest.raises(ConfigError, match="--horizon"):
        import_recorded("videos", root, tmp_path / "o", ImportOptions(horizon=0))
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_real_lerobot_dataset_from_a_local_path(tmp_path: Path) -> None:
    """Set PANBENCH_LEROBOT_DATASET=/path/to/dataset (and PANBENCH_LEROBOT_CAMERA if several)."""
    root = os.environ.get("PANBENCH_LEROBOT_DATASET")
    if not root:
        pytest.skip("PANBENCH_LEROBOT_DATASET is not set")
    camera = os.environ.get("PANBENCH_LEROBOT_CAMERA")
    extra = ["--camera", camera] if camera else []
    args = ["--name", "real", "--max-episodes", "8", *extra]
    assert main(["tasks", "import", "lerobot", "--root", root, "--out", str(tmp_path), *args]) == 0
    out = tmp_path / "run"
    evaluate("copy-last", out=out, tasks=[str(tmp_path / "real.yaml")], progress=False)
    assert validate_results(out)["tasks"]["real"]["n_episodes"] == 8


def test_action_sensitivity_against_plain_loops() -> None:
    from panbench.protocols.recorded import action_sensitivity

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(3, 4, 5, 3), dtype=np.uint8)
    b = rng.integers(0, 256, size=(3, 4, 5, 3), dtype=np.uint8)
    want = []
    for t in range(3):
        total = sum(
            abs(int(a[t, i, j, c]) - int(b[t, i, j, c]))
            for i in range(4)
            for j in range(5)
            for c in range(3)
        )
        want.append(total / (4 * 5 * 3) / 255)
    np.testing.assert_allclose(action_sensitivity(a, b), want, rtol=1e-12)
    assert (action_sensitivity(a, a) == 0).all()


def test_a_discrete_model_is_refused_on_vector_actions_naming_the_action(
    lerobot: dict[str, Path], tmp_path: Path
) -> None:
    from panbench.errors import ContractError

    assert _import("lerobot", lerobot["v3"], tmp_path / "t") == 0
    with pytest.raises(ContractError, match=r"takes discrete actions.*(push|wiggle) the square"):
        evaluate(
            "tests.data.recorded_fake:IndexModel",
            out=tmp_path / "run",
            tasks=[str(tmp_path / "t" / "v3.yaml")],
            progress=False,
        )


def test_every_truncated_file_of_a_v3_dataset_is_refused_naming_it(
    lerobot: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = sorted(p.relative_to(lerobot["v3"]) for p in lerobot["v3"].rglob("*") if p.is_file())
    assert len(files) == 5  # info.json, episodes and tasks metadata, data, video
    for n, rel in enumerate(files):
        root = tmp_path / f"d{n}"
        shutil.copytree(lerobot["v3"], root)
        blob = (root / rel).read_bytes()
        (root / rel).write_bytes(blob[: len(blob) // 2])
        err = _refused(capsys, "lerobot", root, tmp_path / f"o{n}")
        assert rel.name in err, (rel, err)


def test_default_split_holds_out_a_fifth_and_pairs_with_other_recordings(
    lerobot: dict[str, Path], tmp_path: Path
) -> None:
    argv = ["tasks", "import", "lerobot", "--root", str(lerobot["v3"]), "--out", str(tmp_path)]
    assert main([*argv, "--resolution", "32"]) == 0
    task = load_task(tmp_path / "v3.yaml")
    assert task.episodes.count == 1  # round(0.2 * 4) = 1 recording, one 12-frame window
    assert "action_sensitivity" in task.metrics
    manifest = json.loads((tmp_path / "v3.manifest.json").read_text())
    assert manifest["counts"] == {"recordings": 4, "held_out": 1, "windows": 1}
    assert len(manifest["files"]) == 5  # every file is hashed, held out or not
    ep = episode_source(task).episode(0)
    assert ep.alt_actions is not None and ep.alt_frames is not None
    alt = manifest["recordings"][manifest["windows"][0]["alt"]["recording"]]["id"]
    assert alt != ep.recording
    _, actions = trajectory(100 + int(alt.split("_")[-1]), 14)
    np.testing.assert_array_equal([a.vector for a in ep.alt_actions], actions[3:11])


def test_random_action_plays_back_the_paired_recording(
    lerobot: dict[str, Path], tmp_path: Path
) -> None:
    from panbench.models.baselines import RandomActionModel
    from panbench.protocols.base import ModelRunner

    assert _import("lerobot", lerobot["v2"], tmp_path) == 0
    source = episode_source(load_task(tmp_path / "v2.yaml"))
    episodes = [source.episode(i) for i in range(len(source))]
    runner = ModelRunner(RandomActionModel(), None, 32)
    state = runner.reset(episodes)
    for t in range(8):
        state, frames = runner.step(state, [e.actions[t] for e in episodes], where="test")
        for e, frame in zip(episodes, frames, strict=True):
            assert e.alt_frames is not None
            np.testing.assert_array_equal(frame, e.alt_frames[t])


def test_lerobot_image_features_stored_in_the_parquet(tmp_path: Path) -> None:
    from tests.data.recorded_fake import make_lerobot_v2_images

    root = make_lerobot_v2_images(tmp_path / "img")
    assert _import("lerobot", root, tmp_path / "t") == 0
    source = episode_source(load_task(tmp_path / "t" / "img.yaml"))
    ep = source.episode(1)
    frames, _ = trajectory(101, 13)
    # PNG is lossless: the frames are exactly the recorded ones
    np.testing.assert_array_equal(np.concatenate([ep.context_frames, ep.frames]), frames[:12])


def test_each_frame_takes_its_own_instruction_from_the_task_table(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = make_lerobot_v2(tmp_path / "ds", lengths=(12, 12))
    data = root / "data/chunk-000/episode_000000.parquet"
    table = pq.read_table(data).to_pydict()
    table["task_index"] = [0] * 6 + [1] * 6  # the instruction changes mid-episode
    pq.write_table(pa.table(table, schema=pq.read_schema(data)), data)
    assert _import("lerobot", root, tmp_path / "t", "--context", "2", "--horizon", "10") == 0
    source = episode_source(load_task(tmp_path / "t" / "ds.yaml"))
    ep = next(
        source.episode(i) for i in range(len(source)) if source.episode(i).recording.endswith("0")
    )
    texts = [a.text for a in [*ep.context_actions, *ep.actions]]
    assert texts == [TASKS[0]] * 6 + [TASKS[1]] * 5
