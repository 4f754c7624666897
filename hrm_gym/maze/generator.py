"""The project's one maze generator, and the shortest-path facts every maze user needs.

The Maze environments, the maze expert and the supervised puzzle mode all draw their mazes
here, so a maze means the same thing everywhere. Mazes live on the odd lattice: cells at odd
(row, col) are always open, the cells between two lattice cells are walls or passages, the
border is wall. A randomized depth-first search (recursive backtracker) carves a perfect maze
(a spanning tree: exactly one path between any two cells); ``loop_fraction`` then knocks out
part of the remaining inner walls so that several paths, and several shortest ones, exist.
Start (code 4) and goal (code 3) sit on distinct lattice cells.

Path lengths are counted in moves (BFS steps) everywhere in this module: a path of length
``n`` covers ``n + 1`` cells, both ends included.

Speed matters (the puzzle mode wants thousands of mazes per second), so the inner loops run on
flat Python lists with per-size lookup tables, and each maze takes a handful of ``rng`` calls.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from hrm_gym.core.grid import (
    ACTION_DELTAS,
    GOAL,
    START,
    UNREACHABLE,
    WALL,
    Position,
    bfs_distances,
)

#: Smallest maze side: the lattice needs at least two cells for a distinct start and goal.
MIN_MAZE_SIZE = 5
#: New mazes drawn (each with several start cells tried) before ``min_path_length`` gives up.
MAX_MAZE_ATTEMPTS = 1000
#: Start cells tried on one maze before a new maze is drawn for ``min_path_length``.
STARTS_PER_MAZE = 4


# ---- argument checks -----------------------------------------------------------------------
def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def check_maze_size(size: Any) -> int:
    """``size`` as an int, or a ``ValueError``: the lattice needs an odd side of at least 5."""
    value = _as_int(size, "size")
    if value < MIN_MAZE_SIZE or value % 2 == 0:
        raise ValueError(f"maze size must be an odd integer >= {MIN_MAZE_SIZE}, got {size!r}")
    return value


def max_path_length(size: int) -> int:
    """Upper bound of the start-goal path length (moves) of a generated ``size`` maze.

    Reached only when the spanning tree is a single corridor through every lattice cell.
    """
    cells = ((check_maze_size(size) - 1) // 2) ** 2
    return 2 * (cells - 1)


def _check_loop_fraction(loop_fraction: Any) -> float:
    try:
        fraction = float(loop_fraction)
    except (TypeError, ValueError):
        raise ValueError(f"loop_fraction must be a number in [0, 1], got {loop_fraction!r}") from None
    if not 0.0 <= fraction <= 1.0:  # also rejects NaN
        raise ValueError(f"loop_fraction must be in [0, 1], got {loop_fraction!r}")
    return fraction


def _check_arguments(rng: Any, size: Any, loop_fraction: Any, min_path_length: Any) -> tuple[int, float, int | None]:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    size = check_maze_size(size)
    fraction = _check_loop_fraction(loop_fraction)
    if min_path_length is not None:
        min_path_length = _as_int(min_path_length, "min_path_length")
        limit = max_path_length(size)
        if not 0 <= min_path_length <= limit:
            raise ValueError(
                f"min_path_length must be between 0 and {limit} (the longest path a {size}x{size} "
                f"maze can have, in moves), got {min_path_length}"
            )
    return size, fraction, min_path_length


# ---- per-size lookup tables ------------------------------------------------------------------
@lru_cache(maxsize=64)
def _lattice_tables(size: int):
    """Flat-index tables of the ``size`` lattice, built once per size.

    Returns ``(cell_flat, neighbours, edges, template)``: the grid index of each lattice cell;
    per lattice cell, its ``(neighbour, wall index)`` pairs; every inner ``(a, b, wall index)``
    edge; and the grid bytes with every lattice cell open and every other cell wall.
    """
    k = (size - 1) // 2
    cell_flat = [(2 * (l // k) + 1) * size + 2 * (l % k) + 1 for l in range(k * k)]
    neighbours = []
    for l in range(k * k):
        i, j = divmod(l, k)
        pairs = []
        for di, dj in ACTION_DELTAS:  # up, down, left, right
            ni, nj = i + di, j + dj
            if 0 <= ni < k and 0 <= nj < k:
                wall = (2 * i + 1 + di) * size + 2 * j + 1 + dj
                pairs.append((ni * k + nj, wall))
        neighbours.append(tuple(pairs))
    edges = [(a, b, wall) for a in range(k * k) for b, wall in neighbours[a] if a < b]
    template = bytearray([WALL]) * (size * size)
    for flat in cell_flat:
        template[flat] = 0
    return cell_flat, tuple(neighbours), tuple(edges), bytes(template)


# ---- the generator ---------------------------------------------------------------------------
def _carve(rng: np.random.Generator, size: int, loop_fraction: float):
    """One maze without start and goal: ``(grid bytearray, lattice adjacency lists)``."""
    cell_flat, neighbours, edges, template = _lattice_tables(size)
    n_cells = len(cell_flat)
    grid = bytearray(template)
    adjacency: list[list[int]] = [[] for _ in range(n_cells)]
    # One draw per carved passage plus one for the root: the DFS carves exactly n_cells - 1.
    uniforms = rng.random(n_cells).tolist()
    visited = [False] * n_cells
    root = int(uniforms[0] * n_cells)
    visited[root] = True
    stack = [root]
    draw = 1
    while stack:
        current = stack[-1]
        options = [pair for pair in neighbours[current] if not visited[pair[0]]]
        if not options:
            stack.pop()
            continue
        nxt, wall = options[int(uniforms[draw] * len(options))]
        draw += 1
        visited[nxt] = True
        grid[wall] = 0
        adjacency[current].append(nxt)
        adjacency[nxt].append(current)
        stack.append(nxt)
    if loop_fraction > 0.0:
        remaining = [edge for edge in edges if grid[edge[2]] == WALL]
        n_loops = math.floor(loop_fraction * len(remaining) + 0.5)
        if n_loops:
            for index in rng.choice(len(remaining), size=n_loops, replace=False).tolist():
                a, b, wall = remaining[index]
                grid[wall] = 0
                adjacency[a].append(b)
                adjacency[b].append(a)
    return grid, adjacency


def _lattice_distances(adjacency: list[list[int]], source: int) -> list[int]:
    """BFS distance in lattice steps (one lattice step = two moves) from ``source``."""
    dist = [-1] * len(adjacency)
    dist[source] = 0
    frontier = [source]
    depth = 0
    while frontier:
        depth += 1
        nxt = []
        for node in frontier:
            for other in adjacency[node]:
                if dist[other] < 0:
                    dist[other] = depth
                    nxt.append(other)
        frontier = nxt
    return dist


def _place_ends(
    rng: np.random.Generator, adjacency: list[list[int]], min_path_length: int | None
) -> tuple[int, int] | None:
    """Start and goal lattice cells, or ``None`` when this maze has no pair long enough."""
    n_cells = len(adjacency)
    if min_path_length is None:
        start, goal = rng.choice(n_cells, size=2, replace=False).tolist()
        return start, goal
    min_steps = (min_path_length + 1) // 2  # lattice steps; every path has an even length
    starts = rng.random(STARTS_PER_MAZE).tolist()
    for u in starts:
        start = int(u * n_cells)
        dist = _lattice_distances(adjacency, start)
        far = [cell for cell, d in enumerate(dist) if d >= min_steps and cell != start]
        if far:
            return start, far[int(rng.random() * len(far))]
    return None


def _generate_into(
    rng: np.random.Generator,
    out: np.ndarray,
    size: int,
    loop_fraction: float,
    min_path_length: int | None,
) -> None:
    cell_flat = _lattice_tables(size)[0]
    for _ in range(MAX_MAZE_ATTEMPTS):
        grid, adjacency = _carve(rng, size, loop_fraction)
        ends = _place_ends(rng, adjacency, min_path_length)
        if ends is None:
            continue
        grid[cell_flat[ends[0]]] = START
        grid[cell_flat[ends[1]]] = GOAL
        out[...] = np.frombuffer(grid, dtype=np.uint8).reshape(size, size)
        return
    raise RuntimeError(
        f"no {size}x{size} maze with loop_fraction={loop_fraction} has a start-goal path of "
        f"at least {min_path_length} moves after {MAX_MAZE_ATTEMPTS} mazes; lower "
        f"min_path_length (mazes of this size rarely exceed a fraction of "
        f"{max_path_length(size)} moves)"
    )


def generate_maze(
    rng: np.random.Generator,
    size: int,
    loop_fraction: float = 0.0,
    min_path_length: int | None = None,
) -> np.ndarray:
    """A random ``(size, size) uint8`` maze: walls (1), empty (0), one start (4), one goal (3).

    Args:
        rng: the only source of randomness (an env passes ``self.np_random``).
        size: odd side length >= 5 (border walls, lattice cells at odd coordinates).
        loop_fraction: share of the inner walls left standing by the perfect maze that are
            knocked out (rounded to the nearest count): 0 gives a perfect maze (one path),
            1 opens every passage between lattice cells.
        min_path_length: if given, the shortest start-goal path has at least this many moves.
            The start cell is drawn again (a few times per maze), then the maze, until one
            fits; the goal is uniform among the cells far enough from the start.

    Without ``min_path_length`` the start and goal are a uniform pair of distinct lattice cells.
    """
    size, loop_fraction, min_path_length = _check_arguments(rng, size, loop_fraction, min_path_length)
    out = np.empty((size, size), dtype=np.uint8)
    _generate_into(rng, out, size, loop_fraction, min_path_length)
    return out


def generate_mazes(
    rng: np.random.Generator,
    n: int,
    size: int,
    loop_fraction: float | Sequence[float] = 0.0,
    min_path_length: int | None = None,
) -> np.ndarray:
    """``n`` mazes as one ``(n, size, size) uint8`` array (arguments as :func:`generate_maze`).

    ``loop_fraction`` is one number for every maze or a sequence of ``n`` numbers, one per maze
    (so that one set can hold perfect mazes and mazes with loops side by side).
    Identical to stacking ``n`` successive :func:`generate_maze` calls on the same ``rng``, so
    a dataset does not depend on how it was batched; the checks run once per batch.
    """
    count = _as_int(n, "n")
    if count < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if np.ndim(loop_fraction) == 0:
        size, fraction, min_path_length = _check_arguments(rng, size, loop_fraction, min_path_length)
        fractions = [fraction] * count
    else:
        if np.ndim(loop_fraction) != 1 or len(loop_fraction) != count:
            raise ValueError(
                f"loop_fraction must be one number or a sequence of n={count} numbers (one per "
                f"maze), got shape {np.shape(loop_fraction)}"
            )
        size, _, min_path_length = _check_arguments(rng, size, 0.0, min_path_length)
        fractions = [_check_loop_fraction(fraction) for fraction in loop_fraction]
    out = np.empty((count, size, size), dtype=np.uint8)
    for index, fraction in enumerate(fractions):
        _generate_into(rng, out[index], size, fraction, min_path_length)
    return out


# ---- shortest paths --------------------------------------------------------------------------
def _ends(grid: Any) -> tuple[np.ndarray, Position, Position]:
    """The grid as a 2-D array with its single start and goal cells, or a ``ValueError``."""
    array = np.asarray(grid)
    if array.ndim != 2:
        raise ValueError(f"maze grid must be a 2-D array, got shape {array.shape}")
    ends = []
    for code, name in ((START, "start"), (GOAL, "goal")):
        cells = np.flatnonzero(array.ravel() == code)
        if cells.size != 1:
            raise ValueError(f"maze grid must hold exactly one {name} cell (code {code}), found {cells.size}")
        ends.append(divmod(int(cells[0]), array.shape[1]))
    return array, ends[0], ends[1]


def shortest_path_length(grid: Any) -> int:
    """Moves on a shortest start -> goal path of ``grid`` (any layout in the env format).

    Raises ``ValueError`` when the start or goal is missing or duplicated, or the goal cannot
    be reached.
    """
    array, start, goal = _ends(grid)
    length = int(bfs_distances(array != WALL, goal)[start])
    if length == UNREACHABLE:
        raise ValueError(f"the goal at {goal} cannot be reached from the start at {start}")
    return length


def maze_solution_mask(grid: Any) -> np.ndarray:
    """``bool`` mask of the cells on the shortest start -> goal path, both ends included.

    Among several shortest paths it marks the one :func:`hrm_gym.core.grid.shortest_path`
    follows (at every cell the first of up, down, left, right that gets closer to the goal),
    the expert's tie-break, so a supervised target and the expert's moves agree. Raises
    ``ValueError`` as :func:`shortest_path_length` does.
    """
    array, start, goal = _ends(grid)
    height, width = array.shape
    dist = bfs_distances(array != WALL, goal).ravel().tolist()
    here = start[0] * width + start[1]
    if dist[here] == UNREACHABLE:
        raise ValueError(f"the goal at {goal} cannot be reached from the start at {start}")
    mask = np.zeros(height * width, dtype=bool)
    mask[here] = True
    while dist[here] > 0:
        row, col = divmod(here, width)
        want = dist[here] - 1
        # up, down, left, right: the tie-break order of hrm_gym.core.grid.greedy_action
        if row > 0 and dist[here - width] == want:
            here -= width
        elif row < height - 1 and dist[here + width] == want:
            here += width
        elif col > 0 and dist[here - 1] == want:
            here -= 1
        elif col < width - 1 and dist[here + 1] == want:
            here += 1
        else:  # impossible for BFS distances; a loud error beats an endless loop
            raise AssertionError(f"no neighbour of {divmod(here, width)} is closer to the goal")
        mask[here] = True
    return mask.reshape(height, width)
