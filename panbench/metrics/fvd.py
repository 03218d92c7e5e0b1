"""Fréchet Video Distance exactly as StyleGAN-V computes it, plus FVD over horizon windows.

Protocol (universome/stylegan-v, ``src/metrics/frechet_video_distance.py`` and
``metric_utils.py``):

* each video contributes one clip of ``clip_length`` consecutive frames (16 by default);
* clips go to the Kinetics-400 I3D TorchScript detector as uint8 ``[B, 3, T, H, W]`` in
  ``[0, 255]``, called ``detector(clips, rescale=True, resize=True, return_features=True)``: the
  detector itself maps pixels to ``[-1, 1]`` and resizes frames to 224x224, and returns the
  400-d pre-softmax features;
* float frames in ``[0, 1]`` are quantised as StyleGAN-V quantises generator output,
  ``uint8(clamp(255 x + 0.5, 0, 255))`` (its ``x * 127.5 + 128`` for ``[-1, 1]``);
* features are cast to float32, then accumulated in float64; mean and covariance use the
  biased (1/N) estimator, ``cov = sum(x x^T) / N - mu mu^T``;
* ``FVD = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 sqrtm(S_a S_b))``, real part, with
  ``scipy.linalg.sqrtm``.

With fewer clips than feature dimensions (400) the covariances are rank-deficient and FVD is
biased and noisy; a warning says so. Published FVDs use 2048 clips or more.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import scipy.linalg
import torch
from torch import Tensor
from torchmetrics import Metric

from panbench import weights
from panbench.errors import ConfigError, ContractError

__all__ = [
    "FVD",
    "I3D_FEATURE_DIM",
    "feature_stats",
    "frechet_distance",
    "frechet_distance_from_stats",
    "fvd",
    "fvd_curve",
    "fvd_from_records",
    "i3d_features",
    "load_i3d",
    "to_detector_clips",
]

I3D_FEATURE_DIM = 400
DETECTOR_KWARGS: dict[str, bool] = {"rescale": True, "resize": True, "return_features": True}
Layout = Literal["thwc", "tchw"]
Videos = Tensor | np.ndarray


class RankDeficientWarning(UserWarning):
    """Fewer samples than feature dimensions: the covariance estimate is singular."""


def feature_stats(feats: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and biased (1/N) covariance of features, in float64, as StyleGAN-V computes them.

    Args:
        feats: ``[N, D]`` features.

    Returns:
        ``mu [D]`` and ``sigma [D, D]`` (float64).
    """
    x = _as_2d(feats, "feats")
    n = x.shape[0]
    mu = x.sum(axis=0) / n
    sigma = x.T @ x / n - np.outer(mu, mu)
    return mu, sigma


def frechet_distance_from_stats(
    mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray
) -> float:
    """Fréchet distance between two Gaussians ``N(mu_a, sigma_a)`` and ``N(mu_b, sigma_b)``.

    ``||mu_a - mu_b||^2 + tr(sigma_a + sigma_b - 2 sqrtm(sigma_a sigma_b))``, real part, with
    :func:`scipy.linalg.sqrtm` (the root StyleGAN-V uses).
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    sigma_a, sigma_b = np.asarray(sigma_a, np.float64), np.asarray(sigma_b, np.float64)
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape:
        raise ContractError(
            "Expected statistics of the same dimension, but got means "
            f"{mu_a.shape} and {mu_b.shape} and covariances {sigma_a.shape} and {sigma_b.shape}."
        )
    mean_term = np.square(mu_a - mu_b).sum()
    root = scipy.linalg.sqrtm(sigma_a @ sigma_b)
    return float(np.real(mean_term + np.trace(sigma_a + sigma_b - 2 * root)))


def _as_2d(feats: np.ndarray | Tensor, name: str) -> np.ndarray:
    if isinstance(feats, Tensor):
        feats = feats.detach().cpu().numpy()
    x = np.asarray(feats, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ContractError(f"Expected {name} of shape [N, D] with N >= 1, but got {x.shape}.")
    return x


def _warn_rank(n: int, dim: int) -> None:
    if n <= dim:
        warnings.warn(
            f"FVD from {n} samples of {dim}-d features: the covariance has rank at most "
            f"{max(n - 1, 0)} < {dim}, so the distance is biased and noisy; use more clips "
            "than feature dimensions (published FVDs use >= 2048).",
            RankDeficientWarning,
            stacklevel=3,
        )


def frechet_distance(feats_a: np.ndarray | Tensor, feats_b: np.ndarray | Tensor) -> float:
    """Fréchet distance between two feature sets (the FID/FVD formula).

    Args:
        feats_a: ``[N_a, D]`` features (numpy or torch, any float dtype; computed in float64).
        feats_b: ``[N_b, D]`` features.

    Returns:
        The distance (float). Warns with :class:`RankDeficientWarning` when a set has no
        more samples than dimensions.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> a = rng.normal(size=(500, 8))
        >>> round(frechet_distance(a, a + 1.0), 6)  # a shift of 1 in each of 8 dimensions
        8.0
    """
    a, b = _as_2d(feats_a, "feats_a"), _as_2d(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ContractError(
            f"Expected features of the same dimension, but got {a.shape} and {b.shape}."
        )
    _warn_rank(min(a.shape[0], b.shape[0]), a.shape[1])
    return frechet_distance_from_stats(*feature_stats(a), *feature_stats(b))


def load_i3d(path: str | os.PathLike[str] | None = None) -> Any:
    """Loads the sha256-verified StyleGAN-V I3D TorchScript detector on CPU.

    Args:
        path: an explicit file; default: ``PANBENCH_WEIGHTS_I3D_TORCHSCRIPT`` or the cache.

    Raises:
        WeightsError: missing (run ``panbench weights pull i3d-torchscript``) or bad sha256.
    """
    return weights.load_torchscript("i3d-torchscript", path)


def to_detector_clips(
    videos: Videos, clip_length: int | None = 16, offset: int = 0, layout: Layout = "thwc"
) -> Tensor:
    """Cuts one clip per video and converts it to the detector's input.

    Args:
        videos: ``[N, T, H, W, C]`` (``layout="thwc"``, panbench frames) or ``[N, T, C, H, W]``
            (``layout="tchw"``), uint8 in ``[0, 255]`` or float in ``[0, 1]``; C is 3 or 1
            (grey frames are repeated to 3 channels, as StyleGAN-V does).
        clip_length: frames per clip, or None for all frames from ``offset`` on.
        offset: index of each clip's first frame.
        layout: axis order after N.

    Returns:
        uint8 ``[N, 3, clip_length, H, W]``, contiguous.

    Raises:
        ContractError: wrong rank, channels, dtype or range, or videos shorter than
            ``offset + clip_length``.
    """
    x = torch.as_tensor(videos)
    if x.ndim != 5:
        raise ContractError(f"Expected videos [N, T, ...] with 5 dims, but got {tuple(x.shape)}.")
    if layout == "thwc":
        x = x.permute(0, 4, 1, 2, 3)
    elif layout == "tchw":
        x = x.permute(0, 2, 1, 3, 4)
    else:
        raise ConfigError(f"Expected layout 'thwc' or 'tchw', but got {layout!r}.")
    if x.shape[1] not in (1, 3):
        raise ContractError(
            f"Expected 1 or 3 channels (layout {layout!r}), but got videos {tuple(videos.shape)}."
        )
    length = x.shape[2] - offset if clip_length is None else clip_length
    if offset < 0 or length < 1 or offset + length > x.shape[2]:
        raise ContractError(
            f"Expected videos of at least {offset + max(length, 1)} frames for a clip of "
            f"{clip_length} at offset {offset}, but got {x.shape[2]} frames."
        )
    x = x[:, :, offset : offset + length]
    if x.is_floating_point():
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise ContractError(
                f"Expected float videos in [0, 1], but got [{x.min().item():.4g}, "
                f"{x.max().item():.4g}]; pass uint8 frames or scale them."
            )
        x = (x * 255 + 0.5).clamp(0, 255).to(torch.uint8)
    elif x.dtype != torch.uint8:
        raise ContractError(f"Expected uint8 or float videos, but got {x.dtype}.")
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1, 1)
    return x.contiguous()


@torch.no_grad()
def i3d_features(
    clips: Tensor, detector: Any = None, batch_size: int = 8, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Runs detector clips through I3D, StyleGAN-V style.

    Args:
        clips: uint8 ``[N, 3, T, H, W]`` from :func:`to_detector_clips`.
        detector: a module called as ``detector(x, rescale=True, resize=True,
            return_features=True)``; default: :func:`load_i3d`.
        batch_size: clips per detector call (does not change the result beyond float noise).
        device: where the detector runs.

    Returns:
        float64 ``[N, D]`` (values rounded through float32 first, as StyleGAN-V does).
    """
    det = load_i3d() if detector is None else detector
    if hasattr(det, "to"):
        det = det.to(device)
    out = []
    for start in range(0, clips.shape[0], batch_size):
        batch = clips[start : start + batch_size].to(device)
        feats = det(batch, **DETECTOR_KWARGS)
        out.append(feats.detach().float().cpu().numpy().astype(np.float64))
    return np.concatenate(out, axis=0)


def fvd(
    videos_a: Videos,
    videos_b: Videos,
    detector: Any = None,
    clip_length: int | None = 16,
    offset: int = 0,
    layout: Layout = "thwc",
    batch_size: int = 8,
) -> float:
    """FVD between two sets of videos, one clip per video (StyleGAN-V protocol).

    Args:
        videos_a: ``[N_a, T, H, W, C]`` (or ``[N_a, T, C, H, W]`` with ``layout="tchw"``),
            uint8 in ``[0, 255]`` or float in ``[0, 1]``; typically the generated rollouts.
        videos_b: ``[N_b, T', ...]`` in the same layout; typically the ground truth.
        detector: a loaded I3D (or a stand-in with its call signature); default:
            :func:`load_i3d`.
        clip_length: frames per clip (16 by default; None: all frames from ``offset``).
        offset: first frame of each clip.
        layout: ``"thwc"`` (panbench frames) or ``"tchw"``.
        batch_size: clips per detector call.

    Returns:
        The FVD (float). Warns with :class:`RankDeficientWarning` when a set has at most 400
        clips.

    Example:
        >>> import torch  # a stand-in detector; real FVD uses the default I3D
        >>> detector = lambda x, rescale, resize, return_features: x.float().mean((2, 3, 4))
        >>> a = torch.zeros(4, 16, 8, 8, 3, dtype=torch.uint8)
        >>> round(fvd(a, a + 10, detector=detector), 6)
        300.0
    """
    det = load_i3d() if detector is None else detector
    feats = [
        i3d_features(to_detector_clips(v, clip_length, offset, layout), det, batch_size)
        for v in (videos_a, videos_b)
    ]
    return frechet_distance(*feats)


def fvd_curve(
    videos_a: Videos,
    videos_b: Videos,
    detector: Any = None,
    clip_length: int = 16,
    stride: int | None = None,
    layout: Layout = "thwc",
    batch_size: int = 8,
) -> dict[int, float]:
    """FVD_n: FVD of the clip window at each horizon offset, for long rollouts.

    Windows start at ``0, stride, 2 * stride, ...`` while they fit in the shorter video set;
    each is scored with :func:`fvd`. A rising curve means the rollout drifts away from the
    data distribution as the horizon grows.

    Args:
        videos_a: ``[N_a, T, ...]`` videos, as in :func:`fvd`.
        videos_b: ``[N_b, T', ...]`` videos.
        detector: see :func:`fvd`; loaded once for all windows.
        clip_length: frames per window.
        stride: offset step (default ``clip_length``: non-overlapping windows).
        layout: ``"thwc"`` or ``"tchw"``.
        batch_size: clips per detector call.

    Returns:
        ``{offset: FVD}`` in increasing offset order.
    """
    step = clip_length if stride is None else stride
    if step < 1 or clip_length < 1:
        raise ConfigError(f"Expected positive clip_length and stride, got {clip_length}, {step}.")
    horizon = min(int(np.shape(videos_a)[1]), int(np.shape(videos_b)[1]))
    if horizon < clip_length:
        raise ContractError(
            f"Expected videos of at least {clip_length} frames, but got {horizon} frames."
        )
    det = load_i3d() if detector is None else detector
    return {
        start: fvd(videos_a, videos_b, det, clip_length, start, layout, batch_size)
        for start in range(0, horizon - clip_length + 1, step)
    }


class FVD(Metric):
    """FVD accumulated over batches: features per update, Fréchet distance at ``compute``.

    ``update(pred, target)`` adds generated videos ``pred`` and real videos ``target`` (the two
    sets may differ in size); only running float64 sums ``sum x``, ``sum x x^T`` and counts are
    kept, as in StyleGAN-V's ``FeatureStats``, so memory does not grow with the number of clips.

    Args:
        detector: a loaded I3D or stand-in; default: the verified cache file (loaded now).
        detector_path: an explicit I3D file (sha256-checked) when ``detector`` is None.
        clip_length: frames per clip (16 by default).
        offset: first frame of each clip.
        layout: ``"thwc"`` (panbench frames) or ``"tchw"``.
        feature_dim: the detector's feature size (400 for I3D).
        batch_size: clips per detector call.
        **kwargs: passed to :class:`torchmetrics.Metric`.

    Example:
        >>> import torch  # a stand-in detector; real FVD uses the default I3D
        >>> detector = lambda x, rescale, resize, return_features: x.float().mean((2, 3, 4))
        >>> metric = FVD(detector=detector, feature_dim=3)
        >>> metric.update(torch.zeros(8, 16, 8, 8, 3, dtype=torch.uint8),
        ...               torch.ones(8, 16, 8, 8, 3, dtype=torch.uint8))
        >>> metric.compute()
        tensor(3., dtype=torch.float64)
    """

    higher_is_better = False
    is_differentiable = False
    full_state_update = False

    sum_pred: Tensor
    outer_pred: Tensor
    n_pred: Tensor
    sum_target: Tensor
    outer_target: Tensor
    n_target: Tensor

    def __init__(
        self,
        detector: Any = None,
        detector_path: str | os.PathLike[str] | None = None,
        clip_length: int | None = 16,
        offset: int = 0,
        layout: Layout = "thwc",
        feature_dim: int = I3D_FEATURE_DIM,
        batch_size: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.detector = load_i3d(detector_path) if detector is None else detector
        self.clip_length = clip_length
        self.offset = offset
        self.layout: Layout = layout
        self.feature_dim = feature_dim
        self.batch_size = batch_size
        for side in ("pred", "target"):
            self.add_state(f"sum_{side}", torch.zeros(feature_dim, dtype=torch.float64), "sum")
            self.add_state(
                f"outer_{side}", torch.zeros(feature_dim, feature_dim, dtype=torch.float64), "sum"
            )
            self.add_state(f"n_{side}", torch.zeros((), dtype=torch.long), "sum")

    def _add(self, side: str, videos: Videos) -> None:
        clips = to_detector_clips(videos, self.clip_length, self.offset, self.layout)
        feats = i3d_features(clips, self.detector, self.batch_size, device=self.device)
        if feats.shape[1] != self.feature_dim:
            raise ConfigError(
                f"Expected {self.feature_dim}-d detector features, but got {feats.shape[1]}-d; "
                "set feature_dim to match the detector."
            )
        x = torch.from_numpy(feats).to(self.device)
        getattr(self, f"sum_{side}").add_(x.sum(dim=0))
        getattr(self, f"outer_{side}").add_(x.T @ x)
        getattr(self, f"n_{side}").add_(x.shape[0])

    def update(self, pred: Videos, target: Videos) -> None:
        """Adds generated videos ``pred`` and real videos ``target`` (see :func:`fvd`)."""
        self._add("pred", pred)
        self._add("target", target)

    def compute(self) -> Tensor:
        """The FVD (float64 scalar, NaN before any update); warns when a set has at most
        ``feature_dim`` clips."""
        stats = []
        for side in ("pred", "target"):
            n = int(getattr(self, f"n_{side}"))
            if n == 0:  # nothing to compare yet, like PerStepMetric before any value
                return torch.tensor(float("nan"), dtype=torch.float64)
            mu = getattr(self, f"sum_{side}").cpu().numpy() / n
            sigma = getattr(self, f"outer_{side}").cpu().numpy() / n - np.outer(mu, mu)
            stats += [mu, sigma]
        _warn_rank(min(int(self.n_pred), int(self.n_target)), self.feature_dim)
        return torch.tensor(frechet_distance_from_stats(*stats), dtype=torch.float64)


def fvd_from_records(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """FVD_n from the per-episode I3D features stored in samples records.

    For each window offset, the Fréchet distance between the predicted and the true clips'
    features over all episodes; ``value`` is the mean over offsets and ``curve`` the FVD at each
    offset. FVD is a set statistic, so it has no per-episode value and no bootstrap CI
    (resampling duplicates clips, which biases FVD).

    Args:
        records: per-episode records; those with ``features.fvd`` (written by the rollout
            protocol: ``offsets``, and per offset the ``pred`` and ``true`` feature vectors)
            take part.

    Returns:
        A results entry: ``value``, ``ci95`` (None, None), ``n``, ``n_missing``,
        ``higher_is_better`` (False), ``curve``, ``offsets``, ``set_level`` (True).
    """
    feats = [r["features"]["fvd"] for r in records if r.get("features", {}).get("fvd")]
    if not feats:
        return {
            "value": None,
            "ci95": [None, None],
            "n": 0,
            "n_missing": len(records),
            "higher_is_better": False,
            "set_level": True,
        }
    offsets = feats[0]["offsets"]
    curve = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few clips for the feature size: reported via n
        for j in range(len(offsets)):
            pred = np.asarray([f["pred"][j] for f in feats], dtype=np.float64)
            true = np.asarray([f["true"][j] for f in feats], dtype=np.float64)
            curve.append(frechet_distance(pred, true))
    return {
        "value": float(np.mean(curve)),
        "ci95": [None, None],
        "n": len(feats),
        "n_missing": len(records) - len(feats),
        "higher_is_better": False,
        "curve": curve,
        "offsets": offsets,
        "set_level": True,
    }
