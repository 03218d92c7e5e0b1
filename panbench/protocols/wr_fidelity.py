"""WR-Arena action simulation fidelity: each round of a three-round rollout scored by a judge.

From the sample's image the model carries out the sample's three language actions, one round
each. Every round's clip (its starting frame, then the model's frames) goes to the run's judge
(``--judge``) with the round's instruction (ending with a period, as upstream quotes it) and the
task's rubric (``options.rubric``; WR-Arena's 0-3 rubric on 8 uniformly sampled frames by
default). A sample scores the mean of its rounds, mapped from the rubric scale to [0, 1]; the
task's mean times 100 is WR-Arena's percentage (:func:`panbench.judges.fidelity_percent`).
``agent_fidelity`` and ``environment_fidelity`` are the same over the samples whose prompt list
commands the agent (upstream lists 1-3) or the environment (4-6).

Every number here depends on the judge: the results entry records its kind, model, endpoint and
the rubric's name, version and hash. With the human judge, a round not yet scored leaves its
episode unfinished (not written); the harness writes the judging sheet and a rerun with the
exported scores completes the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from panbench.data.episodes import Episode
from panbench.envs.base import Env
from panbench.errors import ConfigError
from panbench.protocols.base import ModelRunner, Record
from panbench.protocols.declare import Option
from panbench.protocols.wr_common import ImageProtocol, judge_provenance, rollout_clips

ROUNDS = 3


def task_rubric(task: Any) -> Any:
    """The task's rubric (``options.rubric``), else WR-Arena's fidelity rubric."""
    from panbench.judges import WR_FIDELITY_RUBRIC, Rubric

    given = task.options.get("rubric")
    if given is None:
        return WR_FIDELITY_RUBRIC
    try:
        return Rubric.from_dict(given)
    except ConfigError as err:
        raise ConfigError(f"Task {task.name!r}: options.rubric: {err}") from err


class WrActionFidelityProtocol(ImageProtocol):
    """Each round of a three-round rollout scored by the run's judge; needs ``--judge``."""

    name: ClassVar[str] = "wr_action_fidelity"
    metrics: ClassVar[tuple[str, ...]] = ("fidelity", "agent_fidelity", "environment_fidelity")
    options: ClassVar[tuple[Option, ...]] = (
        Option("rubric", dict, None, "name, version, text, scale, frames (default: WR-Arena's)"),
    )

    def __init__(self, task: Any, env: Env | None = None) -> None:
        super().__init__(task, env)
        self.rubric = task_rubric(task)

    def requires_judge(self) -> bool:
        return True

    def run_batch(self, runner: ModelRunner, batch: Sequence[Episode]) -> list[Record]:
        from panbench.judges import JudgementPending, wr_instruction

        if self.judge is None:
            raise ConfigError(f"Task {self.task.name!r} is scored by a judge; pass --judge.")
        episodes = self.images(batch)
        clips = rollout_clips(runner, episodes, ROUNDS, where=f"task {self.task.name!r}")
        lo, hi = self.rubric.scale
        records: list[Record] = []
        for e, episode_clips in zip(episodes, clips, strict=True):
            scores: list[float] = []
            raws: list[str] = []
            pending: list[str] = []
            for action, clip in zip(e.actions, episode_clips, strict=False):
                # Every round is asked even after one is pending, so a human sheet holds them all.
                try:
                    score = self.judge.judge(clip, wr_instruction(action.text), self.rubric)
                except JudgementPending as wait:
                    pending.append(wait.item_id)
                    continue
                scores.append(float(score.value))
                raws.append(score.raw)
            if pending:
                records.append(Record(metrics={}, pending=pending))
                continue
            value = (float(np.mean(scores)) - lo) / (hi - lo)
            group = e.sample.get("group", "agent")
            records.append(
                Record(
                    metrics={
                        "fidelity": value,
                        "agent_fidelity": value if group == "agent" else float("nan"),
                        "environment_fidelity": value if group == "environment" else float("nan"),
                    },
                    extra={
                        "sample_id": e.sample["id"],
                        "group": group,
                        "round_scores": scores,
                        "judge_replies": raws,
                    },
                    frames=np.concatenate([c[1:] for c in episode_clips]),
                )
            )
        return records

    def extra_results(self) -> dict[str, Any]:
        """The judge and rubric behind every number, and where the data came from."""
        out = super().extra_results()
        if self.judge is not None:
            out["judge"] = judge_provenance(self.judge, self.rubric)
        return out
