"""Throughput of the transition-smoothness metric on CPU: flow pairs per second at 256x256.

Farneback is measured as shipped; SEA-RAFT (spring-M sizes) with random weights, since the cost
of the network does not depend on its weight values and the checkpoint is not downloaded here.
Whole-video rows time :func:`panbench.metrics.smoothness.smoothness` on a 16-frame round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

BENCH = "smoothness"
SIZE = 256


def _best_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _video(frames: int) -> np.ndarray:
    """A blurred-noise texture translating 2 px/frame to the right, uint8 [T, SIZE, SIZE, 3]."""
    import cv2

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (SIZE + 2 * frames, SIZE + 2 * frames, 3)).astype(np.uint8)
    big = np.asarray(cv2.GaussianBlur(noise, (0, 0), 2.0), dtype=np.uint8)
    return np.stack([big[:SIZE, 2 * (frames - t) : 2 * (frames - t) + SIZE] for t in range(frames)])


def _row(case: str, value: float | str, unit: str, target: str = "", notes: str = "") -> dict:
    return {
        "bench": BENCH,
        "case": case,
        "value": value,
        "unit": unit,
        "target": target,
        "notes": notes,
    }


def run(quick: bool) -> list[dict]:
    """Flow pairs/s of Farneback and SEA-RAFT, and rounds/s of the smoothness score, at 256 px."""
    try:
        from panbench.metrics.flow import FarnebackFlow
        from panbench.metrics.smoothness import smoothness

        video = _video(16)
    except Exception as err:  # OpenCV missing: report, do not stop the other benchmarks
        return [_row(f"farneback pair {SIZE}px", "skipped", "pairs/s", notes=str(err)[:120])]
    repeats = 3 if quick else 7
    rows = []
    farneback = FarnebackFlow()
    seconds = _best_seconds(lambda: farneback(video[0], video[1]), repeats)
    rows.append(
        _row(
            f"farneback pair {SIZE}px",
            1.0 / seconds,
            "pairs/s",
            ">= 30",
            "levels 5, winsize 15; OpenCV's own threads",
        )
    )
    seconds = _best_seconds(lambda: smoothness(video, farneback), max(1, repeats // 2))
    rows.append(
        _row(
            f"farneback round of 16 frames {SIZE}px",
            1.0 / seconds,
            "rounds/s",
            notes="15 flow pairs + medians",
        )
    )

    import torch

    from panbench.metrics.sea_raft import SeaRaft, SeaRaftConfig

    net = SeaRaft(SeaRaftConfig()).eval()
    pair = [torch.from_numpy(f).float().permute(2, 0, 1)[None] for f in video[:2]]
    half = [torch.nn.functional.interpolate(x, scale_factor=0.5, mode="bilinear") for x in pair]

    def sea_raft_pair() -> None:
        with torch.no_grad():
            net(half[0], half[1])

    seconds = _best_seconds(sea_raft_pair, 1 if quick else 3)
    rows.append(
        _row(
            f"sea-raft pair {SIZE}px",
            1.0 / seconds,
            "pairs/s",
            notes=f"spring-M sizes, random weights, half-size input, "
            f"{torch.get_num_threads()} torch threads",
        )
    )
    return rows
