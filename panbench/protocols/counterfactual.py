"""Counterfactuals: the same context under two actions; does the prediction change as the truth does?

From each episode's context the model's state is cloned and stepped once under the true action a
and once under an alternative action b whose true outcome differs. Grounded: the perceived
difference between the two predictions must match the true difference, entity by entity (the
displacement between the a- and b-outcomes within ``max(min_px, rel * |true difference|)``, and
the same presence). Pixels: Genie's delta-PSNR, ``PSNR(truth_a, pred_a) - PSNR(truth_a, pred_b)``:
how much the commanded action, rather than any action, explains the prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from panbench.data.episodes import Episode
from panbench.envs.base import Action
from panbench.metrics import grounded
from panbench.metrics.frame import psnr_video
from panbench.metrics.grounded import counterfactual_agreement
from panbench.protocols.base import ModelRunner, Protocol, Record
from panbench.protocols.declare import Option

__all__ = ["CounterfactualProtocol", "counterfactual_agreement"]


class CounterfactualProtocol(Protocol):
    """One context, two actions: does the prediction differ as the truth does (see ``options``)."""

    name: ClassVar[str] = "counterfactual"
    metrics: ClassVar[tuple[str, ...]] = ("counterfactual_accuracy", "delta_psnr")
    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "min_px", float, grounded.DEFAULT_MIN_PX, "agreement tolerance floor, px", minimum=0
        ),
        Option("rel", float, grounded.DEFAULT_REL, "relative agreement tolerance", minimum=0),
    )

    def _alternative(self, episode: Episode) -> Action:
        """A deterministic alternative action whose true outcome differs from the true action's."""
        env = self.env
        state = episode.context_states[-1]
        truth = env.render(episode.states[0])
        rng = np.random.default_rng([episode.seed, 11])
        actions = env.actions(state)
        for idx in rng.permutation(len(actions)):
            a = actions[int(idx)]
            if a.index == episode.actions[0].index:
                continue
            if not np.array_equal(env.render(env.step(state, a)), truth):
                return a
        return episode.actions[0]  # no action changes anything differently: a degenerate episode

    def run_batch(self, runner: ModelRunner, episodes: Sequence[Episode]) -> list[Record]:
        env = self.env
        min_px, rel = self.opts["min_px"], self.opts["rel"]
        state_a = runner.reset(episodes)
        state_b = runner.clone(state_a)
        acts_a = [e.actions[0] for e in episodes]
        acts_b = [self._alternative(e) for e in episodes]
        where = f"counterfactual step of task {self.task.name!r}"
        _, frames_a = runner.step(state_a, acts_a, where=f"{where} (true action)")
        _, frames_b = runner.step(state_b, acts_b, where=f"{where} (alternative action)")
        records: list[Record] = []
        for i, e in enumerate(episodes):
            s0 = e.context_states[-1]
            truth_a = env.render(e.states[0])
            true_b_state = env.step(s0, acts_b[i])
            agree = counterfactual_agreement(
                env.perceive(frames_a[i]),
                env.perceive(frames_b[i]),
                env.observe(e.states[0]),
                env.observe(true_b_state),
                min_px=min_px,
                rel=rel,
            )
            psnr_a = float(psnr_video(frames_a[i][None, None], truth_a[None, None])[0, 0])
            psnr_b = float(psnr_video(frames_b[i][None, None], truth_a[None, None])[0, 0])
            metrics: dict[str, Any] = {
                "counterfactual_accuracy": float(agree),
                "delta_psnr": psnr_a - psnr_b,
            }
            records.append(
                Record(
                    metrics={k: v for k, v in metrics.items() if k in self.task.metrics},
                    extra={"alternative_action": acts_b[i].index},
                    frames=frames_a[i][None],
                )
            )
        return records
