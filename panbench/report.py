"""Human-readable summaries of results files (terminal tables)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from panbench.results_model import Results, as_results


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def print_summary(results: Results | Mapping[str, Any], console: Any = None) -> None:
    """Prints one row per task and metric: value, 95% CI, n, direction; then the suite score.

    Args:
        results: the typed results, or a plain results dict (parsed into them).
        console: a rich console (default: a new one on stdout).
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from panbench.plots import headline_scores, suite_task_order

    res = as_results(results)
    heads = headline_scores(res)
    console = console or Console()
    table = Table(title=f"{res.model.name} on {res.suite.name}")
    for col in ("task", "metric", "value", "95% CI", "n", ""):
        table.add_column(col)
    for name in suite_task_order(res):  # the leaderboard's column order
        task = res.tasks[name]
        head = heads[name]
        ci = f"[{_fmt(head.low, 1)}, {_fmt(head.high, 1)}]" if math.isfinite(head.low) else "-"
        table.add_row(f"[bold]{name}[/]", "[bold]headline (0-100)[/]", _fmt(head.score, 1), ci)
        for metric, entry in task.metrics.items():
            lo, hi = entry.ci95
            arrow = "↑" if entry.higher_is_better else "↓"
            ci = f"[{_fmt(lo)}, {_fmt(hi)}]" if lo is not None else "-"
            table.add_row("", metric, _fmt(entry.value), ci, str(entry.n), arrow)
        for metric in task.skipped:
            table.add_row("", metric, "skipped", "see below", "", "")
    console.print(table)
    for line in skipped_notices({n: t.skipped for n, t in res.tasks.items()}):
        console.print(f"[yellow]skipped[/] {escape(line)}", soft_wrap=True)
    mean, low, high = suite_ci([h for h in heads.values()])
    ci = f" [{_fmt(low, 1)}, {_fmt(high, 1)}]" if math.isfinite(low) else ""
    console.print(f"suite score: {_fmt(mean, 1)}{ci} (mean of task headlines, 95% CI)")


WEIGHTS_COLUMNS = ("name", "status", "size", "licence", "sha256", "from")
"""The columns of ``panbench weights list``."""

_STATUS_MARKS = {"missing": "[yellow]missing[/]", "bad sha256": "[bold red]bad sha256[/]"}


def weights_rows(rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """``panbench weights list`` rows from :func:`panbench.weights.describe`: whole names,
    coloured status, sizes in binary units, 12-hex-digit pins."""
    return [
        [
            r["name"],
            _STATUS_MARKS.get(r["status"], f"[green]{r['status']}[/]"),
            human_size(r["size"]),
            r["licence"],
            r["sha256"][:12],
            r["source"],
        ]
        for r in rows
    ]


def human_size(n: int | None) -> str:
    """Bytes in binary units: ``244408911`` -> ``"233.1 MiB"``; None -> ``"?"``.

    Example:
        >>> human_size(244408911), human_size(512), human_size(None)
        ('233.1 MiB', '512 B', '?')
    """
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


_COMMAND = re.compile(r"`(panbench [^`]+)`")


def short_reason(reason: str, limit: int = 90) -> str:
    """A skip reason in one line: its first sentence and, if it names one, the command to fix it.

    Example:
        >>> short_reason("Weights file for 'alexnet' not found at /c/a.pth. Run "
        ...              "`panbench weights pull alexnet` (needs network), or copy it.")
        "Weights file for 'alexnet' not found at /c/a.pth; fix: `panbench weights pull alexnet`"
    """
    first = re.split(r"(?<=[^.\s][.])\s", reason.strip(), maxsplit=1)[0].rstrip(".")
    first = " ".join(first.split())
    if len(first) > limit:
        first = first[: limit - 1].rstrip() + "…"
    fix = _COMMAND.search(reason)
    return f"{first}; fix: `{fix.group(1)}`" if fix else first


def skipped_notices(skipped: Mapping[str, Mapping[str, str]]) -> list[str]:
    """One line per skipped metric and reason, naming how many tasks it affects.

    Args:
        skipped: ``{task: {metric: reason}}`` (the results' ``skipped`` of each task).

    Returns:
        Lines like ``lpips on 6 tasks: Weights file for 'alexnet' not found ...; fix: `...```;
        the full reasons stay in results.json.
    """
    grouped: dict[tuple[str, str], list[str]] = {}
    for task, metrics in skipped.items():
        for metric, reason in metrics.items():
            grouped.setdefault((metric, short_reason(reason)), []).append(task)
    lines = []
    for (metric, reason), tasks in grouped.items():
        where = tasks[0] if len(tasks) == 1 else f"{len(tasks)} tasks"
        lines.append(f"{metric} on {where}: {reason}")
    return lines


def suite_ci(scores: Sequence[Any]) -> tuple[float, float, float]:
    """The mean of task headline scores with an approximate 95% CI.

    The tasks' episodes are independent, so the mean's standard error is the root sum of the
    tasks' squared standard errors over the number of tasks; each task's standard error is read
    from its 95% CI as ``(high - low) / (2 * 1.96)`` (a normal approximation of the bootstrap).

    Args:
        scores: :class:`panbench.plots.HeadlineScore` of each task (NaN scores are left out).

    Returns:
        ``(mean, low, high)``; NaNs when no task has a score, NaN bounds when one lacks a CI.
    """
    have = [s for s in scores if math.isfinite(s.score)]
    if not have:
        return math.nan, math.nan, math.nan
    mean = sum(s.score for s in have) / len(have)
    if not all(math.isfinite(s.low) and math.isfinite(s.high) for s in have):
        return mean, math.nan, math.nan
    half = math.sqrt(sum(((s.high - s.low) / 2) ** 2 for s in have)) / len(have)
    return mean, max(mean - half, 0.0), min(mean + half, 100.0)
