"""Helpers for tests that run ``panbench evaluate``: small task YAMLs and cached runs.

Runs are cached per pytest process (keyed by their arguments) in one temporary folder, so the
baseline, validator and reproducibility tests share them. A cached folder must not be modified:
copy it (``shutil.copytree``) before tampering with it.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from panbench.harness import evaluate

SMALL_TASKS: dict[str, str] = {
    "small-rollout": """\
task: small-rollout
version: 1
protocol: rollout
env: {name: shapes, resolution: 32, kwargs: {interventions: true}}
episodes: {count: 6, seed: 11, context: 2, horizon: 4, policy: mixed}
metrics: [change_following, action_following, presence_accuracy, tracking_accuracy, psnr, ssim]
headline: change_following
""",
    "small-choice": """\
task: small-choice
version: 1
protocol: choice
env: {name: shapes, resolution: 32, kwargs: {}}
episodes: {count: 6, seed: 12, context: 2, horizon: 3, policy: agent}
metrics: [choice_accuracy]
headline: choice_accuracy
""",
    "small-counterfactual": """\
task: small-counterfactual
version: 1
protocol: counterfactual
env: {name: shapes, resolution: 32, kwargs: {}}
episodes: {count: 6, seed: 13, context: 2, horizon: 1, policy: agent}
metrics: [counterfactual_accuracy, delta_psnr]
headline: counterfactual_accuracy
""",
}

_ROOT: Path | None = None
_CACHE: dict[str, Path] = {}


def _root() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="panbench-test-runs-"))
        atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
    return _ROOT


def small_tasks(names: tuple[str, ...] = tuple(SMALL_TASKS)) -> list[str]:
    """Writes the named small task YAMLs (once per process) and returns their paths."""
    folder = _root() / "tasks"
    folder.mkdir(exist_ok=True)
    paths = []
    for name in names:
        path = folder / f"{name}.yaml"
        if not path.exists():
            path.write_text(SMALL_TASKS[name])
        paths.append(str(path))
    return paths


def cached_run(model: str, **kwargs: Any) -> Path:
    """The results folder of ``evaluate(model, **kwargs)``, run once per process. Read only."""
    key = repr((model, sorted(kwargs.items())))
    if key not in _CACHE:
        out = _root() / ("run-" + hashlib.sha256(key.encode()).hexdigest()[:16])
        evaluate(model, out=out, progress=False, **kwargs)
        _CACHE[key] = out
    return _CACHE[key]


def samples_bytes(folder: Path) -> dict[str, bytes]:
    """Every ``samples/*`` file of a results folder, by name (part files included)."""
    return {p.name: p.read_bytes() for p in sorted((folder / "samples").iterdir())}
