"""Gradient-based planning: optimise action vectors by backpropagating an imagined cost.

For models that declare ``ModelSpec.differentiable`` (they implement
:meth:`~panbench.models.api.WorldModel.imagine_differentiable`), as DINO-WM's gradient-descent
planner: ``samples`` action sequences (the warm-started mean and Gaussian perturbations of it,
clipped into the env's box) are imagined with gradients; the cost, the mean squared error between
each sequence's last imagined frame and the goal image (both optionally Gaussian-blurred, pixels
in [0, 1]), is backpropagated to the vectors and Adam takes ``iterations`` steps on them. The
sequence with the lowest cost ever imagined is the plan; its first vector is executed and the
search restarts at the next step (receding horizon), warm-started from the plan shifted by one
block.

Image goals only: grounded scoring perceives frames with the env's perception, which has no
gradient. A model without gradients cannot be planned with here: the closed-loop protocol skips
the task for it, with the reason (see :mod:`panbench.protocols.closed_loop`). Each episode's
rollouts are its own model call (gradients do not batch across episodes here).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from panbench.envs.base import Env
from panbench.errors import ConfigError
from panbench.planning.base import Imagination, SearchResult, Situation, pick_best
from panbench.planning.continuous import VectorPlanner, positive_int
from panbench.planning.scoring import GoalScorer

__all__ = ["GradientPlanner"]


def _positive(name: str, value: Any, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (value >= 0 if allow_zero else value > 0):
        raise ConfigError(f"Expected {name} {'>= 0' if allow_zero else '> 0'}, but got {value!r}.")
    return float(value)


def _blur(images: Any, sigma: float) -> Any:
    """Gaussian blur (separable, edges replicated) of float tensors [N, H, W, 3]."""
    import torch

    if sigma <= 0:
        return images
    radius = max(1, round(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    out = images.permute(0, 3, 1, 2)  # [N, 3, H, W]
    channels = out.shape[1]
    pad = torch.nn.functional.pad
    out = pad(out, (radius, radius, 0, 0), mode="replicate")
    row = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    out = torch.nn.functional.conv2d(out, row, groups=channels)
    out = pad(out, (0, 0, radius, radius), mode="replicate")
    out = torch.nn.functional.conv2d(out, row.transpose(2, 3), groups=channels)
    return out.permute(0, 2, 3, 1)


class GradientPlanner(VectorPlanner):
    """Gradient descent on imagined image-goal cost (``gradient``).

    Args:
        env: the task's env; its ``action_space`` bounds the vectors.
        horizon: H, vectors per sequence.
        block: steps each vector is held.
        samples: S, sequences optimised together (the first starts at the warm-started mean,
            the others at Gaussian perturbations of it).
        iterations: Adam steps per planning step.
        lr: Adam's learning rate, as a fraction of the box's half-width.
        init_std: the perturbations' standard deviation, as a fraction of the half-width.
        blur: Gaussian blur (pixels) of imagined frames and goal image before comparing
            (a slope toward the goal for small objects; 0: none).
        warm_start: start from the previous plan shifted by one block.
    """

    name: ClassVar[str] = "gradient"
    #: the closed-loop protocol skips tasks with this planner for models without gradients
    needs_gradients: ClassVar[bool] = True

    def __init__(
        self,
        env: Env | None = None,
        horizon: int = 5,
        block: int = 1,
        samples: int = 4,
        iterations: int = 20,
        lr: float = 0.1,
        init_std: float = 0.5,
        blur: float = 0.0,
        warm_start: bool = True,
    ) -> None:
        super().__init__(env, horizon=horizon, block=block, warm_start=warm_start)
        self.samples = positive_int("samples", samples)
        self.iterations = positive_int("iterations", iterations)
        self.lr = _positive("lr", lr)
        self.init_std = _positive("init_std", init_std, allow_zero=True)
        self.blur = _positive("blur", blur, allow_zero=True)

    def search(
        self,
        situation: Situation,
        imagination: Imagination,
        scorer: GoalScorer,
        rng: np.random.Generator,
    ) -> SearchResult:
        import torch

        image = situation.goal.image
        if image is None:
            raise ConfigError(
                f"Planner {self.name!r} compares imagined frames with a goal image, but the "
                "goal has none; use scorer 'pixel' (or 'lpips') in the task."
            )
        goal = _blur(torch.from_numpy(np.asarray(image, np.float32) / 255.0)[None], self.blur)
        mean = self.initial_mean()
        noise = rng.standard_normal((self.samples - 1, self.horizon, self.space.dim))
        start = np.concatenate([mean[None], mean[None] + self.init_std * self._half * noise])
        low = torch.as_tensor(self._low, dtype=torch.float32)
        high = torch.as_tensor(self._high, dtype=torch.float32)
        # Adam's steps are about lr in parameter units: optimise in half-widths of the box.
        scale = torch.as_tensor(self._half, dtype=torch.float32)
        params = torch.tensor(
            np.clip(start, self._low, self._high) / self._half, dtype=torch.float32
        )
        params.requires_grad_(True)
        optimiser = torch.optim.Adam([params], lr=self.lr)
        seen, costs = [], []
        for step in range(self.iterations + 1):
            clipped = torch.maximum(torch.minimum(params * scale, high), low)
            actions = clipped.repeat_interleave(self.block, dim=1)
            frames = imagination.rollout_differentiable(actions)
            cost = ((_blur(frames[:, -1], self.blur) - goal) ** 2).mean(dim=(1, 2, 3))
            seen.append(clipped.detach().numpy().copy())
            costs.append(cost.detach().numpy().astype(np.float64))
            if step == self.iterations:
                break
            optimiser.zero_grad()
            cost.sum().backward()
            optimiser.step()
        steps = [np.zeros(len(c), np.int64) for c in costs]
        i, best, ties = pick_best(costs, steps, rng)
        chosen = np.concatenate(seen)[i]
        self._mean = chosen
        return self.to_sequences(chosen[None])[0], best, len(costs) * self.samples, ties
