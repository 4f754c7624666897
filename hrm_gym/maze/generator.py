"""The project's one maze generator, for every kind of maze, and the shortest-path facts every maze user needs.

The Maze environments, the maze expert and the supervised puzzle mode all draw their mazes
here, so a maze means the same thing everywhere. ``family`` picks the kind:

* ``"lattice"`` (the default): walls and passages on the odd lattice. Cells at odd (row, col)
  are always open, the cells between two lattice cells are walls or passages, the pillars (even,
  even) and the border are walls. A randomized depth-first search (recursive backtracker) carves
  a perfect maze (a spanning tree: one path between any two cells); ``loop_fraction`` then knocks
  out part of the remaining inner walls so that several paths, and several shortest ones, exist.
  Odd sides only.
* ``"rooms"``: a lattice maze with a share ``pillar_fraction`` of its inner pillars opened, each
  with its four side cells: 3x3 open blocks, rooms where blocks meet, many routes of equal
  length. Odd sides only.
* ``"obstacles"``: random-obstacle grids as in Lehnert et al. 2024 ("Beyond A*", the generator
  behind the HRM paper's Maze-Hard): every cell is a wall with probability ``p``, drawn per maze
  from ``wall_prob`` (default 0.3 to 0.5, their 30-50 % of the cells); no border (the grid's edge
  bounds it). Any sides, even ones included.

``endpoints`` places start (code 4) and goal (code 3): ``"lattice"`` on two distinct lattice cells
(the default of the lattice families), ``"any"`` on two distinct connected open cells (the only
choice for obstacles). Sizes are one side (square) or ``(height, width)``, 5 to 128 a side.

Path lengths are counted in moves (BFS steps) everywhere in this module: a path of length
``n`` covers ``n + 1`` cells, both ends included.

Speed matters (the puzzle mode wants thousands of mazes per second), so the inner loops run on
flat Python lists with per-size lookup tables, and each maze takes a handful of ``rng`` calls.
The lattice family with lattice endpoints draws exactly what it drew before the other families
existed, so seeds give the same mazes.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
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

#: Maze kinds (see the module docstring) and where start and goal may sit.
FAMILIES = ("lattice", "rooms", "obstacles")
LATTICE_FAMILIES = ("lattice", "rooms")
ENDPOINTS = ("lattice", "any")
#: Smallest maze side: the lattice needs at least two cells for a distinct start and goal.
MIN_MAZE_SIZE = 5
#: Largest maze side (a bound on memory and time, not on the method).
MAX_MAZE_SIZE = 128
#: Share of the inner pillars a ``"rooms"`` maze opens unless told.
DEFAULT_PILLAR_FRACTION = 0.2
#: Wall probability range of ``"obstacles"`` grids unless told: Lehnert et al.'s 30-50 % walls.
DEFAULT_WALL_PROB = (0.3, 0.5)
#: New mazes drawn before ``min_path_length`` gives up (obstacle grids: long paths are rare).
MAX_MAZE_ATTEMPTS = 1000
MAX_OBSTACLE_ATTEMPTS = 50_000
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


def check_maze_size(size: Any, family: str = "lattice") -> tuple[int, int]:
    """``(height, width)`` of ``size`` (one side or a pair), or a ``ValueError`` saying what is allowed.

    Sides run from 5 to 128; the lattice families need odd ones (walls on the odd lattice)."""
    if isinstance(size, (tuple, list, np.ndarray)):
        if len(size) != 2:
            raise ValueError(f"size must be one side or a (height, width) pair, got {size!r}")
        sides = (_as_int(size[0], "size"), _as_int(size[1], "size"))
    else:
        value = _as_int(size, "size")
        sides = (value, value)
    odd = family in LATTICE_FAMILIES
    for side in sides:
        if not MIN_MAZE_SIZE <= side <= MAX_MAZE_SIZE or (odd and side % 2 == 0):
            kind = f"an odd integer >= {MIN_MAZE_SIZE}" if odd else f"an integer >= {MIN_MAZE_SIZE}"
            raise ValueError(
                f"maze size must be {kind} and <= {MAX_MAZE_SIZE} for family {family!r}"
                f"{' (walls on the odd lattice)' if odd else ''}, got {size!r}"
            )
    return sides


def max_path_length(size: Any, family: str = "lattice", endpoints: str | None = None) -> int:
    """Upper bound of the start-goal path length (moves) of a generated ``size`` maze.

    Lattice endpoints on a lattice maze: reached only when the spanning tree is a single corridor
    through every lattice cell. Otherwise the cell count minus one (no path is longer).
    """
    height, width = check_maze_size(size, family)
    if family == "lattice" and endpoints in (None, "lattice"):
        return 2 * (((height - 1) // 2) * ((width - 1) // 2) - 1)
    return height * width - 1


def _check_fraction(value: Any, name: str) -> float:
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= fraction <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return fraction


def _check_loop_fraction(loop_fraction: Any) -> float:
    return _check_fraction(loop_fraction, "loop_fraction")


def check_wall_prob(wall_prob: Any) -> tuple[float, float]:
    """``(lo, hi)`` of a wall probability (one number or a ``[lo, hi]`` range, ``0 <= lo <= hi < 1``)."""
    if isinstance(wall_prob, (list, tuple)) and len(wall_prob) == 2:
        lo, hi = (_check_fraction(v, "wall_prob") for v in wall_prob)
    elif isinstance(wall_prob, (int, float, np.floating, np.integer)) and not isinstance(wall_prob, bool):
        lo = hi = _check_fraction(wall_prob, "wall_prob")
    else:
        raise ValueError(f"wall_prob must be a number or a [lo, hi] pair in [0, 1), got {wall_prob!r}")
    if not lo <= hi < 1.0:
        raise ValueError(f"wall_prob={wall_prob!r} must satisfy 0 <= lo <= hi < 1 (1: every cell a wall)")
    return lo, hi


@dataclass(frozen=True)
class MazeSpec:
    """Checked generator arguments (see :func:`maze_spec`)."""

    family: str
    height: int
    width: int
    endpoints: str
    loop_fraction: float
    pillar_fraction: float
    wall_prob: tuple[float, float]
    min_path_length: int | None

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width


def _only_for(value: Any, name: str, family: str, allowed: tuple[str, ...]) -> None:
    raise ValueError(f"{name}={value!r} applies to family {' or '.join(map(repr, allowed))} only, not {family!r}")


def maze_spec(
    size: Any,
    *,
    family: Any = "lattice",
    endpoints: Any = None,
    loop_fraction: Any = 0.0,
    pillar_fraction: Any = None,
    wall_prob: Any = None,
    min_path_length: Any = None,
) -> MazeSpec:
    """Every generator argument checked once: a :class:`MazeSpec`, or a ``ValueError`` naming the
    bad value and what is allowed. ``None`` means the family's default."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    height, width = check_maze_size(size, family)
    lattice = family in LATTICE_FAMILIES
    endpoints = ("lattice" if lattice else "any") if endpoints is None else endpoints
    if endpoints not in ENDPOINTS:
        raise ValueError(f"endpoints must be one of {list(ENDPOINTS)}, got {endpoints!r}")
    if endpoints == "lattice" and not lattice:
        raise ValueError(f"endpoints='lattice' needs a lattice family {list(LATTICE_FAMILIES)}; {family!r} takes 'any'")
    loops = _check_loop_fraction(loop_fraction)
    if loops and not lattice:
        _only_for(loop_fraction, "loop_fraction", family, LATTICE_FAMILIES)
    if pillar_fraction is None:
        pillars = DEFAULT_PILLAR_FRACTION if family == "rooms" else 0.0
    else:
        pillars = _check_fraction(pillar_fraction, "pillar_fraction")
        if pillars and family != "rooms":
            _only_for(pillar_fraction, "pillar_fraction", family, ("rooms",))
    if wall_prob is None:
        walls = DEFAULT_WALL_PROB if family == "obstacles" else (0.0, 0.0)
    elif family != "obstacles":
        _only_for(wall_prob, "wall_prob", family, ("obstacles",))
    else:
        walls = check_wall_prob(wall_prob)
    if min_path_length is not None:
        min_path_length = _as_int(min_path_length, "min_path_length")
        limit = max_path_length((height, width), family, endpoints)
        if not 0 <= min_path_length <= limit:
            raise ValueError(
                f"min_path_length must be between 0 and {limit} (the longest path a {height}x{width} "
                f"{family} maze can have, in moves), got {min_path_length}"
            )
    return MazeSpec(family, height, width, endpoints, loops, pillars, walls, min_path_length)


def _check_rng(rng: Any) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), got {type(rng).__name__}"
        )


# ---- per-size lookup tables ------------------------------------------------------------------
@lru_cache(maxsize=64)
def _lattice_tables(height: int, width: int):
    """Flat-index tables of the ``height x width`` lattice, built once per shape.

    Returns ``(cell_flat, neighbours, edges, template, pillars)``: the grid index of each lattice
    cell; per lattice cell, its ``(neighbour, wall index)`` pairs; every inner ``(a, b, wall
    index)`` edge; the grid bytes with every lattice cell open and every other cell wall; per inner
    pillar, ``(pillar index, its four (a, b, wall index) side edges)``.
    """
    kh, kw = (height - 1) // 2, (width - 1) // 2
    cell_flat = [(2 * (l // kw) + 1) * width + 2 * (l % kw) + 1 for l in range(kh * kw)]
    neighbours = []
    for l in range(kh * kw):
        i, j = divmod(l, kw)
        pairs = []
        for di, dj in ACTION_DELTAS:  # up, down, left, right
            ni, nj = i + di, j + dj
            if 0 <= ni < kh and 0 <= nj < kw:
                wall = (2 * i + 1 + di) * width + 2 * j + 1 + dj
                pairs.append((ni * kw + nj, wall))
        neighbours.append(tuple(pairs))
    edges = [(a, b, wall) for a in range(kh * kw) for b, wall in neighbours[a] if a < b]
    template = bytearray([WALL]) * (height * width)
    for flat in cell_flat:
        template[flat] = 0
    pillars = []
    for i in range(kh - 1):  # the pillar below-right of lattice cell (i, j)
        for j in range(kw - 1):
            a, b, c, d = i * kw + j, i * kw + j + 1, (i + 1) * kw + j, (i + 1) * kw + j + 1
            pillar = (2 * i + 2) * width + 2 * j + 2
            sides = ((a, b, pillar - width), (c, d, pillar + width), (a, c, pillar - 1), (b, d, pillar + 1))
            pillars.append((pillar, sides))
    return cell_flat, tuple(neighbours), tuple(edges), bytes(template), tuple(pillars)


# ---- the lattice families ------------------------------------------------------------------
def _carve(rng: np.random.Generator, spec: MazeSpec, loop_fraction: float):
    """One lattice maze without start and goal: ``(grid bytearray, lattice adjacency lists)``."""
    cell_flat, neighbours, edges, template, _ = _lattice_tables(spec.height, spec.width)
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
                _open_edge(grid, adjacency, remaining[index])
    return grid, adjacency


def _open_edge(grid: bytearray, adjacency: list[list[int]], edge: tuple[int, int, int]) -> None:
    a, b, wall = edge
    if grid[wall] == WALL:
        grid[wall] = 0
        adjacency[a].append(b)
        adjacency[b].append(a)


def _open_pillars(rng: np.random.Generator, spec: MazeSpec, grid: bytearray, adjacency: list[list[int]]) -> None:
    """Open the rounded ``pillar_fraction`` share of the inner pillars, each with its four sides.

    Lattice distances stay exact: two opposite corners of an opened 3x3 block are 4 moves apart
    through the pillar and through a side alike."""
    pillars = _lattice_tables(spec.height, spec.width)[4]
    count = math.floor(spec.pillar_fraction * len(pillars) + 0.5)
    if not count:
        return
    for index in rng.choice(len(pillars), size=count, replace=False).tolist():
        pillar, sides = pillars[index]
        grid[pillar] = 0
        for edge in sides:
            _open_edge(grid, adjacency, edge)


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


def _place_on_lattice(
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


# ---- any open cells: bitset BFS -------------------------------------------------------------
# A grid is one Python int, bit r * stride + c per cell, with stride = width + 1: the always-closed
# guard column stops the left/right shifts from wrapping, and bits shifted off either end drop out,
# so one BFS level is a few whole-grid operations (several times faster than a cell queue).
def _bit_bfs(open_bits: int, stride: int, source: int, radius: int) -> tuple[int, int, int, int]:
    """``(cells reached, cells within radius moves, farthest cells, eccentricity)`` from ``source``."""
    seen = frontier = 1 << source
    within = seen if radius == 0 else 0
    depth = 0
    while True:
        grow = ((frontier << 1) | (frontier >> 1) | (frontier << stride) | (frontier >> stride)) & open_bits & ~seen
        if not grow:
            return seen, within or seen, frontier, depth
        seen |= grow
        frontier = grow
        depth += 1
        if depth == radius:
            within = seen


def _cells_of(bits: int) -> list[int]:
    """Indices of the set bits of ``bits``, in increasing order."""
    data = np.frombuffer(bits.to_bytes((bits.bit_length() + 7) // 8, "little"), dtype=np.uint8)
    return np.flatnonzero(np.unpackbits(data, bitorder="little")).tolist()


def _pick(rng: np.random.Generator, items: list[int]) -> int:
    return items[int(rng.random() * len(items))]


def _place_far(
    rng: np.random.Generator, open_bits: int, stride: int, cells: list[int], length: int
) -> tuple[int, int] | None:
    """Two open cells at least ``length`` (>= 1) moves apart, or ``None`` (draw a new grid).

    Two BFS sweeps from a uniform open cell find the far ends ``b``, ``c`` of its region; the
    start is uniform among the cells at least ``length`` from ``b`` or ``c`` (cells that surely
    have a partner), the goal uniform among the cells at least ``length`` from the start. A
    region whose eccentricity from the first cell is below ``length / 2`` cannot hold such a pair.
    """
    for _ in range(STARTS_PER_MAZE):
        _, _, far, ecc = _bit_bfs(open_bits, stride, _pick(rng, cells), -1)
        if 2 * ecc >= length:
            break
    else:
        return None
    b = (far & -far).bit_length() - 1
    seen_b, near_b, far_b, ecc_b = _bit_bfs(open_bits, stride, b, length - 1)
    if ecc_b < length:
        return None
    seen_c, near_c, _, _ = _bit_bfs(open_bits, stride, (far_b & -far_b).bit_length() - 1, length - 1)
    start = _pick(rng, _cells_of((seen_b & ~near_b) | (seen_c & ~near_c)))
    seen_s, near_s, _, _ = _bit_bfs(open_bits, stride, start, length - 1)
    return start, _pick(rng, _cells_of(seen_s & ~near_s))


def _place_anywhere(rng: np.random.Generator, grid: bytearray, spec: MazeSpec) -> tuple[int, int] | None:
    """Start and goal grid indices on any open cells (connected, distinct), or ``None``."""
    height, width = spec.shape
    stride = width + 1
    passable = np.zeros((height, stride), dtype=bool)
    passable[:, :width] = np.frombuffer(grid, dtype=np.uint8).reshape(height, width) != WALL
    cells = np.flatnonzero(passable).tolist()
    if len(cells) < 2:
        return None
    if spec.min_path_length is None and spec.family in LATTICE_FAMILIES:  # one region: any pair
        i, j = rng.choice(len(cells), size=2, replace=False).tolist()
        ends = cells[i], cells[j]
    else:
        open_bits = int.from_bytes(np.packbits(passable.ravel(), bitorder="little").tobytes(), "little")
        ends = _place_far(rng, open_bits, stride, cells, max(1, spec.min_path_length or 0))
        if ends is None:
            return None
    return tuple((flat // stride) * width + flat % stride for flat in ends)


# ---- the generator ---------------------------------------------------------------------------
def _obstacle_grid(rng: np.random.Generator, spec: MazeSpec) -> bytearray:
    lo, hi = spec.wall_prob
    p = lo if hi <= lo else float(rng.uniform(lo, hi))
    return bytearray((rng.random(spec.height * spec.width) < p).astype(np.uint8).tobytes())


def _draw(rng: np.random.Generator, spec: MazeSpec, loop_fraction: float) -> bytearray | None:
    """One maze with start and goal, or ``None`` when it has no pair far enough apart."""
    if spec.family == "obstacles":
        grid = _obstacle_grid(rng, spec)
        ends = _place_anywhere(rng, grid, spec)
    else:
        grid, adjacency = _carve(rng, spec, loop_fraction)
        if spec.family == "rooms":
            _open_pillars(rng, spec, grid, adjacency)
        if spec.endpoints == "lattice":
            ends = _place_on_lattice(rng, adjacency, spec.min_path_length)
            if ends is not None:
                cell_flat = _lattice_tables(spec.height, spec.width)[0]
                ends = cell_flat[ends[0]], cell_flat[ends[1]]
        else:
            ends = _place_anywhere(rng, grid, spec)
    if ends is None:
        return None
    grid[ends[0]] = START
    grid[ends[1]] = GOAL
    return grid


def _generate_into(rng: np.random.Generator, out: np.ndarray, spec: MazeSpec, loop_fraction: float) -> None:
    attempts = MAX_OBSTACLE_ATTEMPTS if spec.family == "obstacles" else MAX_MAZE_ATTEMPTS
    for _ in range(attempts):
        grid = _draw(rng, spec, loop_fraction)
        if grid is not None:
            out[...] = np.frombuffer(grid, dtype=np.uint8).reshape(spec.shape)
            return
    raise RuntimeError(
        f"no {spec.height}x{spec.width} {spec.family} maze (loop_fraction={loop_fraction}, "
        f"endpoints={spec.endpoints!r}) has a start-goal path of at least {spec.min_path_length} moves "
        f"after {attempts} mazes; lower min_path_length (mazes of this size rarely exceed a fraction "
        f"of {max_path_length(spec.shape, spec.family, spec.endpoints)} moves)"
    )


def generate_maze(
    rng: np.random.Generator,
    size: int | tuple[int, int],
    loop_fraction: float = 0.0,
    min_path_length: int | None = None,
    **options: Any,
) -> np.ndarray:
    """A random ``(height, width) uint8`` maze: walls (1), empty (0), one start (4), one goal (3).

    Args:
        rng: the only source of randomness (an env passes ``self.np_random``).
        size: one side (square) or ``(height, width)``, 5 to 128; odd for the lattice families.
        loop_fraction: lattice families: share of the inner walls left standing by the perfect
            maze that are knocked out (rounded to the nearest count): 0 gives a perfect maze (one
            path), 1 opens every passage between lattice cells.
        min_path_length: if given, the shortest start-goal path has at least this many moves.
            Lattice endpoints: the start cell is drawn again (a few times per maze), then the
            maze, until one fits; the goal is uniform among the cells far enough from the start.
            Any endpoints: see :func:`_place_far`.
        options: ``family`` ("lattice", "rooms", "obstacles"), ``endpoints`` ("lattice", "any"),
            ``pillar_fraction`` (rooms), ``wall_prob`` (obstacles: a number or a [lo, hi] range
            drawn per maze); see :func:`maze_spec`.

    Without ``min_path_length`` the start and goal are a uniform pair of distinct lattice cells
    (lattice endpoints) or open cells (any; obstacles: connected ones).
    """
    _check_rng(rng)
    spec = maze_spec(size, loop_fraction=loop_fraction, min_path_length=min_path_length, **options)
    out = np.empty(spec.shape, dtype=np.uint8)
    _generate_into(rng, out, spec, spec.loop_fraction)
    return out


def generate_mazes(
    rng: np.random.Generator,
    n: int,
    size: int | tuple[int, int],
    loop_fraction: float | Sequence[float] = 0.0,
    min_path_length: int | None = None,
    **options: Any,
) -> np.ndarray:
    """``n`` mazes as one ``(n, height, width) uint8`` array (arguments as :func:`generate_maze`).

    ``loop_fraction`` is one number for every maze or a sequence of ``n`` numbers, one per maze
    (so that one set can hold perfect mazes and mazes with loops side by side).
    Identical to stacking ``n`` successive :func:`generate_maze` calls on the same ``rng``, so
    a dataset does not depend on how it was batched; the checks run once per batch.
    """
    count = _as_int(n, "n")
    if count < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    _check_rng(rng)
    if np.ndim(loop_fraction) == 0:
        spec = maze_spec(size, loop_fraction=loop_fraction, min_path_length=min_path_length, **options)
        fractions = [spec.loop_fraction] * count
    else:
        if np.ndim(loop_fraction) != 1 or len(loop_fraction) != count:
            raise ValueError(
                f"loop_fraction must be one number or a sequence of n={count} numbers (one per "
                f"maze), got shape {np.shape(loop_fraction)}"
            )
        fractions = [_check_loop_fraction(fraction) for fraction in loop_fraction]
        spec = maze_spec(size, loop_fraction=max(fractions, default=0.0), min_path_length=min_path_length, **options)
    out = np.empty((count, *spec.shape), dtype=np.uint8)
    for index, fraction in enumerate(fractions):
        _generate_into(rng, out[index], spec, fraction)
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
