"""Training windows for the reference model, streamed from a panbench env or read from a folder.

A window is R+1 consecutive frames and the R actions between them. Batch ``step`` of process
``rank`` is a pure function of (seed, step, rank), so the data position of a run is just its step
count: resuming continues the stream exactly, and DDP ranks see disjoint windows.
"""

from __future__ import annotations

import numpy as np
import torch

from panbench.errors import ConfigError
from reference_model.common.training import batch_seed
from reference_model.config import DataConfig

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

            kwargs = {k: v for k, v in data.env_kwargs.items() if k != "resolution"}
            self.env = make(data.env, resolution=resolution, **kwargs)
        else:
            from panbench.data import EpisodeDataset

            if not data.path:
                raise ConfigError("data.source 'folder' needs data.path.")
            self.dataset = EpisodeDataset(data.path)
            lengths = [e.num_frames for e in self.dataset.index.episodes]
            if max(lengths) < window:
                raise ConfigError(
                    f"Episodes in {data.path} have at most {max(lengths)} frames, but a training "
                    f"window needs {window} (history + 1)."
                )

    def batch(
        self, step: int, size: int, salt: int = 0, rank: int | None = None
    ) -> tuple[torch.Tensor, list[list[str]]]:
        """Batch ``step`` of this rank (or of ``rank``, for draws every rank must share).

        Returns:
            frames uint8 [size, R+1, H, W, 3] and, per window, the R action texts.
        """
        who = self.rank if rank is None else rank
        rng = np.random.default_rng(batch_seed(self.seed, step, who, salt))
        if self.data.source == "env":
            return self._env_batch(rng, size)
        return self._folder_batch(rng, size)

    def _env_batch(
        self, rng: np.random.Generator, size: int
    ) -> tuple[torch.Tensor, list[list[str]]]:
        from panbench.data.episodes import draw_action

        frames, texts = [], []
        for _ in range(size):
            state = self.env.reset(int(rng.integers(2**31 - 1)))
            states, actions = [state], []
            for _ in range(self.window - 1):
                action = draw_action(self.env, state, rng, self.data.policy)
                nxt = self.env.step(state, action)
                for _ in range(8 if self.data.effective_only else 0):
                    if self._changed(state, nxt):
                        break
                    action = draw_action(self.env, state, rng, self.data.policy)
                    nxt = self.env.step(state, action)
                state = nxt
                states.append(state)
                actions.append(action.text)
            frames.append(self.env.render_batch(states))
            texts.append(actions)
        return torch.from_numpy(np.stack(frames)), texts

    def _changed(self, state: object, nxt: object) -> bool:
        """Whether a transition changes the rendered frame."""
        a, b = self.env.render_batch([state, nxt])
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
