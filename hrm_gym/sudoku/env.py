"""``HRMSudoku-v0``: Sudoku as an MDP, one digit per step.

Observation: the ``(9, 9) uint8`` board, ``0`` for an empty cell. Action ``a`` in
``Discrete(729)`` writes digit ``a % 9 + 1`` in cell ``(a // 81, a // 9 % 9)``, i.e.
``a = row * 81 + col * 9 + (digit - 1)``.

Rules of a step:

* **legal and correct** (empty cell, digit not yet in its row, column or box, and equal to the
  puzzle's unique solution there): the digit is written; reward ``dense_reward``, plus
  ``solved_reward`` when it completes the board (the episode then terminates).
* **invalid** (terminates with reward ``invalid_move_penalty``, the board left unchanged):
  writing into a filled cell (``"occupied"``), a digit already in the row, column or box
  (``"breaks_rule"``), or a legal digit that differs from the unique solution
  (``"wrong_digit"``). The last one is a choice: such a digit breaks no rule yet, but it makes
  the puzzle unsolvable, so letting the episode go on would only hide the mistake behind a
  dead end many steps later; ending it at once gives a clear signal and keeps every state of
  an episode solvable (and Markov: the board alone fixes the solution).
* the episode is truncated after ``max_steps`` steps.

The action mask (``action_masks()`` for sb3-contrib's MaskablePPO, and ``info["action_mask"]``)
marks the *rule*-legal actions: empty cell and digit absent from its row, column and box. It
does not reveal the solution, so a masked policy can still pick a wrong digit.

``info``: ``solved``, ``invalid_move``, ``invalid_reason`` (None or one of the three above),
``action_mask`` (``bool (729,)``), ``steps``, ``empty_cells`` (left on the board) and
``backtracks`` (the puzzle's difficulty, :func:`~hrm_gym.sudoku.solver.rate_difficulty`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hrm_gym.core.env import check_action, check_finite, check_max_steps
from hrm_gym.sudoku.generator import MAX_EMPTY, difficulty_band, empty_range, generate_rated_puzzle
from hrm_gym.sudoku.solver import (
    MAX_GUESSES,
    SearchLimitError,
    as_board,
    board_to_string,
    check_board,
    legal_placements,
    solve,
)
from hrm_gym.sudoku.viewer import Move, SudokuRenderer, board_to_ansi

N_ACTIONS = 729
ACTION_MEANING = "row * 81 + col * 9 + (digit - 1), rows and cols 0..8, digits 1..9"
INVALID_REASONS = ("occupied", "breaks_rule", "wrong_digit")


def encode_action(row: int, col: int, digit: int) -> int:
    """The action that writes ``digit`` (1..9) in cell ``(row, col)`` (0..8 each)."""
    if not (0 <= row < 9 and 0 <= col < 9 and 1 <= digit <= 9):
        raise ValueError(f"bad placement row={row}, col={col}, digit={digit}: rows and cols are 0..8, digits 1..9")
    return row * 81 + col * 9 + digit - 1


def decode_action(action: int) -> tuple[int, int, int]:
    """``(row, col, digit)`` of an action in ``[0, 729)``."""
    action = check_action(action, N_ACTIONS, ACTION_MEANING)
    return action // 81, action // 9 % 9, action % 9 + 1


class SudokuEnv(gym.Env):
    """``HRMSudoku-v0`` (see the module docstring for the rules).

    Args:
        difficulty: backtrack band of generated puzzles (``"easy"``, ``"medium"``, ``"hard"``,
            ``"extreme"``; see :data:`~hrm_gym.sudoku.generator.DIFFICULTY_BANDS`) or None.
        invalid_move_penalty: reward of an invalid move, which ends the episode.
        solved_reward: reward added when the board is completed.
        dense_reward: reward of every correct digit placed (0 = sparse).
        max_steps: steps before truncation (81 is enough for any puzzle).
        n_empty: empty cells of generated puzzles, an int or an inclusive ``(lo, hi)`` range
            within ``1..MAX_EMPTY`` (e.g. a curriculum from few empty cells; a full board
            could not be played); None = as many as the generator can.
        render_mode: ``"human"``, ``"rgb_array"``, ``"ansi"`` or None.

    ``reset(options={"puzzle": board})`` plays a given puzzle (9x9, ``0`` = empty, a unique
    solution, at least one empty cell); ``"solution"`` may come with it and is checked.
    """

    metadata = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 4}
    option_keys = frozenset({"puzzle", "solution"})

    def __init__(
        self,
        difficulty: str | None = "easy",
        invalid_move_penalty: float = -1.0,
        solved_reward: float = 1.0,
        dense_reward: float = 0.0,
        max_steps: int = 81,
        n_empty: int | tuple[int, int] | None = None,
        render_mode: str | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; use one of {self.metadata['render_modes']} or None"
            )
        difficulty_band(difficulty)  # validates the name
        wanted = empty_range(n_empty=n_empty)  # validates the count
        if wanted is not None and wanted[0] < 1:
            raise ValueError(
                f"n_empty={n_empty!r} allows a full board, which has no move left to play; "
                f"allowed: 1..{MAX_EMPTY} empty cells (an int or an inclusive (lo, hi) range) or None"
            )
        self.difficulty = difficulty
        self.n_empty = n_empty
        self.invalid_move_penalty = check_finite(invalid_move_penalty, "invalid_move_penalty")
        self.solved_reward = check_finite(solved_reward, "solved_reward")
        self.dense_reward = check_finite(dense_reward, "dense_reward")
        self.max_steps = check_max_steps(max_steps)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 9, (9, 9), np.uint8)
        self.action_space = spaces.Discrete(N_ACTIONS)

        self._board = np.zeros((9, 9), dtype=np.uint8)
        self._givens = np.zeros((9, 9), dtype=bool)
        self._solution = np.zeros((9, 9), dtype=np.uint8)
        self._mask = np.zeros(N_ACTIONS, dtype=bool)
        self.backtracks = 0
        self.steps = 0
        self.solved = False
        self._last_invalid: Move | None = None
        self._last_reason: str | None = None
        self._episode_over = True
        self._started = False
        self._renderer: SudokuRenderer | None = None

    # ---- puzzles --------------------------------------------------------------------------
    def _puzzle_from_options(self, options: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
        puzzle = check_board(options["puzzle"], "puzzle")
        if puzzle.all():
            raise ValueError("puzzle has no empty cell: there is nothing to play")
        text = board_to_string(puzzle)
        try:
            result = solve(puzzle, max_solutions=2)
        except SearchLimitError as exc:
            raise ValueError(
                f"puzzle {text} could not be checked: {exc}; allowed: puzzles whose solutions "
                f"the solver settles within {MAX_GUESSES} guesses (every known puzzle does)"
            ) from exc
        if not result.solutions:
            raise ValueError(
                f"puzzle {text} has no solution (its givens break no rule, but no completion "
                "exists); allowed: a puzzle with exactly one solution"
            )
        if not result.unique:
            raise ValueError(f"puzzle {text} has several solutions; the environment needs a unique one")
        if options.get("solution") is not None:
            given = as_board(options["solution"], "solution")
            if not np.array_equal(given, result.solution):
                diff = np.argwhere(given != result.solution)[0]
                raise ValueError(
                    f"solution is not the puzzle's unique solution: at (row {diff[0]}, col "
                    f"{diff[1]}) it holds {given[tuple(diff)]}, the solution "
                    f"{result.solution[tuple(diff)]}"
                )
        return puzzle, result.solution, result.backtracks

    # ---- Gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - self.option_keys
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; allowed: {sorted(self.option_keys)}")
        if options.get("puzzle") is not None:
            puzzle, solution, backtracks = self._puzzle_from_options(options)
        elif options.get("solution") is not None:
            raise ValueError('reset option "solution" needs "puzzle" with it')
        else:
            puzzle, solution, backtracks = generate_rated_puzzle(self.np_random, self.difficulty, n_empty=self.n_empty)
        self._board = puzzle.copy()
        self._givens = puzzle > 0
        self._solution = solution.copy()
        self.backtracks = int(backtracks)
        self._mask = legal_placements(self._board).reshape(N_ACTIONS)
        self.steps = 0
        self.solved = False
        self._last_invalid = None
        self._last_reason = None
        self._episode_over = False
        self._started = True
        if self.render_mode == "human":
            self.render()
        return self._board.copy(), self._info()

    def step(self, action: Any):
        if self._episode_over:
            if not self._started:
                raise RuntimeError("step() called before reset(): call reset() first")
            raise RuntimeError("step() called after the episode ended (terminated or truncated): call reset() first")
        action = check_action(action, N_ACTIONS, ACTION_MEANING)
        row, col, digit = action // 81, action // 9 % 9, action % 9 + 1
        self.steps += 1
        reason = None
        if self._board[row, col]:
            reason = "occupied"
        elif not self._mask[action]:
            reason = "breaks_rule"
        elif digit != self._solution[row, col]:
            reason = "wrong_digit"
        if reason is not None:
            self._last_invalid = (row, col, digit)
            self._last_reason = reason
            reward, terminated = self.invalid_move_penalty, True
        else:
            self._board[row, col] = digit
            self._mask = legal_placements(self._board).reshape(N_ACTIONS)
            reward, terminated = self.dense_reward, False
            if self._board.all():
                self.solved = True
                reward += self.solved_reward
                terminated = True
        truncated = not terminated and self.steps >= self.max_steps
        self._episode_over = terminated or truncated
        if self.render_mode == "human":
            self.render()
        return self._board.copy(), float(reward), terminated, truncated, self._info()

    def action_masks(self) -> np.ndarray:
        """``bool (729,)``: True for every action that breaks no rule (for MaskablePPO)."""
        if not self._started:
            raise RuntimeError("action_masks() called before reset(): call reset() first")
        return self._mask.copy()

    def _info(self) -> dict[str, Any]:
        return {
            "solved": self.solved,
            "invalid_move": self._last_reason is not None,
            "invalid_reason": self._last_reason,
            "action_mask": self._mask.copy(),
            "steps": self.steps,
            "empty_cells": int(np.count_nonzero(self._board == 0)),
            "backtracks": self.backtracks,
        }

    @property
    def board(self) -> np.ndarray:
        """A copy of the current board."""
        return self._board.copy()

    @property
    def givens(self) -> np.ndarray:
        """``bool (9, 9)``: True for the cells given by the puzzle."""
        return self._givens.copy()

    # ---- rendering ------------------------------------------------------------------------
    def _status(self) -> str:
        status = f"step {self.steps}/{self.max_steps}  empty {int(np.sum(self._board == 0))}"
        if self.solved:
            status += "  solved"
        elif self._last_invalid is not None:
            r, c, d = self._last_invalid
            status += f"  invalid: {d} at ({r}, {c}) {self._last_reason.replace('_', ' ')}"
        return status

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode= to gym.make")
            return None
        if not self._started:
            raise RuntimeError("render() called before reset(): call reset() first")
        if self.render_mode == "ansi":
            return board_to_ansi(self._board, self._givens, self._status(), self._last_invalid)
        if self._renderer is None:
            self._renderer = SudokuRenderer()
        surface = self._renderer.draw(self._board, self._givens, self._status(), self._last_invalid)
        if self.render_mode == "rgb_array":
            return self._renderer.to_rgb(surface)
        self._renderer.show(surface, self.metadata["render_fps"])
        return None

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
