"""PushT closed-loop planning on the true simulator: CEM against random shooting at equal compute.

Run: ``python benchmarks/pusht_planning.py [episodes]`` (prints a markdown table for
docs/planning.md). Both planners imagine with the ``oracle`` (the true simulator, perceived from
its frames) through the ``closed_loop`` protocol on the probe task below (not shipped: at this
compute the oracle does not reach the success threshold, see docs/planning.md), so the only
difference is the search: CEM refits a Gaussian over two rounds of 16 candidates; random
shooting draws 32 candidates in one round from a wide Gaussian (``init_std`` 2, clipped into the
box), the same number of imagined sequences per step.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from panbench.envs import make
from panbench.models.baselines import OracleModel
from panbench.protocols import PROTOCOLS
from panbench.protocols.base import ModelRunner
from panbench.suite import load_task

TASK = """\
task: plan-pusht-probe
version: 1
protocol: closed_loop
env: {name: pusht, resolution: 64, kwargs: {max_offset: 10, max_rotation: 10, move_scale: 50,
  success_threshold: 0.9}}
episodes: {count: 50, seed: 9500, context: 1, horizon: 15, policy: continuous}
metrics: [success, normalized_score, random_success, oracle_success, wm_calls, tie_rate]
headline: success
options:
  planner: cem-continuous
  planner_options: {horizon: 2, block: 3, population: 16, elites: 4, iterations: 2, cost: final}
  random_rollouts: 4
"""

SEARCHES = {
    "cem (2 x 16)": {"population": 16, "elites": 4, "iterations": 2},
    "random shooting (1 x 32)": {"population": 32, "elites": 4, "iterations": 1, "init_std": 2.0},
}


def main(episodes: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plan-pusht-probe.yaml"
        path.write_text(TASK)
        base = load_task(str(path))
    env = make(base.env.name, resolution=base.env.resolution, **dict(base.env.kwargs))
    probe = PROTOCOLS.get("closed_loop")(base, env)
    starts = [probe.episode(i).context_states[-1] for i in range(episodes)]
    start_cover = np.mean([env.observe(s)["coverage"][0] for s in starts])
    print("| search | episodes | success | final coverage (mean) | seconds per plan |")
    print("|---|---|---|---|---|")
    print(f"| (start, no pushes) | {episodes} | 0.00 | {start_cover:.3f} | - |")
    for name, options in SEARCHES.items():
        planner = {**base.options["planner_options"], **options}
        task = base.with_overrides({"options": {"planner_options": planner}})
        env = make(task.env.name, resolution=task.env.resolution, **dict(task.env.kwargs))
        protocol = PROTOCOLS.get("closed_loop")(task, env)
        runner = ModelRunner(OracleModel(), env, task.env.resolution)
        runs = [(protocol.episode(i), None, 0) for i in range(episodes)]
        runs = [(e, protocol.goal(e), 0) for e, _, _ in runs]
        start = time.perf_counter()
        outcomes = protocol.run_episodes(runner, runs)
        seconds = time.perf_counter() - start
        plans = sum(o.plans for o in outcomes)
        success = np.mean([o.reached_at is not None for o in outcomes])
        cover = []
        for (episode, _, _), outcome in zip(runs, outcomes, strict=True):
            state = episode.context_states[-1]
            for action in outcome.actions:
                vector = action if isinstance(action, list) else None
                state = env.step(state, env.vector_action(state, vector) if vector else action)
            cover.append(float(env.observe(state)["coverage"][0]))
        print(
            f"| {name} | {episodes} | {success:.2f} | {np.mean(cover):.3f} | "
            f"{seconds / max(plans, 1):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
