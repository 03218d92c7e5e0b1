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
    "PRINT_DPI",
    "HeadlineScore",
    "headline_scores",
    "load_runs",
    "load_samples",
    "model_colors",
    "plot_results",
    "rank_order",
]

#: Okabe-Ito (without yellow, hard to see on white), then Paul Tol's muted scheme. Sky blue
#: comes late: beside blue it is the pair readers confuse first.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#000000",  # black
    "#332288",  # indigo
    "#117733",  # green
    "#88CCEE",  # cyan
    "#999933",  # olive
    "#CC6677",  # rose
    "#882255",  # wine
    "#56B4E9",  # sky blue
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
    "random-action": "#009E73",
}

_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<")
_FORMATS = ("png", "svg")
_ALL_FORMATS = ("png", "svg", "pdf")
PRINT_DPI = 300
"""PNG resolution: print quality at the figures' size in inches."""


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


def _marker(label: str, labels: Sequence[str]) -> str:
    ordered = sorted(set(labels))
    return _MARKERS[ordered.index(label) % len(_MARKERS)]


def rank_order(runs: Sequence[tuple[str, Results]]) -> list[int]:
    """Indices of ``runs`` best suite score first, then by label: the leaderboard's row order.

    Every figure lists models in this order, so a reader finds them as in the table.
    """

    def key(i: int) -> tuple[float, str]:
        summary = runs[i][1].summary
        score = None if summary is None else summary.score
        return (-(score if isinstance(score, (int, float)) else -math.inf), runs[i][0])

    return sorted(range(len(runs)), key=key)


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


_METADATA = {
    "svg": {"Date": None},
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "Producer": None},
}


def _save(
    fig: Any, out: Path, stem: str, formats: Sequence[str], dpi: int = PRINT_DPI
) -> list[Path]:
    written = []
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        # Fixed metadata: no creation date, so the same results give the same bytes.
        fig.savefig(path, format=fmt, dpi=dpi, metadata=_METADATA[fmt], bbox_inches="tight")
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
    fig = _new_figure(7.0, 5.5)
    ax = fig.add_subplot(projection="polar")
    # Clockwise from the top: the tasks read in the table's left-to-right order.
    ax.set_theta_offset(np.pi / 2)
    ax.set_theta_direction(-1)
    labels = [lab for lab, _ in runs]
    for label, results in runs:
        scores = headline_scores(results)
        vals = np.array([np.nan_to_num(scores[t].score) if t in scores else 0.0 for t in tasks])
        ring = np.concatenate([vals, vals[:1]])
        ax.plot(
            closed,
            ring,
            color=colors[label],
            linestyle=_linestyle(label, labels),
            marker=_marker(label, labels),
            markersize=3.5,
            label=label,
        )
        ax.fill(closed, ring, color=colors[label], alpha=0.06)
    ax.set_xticks(angles, tasks, fontsize=9)
    ax.tick_params(axis="x", pad=10)
    # Names on the left half end at the ring, those on the right start there: none crosses it.
    for text, angle in zip(ax.get_xticklabels(), angles, strict=True):
        side = math.sin(angle)  # clockwise from the top: sin > 0 is the right half
        text.set_horizontalalignment("left" if side > 0.1 else "right" if side < -0.1 else "center")
    ax.set_ylim(0, 100)
    ax.set_yticks([25, 50, 75, 100], ["25", "50", "75", "100"], fontsize=7, color="#555555")
    # Radial labels between the first two spokes, clear of the task names.
    ax.set_rlabel_position(180.0 / len(tasks))
    ax.set_title("Headline scores (0-100)", pad=24)
    ax.legend(loc="upper left", bbox_to_anchor=(1.12, 1.12), frameon=False)
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


def _x_values(kind: str, entry: MetricEntry, n: int) -> list[float]:
    if kind == "budget":
        return list(entry.budgets or range(1, n + 1))
    if entry.level == "set" and entry.offsets:
        return list(entry.offsets)
    return list(range(1, n + 1))


def _metric_cap(metric: str) -> tuple[float, str] | None:
    """The catalogue's upper bound of a higher-is-better metric and its unit (None: unbounded)."""
    from panbench.metrics.registry import get_metric

    try:
        info = get_metric(metric)
    except Exception:  # a plugin's metric the catalogue does not know: drawn as is
        return None
    cap = info.range[1]
    return None if cap is None or not info.higher_is_better else (float(cap), info.unit)


def suite_task_order(results: Results) -> list[str]:
    """The tasks in their suite's order (the leaderboard's columns) when the suite is known here.

    Results files may store tasks in another order (submissions sort their keys); the shipped
    or named suite with the same hash gives the order its YAML lists; otherwise the file's.
    """
    names = list(results.tasks)
    try:
        from panbench.suite import load_suite

        suite = load_suite(results.suite.name)
    except Exception:  # a custom or unknown suite: the file's order
        return names
    if suite.hash != results.suite.hash:
        return names
    listed = [t.name for t in suite.tasks if t.name in results.tasks]
    return listed + [t for t in names if t not in listed]


def _identical_groups(curves: Mapping[str, Sequence[float]]) -> list[list[str]]:
    """Labels whose curves are equal value for value (they would hide each other)."""
    groups: dict[tuple[float, ...], list[str]] = {}
    for label, y in curves.items():
        key = tuple(round(v, 9) if math.isfinite(v) else math.inf for v in y)
        groups.setdefault(key, []).append(label)
    return [g for g in groups.values() if len(g) > 1]


def _curve_panel(
    ax: Any,
    panel: Mapping[str, tuple[list[float], list[float], Any]],
    colors: Mapping[str, str],
    labels: Sequence[str],
    cap: tuple[float, str] | None,
) -> list[str]:
    """One metric's curves: lines with markers, CI bands, the cap marked.

    Returns:
        Notes for the panel's title: the groups of identical curves.
    """
    from panbench.figure_data import cap_view

    # Shares and probabilities (a cap of 1) read best on their whole scale; a cap such as
    # PSNR's 100 dB (identical frames) is a convention, and clipping below it shows the rest.
    limit = cap[0] if cap is not None and cap[0] > 1.0 else None
    view = cap_view({lab: y for lab, (_, y, _) in panel.items()}, limit)
    same = _identical_groups({lab: y for lab, (_, y, _) in panel.items()})
    # Identical curves are drawn thick-under-thin, so each colour shows as a stripe.
    width = {lab: 1.5 + 2.0 * (len(g) - 1 - k) for g in same for k, lab in enumerate(g)}
    for label, (x, y, band) in panel.items():
        style = {
            "color": colors[label],
            "linestyle": "-" if label in width else _linestyle(label, labels),
            "linewidth": width.get(label, 1.5),
            "marker": _marker(label, labels) if len(y) <= 24 and label not in width else None,
            "markersize": 3.5,
            "label": label,
        }
        if view is not None and label in view.at_cap:
            ax.plot(x, [view.top] * len(x), clip_on=False, **style)
            continue
        ax.plot(x, y, **style)
        if band is not None:
            ax.fill_between(x, band[0], band[1], color=colors[label], alpha=0.15, linewidth=0)
    xs = [v for x, _, _ in panel.values() for v in x]
    if xs:  # the whole range even when a curve has a single finite point
        pad = 0.03 * max(max(xs) - min(xs), 1)
        ax.set_xlim(min(xs) - pad, max(xs) + pad)
    if view is not None:
        ax.set_ylim(top=view.top)
        names = ", ".join(view.at_cap)
        unit = f" {cap[1]}" if cap is not None and cap[1] else ""
        ax.annotate(
            f"{names}: {view.cap:g}{unit}, the cap (drawn at the top edge)",
            xy=(0.01, 0.97),
            xycoords="axes fraction",
            va="top",
            fontsize=7,
            color="#333333",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5},
        )
    return ["identical: " + " = ".join(g) for g in same]


def _legend_handles(
    runs: Sequence[tuple[str, Results]], colors: Mapping[str, str]
) -> tuple[list[Any], list[str]]:
    """One entry per model in rank order, in its usual style (panels may draw it otherwise)."""
    from matplotlib.lines import Line2D

    labels = [lab for lab, _ in runs]
    styles: list[dict[str, Any]] = [
        {"color": colors[lab], "linestyle": _linestyle(lab, labels), "marker": _marker(lab, labels)}
        for lab in labels
    ]
    handles = [Line2D([], [], markersize=3.5, **style) for style in styles]
    return handles, labels


def _curve_figure(
    runs: Sequence[tuple[str, Results]],
    colors: Mapping[str, str],
    task: str,
    metrics: Sequence[str],
    kind: str,
    samples: Sequence[Any] | None = None,
) -> Any:
    from matplotlib.ticker import MaxNLocator

    from panbench.figure_data import curve_band

    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig = _new_figure(4.0 * cols, 3.0 * rows + 0.6)
    axes = _curve_axes(fig, len(metrics))
    labels = [lab for lab, _ in runs]
    banded = False
    for ax, metric in zip(axes, metrics, strict=True):
        hib = None
        panel: dict[str, tuple[list[float], list[float], Any]] = {}
        for i, (label, results) in enumerate(runs):
            entry = _entry(results, task, metric)
            if entry is None or not entry.curve:
                continue
            hib = entry.higher_is_better
            y = [math.nan if v is None else float(v) for v in entry.curve]
            band = None
            records = (samples[i] or {}).get(task) if samples is not None else None
            if kind == "drift" and entry.level != "set" and records:
                found = curve_band(records, metric)
                if found is not None and len(found[0]) == len(y):
                    band = (found[1], found[2])
                    banded = True
            panel[label] = (_x_values(kind, entry, len(y)), y, band)
        notes = _curve_panel(ax, panel, colors, labels, _metric_cap(metric))
        arrow = "" if hib is None else (" (higher is better)" if hib else " (lower is better)")
        ax.set_title("\n".join([f"{metric}{arrow}", *notes]), fontsize=9)
        if kind == "budget":
            ax.set_xlabel("planning budget (steps)")
        else:
            entry0 = _entry(runs[0][1], task, metric)
            offsets = entry0.offsets if entry0 is not None else None
            ax.set_xlabel("window offset" if offsets else "horizon step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, names = _legend_handles(runs, colors)
    # Below the panels: a legend beside the title would run into it as models are added.
    fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 5), frameon=False)
    what = "success against planning budget" if kind == "budget" else "drift over the horizon"
    note = ", shaded: 95% CI over episodes" if banded else ""
    fig.suptitle(f"{task}: {what}{note}")
    return fig


def plot_results(
    runs: Sequence[tuple[str, Results | Mapping[str, Any]]],
    out: str | os.PathLike[str],
    *,
    formats: Sequence[str] = _FORMATS,
    tasks: Sequence[str] | None = None,
    samples: Sequence[Any] | None = None,
    dpi: int = PRINT_DPI,
) -> list[Path]:
    """Writes the comparison figures of some runs of one suite into ``out``.

    Figures: ``scores`` (per-task headline scores with 95% CI bars), ``radar`` (headline scores,
    with at least 3 tasks), ``drift-<task>`` (every metric's per-step curve, models overlaid,
    with 95% CI bands where ``samples`` are given) and ``budget-<task>`` (planning success
    against budget, where the results carry it). Models appear best suite score first (the
    leaderboard's order) with one colour, dash and marker each in every figure.

    Args:
        runs: ``(label, results)`` pairs of one suite (typed results, or plain results dicts).
        out: the output folder (created if missing).
        formats: any of ``"png"``, ``"svg"`` and ``"pdf"``.
        tasks: the task order in figures (default: :func:`suite_task_order`).
        samples: per run (same order as ``runs``), its per-episode records by task
            (:func:`panbench.figure_data.load_folder_samples`) or None; they give the bands.
        dpi: PNG resolution (default :data:`PRINT_DPI`).

    Returns:
        The paths written, in a stable order.

    Raises:
        ConfigError: no runs, or an unknown format.
    """
    import matplotlib

    if not runs:
        raise ConfigError("Expected at least one run to plot, but got none.")
    bad = [f for f in formats if f not in _ALL_FORMATS]
    if bad or not formats:
        raise ConfigError(f"Expected formats among {list(_ALL_FORMATS)}, but got {list(formats)}.")
    typed = [(label, as_results(results)) for label, results in runs]
    order_runs = rank_order(typed)
    first = typed[0][1].tasks
    typed = [typed[i] for i in order_runs]
    run_samples = None if samples is None else [samples[i] for i in order_runs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    colors = model_colors(lab for lab, _ in typed)
    order = list(tasks) if tasks is not None else suite_task_order(typed[0][1])
    written: list[Path] = []
    # Fixed SVG ids, text kept as text (small files): the same input gives the same bytes.
    with matplotlib.rc_context({"svg.hashsalt": "panbench", "svg.fonttype": "none"}):
        written += _save(_scores_figure(typed, colors, order), out, "scores", formats, dpi)
        if len(order) >= 3:
            written += _save(_radar_figure(typed, colors, order), out, "radar", formats, dpi)
        for task in order:
            entry = first[task]
            metrics = _drift_metrics(entry)
            if metrics:
                fig = _curve_figure(typed, colors, task, metrics, "drift", run_samples)
                written += _save(fig, out, f"drift-{_safe(task)}", formats, dpi)
            budget = _budget_metrics(entry)
            if budget:
                fig = _curve_figure(typed, colors, task, budget, "budget")
                written += _save(fig, out, f"budget-{_safe(task)}", formats, dpi)
    return written


def load_samples(paths: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Per path given to :func:`load_runs` (same order), its per-episode records by task.

    A results folder's ``samples/*.jsonl`` or a submission's embedded samples; ``{}`` when a
    path has none (its curves are then drawn without bands).
    """
    from panbench.figure_data import load_folder_samples, parse_jsonl

    out: list[dict[str, Any]] = []
    for p in paths:
        path = Path(p)
        if path.is_file() and path.suffix == ".json" and path.name != "results.json":
            from panbench.submissions import read_submission

            stored = read_submission(path).get("samples") or {}
            out.append({t: parse_jsonl(text) for t, text in stored.items()})
        else:
            out.append(load_folder_samples(path))
    return out
