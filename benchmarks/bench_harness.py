"""End-to-end evaluation time: `panbench evaluate` of the baselines on the `quick` suite."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

MODELS = ("copy-last", "oracle", "random-action")


def run(quick: bool) -> list[dict]:
    from panbench.harness import evaluate

    rows = []
    for model in MODELS[:1] if quick else MODELS:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            results = evaluate(model, out=Path(tmp) / "run", suite="quick", progress=False)
            seconds = time.perf_counter() - start
        episodes = sum(t["n_episodes"] for t in results["tasks"].values())
        rows.append(
            {
                "bench": "harness",
                "case": f"evaluate {model} on quick ({episodes} episodes)",
                "value": round(seconds, 1),
                "unit": "s",
                "target": "< 180 on 2 cores" if model == "copy-last" else "",
                "notes": "whole suite, default batch size 8, LPIPS/FVD skipped (no weights)",
            }
        )
    return rows
