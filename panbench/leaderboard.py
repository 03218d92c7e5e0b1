"""Leaderboards: validated, self-contained submissions of one suite, built into tables and a page.

A leaderboard is a folder::

    leaderboard.yaml             the suite it accepts: name, version, hash and every task's hash
    submissions/<name>.json      one per model: results.json + the per-episode samples, so every
                                 aggregate can be re-verified from the folder alone
    leaderboard.md / .csv        the table (headline scores with 95% CIs)
    index.html                   one static page: a sortable table and the plots, no network assets
    plots/                       the comparison figures of :mod:`panbench.plots`

:func:`submit` refuses anything that does not check out: another schema version, another suite
(name, version or hash), a missing or extra task, a task of another version, aggregates or
samples that do not recompute (``panbench.results.verify_results`` names the field), and
duplicates (the same model, or byte-identical samples under another name), and a task scored
by another judge than the stored submissions' (judge kind, model and rubric hash must match).
Runs made with ``--limit`` are accepted, unless the leaderboard says otherwise, and flagged as
partial. Columns of judge-scored tasks carry a dagger and a footnote naming the judge (a
``<task>_judge`` column in the CSV). :func:`build_leaderboard` re-verifies every stored
submission before it writes anything.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panbench.errors import ConfigError
from panbench.results_model import Results, ResultsError, TaskResult, parse_results
from panbench.submissions import (
    SUBMISSION_FORMAT,
    TASK_NAME,
    SubmissionError,
    read_submission,
    sanitize_name,
    unpack_submission,
    write_submission,
)

__all__ = [
    "CONFIG_FILE",
    "SUBMISSION_FORMAT",
    "LeaderboardConfig",
    "Submission",
    "SubmissionError",
    "build_leaderboard",
    "init_leaderboard",
    "judged_tasks",
    "leaderboard_table",
    "load_config",
    "load_submissions",
    "read_submission",
    "sanitize_name",
    "submit",
    "verify_submission",
]

CONFIG_FILE = "leaderboard.yaml"
SUBMISSIONS_DIR = "submissions"


@dataclass(frozen=True)
class LeaderboardConfig:
    """What a leaderboard accepts (``leaderboard.yaml``).

    Attributes:
        root: the leaderboard folder.
        suite: ``{"name", "version", "hash"}`` exactly as results.json records them.
        tasks: ``{task name: task hash}`` of every task of the suite.
        accept_partial: whether runs made with ``--limit`` are accepted (flagged as partial).
        title: the page title.
    """

    root: Path
    suite: Mapping[str, str]
    tasks: Mapping[str, str]
    accept_partial: bool = True
    title: str = ""

    @property
    def submissions_dir(self) -> Path:
        return self.root / SUBMISSIONS_DIR


@dataclass
class Submission:
    """A verified stored submission.

    Attributes:
        name: the submission's (sanitised) name, also its file stem and its label in figures.
        path: the stored file.
        results: the verified results (the typed model of its results.json).
        partial: the run scored fewer episodes than the suite defines (``--limit``).
        submitted: ISO 8601 UTC time of submission.
    """

    name: str
    path: Path
    results: Results
    partial: bool
    submitted: str
    samples: dict[str, str] = field(default_factory=dict, repr=False)


# ------------------------------------------------------------------------------------ config
def init_leaderboard(
    root: str | os.PathLike[str], suite: str, *, accept_partial: bool = True
) -> LeaderboardConfig:
    """Creates a leaderboard folder for a suite (a shipped name or a YAML path).

    Raises:
        ConfigError: the folder already holds a leaderboard.yaml, or the suite is unknown.
    """
    import yaml

    from panbench.io import atomic_write_text
    from panbench.suite import load_suite

    root = Path(root)
    path = root / CONFIG_FILE
    if path.exists():
        raise ConfigError(f"{path} already exists; edit it or use another folder.")
    s = load_suite(suite)
    data = {
        "suite": {"name": s.name, "version": s.version, "hash": s.hash},
        "tasks": {t.name: t.hash for t in s.tasks},
        "accept_partial": accept_partial,
        "title": f"panbench leaderboard: {s.name}",
    }
    (root / SUBMISSIONS_DIR).mkdir(parents=True, exist_ok=True)
    header = (
        "# A panbench leaderboard: submissions must match this suite exactly (see\n"
        "# docs/leaderboards.md). Written by `panbench leaderboard init`; when the suite's\n"
        "# version changes, start a new leaderboard instead of editing the hashes.\n"
    )
    atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=False))
    return load_config(root)


def load_config(root: str | os.PathLike[str]) -> LeaderboardConfig:
    """Reads ``<root>/leaderboard.yaml``.

    Raises:
        ConfigError: the file is missing or malformed (naming the field).
    """
    import yaml

    root = Path(root)
    path = root / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            f"No leaderboard at {root}: expected {path}. Create one with "
            f"`panbench leaderboard init {root} --suite <suite>`."
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}).") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping, but got {type(data).__name__}.")
    suite = data.get("suite")
    if not isinstance(suite, dict) or not all(
        isinstance(suite.get(k), str) for k in ("name", "version", "hash")
    ):
        raise ConfigError(
            f"{path}: field 'suite': expected {{name, version, hash}} as strings, but got {suite!r}."
        )
    tasks = data.get("tasks")
    if (
        not isinstance(tasks, dict)
        or not tasks
        or not all(
            isinstance(k, str) and TASK_NAME.match(k) and isinstance(v, str)
            for k, v in tasks.items()
        )
    ):
        raise ConfigError(
            f"{path}: field 'tasks': expected a mapping of task name to task hash, "
            f"but got {tasks!r}."
        )
    accept = data.get("accept_partial", True)
    if not isinstance(accept, bool):
        raise ConfigError(
            f"{path}: field 'accept_partial': expected true or false, got {accept!r}."
        )
    return LeaderboardConfig(
        root=root,
        suite={k: suite[k] for k in ("name", "version", "hash")},
        tasks=dict(tasks),
        accept_partial=accept,
        title=str(data.get("title") or f"panbench leaderboard: {suite['name']}"),
    )


# ------------------------------------------------------------------------------------ checks
def _refuse(where: str, field: str, expected: str, found: Any) -> SubmissionError:
    return SubmissionError(
        f"Submission refused ({where}): field {field!r}: expected {expected}, but found {found!r}."
    )


def _check_identity(results: Results, config: LeaderboardConfig, where: str) -> None:
    """The results belong to this leaderboard's suite: same suite identity, same tasks."""
    for key in ("name", "version", "hash"):
        found = getattr(results.suite, key)
        if found != config.suite[key]:
            raise _refuse(
                where,
                f"suite.{key}",
                f"{config.suite[key]!r} (the leaderboard's suite; see {config.root / CONFIG_FILE})",
                found,
            )
    tasks = results.tasks
    missing = [t for t in config.tasks if t not in tasks]
    if missing:
        raise _refuse(where, "tasks", f"every task of suite {config.suite['name']!r}", missing)
    extra = [t for t in tasks if t not in config.tasks]
    if extra:
        raise _refuse(where, "tasks", f"only the tasks {sorted(config.tasks)}", extra)
    for name, expected in config.tasks.items():
        if tasks[name].hash != expected:
            raise _refuse(where, f"tasks.{name}.hash", repr(expected), tasks[name].hash)


def _model_key(results: Results) -> str:
    """Who the model is: name + checkpoint hash, or name + adapter options without a checkpoint."""
    model = results.model
    ckpt = model.checkpoint_sha256
    ident: Any = ckpt if ckpt is not None else {"args": model.args}
    return json.dumps([model.name, ident], sort_keys=True)


def _content_key(results: Results) -> str:
    """The per-episode samples of every task: equal keys mean byte-identical samples."""
    parts = sorted(f"{t}:{e.samples_sha256}" for t, e in results.tasks.items())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


# ------------------------------------------------------------------------------------ storage
def _parsed(data: Any, where: str) -> Results:
    """The typed model of a submission's results, or a refusal naming the field."""
    try:
        return parse_results(data, source=where)
    except ResultsError as err:
        raise SubmissionError(f"Submission refused ({where}): {err}") from err


def _stored_results(path: Path) -> Results:
    """The results of a stored submission (field-checked, not re-verified)."""
    return _parsed(read_submission(path)["results"], str(path))


def _validate(results: Mapping[str, Any], samples: Mapping[str, Any], where: str) -> Results:
    """Verifies results + samples texts as they will be stored, unpacked in a temporary folder."""
    from panbench.results import verify_results

    with tempfile.TemporaryDirectory(prefix="panbench-verify-") as tmp:
        folder = Path(tmp) / "run"
        unpack_submission(results, samples, folder)
        try:
            return verify_results(folder)
        except ResultsError as err:
            # The verifier names files in a temporary folder; say which submission they came from.
            msg = str(err).replace(str(folder) + os.sep, "")
            raise SubmissionError(f"Submission refused ({where}): {msg}") from err


def verify_submission(path: str | os.PathLike[str], config: LeaderboardConfig) -> Submission:
    """Re-verifies a stored submission from its own contents: the same checks as :func:`submit`.

    Raises:
        SubmissionError: naming the file and the field that fails.
    """
    path = Path(path)
    data = read_submission(path)
    where = str(path)
    if data["name"] != path.stem or sanitize_name(data["name"]) != data["name"]:
        raise _refuse(where, "name", f"the file's sanitised stem {path.stem!r}", data["name"])
    results, samples = _parsed(data["results"], where), data["samples"]
    _check_identity(results, config, where)
    if set(samples) != set(results.tasks):
        raise _refuse(where, "samples", f"one entry per task {sorted(results.tasks)}", samples)
    _validate(data["results"], samples, where)
    if data.get("partial") is not results.partial:
        raise _refuse(where, "partial", repr(results.partial), data.get("partial"))
    return Submission(data["name"], path, results, results.partial, data["submitted"], samples)


def load_submissions(root: str | os.PathLike[str]) -> list[Submission]:
    """Every stored submission of a leaderboard, each re-verified, sorted by name."""
    config = load_config(root)
    folder = config.submissions_dir
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return [verify_submission(p, config) for p in files]


def _read_run(results_dir: str | os.PathLike[str]) -> tuple[Path, Results, dict[str, str]]:
    """A results folder to submit: its typed results and its samples files' texts.

    The texts are what gets verified and stored, not the folder (which could change meanwhile).
    """
    from panbench.results import load_results

    src = Path(results_dir)
    if src.name == "results.json" and src.is_file():
        src = src.parent
    try:
        results = load_results(src)  # schema version first: nothing else is comparable
    except ResultsError as err:
        raise SubmissionError(f"Submission refused: {err}") from err
    samples = {}
    for task in results.tasks:
        path = src / "samples" / f"{task}.jsonl"
        if not path.is_file():
            raise SubmissionError(
                f"Submission refused ({src}): expected the samples file {path} of task "
                f"{task!r}, but it is missing."
            )
        try:
            samples[task] = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise SubmissionError(f"Submission refused ({src}): {path} is not UTF-8.") from err
    return src, results, samples


def _check_versions(
    other: Path, old: Results, results: Results, target: Path, *, replace: bool, where: str
) -> bool:
    """Whether a stored submission is the same model as ``results``, to be replaced.

    Raises:
        SubmissionError: a duplicate (same samples, or the same model without ``replace``), or
            ``target``'s name taken by another model or another version without ``replace``.
    """
    model = results.model
    if _content_key(old) == _content_key(results):
        raise SubmissionError(
            f"Submission refused ({where}): duplicate: its per-episode samples are identical "
            f"to those of {other.name}."
        )
    if _model_key(old) == _model_key(results):
        if not replace:
            raise SubmissionError(
                f"Submission refused ({where}): duplicate: {other.name} already holds model "
                f"{model.name!r} with checkpoint {model.checkpoint_sha256!r} (pass --replace to "
                "replace it)."
            )
        return True
    if other != target:
        return False
    if old.model.name != model.name:
        raise SubmissionError(
            f"Submission refused ({where}): the name {target.stem!r} is taken by another model "
            f"({old.model.name!r}); pass --name."
        )
    # The same model name with another checkpoint (or other adapter options): a new version of
    # the model, which replaces the row only when asked to.
    if not replace:
        raise SubmissionError(
            f"Submission refused ({where}): {other.name} holds another version of model "
            f"{old.model.name!r} (checkpoint {old.model.checkpoint_sha256!r}, args "
            f"{dict(old.model.args)!r}); this one has checkpoint {model.checkpoint_sha256!r}, "
            f"args {dict(model.args)!r}. Pass --replace to replace that row, or --name to add a "
            "row of its own."
        )
    return True


def _replaced(
    folder: Path, target: Path, results: Results, *, replace: bool, where: str
) -> Path | None:
    """The stored submission ``results`` replaces, if any, after checking it against each one."""
    replaced: Path | None = None
    for other in sorted(folder.glob("*.json")):
        old = _stored_results(other)
        _check_same_judges(results, old, f"Submission refused ({where})", other.name)
        if _check_versions(other, old, results, target, replace=replace, where=where):
            replaced = other
    return replaced


def submit(
    results_dir: str | os.PathLike[str],
    leaderboard: str | os.PathLike[str],
    *,
    name: str | None = None,
    replace: bool = False,
) -> Submission:
    """Validates a results folder and stores it as a leaderboard submission.

    Args:
        results_dir: a folder written by ``panbench evaluate`` (or its results.json).
        leaderboard: the leaderboard folder (holding leaderboard.yaml).
        name: the submission's name (default: the model name); sanitised for use as a file name.
        replace: replace an earlier submission of the same model (e.g. a partial run by a full
            one) instead of refusing it as a duplicate.

    Returns:
        The stored submission.

    Raises:
        SubmissionError: the results were refused; the message names the field.
    """
    config = load_config(leaderboard)
    src, read, samples = _read_run(results_dir)
    where = str(src)
    _check_identity(read, config, where)
    results = _validate(read.to_dict(), samples, where)
    if results.partial and not config.accept_partial:
        raise _refuse(
            where,
            "run.limit",
            f"a full run (leaderboard {config.root} does not accept partial runs)",
            results.run.limit,
        )
    safe = sanitize_name(name if name is not None else results.model.name)
    folder = config.submissions_dir
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{safe}.json"
    if target.resolve().parent != folder.resolve():  # belt and braces: sanitised names stay put
        raise _refuse(where, "name", "a plain file name", safe)
    replaced = _replaced(folder, target, results, replace=replace, where=where)
    now = write_submission(target, safe, results.to_dict(), samples, partial=results.partial)
    if replaced is not None and replaced != target:
        replaced.unlink()
    from panbench.pages import store_rollouts

    store_rollouts(src, config.root / "media" / safe)  # rollouts saved with --save-videos K
    return Submission(safe, target, results, results.partial, now, samples)


# ------------------------------------------------------------------------------------ judges
def _judge_key(task: TaskResult) -> tuple[Any, ...] | None:
    """What makes two judged scores comparable (the judge's ``key``); None when unjudged."""
    return None if task.judge is None else task.judge.key


def _judge_label(task: TaskResult) -> str:
    return task.judge.label if task.judge is not None else "no judge"


def _check_same_judges(results: Results, other: Results, prefix: str, other_name: str) -> None:
    for task, entry in results.tasks.items():
        theirs = other.tasks.get(task)
        if theirs is None:
            continue
        mine, stored = _judge_key(entry), _judge_key(theirs)
        if mine != stored:
            raise SubmissionError(
                f"{prefix}: task {task!r} was scored by "
                f"{_judge_label(entry) if mine else 'no judge'}, but {other_name} by "
                f"{_judge_label(theirs) if stored else 'no judge'}; judged scores are only "
                "comparable under the same judge and rubric (start another leaderboard for "
                "another judge)."
            )


def judged_tasks(submissions: Sequence[Submission]) -> dict[str, str]:
    """The tasks whose scores depend on a judge, each with a label naming the judge.

    Raises:
        SubmissionError: two submissions scored a task with different judges or rubrics.
    """
    out: dict[str, str] = {}
    for i, sub in enumerate(submissions):
        for other in submissions[:i]:
            _check_same_judges(sub.results, other.results, f"Submission {sub.name}", other.name)
        for task, entry in sub.results.tasks.items():
            if _judge_key(entry) is not None:
                out.setdefault(task, _judge_label(entry))
    return out


_DAGGER = "\u2020"


def _judge_note(judged: Mapping[str, str]) -> str:
    if not judged:
        return ""
    items = "; ".join(f"{t}: {label}" for t, label in judged.items())
    return (
        f"{_DAGGER} Judge-dependent: these scores come from a judge, not from ground truth, and "
        f"are comparable only under the same judge and rubric ({items})."
    )


# ------------------------------------------------------------------------------------ build
def _fmt(x: float, digits: int = 1) -> str:
    return "-" if not math.isfinite(x) else f"{x:.{digits}f}"


def leaderboard_table(submissions: Sequence[Submission], tasks: Sequence[str]) -> Any:
    """The leaderboard as a pandas DataFrame, best suite score first.

    Columns: ``rank, name, model, checkpoint_sha256, partial, limit, episodes, score``, then per
    task ``<task>``, ``<task>_low``, ``<task>_high`` (headline score and 95% CI, 0-100), then
    ``submitted, panbench_version, git_commit``, then ``<task>_judge`` naming the judge of each
    judge-scored task. Missing numbers are NaN.

    Raises:
        SubmissionError: submissions scored a task with different judges.
    """
    import pandas as pd

    from panbench.plots import headline_scores

    rows = []
    for sub in submissions:
        res = sub.results
        scores = headline_scores(res)
        summary = None if res.summary is None else res.summary.score
        row: dict[str, Any] = {
            "name": sub.name,
            "model": res.model.name,
            "checkpoint_sha256": res.model.checkpoint_sha256,
            "partial": sub.partial,
            "limit": res.run.limit,
            "episodes": res.n_episodes,
            "score": math.nan if summary is None else float(summary),
        }
        for t in tasks:
            s = scores[t]
            row[t], row[f"{t}_low"], row[f"{t}_high"] = s.score, s.low, s.high
        row["submitted"] = sub.submitted
        row["panbench_version"] = res.provenance.panbench_version
        row["git_commit"] = res.provenance.git.commit
        rows.append(row)
    columns = ["name", "model", "checkpoint_sha256", "partial", "limit", "episodes", "score"]
    columns += [c for t in tasks for c in (t, f"{t}_low", f"{t}_high")]
    columns += ["submitted", "panbench_version", "git_commit"]
    judged = judged_tasks(submissions)
    for row in rows:
        for t in judged:
            row[f"{t}_judge"] = judged[t]
    columns += [f"{t}_judge" for t in tasks if t in judged]
    df = pd.DataFrame(rows, columns=columns)
    df = df.sort_values(["score", "name"], ascending=[False, True], na_position="last")
    df.insert(0, "rank", range(1, len(df) + 1))
    return df.reset_index(drop=True)


def _score_cell(row: Mapping[str, Any], task: str) -> str:
    lo, hi = row[f"{task}_low"], row[f"{task}_high"]
    ci = f" [{_fmt(lo)}, {_fmt(hi)}]" if math.isfinite(lo) else ""
    return _fmt(row[task]) + ci


def _suite_line(config: LeaderboardConfig) -> str:
    s = config.suite
    return f"suite {s['name']} version {s['version']} (hash {s['hash'][:12]})"


_NOTES = (
    "Scores are task headline scores (0-100) with 95% bootstrap confidence intervals over "
    "episodes; the suite score is their mean. {partial_note}Every submission holds its "
    "per-episode samples and is re-verified whenever the leaderboard is built."
)
_PARTIAL_NOTE = (
    "Rows marked partial were evaluated on at most N episodes per task (`panbench evaluate "
    "--limit N`): wider intervals, and not the full suite. "
)


def _judged_in(df: Any, tasks: Sequence[str]) -> dict[str, str]:
    """Task -> judge label for the table's judge-scored tasks (from its ``_judge`` columns)."""
    return {t: str(df[f"{t}_judge"].iloc[0]) for t in tasks if f"{t}_judge" in df and len(df)}


def _task_label(task: str, judged: Mapping[str, str]) -> str:
    return f"{task} {_DAGGER}" if task in judged else task


def _markdown(
    df: Any, config: LeaderboardConfig, tasks: Sequence[str], plots: Sequence[str]
) -> str:
    lines = [f"# {config.title}", "", f"{_suite_line(config)}, {len(df)} submission(s).", ""]
    judged = _judged_in(df, tasks)
    head = ["#", "model", "score", *(_task_label(t, judged) for t in tasks), "episodes"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in df.iterrows():
        name = row["name"] + (f" (partial, limit {int(row['limit'])})" if row["partial"] else "")
        cells = [str(row["rank"]), name, _fmt(row["score"])]
        cells += [_score_cell(row, t) for t in tasks]
        cells.append(str(row["episodes"]))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    partial_note = _PARTIAL_NOTE if bool(df["partial"].any()) else ""
    lines += ["", _NOTES.format(partial_note=partial_note), ""]
    if judged:
        lines += [_judge_note(judged), ""]
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in plots]
        lines.append("")
    return "\n".join(lines)


_CSS = """
th { cursor: pointer; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
"""
"""What the index adds to :data:`panbench.pages.PAGE_CSS`: sortable headers."""

# Sorts by each cell's data-sort value; numbers numerically, empty cells last in either order.
_JS = """
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var numeric = th.dataset.type === "num";
    var dir = th.getAttribute("aria-sort") === "descending" ? 1 : -1;
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
      if (x === "" || y === "") { return (x === "") - (y === ""); }
      if (numeric) { return dir * (parseFloat(x) - parseFloat(y)); }
      return dir * x.localeCompare(y);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _sort_value(x: Any) -> str:
    if isinstance(x, float) and not math.isfinite(x):
        return ""
    return str(x)


def _html(df: Any, config: LeaderboardConfig, tasks: Sequence[str], plots: Sequence[str]) -> str:
    from panbench.pages import PAGE_CSS, task_nav

    e = html.escape
    judged = _judged_in(df, tasks)
    head = [("#", "num", ""), ("model", "text", "name"), ("score", "num", "")]
    head += [(_task_label(t, judged), "num", "judged" if t in judged else "") for t in tasks]
    head += [("episodes", "num", "")]
    ths = "".join(
        f'<th data-type="{kind}"' + (f' class="{cls}"' if cls else "") + f">{e(label)}</th>"
        for label, kind, cls in head
    )
    body = []
    for _, row in df.iterrows():
        flag = (
            f' <span class="partial" title="at most {int(row["limit"])} episodes per task">'
            "partial</span>"
            if row["partial"]
            else ""
        )
        cells = [
            f'<td data-sort="{row["rank"]}">{row["rank"]}</td>',
            f'<td class="name" data-sort="{e(row["name"])}">{e(row["name"])}{flag}</td>',
            f'<td data-sort="{_sort_value(row["score"])}">{_fmt(row["score"])}</td>',
        ]
        for t in tasks:
            lo, hi = row[f"{t}_low"], row[f"{t}_high"]
            ci = f'<span class="ci">[{_fmt(lo)}, {_fmt(hi)}]</span>' if math.isfinite(lo) else ""
            cells.append(f'<td data-sort="{_sort_value(row[t])}">{_fmt(row[t])}{ci}</td>')
        cells.append(f'<td data-sort="{row["episodes"]}">{row["episodes"]}</td>')
        body.append(f'<tr data-model="{e(row["name"])}">' + "".join(cells) + "</tr>")
    figures = "".join(
        f'<figure><img src="{e(p)}" alt="{e(Path(p).stem)}">'
        f"<figcaption>{e(Path(p).stem)}</figcaption></figure>"
        for p in plots
    )
    partial_note = _PARTIAL_NOTE.replace("`", "") if bool(df["partial"].any()) else ""
    notes = _NOTES.format(partial_note=partial_note)
    judge_note = f'<p class="notes judged">{e(_judge_note(judged))}</p>\n' if judged else ""
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(config.title)}</title>\n<style>{PAGE_CSS}{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{e(config.title)}</h1>\n<p>{e(_suite_line(config))}, {len(df)} submission(s). "
        "Click a column to sort.</p>\n"
        f"{task_nav(tasks)}\n"
        '<div class="table-wrap">\n'
        f'<table id="leaderboard" class="sortable">\n<thead><tr>{ths}</tr></thead>\n'
        f"<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n</div>\n"
        f'<p class="notes">{e(notes)}</p>\n{judge_note}'
        f'<h2>Plots</h2>\n<section id="plots">{figures}</section>\n'
        f"<script>{_JS}</script>\n</body>\n</html>\n"
    )


def build_leaderboard(root: str | os.PathLike[str]) -> list[Path]:
    """Re-verifies every submission and writes leaderboard.md, leaderboard.csv, index.html, plots/.

    Returns:
        The files written.

    Raises:
        SubmissionError: a stored submission no longer verifies (nothing is written).
    """
    from panbench.figure_data import parse_jsonl
    from panbench.io import atomic_write_text
    from panbench.plots import plot_results

    config = load_config(root)
    root = config.root
    subs = load_submissions(root)
    tasks = list(config.tasks)
    df = leaderboard_table(subs, tasks)

    # Everything is rendered into a staging folder first and moved in at the end (renames
    # only), so a build killed part way leaves the previous board, never a half-written one.
    _recover_board(root)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=root))
    written: list[Path] = []
    ordered = {s.name: s for s in subs}
    if subs:
        runs = [(n, ordered[n].results) for n in df["name"]]
        samples = [
            {t: parse_jsonl(text) for t, text in ordered[n].samples.items()} for n in df["name"]
        ]
        # The page shows the SVGs; the PNGs are previews, so screen resolution keeps them small.
        written += plot_results(runs, staging / "plots", tasks=tasks, samples=samples, dpi=120)
    (staging / "plots").mkdir(exist_ok=True)
    svgs = [p.relative_to(staging).as_posix() for p in written if p.suffix == ".svg"]

    csv = df.to_csv(index=False, lineterminator="\n", float_format="%.6g")
    written.append(atomic_write_text(staging / "leaderboard.csv", csv))
    written.append(
        atomic_write_text(staging / "leaderboard.md", _markdown(df, config, tasks, svgs))
    )
    written.append(atomic_write_text(staging / "index.html", _html(df, config, tasks, svgs)))
    _publish(staging, root)
    written = [root / p.relative_to(staging) for p in written]
    from panbench.pages import write_task_pages

    # Task pages link to the published plots/ and media/, so they are written after the swap,
    # each atomically; a build killed here leaves pages that the next build rewrites.
    ranked = [ordered[n] for n in df["name"]] if subs else []
    title, suite = config.title, _suite_line(config)
    written += write_task_pages(root, title, suite, ranked, tasks, svgs)
    return written


#: prefix of the staging folder a build renders into (left behind only by a killed build)
_STAGING = ".build-"
_BOARD_FILES = ("leaderboard.csv", "leaderboard.md", "index.html")


def _recover_board(root: Path) -> None:
    """Undoes what a killed build left: staging folders, and plots/ moved aside mid-swap."""
    import shutil

    for leftover in root.glob(_STAGING + "*"):
        shutil.rmtree(leftover, ignore_errors=True)
    aside = root / "plots.old"
    if aside.is_dir() and not (root / "plots").exists():
        os.replace(aside, root / "plots")
    shutil.rmtree(aside, ignore_errors=True)


def _publish(staging: Path, root: Path) -> None:
    """Moves a staged build into ``root``: plots/ swapped whole, then each page renamed."""
    import shutil

    plots, aside = root / "plots", root / "plots.old"
    if plots.exists():
        os.replace(plots, aside)
    os.replace(staging / "plots", plots)
    for name in _BOARD_FILES:
        os.replace(staging / name, root / name)
    shutil.rmtree(aside, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
