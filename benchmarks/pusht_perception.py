"""PushT perception on exact and degraded renders: the table in docs/envs.md.

Run: ``python benchmarks/pusht_perception.py`` (prints the markdown table). Seeds 2000-2059 are
held back from the tests' seeds; each state is a reset followed by ``seed % 7`` random pushes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.ndimage import uniform_filter

from panbench.envs import make

SEEDS = range(2000, 2060)


def _blur(frame: np.ndarray, k: int) -> np.ndarray:
    return uniform_filter(frame.astype(float), size=(k, k, 1))


def _row(env, name: str, degrade: Callable[[np.ndarray], np.ndarray]) -> str:  # type: ignore[no-untyped-def]
    agent, block, angle, found = [], [], [], 0
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        state = env.reset(seed)
        for _ in range(seed % 7):
            state = env.step(state, env.random_action(state, rng))
        frame = np.clip(np.rint(degrade(env.render(state))), 0, 255).astype(np.uint8)
        truth, seen = env.observe(state), env.perceive(frame)
        if not seen["present"].all():
            continue
        found += 1
        err = np.abs(truth["positions"] - seen["positions"]).max(axis=1)
        agent.append(err[0])
        block.append(err[1])
        d = (truth["angle"][0] - seen["angle"][0] + math.pi) % (2 * math.pi) - math.pi
        angle.append(abs(math.degrees(d)))
    n = len(SEEDS)

    def stat(v: list[float]) -> str:
        return f"{np.mean(v):.2f} / {np.max(v):.2f}" if v else "-"

    return (
        f"| {env.resolution} | {name} | {found}/{n} | {stat(agent)} | {stat(block)} | "
        f"{stat(angle)} |"
    )


def main() -> None:
    noise = np.random.default_rng(0)
    cases: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "exact render": lambda f: f,
        "3x3 box blur": lambda f: _blur(f, 3),
        "5x5 box blur": lambda f: _blur(f, 5),
        "gaussian noise sd 8": lambda f: f + noise.normal(0, 8, f.shape),
        "gaussian noise sd 16": lambda f: f + noise.normal(0, 16, f.shape),
    }
    print(
        "| px | frames | both found | agent error px (mean / max) | block error px | angle error deg |"
    )
    print("|---|---|---|---|---|---|")
    for resolution in (64, 96):
        env = make("pusht", resolution=resolution)
        for name, degrade in cases.items():
            print(_row(env, name, degrade))


if __name__ == "__main__":
    main()
