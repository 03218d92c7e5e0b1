"""Propose-simulate-select: propose candidate actions, imagine each, execute the best.

The loop of the PAN paper's open-ended and structured planning (and World-in-World): at every
step a proposer offers up to M candidate actions, the world model imagines the outcome of each
(branching from the current observation), the goal scorer ranks the imagined frames and the
best candidate is executed; ties are broken at random with the step's seeded generator.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from panbench.envs.base import Action, Env
from panbench.errors import ConfigError
from panbench.planning.base import Imagination, Planner, Search, Situation, n_tied, rank
from panbench.planning.proposers import Proposer, make_proposer
from panbench.planning.scoring import GoalScorer, sequence_scores

__all__ = ["ProposeSimulateSelect"]


class ProposeSimulateSelect(Planner):
    """One-step propose-simulate-select.

    Args:
        env: the task's env (handed to the proposer for pixel perception).
        proposer: a registered proposer name (``"random"``, ``"heuristic"``, a plugin) or a
            :class:`~panbench.planning.proposers.Proposer`.
        candidates: M, the most candidate actions imagined per step.
        proposer_options: keyword arguments for a proposer given by name.

    Its random-acting reference draws the proposer's candidates and picks one uniformly, which
    is what this planner does when the model imagines every candidate alike.
    """

    name: ClassVar[str] = "propose-simulate-select"

    def __init__(
        self,
        env: Env,
        proposer: str | Proposer = "random",
        candidates: int = 8,
        proposer_options: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ConfigError(f"Expected candidates to be an integer >= 1, but got {candidates!r}.")
        self.candidates = candidates
        self.proposer = (
            proposer
            if isinstance(proposer, Proposer)
            else make_proposer(proposer, env, **(proposer_options or {}))
        )

    def search(
        self,
        situation: Situation,
        imagination: Imagination,
        scorer: GoalScorer,
        rng: np.random.Generator,
    ) -> Search:
        proposals = self.proposer.propose(situation, rng, self.candidates)
        if not proposals:
            raise ConfigError(f"Proposer {self.proposer.name!r} proposed no action.")
        frames = yield from imagination.request([[a] for a in proposals])
        best, _ = sequence_scores(scorer, frames)
        order = rank([best], rng)
        i = int(order[0])
        return [proposals[i]], float(best[i]), len(proposals), n_tied([best], order)

    def random_action(self, situation: Situation, rng: np.random.Generator) -> Action:
        proposals = self.proposer.propose(situation, rng, self.candidates)
        return proposals[int(rng.integers(len(proposals)))]
