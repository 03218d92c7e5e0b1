"""Planning with a world model in the loop: planners, proposers and goal scoring of imagined frames.

Planners (registry ``PLANNERS``, plugins under the ``panbench.planners`` entry-point group):
``propose-simulate-select``, ``cem`` and ``beam`` over discrete actions; ``cem-continuous`` and
``mppi`` over the action vectors of envs with a continuous action space; ``gradient`` over them
too, for models that imagine with gradients. The closed-loop protocol
(:mod:`panbench.protocols.closed_loop`) runs them against the true environment; see
``docs/planning.md``.
"""

from panbench.planning.base import (
    Compute,
    Goal,
    Imagination,
    Plan,
    PlanJob,
    Planner,
    Request,
    Situation,
    imagine,
    make_planner,
    n_tied,
    plan_batch,
    rank,
)
from panbench.planning.proposers import PROPOSERS, Proposer, make_proposer
from panbench.planning.scoring import (
    SCORERS,
    GoalScorer,
    GroundedScorer,
    LpipsGoalScorer,
    PixelGoalScorer,
    goal_image,
    make_scorer,
    sequence_scores,
)
from panbench.registry import Registry

PLANNERS: Registry[type[Planner]] = Registry("planner", entry_point_group="panbench.planners")
PLANNERS.register("propose-simulate-select", "panbench.planning.pss:ProposeSimulateSelect")
PLANNERS.register("cem", "panbench.planning.cem:CrossEntropyMethod")
PLANNERS.register("beam", "panbench.planning.beam:BeamSearch")
PLANNERS.register("cem-continuous", "panbench.planning.cem_continuous:ContinuousCEM")
PLANNERS.register("mppi", "panbench.planning.mppi:MPPI")
PLANNERS.register("gradient", "panbench.planning.gradient:GradientPlanner")

__all__ = [
    "PLANNERS",
    "PROPOSERS",
    "SCORERS",
    "Compute",
    "Goal",
    "GoalScorer",
    "GroundedScorer",
    "Imagination",
    "LpipsGoalScorer",
    "PixelGoalScorer",
    "Plan",
    "PlanJob",
    "Planner",
    "Proposer",
    "Request",
    "Situation",
    "goal_image",
    "imagine",
    "make_planner",
    "make_proposer",
    "make_scorer",
    "n_tied",
    "plan_batch",
    "rank",
    "sequence_scores",
]
