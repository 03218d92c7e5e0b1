"""Tile sheets for grid-world envs (maze, blocks): vectorised rendering and template perception.

A grid world draws every cell of a ``grid x grid`` board as one of M tiles (``t x t`` pixel
sprites). Rendering is then a gather of tiles by a label grid, and perception is template matching
per cell: the nearest tile (mean squared RGB error) wins if it is within a tolerance. On rendered
frames the right tile matches with error 0, so perception is exact; on generated frames a cell
that resembles no tile is reported as unknown instead of guessed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from panbench.errors import ConfigError

#: label of a cell whose nearest tile is farther than the tolerance
UNKNOWN = -1

#: a cell matches its nearest tile if the root-mean-square RGB distance per pixel is at most this
DEFAULT_TOLERANCE = 100.0

#: per-pixel RGB distances are clipped here before averaging, so a few stray pixels (salt noise,
#: a smear from a neighbour) cannot veto a cell that otherwise matches
PIXEL_CLIP = 200.0


def check_seed(seed: Any, env_name: str) -> int:
    """Returns ``seed`` as an int, or raises :class:`ConfigError` unless it is a non-negative int."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(
            f"Expected a non-negative integer seed for env {env_name!r}, but got {seed!r}."
        )
    return int(seed)


def tile_size(resolution: int, grid: int, env_name: str, min_tile: int = 4) -> int:
    """The side ``t`` of a cell in pixels, checking that cells are whole pixels and large enough.

    Raises:
        ConfigError: ``resolution`` is not a multiple of ``grid`` or gives cells under ``min_tile``.
    """
    if resolution % grid or resolution // grid < min_tile:
        raise ConfigError(
            f"Env {env_name!r} with a {grid}x{grid} grid needs a resolution that is a multiple of "
            f"{grid} with cells of at least {min_tile} px (resolution >= {grid * min_tile}), "
            f"but got {resolution}."
        )
    return resolution // grid


def shape_mask(shape: str, t: int) -> np.ndarray:
    """A bool [t,t] sprite mask, drawn analytically so it stays recognisable from t = 4 upwards.

    Args:
        shape: ``"square"`` (filled), ``"circle"`` (filled disk), ``"ring"`` (square outline with
            a square hole), ``"dot"`` (small centred disk, narrower than the cell).
        t: tile side in pixels.
    """
    # A thin margin separates touching sprites visually once tiles are big enough to afford it.
    margin = t // 8
    centre = (np.arange(t) + 0.5) - t / 2  # pixel-centre offsets from the tile centre
    dy, dx = np.meshgrid(centre, centre, indexing="ij")
    half = t / 2 - margin
    if shape == "square":
        return (np.abs(dx) < half) & (np.abs(dy) < half)
    if shape == "circle":
        return dx**2 + dy**2 <= half**2
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= half
    if shape == "ring":
        # Edge to edge with a hole half the tile wide: thick enough to survive a blur.
        return (np.abs(dx) >= t / 4) | (np.abs(dy) >= t / 4)
    if shape == "dot":
        # Inset by a quarter tile (at least one pixel) so whatever lies under the dot shows round it.
        radius = t / 2 - max(1, t // 4) + 0.3
        return dx**2 + dy**2 <= radius**2
    raise ValueError(f"Unknown sprite shape {shape!r}.")


def paint(
    background: tuple[int, int, int], layers: list[tuple[str, tuple[int, int, int]]], t: int
) -> np.ndarray:
    """A uint8 [t,t,3] tile: ``background`` with each ``(shape, colour)`` layer drawn on top."""
    tile = np.empty((t, t, 3), dtype=np.uint8)
    tile[:] = background
    for shape, colour in layers:
        tile[shape_mask(shape, t)] = colour
    return tile


class TileSheet:
    """The M tiles of a grid world and the two operations on them.

    Args:
        tiles: uint8 [M,t,t,3], tile ``m`` drawn for label ``m``; no two tiles may be equal.
        grid: cells per side of the board; frames are ``grid * t`` pixels square.
        tolerance: a cell matches its nearest tile only if the root-mean-square per-pixel RGB
            distance to it, each pixel's distance clipped at :data:`PIXEL_CLIP`, is at most this.
    """

    def __init__(self, tiles: np.ndarray, grid: int, tolerance: float = DEFAULT_TOLERANCE) -> None:
        self.tiles = np.ascontiguousarray(tiles, dtype=np.uint8)
        self.tiles.setflags(write=False)
        self.grid = grid
        self.tile = int(tiles.shape[1])
        self.resolution = grid * self.tile
        flat = self.tiles.reshape(len(tiles), -1).astype(np.float64)
        self._flat = flat
        self._sq = (flat**2).sum(1)
        self._max_err = tolerance**2
        # Cell centres in pixel coordinates (pixel j has centre j), shared by all cells' rows/cols.
        self._centre_offset = (self.tile - 1) / 2

    def render(self, labels: np.ndarray) -> np.ndarray:
        """Draws label grids.

        Args:
            labels: int [B,G,G], the tile index of every cell.

        Returns:
            uint8 [B,H,W,3] with H = W = G * t.
        """
        b = labels.shape[0]
        g, t = self.grid, self.tile
        cells = self.tiles[labels]  # [B,G,G,t,t,3]
        return cells.transpose(0, 1, 3, 2, 4, 5).reshape(b, g * t, g * t, 3)

    def match(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Matches every cell of a frame against the tiles.

        Args:
            frame: uint8 [H,W,3] with H = W = G * t.

        Returns:
            ``(labels, sse)``: int [G,G] nearest tile per cell by squared error
            (:data:`UNKNOWN` where even the nearest is beyond the tolerance) and float [G,G,M]
            squared error to every tile.
        """
        g, t = self.grid, self.tile
        patches = frame.reshape(g, t, g, t, 3).transpose(0, 2, 1, 3, 4).reshape(g * g, -1)
        patches = patches.astype(np.float64)
        # ||p - q||^2 expanded into one matrix product; float64 keeps it exact for uint8 inputs.
        sse = (patches**2).sum(1)[:, None] - 2.0 * patches @ self._flat.T + self._sq[None, :]
        np.maximum(sse, 0.0, out=sse)
        labels = sse.argmin(1)
        # Acceptance uses a robust error (clipped per pixel) against the nearest tile only.
        diff = (patches - self._flat[labels]).reshape(len(patches), -1, 3)
        err = np.minimum((diff**2).sum(-1), PIXEL_CLIP**2).mean(1)
        labels[err > self._max_err] = UNKNOWN
        return labels.reshape(g, g), sse.reshape(g, g, -1)

    def best_cell(
        self, labels: np.ndarray, sse: np.ndarray, wanted: tuple[int, ...]
    ) -> tuple[int, int] | None:
        """The cell labelled with one of ``wanted`` that matches it best, or None if there is none.

        Args:
            labels: int [G,G] from :meth:`match`.
            sse: float [G,G,M] from :meth:`match`.
            wanted: tile indices that all show the entity looked for.
        """
        mask = np.isin(labels, wanted)
        if not mask.any():
            return None
        err = np.where(mask, sse[..., list(wanted)].min(-1), np.inf)
        r, c = np.unravel_index(int(err.argmin()), err.shape)
        return int(r), int(c)

    def centres(self, cells: np.ndarray) -> np.ndarray:
        """Pixel centres (x, y) float [...,2] of cells given as int [...,2] (row, col)."""
        cells = np.asarray(cells, dtype=np.float64)
        return cells[..., ::-1] * self.tile + self._centre_offset

    def cells_of(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of :meth:`centres`: nearest cells of pixel positions.

        Args:
            positions: float [K,2] (x, y), possibly NaN.

        Returns:
            ``(cells, valid)``: int [K,2] (row, col), clipped to the board, and bool [K], False
            where a position is NaN or infinite (its cell is then (-1, -1)).
        """
        pos = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        valid = np.asarray(np.isfinite(pos).all(axis=1), dtype=bool)
        rc = np.full((len(pos), 2), -1, dtype=np.int64)
        if valid.any():
            scaled = np.rint((pos[valid, ::-1] - self._centre_offset) / self.tile)
            rc[valid] = np.clip(scaled, 0, self.grid - 1).astype(np.int64)
        return rc, valid
