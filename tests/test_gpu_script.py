"""benchmarks/gpu/pan_small.sh, the prepared pan-small run, end to end on a CPU with tiny settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pan_small_script_runs_on_cpu(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OUT": str(tmp_path),
        "DEVICE": "cpu",
        "CONFIG": "reference_model/configs/tiny.yaml",
        "STEPS": "2",
        "MFU_STEPS": "1",
        "LIMIT": "1",
        "TASKS": "stepwise-sim",
        "SITE": "none",
        "PY": sys.executable,
        "OMP_NUM_THREADS": "1",
    }
    script = ROOT / "benchmarks" / "gpu" / "pan_small.sh"
    done = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # What comes back from a device call: small files at most two levels down.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "eval.log",
        "mfu.md",
        "results.json",
        "train.log",
        "train_log.csv",
    ]
    mfu = (tmp_path / "mfu.md").read_text()
    assert "| autoencoder |" in mfu and "| dynamics |" in mfu
    assert "training:" in (tmp_path / "train.log").read_text()
    results = json.loads((tmp_path / "results.json").read_text())
    results = results.get("results", results)
    assert list(results["tasks"]) == ["stepwise-sim"]


def test_pan_small_script_needs_out() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    script = ROOT / "benchmarks" / "gpu" / "pan_small.sh"
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert "set OUT to the folder for the results" in done.stderr
