"""Pages to look at: per-task leaderboard pages with rollouts, and one run's report page.

A number says how good a model is; a rollout shows what it got wrong. ``panbench evaluate
--save-videos K`` writes ``videos/<task>/<i>.mp4`` (predicted | true, side by side);
:func:`store_rollouts` turns the first :data:`ROLLOUTS_PER_TASK` of each task into small
animated WebP files when a run is submitted (``media/<submission>/<task>/<i>.webp`` on the
board), and :func:`write_task_pages` shows them per task, next to each model's score, the task's
drift figures and the submission's provenance. :func:`write_report` renders one results folder
as the same kind of page (``panbench report RUN_DIR``), for a paper's appendix or a PR comment.

Pages are static HTML with relative links, no scripts from elsewhere: they open from disk.
"""

from __future__ import annotations

import html
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "PAGE_CSS",
    "ROLLOUTS_PER_TASK",
    "rollout_webp",
    "store_rollouts",
    "write_report",
    "write_task_pages",
]

ROLLOUTS_PER_TASK = 2
"""Rollouts kept per task and submission: enough to see failures, small enough for 10 models."""

ROLLOUT_FRAMES = 32
"""At most this many frames per rollout animation."""

FRAME_MS = 250
"""Milliseconds per animation frame (4 frames per second: each step stays readable)."""

PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto;
       max-width: 1800px; padding: 0 1.5rem; color: #222; box-sizing: border-box; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.88rem; }
th, td { padding: 0.3rem 0.5rem; border-bottom: 1px solid #ddd; text-align: right;
         vertical-align: top; }
th { background: #f4f4f4; }
td.name, th.name { text-align: left; white-space: nowrap; }
td.reason { text-align: left; overflow-wrap: anywhere; }
.ci { display: block; color: #666; font-size: 0.78em; white-space: nowrap; }
.partial { background: #fff3cd; border-radius: 3px; padding: 0 0.3em; font-size: 0.8em; }
nav.tasks a { margin-right: 0.8rem; white-space: nowrap; }
figure { display: inline-block; margin: 0.6rem; max-width: 100%; vertical-align: top; }
figure img { max-width: 100%; height: auto; }
figure.rollout img { width: 192px; height: auto; image-rendering: pixelated; }
figcaption { font-size: 0.8em; color: #555; }
section.model { border-top: 1px solid #ddd; padding-top: 0.6rem; margin-top: 1rem; }
dl.prov { display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 0.8rem;
          font-size: 0.85em; margin: 0.4rem 0; }
dl.prov dt { color: #555; }
dl.prov dd { margin: 0; overflow-wrap: anywhere; }
p.notes { max-width: 60rem; color: #444; }
"""
"""The style of the leaderboard's pages and of reports: nothing wider than the window."""


def _e(x: Any) -> str:
    return html.escape(str(x))


# ------------------------------------------------------------------------------------ rollouts
def rollout_webp(video: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Writes the first :data:`ROLLOUT_FRAMES` frames of a video as a looping, lossless WebP.

    Raises:
        DataError: the video cannot be decoded (naming the file).
    """
    from PIL import Image

    from panbench.data.videos import read_video
    from panbench.io import atomic_write_bytes

    frames = read_video(Path(video), max_frames=ROLLOUT_FRAMES)
    images = [Image.fromarray(f) for f in frames]
    import io

    buf = io.BytesIO()
    images[0].save(
        buf,
        format="WEBP",
        save_all=True,
        append_images=images[1:],
        duration=FRAME_MS,
        loop=0,
        lossless=True,
        method=6,
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _videos(run_dir: Path, per_task: int) -> dict[str, list[Path]]:
    folder = run_dir / "videos"
    if not folder.is_dir():
        return {}
    found = {}
    for task_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        videos = sorted(task_dir.glob("*.mp4"))[:per_task]
        if videos:
            found[task_dir.name] = videos
    return found


def store_rollouts(
    run_dir: str | os.PathLike[str],
    media: str | os.PathLike[str],
    per_task: int = ROLLOUTS_PER_TASK,
) -> list[Path]:
    """Converts a run's saved videos into ``media/<task>/<i>.webp`` (the folder is replaced).

    Args:
        run_dir: a results folder (``videos/`` written by ``evaluate --save-videos K``).
        media: the folder for this run's animations (e.g. ``<board>/media/<submission>``).
        per_task: videos kept per task (the first ones, by episode index).

    Returns:
        The animations written (none when the run saved no videos).
    """
    run_dir, media = Path(run_dir), Path(media)
    if run_dir.name == "results.json":
        run_dir = run_dir.parent
    videos = _videos(run_dir, per_task)
    if media.exists():
        shutil.rmtree(media)  # a replaced submission keeps none of the old rollouts
    written = []
    for task, files in videos.items():
        for video in files:
            written.append(rollout_webp(video, media / task / f"{video.stem}.webp"))
    return written


def _rollout_figures(media: Path, task: str, base: Path) -> str:
    files = sorted((media / task).glob("*.webp")) if (media / task).is_dir() else []
    if not files:
        return (
            '<p class="notes">No rollouts: run with <code>--save-videos K</code> '
            "(closed-loop planning tasks keep no frames).</p>"
        )
    return "".join(
        f'<figure class="rollout"><img src="{_e(os.path.relpath(f, base))}" '
        f'alt="episode {int(f.stem)} rollout"><figcaption>episode {int(f.stem)}: '
        "predicted | true</figcaption></figure>"
        for f in files
    )


# ------------------------------------------------------------------------------------ pieces
def _fmt(x: Any, digits: int = 1) -> str:
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "-"
    return f"{x:.{digits}f}"


def _score_cell(score: float, low: float, high: float) -> str:
    ci = f'<span class="ci">[{_fmt(low)}, {_fmt(high)}]</span>' if math.isfinite(low) else ""
    return f"<td>{_fmt(score)}{ci}</td>"


def provenance(results: Any) -> list[tuple[str, str]]:
    """What a reader needs to trust or reproduce a run, as (label, value) rows."""
    from panbench.progress import format_seconds

    p = results.provenance
    run = results.run
    args = ", ".join(f"{k}={v}" for k, v in (results.model.args or {}).items()) or "none"
    git = p.git.commit or "unknown"
    if p.git.dirty:
        git += " (uncommitted changes)"
    return [
        ("model", results.model.name),
        ("model args", args),
        ("checkpoint sha256", results.model.checkpoint_sha256 or "none (no checkpoint)"),
        ("suite", f"{results.suite.name} v{results.suite.version} ({results.suite.hash[:12]})"),
        ("episodes", f"{results.n_episodes}" + (f" (limit {run.limit})" if run.limit else "")),
        ("device", f"{run.device}, batch {run.batch_size}, world size {run.world_size}"),
        ("panbench", f"{p.panbench_version}, git {git}"),
        ("run time", format_seconds(p.total_seconds)),
    ]


def _provenance_html(rows: Sequence[tuple[str, str]]) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    return f'<dl class="prov">{items}</dl>'


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


def _task_figures(plots: Sequence[str], task: str, base: Path, root: Path) -> str:
    from panbench.plots import _safe

    wanted = {f"drift-{_safe(task)}.svg", f"budget-{_safe(task)}.svg"}
    shown = [p for p in plots if Path(p).name in wanted]
    return "".join(
        f'<figure><img src="{_e(os.path.relpath(root / p, base))}" alt="{_e(Path(p).stem)}">'
        f"<figcaption>{_e(Path(p).stem)}</figcaption></figure>"
        for p in shown
    )


# ------------------------------------------------------------------------------------ board
def write_task_pages(
    root: Path,
    title: str,
    suite_line: str,
    ranked: Sequence[Any],
    tasks: Sequence[str],
    plots: Sequence[str],
    *,
    out: Path | None = None,
) -> list[Path]:
    """Writes ``tasks/<task>.html`` for every task of a leaderboard.

    Args:
        root: the leaderboard folder.
        title: the board's title.
        suite_line: the suite's name, version and hash, as the index shows it.
        ranked: the submissions, best first (the index's row order).
        tasks: the tasks, in the index's column order.
        plots: the figures written, relative to ``root`` (their drift/budget SVGs are shown).
        out: the folder the pages are written into (default ``root/tasks``); their links
            are made for ``root/tasks``, where a staged build moves them.

    Returns:
        The pages written.
    """
    from panbench.io import atomic_write_text
    from panbench.plots import headline_scores

    folder = root / "tasks"  # where the pages are read from: their links start here
    target = folder if out is None else out
    if target.is_dir():  # pages of removed tasks must not linger
        for old in target.glob("*.html"):
            old.unlink()
    target.mkdir(parents=True, exist_ok=True)
    written = []
    scores = {sub.name: headline_scores(sub.results) for sub in ranked}
    for task in tasks:
        nav = " ".join(
            f'<a href="{_e(t)}.html">{_e(t)}</a>' if t != task else f"<b>{_e(t)}</b>" for t in tasks
        )
        rows, sections = [], []
        for rank, sub in enumerate(ranked, start=1):
            head = scores[sub.name].get(task)
            cell = _score_cell(head.score, head.low, head.high) if head else "<td>-</td>"
            rows.append(f'<tr><td>{rank}</td><td class="name">{_e(sub.name)}</td>{cell}</tr>')
            rollouts = _rollout_figures(root / "media" / sub.name, task, folder)
            sections.append(
                f'<section class="model" id="{_e(sub.name)}"><h3>{rank}. {_e(sub.name)}</h3>'
                f"{rollouts}{_provenance_html(provenance(sub.results))}</section>"
            )
        metric = next((s[task].metric for s in scores.values() if task in s), "")
        body = (
            f'<p><a href="../index.html">&larr; {_e(title)}</a></p>\n'
            f"<h1>{_e(task)}</h1>\n<p>{_e(suite_line)}; headline metric {_e(metric)}.</p>\n"
            f'<nav class="tasks">Tasks: {nav}</nav>\n'
            '<div class="table-wrap"><table><thead><tr><th>#</th><th class="name">model</th>'
            "<th>score (0-100), 95% CI</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></div>\n"
            f"<h2>Curves</h2>\n{_task_figures(plots, task, folder, root)}\n"
            '<h2>Rollouts and provenance</h2>\n<p class="notes">Each animation shows the '
            "model's prediction (left) beside the true frames (right), one horizon step per "
            "frame.</p>\n" + "\n".join(sections)
        )
        page = _page(f"{task} · {title}", body)
        written.append(atomic_write_text(target / f"{task}.html", page))
    return written


def task_nav(tasks: Sequence[str]) -> str:
    """The index's line of links to the per-task pages."""
    links = " ".join(f'<a href="tasks/{_e(t)}.html">{_e(t)}</a>' for t in tasks)
    return f'<nav class="tasks">Per-task pages with rollouts, curves and where each result came from: {links}</nav>'


# ------------------------------------------------------------------------------------ report
def _metrics_table(results: Any, tasks: Sequence[str]) -> str:
    from panbench.plots import headline_scores
    from panbench.report import short_reason

    heads = headline_scores(results)
    rows = []
    for name in tasks:
        task = results.tasks[name]
        head = heads[name]
        rows.append(
            f'<tr><td class="name"><b>{_e(name)}</b></td><td class="name">headline (0-100)</td>'
            f"{_score_cell(head.score, head.low, head.high)}<td></td><td></td></tr>"
        )
        for metric, entry in task.metrics.items():
            low, high = (math.nan if b is None else b for b in entry.ci95)
            arrow = "&uarr;" if entry.higher_is_better else "&darr;"
            value = math.nan if entry.value is None else entry.value
            digits = 3
            ci = (
                f'<span class="ci">[{_fmt(low, digits)}, {_fmt(high, digits)}]</span>'
                if math.isfinite(low)
                else ""
            )
            rows.append(
                f'<tr><td></td><td class="name">{_e(metric)}</td>'
                f"<td>{_fmt(value, digits)}{ci}</td><td>{entry.n}</td><td>{arrow}</td></tr>"
            )
        for metric, reason in task.skipped.items():
            rows.append(
                f'<tr><td></td><td class="name">{_e(metric)}</td>'
                f'<td colspan="3" class="reason">skipped: {_e(short_reason(reason))}</td></tr>'
            )
    return (
        '<div class="table-wrap"><table><thead><tr><th class="name">task</th>'
        '<th class="name">metric</th><th>value, 95% CI</th><th>n</th><th></th></tr></thead>'
        "<tbody>" + "".join(rows) + "</tbody></table></div>"
    )


def write_report(
    run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
) -> Path:
    """Renders one results folder as a static page: scores with CIs, curves, rollouts, provenance.

    Args:
        run_dir: a folder written by ``panbench evaluate`` (``--save-videos K`` adds rollouts).
        out: the report folder (default ``<run_dir>/report``); holds index.html, plots/, media/.

    Returns:
        The page written.

    Raises:
        ResultsError: the folder holds no readable results.json (naming what was expected).
    """
    from panbench.figure_data import load_folder_samples
    from panbench.io import atomic_write_text
    from panbench.plots import plot_results, suite_task_order
    from panbench.results import load_results

    run_dir = Path(run_dir)
    if run_dir.name == "results.json":
        run_dir = run_dir.parent
    results = load_results(run_dir)
    out = Path(out) if out is not None else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    label = results.model.name
    tasks = suite_task_order(results)
    plots = plot_results(
        [(label, results)],
        out / "plots",
        formats=["svg"],
        tasks=tasks,
        samples=[load_folder_samples(run_dir)],
    )
    store_rollouts(run_dir, out / "media", per_task=ROLLOUTS_PER_TASK)
    rel = [p.relative_to(out).as_posix() for p in plots]
    sections = []
    for task in tasks:
        figures = _task_figures(rel, task, out, out)
        rollouts = _rollout_figures(out / "media", task, out)
        sections.append(f'<section class="model"><h3>{_e(task)}</h3>{figures}{rollouts}</section>')
    overview = "".join(
        f'<figure><img src="{_e(p)}" alt="{_e(Path(p).stem)}"></figure>'
        for p in rel
        if Path(p).stem in ("scores", "radar")
    )
    summary = results.summary.score if results.summary is not None else None
    body = (
        f"<h1>{_e(label)} on {_e(results.suite.name)}</h1>\n"
        f"<p>suite score {_fmt(summary)} (mean of the task headlines); {results.n_episodes} "
        "episodes. Values are means over episodes with 95% bootstrap CIs.</p>\n"
        f"{_provenance_html(provenance(results))}\n{overview}\n"
        f"<h2>Scores</h2>\n{_metrics_table(results, tasks)}\n"
        '<h2>Per task</h2>\n<p class="notes">Curves: each metric per horizon step, shaded '
        "95% CI over episodes. Animations: the prediction (left) beside the true frames "
        "(right).</p>\n" + "\n".join(sections)
    )
    return atomic_write_text(out / "index.html", _page(f"{label} on {results.suite.name}", body))
