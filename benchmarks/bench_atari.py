"""Atari env throughput on one core: episode generation (step + render + observe) and perception.

Targets (issue 17): episodes generated at >= 1,000 steps/s per core including the observation;
perception of a 64x64 frame at >= 2,000 frames/s per core.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

GAMES = ("pong", "breakout", "mspacman", "seaquest")


@contextlib.contextmanager
def _pinned() -> Iterator[str]:
    """One core for the block (Linux), the process's own affinity again afterwards."""
    if not hasattr(os, "sched_getaffinity"):
        yield "unpinned"
        return
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    try:
        yield "affinity 1 core"
    finally:
        os.sched_setaffinity(0, affinity)


def _rate(fn: Any, n: int) -> float:
    start = time.perf_counter()
    fn(n)
    return n / (time.perf_counter() - start)


def run(quick: bool = False) -> list[dict]:
    try:
        import ale_py  # noqa: F401
    except ImportError:
        return []
    from panbench.envs import make

    with _pinned() as note:
        return _rows(make, note, 300 if quick else 2000)


def _rows(make: Any, note: str, steps: int) -> list[dict]:
    rows = []
    for game in GAMES:
        env = make(f"atari-{game}", resolution=64)
        rng = np.random.default_rng(0)
        box: dict[str, Any] = {"s": env.reset(0)}

        def generate(n: int, env: Any = env, rng: Any = rng, box: dict = box) -> None:
            for _ in range(n):
                s = env.step(box["s"], int(rng.integers(env.num_actions)))
                env.observe(s)  # renders, perceives the render, reads RAM objects
                box["s"] = env.reset(int(rng.integers(1 << 30))) if s.terminal else s

        def step_only(n: int, env: Any = env, rng: Any = rng, box: dict = box) -> None:
            for _ in range(n):
                s = env.step(box["s"], int(rng.integers(env.num_actions)))
                box["s"] = env.reset(int(rng.integers(1 << 30))) if s.terminal else s

        frames = np.stack([env.render(env.step(box["s"], i % env.num_actions)) for i in range(64)])

        def perceive(n: int, env: Any = env, frames: np.ndarray = frames) -> None:
            for i in range(n):
                env.perceive(frames[i % len(frames)])

        rows += [
            {
                "bench": "atari",
                "case": f"{game} generate (step + render + observe) 64px",
                "value": _rate(generate, steps),
                "unit": "steps/s",
                "target": ">= 1000",
                "notes": note,
            },
            {
                "bench": "atari",
                "case": f"{game} step only (frameskip 4)",
                "value": _rate(step_only, steps),
                "unit": "steps/s",
                "notes": note,
            },
            {
                "bench": "atari",
                "case": f"{game} perceive 64px",
                "value": _rate(perceive, steps),
                "unit": "frames/s",
                "target": ">= 2000",
                "notes": note,
            },
        ]
    return rows
