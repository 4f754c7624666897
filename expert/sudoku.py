"""The Sudoku expert: one correct digit per step, in the order a person would fill them.

It reads the board alone (``info`` is ignored), so it can label any state an agent reaches.
The solution comes from the project's one solver (:mod:`hrm_gym.sudoku.solver`), run on the
observed board and cached per puzzle; every digit the expert writes is the solution's.

Order of cells (the deterministic tie-break), on the observed board:

1. a **naked single**: an empty cell with one candidate left; the lowest row-major cell first;
2. else a **hidden single**: an empty cell that is the only place for some digit in its row,
   column or box; the lowest row-major cell first;
3. else the **most constrained** empty cell: fewest candidates, lowest row-major cell on ties.

"Candidates" are the digits absent from the cell's row, column and box
(:func:`hrm_gym.sudoku.solver.candidates`). Every placement of a solution digit in an empty
cell is optimal (each brings the board one step closer to solved, and all episodes need the
same number of steps), so :meth:`SudokuExpert.optimal_actions` marks all of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from expert.base import Expert
from hrm_gym.sudoku.solver import as_board, legal_placements, solve

N_ACTIONS = 729
#: Why a cell was chosen, in the order they are tried.
REASONS = ("naked_single", "hidden_single", "most_constrained")


class SudokuExpert(Expert):
    """Human-order Sudoku expert for ``HRMSudoku-v0`` (see the module docstring).

    Env kwargs given to the factory are accepted and ignored. The observed board must break no
    rule and have exactly one solution (every state of an ``HRMSudoku-v0`` episode does);
    otherwise :meth:`act` raises ``ValueError`` saying why.
    """

    n_actions = N_ACTIONS

    def __init__(self, **env_kwargs: Any):
        self._cached_board: np.ndarray | None = None  # the board the solution was solved for
        self._cached_solution: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the cached solution (optional: a board of another puzzle is detected)."""
        self._cached_board = None
        self._cached_solution = None

    # ---- the solution ---------------------------------------------------------------------
    def solution(self, obs: np.ndarray) -> np.ndarray:
        """The unique solution of the observed board (``(9, 9) uint8``), cached per puzzle.

        The cache is reused only when ``obs`` keeps every digit of the board it was solved
        for and adds only solution digits: such a board has the same unique solution.
        """
        board = as_board(obs, "observation")
        return self._solution_of(board)

    def _solution_of(self, board: np.ndarray) -> np.ndarray:
        cached, solution = self._cached_board, self._cached_solution
        if cached is not None:
            filled = board > 0
            if np.all(board[cached > 0] == cached[cached > 0]) and np.all(board[filled] == solution[filled]):
                return solution
        result = solve(board, max_solutions=2)  # raises ValueError if a rule is broken
        if not result.solutions:
            raise ValueError("the observed board has no solution: no digit is correct")
        if not result.unique:
            raise ValueError("the observed board has several solutions: 'correct' is ambiguous")
        self._cached_board, self._cached_solution = board.copy(), result.solution
        return result.solution

    # ---- the policy -----------------------------------------------------------------------
    def next_placement(self, obs: np.ndarray) -> tuple[int, int, int, str]:
        """``(row, col, digit, reason)`` of the expert's next move; reason is one of
        :data:`REASONS`. ``ValueError`` when the board is already full."""
        board = as_board(obs, "observation")
        solution = self._solution_of(board)
        return _choose(board, solution)

    def act(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> int:
        """The action ``row * 81 + col * 9 + digit - 1`` of :meth:`next_placement`."""
        row, col, digit, _ = self.next_placement(obs)
        return row * 81 + col * 9 + digit - 1

    def optimal_actions(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        """``bool (729,)``: True for the solution digit of every empty cell."""
        board = as_board(obs, "observation")
        return _correct_mask(board, self._solution_of(board))

    def label(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> tuple[int, np.ndarray]:
        """``(act(obs), optimal_actions(obs))`` with one validation and one cache lookup."""
        board = as_board(obs, "observation")
        solution = self._solution_of(board)
        row, col, digit, _ = _choose(board, solution)
        return row * 81 + col * 9 + digit - 1, _correct_mask(board, solution)


def _correct_mask(board: np.ndarray, solution: np.ndarray) -> np.ndarray:
    mask = np.zeros((9, 9, 9), dtype=bool)
    rows, cols = np.nonzero(board == 0)
    mask[rows, cols, solution[rows, cols].astype(np.intp) - 1] = True
    return mask.reshape(N_ACTIONS)


def _choose(board: np.ndarray, solution: np.ndarray) -> tuple[int, int, int, str]:
    """The next cell by the documented order, with its solution digit and the reason."""
    empty = board == 0
    if not empty.any():
        raise ValueError("the board is full: there is no move left to make")
    cand = legal_placements(board)  # (row, col, digit)
    counts = cand.sum(axis=2)
    naked = empty & (counts == 1)
    if naked.any():
        cell, reason = np.argwhere(naked)[0], REASONS[0]
    else:
        in_row = cand.sum(axis=1, keepdims=True) == 1  # (row, 1, digit): one place in the row
        in_col = cand.sum(axis=0, keepdims=True) == 1  # (1, col, digit)
        box_counts = cand.reshape(3, 3, 3, 3, 9).sum(axis=(1, 3))  # (box row, box col, digit)
        in_box = np.repeat(np.repeat(box_counts == 1, 3, axis=0), 3, axis=1)  # (row, col, digit)
        hidden = (cand & (in_row | in_col | in_box)).any(axis=2)
        if hidden.any():
            cell, reason = np.argwhere(hidden)[0], REASONS[1]
        else:
            fewest = np.where(empty, counts, 10)
            cell, reason = np.unravel_index(int(np.argmin(fewest)), fewest.shape), REASONS[2]
    row, col = int(cell[0]), int(cell[1])
    return row, col, int(solution[row, col]), reason
