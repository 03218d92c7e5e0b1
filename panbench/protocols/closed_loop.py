"""Closed-loop planning: the model imagines, a planner chooses, the TRUE env executes and judges.

Each episode starts from the task episode's last context state with a goal (``goals[i % G]``).
At every step, up to the step budget (the task's ``episodes.horizon``), the planner imagines
candidate action sequences with the model under test, branched from the true current
observation, scores the imagined frames against the goal and returns an action; the true env
executes it, renders the next observation and decides whether the goal holds.

The model's context at each planning step is the TRUE observation history: the last
``episodes.context`` true frames and the actions between them, and, for privileged baselines
(``oracle``, ``random-action``), the true current state (see :func:`step_episode`).

References, computed per episode with the true env so the normalised score is recomputable from
the samples alone:

* ``random_success``: the fraction of ``random_rollouts`` seeded rollouts that reach the goal
  when each action is the planner's random-acting choice (:meth:`Planner.random_action`: what
  the planner does when every candidate ties, i.e. with a model that ignores the action).
* ``oracle_success``: the same planner with the same seeds, imagining with the true simulator
  (the ``oracle`` baseline).

``normalized_score`` = (mean success - mean random) / (mean oracle - mean random), a set-level
metric with a paired bootstrap CI over episodes (:func:`normalized_score`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from panbench.data.episodes import Episode, episode_seed
from panbench.envs.base import Action, Env, State
from panbench.errors import ConfigError
from panbench.metrics.planning import normalized_score
from panbench.planning import (
    SCORERS,
    Compute,
    Goal,
    GoalScorer,
    Imagination,
    PlanJob,
    Planner,
    Situation,
    goal_image,
    make_planner,
    make_scorer,
    plan_batch,
)
from panbench.protocols.base import ModelRunner, Protocol, Record
from panbench.protocols.declare import Option

__all__ = ["ClosedLoopProtocol", "normalized_score", "step_episode", "success_curve"]

#: goal names in words, for proposers that read language
GOAL_TEXTS: dict[str, str] = {
    "reach-goal": "walk the red dot onto the green tile",
    "group-by-colour": "group the blocks by colour, each colour in one group not touching others",
    "cluster": "push all blocks together into one connected cluster",
    "line": "push all blocks into one straight unbroken line",
    "bottom-right": "push all blocks into the bottom-right quarter of the table",
    "circle": "arrange the blocks in a circle around one empty cell",
}

# Salts that keep the random streams of plans, references and goal images apart.
_PLAN, _RANDOM, _GOAL = 11, 12, 13


def success_curve(reached_at: int | None, budget: int) -> list[float]:
    """Success within b steps for b = 1..budget: 1.0 from the step the goal was reached on.

    Args:
        reached_at: the step count after which the goal first held (0: at the start), or None.
        budget: the step budget.
    """
    if reached_at is None:
        return [0.0] * budget
    return [1.0 if reached_at <= b else 0.0 for b in range(1, budget + 1)]


def step_episode(
    episode: Episode,
    frames: Sequence[np.ndarray],
    actions: Sequence[Action],
    state: State,
    step: int,
    context: int,
) -> Episode:
    """The episode a planning step hands the model: the true history as context.

    Args:
        episode: the task episode (index, seed).
        frames: every true frame so far, uint8 [H, W, 3] each, the current one last.
        actions: the actions between them (one fewer than ``frames``).
        state: the true current state (privileged baselines only read it).
        step: the planning step (enters the seed, so a stochastic model draws fresh noise each
            step, the same for every candidate).
        context: how many frames of history the model sees.
    """
    history = list(actions[-(context - 1) :]) if context > 1 else []
    last = np.stack(list(frames[-context:]))
    return Episode(
        index=episode.index,
        episode_id=f"{episode.episode_id}@{step}",
        seed=episode_seed(episode.seed, step),
        context_frames=last,
        context_actions=history,
        context_states=[state],
        actions=[],
        states=[],
        frames=last[:0],
    )


def _recorded(action: Action) -> int | list[float]:
    """An executed action as the samples record it: its index, or its vector if it has none."""
    if action.has_index or action.vector is None:
        return action.index
    return [round(float(v), 6) for v in action.vector]


@dataclass
class _Outcome:
    reached_at: int | None
    actions: list[int | list[float]]
    compute: Compute
    plans: int
    tied_plans: int


@dataclass
class _Run:
    """One closed-loop run in progress (see :meth:`ClosedLoopProtocol.run_episodes`)."""

    episode: Episode
    goal: Goal
    repeat: int
    planner: Planner
    scorer: GoalScorer
    state: State
    outcome: _Outcome
    frames: list[np.ndarray]
    actions: list[Action]


class ClosedLoopProtocol(Protocol):
    """Planning in the true env. Options (task YAML ``options``):

    * ``planner``: ``propose-simulate-select`` (default), ``cem``, ``beam`` or a plugin.
    * ``planner_options``: the planner's keyword arguments (e.g. ``{candidates: 4}``).
    * ``scorer``: ``grounded`` (default), ``pixel`` or ``lpips`` (image goals).
    * ``scorer_options``: e.g. ``{net: alex}`` for LPIPS.
    * ``goals``: env goal names, episode i gets ``goals[i % len(goals)]`` (default: all of the
      env's goals).
    * ``random_rollouts``: seeded random-acting rollouts per episode (default 8).
    * ``repeats``: closed-loop runs per episode with different proposal/tie-breaking seeds
      (default 1); an episode's success is their mean, which makes models whose plans often
      tie (or stochastic planners) measurable with fewer episodes.

    The step budget is ``episodes.horizon``; the context is ``episodes.context`` true frames.
    """

    name: ClassVar[str] = "closed_loop"
    metrics: ClassVar[tuple[str, ...]] = (
        "success",
        "normalized_score",
        "random_success",
        "oracle_success",
        "steps_to_goal",
        "wm_calls",
        "frames_imagined",
        "tie_rate",
    )
    options: ClassVar[tuple[Option, ...]] = (
        Option("planner", str, "propose-simulate-select", "planner name (a registered planner)"),
        Option("planner_options", dict, None, "the planner's keyword arguments"),
        Option("scorer", str, "grounded", "how imagined frames are scored", choices=SCORERS),
        Option("scorer_options", dict, None, "the scorer's keyword arguments"),
        Option("goals", list, None, "env goal names, episode i gets goals[i % G] (default: all)"),
        Option("random_rollouts", int, 8, "seeded random-acting rollouts per episode", minimum=1),
        Option("repeats", int, 1, "closed-loop runs per episode (seeds differ)", minimum=1),
    )

    def __init__(self, task: Any, env: Env) -> None:
        super().__init__(task, env)
        opts = self.opts
        self.planner_name: str = opts["planner"]
        self.planner_options = dict(opts["planner_options"] or {})
        self.scorer_kind: str = opts["scorer"]
        self.scorer_options = dict(opts["scorer_options"] or {})
        goals = list(opts["goals"] or env.goals())
        if not goals:
            raise ConfigError(
                f"Task {task.name!r}: env {env.name!r} defines no goals, so it cannot be planned in."
            )
        for goal in goals:
            if goal not in env.goals():
                raise ConfigError(
                    f"Task {task.name!r}: unknown goal {goal!r} for env {env.name!r}; expected "
                    f"some of: {', '.join(env.goals())}."
                )
        self.goals: list[str] = goals
        self.random_rollouts: int = opts["random_rollouts"]
        self.repeats: int = opts["repeats"]
        self.budget = int(task.episodes.horizon)
        self.context = int(task.episodes.context)
        planner = self.new_planner()  # fails now, not mid-run, on bad planner options
        #: the planner backpropagates through the model (``gradient``): only models declaring
        #: ``differentiable`` are scored, the true simulator cannot be its oracle
        self.needs_gradients = bool(getattr(planner, "needs_gradients", False))
        if self.needs_gradients:
            self._check_gradient_task(task)
        self.skipped: dict[str, str] = {}
        blank = np.zeros((env.resolution, env.resolution, 3), np.uint8)
        try:  # likewise for the scorer's options (image scorers load no weights until used)
            make_scorer(self.scorer_kind, env, goals[0], image=blank, **self.scorer_options)
        except TypeError as err:
            raise ConfigError(
                f"Task {task.name!r}: bad scorer options {self.scorer_options}: {err}."
            ) from err
        self._oracle: ModelRunner | None = None
        #: wall time and counts of this process's planning with the model under test
        self.planning = Compute()
        self.plans = 0
        self.episodes_run = 0

    def _check_gradient_task(self, task: Any) -> None:
        """Refuses what a gradient planner cannot do: grounded scoring (perception has no
        gradient) and the oracle reference (the true simulator has none)."""
        if self.scorer_kind == "grounded":
            raise ConfigError(
                f"Task {task.name!r}: planner {self.planner_name!r} backpropagates an image-goal "
                "cost, but the scorer is 'grounded' (perception has no gradient); expected "
                "scorer 'pixel' or 'lpips'."
            )
        oracle = sorted({"oracle_success", "normalized_score"} & set(task.metrics))
        if oracle:
            raise ConfigError(
                f"Task {task.name!r}: planner {self.planner_name!r} needs a model with "
                f"gradients, which the true simulator (the oracle reference) is not; expected "
                f"metrics without {', '.join(oracle)}."
            )

    def new_planner(self) -> Planner:
        """A fresh planner as the task configures it."""
        return make_planner(self.planner_name, self.env, **self.planner_options)

    def goal(self, episode: Episode) -> Goal:
        """The episode's goal: ``goals[index % G]``, with its image when the scorer needs one."""
        name = self.goals[episode.index % len(self.goals)]
        image = None
        if self.scorer_kind != "grounded":
            rng = np.random.default_rng([episode.seed, _GOAL])
            image = goal_image(self.env, episode.context_states[-1], name, rng)
        return Goal(name=name, text=GOAL_TEXTS.get(name, name), image=image)

    def scorer(self, goal: Goal) -> GoalScorer:
        return make_scorer(
            self.scorer_kind, self.env, goal.name, image=goal.image, **self.scorer_options
        )

    def _oracle_runner(self, resolution: int) -> ModelRunner:
        if self._oracle is None:
            from panbench.models.baselines import OracleModel

            self._oracle = ModelRunner(OracleModel(), self.env, resolution)
        return self._oracle

    def run_episodes(
        self, runner: ModelRunner, runs: Sequence[tuple[Episode, Goal, int]]
    ) -> list[_Outcome]:
        """Plans and executes closed-loop runs in lockstep; the true env decides success.

        Each run is ``(episode, goal, repeat)``; ``repeat`` selects the seeds of proposals and
        tie-breaking (repeats differ only there). At every step the planners of all runs still
        going imagine together (:func:`~panbench.planning.base.plan_batch`: one model call per
        imagined step for all their candidates); each run's plans, seeds and counts are those
        it would get alone.
        """
        env = self.env
        live: list[_Run] = []
        outcomes = [_Outcome(None, [], Compute(), 0, 0) for _ in runs]
        for (episode, goal, repeat), outcome in zip(runs, outcomes, strict=True):
            state = episode.context_states[-1]
            if env.goal_reached(state, goal.name):
                outcome.reached_at = 0
                continue
            planner = self.new_planner()
            planner.reset()
            live.append(
                _Run(
                    episode,
                    goal,
                    repeat,
                    planner,
                    self.scorer(goal),
                    state,
                    outcome,
                    list(episode.context_frames),
                    list(episode.context_actions),
                )
            )
        for t in range(self.budget):
            if not live:
                break
            jobs = [self._job(runner, run, t) for run in live]
            for run, plan in zip(live, plan_batch(jobs), strict=True):
                outcome = run.outcome
                outcome.compute.add(plan.compute)
                outcome.plans += 1
                outcome.tied_plans += int(plan.tied > 1)
                run.state = env.step(run.state, plan.action)
                run.frames.append(env.render(run.state))
                run.actions.append(plan.action)
                outcome.actions.append(_recorded(plan.action))
                if env.goal_reached(run.state, run.goal.name):
                    outcome.reached_at = t + 1
            live = [run for run in live if run.outcome.reached_at is None]
        return outcomes

    def _job(self, runner: ModelRunner, run: _Run, t: int) -> PlanJob:
        """Step ``t`` of ``run``: what its planner sees, imagines from and draws seeds with."""
        situation = Situation(
            frame=run.frames[-1],
            actions=tuple(self.env.actions(run.state)),
            goal=run.goal,
            step=t,
            steps_left=self.budget - t,
        )
        imagination = Imagination(
            runner,
            step_episode(run.episode, run.frames, run.actions, run.state, t, self.context),
            where=f"planning step {t} of task {self.task.name!r}",
        )
        rng = np.random.default_rng([run.episode.seed, _PLAN, run.repeat, t])
        return PlanJob(run.planner, situation, imagination, run.scorer, rng)

    def random_reference(self, planner: Planner, episode: Episode, goal: Goal) -> np.ndarray:
        """Success curves float [K, budget] of K seeded rollouts acting with ``random_action``."""
        env = self.env
        out = np.zeros((self.random_rollouts, self.budget))
        for k in range(self.random_rollouts):
            rng = np.random.default_rng([episode.seed, _RANDOM, k])
            state = episode.context_states[-1]
            reached: int | None = 0 if env.goal_reached(state, goal.name) else None
            t = 0
            while reached is None and t < self.budget:
                situation = Situation(
                    frame=env.render(state),
                    actions=tuple(env.actions(state)),
                    goal=goal,
                    step=t,
                    steps_left=self.budget - t,
                )
                state = env.step(state, planner.random_action(situation, rng))
                t += 1
                if env.goal_reached(state, goal.name):
                    reached = t
            out[k] = success_curve(reached, self.budget)
        return out

    def run_batch(self, runner: ModelRunner, episodes: Sequence[Episode]) -> list[Record]:
        records: list[Record] = []
        if self.needs_gradients and not runner.model.spec.differentiable:
            reason = (
                f"n/a: planner {self.planner_name!r} backpropagates through the model, which "
                "does not imagine with gradients (ModelSpec.differentiable is False)"
            )
            self.skipped.update({m: reason for m in self.task.metrics})
            return [Record(metrics={}) for _ in episodes]
        goals = [self.goal(episode) for episode in episodes]
        runs = [
            (e, g, r) for e, g in zip(episodes, goals, strict=True) for r in range(self.repeats)
        ]
        mine_all = self.run_episodes(runner, runs)
        if self.needs_gradients:  # no oracle reference (refused in the task's metrics)
            best_all = [_Outcome(None, [], Compute(), 0, 0) for _ in runs]
        else:
            best_all = self.run_episodes(self._oracle_runner(runner.resolution), runs)
        for i, (episode, goal) in enumerate(zip(episodes, goals, strict=True)):
            mine = mine_all[i * self.repeats : (i + 1) * self.repeats]
            best = best_all[i * self.repeats : (i + 1) * self.repeats]
            random_curves = self.random_reference(self.new_planner(), episode, goal)
            for outcome in mine:
                self.planning.add(outcome.compute)
                self.plans += outcome.plans
            self.episodes_run += 1
            curves = np.array([success_curve(o.reached_at, self.budget) for o in mine])
            oracle_curves = np.array([success_curve(o.reached_at, self.budget) for o in best])
            steps = [o.reached_at for o in mine if o.reached_at is not None]
            plans = sum(o.plans for o in mine)
            tied = sum(o.tied_plans for o in mine)
            wm_calls = sum(o.compute.wm_calls for o in mine)
            frames = sum(o.compute.frames for o in mine)
            records.append(
                Record(
                    metrics={
                        "success": float(curves[:, -1].mean()),
                        "random_success": float(random_curves[:, -1].mean()),
                        "oracle_success": float(oracle_curves[:, -1].mean()),
                        "steps_to_goal": float(np.mean(steps)) if steps else math.nan,
                        # per closed-loop run, so repeats do not inflate the cost
                        "wm_calls": wm_calls / self.repeats,
                        "frames_imagined": frames / self.repeats,
                        "tie_rate": tied / plans if plans else math.nan,
                    },
                    curves={
                        "success": [float(x) for x in curves.mean(axis=0)],
                        "random_success": [float(x) for x in random_curves.mean(axis=0)],
                        "oracle_success": [float(x) for x in oracle_curves.mean(axis=0)],
                    },
                    extra={
                        "goal": goal.name,
                        "actions": [o.actions for o in mine],
                        "compute": {
                            "wm_calls": wm_calls,
                            "frames_imagined": frames,
                            "sequences_imagined": sum(o.compute.sequences for o in mine),
                            "plans": plans,
                            "tied_plans": tied,
                            "runs": self.repeats,
                        },
                    },
                )
            )
            if self.needs_gradients:  # no oracle: no value, rather than a made-up one
                records[-1].metrics.pop("oracle_success")
                assert records[-1].curves is not None
                records[-1].curves.pop("oracle_success")
        return records

    def extra_results(self) -> dict[str, Any]:
        """Wall time of planning with the model under test, for the task's results entry.

        Wall time is not a per-episode value (it varies run to run), so it stays out of the
        samples; it covers the episodes this process ran (not those resumed from disk).
        """
        plans = max(self.plans, 1)
        return {
            "planning": {
                "planner": self.planner_name,
                "planner_options": self.planner_options,
                "scorer": self.scorer_kind,
                "budget": self.budget,
                "episodes_timed": self.episodes_run,
                "plans": self.plans,
                "wm_calls": self.planning.wm_calls,
                "frames_imagined": self.planning.frames,
                "seconds": round(self.planning.seconds, 6),
                "seconds_per_plan": round(self.planning.seconds / plans, 6),
            }
        }
