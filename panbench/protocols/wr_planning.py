"""WR-Arena structured planning (Language Table), judge-free and in imagination only.

Each sample gives an initial image, a goal in words, an action budget and (from upstream's
``samples_vjepa2.json``) a goal image. Planning is greedy propose-simulate-select inside the
model: at every step the model imagines the outcome of each candidate action (``options.
candidates``, by default pushes of Language Table's eight blocks in four directions) from the
current imagined state; the candidate whose imagined frame is nearest the goal image (pixel MSE
at the task resolution) is kept if it brings the frame nearer than it was, else planning stops.
``goal_distance`` is the final imagined frame's mean squared distance to the goal image (pixels
scaled to [0, 1]); ``goal_progress`` is the fraction of the start's distance removed,
``(d_start - d_final) / d_start`` in [0, 1].

This is not upstream's number: WR-Arena proposes actions with a VLM, executes in the model and
has people judge success. No environment executes the plan here, so the score measures whether
the model's imagined futures move toward the goal image, and it rewards a model that renders the
goal's pixels even if the physics is wrong. ``options.scorer`` is ``goal-image``; a judge-based
scorer is not built yet (see docs/wr-arena.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from panbench.data.episodes import Episode
from panbench.data.sources.wr_arena import DEFAULT_CANDIDATES
from panbench.envs.base import Action, Env
from panbench.errors import ConfigError
from panbench.metrics.planning import goal_distance
from panbench.protocols.base import ModelRunner, Record
from panbench.protocols.declare import Option
from panbench.protocols.wr_common import ImageProtocol


class WrStructuredPlanningProtocol(ImageProtocol):
    """Greedy propose-simulate-select toward a goal image, inside the model (see ``options``)."""

    name: ClassVar[str] = "wr_structured_planning"
    metrics: ClassVar[tuple[str, ...]] = ("goal_progress", "goal_distance")
    options: ClassVar[tuple[Option, ...]] = (
        # only the judge-free goal-image scorer is built (see docs/wr-arena.md)
        Option("scorer", str, "goal-image", "how plans are scored", choices=("goal-image",)),
        Option("candidates", list, DEFAULT_CANDIDATES, "candidate action texts per step"),
    )

    def __init__(self, task: Any, env: Env | None = None) -> None:
        super().__init__(task, env)
        self.scorer: str = self.opts["scorer"]
        candidates = self.opts["candidates"]
        if not candidates or not all(isinstance(c, str) and c.strip() for c in candidates):
            raise ConfigError(
                f"Task {task.name!r}: expected options.candidates to be a non-empty list of "
                f"action texts, but got {candidates!r}."
            )
        self.candidates = [Action.text_only(c) for c in candidates]

    def run_batch(self, runner: ModelRunner, batch: Sequence[Episode]) -> list[Record]:
        # One episode at a time: each keeps its own branch, and adapter states of different
        # branches cannot be merged into one batch.
        return [self._plan(runner, e) for e in self.images(batch)]

    def _plan(self, runner: ModelRunner, episode: Any) -> Record:
        sample = episode.sample
        goal = episode.goal_frame
        if goal is None:
            nan = float("nan")
            return Record(
                metrics={"goal_progress": nan, "goal_distance": nan},
                extra={
                    "sample_id": sample["id"],
                    "note": "no goal image: not scored by the goal-image scorer",
                },
            )
        budget = int(sample["max_action"])
        state = runner.reset([episode])
        frame = episode.context_frames[-1]
        start = current = goal_distance(frame, goal)
        plan: list[str] = []
        distances = [start]
        frames = [frame]
        for step in range(budget):
            best: tuple[float, int, Any, np.ndarray] | None = None
            for i, action in enumerate(self.candidates):
                branch = runner.clone(state)
                where = f"candidate {i} at step {step} of task {self.task.name!r}"
                branch, imagined = runner.step(branch, [action], where=where)
                d = goal_distance(imagined[0], goal)
                if best is None or d < best[0]:  # first of equals wins: deterministic
                    best = (d, i, branch, imagined[0])
            assert best is not None
            if best[0] >= current:
                break  # no candidate brings the imagined scene nearer the goal
            current, index, state, frame = best
            plan.append(self.candidates[index].text)
            distances.append(current)
            frames.append(frame)
        progress = (start - current) / start if start > 0 else 1.0
        return Record(
            metrics={"goal_progress": float(progress), "goal_distance": float(current)},
            extra={
                "sample_id": sample["id"],
                "goal": sample["goal"],
                "budget": budget,
                "plan": plan,
                "distances": distances,
            },
            frames=np.stack(frames),
        )

    def extra_results(self) -> dict[str, Any]:
        return {
            **super().extra_results(),
            "scorer": self.scorer,
            "candidates": len(self.candidates),
        }
