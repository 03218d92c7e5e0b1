"""Atari protocols: rollouts scored on objects, permanence, rewards; multi-step counterfactuals.

``atari`` is :class:`~panbench.protocols.rollout.RolloutProtocol` (per-step pixels and grounded
action following on the objects the env reads from pixels) plus object permanence split in two
(objects the prediction loses, ``miss_rate``; objects it invents, ``invention_rate``) and, for
models that declare ``predicts_rewards``, the emulator's rewards and episode ends scored exactly
(:mod:`panbench.metrics.outcome`). For other models the reward metrics are skipped with the
reason "n/a", never scored as zero.

``atari_counterfactual``: from one context, the true action sequence and an alternative one (one
action held for the whole horizon, chosen so that the true futures differ beyond the agreement
tolerance); the predicted futures must differ where the truth differs and agree where it agrees,
object by object, at the last step (:func:`panbench.metrics.grounded.counterfactual_agreement`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from panbench.data.episodes import Episode
from panbench.envs.base import Action, Env, Observation
from panbench.metrics import grounded, outcome
from panbench.metrics.frame import psnr_video
from panbench.protocols.base import ModelRunner, Protocol, Record
from panbench.protocols.counterfactual import CounterfactualProtocol
from panbench.protocols.declare import Option
from panbench.protocols.rollout import RolloutProtocol, add_curves

_REWARD_METRICS = ("reward_sign_accuracy", "terminal_f1")
NOT_PREDICTED = "n/a: the model does not predict rewards (ModelSpec.predicts_rewards is False)"


def geometry(obs: Observation) -> Observation:
    """The ``positions`` and ``present`` of an observation (what the grounded metrics compare)."""
    return {"positions": obs["positions"], "present": obs["present"]}


class AtariProtocol(RolloutProtocol):
    """Open-loop rollout on an Atari game: objects, permanence, rewards (see the module doc)."""

    name: ClassVar[str] = "atari"
    metrics: ClassVar[tuple[str, ...]] = (
        *RolloutProtocol.metrics,
        "miss_rate",
        "invention_rate",
        *_REWARD_METRICS,
    )

    def run_batch(self, runner: ModelRunner, episodes: Sequence[Episode]) -> list[Record]:
        wants_rewards = bool(set(self.task.metrics) & set(_REWARD_METRICS))
        if wants_rewards and not runner.model.spec.predicts_rewards:
            for m in sorted(set(self.task.metrics) & set(_REWARD_METRICS)):
                self.skipped[m] = NOT_PREDICTED
            wants_rewards = False
        horizon = len(episodes[0].actions)
        res = runner.resolution
        state = runner.reset(episodes)
        preds = np.empty((len(episodes), horizon, res, res, 3), dtype=np.uint8)
        rewards = np.full((len(episodes), horizon), np.nan)
        ends = np.zeros((len(episodes), horizon), dtype=bool)
        for t in range(horizon):
            where = f"step {t} of task {self.task.name!r}"
            state, frames = runner.step(state, [e.actions[t] for e in episodes], where=where)
            preds[:, t] = frames
            if wants_rewards:
                rewards[:, t], ends[:, t] = runner.outcomes(state, len(episodes), where)
        records = []
        for i, e in enumerate(episodes):
            record = self._score(e, preds[i])
            self._score_objects(record, e, preds[i])
            if wants_rewards:
                self._score_rewards(record, e, rewards[i], ends[i])
            records.append(record)
        return records

    def _score_objects(self, record: Record, episode: Episode, pred: np.ndarray) -> None:
        wanted = set(self.task.metrics) & {"miss_rate", "invention_rate"}
        if not wanted:
            return
        env = self.env
        p_obs = grounded.stack_observations([geometry(o) for o in env.perceive_batch(pred)])
        t_obs = grounded.stack_observations([geometry(env.observe(s)) for s in episode.states])
        curves = {
            "miss_rate": grounded.miss_rate(p_obs, t_obs),
            "invention_rate": grounded.invention_rate(p_obs, t_obs),
        }
        add_curves(record, {k: v for k, v in curves.items() if k in wanted}, {})

    def _score_rewards(
        self, record: Record, episode: Episode, rewards: np.ndarray, ends: np.ndarray
    ) -> None:
        truth = [self.env.outcome(s) for s in episode.states]
        true_rewards = np.array([o[0] if o else np.nan for o in truth])
        true_ends = np.array([bool(o[1]) if o else False for o in truth])
        wanted = set(self.task.metrics)
        curves, values = {}, {}
        if "reward_sign_accuracy" in wanted:
            curves["reward_sign_accuracy"] = outcome.reward_sign_agreement(rewards, true_rewards)
        if "terminal_f1" in wanted:
            values["terminal_f1"] = outcome.terminal_f1(ends, true_ends)
        add_curves(record, curves, values)


class AtariCounterfactualProtocol(Protocol):
    """Two action sequences from one context; the predictions must differ as the truth does."""

    name: ClassVar[str] = "atari_counterfactual"
    # scored as the one-step counterfactual task is, with its tolerances
    metrics: ClassVar[tuple[str, ...]] = CounterfactualProtocol.metrics
    options: ClassVar[tuple[Option, ...]] = CounterfactualProtocol.options

    def __init__(self, task: Any, env: Env) -> None:
        super().__init__(task, env)
        self.min_px, self.rel = self.opts["min_px"], self.opts["rel"]

    def _true_end(self, episode: Episode, actions: Sequence[Action]) -> Any:
        state = episode.context_states[-1]
        for a in actions:
            state = self.env.step(state, a)
        return state

    def alternative(self, episode: Episode) -> list[Action]:
        """A deterministic alternative sequence (one action held for the whole horizon) whose
        true end differs from the true sequence's beyond the tolerance (so predicting no
        difference fails); the first whose end frame differs at all if none does."""
        env = self.env
        horizon = len(episode.actions)
        true_end = geometry(env.observe(episode.states[-1]))
        true_frame = env.render(episode.states[-1])
        rng = np.random.default_rng([episode.seed, 13])
        actions = env.actions(episode.context_states[-1])
        fallback: list[Action] | None = None
        for idx in rng.permutation(len(actions)):
            seq = [actions[int(idx)]] * horizon
            if [a.index for a in seq] == [a.index for a in episode.actions]:
                continue
            end = self._true_end(episode, seq)
            other = geometry(env.observe(end))
            same = grounded.counterfactual_agreement(
                true_end, true_end, true_end, other, min_px=self.min_px, rel=self.rel
            )
            if not same:
                return seq
            if fallback is None and not np.array_equal(env.render(end), true_frame):
                fallback = seq
        return fallback or list(episode.actions)

    def run_batch(self, runner: ModelRunner, episodes: Sequence[Episode]) -> list[Record]:
        env = self.env
        horizon = len(episodes[0].actions)
        state_a = runner.reset(episodes)
        state_b = runner.clone(state_a)
        alts = [self.alternative(e) for e in episodes]
        where = f"counterfactual of task {self.task.name!r}"
        frames_a = frames_b = np.empty(0)
        for t in range(horizon):
            state_a, frames_a = runner.step(
                state_a, [e.actions[t] for e in episodes], where=f"{where}, step {t} (true)"
            )
            state_b, frames_b = runner.step(
                state_b, [alt[t] for alt in alts], where=f"{where}, step {t} (alternative)"
            )
        records: list[Record] = []
        for i, e in enumerate(episodes):
            true_b = self._true_end(e, alts[i])
            agree = grounded.counterfactual_agreement(
                geometry(env.perceive(frames_a[i])),
                geometry(env.perceive(frames_b[i])),
                geometry(env.observe(e.states[-1])),
                geometry(env.observe(true_b)),
                min_px=self.min_px,
                rel=self.rel,
            )
            truth_a = e.frames[-1]
            psnr_a = float(psnr_video(frames_a[i][None, None], truth_a[None, None])[0, 0])
            psnr_b = float(psnr_video(frames_b[i][None, None], truth_a[None, None])[0, 0])
            metrics = {"counterfactual_accuracy": float(agree), "delta_psnr": psnr_a - psnr_b}
            records.append(
                Record(
                    metrics={k: v for k, v in metrics.items() if k in self.task.metrics},
                    extra={"alternative_actions": [a.index for a in alts[i]]},
                    frames=frames_a[i][None],
                )
            )
        return records
