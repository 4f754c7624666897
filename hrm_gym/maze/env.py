"""Maze navigation: walk from the start (code 4) to the goal (code 3) through a maze.

``HRMMaze-v0`` draws mazes of a chosen odd size; ``HRMMaze-Hard-v0`` follows the Maze-Hard
benchmark: the largest size (31x31, the odd lattice's neighbour of its 30x30) and only mazes
whose shortest start-goal path is long. Mazes come from :mod:`hrm_gym.maze.generator`, the
project's one maze generator.
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
from hrm_gym.maze.generator import generate_maze, max_path_length

GOAL_REWARD = 1.0
DEFAULT_SIZE = 11
MIN_SIZE, MAX_SIZE = 7, 31
#: Maze-Hard preset. The threshold (in moves) keeps the longest third of start-goal pairs of
#: perfect 31x31 mazes: over 10,000 uniform pairs the median path is 88 moves and 34% reach 120.
HARD_SIZE = 31
HARD_MIN_PATH_LENGTH = 120
HARD_LOOP_FRACTION = 0.0


class MazeEnv(GridWorldEnv):
    """``HRMMaze-v0`` / ``HRMMaze-Hard-v0``: reach the goal of a maze; +1 on arrival.

    Args:
        size: odd side length, 7 to 31 (default 11; 31 with ``hard``).
        hard: the Maze-Hard preset: size 31, perfect mazes, shortest path >= 120 moves.
            Conflicting ``size``, ``loop_fraction`` or ``min_path_length`` raise ``ValueError``
            (use ``HRMMaze-v0`` with those kwargs for other mixes).
        loop_fraction: share of the perfect maze's remaining inner walls knocked out to make
            loops (default 0: perfect mazes, exactly one path; any dead end is a detour).
        min_path_length: random mazes only: the shortest start-goal path has at least this many
            moves (default none; 120 with ``hard``).
        step_penalty: subtracted from the reward at every step, the last one included.
        max_steps: steps before truncation; default ``size * size``, a function of the size
            only (a bound derived from the maze would leak the answer). It is at least twice
            the longest path a generated maze can have.
        render_mode: ``"human"``, ``"rgb_array"``, ``"ansi"`` or ``None``.

    The agent starts on the start cell (drawn as the agent while it stands there). ``reset``
    accepts ``options={"layout": grid}``: a ``(size, size)`` array of codes 0, 1, 3, 4 with one
    start and one reachable goal (``min_path_length`` is not imposed on given layouts).
    ``info``: ``agent_pos``, ``start_pos``, ``goal_pos``, ``steps`` and
    ``optimal_path_length`` (moves on a shortest start-goal path, for path-ratio metrics).
    """

    def __init__(
        self,
        size: int | None = None,
        hard: bool = False,
        loop_fraction: float | None = None,
        min_path_length: int | None = None,
        step_penalty: float = 0.0,
        max_steps: int | None = None,
        render_mode: str | None = None,
    ):
        if hard:
            size = _preset(size, HARD_SIZE, "size")
            loop_fraction = _preset(loop_fraction, HARD_LOOP_FRACTION, "loop_fraction")
            min_path_length = _preset(min_path_length, HARD_MIN_PATH_LENGTH, "min_path_length")
        size = DEFAULT_SIZE if size is None else size
        if (
            isinstance(size, bool)
            or not isinstance(size, (int, np.integer))
            or not MIN_SIZE <= size <= MAX_SIZE
            or size % 2 == 0
        ):
            raise ValueError(f"size must be an odd integer from {MIN_SIZE} to {MAX_SIZE}, got {size!r}")
        size = int(size)
        loop_fraction = 0.0 if loop_fraction is None else loop_fraction
        try:
            loop_fraction = float(loop_fraction)
        except (TypeError, ValueError):
            raise ValueError(f"loop_fraction must be a number in [0, 1], got {loop_fraction!r}") from None
        if not 0.0 <= loop_fraction <= 1.0:
            raise ValueError(f"loop_fraction must be in [0, 1], got {loop_fraction!r}")
        if min_path_length is not None:
            limit = max_path_length(size)
            if (
                isinstance(min_path_length, bool)
                or not isinstance(min_path_length, (int, np.integer))
                or not 0 <= min_path_length <= limit
            ):
                raise ValueError(
                    f"min_path_length must be an integer from 0 to {limit} (the longest path of "
                    f"a {size}x{size} maze, in moves) or None, got {min_path_length!r}"
                )
            min_path_length = int(min_path_length)
        max_steps = size * size if max_steps is None else max_steps
        super().__init__(size, size, max_steps=max_steps, step_penalty=step_penalty, render_mode=render_mode)
        self.size = size
        self.hard = bool(hard)
        self.loop_fraction = loop_fraction
        self.min_path_length = min_path_length
        self.start_pos: Position = (0, 0)
        self.goal_pos: Position = (0, 0)
        self.optimal_path_length = 0

    # Layout ------------------------------------------------------------------------------
    _allowed_cells = (EMPTY, WALL, GOAL, START)

    def _generate_layout(self) -> np.ndarray:
        return generate_maze(self.np_random, self.size, self.loop_fraction, self.min_path_length)

    def _check_layout(self, layout: Any) -> np.ndarray:
        grid = validate_layout(layout, shape=(self.size, self.size), required={}, allowed=self._allowed_cells)
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


def _preset(value: Any, preset: Any, name: str) -> Any:
    """The Maze-Hard preset for ``name``; an explicit different value is an error."""
    if value is None or value == preset:
        return preset
    raise ValueError(
        f"HRMMaze-Hard-v0 fixes {name}={preset!r} (got {value!r}); for other settings use "
        f"HRMMaze-v0 with size, loop_fraction and min_path_length"
    )
