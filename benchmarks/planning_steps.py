"""How few DDIM steps pan-ref's planning can take: imagined against true goal distances.

For planning situations of a planning task (true states of the task's own episodes, each with
the heuristic proposer's candidates, as the closed-loop protocol builds them), pan-ref imagines
every candidate at each sampler setting and the task's grounded scorer reads the imagined frame.
Per setting:

- ``exact``: the fraction of candidates whose imagined goal distance equals the true one (the
  distance of the frame the true env renders after that action);
- ``choice``: the fraction of situations where every candidate the planner could pick (the
  lowest imagined distance; ties broken at random) is one of the truly best candidates,
  averaged over the tie (``chance``: the same for a uniformly random pick, i.e. a model that
  imagines every candidate alike);
- ``ms/frame``: wall milliseconds per imagined frame (one torch thread).

Usage: python benchmarks/planning_steps.py [--suite quick] [--tasks plan-nav,plan-arrange]
    [--situations 48] [--settings 10:leading,3:leading,2:trailing,1:trailing]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np


def _situations(task: Any, n: int) -> tuple[Any, list[tuple[Any, Any, Any]]]:
    """The env and n planning steps of the task's episodes: (imagination episode, situation,
    true state) each."""
    from panbench.data.episodes import make_episode
    from panbench.envs import make
    from panbench.planning import Goal, Situation
    from panbench.protocols.closed_loop import step_episode

    env = make(task.env.name, resolution=task.env.resolution, **dict(task.env.kwargs or {}))
    goals = list(task.options.get("goals") or env.goals())
    eps = task.episodes
    out: list[tuple[Any, Any, Any]] = []
    i = 0
    while len(out) < n:
        ep = make_episode(env, task.name, eps.seed, i, eps.context, eps.horizon, eps.policy)
        frames = list(ep.context_frames) + list(ep.frames)
        states = list(ep.context_states) + list(ep.states)
        actions = list(ep.context_actions) + list(ep.actions)
        goal = goals[i % len(goals)]
        for t in range(eps.context - 1, len(states), max(len(states) // 4, 1)):
            if len(out) == n or env.goal_reached(states[t], goal):
                continue
            hist = step_episode(ep, frames[: t + 1], actions[:t], states[t], t, eps.context)
            situation = Situation(frames[t], tuple(env.actions(states[t])), Goal(goal, goal), t, 1)
            out.append((hist, situation, states[t]))
        i += 1
    return env, out


def _probe(model: Any, task: Any, env: Any, situations: list, seed: int = 0) -> dict[str, float]:
    from panbench.planning import Imagination, imagine, make_scorer
    from panbench.planning.base import Request
    from panbench.planning.proposers import make_proposer
    from panbench.protocols.base import ModelRunner

    runner = ModelRunner(model, env, env.resolution)
    proposer = make_proposer("heuristic", env)
    m = int(task.options["planner_options"]["candidates"])
    requests, truths, scorers = [], [], []
    for k, (hist, situation, state) in enumerate(situations):
        cands = proposer.propose(situation, np.random.default_rng([seed, k]), m)
        scorer = make_scorer("grounded", env, situation.goal.name)
        true = np.stack([env.render(env.step(state, a)) for a in cands])
        truths.append(scorer(true))
        scorers.append(scorer)
        requests.append(Request(Imagination(runner, hist), [[a] for a in cands]))
    start = time.perf_counter()
    imagined = imagine(runner, requests)
    seconds = time.perf_counter() - start
    exact, choice, chance, frames = [], [], [], 0
    for frames_k, truth, scorer in zip(imagined, truths, scorers, strict=True):
        dist = scorer(frames_k[:, 0])
        frames += len(dist)
        exact.extend((dist == truth).tolist())
        picks = np.flatnonzero(dist == dist.min())
        choice.append(float(np.mean(truth[picks] == truth.min())))
        chance.append(float(np.mean(truth == truth.min())))
    return {
        "exact": float(np.mean(exact)),
        "choice": float(np.mean(choice)),
        "chance": float(np.mean(chance)),
        "ms/frame": 1000 * seconds / frames,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="quick")
    parser.add_argument("--tasks", default="plan-nav,plan-arrange")
    parser.add_argument("--situations", type=int, default=48)
    parser.add_argument("--settings", default="10:leading,3:leading,2:trailing,1:trailing")
    args = parser.parse_args()

    from panbench.models.pan_ref import PanRefModel
    from panbench.suite import load_suite
    from panbench.threads import configure

    configure(1)
    tasks = {t.name: t for t in load_suite(args.suite).tasks}
    print("| task | DDIM steps | spacing | exact | choice (chance) | ms/frame |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for name in args.tasks.split(","):
        env, situations = _situations(tasks[name], args.situations)
        for setting in args.settings.split(","):
            steps, spacing = setting.split(":")
            model = PanRefModel(steps=int(steps), spacing=spacing)
            r = _probe(model, tasks[name], env, situations)
            print(
                f"| {name} | {steps} | {spacing} | {r['exact']:.3f} | {r['choice']:.3f} "
                f"({r['chance']:.3f}) "
                f"| {r['ms/frame']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
