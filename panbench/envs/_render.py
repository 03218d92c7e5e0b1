"""Shared numpy helpers for the built-in envs: palette segmentation, sprite stamping, centroids.

Envs render flat-coloured sprites on a plain background, so perception is nearest-palette-colour
segmentation followed by per-colour blob statistics. These helpers keep that exact on rendered
frames (no anti-aliasing anywhere) and bounded on generated ones (a colour tolerance, a median
window against stray pixels).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from panbench.errors import ConfigError

#: label for pixels farther than the tolerance from every palette colour
UNMATCHED = -1


def as_palette(colors: list[tuple[int, int, int]]) -> np.ndarray:
    """Turns RGB triples into a read-only uint8 [P,3] palette."""
    palette = np.array(colors, dtype=np.uint8).reshape(-1, 3)
    palette.setflags(write=False)
    return palette


def min_palette_distance(palette: np.ndarray) -> float:
    """The smallest Euclidean RGB distance between two distinct colours of a uint8 [P,3] palette."""
    p = palette.astype(np.float64)
    d = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))
    d[np.diag_indices(len(p))] = np.inf
    return float(d.min())


def palette_labels(frame: np.ndarray, palette: np.ndarray, tolerance: float) -> np.ndarray:
    """Labels each pixel with its nearest palette colour, or :data:`UNMATCHED` if none is close.

    Args:
        frame: uint8 [H,W,3].
        palette: uint8 [P,3], P <= 127.
        tolerance: the largest Euclidean RGB distance at which a pixel still matches a colour.

    Returns:
        int8 [H,W]: palette index per pixel, ``UNMATCHED`` (-1) where the nearest colour is
        farther than ``tolerance``.
    """
    h, w, _ = frame.shape
    flat = frame.reshape(-1, 3).astype(np.int32)
    # Fast path: rendered frames hold palette colours only, so look packed RGB values up exactly
    # and measure distances just for the pixels that miss (all of them on a generated frame).
    packed = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    pal = palette.astype(np.int32)
    pal_packed = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    order = np.argsort(pal_packed)
    pos = np.searchsorted(pal_packed[order], packed).clip(0, len(pal) - 1)
    exact = pal_packed[order][pos] == packed
    labels = np.full(h * w, UNMATCHED, dtype=np.int8)
    labels[exact] = order[pos[exact]]
    miss = np.flatnonzero(~exact)
    if miss.size:
        # int32 squared distances: exact, and [N, P] stays small (P is a handful of colours).
        diff = flat[miss, None, :] - pal[None, :, :]
        dist2 = np.einsum("npc,npc->np", diff, diff)
        nearest = dist2.argmin(axis=1)
        best = dist2[np.arange(miss.size), nearest]
        labels[miss] = np.where(best <= tolerance * tolerance, nearest, UNMATCHED)
    return labels.reshape(h, w)


def blob_pixels(
    labels: np.ndarray, label: int, half_window: float
) -> tuple[np.ndarray, np.ndarray]:
    """The (rows, cols) of ``label`` in ``labels`` that lie near the blob's median.

    Rendered blobs are compact, so every pixel of a true blob lies within ``half_window`` of its
    median in each axis; stray matching pixels elsewhere (noise, other artefacts of a generated
    frame) are dropped instead of dragging the centroid across the image.

    Args:
        labels: int [H,W] label image.
        label: the label to collect.
        half_window: the half side of the square window kept around the median, in pixels.

    Returns:
        int64 rows [N] and int64 cols [N] (N may be 0).
    """
    rows, cols = np.nonzero(labels == label)
    if rows.size == 0:
        return rows, cols
    keep = (np.abs(rows - np.median(rows)) <= half_window) & (
        np.abs(cols - np.median(cols)) <= half_window
    )
    return rows[keep], cols[keep]


def stamp(
    frames: np.ndarray,
    frame_index: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    rgb: np.ndarray,
) -> None:
    """Paints pixels of a batch of frames in place with one scatter.

    Args:
        frames: uint8 [B,H,W,3], written in place.
        frame_index: int [N] frame of each pixel.
        rows: int [N] row of each pixel (must be inside the frame).
        cols: int [N] column of each pixel (must be inside the frame).
        rgb: uint8 [N,3] colour of each pixel.
    """
    b, h, w, _ = frames.shape
    flat = frames.reshape(b * h * w, 3)
    flat[(frame_index * h + rows) * w + cols] = rgb


def background_frames(palette: np.ndarray, background: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [B,R,R,3] frames filled with ``palette[background[b]]``.

    Args:
        palette: uint8 [P,3].
        background: int [B] palette index per frame.
        resolution: side R of the frames.
    """
    out = np.empty((len(background), resolution, resolution, 3), dtype=np.uint8)
    out[...] = palette[background][:, None, None, :]
    return out


def frozen(array: np.ndarray) -> np.ndarray:
    """Returns ``array`` marked read-only, so state values cannot be mutated by accident."""
    array.setflags(write=False)
    return array


def count_range(value: Any, option: str, low: int, high: int) -> tuple[int, int] | None:
    """Validates an entity-count option: None, an int, or an inclusive ``[low, high]`` pair.

    Args:
        value: the option as given.
        option: its name, for the error message.
        low: the smallest count allowed.
        high: the largest count allowed.

    Returns:
        ``None`` for None, else the inclusive ``(low, high)`` range (an int n gives ``(n, n)``).

    Raises:
        ConfigError: ``value`` has another type, or a count outside ``[low, high]``.
    """
    if value is None:
        return None

    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if is_int(value):
        lo = hi = int(value)
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(map(is_int, value)):
        lo, hi = int(value[0]), int(value[1])
    else:
        raise ConfigError(
            f"Expected {option} to be None, an int or an inclusive [low, high] pair of ints, "
            f"but got {value!r}."
        )
    if not low <= lo <= hi <= high:
        raise ConfigError(
            f"Expected {option} within {low}..{high} (low <= high), but got {value!r}."
        )
    return lo, hi
