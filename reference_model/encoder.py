"""Encoder h: frames to normalised latents with a diffusers ``AutoencoderKL`` (first-stage model)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reference_model.config import EncoderConfig

__all__ = ["Encoder", "frames_to_tensor", "tensor_to_frames"]


def frames_to_tensor(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W, 3] frames to float32 [..., 3, H, W] in [-1, 1]."""
    x = frames.to(torch.float32).movedim(-1, -3)
    return x / 127.5 - 1.0


def tensor_to_frames(x: torch.Tensor) -> torch.Tensor:
    """float [..., 3, H, W] in [-1, 1] to uint8 [..., H, W, 3] (rounded, clamped)."""
    y = ((x.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return y.movedim(-3, -1)


#: colour distance (summed over channels, in [-1, 1] units) from a frame's median colour above
#: which a pixel counts as part of an object (:func:`object_mask`)
OBJECT_DISTANCE = 0.3


def object_mask(x: torch.Tensor) -> torch.Tensor:
    """Object pixels of images: bool [N, 1, H, W], those whose colour is more than
    :data:`OBJECT_DISTANCE` (summed over the channels) from their image's median colour, its
    background. ``x``: float [N, 3, H, W] in [-1, 1]."""
    median = x.flatten(2).median(dim=2).values[:, :, None, None]
    return (x - median).abs().sum(dim=1, keepdim=True) > OBJECT_DISTANCE


class Encoder(nn.Module):
    """``AutoencoderKL`` plus per-channel latent statistics measured after first-stage training.

    Latents are the posterior mode, normalised to zero mean and unit variance per channel, so the
    diffusion decoder and the latent objective see well-scaled targets.

    Args:
        config: the encoder section of the model config.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        from diffusers import AutoencoderKL

        self.config = config
        n = len(config.block_out_channels)
        self.vae: Any = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * n,
            up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=tuple(config.block_out_channels),
            layers_per_block=config.layers_per_block,
            latent_channels=config.latent_channels,
            norm_num_groups=config.norm_num_groups,
            mid_block_add_attention=config.mid_attention,
        )
        c = config.latent_channels
        self.latent_mean: torch.Tensor
        self.latent_std: torch.Tensor
        self.register_buffer("latent_mean", torch.zeros(c))
        self.register_buffer("latent_std", torch.ones(c))

    def _norm(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised latents of images.

        Args:
            x: float [N, 3, H, W] in [-1, 1].

        Returns:
            float [N, C, H/s, W/s] (s = 2 ** (levels - 1)).
        """
        return self._norm(self.vae.encode(x).latent_dist.mode())

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images from normalised latents: float [N, C, h, w] to float [N, 3, H, W] in ~[-1, 1]."""
        raw = z * self.latent_std[:, None, None] + self.latent_mean[:, None, None]
        return self.vae.decode(raw).sample

    def reconstruction_loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None, object_weight: float = 0.0
    ) -> dict[str, torch.Tensor]:
        """First-stage loss: L1 + MSE reconstruction from the posterior mode, plus weighted KL.

        Reconstructing from the mode (the latent h hands to f and g) rather than a posterior
        sample: at initialisation the posterior std is ~1, and with the small KL weight a small
        autoencoder spends most of a short CPU budget learning to shrink it.

        Args:
            x: float [N, 3, H, W] in [-1, 1].
            generator: unused (kept so both stages share one signature).
            object_weight: extra weight of object pixels (:func:`object_mask`: away from the
                frame's background colour). A maze's agent or a table's cube covers a few pixels
                of a frame; under a plain mean they weigh too little to be drawn. 0: plain
                mean (the loss every shipped h trained with first).

        Returns:
            ``{"loss", "recon", "kl"}`` scalar tensors.
        """
        post = self.vae.encode(x).latent_dist
        y = self.vae.decode(post.mode()).sample
        if object_weight:
            err = (y - x).abs() + (y - x) ** 2
            weight = 1.0 + object_weight * object_mask(x).to(err.dtype)
            recon = (err * weight).mean() / weight.mean()
        else:
            recon = (y - x).abs().mean() + ((y - x) ** 2).mean()
        kl = post.kl().mean() / x[0].numel()
        return {"loss": recon + self.config.kl_weight * kl, "recon": recon, "kl": kl}

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        """Sets the latent statistics from images ``x`` (float [N, 3, H, W] in [-1, 1])."""
        z = self.vae.encode(x).latent_dist.mode()
        self.latent_mean.copy_(z.mean(dim=(0, 2, 3)))
        self.latent_std.copy_(z.std(dim=(0, 2, 3)).clamp_min(1e-4))
