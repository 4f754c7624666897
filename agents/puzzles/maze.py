"""The maze task: read a whole maze in the env format, mark the cells of its shortest path.

Inputs are the env's cell codes (DESIGN 2): ``0`` empty, ``1`` wall, ``3`` goal, ``4`` start.
Mazes come from THE maze generator (:mod:`hrm_gym.maze.generator`), perfect or with loops,
fresh for every batch; the target is :func:`~hrm_gym.maze.generator.maze_solution_mask` (the
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
from hrm_gym.maze.generator import generate_mazes, maze_solution_mask

MIN_SIZE, MAX_SIZE = 5, 63  # what the checker reads; sampling uses odd sizes 7..31 by default
SAMPLE_SIZES = range(7, 32, 2)
ALLOWED_CODES = (0, WALL, GOAL, START)
#: Auxiliary classes: 0 wall, 1 goal, 2..5 expert move up/down/left/right, 6 open but cut off.
AUX_WALL, AUX_GOAL, AUX_CUT_OFF = 0, 1, 6

DEFAULT_PARAMS: dict[str, Any] = {
    "sizes": [11],  # odd sides drawn per batch
    "size_weights": None,  # relative weights of ``sizes`` (None: uniform)
    "loop_fraction": [0.0, 0.3],  # a float, or a [lo, hi] range drawn per maze
    "perfect_share": 0.0,  # share of the mazes drawn perfect (no loops) instead
    "min_path_length": None,
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
        sizes = out["sizes"]
        if isinstance(sizes, int):
            sizes = [sizes]
        if not isinstance(sizes, (list, tuple)) or not sizes:
            raise PuzzleError(f"maze sizes must be a non-empty list of odd sides, got {sizes!r}")
        for size in sizes:
            if not isinstance(size, int) or size not in SAMPLE_SIZES:
                raise PuzzleError(f"maze size {size!r} is not allowed; use odd sides {SAMPLE_SIZES.start}..31")
        out["sizes"] = list(sizes)
        weights = out["size_weights"]
        if weights is not None:
            if len(weights) != len(sizes) or any(w < 0 for w in weights) or sum(weights) <= 0:
                raise PuzzleError(f"maze size_weights={weights!r} must be {len(sizes)} non-negative numbers, not all 0")
            out["size_weights"] = [float(w) for w in weights]
        out["loop_fraction"] = list(_range(out["loop_fraction"], "loop_fraction", 0.0, 1.0))
        share = out["perfect_share"]
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
            raise PuzzleError(f"maze perfect_share must be a number in [0, 1], got {share!r}")
        out["perfect_share"] = float(share)
        if out["min_path_length"] is not None and (
            not isinstance(out["min_path_length"], int) or out["min_path_length"] < 0
        ):
            raise PuzzleError(f"maze min_path_length must be None or an int >= 0, got {out['min_path_length']!r}")
        return out

    def sample(self, rng: np.random.Generator, n: int, params: Mapping[str, Any]) -> np.ndarray:
        params = self.check_params(params)
        sizes = params["sizes"]
        weights = params["size_weights"]
        p = None if weights is None else np.asarray(weights) / np.sum(weights)
        size = int(sizes[int(rng.choice(len(sizes), p=p))])
        lo, hi = params["loop_fraction"]
        loops = rng.uniform(lo, hi, size=n) if hi > lo else np.full(n, lo)
        if params["perfect_share"] > 0.0:
            loops[rng.random(n) < params["perfect_share"]] = 0.0
        min_len = params["min_path_length"]
        if min_len is not None:
            min_len = min(min_len, (size - 1) * 2)  # small mazes in a mixed set stay possible
        return generate_mazes(rng, n, size, loops, min_len)

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


def next_move_classes(grid: np.ndarray) -> np.ndarray:
    """Per cell: 0 wall, 1 goal, 2-5 the expert's move (up, down, left, right), 6 cut off."""
    passable = grid != WALL
    goal = tuple(int(v) for v in np.argwhere(grid == GOAL)[0])
    dist = bfs_distances(passable, goal).astype(np.int64)
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
