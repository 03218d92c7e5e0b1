"""Comparison figures from results files: task scores, drift curves, planning budgets, a radar.

Runs are read as :class:`panbench.results_model.Results` (the typed results model); a plain
results dict is parsed into one first.

Every figure is written as PNG and SVG with the same colour for a model in every figure (see
:func:`model_colors`), from a colour-blind-safe palette (Okabe & Ito 2008, then Paul Tol's
"muted" set). Only the aggregates in ``results.json`` are read: headline scores with their 95%
CIs, the per-step ``curve`` of each metric (the drift curve, metric against horizon step) and,
for planning tasks, success against planning budget.

Curves of planning tasks (``closed_loop``: the task entry carries ``planning``) are success
within b steps for b = 1..budget and are plotted against the budget, as is any metric entry that
carries its own ``budgets`` list; every other ``curve`` is a drift curve over horizon steps 1..T,
except set-level entries with ``offsets`` (FVD_n), plotted against the window offset.

Figures are built on :class:`matplotlib.figure.Figure` (no pyplot global state) and saved with
fixed metadata, so rebuilding a figure from the same results gives the same SVG bytes.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.errors import ConfigError, DataError
from panbench.results_model import MetricEntry, Results, TaskResult, as_results, parse_results

__all__ = [
    "FIXED_COLORS",
    "PALETTE",
    "HeadlineScore",
    "headline_scores",
    "load_runs",
    "model_colors",
    "plot_results",
]

#: Okabe-Ito (without yellow, hard to see on white), then Paul Tol's muted scheme.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#332288",  # indigo
    "#117733",  # green
    "#88CCEE",  # cyan
    "#999933",  # olive
    "#CC6677",  # rose
    "#882255",  # wine
    "#44AA99",  # teal
    "#AA4499",  # purple
    "#DDCC77",  # sand
)

#: Colours the built-in baselines and the reference model keep in every figure of every
#: leaderboard, so readers learn them once.
FIXED_COLORS: Mapping[str, str] = {
    "pan-ref": "#0072B2",
    "oracle": "#000000",
    "copy-last": "#E69F00",
    "random-action": "#56B4E9",
}

_LINESTYLES = ("-", "--", ":", "-.")
_FORMATS = ("png", "svg")


class PlotError(DataError):
    """The inputs cannot be plotted together (e.g. results of different suites)."""


@dataclass(frozen=True)
class HeadlineScore:
    """A task's headline score (0-100) with its 95% CI, mapped from the headline metric's CI.

    Attributes:
        score: the headline score, or NaN when the task has none (e.g. a skipped metric).
        low: lower bound, NaN when unknown (fewer than 2 episodes, set-level metric).
        high: upper bound, NaN when unknown.
        metric: the headline metric's name.
    """

    score: float
    low: float
    high: float
    metric: str


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else math.nan


def headline_scores(results: Results | Mapping[str, Any]) -> dict[str, HeadlineScore]:
    """Per task, the headline score with a 95% CI in score units.

    Every protocol's headline is a non-decreasing function of the headline metric's mean (a
    clipped rescaling to 0-100), so the CI of the score is that function applied to the bounds
    of the metric's bootstrap CI.

    Args:
        results: the typed results, or a parsed ``results.json`` (parsed into them).

    Returns:
        ``{task: HeadlineScore}`` in the results' task order.
    """
    # The same function the harness and the validator use, so the bounds match the score.
    from panbench.metrics.registry import headline_score

    out: dict[str, HeadlineScore] = {}
    for name, task in as_results(results).tasks.items():
        metric = task.headline.metric
        score = _num(task.headline.score)
        entry = task.metrics.get(metric)
        low = high = math.nan
        if entry is not None and math.isfinite(score):
            bounds = []
            for b in entry.ci95:
                if b is None:
                    break
                s = headline_score(metric, b)
                bounds.append(math.nan if s is None else s)
            if len(bounds) == 2:
                low, high = min(bounds), max(bounds)
        out[name] = HeadlineScore(score, low, high, metric)
    return out


def model_colors(labels: Iterable[str]) -> dict[str, str]:
    """A colour per model label, the same whatever order or subset the labels come in.

    Labels in :data:`FIXED_COLORS` keep their colour; the others take the remaining palette
    colours in sorted order (cycling past the palette's end).

    Args:
        labels: model labels (duplicates are ignored).

    Returns:
        ``{label: "#rrggbb"}``.
    """
    unique = sorted(set(labels))
    out = {lab: FIXED_COLORS[lab] for lab in unique if lab in FIXED_COLORS}
    free = [c for c in PALETTE if c not in out.values()] or list(PALETTE)
    others = [lab for lab in unique if lab not in out]
    for i, lab in enumerate(others):
        out[lab] = free[i % len(free)]
    return out


def _linestyle(label: str, labels: Sequence[str]) -> str:
    # Models with identical curves (e.g. two that both act at random) would hide each other;
    # a dash pattern per model keeps every line visible, and apart past the palette's end.
    ordered = sorted(set(labels))
    return _LINESTYLES[ordered.index(label) % len(_LINESTYLES)]


# ------------------------------------------------------------------------------------ loading
def load_runs(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[str, Results]]:
    """Reads results folders (or ``results.json`` files, or leaderboard submissions) for plotting.

    Labels are the model names; when two runs share a model name, the folder name is appended.

    Raises:
        PlotError: the runs belong to different suites (name, version or hash differ).
        ResultsError: a results file is missing, has another schema version or a bad field.
    """
    from panbench.results import load_results

    runs: list[tuple[str, Results, str]] = []
    for p in paths:
        path = Path(p)
        if path.is_file() and path.suffix == ".json" and path.name != "results.json":
            from panbench.submissions import read_submission

            sub = read_submission(path)
            runs.append((sub["name"], parse_results(sub["results"], source=path), path.stem))
            continue
        data = load_results(path)
        folder = path.parent if path.name == "results.json" else path
        runs.append((data.model.name, data, folder.name))
    if not runs:
        raise ConfigError("Expected at least one results folder to plot, but got none.")
    suites = {(r.suite.name, r.suite.version, r.suite.hash) for _, r, _ in runs}
    if len(suites) > 1:
        shown = ", ".join(f"{n} v{v} ({h[:12]})" for n, v, h in sorted(suites))
        raise PlotError(
            f"Expected results of one suite (name, version and hash), but got {len(suites)}: "
            f"{shown}. Plot each suite separately."
        )
    names = [name for name, _, _ in runs]
    out = []
    for name, data, where in runs:
        label = name if names.count(name) == 1 else f"{name} ({where})"
        out.append((label, data))
    return out


# ------------------------------------------------------------------------------------ figures
def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "task"


def _save(fig: Any, out: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    written = []
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        # Fixed metadata: no creation date, so the same results give the same bytes.
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(path, format=fmt, dpi=120, metadata=meta, bbox_inches="tight")
        written.append(path)
    return written


def _new_figure(width: float, height: float, **kw: Any) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained", **kw)


def _scores_figure(
    runs: Sequence[tuple[str, Results]], colors: Mapping[str, str], tasks: Sequence[str]
) -> Any:
    import numpy as np

    width = 0.8 / len(runs)
    fig = _new_figure(max(6.0, 1.3 * len(tasks) + 2.0), 4.0)
    ax = fig.add_subplot()
    x = np.arange(len(tasks))
    for i, (label, results) in enumerate(runs):
        scores = headline_scores(results)
        vals = np.array([scores[t].score if t in scores else math.nan for t in tasks])
        lo = np.array([scores[t].low if t in scores else math.nan for t in tasks])
        hi = np.array([scores[t].high if t in scores else math.nan for t in tasks])
        err = np.vstack([np.nan_to_num(vals - lo), np.nan_to_num(hi - vals)]).clip(min=0.0)
        ax.bar(
            x - 0.4 + width * (i + 0.5),
            np.nan_to_num(vals),
            width,
            yerr=err,
            capsize=2,
            color=colors[label],
            edgecolor="white",
            linewidth=0.5,
            error_kw={"elinewidth": 0.8, "ecolor": "#444444"},
            label=label,
        )
    ax.set_xticks(x, tasks, rotation=20, ha="right")
    ax.set_ylim(0, 105)
    ax.set_ylabel("headline score (0-100), 95% CI")
    ax.set_title(f"Task scores on {runs[0][1].suite.name}")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def _radar_figure(
    runs: Sequence[tuple[str, Results]], colors: Mapping[str, str], tasks: Sequence[str]
) -> Any:
    import numpy as np

    angles = np.linspace(0.0, 2 * np.pi, len(tasks), endpoint=False)
    closed = np.concatenate([angles, angles[:1]])
    fig = _new_figure(6.5, 5.5)
    ax = fig.add_subplot(projection="polar")
    labels = [lab for lab, _ in runs]
    for label, results in runs:
        scores = headline_scores(results)
        vals = np.array([np.nan_to_num(scores[t].score) if t in scores else 0.0 for t in tasks])
        ring = np.concatenate([vals, vals[:1]])
        ax.plot(closed, ring, color=colors[label], linestyle=_linestyle(label, labels), label=label)
        ax.fill(closed, ring, color=colors[label], alpha=0.08)
    ax.set_xticks(angles, tasks)
    ax.set_ylim(0, 100)
    ax.set_yticks([25, 50, 75, 100])
    # Radial labels between the first two spokes, clear of the task names.
    ax.set_rlabel_position(180.0 / len(tasks))
    ax.set_title("Headline scores (0-100)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.05, 1.05), frameon=False)
    return fig


def _curve_axes(fig: Any, n: int) -> list[Any]:
    cols = min(3, n)
    rows = math.ceil(n / cols)
    return [fig.add_subplot(rows, cols, i + 1) for i in range(n)]


def _is_budget_curve(task: TaskResult, entry: MetricEntry) -> bool:
    # Planning tasks (their entry carries "planning") store success within b steps, b = 1..budget.
    return entry.budgets is not None or task.planning is not None


def _drift_metrics(task: TaskResult) -> list[str]:
    return [
        m
        for m, e in task.metrics.items()
        if not _is_budget_curve(task, e) and len(e.curve or ()) >= 2
    ]


def _budget_metrics(task: TaskResult) -> list[str]:
    return [m for m, e in task.metrics.items() if _is_budget_curve(task, e) and e.curve]


def _entry(results: Results, task: str, metric: str) -> MetricEntry | None:
    found = results.tasks.get(task)
    return None if found is None else found.metrics.get(metric)


def _curve_figure(
    runs: Sequence[tuple[str, Results]],
    colors: Mapping[str, str],
    task: str,
    metrics: Sequence[str],
    kind: str,
) -> Any:
    from matplotlib.ticker import MaxNLocator

    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig = _new_figure(4.0 * cols + 1.5, 3.0 * rows)
    axes = _curve_axes(fig, len(metrics))
    labels = [lab for lab, _ in runs]
    for ax, metric in zip(axes, metrics, strict=True):
        hib = None
        for label, results in runs:
            entry = _entry(results, task, metric)
            if entry is None or not entry.curve:
                continue
            hib = entry.higher_is_better
            y = [math.nan if v is None else float(v) for v in entry.curve]
            if kind == "budget":
                x = list(entry.budgets or range(1, len(y) + 1))
            elif entry.level == "set" and entry.offsets:
                x = list(entry.offsets)
            else:
                x = list(range(1, len(y) + 1))
            ax.plot(
                x,
                y,
                color=colors[label],
                linestyle=_linestyle(label, labels),
                marker="o" if len(y) <= 16 else None,
                markersize=3,
                label=label,
            )
        arrow = "" if hib is None else (" (higher is better)" if hib else " (lower is better)")
        ax.set_title(f"{metric}{arrow}", fontsize=9)
        if kind == "budget":
            ax.set_xlabel("planning budget (steps)")
        else:
            entry0 = _entry(runs[0][1], task, metric)
            offsets = entry0.offsets if entry0 is not None else None
            ax.set_xlabel("window offset" if offsets else "horizon step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right upper", frameon=False)
    what = "success against planning budget" if kind == "budget" else "drift over the horizon"
    fig.suptitle(f"{task}: {what}")
    return fig


def plot_results(
    runs: Sequence[tuple[str, Results | Mapping[str, Any]]],
    out: str | os.PathLike[str],
    *,
    formats: Sequence[str] = _FORMATS,
    tasks: Sequence[str] | None = None,
) -> list[Path]:
    """Writes the comparison figures of some runs of one suite into ``out``.

    Figures: ``scores`` (per-task headline scores with 95% CI bars), ``radar`` (headline scores,
    with at least 3 tasks), ``drift-<task>`` (every metric's per-step curve, models overlaid) and
    ``budget-<task>`` (planning success against budget, where the results carry it).

    Args:
        runs: ``(label, results)`` pairs of one suite (typed results, or plain results dicts).
        out: the output folder (created if missing).
        formats: any of ``"png"`` and ``"svg"``.
        tasks: the task order in figures (default: the first run's).

    Returns:
        The paths written, in a stable order.

    Raises:
        ConfigError: no runs, or an unknown format.
    """
    import matplotlib

    if not runs:
        raise ConfigError("Expected at least one run to plot, but got none.")
    bad = [f for f in formats if f not in _FORMATS]
    if bad or not formats:
        raise ConfigError(f"Expected formats among {list(_FORMATS)}, but got {list(formats)}.")
    typed = [(label, as_results(results)) for label, results in runs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    colors = model_colors(lab for lab, _ in typed)
    first = typed[0][1].tasks
    order = list(tasks) if tasks is not None else list(first)
    written: list[Path] = []
    # Fixed SVG ids, text kept as text (small files): the same input gives the same bytes.
    with matplotlib.rc_context({"svg.hashsalt": "panbench", "svg.fonttype": "none"}):
        written += _save(_scores_figure(typed, colors, order), out, "scores", formats)
        if len(order) >= 3:
            written += _save(_radar_figure(typed, colors, order), out, "radar", formats)
        for task in order:
            entry = first[task]
            metrics = _drift_metrics(entry)
            if metrics:
                fig = _curve_figure(typed, colors, task, metrics, "drift")
                written += _save(fig, out, f"drift-{_safe(task)}", formats)
            budget = _budget_metrics(entry)
            if budget:
                fig = _curve_figure(typed, colors, task, budget, "budget")
                written += _save(fig, out, f"budget-{_safe(task)}", formats)
    return written
