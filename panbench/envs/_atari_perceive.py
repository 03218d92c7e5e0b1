"""Atari objects from pixels (a tolerant palette detector) and from RAM (OCAtari), in slots.

Perception works on frames at any size a model produces (native 210x160, squashed to 64x64,
blurred, noisy): every pixel of the game's playfield rows is classified by the game's palette
(its background colours and its object colours from OCAtari's colour tables), as the nearest
blend of a background colour and a palette colour (blur and downscaling blend an object's edge
with what lies behind it), belonging to the palette colour when it makes up at least half of the
blend; a pixel farther than :data:`COLOUR_THRESHOLD` (Euclidean RGB distance) from every blend
is left unclassified. The pixels of each object category form 8-connected components; a component
counts when its area, scaled back to native pixels, is in the category's range (and at least
:data:`MIN_PIXELS` frame pixels). A category's largest components fill its slots, which are then
ordered top to bottom, left to right. An object's position is its component's centroid.

RAM truth comes from OCAtari's ``_detect_objects_ram`` on a fresh object list (so it depends on
the RAM alone, never on earlier calls), mapped to the same categories and slot order.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from panbench.envs._atari_games import NATIVE_SHAPE, Game

#: a pixel farther than this (Euclidean distance in RGB units, 0-255 per channel) from every
#: palette colour is unclassified; palette colours of a game are at least ~40 apart
COLOUR_THRESHOLD = 60.0
#: the fewest frame pixels a component needs (at any resolution)
MIN_PIXELS = 1
#: agreement with RAM: a perceived object matches a RAM object of its category when their centres
#: are within ``max(AGREE_MIN_PX, AGREE_REL * the RAM object's larger side)`` native pixels
AGREE_MIN_PX = 4.0
AGREE_REL = 0.5
#: two RAM objects of one category whose boxes overlap this much are one visible object
SAME_OBJECT_IOU = 0.5

_EIGHT = np.ones((3, 3), dtype=bool)


def _codes(rgb: np.ndarray) -> np.ndarray:
    """int64 [...]: one code per colour of uint8 [..., 3]."""
    x = rgb.astype(np.int64)
    return (x[..., 0] << 16) | (x[..., 1] << 8) | x[..., 2]


class Palette:
    """A game's palette, built once per game.

    Attributes:
        colours: float32 [P, 3] the distinct colours of the game: background, then objects.
        members: per category, the palette indices of its colours (categories may share a
            colour, told apart by size, e.g. Breakout's paddle and ball).
    """

    def __init__(self, game: Game) -> None:
        self.game = game
        colours: list[tuple[int, int, int]] = []
        for c in (*game.background, *(c for cat in game.categories for c in cat.colours)):
            if c not in colours:
                colours.append(c)
        self.colours = np.asarray(colours, dtype=np.float32)
        self.members = [
            np.asarray([colours.index(c) for c in cat.colours]) for cat in game.categories
        ]
        self._bg = self.colours[: len(game.background)]
        # every (background b, palette colour c) blend: direction c - b and its squared length
        self._dirs = self.colours[None, :, :] - self._bg[:, None, :]  # [Nb, P, 3]
        self._len2 = np.maximum((self._dirs**2).sum(axis=-1), 1e-6)  # [Nb, P]
        codes = _codes(np.asarray(colours, dtype=np.uint8))
        self._order = np.argsort(codes)
        self._sorted_codes = codes[self._order]

    def classify(self, pixels: np.ndarray) -> np.ndarray:
        """The palette index of each pixel of uint8 [H, W, 3]; -1 where nothing explains it.

        A pixel is explained as a blend ``b + a (c - b)`` of a background colour b and a palette
        colour c, ``a`` in [0, 1] (what blur and downscaling make of an object's edge); the blend
        nearest to the pixel wins, and the pixel is c when ``a >= 0.5``, else b. A pixel farther
        than :data:`COLOUR_THRESHOLD` from every blend is unclassified. An exact palette colour
        is its own blend with ``a = 1`` (or 0), so native frames classify exactly.
        """
        flat = pixels.reshape(-1, 3)
        codes = _codes(flat)
        at = np.minimum(np.searchsorted(self._sorted_codes, codes), len(self._sorted_codes) - 1)
        exact = self._sorted_codes[at] == codes
        out = np.where(exact, self._order[at], -1)
        if exact.all():  # flat regions keep their exact colours: only blends need the model
            return out.reshape(pixels.shape[:2])
        rest = np.flatnonzero(~exact)
        out[rest] = self._blend(flat[rest].astype(np.float32))
        return out.reshape(pixels.shape[:2])

    def _blend(self, x: np.ndarray) -> np.ndarray:
        """Labels of float32 [N, 3] pixels by their nearest background blend (see classify)."""
        xb = x[:, None, :] - self._bg[None, :, :]  # [N, Nb, 3]
        proj = np.einsum("nbk,bpk->nbp", xb, self._dirs)  # [N, Nb, P]
        a = np.clip(proj / self._len2, 0.0, 1.0)
        r2 = (xb * xb).sum(axis=-1)[:, :, None] - 2.0 * a * proj + a * a * self._len2
        n_col = self._len2.shape[1]
        best = r2.reshape(len(x), -1).argmin(axis=1)
        rows = np.arange(len(x))
        b_idx, c_idx = np.divmod(best, n_col)
        blend = a.reshape(len(x), -1)[rows, best]
        label = np.where(blend >= 0.5, c_idx, b_idx)
        ok = r2.reshape(len(x), -1)[rows, best] <= COLOUR_THRESHOLD**2
        return np.where(ok, label, -1)


def perceive_objects(palette: Palette, frame: np.ndarray) -> dict[str, np.ndarray]:
    """Objects in a uint8 [H, W, 3] frame of any size, in the game's slots.

    Returns:
        ``positions`` float64 [K, 2] centres (x, y) in native pixels (NaN where absent),
        ``sizes`` float64 [K] areas in native pixels (0 where absent), ``present`` bool [K].
    """
    game = palette.game
    h, w = frame.shape[:2]
    sy, sx = h / NATIVE_SHAPE[0], w / NATIVE_SHAPE[1]
    r0 = int(np.floor(game.rows[0] * sy))
    r1 = int(np.ceil(game.rows[1] * sy))
    c0 = int(np.floor(game.cols[0] * sx))
    c1 = int(np.ceil(game.cols[1] * sx))
    nearest = palette.classify(frame[r0:r1, c0:c1])
    k_total = game.num_slots
    positions = np.full((k_total, 2), np.nan)
    sizes = np.zeros(k_total)
    present = np.zeros(k_total, dtype=bool)
    slot = 0
    for k, cat in enumerate(game.categories):
        members = palette.members[k]
        if cat.by_colour or len(members) == 1:
            masks = [nearest == m for m in members]
        else:
            masks = [np.isin(nearest, members)]
        found = [
            c
            for mask in masks
            for c in _components(mask, cat.min_area * sx * sy, cat.max_area * sx * sy, cat.join)
        ]
        found = sorted(found, key=lambda c: -c[2])[: cat.count]
        found.sort(key=lambda c: (round(c[1], 1), c[0]))
        for i, (cx, cy, area) in enumerate(found):
            # frame pixel (i, j) has its centre at (j + 0.5, i + 0.5) in continuous coordinates
            positions[slot + i] = ((cx + c0 + 0.5) / sx, (cy + r0 + 0.5) / sy)
            sizes[slot + i] = area / (sx * sy)
            present[slot + i] = True
        slot += cat.count
    return {"positions": positions, "sizes": sizes, "present": present}


def _components(
    mask: np.ndarray, min_area: float, max_area: float, join: int = 0
) -> list[tuple[float, ...]]:
    """(x, y, area) of the 8-connected components of a bool mask within the area range.

    With ``join`` > 0 the components are those of the mask dilated by ``join`` pixels, but the
    centroid and area count the mask's own pixels.
    """
    if not mask.any():
        return []
    grown = ndimage.binary_dilation(mask, _EIGHT, iterations=join) if join else mask
    labels, n = ndimage.label(grown, structure=_EIGHT)
    idx = np.flatnonzero(mask)
    lab = labels.ravel()[idx]
    width = mask.shape[1]
    area = np.bincount(lab, minlength=n + 1)[1:].astype(np.float64)
    sx = np.bincount(lab, weights=(idx % width).astype(np.float64), minlength=n + 1)[1:]
    sy = np.bincount(lab, weights=(idx // width).astype(np.float64), minlength=n + 1)[1:]
    keep = (area >= max(min_area, MIN_PIXELS)) & (area <= max_area)
    return [(sx[i] / area[i], sy[i] / area[i], area[i]) for i in np.flatnonzero(keep)]


# ----------------------------------------------------------------------------------------- RAM
def import_ocatari_game(game: Game) -> Any:
    """The OCAtari RAM module of ``game`` (``ocatari.ram.<name>``)."""
    return importlib.import_module(f"ocatari.ram.{game.name}")


def ram_objects(module: Any, game: Game, ram: np.ndarray) -> list[tuple[str, tuple[int, ...]]]:
    """(OCAtari class name, (x, y, w, h)) of every object OCAtari reads from ``ram``.

    A fresh object list each call, so the result is a function of ``ram`` alone. OCAtari was
    written for numpy 1 (uint8 arithmetic promoted to int), so RAM is passed as int64. It is read
    twice: OCAtari's readers create an object that appears (a ghost, a bullet) on one call and
    set its position on the next, as they do on consecutive frames in OCAtari itself.
    """
    objects = module._init_objects_ram(False)
    as_int = np.asarray(ram, dtype=np.int64)
    module._detect_objects_ram(objects, as_int, False)
    module._detect_objects_ram(objects, as_int, False)
    out: list[tuple[str, tuple[int, ...]]] = []
    for obj in objects:
        if obj is None or not obj or not getattr(obj, "visible", True):
            continue
        x, y, w, h = (int(v) for v in obj.xywh)
        out.append((str(obj.category), (x, y, w, h)))
    return out


def ram_slots(game: Game, objects: Sequence[tuple[str, tuple[int, ...]]]) -> dict[str, np.ndarray]:
    """RAM objects in the game's slots (same keys as :func:`perceive_objects`, plus ``boxes``).

    Objects whose centre lies outside the playfield are left out (perception does not look
    there), and so is an object that covers another of its category (boxes with an IoU of at
    least :data:`SAME_OBJECT_IOU`: Ms. Pac-Man's ghosts waiting on one spot look like one); a
    category's slots take its objects top to bottom, left to right.
    """
    k_total = game.num_slots
    positions = np.full((k_total, 2), np.nan)
    sizes = np.zeros(k_total)
    boxes = np.zeros((k_total, 4))
    present = np.zeros(k_total, dtype=bool)
    slot = 0
    for cat in game.categories:
        mine: list[tuple[float, ...]] = []
        for name, (x, y, w, h) in objects:
            cx, cy = x + w / 2, y + h / 2
            inside = game.rows[0] <= cy < game.rows[1] and game.cols[0] <= cx < game.cols[1]
            if name in cat.ram and inside and w > 0 and h > 0:
                mine.append((cx, cy, x, y, w, h))
        mine.sort(key=lambda o: (o[1], o[0]))
        distinct: list[tuple[float, ...]] = []
        for o in mine:
            if all(_iou(o[2:], d[2:]) < SAME_OBJECT_IOU for d in distinct):
                distinct.append(o)
        for i, o in enumerate(distinct[: cat.count]):
            positions[slot + i] = o[:2]
            sizes[slot + i] = o[4] * o[5]
            boxes[slot + i] = o[2:]
            present[slot + i] = True
        slot += cat.count
    return {"positions": positions, "sizes": sizes, "present": present, "boxes": boxes}


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def agreement(
    game: Game, perceived: dict[str, np.ndarray], ram: dict[str, np.ndarray]
) -> tuple[int, int]:
    """(matched, total) RAM objects that perception found, category by category.

    Within a category, RAM objects and perceived objects are matched greedily, nearest pair
    first; a pair matches when the centres are within ``max(AGREE_MIN_PX, AGREE_REL * larger
    side of the RAM box)`` native pixels. Both observations are in native pixels.
    """
    matched = total = 0
    slot = 0
    for cat in game.categories:
        sl = slice(slot, slot + cat.count)
        slot += cat.count
        r_pos = ram["positions"][sl][ram["present"][sl]]
        r_box = ram["boxes"][sl][ram["present"][sl]]
        p_pos = perceived["positions"][sl][perceived["present"][sl]]
        total += len(r_pos)
        if not len(r_pos) or not len(p_pos):
            continue
        dist = np.linalg.norm(r_pos[:, None] - p_pos[None], axis=-1)
        tol = np.maximum(AGREE_MIN_PX, AGREE_REL * r_box[:, 2:].max(axis=1))
        used_r: set[int] = set()
        used_p: set[int] = set()
        for flat in np.argsort(dist, axis=None):
            i, j = divmod(int(flat), dist.shape[1])
            if i in used_r or j in used_p or dist[i, j] > tol[i]:
                continue
            used_r.add(i)
            used_p.add(j)
            matched += 1
    return matched, total
