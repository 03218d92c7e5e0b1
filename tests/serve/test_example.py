"""examples/remote-model-example runs without panbench's dependencies and scores over the wire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from panbench.harness import evaluate
from tests.models.runs import small_tasks

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "remote-model-example"
REPO = Path(__file__).resolve().parents[2]

# Runs the example with panbench's heavy dependencies (and its adapter API) made unimportable,
# as in a model's own environment where they are not installed.
LAUNCH = """
import runpy, sys
BLOCKED = ("torch", "yaml", "rich", "scipy", "pandas", "av", "panbench.models", "panbench.envs")
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED or name.startswith(BLOCKED):
            raise ImportError(f"{name} is not installed in the model's environment")
sys.meta_path.insert(0, Block())
sys.argv = ["remote_model_example", *sys.argv[1:]]
runpy.run_module("remote_model_example", run_name="__main__")
"""


def test_foreign_model_is_scored_over_the_wire(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLE), str(REPO)])}
    cmd = [sys.executable, "-c", LAUNCH, "--port", "0", "--ready-file", str(ready)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() or not ready.read_text().endswith("\n"):
            assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        url = ready.read_text().strip()
        out = tmp_path / "run"
        tasks = small_tasks(("small-rollout",))
        results = evaluate("remote", {"url": url}, out=out, tasks=tasks, limit=3, progress=False)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]
    model = results["model"]
    assert model["spec"]["name"] == "drift-example"
    assert model["info"]["remote"] == {
        "url": url,
        "wire_version": 1,
        "model": "drift-example",
        "version": "0.1.0",
        "panbench_version": model["info"]["remote"]["panbench_version"],
    }
    assert model["info"]["noise"] == 4
    lines = (out / "samples" / "small-rollout.jsonl").read_text().splitlines()
    assert len(lines) == 3
    psnr = [json.loads(line)["metrics"]["psnr"] for line in lines]
    assert all(0 < p < 100 for p in psnr)  # a real, imperfect prediction was scored
