"""Perfect lattice mazes from generators the project never trains on, for out-of-distribution tests.

Every maze the project trains on comes from one randomized depth-first search
(:mod:`hrm_gym.maze.generator`): long winding corridors, few dead ends. A model may learn that
generator's habits rather than maze solving, so these generators draw mazes in the same grid
format and on the same odd lattice (lattice cells at odd (row, col) open, pillars and border
walls, start 4 and goal 3 on two distinct lattice cells drawn uniformly) but with other
spanning-tree statistics:

* ``kruskal``: randomized Kruskal (edges in random order, union-find): many short dead ends.
* ``prim``: randomized Prim (a random wall of the frontier at a time): many short dead ends,
  paths radiating from the first cell.
* ``wilson``: Wilson's loop-erased random walks: a uniform spanning tree of the lattice.
* ``division``: recursive division (an open chamber split by a wall with one gap, again and
  again): long straight walls, a few long corridors.

If the ``maze-dataset`` package (Ivanitskiy et al.) is importable, its generators are offered
too as ``md_dfs``, ``md_prim``, ``md_wilson`` (perfect mazes) and ``md_perc`` (its DFS plus
percolation: loops); they draw from Python's and NumPy's global random state, which is seeded
from ``rng`` for each maze and restored afterwards.
"""

from __future__ import annotations

import importlib.util
import operator
import random
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from hrm_gym.core.grid import GOAL, START, WALL
from hrm_gym.maze.generator import MAX_MAZE_SIZE, MIN_MAZE_SIZE

Shape = tuple[int, int]
Edge = tuple[int, int, int]  # (lattice cell a, lattice cell b, grid index of the wall between)

#: ``maze-dataset`` generators offered when it is installed: our name -> (its name, its kwargs).
MAZE_DATASET_GENERATORS: dict[str, tuple[str, dict[str, Any]]] = {
    "md_dfs": ("gen_dfs", {}),
    "md_prim": ("gen_prim", {}),
    "md_wilson": ("gen_wilson", {}),
    "md_perc": ("gen_dfs_percolation", {"p": 0.4}),
}


def check_shape(shape: Any) -> Shape:
    """``(height, width)`` of ``shape``, or a ``ValueError`` saying what is allowed."""
    try:
        height, width = (operator.index(side) for side in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a (height, width) pair of integers, got {shape!r}") from None
    for side in (height, width):
        if side % 2 == 0 or not MIN_MAZE_SIZE <= side <= MAX_MAZE_SIZE:
            raise ValueError(
                f"maze sides must be odd integers from {MIN_MAZE_SIZE} to {MAX_MAZE_SIZE} "
                f"(walls on the odd lattice), got {height}x{width}"
            )
    return height, width


@lru_cache(maxsize=32)
def _tables(height: int, width: int) -> tuple[tuple[int, ...], tuple[tuple[Edge, ...], ...], tuple[Edge, ...]]:
    """Grid index of each lattice cell, each cell's edges, every edge once."""
    kh, kw = (height - 1) // 2, (width - 1) // 2
    cells = tuple((2 * (l // kw) + 1) * width + 2 * (l % kw) + 1 for l in range(kh * kw))
    edges = []
    for l, flat in enumerate(cells):
        i, j = divmod(l, kw)
        if i + 1 < kh:
            edges.append((l, l + kw, flat + width))
        if j + 1 < kw:
            edges.append((l, l + 1, flat + 1))
    around: list[list[Edge]] = [[] for _ in cells]
    for a, b, wall in edges:
        around[a].append((a, b, wall))
        around[b].append((b, a, wall))
    return cells, tuple(map(tuple, around)), tuple(edges)


def _closed(height: int, width: int) -> bytearray:
    """Every lattice cell open, every other cell wall."""
    grid = bytearray([WALL]) * (height * width)
    for flat in _tables(height, width)[0]:
        grid[flat] = 0
    return grid


def _kruskal(rng: np.random.Generator, height: int, width: int) -> bytearray:
    cells, _, edges = _tables(height, width)
    grid = _closed(height, width)
    parent = list(range(len(cells)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    joined = 0
    for index in rng.permutation(len(edges)).tolist():
        a, b, wall = edges[index]
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[ra] = rb
            grid[wall] = 0
            joined += 1
            if joined == len(cells) - 1:
                break
    return grid


def _prim(rng: np.random.Generator, height: int, width: int) -> bytearray:
    cells, around, _ = _tables(height, width)
    grid = _closed(height, width)
    first = int(rng.integers(len(cells)))
    inside = [False] * len(cells)
    inside[first] = True
    frontier = list(around[first])
    while frontier:
        index = int(rng.integers(len(frontier)))
        frontier[index], frontier[-1] = frontier[-1], frontier[index]
        _, b, wall = frontier.pop()
        if not inside[b]:
            inside[b] = True
            grid[wall] = 0
            frontier.extend(edge for edge in around[b] if not inside[edge[1]])
    return grid


def _wilson(rng: np.random.Generator, height: int, width: int) -> bytearray:
    cells, around, _ = _tables(height, width)
    grid = _closed(height, width)
    n_cells = len(cells)
    in_tree = [False] * n_cells
    in_tree[int(rng.integers(n_cells))] = True
    exit_edge: list[Edge | None] = [None] * n_cells
    uniforms: list[float] = []
    for start in rng.permutation(n_cells).tolist():
        cell = start
        while not in_tree[cell]:  # the walk; a revisit overwrites the exit, which erases the loop
            if not uniforms:
                uniforms = rng.random(4 * n_cells).tolist()
            options = around[cell]
            exit_edge[cell] = options[int(uniforms.pop() * len(options))]
            cell = exit_edge[cell][1]
        cell = start
        while not in_tree[cell]:
            in_tree[cell] = True
            _, cell, wall = exit_edge[cell]
            grid[wall] = 0
    return grid


def _division(rng: np.random.Generator, height: int, width: int) -> bytearray:
    kh, kw = (height - 1) // 2, (width - 1) // 2
    grid = bytearray([WALL]) * (height * width)
    for r in range(1, height - 1):  # everything inside the border open but the pillars
        for c in range(1, width - 1):
            if r % 2 or c % 2:
                grid[r * width + c] = 0
    chambers = [(0, 0, kh, kw)]  # (top cell row, left cell column, rows, columns) in lattice cells
    while chambers:
        i0, j0, h, w = chambers.pop()
        if h < 2 or w < 2:
            continue
        if h > w or (h == w and rng.random() < 0.5):  # a wall across, below cell row i0 + cut
            cut, gap = int(rng.integers(h - 1)), int(rng.integers(w))
            row = 2 * (i0 + cut) + 2
            for j in range(j0, j0 + w):
                if j != j0 + gap:
                    grid[row * width + 2 * j + 1] = WALL
            chambers += [(i0, j0, cut + 1, w), (i0 + cut + 1, j0, h - cut - 1, w)]
        else:  # a wall down, right of cell column j0 + cut
            cut, gap = int(rng.integers(w - 1)), int(rng.integers(h))
            col = 2 * (j0 + cut) + 2
            for i in range(i0, i0 + h):
                if i != i0 + gap:
                    grid[(2 * i + 1) * width + col] = WALL
            chambers += [(i0, j0, h, cut + 1), (i0, j0 + cut + 1, h, w - cut - 1)]
    return grid


def _maze_dataset(name: str) -> Callable[[np.random.Generator, int, int], bytearray]:
    """A ``maze-dataset`` generator, its connection list drawn onto our grid."""
    function, kwargs = MAZE_DATASET_GENERATORS[name]

    def carve(rng: np.random.Generator, height: int, width: int) -> bytearray:
        from maze_dataset.generation import LatticeMazeGenerators, generators

        seed = int(rng.integers(2**31))
        saved = random.getstate(), np.random.get_state(), getattr(generators, "numpy_rng", None)
        random.seed(seed)
        np.random.seed(seed)
        if saved[2] is not None:  # newer releases draw from a module-level Generator
            generators.numpy_rng = np.random.default_rng(seed)
        try:
            maze = getattr(LatticeMazeGenerators, function)(np.array([(height - 1) // 2, (width - 1) // 2]), **kwargs)
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            if saved[2] is not None:
                generators.numpy_rng = saved[2]
        down, right = np.asarray(maze.connection_list, dtype=bool)  # (i, j)-(i+1, j) and (i, j)-(i, j+1)
        out = np.frombuffer(_closed(height, width), dtype=np.uint8).reshape(height, width).copy()
        out[2:-1:2, 1::2][down[:-1]] = 0
        out[1::2, 2:-1:2][right[:, :-1]] = 0
        return bytearray(out.tobytes())

    return carve


CARVERS: dict[str, Callable[[np.random.Generator, int, int], bytearray]] = {
    "kruskal": _kruskal,
    "prim": _prim,
    "wilson": _wilson,
    "division": _division,
}
if importlib.util.find_spec("maze_dataset") is not None:
    CARVERS.update((name, _maze_dataset(name)) for name in MAZE_DATASET_GENERATORS)


def _one(
    carve: Callable[[np.random.Generator, int, int], bytearray],
) -> Callable[[np.random.Generator, Shape], np.ndarray]:
    def generate(rng: np.random.Generator, shape: Shape) -> np.ndarray:
        """One ``(height, width) uint8`` maze with start and goal on two distinct lattice cells."""
        height, width = check_shape(shape)
        grid = carve(rng, height, width)
        cells = _tables(height, width)[0]
        start, goal = rng.choice(len(cells), size=2, replace=False).tolist()
        grid[cells[start]], grid[cells[goal]] = START, GOAL
        return np.frombuffer(grid, dtype=np.uint8).reshape(height, width).copy()

    return generate


#: Name -> ``generate(rng, (height, width))``, one maze a call.
FOREIGN_GENERATORS: dict[str, Callable[[np.random.Generator, Shape], np.ndarray]] = {
    name: _one(carve) for name, carve in CARVERS.items()
}


def generate_foreign(name: str, rng: np.random.Generator, n: int, shape: tuple[int, int]) -> np.ndarray:
    """``n`` mazes of generator ``name`` as one ``(n, height, width) uint8`` array (as ``generate_mazes``)."""
    if name not in FOREIGN_GENERATORS:
        hint = "" if name not in MAZE_DATASET_GENERATORS else " (pip install maze-dataset enables the md_* ones)"
        raise ValueError(f"foreign maze generator must be one of {list(FOREIGN_GENERATORS)}, got {name!r}{hint}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    height, width = check_shape(shape)
    out = np.empty((int(n), height, width), dtype=np.uint8)
    for index in range(int(n)):
        out[index] = FOREIGN_GENERATORS[name](rng, (height, width))
    return out
