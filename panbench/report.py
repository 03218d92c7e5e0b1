"""Human-readable summaries of results files (terminal tables)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def print_summary(results: Mapping[str, Any], console: Any = None) -> None:
    """Prints one row per task and metric: value, 95% CI, n, direction; then the suite score."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"{results['model']['name']} on {results['suite']['name']}")
    for col in ("task", "metric", "value", "95% CI", "n", ""):
        table.add_column(col)
    for name, task in results["tasks"].items():
        score = task["headline"]["score"]
        table.add_row(f"[bold]{name}[/]", "[bold]headline (0-100)[/]", _fmt(score, 1), "", "", "")
        for metric, entry in task["metrics"].items():
            lo, hi = entry["ci95"]
            arrow = "↑" if entry["higher_is_better"] else "↓"
            ci = f"[{_fmt(lo)}, {_fmt(hi)}]" if lo is not None else "-"
            table.add_row("", metric, _fmt(entry["value"]), ci, str(entry["n"]), arrow)
        for metric in task.get("skipped", {}):
            table.add_row("", metric, "skipped", "see below", "", "")
    console.print(table)
    reasons: dict[str, list[str]] = {}
    for name, task in results["tasks"].items():
        for metric, reason in task.get("skipped", {}).items():
            reasons.setdefault(reason, []).append(f"{name}/{metric}")
    for reason, where in reasons.items():
        console.print(f"[yellow]skipped[/] {', '.join(where)}: {escape(reason)}")
    console.print(f"suite score: {_fmt(results['summary']['score'], 1)} (mean of task headlines)")
