"""Tests for the WR-Arena importer, its manifests, the data task spec and the episode source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from panbench.cli import main
from panbench.data.sources.wr_arena import ROOT_ENV_VAR, WrArenaSource, image_to_frame
from panbench.data.wr_arena import WR_TASKS, import_wr_arena
from panbench.errors import ConfigError, DataError
from panbench.suite import SpecError, check_path, load_suite, load_task
from tests.wr_arena_fake import PLANNING, SMOOTHNESS, STEPWISE, write_fake_wr_arena, write_png


@pytest.fixture
def fake(tmp_path: Path):
    return write_fake_wr_arena(tmp_path / "WR-Arena")


def test_import_counts_match_the_upstream_files(fake, tmp_path: Path) -> None:
    out = tmp_path / "tasks"
    report = import_wr_arena(fake.root, out)
    assert [t.task for t in report.tasks] == list(WR_TASKS)
    for t in report.tasks:
        assert t.listed == fake.listed[t.task]
        assert t.missing == fake.missing[t.task]
        assert t.usable == t.listed - t.missing
        manifest = json.loads(t.manifest.read_text())
        assert manifest["counts"] == {"listed": t.listed, "usable": t.usable, "skipped": t.missing}
        assert len(manifest["samples"]) == t.usable
        task = load_task(t.yaml)
        assert task.episodes.count == t.usable
        assert task.data is not None and task.data.root == str(fake.root.resolve())
    assert {p.name for p in report.suites} == {"wr-arena.yaml", "wr-arena-judge-free.yaml"}
    assert [t.name for t in load_suite(out / "wr-arena-judge-free.yaml").tasks] == [
        "wr-smoothness",
        "wr-stepwise",
        "wr-structured-planning",
    ]
    assert not check_path(out).problems


def test_missing_image_is_listed_as_skipped(fake, tmp_path: Path) -> None:
    report = import_wr_arena(fake.root, tmp_path / "t", tasks=["wr-smoothness"])
    manifest = json.loads(report.tasks[0].manifest.read_text())
    assert [s["id"] for s in manifest["skipped"]] == ["sm_002"]
    assert manifest["skipped"][0]["missing"] == [
        f"{SMOOTHNESS}/static/photorealistic/outdoor/diverse/002_1.png"
    ]


def test_manifest_records_paths_relative_to_root_and_sha256(fake, tmp_path: Path) -> None:
    import hashlib

    report = import_wr_arena(fake.root, tmp_path / "t", tasks=["wr-stepwise"])
    sample = json.loads(report.tasks[0].manifest.read_text())["samples"][0]
    assert sample["image"]["path"] == f"{STEPWISE}/sources/s0_source_0.png"
    for image in [sample["image"], *sample["choices"]]:
        blob = (fake.root / image["path"]).read_bytes()
        assert image["sha256"] == hashlib.sha256(blob).hexdigest()
    assert sample["answer"] == fake.stepwise_answers[0]


def test_planning_goal_images_come_from_the_vjepa2_file(fake, tmp_path: Path) -> None:
    report = import_wr_arena(fake.root, tmp_path / "t", tasks=["wr-structured-planning"])
    samples = json.loads(report.tasks[0].manifest.read_text())["samples"]
    assert [s["goal_image"]["path"] for s in samples] == [
        f"{PLANNING}/goal_state/0.png",
        f"{PLANNING}/goal_state/1.png",
    ]
    assert [s["max_action"] for s in samples] == [2, 3]
    assert load_task(report.tasks[0].yaml).episodes.horizon == 3


def test_task_hash_changes_when_an_image_changes(fake, tmp_path: Path) -> None:
    out = tmp_path / "t"
    import_wr_arena(fake.root, out, tasks=["wr-stepwise"])
    before = load_task(out / "wr-stepwise.yaml")
    write_png(fake.root / STEPWISE / "image_choices" / "s1_image_choices_3.png", seed=999)
    # Until re-imported, reading the changed image is refused, naming the file.
    with pytest.raises(DataError, match="changed since import"):
        for i in range(before.episodes.count):
            WrArenaSource(before).episode(i)
    import_wr_arena(fake.root, out, tasks=["wr-stepwise"])
    after = load_task(out / "wr-stepwise.yaml")
    assert after.hash != before.hash


def test_root_does_not_enter_the_hash_and_can_be_overridden(
    fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    out = tmp_path / "t"
    import_wr_arena(fake.root, out, tasks=["wr-stepwise"])
    task = load_task(out / "wr-stepwise.yaml")
    moved = tmp_path / "elsewhere"
    shutil.move(str(fake.root), moved)
    with pytest.raises(DataError, match=ROOT_ENV_VAR):
        WrArenaSource(task)
    monkeypatch.setenv(ROOT_ENV_VAR, str(moved))
    episode = WrArenaSource(task).episode(0)
    assert episode.context_frames.shape == (1, 256, 256, 3)
    relocated = task.with_overrides({"data": {"root": str(moved)}})
    assert relocated.hash == task.hash


def test_missing_datasets_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="datasets/ folder of a WR-Arena checkout"):
        import_wr_arena(tmp_path, tmp_path / "out")


def test_malformed_json_names_the_file_and_line(fake, tmp_path: Path) -> None:
    path = fake.root / STEPWISE / "samples.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:-5]
    path.write_text("\n".join(lines))
    with pytest.raises(DataError, match=rf"{path}:3: malformed JSON"):
        import_wr_arena(fake.root, tmp_path / "t", tasks=["wr-stepwise"])


def test_wrong_field_names_the_sample_and_what_was_expected(fake, tmp_path: Path) -> None:
    path = fake.root / SMOOTHNESS / "samples.json"
    data = json.loads(path.read_text())
    data[1]["prompt_list"] = "one prompt"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"sample 1 \(sm_001\): field 'prompt_list': expected list"):
        import_wr_arena(fake.root, tmp_path / "t", tasks=["wr-smoothness"])
    data[1]["prompt_list"] = ["a"]
    data[0]["best"] = 1
    path.write_text("{not json")
    with pytest.raises(DataError, match=rf"{path}:1: malformed JSON.*expected smoothness samples"):
        import_wr_arena(fake.root, tmp_path / "t", tasks=["wr-smoothness"])


def test_out_of_range_best_is_refused(fake, tmp_path: Path) -> None:
    path = fake.root / STEPWISE / "samples.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[0]["best"] = 5
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(
        DataError, match=r"field 'best': expected the 1-based index .* 1\.\.4, got 5"
    ):
        import_wr_arena(fake.root, tmp_path / "t", tasks=["wr-stepwise"])


def test_unknown_task_name_suggests(fake, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean: wr-stepwise"):
        import_wr_arena(fake.root, tmp_path / "t", tasks=["wr-stepwize"])


def test_fidelity_groups_agent_and_environment(fake, tmp_path: Path) -> None:
    report = import_wr_arena(fake.root, tmp_path / "t", tasks=["wr-action-fidelity"])
    task = load_task(report.tasks[0].yaml)
    source = WrArenaSource(task)
    groups = [s["group"] for s in source.samples]
    assert groups == (["agent"] * 3 + ["environment"] * 3) * 2
    env_episode = source.episode(3)
    assert [a.kind for a in env_episode.actions] == ["intervention"] * 3
    assert all(not a.has_index for a in env_episode.actions)
    assert list(task.options["rubric"]["scale"]) == [0, 3]


def test_episode_hashes_are_unique_and_stable(fake, tmp_path: Path) -> None:
    report = import_wr_arena(fake.root, tmp_path / "t")
    for t in report.tasks:
        task = load_task(t.yaml)
        source = WrArenaSource(task)
        hashes = [source.episode(i).hash for i in range(task.episodes.count)]
        assert len(set(hashes)) == len(hashes)
        assert hashes == [WrArenaSource(task).episode(i).hash for i in range(len(hashes))]


# ----------------------------------------------------------------------------- the aspect rule
def _image(tmp_path: Path, arr: np.ndarray) -> Path:
    path = tmp_path / "im.png"
    Image.fromarray(arr).save(path)
    return path


def test_crop_keeps_the_centred_square(tmp_path: Path) -> None:
    arr = np.zeros((4, 8, 3), dtype=np.uint8)
    arr[:, 2:6] = 200  # the centred 4x4 square
    out = image_to_frame(_image(tmp_path, arr), 4, "crop")
    assert out.shape == (4, 4, 3) and (out == 200).all()


def test_pad_centres_on_black(tmp_path: Path) -> None:
    arr = np.full((2, 4, 3), 90, dtype=np.uint8)
    out = image_to_frame(_image(tmp_path, arr), 4, "pad")
    assert (out[0] == 0).all() and (out[3] == 0).all() and (out[1:3] == 90).all()


def test_squash_uses_the_whole_image(tmp_path: Path) -> None:
    arr = np.zeros((4, 8, 3), dtype=np.uint8)
    arr[:, :4] = 255  # left half white: after squashing, still half the square, all rows
    out = image_to_frame(_image(tmp_path, arr), 4, "squash").astype(float)
    assert out.shape == (4, 4, 3)
    assert (out[:, 0] == 255).all() and (out[:, 3] == 0).all()
    assert out.mean() == pytest.approx(127.5, abs=1.0)  # nothing cropped away


def test_rgba_becomes_rgb(tmp_path: Path) -> None:
    arr = np.full((6, 6, 4), 255, dtype=np.uint8)
    arr[..., :3] = 17
    out = image_to_frame(_image(tmp_path, arr), 6)
    assert out.shape == (6, 6, 3) and (out == 17).all()


# ----------------------------------------------------------------------------- the task spec
def _task_yaml(tmp_path: Path, fake) -> Path:
    import_wr_arena(fake.root, tmp_path / "t", tasks=["wr-stepwise"])
    return tmp_path / "t" / "wr-stepwise.yaml"


def test_bad_data_specs_name_file_and_line(fake, tmp_path: Path) -> None:
    path = _task_yaml(tmp_path, fake)
    text = path.read_text()
    cases = [
        ("aspect: crop", "aspect: stretch", "expected one of crop, pad, squash for data.aspect"),
        ("kind: wr-arena", "kind: wr-arna", "unknown data kind 'wr-arna'"),
        ("manifest: wr-stepwise.manifest.json", "manifest: 3", "expected the path of a .json"),
        ("manifest_sha256: ", "manifest_sha256: x", "expected 64 lowercase hex digits"),
    ]
    lines = text.splitlines()
    for old, new, fragment in cases:
        bad = tmp_path / "bad.yaml"
        line = next(i for i, x in enumerate(lines, start=1) if old in x)
        changed = "\n".join(x.replace(old, new) if i == line else x for i, x in enumerate(lines, 1))
        if old == "manifest_sha256: ":
            changed = "\n".join(
                (x.split(":")[0] + ": x") if i == line else x for i, x in enumerate(lines, 1)
            )
        bad.write_text(changed)
        with pytest.raises(SpecError) as err:
            load_task(bad)
        problem = err.value.problems[0]
        assert (problem.file, problem.line) == (str(bad), line), problem
        assert fragment in problem.message


def test_data_and_env_belong_to_their_protocols(fake, tmp_path: Path) -> None:
    path = _task_yaml(tmp_path, fake)
    data = yaml.safe_load(path.read_text())
    no_data = {k: v for k, v in data.items() if k != "data"}
    bad = tmp_path / "nodata.yaml"
    bad.write_text(yaml.safe_dump(no_data))
    with pytest.raises(SpecError, match=r"missing required key 'data'.*wr_stepwise"):
        load_task(bad)
    env_task = dict(no_data, env={"name": "shapes"})
    bad.write_text(yaml.safe_dump(env_task))
    with pytest.raises(SpecError, match="unknown key 'env'"):
        load_task(bad)
    rollout = dict(data, protocol="rollout", metrics=["psnr"], headline="psnr")
    bad.write_text(yaml.safe_dump(rollout))
    with pytest.raises(SpecError, match="unknown key 'data'"):
        load_task(bad)


def test_changed_manifest_is_reported_by_validate(fake, tmp_path: Path) -> None:
    path = _task_yaml(tmp_path, fake)
    manifest = path.parent / "wr-stepwise.manifest.json"
    manifest.write_text(manifest.read_text().replace('"best"', '"best"') + " ")
    problems = check_path(path).problems
    assert len(problems) == 1 and "changed after import" in problems[0].message


def test_cli_import_prints_counts(fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    code = main(["tasks", "import", "wr-arena", "--root", str(fake.root), "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "wr-smoothness: 1 of 3 samples skipped for a missing image" in text
    assert (out / "wr-stepwise.yaml").is_file() and (out / "wr-arena.yaml").is_file()
    code = main(["tasks", "import", "wr-arena", "--root", str(tmp_path), "--out", str(out)])
    assert code == 2
    assert "datasets/ folder" in capsys.readouterr().err
