"""Leaderboards: what submit accepts and refuses, self-contained re-verification, built outputs."""

from __future__ import annotations

import json
import math
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from panbench.cli import main
from panbench.leaderboard import (
    SubmissionError,
    build_leaderboard,
    init_leaderboard,
    load_submissions,
    read_submission,
    sanitize_name,
    submit,
)
from tests.leaderboard_runs import (
    TASK_NAMES,
    copy_run,
    edit_results,
    mini_run,
    rehash_samples,
    suite_path,
)

BASELINES = ("oracle", "copy-last", "random-action")


@pytest.fixture
def board(tmp_path: Path) -> Path:
    root = tmp_path / "board"
    init_leaderboard(root, suite_path(1))
    return root


@pytest.fixture
def full_board(board: Path) -> Path:
    for model in BASELINES:
        submit(mini_run(model), board)
    return board


#: The built board: copy-last enters as a partial run (``--limit 3``).
LIMITS: dict[str, int | None] = {"oracle": None, "copy-last": 3, "random-action": None}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A leaderboard with the three baselines, built once for the tests that only read it."""
    root = tmp_path_factory.mktemp("built") / "board"
    init_leaderboard(root, suite_path(1))
    for model, limit in LIMITS.items():
        submit(mini_run(model, limit=limit), root)
    build_leaderboard(root)
    return root


def _stored(board: Path) -> list[str]:
    return sorted(p.name for p in (board / "submissions").glob("*.json"))


# ============================================================================ accepted
def test_the_config_records_the_suite_identity_and_every_task(board: Path) -> None:
    results = json.loads((mini_run("oracle") / "results.json").read_text())
    import yaml

    config = yaml.safe_load((board / "leaderboard.yaml").read_text())
    assert config["suite"] == results["suite"]
    assert config["tasks"] == {t: e["hash"] for t, e in results["tasks"].items()}
    assert list(config["tasks"]) == list(TASK_NAMES)  # the suite's order, for the table


def test_baselines_are_accepted_and_stored_with_their_samples(full_board: Path) -> None:
    assert _stored(full_board) == ["copy-last.json", "oracle.json", "random-action.json"]
    for model in BASELINES:
        sub = read_submission(full_board / "submissions" / f"{model}.json")
        run = mini_run(model)
        assert sub["results"] == json.loads((run / "results.json").read_text())
        for task in TASK_NAMES:
            # byte for byte, so samples_sha256 re-verifies from the stored file alone
            assert sub["samples"][task].encode() == (run / "samples" / f"{task}.jsonl").read_bytes()
        assert sub["partial"] is False


def test_a_leaderboard_folder_reverifies_on_its_own(full_board: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    shutil.copytree(full_board, moved)
    subs = load_submissions(moved)
    assert [s.name for s in subs] == ["copy-last", "oracle", "random-action"]
    assert main(["leaderboard", "verify", str(moved)]) == 0


def test_a_limited_run_is_accepted_and_flagged_partial(built: Path) -> None:
    df = pd.read_csv(built / "leaderboard.csv").set_index("name")
    assert bool(df.loc["copy-last", "partial"]) and df.loc["copy-last", "limit"] == 3
    assert not df.loc["oracle", "partial"] and not df.loc["random-action", "partial"]
    row = next(
        line for line in (built / "leaderboard.md").read_text().splitlines() if "copy-last" in line
    )
    assert "partial, limit 3" in row
    assert 'class="partial"' in (built / "index.html").read_text()


def test_a_leaderboard_can_refuse_limited_runs(tmp_path: Path) -> None:
    strict = tmp_path / "strict"
    init_leaderboard(strict, suite_path(1), accept_partial=False)
    with pytest.raises(SubmissionError, match=r"'run\.limit'"):
        submit(mini_run("oracle", limit=3), strict)
    submit(mini_run("oracle"), strict)


def test_replace_swaps_a_partial_run_for_the_full_one(board: Path) -> None:
    submit(mini_run("oracle", limit=3), board)
    with pytest.raises(SubmissionError, match=r"duplicate.*--replace"):
        submit(mini_run("oracle"), board)
    sub = submit(mini_run("oracle"), board, replace=True)
    assert not sub.partial
    assert _stored(board) == ["oracle.json"]


def test_a_new_checkpoint_replaces_its_row_only_with_replace(board: Path, tmp_path: Path) -> None:
    submit(mini_run("oracle"), board)
    retrained = copy_run(mini_run("oracle", limit=3), tmp_path / "v2")
    edit_results(retrained, _set("model.checkpoint_sha256", "ab" * 32))
    with pytest.raises(SubmissionError, match=r"another version of model 'oracle'.*--replace"):
        submit(retrained, board)
    assert _stored(board) == ["oracle.json"]
    sub = submit(retrained, board, replace=True)
    assert _stored(board) == ["oracle.json"]
    assert sub.results.model.checkpoint_sha256 == "ab" * 32
    # another model under a taken name is refused even with --replace
    with pytest.raises(SubmissionError, match=r"taken by another model \('oracle'\)"):
        submit(mini_run("copy-last"), board, name="oracle", replace=True)


# ============================================================================ refused
def _set(path: str, value: Any) -> Any:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            data = data[key]
        data[last] = value(data[last]) if callable(value) else value

    return edit


TAMPERING = {
    "edited aggregate": (
        _set("tasks.mini-agent.metrics.psnr.value", lambda v: v + 0.5),
        r"tasks\.mini-agent\.metrics\.psnr\.value",
    ),
    "edited CI": (
        _set("tasks.mini-choice.metrics.choice_accuracy.ci95", lambda v: [v[0] - 0.01, v[1]]),
        r"tasks\.mini-choice\.metrics\.choice_accuracy\.ci95",
    ),
    "edited headline score": (
        _set("tasks.mini-agent.headline.score", 99.0),
        r"tasks\.mini-agent\.headline\.score",
    ),
    "edited set-level FVD": (
        _set("tasks.mini-long.metrics.fvd.value", lambda v: v / 2),
        r"tasks\.mini-long\.metrics\.fvd\.value",
    ),
    "changed suite hash": (_set("suite.hash", "0" * 64), r"'suite\.hash'"),
    "other suite version": (_set("suite.version", "2"), r"'suite\.version'"),
    "other suite name": (_set("suite.name", "quick"), r"'suite\.name'"),
    "schema version": (_set("schema_version", 99), "schema_version"),
    "missing task": (lambda d: d["tasks"].pop("mini-plan"), r"'tasks'.*mini-plan"),
    "other task version": (_set("tasks.mini-choice.hash", "1" * 64), r"tasks\.mini-choice\.hash"),
    "edited summary": (_set("summary.score", 50.0), r"summary\.score"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampered_results_are_refused_naming_the_field(
    case: str, board: Path, tmp_path: Path
) -> None:
    edit, field = TAMPERING[case]
    run = copy_run(mini_run("random-action"), tmp_path / "run")
    edit_results(run, edit)
    with pytest.raises(SubmissionError, match=field):
        submit(run, board)
    assert _stored(board) == []


def test_a_removed_episode_is_refused(board: Path, tmp_path: Path) -> None:
    run = copy_run(mini_run("copy-last"), tmp_path / "run")
    path = run / "samples" / "mini-agent.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    with pytest.raises(SubmissionError, match="expected 8 lines"):
        submit(run, board)
    # A careful forger also fixes the hash and the count: the aggregates then do not recompute.
    rehash_samples(run, "mini-agent")
    edit_results(run, _set("tasks.mini-agent.n_episodes", 7))
    with pytest.raises(SubmissionError, match=r"tasks\.mini-agent\.metrics\.\w+\.n"):
        submit(run, board)
    assert _stored(board) == []


def test_an_edited_sample_is_refused_even_with_its_hash_updated(
    board: Path, tmp_path: Path
) -> None:
    run = copy_run(mini_run("copy-last"), tmp_path / "run")
    path = run / "samples" / "mini-choice.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    rec = json.loads(lines[0])
    rec["metrics"]["choice_accuracy"] = 0.0 if rec["metrics"]["choice_accuracy"] == 1.0 else 1.0
    lines[0] = json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n"
    path.write_text("".join(lines))
    with pytest.raises(SubmissionError, match="samples_sha256"):
        submit(run, board)
    rehash_samples(run, "mini-choice")
    with pytest.raises(SubmissionError, match=r"tasks\.mini-choice\.metrics\.choice_accuracy"):
        submit(run, board)


def test_a_run_of_another_suite_version_is_refused(board: Path) -> None:
    with pytest.raises(SubmissionError, match=r"'suite\.(version|hash)'"):
        submit(mini_run("oracle", version=2), board)


def test_a_missing_results_folder_is_refused(board: Path, tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match="No results file"):
        submit(tmp_path / "nothing", board)


def test_duplicates_are_refused(board: Path, tmp_path: Path) -> None:
    submit(mini_run("copy-last"), board)
    with pytest.raises(SubmissionError, match="duplicate"):
        submit(mini_run("copy-last"), board)
    with pytest.raises(SubmissionError, match="duplicate"):  # the same run under another name
        submit(mini_run("copy-last"), board, name="my-model")
    renamed = copy_run(mini_run("copy-last"), tmp_path / "renamed")
    edit_results(renamed, _set("model.name", "totally-new-model"))
    with pytest.raises(SubmissionError, match="samples are identical"):
        submit(renamed, board)
    assert _stored(board) == ["copy-last.json"]


def test_a_taken_name_is_refused_for_another_model(board: Path) -> None:
    submit(mini_run("copy-last"), board, name="mine")
    with pytest.raises(SubmissionError, match="taken by another model"):
        submit(mini_run("oracle"), board, name="mine")


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "etc-passwd"),
        ("my_pkg.adapter:MyModel", "my_pkg.adapter-MyModel"),
        ("a b\\c/d", "a-b-c-d"),
        ("..hidden", "hidden"),
        ("pan-ref@v1.2", "pan-ref-v1.2"),
    ],
)
def test_names_are_sanitised(name: str, safe: str) -> None:
    assert sanitize_name(name) == safe


@pytest.mark.parametrize("name", ["..", "/", "", "///", "-.-"])
def test_names_with_nothing_left_are_refused(name: str) -> None:
    with pytest.raises(SubmissionError, match="pass --name"):
        sanitize_name(name)


def test_a_traversal_name_stays_inside_the_submissions_folder(board: Path) -> None:
    sub = submit(mini_run("oracle"), board, name="../../../escaped")
    assert sub.path == board / "submissions" / "escaped.json"
    assert not (board.parent / "escaped.json").exists()


# ============================================================================ stored files
def _edit_stored(path: Path, edit: Any) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_a_tampered_stored_submission_stops_the_build(full_board: Path) -> None:
    path = full_board / "submissions" / "copy-last.json"
    _edit_stored(path, _set("results.tasks.mini-agent.metrics.psnr.value", lambda v: v + 1))
    with pytest.raises(SubmissionError, match=r"copy-last\.json.*mini-agent\.metrics\.psnr"):
        build_leaderboard(full_board)
    assert not (full_board / "index.html").exists()
    assert main(["leaderboard", "verify", str(full_board)]) == 1


def test_a_stored_submission_cannot_write_outside_its_folder(
    full_board: Path, tmp_path: Path
) -> None:
    path = full_board / "submissions" / "copy-last.json"

    def evil(data: dict[str, Any]) -> None:
        data["samples"]["../../../pwned"] = "{}\n"
        data["results"]["tasks"]["../../../pwned"] = data["results"]["tasks"]["mini-agent"]

    _edit_stored(path, evil)
    with pytest.raises(SubmissionError):
        build_leaderboard(full_board)
    assert not list(tmp_path.rglob("pwned*"))


def test_a_renamed_stored_file_is_refused(full_board: Path) -> None:
    src = full_board / "submissions" / "copy-last.json"
    src.rename(full_board / "submissions" / "best-model.json")
    with pytest.raises(SubmissionError, match="'name'"):
        build_leaderboard(full_board)


# ============================================================================ built outputs
class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict[str, str | None]] = []
        self.rows: list[dict[str, str | None]] = []
        self.headers = 0
        self.links: list[str] = []
        self.images: list[str] = []
        self.scripts_with_src = 0
        self._in_tbody = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.tables.append(a)
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self.rows.append(a)
        elif tag == "th":
            self.headers += 1
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag == "script" and "src" in a:
            self.scripts_with_src += 1
        for key in ("src", "href"):
            if a.get(key):
                self.links.append(str(a[key]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_tbody = False


def test_the_page_is_one_static_file_with_a_row_per_model(built: Path) -> None:
    page = _PageParser()
    page.feed((built / "index.html").read_text())
    assert [t.get("id") for t in page.tables] == ["leaderboard"]
    assert "sortable" in (page.tables[0].get("class") or "")
    assert sorted(r.get("data-model") or "" for r in page.rows) == sorted(BASELINES)
    assert page.headers == 3 + len(TASK_NAMES) + 1  # rank, model, score, tasks, episodes
    assert page.scripts_with_src == 0
    assert page.images and all(src.startswith("plots/") for src in page.images)
    for link in page.links:
        assert not link.lower().startswith(("http:", "https:", "//")), link
        assert (built / link).is_file(), link


def test_the_table_holds_the_submitted_scores_best_first(built: Path) -> None:
    df = pd.read_csv(built / "leaderboard.csv")
    assert list(df["rank"]) == [1, 2, 3]
    assert df.loc[0, "name"] == "oracle" and df.loc[0, "score"] == pytest.approx(100.0)
    assert list(df["score"]) == sorted(df["score"], reverse=True)
    for _, row in df.iterrows():
        results = json.loads(
            (mini_run(row["name"], limit=LIMITS[row["name"]]) / "results.json").read_text()
        )
        assert row["score"] == pytest.approx(results["summary"]["score"], rel=1e-5)
        assert row["episodes"] == sum(t["n_episodes"] for t in results["tasks"].values())
        for task in TASK_NAMES:
            entry = results["tasks"][task]
            assert row[task] == pytest.approx(entry["headline"]["score"], rel=1e-5, abs=1e-9)
            lo, hi = entry["metrics"][entry["headline"]["metric"]]["ci95"]
            # every headline here is 100 x a fraction, so its CI is 100 x the metric's CI
            assert row[f"{task}_low"] == pytest.approx(100 * lo, rel=1e-5, abs=1e-6)
            assert row[f"{task}_high"] == pytest.approx(100 * hi, rel=1e-5, abs=1e-6)
    md = (built / "leaderboard.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(BASELINES)  # header + one row per model
    assert "oracle" in table[1]


def test_the_build_writes_the_plots_and_is_reproducible(built: Path, tmp_path: Path) -> None:
    names = {p.name for p in (built / "plots").iterdir()}
    for stem in ("scores", "radar", "drift-mini-agent", "drift-mini-long", "budget-mini-plan"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    assert "drift-mini-plan.svg" not in names  # planning curves are against budget, not horizon
    again = tmp_path / "again"
    shutil.copytree(built, again)
    build_leaderboard(again)
    for path in built.rglob("*"):
        if path.suffix in (".svg", ".csv", ".md", ".html"):
            assert (again / path.relative_to(built)).read_bytes() == path.read_bytes(), path.name


def test_an_empty_leaderboard_builds(board: Path) -> None:
    build_leaderboard(board)
    page = _PageParser()
    page.feed((board / "index.html").read_text())
    assert page.tables and page.rows == []


def test_missing_numbers_are_empty_not_nan_text(built: Path) -> None:
    for name in ("index.html", "leaderboard.md"):
        assert "nan" not in (built / name).read_text().lower()
    df = pd.read_csv(built / "leaderboard.csv")
    assert all(math.isfinite(x) for x in df["score"])


# ============================================================================ command line
def test_the_cli_submits_builds_and_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "cli-board"
    assert main(["leaderboard", "init", str(root), "--suite", suite_path(1)]) == 0
    assert main(["leaderboard", "init", str(root), "--suite", suite_path(1)]) == 2
    assert main(["submit", str(mini_run("oracle")), "--leaderboard", str(root)]) == 0
    assert main(["submit", str(mini_run("oracle")), "--leaderboard", str(root)]) == 2
    assert "duplicate" in capsys.readouterr().err
    v2 = str(mini_run("oracle", version=2))
    assert main(["submit", v2, "--leaderboard", str(root), "--name", "v2"]) == 2
    assert "suite.version" in capsys.readouterr().err
    assert main(["leaderboard", "build", str(root)]) == 0
    assert (root / "index.html").is_file() and (root / "plots" / "scores.png").is_file()
    assert main(["submit", str(mini_run("oracle")), "--leaderboard", str(tmp_path / "none")]) == 2
    assert "leaderboard init" in capsys.readouterr().err


SHIPPED = sorted(Path(__file__).resolve().parents[1].glob("leaderboards/*/submissions/*.json"))


@pytest.mark.parametrize("path", SHIPPED, ids=[f"{p.parts[-3]}/{p.stem}" for p in SHIPPED])
def test_every_shipped_submission_still_reads_and_verifies(path: Path) -> None:
    from panbench.leaderboard import load_config, verify_submission
    from panbench.metrics.registry import get_metric
    from panbench.results import READABLE_SCHEMA_VERSIONS, metric_level
    from panbench.submissions import read_submission

    sub = read_submission(path)
    assert sub["results"]["schema_version"] in READABLE_SCHEMA_VERSIONS
    for task in sub["results"]["tasks"].values():
        for name, entry in task["metrics"].items():
            assert metric_level(entry) == get_metric(name).level
    verified = verify_submission(path, load_config(path.parents[1]))
    assert verified.results.suite.to_dict() == sub["results"]["suite"]
    assert verified.results.to_dict() == sub["results"]  # read as stored, nothing added
