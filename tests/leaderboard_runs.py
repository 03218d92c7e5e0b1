"""Results folders for the leaderboard, compare and plot tests: the baselines on a tiny suite.

The ``mini`` suite has one task per kind of results entry those modules must handle: per-step
curves (rollout), a four-way choice, a set-level FVD with ``ci95`` [null, null] and per-episode
I3D features in the samples (through a scripted stand-in I3D), and closed-loop planning (a
set-level normalised score with a CI, success against budget). Version 2 of the suite differs only
in its version, for the mixed-version tests. Runs are made once per pytest process and must not
be modified: copy them first (``copy_run``).
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from panbench import weights
from panbench.harness import evaluate
from panbench.weights import WeightsEntry
from tests.metrics.test_fvd import StandInI3D, save_stand_in

TASKS: dict[str, str] = {
    "mini-agent": """\
task: mini-agent
version: 1
protocol: rollout
env: {name: shapes, resolution: 32, kwargs: {}}
episodes: {count: 8, seed: 31, context: 2, horizon: 4, policy: agent}
metrics: [action_following, position_error, psnr]
headline: action_following
""",
    "mini-long": """\
task: mini-long
version: 1
protocol: rollout
env: {name: bounce, resolution: 32}
episodes: {count: 6, seed: 32, context: 2, horizon: 8, policy: random}
metrics: [tracking_accuracy, psnr, fvd]
headline: tracking_accuracy
options: {fvd_clip: 8, fvd_stride: 8}
""",
    "mini-choice": """\
task: mini-choice
version: 1
protocol: choice
env: {name: shapes, resolution: 32, kwargs: {}}
episodes: {count: 8, seed: 33, context: 2, horizon: 2, policy: agent}
metrics: [choice_accuracy]
headline: choice_accuracy
""",
    "mini-plan": """\
task: mini-plan
version: 1
protocol: closed_loop
env: {name: maze, resolution: 48, kwargs: {size: 6}}
episodes: {count: 4, seed: 34, context: 2, horizon: 8, policy: random}
metrics: [success, normalized_score, random_success, oracle_success, wm_calls]
headline: success
options: {planner: propose-simulate-select, planner_options: {proposer: heuristic, candidates: 4},
  random_rollouts: 2}
""",
}
TASK_NAMES = tuple(TASKS)

_SUITE = "suite: mini\nversion: {version}\ntasks: [" + ", ".join(TASK_NAMES) + "]\n"


@functools.cache
def _root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="panbench-test-lb-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.cache
def suite_path(version: int = 1) -> str:
    """A ``mini`` suite file of the given version, its tasks next to it."""
    folder = _root() / f"suite-v{version}"
    (folder / "suites").mkdir(parents=True)
    for name, text in TASKS.items():
        (folder / f"{name}.yaml").write_text(text)
    path = folder / "suites" / "mini.yaml"
    path.write_text(_SUITE.format(version=version))
    return str(path)


@functools.cache
def _stand_in_i3d() -> WeightsEntry:
    return save_stand_in(StandInI3D(clip_length=8, dim=6), _root() / "standin-i3d.pt")


@functools.cache
def mini_run(model: str, *, version: int = 1, limit: int | None = None) -> Path:
    """The results folder of ``model`` on the mini suite (made once per process). Read only."""
    out = _root() / f"run-{model}-v{version}-limit{limit}"
    entry = _stand_in_i3d()
    with pytest.MonkeyPatch.context() as mp, weights.registered(entry):
        mp.setenv("PANBENCH_WEIGHTS_I3D_TORCHSCRIPT", str(_root() / "standin-i3d.pt"))
        evaluate(model, out=out, suite=suite_path(version), limit=limit, progress=False)
    return out


def copy_run(folder: Path, dst: Path) -> Path:
    """A writable copy of a results folder (without run.json, which nothing here needs)."""
    shutil.copytree(folder, dst)
    return dst


def edit_results(folder: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Applies ``edit`` to results.json in place."""
    path = folder / "results.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def rehash_samples(folder: Path, task: str) -> None:
    """Updates ``samples_sha256`` after a samples edit, as a careful forger would."""
    digest = weights.sha256_file(folder / "samples" / f"{task}.jsonl")
    edit_results(folder, lambda d: d["tasks"][task].__setitem__("samples_sha256", digest))
