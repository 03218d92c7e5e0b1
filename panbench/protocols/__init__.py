"""Protocols: how a task uses a model. One file each; a task's YAML names its protocol."""

from panbench.protocols.base import ModelRunner, Protocol, Record
from panbench.protocols.declare import Option
from panbench.registry import Registry

PROTOCOLS: Registry[type[Protocol]] = Registry("protocol", entry_point_group="panbench.protocols")
PROTOCOLS.register("rollout", "panbench.protocols.rollout:RolloutProtocol")
PROTOCOLS.register("choice", "panbench.protocols.choice:ChoiceProtocol")
PROTOCOLS.register("counterfactual", "panbench.protocols.counterfactual:CounterfactualProtocol")
PROTOCOLS.register("closed_loop", "panbench.protocols.closed_loop:ClosedLoopProtocol")
PROTOCOLS.register("physics", "panbench.protocols.physics:PhysicsProtocol")
# Atari games (ALE + OCAtari): rollouts with objects and rewards, multi-step counterfactuals
PROTOCOLS.register("atari", "panbench.protocols.atari:AtariProtocol")
PROTOCOLS.register("atari_counterfactual", "panbench.protocols.atari:AtariCounterfactualProtocol")
PROTOCOLS.register("policy_eval", "panbench.protocols.policy_eval:PolicyEvalProtocol")
# tasks imported from recorded data: LeRobot, videos, episode folders (docs/recorded-data.md)
PROTOCOLS.register("recorded_rollout", "panbench.protocols.recorded:RecordedRolloutProtocol")
# WR-Arena tasks on imported images (docs/wr-arena.md)
PROTOCOLS.register("wr_stepwise", "panbench.protocols.wr_stepwise:WrStepwiseProtocol")
PROTOCOLS.register("wr_smoothness", "panbench.protocols.wr_smoothness:WrSmoothnessProtocol")
PROTOCOLS.register("wr_action_fidelity", "panbench.protocols.wr_fidelity:WrActionFidelityProtocol")
PROTOCOLS.register(
    "wr_structured_planning", "panbench.protocols.wr_planning:WrStructuredPlanningProtocol"
)

__all__ = ["PROTOCOLS", "ModelRunner", "Option", "Protocol", "Record"]
