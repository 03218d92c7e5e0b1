"""The one frame resize of panbench: uint8 RGB frames to a given size, by an explicit mode.

Every mode ends in the same resampling: ``torch.nn.functional.interpolate(mode="bilinear",
antialias=True, align_corners=False)`` in float32, rounded and clamped to uint8. The modes differ
only in how a frame becomes the target's shape first:

- ``"squash"``: no cropping or padding; the aspect ratio is not kept.
- ``"center-crop"``: the largest centred square, then the resize.
- ``"pad"``: letterbox: the frame centred on a black square of its longer side, then the resize.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from panbench.errors import ConfigError

__all__ = ["RESIZE_MODES", "ResizeMode", "resize_frames"]

ResizeMode = Literal["squash", "center-crop", "pad"]
RESIZE_MODES: tuple[str, ...] = ("squash", "center-crop", "pad")
"""The modes :func:`resize_frames` knows."""


def resize_frames(
    frames: np.ndarray, size: int | tuple[int, int], *, mode: ResizeMode
) -> np.ndarray:
    """Resizes uint8 frames [..., H, W, 3] to [..., h, w, 3] (antialiased bilinear).

    Args:
        frames: uint8 [..., H, W, 3]; any leading dimensions (none, T, or B and T).
        size: the output side ``s`` (square ``s x s``) or, for ``"squash"`` only, ``(h, w)``.
        mode: ``"squash"``, ``"center-crop"`` or ``"pad"`` (see the module docstring).

    Returns:
        uint8 [..., h, w, 3], C-contiguous. Frames already of the output shape come back
        unresized (for ``"squash"`` the input array itself).

    Raises:
        ConfigError: an unknown mode, or a non-square size for a mode that makes squares.

    Example:
        >>> frames = np.zeros((2, 48, 64, 3), dtype=np.uint8)
        >>> resize_frames(frames, 32, mode="center-crop").shape
        (2, 32, 32, 3)
    """
    if mode == "squash":
        height, width = (size, size) if isinstance(size, int) else size
        return _interpolate(frames, height, width)
    if not isinstance(size, int):
        raise ConfigError(
            f"Expected an int size for resize mode {mode!r} (it makes squares), but got {size!r}."
        )
    if mode == "center-crop":
        return np.ascontiguousarray(_interpolate(_center_square(frames), size, size))
    if mode == "pad":
        return np.ascontiguousarray(_interpolate(_letterbox(frames), size, size))
    raise ConfigError(f"Expected a resize mode in {', '.join(RESIZE_MODES)}, but got {mode!r}.")


def _center_square(frames: np.ndarray) -> np.ndarray:
    """The largest centred square of each frame (a view)."""
    height, width = frames.shape[-3:-1]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return frames[..., top : top + side, left : left + side, :]


def _letterbox(frames: np.ndarray) -> np.ndarray:
    """Each frame centred on a black square of its longer side (the input when square)."""
    height, width = frames.shape[-3:-1]
    side = max(height, width)
    if height == width:
        return frames
    out = np.zeros((*frames.shape[:-3], side, side, frames.shape[-1]), dtype=frames.dtype)
    top, left = (side - height) // 2, (side - width) // 2
    out[..., top : top + height, left : left + width, :] = frames
    return out


def _interpolate(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased bilinear resize of uint8 [..., H, W, 3] to [..., height, width, 3]."""
    if frames.shape[-3] == height and frames.shape[-2] == width:
        return frames
    # torch is imported here so that reading and writing data never pays for it.
    import torch
    import torch.nn.functional as F

    lead = frames.shape[:-3]
    x = torch.from_numpy(np.ascontiguousarray(frames)).reshape(-1, *frames.shape[-3:])
    x = x.permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    out: np.ndarray = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return np.ascontiguousarray(out.reshape(*lead, height, width, frames.shape[-1]))
