"""Policy evaluation in imagination (WorldEval, WorldArena): can the model stand in for the env?

K fixed policies of different competence are rolled out from each episode's start, in the true
env and in the model's imagination, up to the step budget (``episodes.horizon``). Policy k acts
from what it sees (``env.perceive`` of the true or the imagined frame): with probability
``competence[k]`` the env's scripted expert action (:meth:`Env.expert_action`), otherwise a
uniformly random available action, drawn from a generator seeded by (episode, k), the same in
both worlds. Success is judged alike in both worlds, from frames: a policy succeeds when the goal
distance of a perceived frame (the true render, or the imagined frame) is 0. Where perception is
exact (maze, blocks) that is the env's goal predicate; on PushT it is the predicate on the
perceived pose, so a model imagining the true frames scores exactly what the truth does rather
than the perception error at the success threshold.

Scores: ``policy_rank_correlation`` (set-level: Spearman between imagined and true success rates
over episodes, bootstrap CI; :mod:`panbench.metrics.policy_eval`) and ``policy_success_error``
(per episode, the mean over policies of |imagined - true success|). Every policy of an episode
is imagined in one batched model call per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from panbench.data.episodes import Episode
from panbench.envs.base import Action, Env, Observation
from panbench.errors import ConfigError
from panbench.protocols.base import ModelRunner, Protocol, Record
from panbench.protocols.declare import Option

__all__ = ["PolicyEvalProtocol"]

_POLICY = 17  # salt of the policies' random streams


class PolicyEvalProtocol(Protocol):
    """Ranks scripted policies in imagination against the truth. Options: see ``options``."""

    name: ClassVar[str] = "policy_eval"
    metrics: ClassVar[tuple[str, ...]] = ("policy_rank_correlation", "policy_success_error")
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "competence",
            list,
            None,
            "per policy, the probability of the expert action (default 0, .25, .5, .75, 1)",
        ),
        Option("goal", str, None, "the env goal (default: its first)"),
    )

    def __init__(self, task: Any, env: Env) -> None:
        super().__init__(task, env)
        competence = self.opts["competence"] or [0.0, 0.25, 0.5, 0.75, 1.0]
        if len(competence) < 2 or not all(
            isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 1
            for p in competence
        ):
            raise ConfigError(
                f"Task {task.name!r}: expected competence to be two or more numbers in [0, 1], "
                f"but got {competence!r}."
            )
        self.competence = [float(p) for p in competence]
        goals = env.goals()
        self.goal = self.opts["goal"] or (goals[0] if goals else None)
        if self.goal not in goals:
            raise ConfigError(
                f"Task {task.name!r}: env {env.name!r} has no goal {self.goal!r}; expected one "
                f"of: {', '.join(goals) or '(none)'}."
            )
        start = env.reset(0)
        if env.expert_action(env.observe(start), self.goal) is None and not env.goal_reached(
            start, self.goal
        ):
            raise ConfigError(
                f"Task {task.name!r}: env {env.name!r} has no scripted expert "
                "(Env.expert_action), so policy_eval cannot build its policies."
            )
        self.budget = int(task.episodes.horizon)

    def _act(
        self, k: int, obs: Observation, actions: list[Action], rng: np.random.Generator
    ) -> Action:
        """Policy k's action: the expert's with probability competence[k], else random.

        Both draws are always made, so the stream stays aligned whatever the observation.
        """
        expert = rng.random() < self.competence[k]
        fallback = actions[int(rng.integers(len(actions)))]
        chosen = self.env.expert_action(obs, self.goal) if expert else None
        return chosen if chosen is not None else fallback

    def _true_success(self, episode: Episode) -> list[float]:
        env = self.env
        out = []
        for k in range(len(self.competence)):
            rng = np.random.default_rng([episode.seed, _POLICY, k])
            state = episode.context_states[-1]
            obs = env.perceive(env.render(state))
            reached = env.goal_distance(obs, self.goal) == 0
            for _ in range(self.budget):
                if reached:
                    break
                state = env.step(state, self._act(k, obs, env.actions(state), rng))
                obs = env.perceive(env.render(state))
                reached = env.goal_distance(obs, self.goal) == 0
            out.append(float(reached))
        return out

    def _imagined_success(self, runner: ModelRunner, episode: Episode) -> list[float]:
        env = self.env
        k_all = len(self.competence)
        rngs = [np.random.default_rng([episode.seed, _POLICY, k]) for k in range(k_all)]
        frames = np.repeat(episode.context_frames[-1:], k_all, axis=0)
        # The policies choose among the actions of the start state: imagination has no state.
        actions = env.actions(episode.context_states[-1])
        reached = [env.goal_distance(env.perceive(f), self.goal) == 0 for f in frames]
        state = runner.reset([episode] * k_all)
        for t in range(self.budget):
            if all(reached):
                break
            chosen = [self._act(k, env.perceive(frames[k]), actions, rngs[k]) for k in range(k_all)]
            where = f"policy step {t} of task {self.task.name!r}"
            state, frames = runner.step(state, chosen, where=where)
            for k in range(k_all):
                if not reached[k]:
                    reached[k] = env.goal_distance(env.perceive(frames[k]), self.goal) == 0
        return [float(r) for r in reached]

    def run_batch(self, runner: ModelRunner, episodes: Sequence[Episode]) -> list[Record]:
        records = []
        for episode in episodes:
            true = self._true_success(episode)
            imagined = self._imagined_success(runner, episode)
            error = float(np.mean(np.abs(np.asarray(imagined) - np.asarray(true))))
            records.append(
                Record(
                    metrics={"policy_success_error": error},
                    extra={
                        "policy_success": {"true": true, "imagined": imagined},
                        "competence": self.competence,
                    },
                )
            )
        return records
