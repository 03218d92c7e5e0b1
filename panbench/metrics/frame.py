"""Per-frame fidelity of predicted video: PSNR and SSIM, per step, built on torchmetrics.

Conventions (see docs/metrics.md for the comparison with common_metrics_on_video_quality):

- Input layout is panbench's frame layout, channels last: ``[B, T, H, W, C]`` with C = 3 (or 1),
  either uint8 in [0, 255] or floating point in [0, 1]. uint8 is divided by 255; every value is
  then computed in float64 on [0, 1] with ``data_range=1.0`` passed explicitly (torchmetrics would
  otherwise infer the range from each batch, which makes values depend on batch composition).
- Every frame is scored on its own; ``psnr_video``/``ssim_video`` return ``[B, T]`` and the
  metric classes average those frame values (never a pooled MSE).
- PSNR is ``10 log10(1 / MSE)`` with the MSE over all pixels and channels of one frame, capped at
  ``max_db`` (100 dB by default), so identical frames give 100 instead of inf. For data range 1
  this is the rule ``MSE < 1e-10 -> 100`` of common_metrics_on_video_quality.
- SSIM uses Wang et al.'s constants: gaussian window of size 11 and sigma 1.5, K1 = 0.01,
  K2 = 0.03, computed per channel; the SSIM map is averaged over its *valid* region (pixels at
  least 5 px from the border) and over channels, as the original MATLAB code, scikit-image and
  common_metrics_on_video_quality do (torchmetrics >= 1.5 keeps the reflect-padded border, so
  its reduction differs). The map is computed here with a separable valid convolution; the
  tests check it against torchmetrics' full map cropped to the valid region, scikit-image and a
  plain NumPy implementation.
- Frames of one episode are computed together and episodes one at a time, so an episode's values
  do not depend on the batch it came in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio

from panbench.errors import ConfigError, ContractError
from panbench.metrics.drift import PerStepMetric

#: PSNR cap in dB for (near-)identical frames; equals common_metrics_on_video_quality's value
DEFAULT_MAX_DB = 100.0
#: SSIM gaussian window: size 11, sigma 1.5 (Wang et al. 2004)
SSIM_KERNEL_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_SSIM_CROP = (SSIM_KERNEL_SIZE - 1) // 2


def _to_video(x: Any, name: str) -> torch.Tensor:
    """Validates one video batch and returns it as float64 [B, T, C, H, W] on [0, 1]."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise ContractError(
            f"Expected {name} to be a numpy array or torch tensor, but got {type(x).__name__}."
        )
    if x.ndim != 5 or x.shape[-1] not in (1, 3):
        raise ContractError(
            f"Expected {name} of shape [B, T, H, W, C] with C in (1, 3) (channels last), but got "
            f"shape {tuple(x.shape)}."
        )
    if x.dtype == torch.uint8:
        out = x.to(torch.float64) / 255.0
    elif x.is_floating_point():
        out = x.detach().to(torch.float64)
        if out.numel():
            finite = torch.isfinite(out).all()
            lo, hi = float(out.min()), float(out.max())
            if not finite or lo < 0.0 or hi > 1.0:
                raise ContractError(
                    f"Expected floating-point {name} in [0, 1], but got values in "
                    f"[{lo:.4g}, {hi:.4g}]{'' if finite else ' with NaN/inf'}; pass uint8 frames "
                    "in [0, 255] or scale floats to [0, 1]."
                )
    else:
        raise ContractError(
            f"Expected {name} to be uint8 in [0, 255] or floating point in [0, 1], but got "
            f"dtype {x.dtype}."
        )
    return out.permute(0, 1, 4, 2, 3)


def _check_pair(preds: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p = _to_video(preds, "preds")
    t = _to_video(target, "target")
    if p.shape != t.shape:
        # report in the caller's layout [B, T, H, W, C]
        shape_p = tuple(p.permute(0, 1, 3, 4, 2).shape)
        shape_t = tuple(t.permute(0, 1, 3, 4, 2).shape)
        raise ContractError(
            f"Expected preds and target to have the same shape, but got {shape_p} and {shape_t}."
        )
    return p, t


def _psnr_update(preds: torch.Tensor, target: torch.Tensor, max_db: float | None) -> torch.Tensor:
    """Per-frame PSNR [B, T] from float64 [B, T, C, H, W] videos on [0, 1]."""
    b, t = preds.shape[:2]
    out = preds.new_empty((b, t))
    for i in range(b):
        out[i] = peak_signal_noise_ratio(
            preds[i], target[i], data_range=1.0, reduction="none", dim=(1, 2, 3)
        )
    if max_db is not None:
        out = out.clamp(max=max_db)
    return out


def _gaussian_1d() -> torch.Tensor:
    """The normalised 1-D gaussian of the SSIM window (float64); the 2-D window is its outer product."""
    half = (SSIM_KERNEL_SIZE - 1) / 2
    dist = torch.arange(-half, half + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (dist / SSIM_SIGMA) ** 2)
    return g / g.sum()


def _ssim_frames(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM per frame [N] of float64 [N, C, H, W] frames on [0, 1], over the valid region.

    The gaussian window is separable, so the five local moments are two 1-D valid convolutions
    (a column pass, then a row pass) instead of one 11x11 convolution of a reflect-padded image
    whose border is then cropped: the same numbers (to float64 rounding) for ~9x less work.
    """
    n, c, h, w = x.shape
    g = _gaussian_1d()
    stack = torch.stack((x, y, x * x, y * y, x * y), dim=1).reshape(n * 5 * c, 1, h, w)
    moments = torch.nn.functional.conv2d(stack, g.view(1, 1, -1, 1))
    moments = torch.nn.functional.conv2d(moments, g.view(1, 1, 1, -1))
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.reshape(n, 5, c, *moments.shape[-2:]).unbind(1)
    c1 = SSIM_K1**2
    c2 = SSIM_K2**2
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return (num / den).reshape(n, -1).mean(-1)


def _ssim_update(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame SSIM [B, T] (valid region, mean over channels) from float64 [B,T,C,H,W]."""
    b, t, _, h, w = preds.shape
    if min(h, w) < SSIM_KERNEL_SIZE:
        raise ContractError(
            f"Expected frames of at least {SSIM_KERNEL_SIZE}x{SSIM_KERNEL_SIZE} pixels for SSIM, "
            f"but got {h}x{w}."
        )
    out = preds.new_empty((b, t))
    for i in range(b):
        out[i] = _ssim_frames(preds[i], target[i])
    return out


def _check_max_db(max_db: float | None) -> float | None:
    if max_db is not None and not max_db > 0:
        raise ConfigError(f"Expected max_db to be a positive number or None, but got {max_db!r}.")
    return None if max_db is None else float(max_db)


def psnr_video(preds: Any, target: Any, *, max_db: float | None = DEFAULT_MAX_DB) -> torch.Tensor:
    """Per-frame peak signal-to-noise ratio of predicted against true video.

    Args:
        preds: predicted frames [B, T, H, W, C] (C = 3 or 1), uint8 in [0, 255] or float in
            [0, 1], numpy or torch.
        target: true frames, same shape (dtypes may differ: uint8 and float are both mapped to
            [0, 1]).
        max_db: cap in dB (identical frames would otherwise give inf); ``None`` keeps inf.

    Returns:
        float64 tensor [B, T]: PSNR in dB of each frame.

    Raises:
        ContractError: wrong rank, layout, dtype, value range, or mismatched shapes.

    Example:
        >>> target = np.zeros((1, 2, 16, 16, 3), dtype=np.uint8)
        >>> preds = target.copy()
        >>> preds[0, 1] = 255
        >>> psnr_video(preds, target).tolist()
        [[100.0, 0.0]]
    """
    p, t = _check_pair(preds, target)
    return _psnr_update(p, t, _check_max_db(max_db))


def ssim_video(preds: Any, target: Any) -> torch.Tensor:
    """Per-frame structural similarity of predicted against true video.

    Gaussian window 11 / sigma 1.5, K1 = 0.01, K2 = 0.03 on [0, 1] data; each channel's SSIM map is
    averaged over the valid region (5 px from every border) and the channels are averaged.

    Args:
        preds: predicted frames [B, T, H, W, C] (C = 3 or 1, H and W >= 11), uint8 in [0, 255]
            or float in [0, 1], numpy or torch.
        target: true frames, same shape.

    Returns:
        float64 tensor [B, T]: SSIM of each frame, in [-1, 1] (1 for identical frames).

    Raises:
        ContractError: wrong rank, layout, dtype, value range, mismatched shapes or frames
            smaller than the window.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> target = rng.integers(0, 256, (1, 2, 32, 32, 3), dtype=np.uint8)
        >>> ssim_video(target, target).tolist()
        [[1.0, 1.0]]
    """
    p, t = _check_pair(preds, target)
    return _ssim_update(p, t)


class PSNR(PerStepMetric):
    """Per-frame PSNR accumulated per step; ``compute()`` is the mean over all frames.

    ``curve()`` gives the drift curve (mean over episodes at each step). See :func:`psnr_video`
    for inputs and conventions.

    Args:
        max_db: cap in dB for identical frames; ``None`` keeps inf.
        horizon: optional number of steps to preallocate.

    Example:
        >>> m = PSNR()
        >>> target = np.zeros((2, 3, 16, 16, 3), dtype=np.uint8)
        >>> m.update(target, target)
        >>> float(m.compute()), m.curve().n.tolist()
        (100.0, [2, 2, 2])
    """

    higher_is_better = True

    def __init__(
        self, max_db: float | None = DEFAULT_MAX_DB, horizon: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(horizon=horizon, **kwargs)
        self.max_db = _check_max_db(max_db)

    def update(self, preds: Any, target: Any) -> None:
        """Adds a batch of predicted and true videos [B, T, H, W, C]."""
        p, t = _check_pair(preds, target)
        self._accumulate(_psnr_update(p, t, self.max_db))


class SSIM(PerStepMetric):
    """Per-frame SSIM accumulated per step; ``compute()`` is the mean over all frames.

    See :func:`ssim_video` for inputs and conventions.

    Args:
        horizon: optional number of steps to preallocate.

    Example:
        >>> m = SSIM()
        >>> target = np.full((1, 2, 16, 16, 3), 128, dtype=np.uint8)
        >>> m.update(target, target)
        >>> float(m.compute())
        1.0
    """

    higher_is_better = True

    def update(self, preds: Any, target: Any) -> None:
        """Adds a batch of predicted and true videos [B, T, H, W, C]."""
        p, t = _check_pair(preds, target)
        self._accumulate(_ssim_update(p, t))
