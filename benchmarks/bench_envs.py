"""Env throughput on one core: batched rendering, stepping and perception at 64x64."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

ENVS = ("shapes", "bounce", "maze", "blocks", "table3d")
RESOLUTION = 64
TARGETS = {("shapes", "render_batch"): ">= 20000", ("table3d", "render_batch"): ">= 200"}


@contextmanager
def _one_core() -> Iterator[str]:
    """Runs the body on a single CPU core and thread, restoring the previous settings after.

    Thread-count environment variables only take effect before numpy is imported, so the pinning
    is done with CPU affinity (Linux), torch's thread count and threadpoolctl where available.
    Yields a note saying what was pinned.
    """
    notes = []
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity:
        os.sched_setaffinity(0, {min(affinity)})
        notes.append("affinity 1 core")
    torch_threads = None
    try:
        import torch

        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        notes.append("torch 1 thread")
    except ImportError:  # torch is optional here: the envs are pure numpy
        torch = None  # type: ignore[assignment]
    limiter: Any = None
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=1)
        notes.append("BLAS 1 thread")
    except ImportError:
        notes.append("no threadpoolctl (BLAS unpinned; unused here)")
    try:
        yield ", ".join(notes)
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
        if torch is not None and torch_threads is not None:
            torch.set_num_threads(torch_threads)
        if affinity:
            os.sched_setaffinity(0, affinity)


def _rate(fn: Callable[[], Any], items: int, repeats: int) -> float:
    """Best-of-``repeats`` items per second of ``fn``, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return items / best


def _states(env: Any, count: int) -> list[Any]:
    """``count`` seeded states a few random steps into their episodes."""
    rng = np.random.default_rng(0)
    states = []
    for seed in range(count):
        state = env.reset(seed)
        for _ in range(int(rng.integers(4))):
            state = env.step(state, env.random_action(state, rng))
        states.append(state)
    return states


def _measure(env: Any, batch: int, repeats: int) -> dict[str, tuple[float, str]]:
    """case -> (rate, unit) for one env: render_batch, single steps and perceive."""
    states = _states(env, batch)
    frames = env.render_batch(states[:64])
    rng = np.random.default_rng(1)
    actions = [env.random_action(s, rng) for s in states[:256]]

    def step_all() -> None:
        for state, action in zip(states, actions, strict=False):
            env.step(state, action)

    return {
        "render_batch": (_rate(lambda: env.render_batch(states), batch, repeats), "frames/s"),
        "step": (_rate(step_all, len(actions), repeats), "steps/s"),
        "perceive": (_rate(lambda: env.perceive_batch(frames), len(frames), repeats), "frames/s"),
    }


def run(quick: bool) -> list[dict]:
    """Measures frames/s of ``render_batch``, steps/s and perceptions/s of every env at 64x64."""
    from panbench.envs import make

    batch, repeats = (256, 3) if quick else (2048, 7)
    rows: list[dict] = []
    with _one_core() as pinned:
        for name in ENVS:
            try:
                env = make(name, resolution=RESOLUTION)
            except Exception as err:  # an env still being written must not stop the others
                rows.append(
                    {
                        "bench": "envs",
                        "case": f"{name} render_batch {RESOLUTION}px",
                        "value": "skipped",
                        "unit": "frames/s",
                        "notes": f"cannot build env: {type(err).__name__}: {err}"[:120],
                    }
                )
                continue
            measured = _measure(env, batch, repeats)
            for case, (value, unit) in measured.items():
                rows.append(
                    {
                        "bench": "envs",
                        "case": f"{name} {case} {RESOLUTION}px",
                        "value": float(value),
                        "unit": unit,
                        "target": TARGETS.get((name, case), ""),
                        "notes": f"batch {batch}, {pinned}" if case == "render_batch" else "",
                    }
                )
    return rows
