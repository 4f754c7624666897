"""The maze task: read a whole maze in the env format, mark the cells of its shortest path.

Inputs are the env's cell codes (DESIGN 2): ``0`` empty, ``1`` wall, ``3`` goal, ``4`` start.
Mazes come from THE maze generator (:mod:`hrm_gym.maze.generator`), of any family (lattice
mazes perfect or with loops, rooms, random-obstacle grids) or a weighted ``mix`` of them, with
start and goal on lattice cells or any open cells, fresh for every batch; the target is :func:`~hrm_gym.maze.generator.maze_solution_mask` (the
shortest path the expert's up<down<left<right tie-break follows), so supervised answers and the
expert agree. A prediction is *valid* when it marks exactly one shortest start-goal path, any
of them. The auxiliary target is the expert's next move from every open cell (derived from the
BFS distance to the goal): a dense, size-independent signal of the distance field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.augment import NUM_SYMMETRIES, transform_grids
from agents.puzzles.base import PuzzleError, PuzzleTask, as_int_grids
from hrm_gym.core.grid import GOAL, START, UNREACHABLE, WALL, bfs_distances
from hrm_gym.maze.generator import LATTICE_FAMILIES, MAX_MAZE_SIZE, generate_mazes, maze_solution_mask, maze_spec

MIN_SIZE, MAX_SIZE = 5, MAX_MAZE_SIZE  # what the checker reads (sampling: SAMPLE_MIN..SAMPLE_MAX)
#: Sides a training or eval set may draw (larger grids are for testing: benchmarks/maze_families.py
#: draws them from the generator directly).
SAMPLE_MIN, SAMPLE_MAX = 5, 64
ALLOWED_CODES = (0, WALL, GOAL, START)
#: Auxiliary classes: 0 wall, 1 goal, 2..5 expert move up/down/left/right, 6 open but cut off.
AUX_WALL, AUX_GOAL, AUX_CUT_OFF = 0, 1, 6

#: What one kind of maze is drawn with; each key applies to the families named beside it and is
#: ignored by the others (so one set of top-level keys can serve every component of a ``mix``).
MAZE_KEYS: dict[str, Any] = {
    "family": "lattice",  # "lattice", "rooms" or "obstacles" (hrm_gym.maze.generator)
    "endpoints": None,  # "lattice" or "any" (None: the family's default; obstacles: any)
    "loop_fraction": [0.0, 0.3],  # lattice, rooms: a float, or a [lo, hi] range drawn per maze
    "perfect_share": 0.0,  # lattice, rooms: share of the mazes drawn perfect (no loops) instead
    "pillar_fraction": None,  # rooms: share of the inner pillars opened (None: 0.2)
    "wall_prob": None,  # obstacles: a float or a [lo, hi] range drawn per maze (None: [0.3, 0.5])
    "min_path_length": None,  # every family: shortest start-goal path in moves, at least
}
DEFAULT_PARAMS: dict[str, Any] = {
    "sizes": [11],  # sides drawn per batch: an int (square) or [height, width]; odd for lattice families
    "size_weights": None,  # relative weights of ``sizes`` (None: uniform)
    **MAZE_KEYS,
    # None, or a list of components {weight, <MAZE_KEYS>}: each maze of a batch is drawn from one,
    # picked by weight among those that fit the batch's size; unset keys come from the top level.
    "mix": None,
}


def _range(value: Any, name: str, low: float, high: float) -> tuple[float, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo = hi = float(value)
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        lo, hi = (float(v) for v in value)
    else:
        raise PuzzleError(f"maze {name} must be a number or a [lo, hi] pair, got {value!r}")
    if not low <= lo <= hi <= high:
        raise PuzzleError(f"maze {name}={value!r} must lie in [{low}, {high}] with lo <= hi")
    return lo, hi


def _check_sizes(sizes: Any) -> list[Any]:
    """The ``sizes`` list: ints (square sides) or [height, width] pairs, sides SAMPLE_MIN..SAMPLE_MAX."""
    if isinstance(sizes, int) and not isinstance(sizes, bool):
        sizes = [sizes]
    if not isinstance(sizes, (list, tuple)) or not sizes:
        raise PuzzleError(f"maze sizes must be a non-empty list of sides or [height, width] pairs, got {sizes!r}")
    out = []
    for size in sizes:
        sides = list(size) if isinstance(size, (list, tuple)) and len(size) == 2 else [size]
        if not all(isinstance(s, int) and not isinstance(s, bool) and SAMPLE_MIN <= s <= SAMPLE_MAX for s in sides):
            raise PuzzleError(
                f"maze size {size!r} is not allowed; use sides {SAMPLE_MIN}..{SAMPLE_MAX} (odd for the lattice "
                f"families), one int or a [height, width] pair"
            )
        out.append(sides[0] if len(sides) == 1 else sides)
    return out


def _shape(size: Any) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (size[0], size[1])


def _fits(component: Mapping[str, Any], shape: tuple[int, int]) -> bool:
    """Whether ``component`` can draw mazes of ``shape`` (the lattice families need odd sides)."""
    return component["family"] not in LATTICE_FAMILIES or (shape[0] % 2 == 1 and shape[1] % 2 == 1)


def _check_component(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One kind of maze with every key checked (the generator's own checks, as ``PuzzleError``)."""
    out = {key: part.get(key, default) for key, default in MAZE_KEYS.items()}
    out["loop_fraction"] = list(_range(out["loop_fraction"], f"{where}loop_fraction", 0.0, 1.0))
    share = out["perfect_share"]
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
        raise PuzzleError(f"maze {where}perfect_share must be a number in [0, 1], got {share!r}")
    out["perfect_share"] = float(share)
    min_len = out["min_path_length"]
    if min_len is not None and (isinstance(min_len, bool) or not isinstance(min_len, int) or min_len < 0):
        raise PuzzleError(f"maze {where}min_path_length must be None or an int >= 0, got {min_len!r}")
    family = out["family"]
    try:
        spec = maze_spec(
            15 if family in LATTICE_FAMILIES else 16,  # any size: the checks here do not depend on it
            family=family,
            endpoints=out["endpoints"],
            pillar_fraction=out["pillar_fraction"] if family == "rooms" else None,
            wall_prob=out["wall_prob"] if family == "obstacles" else None,
        )
    except ValueError as exc:
        raise PuzzleError(f"maze {where}{exc}") from None
    default_endpoints = "lattice" if family in LATTICE_FAMILIES else "any"
    out["endpoints"] = None if spec.endpoints == default_endpoints else spec.endpoints  # None: inherited as such
    out["pillar_fraction"] = spec.pillar_fraction if family == "rooms" else None
    out["wall_prob"] = list(spec.wall_prob) if family == "obstacles" else None
    return out


def _check_mix(params: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    mix = params["mix"]
    if mix is None:
        return None
    if not isinstance(mix, (list, tuple)) or not mix:
        raise PuzzleError(f"maze mix must be None or a non-empty list of components, got {mix!r}")
    allowed = ["weight", *MAZE_KEYS]
    checked = []
    for i, part in enumerate(mix):
        if not isinstance(part, Mapping) or set(part) - set(allowed):
            bad = sorted(set(part) - set(allowed)) if isinstance(part, Mapping) else part
            raise PuzzleError(f"maze mix[{i}] must be a mapping with keys from {allowed}; got {bad!r}")
        weight = part.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise PuzzleError(f"maze mix[{i}] weight must be a number >= 0, got {weight!r}")
        top = {key: params[key] for key in MAZE_KEYS}
        checked.append({"weight": float(weight), **_check_component({**top, **part}, f"mix[{i}] ")})
    if sum(c["weight"] for c in checked) <= 0:
        raise PuzzleError("maze mix weights are all 0")
    return checked


class MazeTask(PuzzleTask):
    name = "maze"
    generator_version = "maze-2"  # loop fraction drawn per maze (maze-1: per call); tie-break target
    input_vocab = 6  # the env's cell codes (0..5), so env observations can be read as is
    output_vocab = 2  # off / on the path
    aux_vocab = 7
    array_name = "layouts"

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - set(DEFAULT_PARAMS))
        if unknown:
            raise PuzzleError(f"unknown maze parameter(s) {unknown}; allowed: {sorted(DEFAULT_PARAMS)}")
        out = {**DEFAULT_PARAMS, **dict(params)}
        sizes = out["sizes"] = _check_sizes(out["sizes"])
        weights = out["size_weights"]
        if weights is not None:
            if len(weights) != len(sizes) or any(w < 0 for w in weights) or sum(weights) <= 0:
                raise PuzzleError(f"maze size_weights={weights!r} must be {len(sizes)} non-negative numbers, not all 0")
            out["size_weights"] = [float(w) for w in weights]
        out.update(_check_component(out, ""))
        out["mix"] = _check_mix(out)
        components = out["mix"] or [out]
        for size in sizes:
            if not any(_fits(c, _shape(size)) and c.get("weight", 1.0) > 0 for c in components):
                families = sorted({c["family"] for c in components})
                raise PuzzleError(
                    f"maze size {size!r} is not allowed for family {families}: the lattice families need odd sides"
                )
        return out

    def sample(self, rng: np.random.Generator, n: int, params: Mapping[str, Any]) -> np.ndarray:
        """``n`` mazes of one size (drawn per call); with a ``mix``, each maze's kind drawn by weight."""
        params = self.check_params(params)
        sizes = params["sizes"]
        weights = params["size_weights"]
        p = None if weights is None else np.asarray(weights) / np.sum(weights)
        shape = _shape(sizes[int(rng.choice(len(sizes), p=p))])
        if params["mix"] is None:
            return _sample_kind(rng, n, shape, params)
        parts = [c for c in params["mix"] if _fits(c, shape)]
        w = np.asarray([c["weight"] for c in parts])
        picks = rng.choice(len(parts), size=n, p=w / w.sum())
        out = np.empty((n, *shape), dtype=np.uint8)
        for k, part in enumerate(parts):
            rows = np.flatnonzero(picks == k)
            if rows.size:
                out[rows] = _sample_kind(rng, rows.size, shape, part)
        return out

    def check_inputs(self, inputs: Any, what: str = "layouts") -> np.ndarray:
        grids = as_int_grids(inputs, what, 0, 255)
        rows, cols = grids.shape[1:]
        if not (MIN_SIZE <= rows <= MAX_SIZE and MIN_SIZE <= cols <= MAX_SIZE):
            raise PuzzleError(f"{what}: maze grids must be {MIN_SIZE}..{MAX_SIZE} cells a side, got {rows}x{cols}")
        bad = ~np.isin(grids, ALLOWED_CODES)
        if bad.any():
            index, r, c = (int(v) for v in np.argwhere(bad)[0])
            raise PuzzleError(
                f"{what}[{index}] holds code {int(grids[index, r, c])} at ({r}, {c}); a maze layout "
                f"uses {list(ALLOWED_CODES)} (empty, wall, goal, start)"
            )
        for code, label in ((START, "start"), (GOAL, "goal")):
            counts = (grids == code).sum(axis=(1, 2))
            wrong = np.flatnonzero(counts != 1)
            if wrong.size:
                raise PuzzleError(
                    f"{what}[{int(wrong[0])}] has {int(counts[wrong[0]])} {label} cells (code {code}); exactly one needed"
                )
        return grids

    def targets(self, inputs: np.ndarray) -> np.ndarray:
        out = np.empty(inputs.shape, dtype=np.int64)
        for index, grid in enumerate(inputs):
            try:
                out[index] = maze_solution_mask(grid)
            except ValueError as exc:
                raise PuzzleError(f"maze {index}: {exc}") from exc
        return out

    def aux_targets(self, inputs: np.ndarray) -> np.ndarray:
        return np.stack([next_move_classes(grid) for grid in inputs])

    def augment(
        self, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """A random dihedral symmetry per maze. The target is recomputed: the tie-break path of
        the turned maze need not be the turned path (both are shortest)."""
        if inputs.shape[1] != inputs.shape[2]:
            return inputs, labels
        ks = rng.integers(0, NUM_SYMMETRIES, size=len(inputs))
        out = np.empty_like(inputs)
        for k in range(NUM_SYMMETRIES):
            chosen = ks == k
            if chosen.any():
                out[chosen] = transform_grids(inputs[chosen], k)
        return out, self.targets(out)

    def is_valid(self, puzzle: np.ndarray, prediction: np.ndarray) -> bool:
        return is_shortest_path(puzzle, prediction)


def _sample_kind(rng: np.random.Generator, n: int, shape: tuple[int, int], kind: Mapping[str, Any]) -> np.ndarray:
    """``n`` mazes of one checked kind (a component, or the top-level keys without a mix)."""
    min_len = kind["min_path_length"]
    if kind["family"] == "obstacles":
        return generate_mazes(rng, n, shape, 0.0, min_len, family="obstacles", wall_prob=kind["wall_prob"])
    lo, hi = kind["loop_fraction"]
    loops = rng.uniform(lo, hi, size=n) if hi > lo else np.full(n, lo)
    if kind["perfect_share"] > 0.0:
        loops[rng.random(n) < kind["perfect_share"]] = 0.0
    if min_len is not None:
        min_len = min(min_len, (min(shape) - 1) * 2)  # small mazes in a mixed set stay possible
    options = {"family": kind["family"], "endpoints": kind["endpoints"]}
    if kind["family"] == "rooms":
        options["pillar_fraction"] = kind["pillar_fraction"]
    return generate_mazes(rng, n, shape, loops, min_len, **options)


def next_move_classes(grid: np.ndarray) -> np.ndarray:
    """Per cell: 0 wall, 1 goal, 2-5 the expert's move (up, down, left, right), 6 cut off."""
    passable = grid != WALL
    goal = tuple(int(v) for v in np.argwhere(grid == GOAL)[0])
    return move_classes(bfs_distances(passable, goal), passable)


def move_classes(distances: np.ndarray, passable: np.ndarray) -> np.ndarray:
    """The classes of :func:`next_move_classes` from a map of BFS distances to the target (< 0:
    unreachable): each open cell's first move (up < down < left < right) one step closer."""
    dist = np.asarray(distances).astype(np.int64)
    height, width = dist.shape
    padded = np.full((height + 2, width + 2), -2, dtype=np.int64)
    padded[1:-1, 1:-1] = dist
    out = np.full(dist.shape, AUX_CUT_OFF, dtype=np.int64)
    out[~passable] = AUX_WALL
    undecided = passable & (dist > 0)
    want = dist - 1
    for action, (dr, dc) in enumerate(((-1, 0), (1, 0), (0, -1), (0, 1))):  # the tie-break order
        neighbour = padded[1 + dr : 1 + dr + height, 1 + dc : 1 + dc + width]
        hit = undecided & (neighbour == want)
        out[hit] = 2 + action
        undecided &= ~hit
    out[dist == 0] = AUX_GOAL
    return out


def is_shortest_path(grid: np.ndarray, prediction: np.ndarray) -> bool:
    """True when the cells marked in ``prediction`` are exactly one shortest start-goal path.

    A set of cells is one shortest path iff it holds L + 1 open cells (L = the shortest length),
    each cell lies on some shortest path (distance from start + distance to goal = L), their
    distances from the start are 0..L once each, and consecutive ones are neighbours.
    """
    grid = np.asarray(grid)
    marked = np.asarray(prediction) != 0
    if marked.shape != grid.shape:
        return False
    passable = grid != WALL
    start = tuple(int(v) for v in np.argwhere(grid == START)[0])
    goal = tuple(int(v) for v in np.argwhere(grid == GOAL)[0])
    from_start = bfs_distances(passable, start)
    to_goal = bfs_distances(passable, goal)
    length = int(from_start[goal])
    if length == UNREACHABLE or int(marked.sum()) != length + 1:
        return False
    if not (marked[start] and marked[goal]) or (marked & ~passable).any():
        return False
    cells = np.argwhere(marked)
    d_start = from_start[marked]
    if (d_start < 0).any() or ((d_start + to_goal[marked]) != length).any():
        return False
    order = np.argsort(d_start)
    if not np.array_equal(d_start[order], np.arange(length + 1)):
        return False
    steps = np.abs(np.diff(cells[order], axis=0)).sum(axis=1)
    return bool(np.all(steps == 1))
