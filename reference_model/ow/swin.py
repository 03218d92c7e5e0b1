"""Causal Swin-DPM schedules: flow-matching sigmas, the sliding-window table and training draws.

Pure bookkeeping, no networks: :mod:`reference_model.ow.decoder` runs the transformer along the
schedules built here, and the tests check them against hand-written tables.

Flow matching as in Wan: a clean latent ``x0`` and Gaussian noise ``eps`` are mixed as
``x = (1 - sigma) * x0 + sigma * eps`` and the network predicts the velocity ``eps - x0``; the
transformer's timestep is ``1000 * sigma``. Sampling walks ``sigma`` from 1 to 0 through
``steps`` Euler steps ``x <- x + (sigma_next - sigma) * v``. The sigmas are the uniform grid
``tau_i = 1 - i / steps`` bent by Wan's shift, ``sigma = shift * tau / (1 + (shift - 1) * tau)``.

Causal Swin-DPM (PAN, arXiv 2511.09057): a window holds one conditioning frame and two chunk
slots. The *later* slot walks the first half of the schedule (``tau`` from 1 to 1/2) while the
*earlier* slot walks the second half (``tau`` from 1/2 to 0), step for step, so the earlier
chunk is always half a schedule (in ``tau``) less noisy. After ``steps / 2`` window steps (one
*phase*) the earlier chunk is clean and leaves, the later chunk becomes the earlier one and a
fresh noise chunk enters the later slot. Phase ``p`` (``p = 0 .. K`` for ``K`` chunks) holds
chunk ``p`` in the earlier slot (none in phase 0) and chunk ``p + 1`` in the later slot (none in
phase ``K``); its conditioning frame is the last clean latent frame before the window: the
context latent for ``p <= 1``, else the last frame of chunk ``p - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from panbench.errors import ConfigError

__all__ = [
    "NUM_TRAIN_TIMESTEPS",
    "Phase",
    "chunk_schedule",
    "draw_swin_taus",
    "flow_sigmas",
    "shift_sigma",
    "swin_schedule",
]

NUM_TRAIN_TIMESTEPS = 1000
"""Wan's timestep scale: the transformer is fed ``1000 * sigma``."""


def shift_sigma(tau: torch.Tensor | float, shift: float) -> torch.Tensor | float:
    """Wan's sigma shift ``shift * tau / (1 + (shift - 1) * tau)`` (``shift = 1``: identity).

    Args:
        tau: flow time(s) in [0, 1], a float or a tensor of any shape.
        shift: the shift (Wan2.1 uses 3.0 at 480p, 5.0 at 720p); must be positive.

    Returns:
        The shifted sigma(s), same type and shape as ``tau``.
    """
    if shift <= 0:
        raise ConfigError(f"expected a positive flow shift, but got {shift!r}.")
    return shift * tau / (1 + (shift - 1) * tau)


def flow_sigmas(steps: int, shift: float) -> list[float]:
    """The sampling sigmas ``sigma_0 = 1 > ... > sigma_steps = 0`` (``steps + 1`` floats)."""
    if steps < 1:
        raise ConfigError(f"expected at least one sampling step, but got {steps!r}.")
    return [float(shift_sigma(1.0 - i / steps, shift)) for i in range(steps + 1)]


@dataclass(frozen=True)
class Phase:
    """One phase of a window rollout: ``steps / 2`` window steps (Swin) or ``steps`` (chunk mode).

    Attributes:
        cond_source: where the conditioning frame comes from: 0 for the context latent, ``j`` for
            the last latent frame of (clean) chunk ``j`` (chunks count from 1).
        earlier: the chunk in the earlier slot, or None (phase 0, and chunk mode).
        later: the chunk in the later slot, or None (the last phase). In chunk mode the one slot.
        earlier_sigmas: ``(sigma_from, sigma_to)`` of the earlier slot at each window step.
        later_sigmas: ``(sigma_from, sigma_to)`` of the later slot at each window step.
    """

    cond_source: int
    earlier: int | None
    later: int | None
    earlier_sigmas: tuple[tuple[float, float], ...]
    later_sigmas: tuple[tuple[float, float], ...]


def _check_steps_even(steps: int) -> None:
    if steps < 2 or steps % 2:
        raise ConfigError(
            f"Causal Swin-DPM needs an even number of sampling steps (>= 2), so that a chunk "
            f"spends exactly half of them in each slot, but got {steps!r}."
        )


def swin_schedule(num_chunks: int, steps: int, shift: float) -> list[Phase]:
    """The Causal Swin-DPM window table for ``num_chunks`` chunks (``num_chunks + 1`` phases).

    Args:
        num_chunks: K >= 1.
        steps: denoising steps per chunk (even); each phase has ``steps // 2`` window steps.
        shift: Wan's sigma shift.

    Returns:
        Phases 0 .. K; see the module docstring for what each holds.
    """
    if num_chunks < 1:
        raise ConfigError(f"expected at least one chunk, but got {num_chunks!r}.")
    _check_steps_even(steps)
    sig = flow_sigmas(steps, shift)
    half = steps // 2
    later = tuple((sig[j], sig[j + 1]) for j in range(half))
    earlier = tuple((sig[half + j], sig[half + j + 1]) for j in range(half))
    phases = []
    for p in range(num_chunks + 1):
        phases.append(
            Phase(
                cond_source=max(p - 1, 0),
                earlier=p if p >= 1 else None,
                later=p + 1 if p + 1 <= num_chunks else None,
                earlier_sigmas=earlier if p >= 1 else (),
                later_sigmas=later if p + 1 <= num_chunks else (),
            )
        )
    return phases


def chunk_schedule(num_chunks: int, steps: int, shift: float) -> list[Phase]:
    """Plain chunk-by-chunk sampling: chunk k alone after its conditioning frame, all steps.

    Args:
        num_chunks: K >= 1.
        steps: denoising steps per chunk.
        shift: Wan's sigma shift.

    Returns:
        K phases; phase ``k - 1`` holds chunk k in the ``later`` field (the one slot), with the
        last frame of chunk ``k - 1`` (or the context latent) as conditioning frame.
    """
    if num_chunks < 1:
        raise ConfigError(f"expected at least one chunk, but got {num_chunks!r}.")
    sig = flow_sigmas(steps, shift)
    walk = tuple((sig[j], sig[j + 1]) for j in range(steps))
    return [
        Phase(cond_source=k - 1, earlier=None, later=k, earlier_sigmas=(), later_sigmas=walk)
        for k in range(1, num_chunks + 1)
    ]


def draw_swin_taus(
    n: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training flow times for ``n`` windows, drawn per chunk as the Swin window holds them.

    The later chunk's flow time is uniform on (1/2, 1] and the earlier chunk's is half a
    schedule behind it, ``tau_earlier = tau_later - 1/2`` on (0, 1/2]: exactly the pairs the
    window meets during sampling (at any window step the earlier chunk is ``steps / 2`` grid
    steps ahead), drawn continuously. Apply :func:`shift_sigma` for the sigmas.

    Args:
        n: number of windows.
        generator: the random source (CPU).

    Returns:
        ``(tau_earlier, tau_later)``, float32 [n] each.
    """
    u = torch.rand(n, generator=generator)
    tau_later = 1.0 - 0.5 * u  # (1/2, 1]
    return tau_later - 0.5, tau_later
