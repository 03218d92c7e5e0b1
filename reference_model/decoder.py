"""Decoder g: a diffusers conditional UNet that denoises the next latent.

Conditioning, as in PAN: the predicted state tokens enter through cross-attention after a
zero-initialised projection (so g starts as an unconditional denoiser and learns to read the
state stream), and the previous frame's latent, noise-augmented, is concatenated to the input.
Training uses a ``DDPMScheduler``; sampling uses DDIM with the same betas and optional
classifier-free guidance (state tokens dropped to zero in training with ``cond_dropout``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from reference_model.config import DecoderConfig

__all__ = ["Decoder", "randn_rows"]


def randn_rows(
    shape: Sequence[int], generators: Sequence[torch.Generator], device: torch.device
) -> torch.Tensor:
    """Standard normal noise, row i drawn from ``generators[i]`` (batch-size independent).

    Returns:
        float32 [len(generators), *shape] on ``device``.
    """
    rows = [torch.randn(tuple(shape), generator=g, device=g.device) for g in generators]
    return torch.stack(rows).to(device)


class Decoder(nn.Module):
    """``UNet2DConditionModel`` over [2C, h, w] (noisy latent | previous latent) inputs.

    Args:
        config: the decoder section of the model config.
        latent_channels: C.
        latent_resolution: h = w.
        state_dim: width D of the backbone's state tokens.
    """

    def __init__(
        self, config: DecoderConfig, latent_channels: int, latent_resolution: int, state_dim: int
    ) -> None:
        super().__init__()
        from diffusers import UNet2DConditionModel

        self.config = config
        levels = config.attention_levels or [True] * len(config.block_out_channels)
        down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in levels)
        up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(levels))
        self.unet: Any = UNet2DConditionModel(
            sample_size=latent_resolution,
            in_channels=2 * latent_channels,
            out_channels=latent_channels,
            down_block_types=down,
            up_block_types=up,
            block_out_channels=tuple(config.block_out_channels),
            layers_per_block=config.layers_per_block,
            cross_attention_dim=config.cross_attention_dim,
            attention_head_dim=config.attention_head_dim,
            norm_num_groups=8,
        )
        self.state_proj = nn.Linear(state_dim, config.cross_attention_dim)
        nn.init.zeros_(self.state_proj.weight)  # PAN adds its state stream from zero
        nn.init.zeros_(self.state_proj.bias)
        self.scheduler = self._ddpm()
        #: DDIM timestep spacing of :meth:`sample` (an inference setting, not saved): None is
        #: diffusers' "leading" (the checkpoints' own); "trailing" starts from the last training
        #: timestep, which few-step sampling needs (one "leading" step denoises pure noise at t=0)
        self.spacing: str | None = None

    def _scheduler_kwargs(self) -> dict[str, Any]:
        c = self.config
        return {
            "num_train_timesteps": c.num_train_timesteps,
            "beta_schedule": c.beta_schedule,
            "prediction_type": c.prediction_type,
            "clip_sample": False,
        }

    def _ddpm(self) -> Any:
        from diffusers import DDPMScheduler

        return DDPMScheduler(**self._scheduler_kwargs())

    def _ddim(self) -> Any:
        from diffusers import DDIMScheduler

        spacing = {"timestep_spacing": self.spacing} if self.spacing else {}
        return DDIMScheduler(**self._scheduler_kwargs(), set_alpha_to_one=True, **spacing)

    def denoise(
        self, noisy: torch.Tensor, prev: torch.Tensor, t: torch.Tensor, states: torch.Tensor
    ) -> torch.Tensor:
        """One UNet evaluation: noisy [M,C,h,w], prev [M,C,h,w], t int [M], states [M,N,D]."""
        cond = self.state_proj(states)
        x = torch.cat([noisy, prev], dim=1)
        return self.unet(x, t, encoder_hidden_states=cond).sample

    def loss(
        self,
        target: torch.Tensor,
        prev: torch.Tensor,
        states: torch.Tensor,
        generator: torch.Generator | None,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Diffusion loss on the next latent.

        Args:
            target: float [M, C, h, w] normalised latent of the next frame.
            prev: float [M, C, h, w] latent of the previous frame (augmented here).
            states: float [M, N, D] backbone states (dropped with ``cond_dropout``).
            generator: source of every random draw (timesteps, noise, dropout).
            weight: optional float [M, 1, h, w] per-cell weights (see ``change_weight``); the
                loss is normalised by their mean.

        Returns:
            scalar (weighted) MSE between the UNet output and its target (x0, epsilon or v).
        """
        m = target.shape[0]
        dev = target.device
        c = self.config
        t = torch.randint(0, c.num_train_timesteps, (m,), generator=generator).to(dev)
        noise = torch.randn(target.shape, generator=generator).to(dev)
        aug = torch.randn(prev.shape, generator=generator).to(dev)
        keep = (torch.rand(m, generator=generator) >= c.cond_dropout).to(dev)
        states = states * keep[:, None, None].to(states.dtype)
        noisy = self.scheduler.add_noise(target, noise, t)
        out = self.denoise(noisy, prev + c.noise_aug * aug, t, states)
        if c.prediction_type == "sample":
            goal = target
        elif c.prediction_type == "epsilon":
            goal = noise
        else:
            goal = self.scheduler.get_velocity(target, noise, t)
        err = (out.float() - goal) ** 2
        if weight is None:
            return err.mean()
        return (err * weight).mean() / weight.mean()

    @torch.no_grad()
    def sample(
        self,
        prev: torch.Tensor,
        states: torch.Tensor,
        generators: Sequence[torch.Generator],
        steps: int | None = None,
        guidance: float | None = None,
    ) -> torch.Tensor:
        """Samples next latents with DDIM (eta 0), noise drawn per row from ``generators``.

        Args:
            prev: float [M, C, h, w] previous latents.
            states: float [M, N, D] backbone states.
            generators: M generators (one per rollout).
            steps: DDIM steps (default: config ``sample_steps``).
            guidance: classifier-free guidance scale (default: config ``guidance``; 1 = off).

        Returns:
            float [M, C, h, w] sampled latents.
        """
        steps = int(steps or self.config.sample_steps)
        w = float(self.config.guidance if guidance is None else guidance)
        dev = prev.device
        x = randn_rows(prev.shape[1:], generators, dev)
        aug = randn_rows(prev.shape[1:], generators, dev)
        prev = prev + self.config.noise_aug * aug
        sched = self._ddim()
        sched.set_timesteps(steps)
        for t in sched.timesteps:
            tt = torch.full((x.shape[0],), int(t), device=dev, dtype=torch.long)
            out = self.denoise(x, prev, tt, states)
            if w != 1.0:
                uncond = self.denoise(x, prev, tt, torch.zeros_like(states))
                out = uncond + w * (out - uncond)
            x = sched.step(out, t, x).prev_sample
        return x
