"""Tests for panbench.suite: YAML task/suite specs, include, validation with lines, hashing, CLI."""

from __future__ import annotations

import pickle
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panbench import suite as suite_mod
from panbench.cli import main
from panbench.envs import ENVS
from panbench.errors import ConfigError, UnknownNameError
from panbench.suite import (
    EnvSpec,
    EpisodeSpec,
    SpecError,
    SpecProblem,
    TaskSpec,
    check_path,
    list_suites,
    list_tasks,
    load_suite,
    load_task,
    shipped_tasks_dir,
    validate_path,
)
from panbench.suite import files as suite_files

FAKE = "fake-spec-env"

TASK = """\
task: sim
version: 1
description: a task for tests
protocol: rollout
env:
  name: fake-spec-env
  resolution: 64
  kwargs: {speed: 2}
episodes:
  count: 8
  seed: 0
  context: 2
  horizon: 8
  policy: agent
metrics: [action_following, psnr]
headline: action_following
options: {track_px: 1}
"""


class FakeEnv:
    """Stands in for a real env: specs only need its name, version and constructor options."""

    name = FAKE
    description = "a fake env for spec tests"
    version = "1"

    def __init__(self, resolution: int = 64, speed: int = 1) -> None:
        if speed < 0:
            raise ConfigError(f"speed must be >= 0, got {speed}")
        self.resolution = resolution


@pytest.fixture(autouse=True)
def fake_env() -> Iterator[type[FakeEnv]]:
    ENVS.register(FAKE, FakeEnv, override=True)
    yield FakeEnv
    ENVS.unregister(FAKE)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path, **kwargs: Any) -> list[SpecProblem]:
    with pytest.raises(SpecError) as info:
        load_task(path, **kwargs)
    return info.value.problems


def only_problem(path: Path, **kwargs: Any) -> SpecProblem:
    problems = problems_of(path, **kwargs)
    assert len(problems) == 1, problems
    return problems[0]


# ============================================================================ loading
def test_load_task_by_name_parses_every_field(tmp_path: Path) -> None:
    write(tmp_path, "sim.yaml", TASK)
    task = load_task("sim", search_paths=[tmp_path])
    assert task == TaskSpec(
        name="sim",
        version="1",
        protocol="rollout",
        env=EnvSpec(FAKE, 64, {"speed": 2}),
        episodes=EpisodeSpec(count=8, seed=0, context=2, horizon=8, policy="agent"),
        metrics=("action_following", "psnr"),
        headline="action_following",
        description="a task for tests",
        options={"track_px": 1},
        source=str(tmp_path / "sim.yaml"),
    )


def test_defaults_apply_and_name_is_found_by_task_key(tmp_path: Path) -> None:
    write(
        tmp_path,
        "some-file.yaml",
        f"""\
        task: minimal
        version: "2.1"
        protocol: choice
        env: {{name: {FAKE}}}
        episodes: {{count: 3}}
        metrics: [choice_accuracy]
        headline: choice_accuracy
        """,
    )
    task = load_task("minimal", search_paths=[tmp_path])
    assert task.version == "2.1"
    assert task.env == EnvSpec(FAKE)
    assert task.episodes == EpisodeSpec(count=3, seed=0, context=2, horizon=8, policy="random")
    assert task.description == "" and dict(task.options) == {}
    assert load_task("minimal", search_paths=str(tmp_path)) == task  # one folder as a string


def test_load_task_by_path_and_to_dict_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path, "sim.yaml", TASK)
    task = load_task(path)
    again = TaskSpec.from_dict(task.to_dict(), source=task.source)
    assert again == task
    assert again.hash == task.hash


def test_unknown_task_name_suggests_close_names(tmp_path: Path) -> None:
    write(tmp_path, "sim.yaml", TASK)
    with pytest.raises(UnknownNameError, match=r"Unknown task 'smi'.*Did you mean: sim\?"):
        load_task("smi", search_paths=[tmp_path])


def test_missing_task_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_task(tmp_path / "nope.yaml")


# ============================================================================ include
def test_include_chain_deep_merges_and_lists_replace(tmp_path: Path) -> None:
    write(tmp_path, "_base.yaml", TASK.replace("task: sim\n", ""))
    write(
        tmp_path,
        "mid.yaml",
        """\
        task: mid
        include: _base
        episodes: {count: 4}
        metrics: [psnr, ssim]
        headline: psnr
        """,
    )
    write(
        tmp_path,
        "sub/leaf.yaml",
        """\
        task: leaf
        include: ../mid.yaml
        env: {kwargs: {extra: true}}
        episodes: {horizon: 16}
        """,
    )
    leaf = load_task("leaf", search_paths=[tmp_path / "sub", tmp_path])
    assert leaf.name == "leaf"
    assert leaf.env == EnvSpec(FAKE, 64, {"speed": 2, "extra": True})
    assert leaf.episodes == EpisodeSpec(count=4, seed=0, context=2, horizon=16, policy="agent")
    assert leaf.metrics == ("psnr", "ssim")  # the list replaced, it did not append
    assert leaf.headline == "psnr"
    assert leaf.description == "a task for tests"
    assert load_task("mid", search_paths=[tmp_path]).episodes.horizon == 8


def test_variant_does_not_inherit_the_task_name(tmp_path: Path) -> None:
    write(tmp_path, "sim.yaml", TASK)
    path = write(tmp_path, "variant.yaml", "include: sim\nepisodes: {count: 2}\n")
    problem = only_problem(path, search_paths=[tmp_path])
    assert problem.file == str(path) and problem.line == 1
    assert "missing required key 'task'" in problem.message
    assert "does not inherit" in problem.message


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"a.yaml": "task: a\ninclude: a\n"}, "include cycle: a.yaml -> a.yaml"),
        (
            {
                "a.yaml": "task: a\ninclude: b\n",
                "b.yaml": "task: b\ninclude: c\n",
                "c.yaml": "task: c\ninclude: a.yaml\n",
            },
            "include cycle: a.yaml -> b.yaml -> c.yaml -> a.yaml",
        ),
    ],
)
def test_include_cycles_are_reported_with_the_chain(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    problem = only_problem(tmp_path / "a.yaml", search_paths=[tmp_path])
    assert expected in problem.message
    assert problem.line == 2  # the include line of the file that closes the cycle


def test_missing_include_points_at_the_include_line(tmp_path: Path) -> None:
    write(tmp_path, "sim.yaml", TASK)
    path = write(tmp_path, "v.yaml", "task: v\n\ninclude: smi\n")
    problem = only_problem(path, search_paths=[tmp_path])
    assert (problem.line, "Did you mean: sim?" in problem.message) == (3, True)


def test_error_in_included_file_points_into_that_file(tmp_path: Path) -> None:
    base = write(tmp_path, "sim.yaml", TASK.replace("count: 8", "count: -1"))
    path = write(tmp_path, "v.yaml", "task: v\ninclude: sim\n")
    problem = only_problem(path, search_paths=[tmp_path])
    assert (problem.file, problem.line) == (str(base), 10)
    assert "expected an integer >= 1 for episodes.count, got -1" in problem.message


def test_variant_overriding_a_list_item_reports_its_own_lines(tmp_path: Path) -> None:
    write(tmp_path, "sim.yaml", TASK)
    path = write(tmp_path, "v.yaml", "task: v\ninclude: sim\nmetrics:\n  - psnr\n  - 7\n")
    problems = problems_of(path, search_paths=[tmp_path])
    assert [(p.file, p.line) for p in problems] == [
        (str(tmp_path / "sim.yaml"), 16),
        (str(path), 5),
    ]
    assert "headline 'action_following' is not one of metrics (psnr)" in problems[0].message
    assert "metrics[1], got 7" in problems[1].message


# ============================================================================ validation lines
@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        (
            "metrics: [",
            "metricz: [",
            15,
            "unknown key 'metricz' in task (expected one of: task, version, description, "
            "protocol, env, episodes, metrics, headline, options, include). Did you mean: metrics?",
        ),
        ("  seed: 0", "  sed: 0", 11, "unknown key 'sed' in episodes"),
        ("count: 8", "count: ten", 10, "expected an integer >= 1 for episodes.count, got 'ten'"),
        ("horizon: 8", "horizon: 0", 13, "expected an integer >= 1 for episodes.horizon, got 0"),
        ("seed: 0", "seed: true", 11, "expected an integer >= 0 for episodes.seed, got true"),
        ("resolution: 64", "resolution: 6.4", 7, "expected an integer >= 1 for env.resolution"),
        ("  name: fake-spec-env\n", "", 5, "missing required key 'name' in env"),
        ("headline: action_following", "", 1, "missing required key 'headline' in task"),
        ("headline: action_following", "headline: psnrr", 16, "headline 'psnrr' is not one of"),
        ("protocol: rollout", "protocol: rolout", 4, "unknown protocol 'rolout'"),
        ("name: fake-spec-env", "name: fake-spec-evn", 6, "unknown env 'fake-spec-evn'"),
        ("kwargs: {speed: 2}", "kwargs: [speed]", 8, "expected a mapping for env.kwargs"),
        ("options: {track_px: 1}", "options: {track_px: .nan}", 17, "expected a finite number"),
        ("options: {track_px: 1}", "options: {when: 2024-01-01}", 17, "got date"),
        ("track_px: 1}", "track_px: fast}", 17, "expected track_px to be a number, but got 'fast'"),
        ("track_px: 1}", "trak_px: 1}", 17, "unknown rollout option 'trak_px'"),
        ("psnr]", "choice_accuracy]", 15, "expected a metric protocol 'rollout' reports"),
        ("version: 1", "version:", 2, "expected a version string or number for version"),
        ("metrics: [action_following, psnr]", "metrics: []", 15, "non-empty list"),
        ("psnr]", "psnr, psnr]", 15, "duplicate metric 'psnr'"),
        ("task: sim", "task: two words", 1, "expected a name of letters"),
        ("  policy: agent", "  policy: ''", 14, "expected a policy name"),
        (
            "options: {track_px: 1}",
            "options: {track_px: 1}\nprotocol: choice",
            18,
            "duplicate key 'protocol' (first set on line 4)",
        ),
    ],
)
def test_each_problem_names_file_and_line(
    tmp_path: Path, old: str, new: str, line: int, fragment: str
) -> None:
    assert old in TASK
    path = write(tmp_path, "sim.yaml", TASK.replace(old, new, 1))
    problem = only_problem(path)
    assert (problem.file, problem.line) == (str(path), line), problem
    assert fragment in problem.message
    assert str(problem).startswith(f"{path}:{line}: ")


def test_unknown_env_suggests_close_names(tmp_path: Path) -> None:
    path = write(tmp_path, "sim.yaml", TASK.replace("name: fake-spec-env", "name: fake-spec-evn"))
    assert f"Did you mean: {FAKE}?" in only_problem(path).message


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("task: sim\nenv: {name: [\n", 3, "malformed YAML"),
        ("task: sim\n  version: 1\n", 2, "malformed YAML: mapping values are not allowed here"),
        ("task: sim\nmetrics: [a, b\nheadline: a\n", 3, "malformed YAML"),
        ("- just\n- a list\n", 1, "expected a mapping of task keys at the top level, got a list"),
        ("", 1, "expected a mapping of task keys at the top level, got nothing"),
    ],
)
def test_malformed_yaml_becomes_file_and_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, "bad.yaml", text)
    problem = only_problem(path)
    assert (problem.file, problem.line) == (str(path), line)
    assert fragment in problem.message


def test_all_problems_are_reported_at_once_in_line_order(tmp_path: Path) -> None:
    text = TASK.replace("count: 8", "count: ten").replace("metrics: [", "metricz: [")
    path = write(tmp_path, "sim.yaml", text.replace("protocol: rollout", "protocol: x"))
    problems = problems_of(path)
    assert [p.line for p in problems] == [4, 10, 15]
    with pytest.raises(SpecError, match=r"^3 problems in task specs:\n"):
        load_task(path)


def test_python_built_specs_are_validated_too() -> None:
    with pytest.raises(SpecError, match=r"expected an integer >= 1 for episodes\.count, got 0"):
        EpisodeSpec(count=0)
    with pytest.raises(SpecError, match="unknown env 'nope'"):
        EnvSpec("nope")
    with pytest.raises(SpecError, match="headline 'ssim' is not one of metrics"):
        TaskSpec("t", "1", "rollout", EnvSpec(FAKE), EpisodeSpec(1), ("psnr",), "ssim")
    assert (
        TaskSpec("t", 3, "rollout", EnvSpec(FAKE), EpisodeSpec(1), ["psnr"], "psnr").version == "3"
    )  # type: ignore[arg-type]


# ============================================================================ hashing
def test_hash_is_stable_across_key_order_whitespace_and_style(tmp_path: Path) -> None:
    a = load_task(write(tmp_path, "a.yaml", TASK))
    b = load_task(
        write(
            tmp_path,
            "b.yaml",
            f"""\
            # the same task, written differently
            options:   {{ track_px: 1 }}
            headline: "action_following"
            metrics:
              - action_following
              - psnr
            episodes: {{policy: agent, horizon: 8, context: 2, seed: 0, count: 8}}
            env: {{kwargs: {{speed: 2}}, resolution: 64, name: {FAKE}}}
            protocol: rollout
            description: described differently
            version: "1"
            task: sim
            """,
        )
    )
    assert a.source != b.source and a.description != b.description
    assert a.hash == b.hash
    assert len(a.hash) == 64 and int(a.hash, 16) >= 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"task": "other"},
        {"version": "2"},
        {"env": {"resolution": 32}},
        {"env": {"kwargs": {"speed": 3}}},
        {"episodes": {"count": 9}},
        {"episodes": {"seed": 1}},
        {"episodes": {"context": 1}},
        {"episodes": {"horizon": 9}},
        {"episodes": {"policy": "random"}},
        {"metrics": ["action_following", "psnr", "ssim"]},
        {"metrics": ["psnr", "action_following"]},
        {"headline": "psnr"},
        {"options": {"track_px": 2}},
    ],
)
def test_hash_changes_with_every_scoring_field(tmp_path: Path, overrides: dict[str, Any]) -> None:
    task = load_task(write(tmp_path, "sim.yaml", TASK))
    assert task.with_overrides(overrides).hash != task.hash


def test_hash_changes_with_the_protocol(tmp_path: Path) -> None:
    task = load_task(write(tmp_path, "sim.yaml", TASK.replace("options: {track_px: 1}\n", "")))
    other = {"protocol": "choice", "metrics": ["choice_accuracy"], "headline": "choice_accuracy"}
    assert task.with_overrides(other).hash != task.hash


def test_description_and_source_do_not_enter_the_hash(tmp_path: Path) -> None:
    task = load_task(write(tmp_path, "sim.yaml", TASK))
    other = TaskSpec.from_dict({**task.to_dict(), "description": "new words"}, source="x.yaml")
    assert other.hash == task.hash


def test_env_version_enters_the_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_env: type[FakeEnv]
) -> None:
    task = load_task(write(tmp_path, "sim.yaml", TASK))
    before = task.hash
    assert task.hash_payload()["env"]["version"] == "1"
    monkeypatch.setattr(fake_env, "version", "2")
    assert task.hash != before

    class FakeEnvV3(FakeEnv):
        version = "3"

    ENVS.register(FAKE, FakeEnvV3, override=True)
    v3 = task.hash
    assert v3 not in (before,) and task.hash_payload()["env"]["version"] == "3"
    ENVS.register(FAKE, fake_env, override=True)
    monkeypatch.undo()
    assert task.hash == before


def test_hash_of_an_env_that_cannot_be_imported_is_a_clear_error(tmp_path: Path) -> None:
    ENVS.register("broken-spec-env", "panbench.no_such_module:Env", override=True)
    try:
        task = load_task(write(tmp_path, "sim.yaml", TASK.replace(FAKE, "broken-spec-env")))
        with pytest.raises(ConfigError, match="env 'broken-spec-env' could not be loaded"):
            _ = task.hash
        problems = validate_path(tmp_path / "sim.yaml")
        assert [(p.line, "could not be loaded" in p.message) for p in problems] == [(6, True)]
    finally:
        ENVS.unregister("broken-spec-env")


# ============================================================================ overrides, immutability
def test_with_overrides_deep_merges_and_revalidates(tmp_path: Path) -> None:
    task = load_task(write(tmp_path, "sim.yaml", TASK))
    short = task.with_overrides({"episodes": {"count": 2}, "env": {"kwargs": {"new": 1}}})
    assert short.episodes == EpisodeSpec(count=2, seed=0, context=2, horizon=8, policy="agent")
    assert dict(short.env.kwargs) == {"speed": 2, "new": 1}
    assert task.episodes.count == 8  # the original is untouched
    with pytest.raises(SpecError, match=r"<overrides of task 'sim'>: unknown key 'cont' .*count"):
        task.with_overrides({"episodes": {"cont": 2}})


def test_specs_are_immutable_and_pickle(tmp_path: Path) -> None:
    task = load_task(write(tmp_path, "sim.yaml", TASK))
    with pytest.raises(TypeError, match="immutable"):
        task.options["track_px"] = 5  # type: ignore[index]
    with pytest.raises(TypeError, match="immutable"):
        task.env.kwargs.update(speed=9)  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        task.name = "x"  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(task))
    assert again == task and again.hash == task.hash


# ============================================================================ suites
def make_tree(root: Path) -> Path:
    write(root, "sim.yaml", TASK)
    write(root, "long.yaml", "task: long\ninclude: sim\nepisodes: {horizon: 32}\n")
    return write(
        root,
        "suites/quick.yaml",
        """\
        suite: quick
        version: 1
        description: two tasks
        tasks:
          - sim
          - task: long
            overrides: {episodes: {count: 4, horizon: 16}}
        """,
    )


def test_suite_loads_tasks_with_overrides(tmp_path: Path) -> None:
    make_tree(tmp_path)
    quick = load_suite("quick", search_paths=[tmp_path])
    assert (quick.name, quick.version, quick.description) == ("quick", "1", "two tasks")
    assert [t.name for t in quick.tasks] == ["sim", "long"]
    assert quick.task("long").episodes == EpisodeSpec(4, 0, 2, 16, "agent")
    assert quick.task("sim") == load_task("sim", search_paths=[tmp_path])
    with pytest.raises(UnknownNameError, match="Did you mean: long"):
        quick.task("lon")
    # Found by path too, with tasks next to the suites/ folder.
    assert load_suite(tmp_path / "suites" / "quick.yaml").hash == quick.hash


def test_suite_hash_covers_name_version_and_task_order(tmp_path: Path) -> None:
    path = make_tree(tmp_path)
    quick = load_suite(path)
    text = path.read_text()
    variants = [
        text.replace("suite: quick", "suite: quick2"),
        text.replace("version: 1", "version: 2"),
        text.replace("count: 4", "count: 5"),
        text.replace("  - sim\n", "") + "  - sim\n",  # the same tasks in another order
    ]
    hashes = set()
    for i, variant in enumerate(variants):
        hashes.add(load_suite(write(tmp_path, f"suites/v{i}.yaml", variant)).hash)
    assert quick.hash not in hashes and len(hashes) == len(variants)
    same = text.replace("description: two tasks", "description: other words")
    assert load_suite(write(tmp_path, "suites/same.yaml", same)).hash == quick.hash


def test_suite_problems_point_at_suite_lines(tmp_path: Path) -> None:
    make_tree(tmp_path)
    path = write(
        tmp_path,
        "suites/bad.yaml",
        """\
        suite: bad
        version: 1
        tasks:
          - smi
          - sim
          - task: long
            overrides: {episodes: {count: zero}}
          - task: sim
          - 42
        extra: 1
        """,
    )
    with pytest.raises(SpecError) as info:
        load_suite(path)
    got = [(p.line, p.message) for p in info.value.problems]
    assert [line for line, _ in got] == [4, 7, 8, 9, 10]
    assert "unknown task 'smi'. Did you mean: sim?" in got[0][1]
    assert "expected an integer >= 1 for episodes.count, got 'zero'" in got[1][1]
    assert "duplicate task 'sim'" in got[2][1]
    assert "expected a task name or a mapping" in got[3][1]
    assert "unknown key 'extra' in suite" in got[4][1]


def test_suite_can_hold_two_variants_of_one_task_under_new_names(tmp_path: Path) -> None:
    make_tree(tmp_path)
    path = write(
        tmp_path,
        "suites/two.yaml",
        "suite: two\nversion: 1\ntasks:\n  - sim\n  - {task: sim, overrides: {task: sim-4}}\n",
    )
    assert [t.name for t in load_suite(path).tasks] == ["sim", "sim-4"]


def test_unknown_suite_name_suggests_close_names(tmp_path: Path) -> None:
    make_tree(tmp_path)
    with pytest.raises(UnknownNameError, match=r"Unknown suite 'quik'.*Did you mean: quick\?"):
        load_suite("quik", search_paths=[tmp_path])


def test_list_tasks_and_suites_skip_templates(tmp_path: Path) -> None:
    make_tree(tmp_path)
    write(tmp_path, "_template.yaml", "protocol: rollout\n")
    assert list_tasks([tmp_path]) == [
        ("long", "1", "a task for tests"),
        ("sim", "1", "a task for tests"),
    ]
    assert list_suites([tmp_path]) == [("quick", "1", "two tasks")]


# ============================================================================ validating a folder
def test_check_path_reports_every_file_and_duplicate_names(tmp_path: Path) -> None:
    make_tree(tmp_path)
    write(tmp_path, "copy.yaml", TASK)
    write(
        tmp_path, "bad.yaml", TASK.replace("task: sim", "task: bad").replace("count: 8", "count: x")
    )
    write(
        tmp_path,
        "slow.yaml",
        TASK.replace("task: sim", "task: slow").replace("speed: 2", "speed: -1"),
    )
    report = check_path(tmp_path)
    assert report.files == 6
    assert sorted(t.name for t in report.tasks) == ["long", "sim", "sim", "slow"]
    assert [s.name for s in report.suites] == ["quick"]
    found = {(Path(p.file).name, p.line) for p in report.problems}
    assert found == {("bad.yaml", 10), ("sim.yaml", 1), ("slow.yaml", 5)}
    by_file = {Path(p.file).name: p.message for p in report.problems}
    assert "also declared in" in by_file["sim.yaml"]
    assert "rejects this configuration: speed must be >= 0" in by_file["slow.yaml"]
    assert validate_path(tmp_path / "long.yaml") == []
    assert validate_path(tmp_path / "missing") == [
        SpecProblem(str(tmp_path / "missing"), None, "no such file or folder")
    ]


def test_every_shipped_task_and_suite_validates() -> None:
    folder = shipped_tasks_dir()
    if not any(folder.rglob("*.yaml")):
        pytest.skip("no task files shipped yet")
    assert [str(p) for p in validate_path(folder)] == []
    assert list_tasks()


# ============================================================================ CLI
def test_cli_tasks_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_tree(tmp_path)
    assert main(["tasks", "validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    sim_hash = load_task(tmp_path / "sim.yaml").hash
    assert "sim" in out and "rollout" in out and sim_hash[:12] in out and "quick" in out

    bad = write(
        tmp_path,
        "bad.yaml",
        TASK.replace("task: sim", "task: bad").replace("metrics: [", "metricz: ["),
    )
    assert main(["tasks", "validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:15: unknown key 'metricz'" in out and "Did you mean: metrics?" in out
    assert "1 problem(s) in 1 of 4 file(s)" in out
    assert main(["tasks", "validate", str(tmp_path / "sim.yaml")]) == 0


def test_cli_ls_tasks_and_suites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path)
    monkeypatch.setattr(suite_mod, "shipped_tasks_dir", lambda: tmp_path)
    monkeypatch.setattr(suite_files, "shipped_tasks_dir", lambda: tmp_path)
    assert main(["ls", "tasks"]) == 0
    out = capsys.readouterr().out
    assert "sim" in out and "long" in out and "a task for tests" in out
    assert main(["ls", "suites"]) == 0
    assert "quick" in capsys.readouterr().out
    assert main(["tasks", "validate"]) == 0  # the default folder is the shipped one
