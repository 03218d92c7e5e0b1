"""What the WR-Arena protocols share: episodes from an imported manifest, round clips, judging.

A WR-Arena task runs on a data source (``data:`` in its YAML), not an env: its episodes come from
:class:`~panbench.data.sources.wr_arena.WrArenaSource`. A multi-round rollout gives each round a clip:
the frame the round starts from (the context image, then the previous round's last frame)
followed by the k frames the model returns for the round's prompt, so even a model with one
frame per step yields a clip with one transition. That matches WR-Arena, whose image-to-video
models condition each round on the previous round's last frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from panbench.data.episodes import Episode
from panbench.data.sources.wr_arena import ImageEpisode
from panbench.envs.base import Env
from panbench.errors import ConfigError
from panbench.protocols.base import ModelRunner, Protocol

__all__ = ["ImageProtocol", "judge_provenance", "rollout_clips"]


def rollout_clips(
    runner: ModelRunner, episodes: Sequence[ImageEpisode], rounds: int, where: str
) -> list[list[np.ndarray]]:
    """Rolls the model out for ``rounds`` rounds under each episode's prompts.

    Episodes with the same number of prompts run as one batch; an episode with fewer prompts
    than ``rounds`` runs only as many rounds as it has prompts.

    Returns:
        Per episode, per round, the round's clip uint8 [1 + k, R, R, 3] at task resolution:
        the starting frame, then the model's k frames.
    """
    out: list[list[np.ndarray]] = [[] for _ in episodes]
    by_length: dict[int, list[int]] = {}
    for i, e in enumerate(episodes):
        by_length.setdefault(min(rounds, len(e.actions)), []).append(i)
    for length, members in sorted(by_length.items()):
        group = [episodes[i] for i in members]
        state = runner.reset(group)
        start = np.stack([e.context_frames[-1] for e in group])
        for t in range(length):
            actions = [e.actions[t] for e in group]
            state, clip = runner.step_clip(state, actions, where=f"round {t} of {where}")
            full = np.concatenate([start[:, None], clip], axis=1)
            for j, i in enumerate(members):
                out[i].append(full[j])
            start = clip[:, -1]
    return out


def judge_provenance(judge: Any, rubric: Any) -> dict[str, Any]:
    """The judge and rubric a judged task's results must record (no secrets)."""
    return {
        **dict(judge.provenance()),
        "rubric": {"name": rubric.name, "version": rubric.version, "hash": rubric.hash()},
    }


class ImageProtocol(Protocol):
    """A protocol on an imported WR-Arena task: episodes come from the task's manifest.

    Args:
        task: a task with a ``data`` spec.
        env: must be None (such tasks have no env).
    """

    sources: ClassVar[tuple[str, ...]] = ("wr-arena",)

    def __init__(self, task: Any, env: Env | None = None) -> None:
        if task.data is None or env is not None:
            raise ConfigError(
                f"Task {task.name!r}: protocol {self.name!r} runs on an imported data source "
                "(a 'data:' spec written by `panbench tasks import wr-arena`), not an env."
            )
        super().__init__(task, env)

    @staticmethod
    def images(episodes: Sequence[Episode]) -> list[ImageEpisode]:
        """The batch as image episodes (what :meth:`episode` made)."""
        out = [e for e in episodes if isinstance(e, ImageEpisode)]
        if len(out) != len(episodes):
            raise ConfigError("Expected episodes built from a WR-Arena manifest.")
        return out

    def extra_results(self) -> dict[str, Any]:
        """Where the episodes came from (root, manifest, upstream file, counts)."""
        return {"data": self.source.provenance()}
