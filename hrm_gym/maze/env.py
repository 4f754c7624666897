"""Maze navigation: walk from the start (code 4) to the goal (code 3) through a maze.

``HRMMaze-v0`` draws mazes of any family of :mod:`hrm_gym.maze.generator` (the project's one
maze generator): lattice mazes (the default), lattice mazes with rooms, random-obstacle grids;
start and goal on lattice cells or on any open cell; any size from 5 to 128 a side, rectangular
included. ``HRMMaze-Hard-v0`` is the HRM paper's Maze-Hard (see :data:`HARD_PRESET`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hrm_gym.core.env import GridWorldEnv
from hrm_gym.core.grid import (
    EMPTY,
    GOAL,
    START,
    WALL,
    Position,
    bfs_distances,
    find_cells,
    require_reachable,
    validate_layout,
)
from hrm_gym.maze.generator import generate_maze, maze_spec

GOAL_REWARD = 1.0
DEFAULT_SIZE = 11
#: Maze-Hard as the HRM paper builds it (Wang et al. 2025, "Hierarchical Reasoning Model"; ``sapientinc/HRM``
#: ``dataset/build_maze_dataset.py`` reads the resulting ``maze-30x30-hard-1k`` set): "the
#: instance generation procedure of Lehnert et al. [Beyond A*, 2024] with an additional filter
#: to retain only those instances whose difficulty exceeds 110", difficulty being the length of
#: the shortest path. Lehnert et al.'s generator (``facebookresearch/searchformer``,
#: ``searchformer/maze.py``) walls a random set of cells of a borderless grid, their count
#: uniform in 30-50 % of the cells, and puts start and goal on two random distinct open cells
#: joined by a path. Here: 30x30, every cell a wall with probability p ~ U[0.3, 0.5] per maze
#: (the same share, drawn cell by cell), start and goal on connected open cells, shortest path
#: >= 111 moves. Such grids are rare (about one grid in two hundred holds a
#: pair that far apart), so generation runs at tens of mazes per second, not thousands.
HARD_SIZE = 30
HARD_MIN_PATH_LENGTH = 111
HARD_PRESET: dict[str, Any] = {
    "size": HARD_SIZE,
    "family": "obstacles",
    "endpoints": "any",
    "wall_prob": (0.3, 0.5),
    "min_path_length": HARD_MIN_PATH_LENGTH,
    "loop_fraction": 0.0,
    "pillar_fraction": 0.0,
}


class MazeEnv(GridWorldEnv):
    """``HRMMaze-v0`` / ``HRMMaze-Hard-v0``: reach the goal of a maze; +1 on arrival.

    Args:
        size: one side (square) or ``(height, width)``, 5 to 128 (default 11; 30 with
            ``hard``); odd sides for the lattice families. ``height`` / ``width`` say the same.
        hard: the Maze-Hard preset (:data:`HARD_PRESET`). A conflicting generator kwarg raises
            ``ValueError`` (use ``HRMMaze-v0`` with those kwargs for other mixes).
        family: ``"lattice"`` (default: walls on the odd lattice), ``"rooms"`` (lattice with
            opened pillars) or ``"obstacles"`` (random-obstacle grids).
        endpoints: ``"lattice"`` (start and goal on lattice cells; the lattice families'
            default) or ``"any"`` (any open cells; the only choice for obstacles).
        loop_fraction: lattice families: share of the perfect maze's remaining inner walls
            knocked out to make loops (default 0: perfect mazes, exactly one path).
        pillar_fraction: rooms: share of the inner pillars opened (default 0.2).
        wall_prob: obstacles: wall probability, a number or a ``[lo, hi]`` range drawn per maze
            (default [0.3, 0.5]).
        min_path_length: random mazes only: the shortest start-goal path has at least this many
            moves (default none; 111 with ``hard``).
        step_penalty: subtracted from the reward at every step, the last one included.
        max_steps: steps before truncation; default ``height * width``, a function of the size
            only (a bound derived from the maze would leak the answer). It is at least twice
            the longest path a lattice maze can have.
        render_mode: ``"human"``, ``"rgb_array"``, ``"ansi"`` or ``None``.

    The agent starts on the start cell (drawn as the agent while it stands there). ``reset``
    accepts ``options={"layout": grid}``: a ``(height, width)`` array of codes 0, 1, 3, 4 with
    one start and one reachable goal (``min_path_length`` is not imposed on given layouts).
    ``info``: ``agent_pos``, ``start_pos``, ``goal_pos``, ``steps`` and
    ``optimal_path_length`` (moves on a shortest start-goal path, for path-ratio metrics).
    """

    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        hard: bool = False,
        loop_fraction: float | None = None,
        min_path_length: int | None = None,
        step_penalty: float = 0.0,
        max_steps: int | None = None,
        render_mode: str | None = None,
        *,
        family: str | None = None,
        endpoints: str | None = None,
        pillar_fraction: float | None = None,
        wall_prob: float | tuple[float, float] | None = None,
        height: int | None = None,
        width: int | None = None,
    ):
        size = _size(size, height, width)
        options = {
            "size": size,
            "family": family,
            "endpoints": endpoints,
            "loop_fraction": loop_fraction,
            "pillar_fraction": pillar_fraction,
            "wall_prob": wall_prob,
            "min_path_length": min_path_length,
        }
        if hard:
            options = {name: _preset(value, HARD_PRESET.get(name), name) for name, value in options.items()}
        options["size"] = DEFAULT_SIZE if options["size"] is None else options["size"]
        options["family"] = "lattice" if options["family"] is None else options["family"]
        options["loop_fraction"] = options["loop_fraction"] or 0.0
        spec = maze_spec(**options)
        max_steps = spec.height * spec.width if max_steps is None else max_steps
        super().__init__(
            spec.height, spec.width, max_steps=max_steps, step_penalty=step_penalty, render_mode=render_mode
        )
        self.maze_spec = spec
        self.size = spec.height if spec.height == spec.width else spec.shape
        self.hard = bool(hard)
        self.family, self.endpoints = spec.family, spec.endpoints
        self.loop_fraction = spec.loop_fraction
        self.min_path_length = spec.min_path_length
        self.start_pos: Position = (0, 0)
        self.goal_pos: Position = (0, 0)
        self.optimal_path_length = 0

    # Layout ------------------------------------------------------------------------------
    _allowed_cells = (EMPTY, WALL, GOAL, START)

    def _generate_layout(self) -> np.ndarray:
        spec = self.maze_spec
        return generate_maze(
            self.np_random,
            spec.shape,
            spec.loop_fraction,
            spec.min_path_length,
            family=spec.family,
            endpoints=spec.endpoints,
            pillar_fraction=spec.pillar_fraction,
            wall_prob=spec.wall_prob if spec.family == "obstacles" else None,
        )

    def _check_layout(self, layout: Any) -> np.ndarray:
        grid = validate_layout(layout, shape=(self.height, self.width), required={}, allowed=self._allowed_cells)
        for code, name in ((START, "start"), (GOAL, "goal")):
            found = int(np.count_nonzero(grid == code))
            if found != 1:
                raise ValueError(f"layout must hold exactly one {name} cell (code {code}), found {found}")
        start, goal = find_cells(grid, START)[0], find_cells(grid, GOAL)[0]
        require_reachable(grid != WALL, start, {"goal": goal})
        return grid

    # Rules -------------------------------------------------------------------------------
    def _start_episode(self, layout: np.ndarray) -> None:
        self.start_pos = find_cells(layout, START)[0]
        self.goal_pos = find_cells(layout, GOAL)[0]
        self.agent_pos = self.start_pos
        self.optimal_path_length = int(bfs_distances(self._passable, self.goal_pos)[self.start_pos])

    def _after_move(self, previous: Position, action: int) -> tuple[float, bool]:
        if self.agent_pos == self.goal_pos:
            return GOAL_REWARD, True
        return 0.0, False

    def _info(self) -> dict[str, Any]:
        return {
            "agent_pos": self.agent_pos,
            "start_pos": self.start_pos,
            "goal_pos": self.goal_pos,
            "steps": self.steps,
            "optimal_path_length": self.optimal_path_length,
        }

    def _status(self) -> str:
        return f"step {self.steps}/{self.max_steps}  shortest path {self.optimal_path_length}"


def _size(size: Any, height: Any, width: Any) -> Any:
    """``size``, or ``(height, width)`` when those are given instead (both together)."""
    if height is None and width is None:
        return size
    if size is not None:
        raise ValueError(f"give size={size!r} or height/width (got height={height!r}, width={width!r}), not both")
    if height is None or width is None:
        raise ValueError(f"height and width go together, got height={height!r}, width={width!r}")
    return (height, width)


def _preset(value: Any, preset: Any, name: str) -> Any:
    """The Maze-Hard preset for ``name``; an explicit different value is an error."""
    as_tuple = tuple(value) if isinstance(value, (list, tuple)) else None
    same = value == preset or as_tuple is not None and as_tuple in (preset, (preset, preset))
    if value is None or same:
        return preset
    raise ValueError(
        f"HRMMaze-Hard-v0 fixes {name}={preset!r} (got {value!r}); for other settings use "
        f"HRMMaze-v0 with size, family, endpoints, wall_prob, loop_fraction and min_path_length"
    )
