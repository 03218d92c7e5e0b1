"""Beam search over discrete (or language) actions, imagined with the world model.

Level d keeps the ``width`` imagined action prefixes that end closest to the goal and extends
each by every candidate action; the first action of the best node found (closest to the goal,
then shortest) is executed and the search restarts at the next step. Each level re-imagines
its prefixes from the current observation in one batched rollout (the adapter API has no way to
split a batched state), so a level-d expansion costs d model steps.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from panbench.envs.base import Action, Env
from panbench.errors import ConfigError
from panbench.planning.base import Imagination, Planner, Search, Situation, n_tied, rank
from panbench.planning.proposers import Proposer, make_proposer
from panbench.planning.scoring import GoalScorer

__all__ = ["BeamSearch"]


class BeamSearch(Planner):
    """Beam search with imagined frames scored against the goal.

    Args:
        env: the task's env (handed to a named proposer).
        width: prefixes kept per level.
        depth: the longest imagined sequence.
        proposer: None to expand every available action; else a proposer (name or instance)
            whose candidates for the current observation are the actions used at every level.
        candidates: the most actions the proposer offers.
        proposer_options: keyword arguments for a proposer given by name.

    The search stops early once a node is imagined to reach the goal (distance 0).
    """

    name: ClassVar[str] = "beam"

    def __init__(
        self,
        env: Env,
        width: int = 4,
        depth: int = 3,
        proposer: str | Proposer | None = None,
        candidates: int = 8,
        proposer_options: dict[str, Any] | None = None,
    ) -> None:
        for key, value in (("width", width), ("depth", depth), ("candidates", candidates)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"Expected {key} to be an integer >= 1, but got {value!r}.")
        self.width, self.depth, self.candidates = width, depth, candidates
        if proposer is None or isinstance(proposer, Proposer):
            self.proposer = proposer
        else:
            self.proposer = make_proposer(proposer, env, **(proposer_options or {}))

    def _expansions(self, situation: Situation, rng: np.random.Generator) -> list[Action]:
        if self.proposer is None:
            return list(situation.actions)
        return self.proposer.propose(situation, rng, self.candidates)

    def search(
        self,
        situation: Situation,
        imagination: Imagination,
        scorer: GoalScorer,
        rng: np.random.Generator,
    ) -> Search:
        expand = self._expansions(situation, rng)
        nodes: list[list[Action]] = []
        dists: list[float] = []
        frontier: list[list[Action]] = [[]]
        for _ in range(self.depth):
            children = [[*prefix, a] for prefix in frontier for a in expand]
            frames = yield from imagination.request(children)
            d = scorer(frames[:, -1])
            nodes.extend(children)
            dists.extend(d.tolist())
            if (d == 0).any():
                break
            frontier = [children[int(i)] for i in rank([d], rng)[: self.width]]
        keys = [np.asarray(dists), np.array([len(n) for n in nodes], dtype=np.float64)]
        order = rank(keys, rng)
        i = int(order[0])
        return nodes[i], float(keys[0][i]), len(nodes), n_tied(keys, order)

    def random_action(self, situation: Situation, rng: np.random.Generator) -> Action:
        pool = self._expansions(situation, rng)
        return pool[int(rng.integers(len(pool)))]
