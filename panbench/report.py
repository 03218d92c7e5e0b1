"""Human-readable summaries of results files (terminal tables)."""

from __future__ import annotations

import math
from collections.abc import Mapping
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

    res = as_results(results)
    console = console or Console()
    table = Table(title=f"{res.model.name} on {res.suite.name}")
    for col in ("task", "metric", "value", "95% CI", "n", ""):
        table.add_column(col)
    for name, task in res.tasks.items():
        score = task.headline.score
        table.add_row(f"[bold]{name}[/]", "[bold]headline (0-100)[/]", _fmt(score, 1), "", "", "")
        for metric, entry in task.metrics.items():
            lo, hi = entry.ci95
            arrow = "↑" if entry.higher_is_better else "↓"
            ci = f"[{_fmt(lo)}, {_fmt(hi)}]" if lo is not None else "-"
            table.add_row("", metric, _fmt(entry.value), ci, str(entry.n), arrow)
        for metric in task.skipped:
            table.add_row("", metric, "skipped", "see below", "", "")
    console.print(table)
    reasons: dict[str, list[str]] = {}
    for name, task in res.tasks.items():
        for metric, reason in task.skipped.items():
            reasons.setdefault(reason, []).append(f"{name}/{metric}")
    for reason, where in reasons.items():
        console.print(f"[yellow]skipped[/] {', '.join(where)}: {escape(reason)}")
    score = None if res.summary is None else res.summary.score
    console.print(f"suite score: {_fmt(score, 1)} (mean of task headlines)")
