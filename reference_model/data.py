"""Training windows for the reference model, streamed from panbench envs or read from a folder.

A window is R+1 consecutive frames and the R actions between them. Env windows come from one env
or from several weighted streams (``data.streams``: the 2D envs, Atari, the 3D table, PushT);
each stream renders at its own resolution and its frames are resized to the model's, and Atari
windows carry the reward and terminal flag of every transition. Batch ``step`` of process
``rank`` is a pure function of (seed, step, rank), so the data position of a run is just its step
count: resuming continues the stream exactly, and DDP ranks see disjoint windows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from panbench.errors import ConfigError
from reference_model.common.training import batch_seed
from reference_model.config import DataConfig, StreamConfig
from reference_model.tokenizer import action_text

if TYPE_CHECKING:
    from panbench.envs.base import Action, Env

__all__ = ["WindowStream", "batch_seed"]


class WindowStream:
    """Batches of training windows.

    Args:
        data: the data section of the run config.
        resolution: frame side of the model; env frames are rendered at it, folder frames resized.
        window: frames per window (R + 1).
        seed: the run's seed.
        rank: this process's rank (DDP); ranks draw disjoint windows.
    """

    def __init__(
        self, data: DataConfig, resolution: int, window: int, seed: int, rank: int = 0
    ) -> None:
        self.data = data
        self.resolution = resolution
        self.window = window
        self.seed = seed
        self.rank = rank
        if data.source == "env":
            from panbench.envs import make

            self.streams = data.stream_configs()
            self.envs = []
            for stream in self.streams:
                kwargs = {k: v for k, v in stream.env_kwargs.items() if k != "resolution"}
                self.envs.append(
                    make(stream.env, resolution=stream.resolution or resolution, **kwargs)
                )
            weights = np.array([s.weight for s in self.streams], dtype=np.float64)
            self.cumulative = np.cumsum(weights / weights.sum())
            self.env = self.envs[0]
        else:
            from panbench.data import EpisodeDataset

            if not data.path:
                raise ConfigError("data.source 'folder' needs data.path.")
            self.dataset = EpisodeDataset(data.path)
            lengths = [e.num_frames for e in self.dataset.index.episodes]
            if max(lengths) < window:
                raise ConfigError(
                    f"Episodes in {data.path} have at most {max(lengths)} frames, but a training "
                    f"window needs {window} (history + 1, plus train.unroll)."
                )

    def batch(
        self, step: int, size: int, salt: int = 0, rank: int | None = None
    ) -> tuple[torch.Tensor, list[list[str]]]:
        """Batch ``step`` of this rank (or of ``rank``, for draws every rank must share).

        Returns:
            frames uint8 [size, R+1, H, W, 3] and, per window, the R action texts.
        """
        frames, texts, _ = self.windows(step, size, salt, rank)
        return frames, texts

    def windows(
        self, step: int, size: int, salt: int = 0, rank: int | None = None
    ) -> tuple[torch.Tensor, list[list[str]], torch.Tensor]:
        """:meth:`batch` with the outcome of every transition.

        Returns:
            frames uint8 [size, R+1, H, W, 3], the action texts, and float [size, R, 3]:
            (reward, terminal, known) per transition; ``known`` is 0 where the env has no
            rewards (everything but Atari) and for folder data.
        """
        who = self.rank if rank is None else rank
        rng = np.random.default_rng(batch_seed(self.seed, step, who, salt))
        if self.data.source == "env":
            rows = [self._env_window(rng) for _ in range(size)]
            frames = torch.from_numpy(np.stack([r[0] for r in rows]))
            outcomes = torch.from_numpy(np.stack([r[2] for r in rows]))
            return frames, [r[1] for r in rows], outcomes
        frames, texts = self._folder_batch(rng, size)
        return frames, texts, torch.zeros(size, self.window - 1, 3)

    def _env_window(self, rng: np.random.Generator) -> tuple[np.ndarray, list[str], np.ndarray]:
        """One window of a stream drawn by weight: frames at the model's side, texts, outcomes."""
        from panbench.data.episodes import draw_action
        from panbench.data.frames import resize_frames

        pick = 0
        if len(self.envs) > 1:  # one stream draws exactly what the single-env stream drew
            pick = min(
                int(np.searchsorted(self.cumulative, rng.random(), side="right")),
                len(self.envs) - 1,
            )
        env, stream = self.envs[pick], self.streams[pick]
        state = env.reset(int(rng.integers(2**31 - 1)))
        states, texts = [state], []
        outcomes = np.zeros((self.window - 1, 3), dtype=np.float32)
        for r in range(self.window - 1):
            action = self._draw(env, stream, state, rng)
            nxt = env.step(state, action)
            for _ in range(8 if self.data.effective_only and action.kind != "wait" else 0):
                if self._changed(env, state, nxt):
                    break
                action = draw_action(env, state, rng, stream.policy)
                nxt = env.step(state, action)
            state = nxt
            states.append(state)
            texts.append(action_text(action))
            outcome = env.outcome(state)
            if outcome is not None:
                outcomes[r] = (float(outcome[0]), float(outcome[1]), 1.0)
        frames = env.render_batch(states)
        if frames.shape[1] != self.resolution:
            frames = resize_frames(frames, self.resolution, mode="squash")
        return frames, texts, outcomes

    @staticmethod
    def _draw(env: Env, stream: StreamConfig, state: object, rng: np.random.Generator) -> Action:
        """The stream's policy, or (with probability ``wait_prob``) the env's wait action."""
        from panbench.data.episodes import draw_action

        if stream.wait_prob > 0 and rng.random() < stream.wait_prob:
            waits = [a for a in env.actions(state) if a.kind == "wait"]
            if waits:
                return waits[0]
        return draw_action(env, state, rng, stream.policy)

    @staticmethod
    def _changed(env: Env, state: object, nxt: object) -> bool:
        """Whether a transition changes the rendered frame."""
        a, b = env.render_batch([state, nxt])
        return not np.array_equal(a, b)

    def _folder_batch(
        self, rng: np.random.Generator, size: int
    ) -> tuple[torch.Tensor, list[list[str]]]:
        from panbench.data.frames import resize_frames

        eps = self.dataset.index.episodes
        usable = [i for i, e in enumerate(eps) if e.num_frames >= self.window]
        frames, texts = [], []
        for _ in range(size):
            item = self.dataset[usable[int(rng.integers(len(usable)))]]
            n = int(item["frames"].shape[0])
            start = int(rng.integers(n - self.window + 1))
            clip = np.asarray(item["frames"][start : start + self.window])
            frames.append(resize_frames(clip, self.resolution, mode="squash"))
            acts = item["actions"][start : start + self.window - 1]
            texts.append([str(a.get("text", "")) for a in acts])
        return torch.from_numpy(np.stack(frames)), texts
