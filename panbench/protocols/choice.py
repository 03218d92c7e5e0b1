"""Step-wise simulation as a four-way choice (WM-ABench, PAN paper): pick the true next frame.

At every step the model, rolling out open loop under the true actions, predicts the next frame.
The candidates are the true next frame and ``n_choices - 1`` distractors: the frames that other
actions would have produced from the same true state (frames equal to the truth, to each other or
to the unchanged current frame are skipped, so a distractor always shows a real alternative
outcome). The prediction picks the nearest candidate (pixel MSE by default); a tie among k nearest
candidates that include the truth earns 1/k, so ignoring the action scores chance, not zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from panbench.data.episodes import Episode
from panbench.protocols.base import ModelRunner, Protocol, Record
from panbench.protocols.declare import Option


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(d * d))


class ChoiceProtocol(Protocol):
    """Picks the true next frame among distractors at every step (options: see ``options``)."""

    name: ClassVar[str] = "choice"
    metrics: ClassVar[tuple[str, ...]] = ("choice_accuracy",)
    options: ClassVar[tuple[Option, ...]] = (
        Option("n_choices", int, 4, "candidates per step, the true one included", minimum=2),
        Option("max_distractor_depth", int, 2, "actions deep to search for distractors", minimum=1),
    )

    def _candidates(
        self, state: Any, true_action: Any, rng: np.random.Generator
    ) -> list[np.ndarray]:
        env = self.env
        n = self.opts["n_choices"]
        depth = self.opts["max_distractor_depth"]
        truth = env.render(env.step(state, true_action))
        current = env.render(state)
        seen = [truth.tobytes(), current.tobytes()]
        out = [truth]
        frontier = [state]
        # Breadth first: one-action outcomes, then two-action outcomes if still short.
        for _ in range(depth):
            next_frontier = []
            for s in frontier:
                actions = env.actions(s)
                for idx in rng.permutation(len(actions)):
                    a = actions[int(idx)]
                    if s is state and a.index == true_action.index:
                        continue
                    nxt = env.step(s, a)
                    next_frontier.append(nxt)
                    frame = env.render(nxt)
                    if frame.tobytes() in seen:
                        continue
                    seen.append(frame.tobytes())
                    out.append(frame)
                    if len(out) == n:
                        return out
            frontier = next_frontier
        return out

    def run_batch(self, runner: ModelRunner, episodes: Sequence[Episode]) -> list[Record]:
        horizon = len(episodes[0].actions)
        state = runner.reset(episodes)
        scores = np.zeros((len(episodes), horizon))
        counts = np.zeros((len(episodes), horizon), dtype=np.int64)
        preds = np.empty((len(episodes), horizon, *episodes[0].frames.shape[1:]), dtype=np.uint8)
        rngs = [np.random.default_rng([e.seed, 7]) for e in episodes]
        prev_states = [e.context_states[-1] for e in episodes]
        for t in range(horizon):
            actions = [e.actions[t] for e in episodes]
            state, frames = runner.step(
                state, actions, where=f"step {t} of task {self.task.name!r}"
            )
            preds[:, t] = frames
            for i in range(len(episodes)):
                cands = self._candidates(prev_states[i], actions[i], rngs[i])
                dists = np.array([_distance(frames[i], c) for c in cands])
                nearest = np.flatnonzero(dists == dists.min())
                scores[i, t] = (1.0 / len(nearest)) if 0 in nearest else 0.0
                counts[i, t] = len(cands)
            prev_states = [e.states[t] for e in episodes]
        records: list[Record] = []
        for i in range(len(episodes)):
            records.append(
                Record(
                    metrics={"choice_accuracy": float(scores[i].mean())},
                    curves={"choice_accuracy": scores[i].tolist()},
                    extra={"n_candidates": counts[i].tolist()},
                    frames=preds[i],
                )
            )
        return records
