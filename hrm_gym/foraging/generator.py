"""Random Foraging layouts (DESIGN 1.A): one nest, one food, 5-10 short wall segments."""

from __future__ import annotations

import numpy as np

from hrm_gym.core.grid import EMPTY, FOOD, NEST, UNREACHABLE, WALL, bfs_distances

#: Give up after this many rejected draws: only absurd settings (a tiny grid) get there.
MAX_ATTEMPTS = 1000


def draw_walls(
    rng: np.random.Generator, size: int, wall_segments: tuple[int, int], segment_length: tuple[int, int]
) -> np.ndarray:
    """A ``(size, size) uint8`` grid of straight wall segments, each horizontal or vertical at random
    (inclusive ranges of their count and length); everything else empty."""
    grid = np.zeros((size, size), dtype=np.uint8)
    for _ in range(int(rng.integers(wall_segments[0], wall_segments[1] + 1))):
        length = int(rng.integers(segment_length[0], segment_length[1] + 1))
        if rng.random() < 0.5:  # horizontal
            r = int(rng.integers(0, size))
            c = int(rng.integers(0, size - length + 1))
            grid[r, c : c + length] = WALL
        else:
            r = int(rng.integers(0, size - length + 1))
            c = int(rng.integers(0, size))
            grid[r : r + length, c] = WALL
    return grid


def generate_foraging_layout(
    rng: np.random.Generator,
    size: int = 16,
    wall_segments: tuple[int, int] = (5, 10),
    segment_length: tuple[int, int] = (2, 4),
) -> np.ndarray:
    """A ``(size, size) uint8`` layout with walls, one nest and one food reachable from it.

    ``wall_segments`` and ``segment_length`` are inclusive ranges. Layouts whose food cannot be
    reached from the nest are drawn again, so every layout returned is solvable.
    """
    for _ in range(MAX_ATTEMPTS):
        grid = draw_walls(rng, size, wall_segments, segment_length)
        free = np.flatnonzero(grid == EMPTY)
        if free.size < 2:
            continue
        nest, food = (divmod(int(i), size) for i in rng.choice(free, size=2, replace=False))
        if bfs_distances(grid != WALL, nest)[food] == UNREACHABLE:
            continue
        grid[nest] = NEST
        grid[food] = FOOD
        return grid
    raise RuntimeError(f"no solvable Foraging layout found in {MAX_ATTEMPTS} draws (size={size})")
