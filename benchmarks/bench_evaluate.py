"""What users wait for: `panbench evaluate` of pan-ref per task, the harness's share, planning.

Each model runs in a fresh process (``python -m panbench.cli evaluate``, as a user runs it), so
start-up counts; per-task seconds and the seconds spent inside the model come from the
results file the run writes (``tasks.<t>.timing``).

Rows:
- pan-ref on each quick task (seconds), with copy-last on the same task beside it; the
  harness's share is copy-last's time over pan-ref's (what the harness, envs and metrics cost
  when the model is free), target <= 10%.
- pan-ref on pan-core's planning tasks (``--limit`` episodes each; the full tasks are 100
  episodes) and the planning throughput (imagined frames per second of planning).
- With ``PANBENCH_BENCH_BASELINE=/path/to/older/checkout``, the same runs of that checkout in
  the same session, and the speed-up over it (target >= 10x on quick's plan-nav).
- A full pan-core evaluation of pan-ref, estimated: the planning tasks' seconds per episode
  (from the ``--limit`` runs) times their 100 episodes, plus the rollout tasks' seconds per
  episode at ``--limit 16`` (one full batch) times their episode counts (target <= 15 min).

``PANBENCH_BENCH_TASKS=plan-nav,plan-arrange`` restricts the quick rows to those tasks (the
"whole command" row then covers them only). Every row's notes give the load average around
its runs and the thread setting (``OMP_NUM_THREADS``; unset: panbench's thread policy).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLANNING_SUITE = """suite: pan-core-planning
version: 1
description: pan-core's planning tasks (benchmark only)
tasks: [plan-nav, plan-arrange]
"""
#: pan-core's rollout tasks, timed at one full batch of episodes for the full-run estimate
ROLLOUT_SUITE = """suite: pan-core-rollouts
version: 1
description: pan-core's rollout tasks (benchmark only)
tasks: [agent-sim, env-sim, long-horizon, long-horizon-bounce, stepwise-sim, counterfactual]
"""


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _threads() -> str:
    return f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS') or 'unset (thread policy)'}"


def _sampling(settings: dict | None) -> str:
    """pan-ref's sampling on a task, from its results entry's ``model_settings``."""
    if not settings:
        return "the checkpoint's sampling (no model_settings recorded)"
    return f"{settings['steps']} DDIM steps, {settings.get('spacing', 'leading')} spacing"


def _quick_suite(tmp: Path) -> str:
    """``quick``, or the quick entries of ``PANBENCH_BENCH_TASKS`` as a suite file."""
    wanted = os.environ.get("PANBENCH_BENCH_TASKS")
    if not wanted:
        return "quick"
    import yaml

    doc = yaml.safe_load((ROOT / "tasks" / "suites" / "quick.yaml").read_text())
    names = [t.strip() for t in wanted.split(",")]
    doc["tasks"] = [e for e in doc["tasks"] if (e["task"] if isinstance(e, dict) else e) in names]
    doc["suite"] = "quick-" + "-".join(names)
    path = tmp / "quick-subset.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def _evaluate(
    checkout: Path, model: str, suite: str, limit: int | None, out: Path
) -> tuple[dict[str, Any], float]:
    """Runs ``panbench evaluate`` from ``checkout`` in a fresh process; (results, wall s)."""
    cmd = [sys.executable, "-m", "panbench.cli", "evaluate", "--model", model]
    cmd += ["--suite", suite, "--out", str(out), "--no-progress"]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    start = time.perf_counter()
    subprocess.run(cmd, cwd=checkout, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    return json.loads((out / "results.json").read_text()), wall


def _checkouts() -> dict[str, Path]:
    found = {"": ROOT}
    base = os.environ.get("PANBENCH_BENCH_BASELINE")
    if base:
        found["baseline "] = Path(base).resolve()
    return found


def _quick_rows(tmp: Path, quick: bool) -> list[dict]:
    rows: list[dict] = []
    limit = 2 if quick else None
    seconds: dict[tuple[str, str], dict[str, float]] = {}
    suite = _quick_suite(tmp)
    before = _load()
    for label, checkout in _checkouts().items():
        for model in ("pan-ref", "copy-last"):
            results, wall = _evaluate(checkout, model, suite, limit, tmp / f"{label}{model}")
            seconds[(label, model)] = {
                t: e["timing"]["seconds"] for t, e in results["tasks"].items()
            }
            seconds[(label, model)]["(whole command)"] = wall
    note = f"--limit {limit}" if limit else "all quick episodes"
    note += f"; load average {before} -> {_load()} around the runs, {_threads()}"
    for task, ours in seconds[("", "pan-ref")].items():
        rows.append(
            {
                "bench": "evaluate",
                "case": f"pan-ref on quick {task}",
                "value": round(ours, 1),
                "unit": "s",
                "target": "",
                "notes": note,
            }
        )
        share = seconds[("", "copy-last")][task] / ours if ours else float("nan")
        rows.append(
            {
                "bench": "evaluate",
                "case": f"harness share on quick {task} (copy-last / pan-ref)",
                "value": round(100 * share, 1),
                "unit": "%",
                "target": "<= 10",
                "notes": note,
            }
        )
        if ("baseline ", "pan-ref") in seconds:
            old = seconds[("baseline ", "pan-ref")][task]
            rows.append(
                {
                    "bench": "evaluate",
                    "case": f"pan-ref on quick {task}, speed-up over the baseline checkout",
                    "value": round(old / ours, 1),
                    "unit": "x",
                    "target": ">= 10" if task == "plan-nav" else "",
                    "notes": f"{old:.1f} s before, {ours:.1f} s now, same session; {note}",
                }
            )
    return rows


def _planning_rows(tmp: Path, quick: bool) -> list[dict]:
    rows: list[dict] = []
    limit = 2
    full = 0.0
    for label, checkout in _checkouts().items():
        suite = tmp / f"{label.strip() or 'ours'}-planning.yaml"
        suite.write_text(PLANNING_SUITE)
        before = f"load average {_load()} at the start, {_threads()}"
        results, _ = _evaluate(checkout, "pan-ref", str(suite), limit, tmp / f"{label}plan")
        settings = {t: e.get("model_settings") for t, e in results["tasks"].items()}
        for task, entry in results["tasks"].items():
            if not label:
                full += entry["timing"]["seconds"] / entry["n_episodes"] * 100
            planning = entry.get("planning", {})
            rows.append(
                {
                    "bench": "evaluate",
                    "case": f"{label}pan-ref on pan-core {task}",
                    "value": round(entry["timing"]["seconds"], 1),
                    "unit": "s",
                    "target": "",
                    "notes": f"--limit {limit} of 100 episodes, 4 repeats each; "
                    f"{_sampling(settings[task])}; {before}",
                }
            )
            if planning.get("seconds"):
                rows.append(
                    {
                        "bench": "evaluate",
                        "case": f"{label}planning throughput, pan-ref on pan-core {task}",
                        "value": round(planning["frames_imagined"] / planning["seconds"], 1),
                        "unit": "frames/s",
                        "target": "",
                        "notes": "imagined frames per second of planning",
                    }
                )
    if quick:
        return rows
    suite = tmp / "rollouts.yaml"
    suite.write_text(ROLLOUT_SUITE)
    before = f"load average {_load()} at the rollout runs, {_threads()}"
    results, _ = _evaluate(ROOT, "pan-ref", str(suite), 16, tmp / "rollouts")
    counts = {"long-horizon": 64, "long-horizon-bounce": 64}
    for task, entry in results["tasks"].items():
        full += entry["timing"]["seconds"] / entry["n_episodes"] * counts.get(task, 200)
    rows.append(
        {
            "bench": "evaluate",
            "case": "full pan-core evaluation of pan-ref (estimate)",
            "value": round(full / 60, 1),
            "unit": "min",
            "target": "<= 15",
            "notes": f"planning at --limit {limit} and rollout tasks at --limit 16, per episode, "
            f"times each task's episodes (no start-up); {before}",
        }
    )
    return rows


def run(quick: bool) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        return _quick_rows(Path(tmp), quick) + _planning_rows(Path(tmp), quick)
