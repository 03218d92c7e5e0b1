"""Physics metrics: Physics-IQ's mask scores on exact object masks, and physical outcome categories.

Physics-IQ (Motamed et al., 2025) scores where, when and how much a generated video moves against
the real one with four numbers computed from binary *motion masks* (a pixel is 1 in frame t when
something moves there): spatial IoU (the IoU of the masks collapsed over time with a logical
or: *where* things move), spatiotemporal IoU (the per-frame IoU, averaged over frames: *where and
when*), weighted spatial IoU (the masks summed over time and divided by the frame count, then
sum(min)/sum(max) over pixels: *where and how much*) and the MSE of the frames (values in [0, 1]).
A pair of empty masks counts as a perfect match (1.0), as in the paper's code.

Physics-IQ must find motion in real video by background subtraction; panbench knows every object's
mask (the renderer's segmentation for the truth, colour perception for predictions), so a pixel is
moving at step t exactly when some object covers it at t and not at t-1, or at t-1 and not at t
(:func:`motion_masks`).

Outcome categories (:func:`outcome_categories`) say what became of each object over an episode:
``still``, ``moved`` (its image position changed by more than ``move_px``) or ``gone`` (present at
the end of the context, not visible at the end: fallen off the table or hidden).
"""

from __future__ import annotations

import numpy as np

from panbench.errors import ContractError

#: outcome category codes of :func:`outcome_categories`
STILL, MOVED, GONE, ABSENT = 0, 1, 2, 3
CATEGORY_NAMES = ("still", "moved", "gone", "absent")


def _binary(masks: np.ndarray, name: str, ndim: int) -> np.ndarray:
    m = np.asarray(masks)
    if m.ndim != ndim:
        raise ContractError(f"Expected {name} with {ndim} axes, but got shape {tuple(m.shape)}.")
    return m.astype(bool)


def _pair(pred: np.ndarray, true: np.ndarray, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    p, t = _binary(pred, "pred masks", ndim), _binary(true, "true masks", ndim)
    if p.shape != t.shape:
        raise ContractError(
            f"Expected pred and true masks of the same shape, but got {tuple(p.shape)} and "
            f"{tuple(t.shape)}."
        )
    return p, t


def motion_masks(object_masks: np.ndarray) -> np.ndarray:
    """Motion masks from per-object masks.

    Args:
        object_masks: bool [T+1, K, H, W]: each object's pixels in T+1 consecutive frames (the
            first is the last context frame).

    Returns:
        bool [T, H, W]: pixels some object entered or left between frame t and frame t+1.
    """
    m = _binary(object_masks, "object masks", 4)
    return (m[1:] ^ m[:-1]).any(axis=1)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU over the last two axes; 1.0 where both are empty."""
    inter = (a & b).sum(axis=(-2, -1))
    union = (a | b).sum(axis=(-2, -1))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def spatiotemporal_iou(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-frame IoU of motion masks bool [T, H, W]: float64 [T] (where and when)."""
    p, t = _pair(pred, true, 3)
    return _iou(p, t).astype(np.float64)


def spatial_iou(pred: np.ndarray, true: np.ndarray) -> float:
    """IoU of the motion masks bool [T, H, W] collapsed over time (where)."""
    p, t = _pair(pred, true, 3)
    return float(_iou(np.asarray(p.any(axis=0)), np.asarray(t.any(axis=0))))


def weighted_spatial_iou(pred: np.ndarray, true: np.ndarray) -> float:
    """sum(min)/sum(max) of the per-pixel fraction of frames in motion (where and how much)."""
    p, t = _pair(pred, true, 3)
    wp, wt = p.mean(axis=0), t.mean(axis=0)
    union = np.maximum(wp, wt).sum()
    return float(np.minimum(wp, wt).sum() / union) if union > 0 else 1.0


def frame_mse(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-frame mean squared error of uint8 [T, H, W, 3] frames scaled to [0, 1]: float64 [T]."""
    p, t = np.asarray(pred), np.asarray(true)
    if p.shape != t.shape or p.ndim != 4:
        raise ContractError(
            f"Expected pred and true frames of the same shape [T, H, W, 3], but got "
            f"{tuple(p.shape)} and {tuple(t.shape)}."
        )
    d = (p.astype(np.float64) - t.astype(np.float64)) / 255.0
    return (d**2).mean(axis=(1, 2, 3))


def changed_slots(
    context: dict[str, np.ndarray], truth: dict[str, np.ndarray], move_px: float
) -> np.ndarray:
    """bool [K]: the slots whose truth moves by more than ``move_px`` or changes presence.

    Args:
        context: the true observation of the last context frame (``positions`` [K, 2]).
        truth: the true observations stacked over the horizon (``positions`` [T, K, 2]).
        move_px: displacements from the context position above this count as moving.
    """
    c_pos, c_on = np.asarray(context["positions"], float), np.asarray(context["present"], bool)
    t_pos, t_on = np.asarray(truth["positions"], float), np.asarray(truth["present"], bool)
    c_on = c_on & np.isfinite(c_pos).all(-1)
    t_on = t_on & np.isfinite(t_pos).all(-1)
    with np.errstate(invalid="ignore"):
        moved = (np.linalg.norm(t_pos - c_pos, axis=-1) > move_px) & t_on & c_on
    return (moved | (t_on != c_on)).any(axis=0)


def mover_tracking(
    preds: dict[str, np.ndarray],
    truth: dict[str, np.ndarray],
    context: dict[str, np.ndarray],
    max_px: float,
    move_px: float,
) -> np.ndarray:
    """Tracking accuracy over the slots the truth moves or hides (see :func:`changed_slots`).

    Per step, the fraction of those slots the prediction gets right: shown within ``max_px`` of
    the true centre where the truth shows it, not shown where the truth hides it. Objects at rest
    are left out, so a model that freezes the scene gets no credit for them.

    Returns:
        float64 [T]; NaN at every step when the truth changes no slot.
    """
    p_pos, t_pos = np.asarray(preds["positions"], float), np.asarray(truth["positions"], float)
    p_on = np.asarray(preds["present"], bool) & np.isfinite(p_pos).all(-1)
    t_on = np.asarray(truth["present"], bool) & np.isfinite(t_pos).all(-1)
    with np.errstate(invalid="ignore"):
        err = np.linalg.norm(p_pos - t_pos, axis=-1)
    ok = np.where(t_on, p_on & (err <= max_px), ~p_on)
    keep = changed_slots(context, truth, move_px)
    if not keep.any():
        return np.full(ok.shape[0], np.nan)
    return ok[:, keep].mean(axis=-1)


def outcome_categories(
    start: dict[str, np.ndarray], end: dict[str, np.ndarray], move_px: float
) -> np.ndarray:
    """What became of each slot between two observations: int [K] of :data:`STILL` etc.

    Args:
        start: the observation at the end of the context (``positions`` [K, 2], ``present`` [K]).
        end: the observation at the end of the episode.
        move_px: displacements above this many pixels count as moved.

    Returns:
        :data:`ABSENT` for slots not present at the start, :data:`GONE` for those present at the
        start and not at the end, else :data:`MOVED` or :data:`STILL`.
    """
    p0, on0 = np.asarray(start["positions"], float), np.asarray(start["present"], bool)
    p1, on1 = np.asarray(end["positions"], float), np.asarray(end["present"], bool)
    on0 = on0 & np.isfinite(p0).all(axis=-1)
    on1 = on1 & np.isfinite(p1).all(axis=-1)
    with np.errstate(invalid="ignore"):
        moved = np.linalg.norm(p1 - p0, axis=-1) > move_px
    out = np.where(moved, MOVED, STILL)
    out = np.where(on0 & ~on1, GONE, out)
    return np.where(~on0, ABSENT, out).astype(np.int64)


def outcome_match(
    start: dict[str, np.ndarray],
    pred_end: dict[str, np.ndarray],
    true_end: dict[str, np.ndarray],
    move_px: float,
) -> float:
    """1.0 when every slot's predicted outcome category equals the true one, else 0.0.

    Both end observations are judged from the same ``start`` (the true last context frame).
    """
    pred = outcome_categories(start, pred_end, move_px)
    true = outcome_categories(start, true_end, move_px)
    return float(np.array_equal(pred, true))
