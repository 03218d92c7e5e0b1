"""table3d perception on degraded renders: the table in docs/envs.md.

Run: ``python benchmarks/table3d_perception.py`` (prints the markdown table).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.ndimage import uniform_filter

from panbench.envs import make

SEEDS = range(1000, 1060)  # held back from the tests' seeds
STEPS = 3


def _blur(frame: np.ndarray, k: int) -> np.ndarray:
    return uniform_filter(frame.astype(float), size=(k, k, 1))


def _down_up(frame: np.ndarray) -> np.ndarray:
    h, w, _ = frame.shape
    small = frame.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    return np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)


def main() -> None:
    env = make("table3d", resolution=64, objects=4, scenario="push")
    rng = np.random.default_rng(0)
    cases: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "exact render": lambda f: f,
        "3x3 box blur": lambda f: _blur(f, 3),
        "5x5 box blur": lambda f: _blur(f, 5),
        "gaussian noise sd 8": lambda f: f + rng.normal(0, 8, f.shape),
        "gaussian noise sd 16": lambda f: f + rng.normal(0, 16, f.shape),
        "brightness x0.7 (darker shading)": lambda f: f * 0.7,
        "down to 32 px and back up": _down_up,
    }
    counts = {name: np.zeros(4, dtype=np.int64) for name in cases}
    for seed in SEEDS:
        state = env.reset(seed)
        for _ in range(STEPS):
            state = env.step(state, env.random_action(state, rng))
            truth, frame = env.observe(state), env.render(state)
            on = truth["present"]
            for name, degrade in cases.items():
                got = env.perceive(np.clip(np.rint(degrade(frame)), 0, 255).astype(np.uint8))
                err = np.linalg.norm(got["positions"] - truth["positions"], axis=1)
                found = got["present"] & on
                counts[name] += [
                    on.sum(),
                    (found & (err <= 1.0)).sum(),
                    (found & (err <= 2.0)).sum(),
                    (got["present"] & ~on).sum(),
                ]
    frames = len(SEEDS) * STEPS
    print(f"| frames (64 px, {frames} frames) | found within 1 px | within 2 px | invented |")
    print("|---|---|---|---|")
    for name, (n, within1, within2, invented) in counts.items():
        print(f"| {name} | {100 * within1 / n:.1f}% | {100 * within2 / n:.1f}% | {invented} |")


if __name__ == "__main__":
    main()
