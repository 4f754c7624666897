"""Foraging (DESIGN 1.A): leave the nest, pick up the food, bring it home.

The agent starts on the nest. Stepping onto the food collects it (+1; the cell becomes empty
and the goal becomes "return to the nest"); reaching the nest with the food ends the episode
(+10). The observation is Markov: the agent carries food exactly when no food cell is left.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hrm_gym.core.env import GridWorldEnv
from hrm_gym.core.grid import EMPTY, FOOD, NEST, WALL, Position, find_cells, require_reachable, validate_layout
from hrm_gym.foraging.generator import generate_foraging_layout

FOOD_REWARD = 1.0
RETURN_REWARD = 10.0


class ForagingEnv(GridWorldEnv):
    """``HRMForaging-v0``: the flagship task on a ``size`` x ``size`` grid (default 16).

    Args:
        size: grid side length (8 to 32).
        max_steps: steps before the episode is truncated.
        step_penalty: subtracted from the reward at every step (default 0).
        wall_segments: inclusive range of the number of wall segments of a random layout.
        render_mode: ``"human"``, ``"rgb_array"``, ``"ansi"`` or ``None``.

    ``info``: ``agent_pos``, ``food_pos`` (the food's cell, also after it was picked up),
    ``nest_pos``, ``has_food``, ``steps``.
    """

    def __init__(
        self,
        size: int = 16,
        max_steps: int = 200,
        step_penalty: float = 0.0,
        wall_segments: tuple[int, int] = (5, 10),
        render_mode: str | None = None,
    ):
        if not 8 <= int(size) <= 32:
            raise ValueError(f"size must be between 8 and 32, got {size}")
        lo, hi = (int(v) for v in wall_segments)
        if not 0 <= lo <= hi:
            raise ValueError(f"wall_segments must be a range (lo, hi) with 0 <= lo <= hi, got {wall_segments}")
        super().__init__(size, size, max_steps=max_steps, step_penalty=step_penalty, render_mode=render_mode)
        self.size = int(size)
        self.wall_segments = (lo, hi)
        self.nest_pos: Position = (0, 0)
        self.food_pos: Position = (0, 0)
        self.has_food = False

    # Layout ------------------------------------------------------------------------------
    _required_cells = {NEST: 1, FOOD: 1}
    _allowed_cells = (EMPTY, WALL, FOOD, NEST)

    def _generate_layout(self) -> np.ndarray:
        return generate_foraging_layout(self.np_random, self.size, self.wall_segments)

    def _check_layout(self, layout: Any) -> np.ndarray:
        grid = validate_layout(
            layout, shape=(self.size, self.size), required=self._required_cells, allowed=self._allowed_cells
        )
        nest, food = find_cells(grid, NEST)[0], find_cells(grid, FOOD)[0]
        require_reachable(grid != WALL, nest, {"food": food})
        return grid

    # Rules -------------------------------------------------------------------------------
    def _start_episode(self, layout: np.ndarray) -> None:
        self.nest_pos = find_cells(layout, NEST)[0]
        self.food_pos = find_cells(layout, FOOD)[0]
        self.agent_pos = self.nest_pos
        self.has_food = False

    def _after_move(self, previous: Position, action: int) -> tuple[float, bool]:
        if not self.has_food:
            if self.agent_pos == self.food_pos:
                self.has_food = True
                self._layout[self.food_pos] = EMPTY
                return FOOD_REWARD, False
            return 0.0, False
        if self.agent_pos == self.nest_pos:
            return RETURN_REWARD, True
        return 0.0, False

    def _info(self) -> dict[str, Any]:
        return {
            "agent_pos": self.agent_pos,
            "food_pos": self.food_pos,
            "nest_pos": self.nest_pos,
            "has_food": self.has_food,
            "steps": self.steps,
        }

    def _carrying(self) -> bool:
        return self.has_food

    def _status(self) -> str:
        goal = "return to nest" if self.has_food else "find food"
        return f"step {self.steps}/{self.max_steps}  {goal}"
