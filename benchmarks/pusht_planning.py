"""PushT closed-loop planning on the true simulator: CEM against random shooting at equal compute.

Run: ``python benchmarks/pusht_planning.py [episodes] [first] [search]`` (a markdown table for
docs/planning.md). Both searches imagine with the ``oracle`` (the true simulator, perceived from
its frames) through the ``closed_loop`` protocol on the shipped ``plan-pusht`` task, so the only
difference is the search: CEM refits a Gaussian over 3 rounds of 32 candidates (the task's
planner); random shooting draws 96 candidates in one round from a wide Gaussian (``init_std`` 2,
clipped into the box, close to uniform), the same number of imagined sequences per step (both
keep the task's other options: warm start, the followed plan kept as a candidate).
``first`` picks the first episode and ``search`` (``cem`` or ``random``) runs one search only
(to split a long run over processes).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from panbench.envs import make
from panbench.envs.pusht import coverage
from panbench.models.baselines import OracleModel
from panbench.protocols import PROTOCOLS
from panbench.protocols.base import ModelRunner
from panbench.suite import load_task

SEARCHES = {
    "cem (3 x 32)": {},
    "random shooting (1 x 96)": {"population": 96, "iterations": 1, "init_std": 2.0},
}


def main(episodes: int, first: int = 0, only: str = "") -> None:
    base = load_task("plan-pusht")
    env = make(base.env.name, resolution=base.env.resolution, **dict(base.env.kwargs))
    probe = PROTOCOLS.get("closed_loop")(base, env)
    index = range(first, first + episodes)
    starts = [probe.episode(i).context_states[-1] for i in index]
    start_cover = np.mean([coverage(*s.block, s.angle) for s in starts])
    half = base.episodes.horizon // 2
    print(
        f"| search | episodes | success | success by step {half} | final coverage (mean) | "
        "steps to goal (mean) | seconds per plan |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| (start, no pushes) | {episodes} | 0.00 | 0.00 | {start_cover:.3f} | - | - |", flush=True
    )
    for name, options in SEARCHES.items():
        if only and not name.startswith(only):
            continue
        planner = {**base.options["planner_options"], **options}
        task = base.with_overrides({"options": {"planner_options": planner}})
        protocol = PROTOCOLS.get("closed_loop")(task, env)
        runner = ModelRunner(OracleModel(), env, task.env.resolution)
        runs = [(e, protocol.goal(e), 0) for e in (protocol.episode(i) for i in index)]
        start = time.perf_counter()
        outcomes = protocol.run_episodes(runner, runs)
        seconds = time.perf_counter() - start
        plans = sum(o.plans for o in outcomes)
        reached = [o.reached_at for o in outcomes if o.reached_at is not None]
        cover = []
        for (episode, _, _), outcome in zip(runs, outcomes, strict=True):
            state = episode.context_states[-1]
            for vector in outcome.actions:
                assert isinstance(vector, list)
                state = env.step(state, env.vector_action(state, vector))
            cover.append(coverage(*state.block, state.angle))
        steps = f"{np.mean(reached):.1f}" if reached else "-"
        early = sum(r <= half for r in reached) / episodes
        print(
            f"| {name} | {episodes} | {len(reached) / episodes:.2f} | {early:.2f} | "
            f"{np.mean(cover):.3f} | {steps} | {seconds / max(plans, 1):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        int(args[0]) if args else 8,
        int(args[1]) if len(args) > 1 else 0,
        args[2] if len(args) > 2 else "",
    )
