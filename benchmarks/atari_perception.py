"""How the Atari palette detector agrees with OCAtari's RAM objects on clean and degraded frames.

For each game, seeded random-action rollouts (seeds no test uses); on every frame, the RAM
objects (``AtariEnv.ram_truth``) are matched with the objects perceived from the frame
(``panbench.envs._atari_perceive.agreement``: same category, centres within max(4, half the
object's larger side) native pixels). Corruptions, as a generative model's frames may have them:
native frames; a 3x3 box blur; gaussian noise (sigma 12); squashed to 84x84 and to 64x64 with
area averaging (the envs' render); 64x64 blurred. Prints a markdown table (docs/envs.md holds
it): the percentage of RAM objects found.

    python benchmarks/atari_perception.py [--frames 2000] [--games pong,breakout]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from panbench.envs import make
from panbench.envs._atari_games import GAMES
from panbench.envs._atari_perceive import agreement


def _blur(frame: np.ndarray) -> np.ndarray:
    f = frame.astype(np.float64)
    h, w, _ = frame.shape
    padded = np.pad(f, ((1, 1), (1, 1), (0, 0)), mode="edge")
    out = sum(padded[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def corruptions(rng: np.random.Generator) -> dict:
    import cv2

    def squash(size: int):
        return lambda f: cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA)

    def noise(f: np.ndarray) -> np.ndarray:
        return np.clip(f + rng.normal(0, 12, f.shape), 0, 255).astype(np.uint8)

    return {
        "native": lambda f: f,
        "blur 3x3": _blur,
        "noise 12": noise,
        "84x84": squash(84),
        "64x64": squash(64),
        "64x64 + blur": lambda f: _blur(squash(64)(f)),
    }


def measure(game: str, frames: int) -> dict[str, float]:
    env = make(f"atari-{game}")
    rng = np.random.default_rng(0)
    kinds = corruptions(rng)
    counts = {k: [0, 0] for k in kinds}
    seen, seed = 0, 5000
    while seen < frames:
        actions = np.random.default_rng(seed)
        state = env.reset(seed)
        for _ in range(100):
            state = env.step(state, int(actions.integers(env.num_actions)))
            truth = env.ram_truth(state)
            for name, corrupt in kinds.items():
                m, t = agreement(env.game, env.perceive_native(corrupt(state.screen)), truth)
                counts[name][0] += m
                counts[name][1] += t
            seen += 1
            if seen >= frames or state.terminal:
                break
        seed += 1
    return {k: 100.0 * m / max(t, 1) for k, (m, t) in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--games", default=",".join(GAMES))
    args = parser.parse_args()
    names = list(corruptions(np.random.default_rng(0)))
    print("| game | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    for game in args.games.split(","):
        start = time.perf_counter()
        row = measure(game, args.frames)
        cells = " | ".join(f"{row[n]:.1f}" for n in names)
        print(f"| {game} | {cells} |  <!-- {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
