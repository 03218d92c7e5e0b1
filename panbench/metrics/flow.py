"""Dense optical flow between consecutive video frames: estimators, their registry and helpers.

A flow estimator maps two RGB frames, uint8 ``[H, W, 3]`` each, to the forward flow float32
``[H, W, 2]`` in pixels: channel 0 is dx (columns), channel 1 is dy (rows), and pixel ``(y, x)``
of the first frame moves to ``(y + dy, x + dx)`` in the second. This is the convention of both
OpenCV's Farneback and (SEA-)RAFT (``flow = coords2 - coords1``).

Two estimators are registered in :data:`FLOW_ESTIMATORS`:

- ``farneback`` (default, offline, CPU): OpenCV's ``calcOpticalFlowFarneback`` on grayscale
  frames with the parameters in :class:`FarnebackFlow`. WR-Arena does not use it; it is
  panbench's offline substitute, and smoothness numbers computed with it are *not comparable*
  to WR-Arena's published SEA-RAFT numbers.
- ``sea-raft``: WR-Arena's own estimator, SEA-RAFT (spring-M configuration) re-implemented in
  plain torch in :mod:`panbench.metrics.sea_raft`; it needs the published checkpoint.

OpenCV is an optional dependency: ``pip install panbench[wr]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from panbench.errors import ConfigError, ContractError
from panbench.registry import Registry

__all__ = [
    "FLOW_ESTIMATORS",
    "FarnebackFlow",
    "FlowEstimator",
    "check_frame",
    "estimator_provenance",
    "make_flow_estimator",
    "require_cv2",
    "video_flow",
]


@runtime_checkable
class FlowEstimator(Protocol):
    """Anything that computes dense forward flow between two frames.

    Attributes:
        name: a short name recorded in results provenance ("farneback", "sea-raft").
    """

    @property
    def name(self) -> str:  # read-only, so frozen dataclasses and class attributes conform
        ...

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flow from ``prev`` to ``nxt``.

        Args:
            prev: uint8 [H, W, 3], RGB.
            nxt: uint8 [H, W, 3], RGB, same shape as ``prev``.

        Returns:
            float32 [H, W, 2]: (dx, dy) in pixels.
        """
        ...


#: Flow estimators by name; entries are lazy ``"module:Class"`` strings whose classes take
#: keyword options. Third-party estimators register under the entry-point group
#: ``panbench.flow_estimators``.
FLOW_ESTIMATORS: Registry[Any] = Registry("flow estimator", "panbench.flow_estimators")
FLOW_ESTIMATORS.register("farneback", "panbench.metrics.flow:FarnebackFlow")
FLOW_ESTIMATORS.register("sea-raft", "panbench.metrics.sea_raft:SeaRaftFlow")


def require_cv2() -> Any:
    """Imports OpenCV or raises a ConfigError saying how to install it."""
    try:
        import cv2
    except ImportError as err:
        raise ConfigError(
            "Optical flow with 'farneback' needs OpenCV, which is not installed "
            f"({err}). Install it with `pip install panbench[wr]` "
            "(opencv-python-headless)."
        ) from err
    return cv2


def check_frame(frame: Any, name: str) -> np.ndarray:
    """Validates one RGB frame and returns it as a contiguous uint8 [H, W, 3] array.

    Raises:
        ContractError: not a numpy array, not uint8, or not of shape [H, W, 3].
    """
    if not isinstance(frame, np.ndarray):
        raise ContractError(
            f"Expected {name} to be a numpy array (uint8 [H, W, 3]), but got "
            f"{type(frame).__name__}."
        )
    if frame.dtype != np.uint8:
        raise ContractError(f"Expected {name} to be uint8 [H, W, 3], but got dtype {frame.dtype}.")
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ContractError(
            f"Expected {name} of shape [H, W, 3] (RGB, channels last), but got shape "
            f"{tuple(frame.shape)}."
        )
    return np.ascontiguousarray(frame)


def _check_pair(prev: Any, nxt: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = check_frame(prev, "prev"), check_frame(nxt, "nxt")
    if a.shape != b.shape:
        raise ContractError(
            f"Expected prev and nxt to have the same shape, but got {a.shape} and {b.shape}."
        )
    return a, b


@dataclass(frozen=True)
class FarnebackFlow:
    """OpenCV Farneback dense flow on grayscale frames (panbench's offline estimator).

    The defaults are the values of OpenCV's own dense-flow sample (``pyr_scale=0.5,
    winsize=15, iterations=3, poly_n=5, poly_sigma=1.2``) with ``levels=5`` instead of 3, so the
    coarsest pyramid level (1/16 of the frame) still tracks motions of 10-20 px per frame at
    256x256. Frames are converted to grayscale with ``cv2.COLOR_RGB2GRAY``; no flags are set
    (no initial flow, box rather than gaussian window).

    Attributes:
        pyr_scale: image scale between pyramid levels (< 1).
        levels: number of pyramid levels, including the full-size one.
        winsize: averaging window size in pixels.
        iterations: iterations at each pyramid level.
        poly_n: pixel neighbourhood of the polynomial expansion (5 or 7).
        poly_sigma: gaussian sigma of the polynomial expansion (1.1 for 5, 1.5 for 7).

    Example:
        >>> frame = np.zeros((32, 32, 3), dtype=np.uint8)
        >>> FarnebackFlow()(frame, frame).shape
        (32, 32, 2)
    """

    pyr_scale: float = 0.5
    levels: int = 5
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2
    name: str = "farneback"

    def __post_init__(self) -> None:
        if not 0.0 < self.pyr_scale < 1.0:
            raise ConfigError(f"Expected 0 < pyr_scale < 1, but got {self.pyr_scale!r}.")
        for field in ("levels", "winsize", "iterations", "poly_n"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"Expected {field} to be a positive int, but got {value!r}.")
        if not (isinstance(self.poly_sigma, int | float) and math.isfinite(self.poly_sigma)):
            raise ConfigError(f"Expected poly_sigma to be a float, but got {self.poly_sigma!r}.")
        if self.poly_sigma <= 0:
            raise ConfigError(f"Expected poly_sigma > 0, but got {self.poly_sigma!r}.")

    def options(self) -> dict[str, Any]:
        """The parameters, for results provenance."""
        return {
            "pyr_scale": self.pyr_scale,
            "levels": self.levels,
            "winsize": self.winsize,
            "iterations": self.iterations,
            "poly_n": self.poly_n,
            "poly_sigma": self.poly_sigma,
        }

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flow from ``prev`` to ``nxt``: uint8 [H, W, 3] x2 -> float32 [H, W, 2] (dx, dy)."""
        cv2 = require_cv2()
        a, b = _check_pair(prev, nxt)
        g1 = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
        g2 = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
        flow = cv2.calcOpticalFlowFarneback(
            g1,
            g2,
            None,
            self.pyr_scale,
            self.levels,
            self.winsize,
            self.iterations,
            self.poly_n,
            self.poly_sigma,
            0,
        )
        return np.asarray(flow, dtype=np.float32)


def make_flow_estimator(name: str = "farneback", **options: Any) -> FlowEstimator:
    """Builds the flow estimator registered as ``name`` with keyword ``options``.

    Args:
        name: a key of :data:`FLOW_ESTIMATORS` ("farneback", "sea-raft").
        options: passed to the estimator's constructor (e.g. ``levels=3`` for Farneback;
            ``path=``, ``sha256=``, ``device=`` for SEA-RAFT).

    Returns:
        A :class:`FlowEstimator`.

    Raises:
        UnknownNameError: no estimator has that name (the message suggests close names).
        ConfigError: an option the estimator does not take, or OpenCV missing for Farneback.
        WeightsError: the learned estimator's weights are missing or fail their sha256 check.

    Example:
        >>> make_flow_estimator("farneback", levels=3).levels
        3
    """
    cls = FLOW_ESTIMATORS.get(name)
    try:
        estimator = cls(**options)
    except TypeError as err:
        raise ConfigError(f"Bad options for flow estimator {name!r}: {err}.") from err
    if name == "farneback":
        require_cv2()  # fail at construction, not at the first frame pair
    return estimator


def estimator_provenance(estimator: FlowEstimator) -> dict[str, Any]:
    """What a results file should record about the estimator behind a number.

    Returns:
        ``{"name": ..., "options": {...}}``; options come from the estimator's ``options()``
        method when it has one (both built-in estimators do), else ``{}``.

    Example:
        >>> estimator_provenance(FarnebackFlow())["options"]["levels"]
        5
    """
    options = getattr(estimator, "options", None)
    return {
        "name": getattr(estimator, "name", type(estimator).__name__),
        "options": dict(options()) if callable(options) else {},
    }


def video_flow(frames: Any, estimator: FlowEstimator) -> np.ndarray:
    """Forward flow between every pair of consecutive frames of one video.

    Args:
        frames: uint8 [T, H, W, 3] RGB, T >= 2.
        estimator: a :class:`FlowEstimator` (see :func:`make_flow_estimator`).

    Returns:
        float32 [T - 1, H, W, 2]: entry t is the flow from frame t to frame t + 1, (dx, dy) px.

    Raises:
        ContractError: frames of the wrong type, dtype or shape, fewer than two frames, or an
            estimator returning something other than finite float [H, W, 2].

    Example:
        >>> video = np.zeros((3, 16, 16, 3), dtype=np.uint8)
        >>> video_flow(video, FarnebackFlow()).shape
        (2, 16, 16, 2)
    """
    if not isinstance(frames, np.ndarray):
        raise ContractError(
            f"Expected frames to be a numpy array (uint8 [T, H, W, 3]), but got "
            f"{type(frames).__name__}."
        )
    if frames.dtype != np.uint8:
        raise ContractError(
            f"Expected frames to be uint8 [T, H, W, 3], but got dtype {frames.dtype}."
        )
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ContractError(
            f"Expected frames of shape [T, H, W, 3] (one RGB video, channels last), but got "
            f"shape {tuple(frames.shape)}."
        )
    if frames.shape[0] < 2:
        raise ContractError(
            f"Expected at least 2 frames to compute optical flow, but got {frames.shape[0]}."
        )
    t, h, w, _ = frames.shape
    out = np.empty((t - 1, h, w, 2), dtype=np.float32)
    label = getattr(estimator, "name", type(estimator).__name__)
    for i in range(t - 1):
        flow = np.asarray(estimator(frames[i], frames[i + 1]))
        if flow.shape != (h, w, 2) or not np.issubdtype(flow.dtype, np.floating):
            raise ContractError(
                f"Flow estimator {label!r} must return float [H, W, 2] = {(h, w, 2)}, but "
                f"returned {flow.dtype} {tuple(flow.shape)} for frames {i} -> {i + 1}."
            )
        if not np.isfinite(flow).all():
            raise ContractError(
                f"Flow estimator {label!r} returned NaN or inf for frames {i} -> {i + 1}."
            )
        out[i] = flow
    return out
