"""Sudoku: the one solver, the one generator and the ``HRMSudoku-v0`` environment.

The solver and generator are shared by the environment, the expert and the supervised
puzzle mode; import them from here.
"""

from hrm_gym.sudoku.env import SudokuEnv, decode_action, encode_action
from hrm_gym.sudoku.generator import (
    DIFFICULTIES,
    DIFFICULTY_BANDS,
    GIVEN_BANDS,
    MAX_EMPTY,
    RatedPuzzle,
    difficulty_of,
    generate_puzzle,
    generate_rated_puzzle,
)
from hrm_gym.sudoku.solver import (
    SolveResult,
    board_to_string,
    candidates,
    check_board,
    count_solutions,
    is_complete_solution,
    is_valid_partial,
    parse_board,
    random_solution,
    rate_difficulty,
    rule_violations,
    solve,
)

__all__ = [
    "DIFFICULTIES",
    "DIFFICULTY_BANDS",
    "GIVEN_BANDS",
    "MAX_EMPTY",
    "RatedPuzzle",
    "SolveResult",
    "SudokuEnv",
    "board_to_string",
    "candidates",
    "check_board",
    "count_solutions",
    "decode_action",
    "difficulty_of",
    "encode_action",
    "generate_puzzle",
    "generate_rated_puzzle",
    "is_complete_solution",
    "is_valid_partial",
    "parse_board",
    "random_solution",
    "rate_difficulty",
    "rule_violations",
    "solve",
]
