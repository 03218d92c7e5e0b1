"""Comparing two results folders episode by episode, and the CI regression gate built on it.

Both folders are read through the typed results model and verified first
(``panbench.results.verify_results``: every aggregate must recompute from its samples) and must be runs of the same suite (name, version, hash) with the
same task hashes. Per task, episodes are matched by their content hash, so runs with different
``--limit`` compare on the episodes they share. Per metric, the candidate-minus-base mean
difference gets a paired-bootstrap CI and p-value (:func:`panbench.metrics.stats.paired_bootstrap`);
a difference is *worse* when it is significant (p < alpha) and larger than ``min_effect`` in the
metric's own units against the metric's direction (``higher_is_better``).

The gate fails when a task's headline metric is worse. The headline metrics are one family of
tests: by default their p-values are Holm-adjusted (``correction="holm"``), so the chance that an
unchanged model fails the gate on any of k tasks stays at most ``alpha`` instead of up to
``k * alpha``. Other metrics are reported with their raw p-values (they never fail the gate). Set-level metrics (FVD, the planning
normalised score) have no per-episode values: their values are shown side by side, without a
test, and never fail the gate.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from panbench.errors import ConfigError, DataError
from panbench.results_model import MetricEntry, Results

__all__ = [
    "Comparison",
    "ComparisonError",
    "MetricComparison",
    "TaskComparison",
    "compare_results",
    "format_comparison",
    "holm_adjust",
]

Status = Literal["better", "worse", "unchanged", "set-level", "not comparable"]
Format = Literal["text", "markdown", "json"]
Correction = Literal["holm", "none"]
CORRECTIONS: tuple[Correction, ...] = ("holm", "none")


class ComparisonError(DataError):
    """The two results cannot be compared (the gate's exit code 2)."""


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one task: candidate against base on their shared episodes.

    Attributes:
        metric: the metric's name.
        higher_is_better: the metric's direction.
        headline: whether it is the task's headline metric (the one the gate watches).
        base: the base's mean over the shared episodes (the aggregate for set-level metrics).
        candidate: the candidate's mean over the shared episodes.
        diff: ``candidate - base``.
        low: lower bound of the paired-bootstrap CI of ``diff`` (NaN when not testable).
        high: upper bound.
        p_value: two-sided paired-bootstrap p-value of "no difference" (NaN when not testable).
        p_adjusted: the p-value the verdict uses: Holm-adjusted over the headline metrics of
            all tasks under ``correction="holm"``, else (and for other metrics) ``p_value``.
        n: paired episodes with a finite value in both runs.
        status: ``better``/``worse`` (significant and beyond ``min_effect``), ``unchanged``,
            ``set-level`` (shown, not tested) or ``not comparable`` (missing or skipped in one).
    """

    metric: str
    higher_is_better: bool
    headline: bool
    base: float
    candidate: float
    diff: float
    low: float
    high: float
    p_value: float
    p_adjusted: float
    n: int
    status: Status


@dataclass(frozen=True)
class TaskComparison:
    """One task: its shared episodes and every metric's comparison.

    Attributes:
        task: the task's name.
        headline_metric: the metric the gate watches.
        n_base: episodes in the base run.
        n_candidate: episodes in the candidate run.
        n_shared: episodes in both (matched by episode hash).
        metrics: one entry per metric, in the base's order.
    """

    task: str
    headline_metric: str
    n_base: int
    n_candidate: int
    n_shared: int
    metrics: list[MetricComparison] = field(default_factory=list)


@dataclass(frozen=True)
class Comparison:
    """Everything ``panbench compare`` reports.

    Attributes:
        base: ``{"path", "model", "checkpoint_sha256"}`` of the base run.
        candidate: the same for the candidate run.
        suite: ``{"name", "version", "hash"}`` shared by both.
        alpha: significance level (the CIs have coverage ``1 - alpha``, unadjusted).
        min_effect: the smallest difference, in metric units, that counts as a change.
        n_resamples: bootstrap resamples per metric.
        tasks: per-task comparisons, in the base's order.
        correction: the multiple-comparison correction over the headline metrics.
    """

    base: dict[str, Any]
    candidate: dict[str, Any]
    suite: dict[str, Any]
    alpha: float
    min_effect: float
    n_resamples: int
    tasks: list[TaskComparison]
    correction: Correction = "holm"

    @property
    def regressions(self) -> list[tuple[str, str]]:
        """``(task, metric)`` of every headline metric that is significantly worse."""
        return [
            (t.task, m.metric)
            for t in self.tasks
            for m in t.metrics
            if m.headline and m.status == "worse"
        ]

    @property
    def passed(self) -> bool:
        """The gate's verdict: no headline regression."""
        return not self.regressions

    def to_dict(self) -> dict[str, Any]:
        """A strict-JSON dict (NaN written as null)."""
        from panbench.results import sanitize

        out = asdict(self)
        out["passed"] = self.passed
        out["regressions"] = [{"task": t, "metric": m} for t, m in self.regressions]
        return dict(sanitize(out))


# ------------------------------------------------------------------------------------ compare
def _load(path: str | os.PathLike[str], role: str) -> Results:
    from panbench.errors import PanbenchError
    from panbench.results import verify_results

    try:
        return verify_results(path)
    except PanbenchError as err:
        raise ComparisonError(f"Cannot use the {role} results: {err}") from err


def _samples(root: Path, task: str) -> dict[str, dict[str, Any]]:
    from panbench.results import read_samples

    return {r["hash"]: r for r in read_samples(root / "samples" / f"{task}.jsonl")}


def _value(record: Mapping[str, Any], metric: str) -> float:
    v = record.get("metrics", {}).get(metric)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _entry_value(entry: MetricEntry | None) -> float:
    v = None if entry is None else entry.value
    return math.nan if v is None else float(v)


def _root(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.parent if p.name == "results.json" and p.is_file() else p


def _check_same_suite(base: Results, cand: Results) -> None:
    for key in ("name", "version", "hash"):
        b, c = getattr(base.suite, key), getattr(cand.suite, key)
        if b != c:
            raise ComparisonError(
                f"Expected results of the same suite, but suite.{key} differs: base {b!r}, "
                f"candidate {c!r}. Results of different suite versions are not comparable."
            )
    if set(base.tasks) != set(cand.tasks):
        raise ComparisonError(
            f"Expected the same tasks, but got base {sorted(base.tasks)} and candidate "
            f"{sorted(cand.tasks)}."
        )
    for name, task in base.tasks.items():
        if task.hash != cand.tasks[name].hash:
            raise ComparisonError(
                f"Expected the same version of task {name!r}, but tasks.{name}.hash differs "
                f"(base {task.hash[:12]}, candidate {cand.tasks[name].hash[:12]}); "
                "were the runs made with different --seed?"
            )


def _compare_metric(
    metric: str,
    b_entry: MetricEntry | None,
    c_entry: MetricEntry | None,
    shared: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
    *,
    headline: bool,
    alpha: float,
    min_effect: float,
    n_resamples: int,
    seed: int,
) -> MetricComparison:
    import numpy as np

    from panbench.metrics.stats import paired_bootstrap

    nan = math.nan
    entry = b_entry or c_entry
    hib = True if entry is None else entry.higher_is_better
    if b_entry is None or c_entry is None:
        bv, cv = _entry_value(b_entry), _entry_value(c_entry)
        return MetricComparison(
            metric, hib, headline, bv, cv, nan, nan, nan, nan, nan, 0, "not comparable"
        )
    if "set" in (b_entry.level, c_entry.level):
        bv, cv = _entry_value(b_entry), _entry_value(c_entry)
        n = min(b_entry.n, c_entry.n)
        return MetricComparison(
            metric, hib, headline, bv, cv, cv - bv, nan, nan, nan, nan, n, "set-level"
        )
    a = np.array([_value(c, metric) for _, c in shared])
    b = np.array([_value(b, metric) for b, _ in shared])
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return MetricComparison(
            metric, hib, headline, nan, nan, nan, nan, nan, nan, nan, 0, "unchanged"
        )
    r = paired_bootstrap(
        a[both], b[both], confidence=1.0 - alpha, n_resamples=n_resamples, seed=seed
    )
    status = _status(r.diff, hib, r.p_value, alpha, min_effect)
    return MetricComparison(
        metric,
        hib,
        headline,
        float(b[both].mean()),
        float(a[both].mean()),
        r.diff,
        r.low,
        r.high,
        r.p_value,
        r.p_value,
        r.n,
        status,
    )


def _status(
    diff: float, higher_is_better: bool, p: float, alpha: float, min_effect: float
) -> Status:
    gain = diff if higher_is_better else -diff  # > 0: the candidate is better
    significant = math.isfinite(p) and p < alpha
    if significant and gain < -min_effect:
        return "worse"
    if significant and gain > min_effect:
        return "better"
    return "unchanged"


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error rate control), in input order.

    With the m p-values sorted ascending, the i-th smallest (1-based) is adjusted to
    ``max_{j <= i} min(1, (m - j + 1) * p_(j))``; rejecting every adjusted p below ``alpha``
    controls the chance of any false rejection at ``alpha`` under any dependence.

    Args:
        p_values: finite p-values in [0, 1].

    Returns:
        The adjusted p-values, each >= its raw value, in the order given.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


def _correct(
    tasks: list[TaskComparison], correction: Correction, alpha: float, min_effect: float
) -> list[TaskComparison]:
    """Re-decides the headline metrics' verdicts on Holm-adjusted p-values (one family)."""
    if correction == "none":
        return tasks
    family = [
        (ti, mi)
        for ti, t in enumerate(tasks)
        for mi, m in enumerate(t.metrics)
        if m.headline and math.isfinite(m.p_value)
    ]
    adjusted = holm_adjust([tasks[ti].metrics[mi].p_value for ti, mi in family])
    out = [TaskComparison(**{**vars(t), "metrics": list(t.metrics)}) for t in tasks]
    for (ti, mi), p in zip(family, adjusted, strict=True):
        m = out[ti].metrics[mi]
        status = _status(m.diff, m.higher_is_better, p, alpha, min_effect)
        out[ti].metrics[mi] = replace(m, p_adjusted=p, status=status)
    return out


def compare_results(
    base: str | os.PathLike[str],
    candidate: str | os.PathLike[str],
    *,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    n_resamples: int = 1000,
    seed: int = 0,
    correction: Correction = "holm",
) -> Comparison:
    """Compares a candidate run with a base run, per task and metric, on their shared episodes.

    Args:
        base: the base results folder (or its results.json).
        candidate: the candidate results folder.
        alpha: significance level of the paired bootstrap; CIs have coverage ``1 - alpha``.
        min_effect: differences this large or smaller (metric units) count as unchanged.
        n_resamples: bootstrap resamples; the smallest possible p-value is 1 / (n + 1).
        seed: bootstrap seed (the same inputs always give the same verdict).
        correction: ``"holm"`` (default) adjusts the headline metrics' p-values over all tasks,
            so the gate's false-alarm rate on an unchanged model is at most ``alpha``;
            ``"none"`` tests each headline at ``alpha`` on its own.

    Returns:
        The :class:`Comparison`; ``.passed`` is the gate's verdict.

    Raises:
        ComparisonError: unusable input: a missing, malformed or tampered results folder,
            different suites or task versions, or a task with no shared episodes.
        ConfigError: ``alpha`` not in (0, 1), negative ``min_effect``, unknown ``correction``.
    """
    if correction not in CORRECTIONS:
        raise ConfigError(
            f"Expected correction to be one of {', '.join(CORRECTIONS)}, but got {correction!r}."
        )
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"Expected alpha in (0, 1), but got {alpha}.")
    if not min_effect >= 0.0:
        raise ConfigError(f"Expected min_effect >= 0, but got {min_effect}.")
    b_res, c_res = _load(base, "base"), _load(candidate, "candidate")
    _check_same_suite(b_res, c_res)
    b_root, c_root = _root(base), _root(candidate)
    tasks = []
    for name, b_task in b_res.tasks.items():
        c_task = c_res.tasks[name]
        b_recs, c_recs = _samples(b_root, name), _samples(c_root, name)
        hashes = [h for h in b_recs if h in c_recs]  # base order: episode index
        if not hashes:
            raise ComparisonError(
                f"Task {name!r}: the runs share no episodes (matched by episode hash), so "
                "nothing can be compared."
            )
        shared = [(b_recs[h], c_recs[h]) for h in hashes]
        head = b_task.headline.metric
        metrics = list(b_task.metrics) + [m for m in c_task.metrics if m not in b_task.metrics]
        rows = [
            _compare_metric(
                m,
                b_task.metrics.get(m),
                c_task.metrics.get(m),
                shared,
                headline=m == head,
                alpha=alpha,
                min_effect=min_effect,
                n_resamples=n_resamples,
                seed=seed,
            )
            for m in metrics
        ]
        tasks.append(TaskComparison(name, head, len(b_recs), len(c_recs), len(hashes), rows))

    def who(res: Results, path: str | os.PathLike[str]) -> dict[str, Any]:
        return {
            "path": str(path),
            "model": res.model.name,
            "checkpoint_sha256": res.model.checkpoint_sha256,
        }

    return Comparison(
        base=who(b_res, base),
        candidate=who(c_res, candidate),
        suite=b_res.suite.to_dict(),
        alpha=alpha,
        min_effect=min_effect,
        n_resamples=n_resamples,
        tasks=_correct(tasks, correction, alpha, min_effect),
        correction=correction,
    )


# ------------------------------------------------------------------------------------ output
def _f(x: float, digits: int = 4) -> str:
    return "-" if not math.isfinite(x) else f"{x:.{digits}g}"


def _p(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.3f}"


def _rows(cmp: Comparison) -> list[list[str]]:
    rows = []
    for t in cmp.tasks:
        for m in t.metrics:
            arrow = "↑" if m.higher_is_better else "↓"
            ci = f"[{_f(m.low)}, {_f(m.high)}]" if math.isfinite(m.low) else "-"
            rows.append(
                [
                    t.task,
                    ("* " if m.headline else "") + f"{m.metric} {arrow}",
                    _f(m.base),
                    _f(m.candidate),
                    ("+" if m.diff > 0 else "") + _f(m.diff),
                    ci,
                    _p(m.p_value),
                    _p(m.p_adjusted) if m.headline else "-",
                    str(m.n),
                    m.status,
                ]
            )
    return rows


_HEAD = ["task", "metric", "base", "candidate", "diff", "CI", "p", "p adj", "n", "verdict"]


def _verdict(cmp: Comparison) -> str:
    if cmp.passed:
        return "PASS: no headline metric is significantly worse"
    shown = ", ".join(f"{t}/{m}" for t, m in cmp.regressions)
    return f"FAIL: significant regression in {shown}"


def format_comparison(cmp: Comparison, fmt: Format = "text") -> str:
    """Renders a comparison as plain text, GitHub markdown (a CI job summary) or JSON."""
    if fmt == "json":
        return json.dumps(cmp.to_dict(), indent=2, allow_nan=False)
    conf = f"{100 * (1 - cmp.alpha):g}%"
    header = (
        f"{cmp.candidate['model']} ({cmp.candidate['path']}) against {cmp.base['model']} "
        f"({cmp.base['path']}) on {cmp.suite['name']} v{cmp.suite['version']}"
    )
    legend = (
        f"diff = candidate - base over shared episodes; CI: {conf} paired bootstrap "
        f"({cmp.n_resamples} resamples); worse/better: p < {cmp.alpha:g} and |diff| > "
        f"{cmp.min_effect:g}; * headline metric (gated); set-level metrics are not tested."
    )
    if cmp.correction == "holm":
        legend += (
            " Headline verdicts use 'p adj': Holm-adjusted over the headline metrics of all "
            "tasks; other metrics use p."
        )
    shared = ", ".join(f"{t.task} {t.n_shared}/{t.n_base}" for t in cmp.tasks)
    rows = _rows(cmp)
    if fmt == "markdown":
        mark = "✅" if cmp.passed else "❌"
        lines = [f"### {mark} panbench compare: {_verdict(cmp)}", "", header, ""]
        lines += ["| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
        for r in rows:
            cells = [c.replace("|", "\\|").replace("*", "\\*") for c in r]
            if r[-1] == "worse":
                cells = [f"**{c}**" for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"Shared episodes per task: {shared}.", "", legend, ""]
        return "\n".join(lines)
    if fmt != "text":
        raise ConfigError(f"Expected format text, markdown or json, but got {fmt!r}.")
    widths = [max(len(r[i]) for r in [_HEAD, *rows]) for i in range(len(_HEAD))]
    line = "  ".join
    out = [header, ""]
    out.append(line(h.ljust(w) for h, w in zip(_HEAD, widths, strict=True)).rstrip())
    out += [line(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    out += ["", f"shared episodes: {shared}", legend, _verdict(cmp)]
    return "\n".join(out) + "\n"
