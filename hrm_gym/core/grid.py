"""The grid contract shared by every grid environment, the expert and the agents.

Cell codes, actions, movement and shortest-path distances live here once, so Foraging, Chase
and Maze (and everything that reads their observations) agree on them by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

# Cell codes (DESIGN 2). One token vocabulary of six fits every grid environment.
EMPTY, WALL, AGENT, FOOD, NEST, ENEMY = 0, 1, 2, 3, 4, 5
GOAL, START = FOOD, NEST  # the maze names for the same codes
NUM_CELL_CODES = 6
CELL_NAMES = {EMPTY: "empty", WALL: "wall", AGENT: "agent", FOOD: "food", NEST: "nest", ENEMY: "enemy"}

# Actions: 0 up (row - 1), 1 down (row + 1), 2 left (col - 1), 3 right (col + 1).
UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
NUM_ACTIONS = 4
ACTION_NAMES = ("up", "down", "left", "right")
ACTION_DELTAS: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))

Position = tuple[int, int]

#: Distance value of a cell from which the target cannot be reached (or that is a wall).
UNREACHABLE = -1


def move(passable: np.ndarray, position: Position, action: int) -> Position:
    """Where ``action`` takes an agent at ``position``: a wall or the edge leaves it in place."""
    dr, dc = ACTION_DELTAS[action]
    r, c = position[0] + dr, position[1] + dc
    height, width = passable.shape
    if 0 <= r < height and 0 <= c < width and passable[r, c]:
        return (r, c)
    return position


def find_cells(grid: np.ndarray, code: int) -> list[Position]:
    """All cells of ``grid`` holding ``code``, in row-major order."""
    rows, cols = np.nonzero(grid == code)
    return [(int(r), int(c)) for r, c in zip(rows, cols)]


def bfs_distances(passable: np.ndarray, source: Position) -> np.ndarray:
    """Shortest-path step counts from ``source`` to every cell (4-connected moves).

    Moves are reversible, so this is also the distance from every cell *to* ``source``.
    Walls and cells cut off from ``source`` get :data:`UNREACHABLE`.
    """
    height, width = passable.shape
    stride = width + 2  # a wall border: neighbours need no bounds checks
    padded = np.zeros((height + 2, stride), dtype=bool)
    padded[1:-1, 1:-1] = passable
    open_cells = padded.ravel().tolist()
    start = (source[0] + 1) * stride + source[1] + 1
    if not open_cells[start]:
        raise ValueError(f"BFS source {source} is not a passable cell")
    dist = [UNREACHABLE] * len(open_cells)
    dist[start] = 0
    frontier, depth = [start], 0
    while frontier:
        depth += 1
        next_frontier = []
        for i in frontier:
            for j in (i - stride, i + stride, i - 1, i + 1):
                if open_cells[j] and dist[j] < 0:
                    dist[j] = depth
                    next_frontier.append(j)
        frontier = next_frontier
    return np.asarray(dist, dtype=np.int32).reshape(height + 2, stride)[1:-1, 1:-1].copy()


def optimal_actions(distances: np.ndarray, position: Position) -> list[int]:
    """Every action that brings ``position`` one step closer to the BFS source of ``distances``.

    Empty when ``position`` is the source itself or cannot reach it.
    """
    here = int(distances[position])
    if here <= 0:
        return []
    height, width = distances.shape
    actions = []
    for action, (dr, dc) in enumerate(ACTION_DELTAS):
        r, c = position[0] + dr, position[1] + dc
        if 0 <= r < height and 0 <= c < width and distances[r, c] == here - 1:
            actions.append(action)
    return actions


def optimal_action_mask(distances: np.ndarray, position: Position) -> int:
    """:func:`optimal_actions` as a 4-bit mask: bit ``a`` is set when action ``a`` is optimal."""
    mask = 0
    for action in optimal_actions(distances, position):
        mask |= 1 << action
    return mask


def greedy_action(distances: np.ndarray, position: Position) -> int:
    """The optimal action with the fixed tie-break: the first of up, down, left, right.

    Raises ``ValueError`` when no action makes progress (at the source, or unreachable).
    """
    actions = optimal_actions(distances, position)
    if not actions:
        raise ValueError(f"no move from {position} gets closer to the target")
    return actions[0]


def shortest_path(passable: np.ndarray, start: Position, goal: Position) -> list[Position]:
    """The cells of the shortest ``start`` -> ``goal`` path chosen by :func:`greedy_action`.

    Includes both ends. Raises ``ValueError`` when ``goal`` cannot be reached.
    """
    distances = bfs_distances(passable, goal)
    if distances[start] == UNREACHABLE:
        raise ValueError(f"{goal} cannot be reached from {start}")
    path = [start]
    position = start
    while position != goal:
        position = move(passable, position, greedy_action(distances, position))
        path.append(position)
    return path


def validate_layout(
    layout: object,
    *,
    shape: tuple[int, int] | None = None,
    required: Mapping[int, int],
    allowed: Iterable[int],
) -> np.ndarray:
    """Check a user-supplied layout and return it as a fresh ``uint8`` array.

    ``required`` maps a cell code to how many cells must hold it (e.g. one nest, one food);
    ``allowed`` lists every code that may appear. Raises ``ValueError`` saying what is wrong.
    """
    try:
        array = np.asarray(layout)
    except Exception as exc:  # e.g. ragged nested lists
        raise ValueError(f"layout is not a rectangular array: {exc}") from exc
    if array.ndim != 2:
        raise ValueError(f"layout must be a 2-D array, got shape {array.shape}")
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"layout must have shape {tuple(shape)}, got {array.shape}")
    if array.dtype.kind not in "iub":
        if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise ValueError(f"layout must hold integer cell codes, got dtype {array.dtype}")
    allowed_codes = sorted(set(allowed))
    bad = np.setdiff1d(np.unique(array), allowed_codes)
    if bad.size:
        names = ", ".join(f"{code} ({CELL_NAMES[code]})" for code in allowed_codes)
        raise ValueError(f"layout holds cell codes {bad.tolist()}; allowed here: {names}")
    for code, count in required.items():
        found = int(np.count_nonzero(array == code))
        if found != count:
            raise ValueError(
                f"layout must hold exactly {count} {CELL_NAMES[code]} cell(s) (code {code}), found {found}"
            )
    return array.astype(np.uint8)


def require_reachable(passable: np.ndarray, source: Position, targets: Mapping[str, Position]) -> np.ndarray:
    """BFS distances from ``source``; raise ``ValueError`` naming any target it cannot reach."""
    distances = bfs_distances(passable, source)
    for name, position in targets.items():
        if distances[position] == UNREACHABLE:
            raise ValueError(f"layout is unsolvable: the {name} at {position} cannot be reached from {source}")
    return distances
