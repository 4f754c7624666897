"""The Sudoku task: read a 9x9 board (``0`` = empty), write the whole solved board.

Puzzles come from THE Sudoku generator (:mod:`hrm_gym.sudoku.generator`) with its
backtrack-count difficulty bands and empty-cell counts, from boards with a single empty cell
to the hardest band; the target is the unique solution (from the generator, or from THE solver
for puzzles read from a file). Augmentations keep a board valid and its solution unique:
digit relabelling, band and stack shuffles, row shuffles within a band, column shuffles within
a stack, and transposition. A prediction is *valid* when it is a complete board that keeps the
givens and breaks no rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.puzzles.base import PuzzleError, PuzzleTask, as_int_grids
from hrm_gym.sudoku.generator import DIFFICULTY_BANDS, MAX_EMPTY, empty_range, generate_rated_puzzle
from hrm_gym.sudoku.solver import is_complete_solution, solve

#: A mixture component: weight plus the generator's arguments (difficulty, n_empty, n_givens).
MIX_KEYS = ("weight", "difficulty", "n_empty", "n_givens")
DEFAULT_PARAMS: dict[str, Any] = {
    "mix": [
        {"weight": 1.0, "n_empty": [1, 35]},
        {"weight": 1.0, "n_givens": [28, 40]},
    ]
}


def _as_range(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


class SudokuTask(PuzzleTask):
    name = "sudoku"
    generator_version = "sudoku-1"  # hrm_gym.sudoku generator (carve + climb), unique solutions
    input_vocab = 10  # 0 empty, 1..9
    output_vocab = 10  # the digit itself (class 0 never a target)
    array_name = "puzzles"
    fixed_shape = (9, 9)

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - set(DEFAULT_PARAMS))
        if unknown:
            raise PuzzleError(f"unknown sudoku parameter(s) {unknown}; allowed: {sorted(DEFAULT_PARAMS)}")
        mix = params.get("mix", DEFAULT_PARAMS["mix"])
        if not isinstance(mix, (list, tuple)) or not mix:
            raise PuzzleError(f"sudoku mix must be a non-empty list of components, got {mix!r}")
        checked = []
        for i, part in enumerate(mix):
            if not isinstance(part, Mapping):
                raise PuzzleError(f"sudoku mix[{i}] must be a mapping with keys from {list(MIX_KEYS)}")
            bad = sorted(set(part) - set(MIX_KEYS))
            if bad:
                raise PuzzleError(f"sudoku mix[{i}] has unknown key(s) {bad}; allowed: {list(MIX_KEYS)}")
            diff = part.get("difficulty")
            if diff is not None and diff not in DIFFICULTY_BANDS:
                raise PuzzleError(f"sudoku mix[{i}] difficulty={diff!r}; allowed: {list(DIFFICULTY_BANDS)}")
            weight = float(part.get("weight", 1.0))
            if weight < 0:
                raise PuzzleError(f"sudoku mix[{i}] weight must be >= 0, got {weight}")
            component = {
                "weight": weight,
                "difficulty": diff,
                "n_empty": _as_range(part.get("n_empty")),
                "n_givens": _as_range(part.get("n_givens")),
            }
            try:  # the generator's own range check, now rather than mid-training
                empty_range(component["n_empty"], component["n_givens"])
            except ValueError as exc:
                raise PuzzleError(f"sudoku mix[{i}]: {exc}") from exc
            checked.append(component)
        if sum(c["weight"] for c in checked) <= 0:
            raise PuzzleError("sudoku mix weights are all 0")
        return {"mix": checked}

    def sample(self, rng: np.random.Generator, n: int, params: Mapping[str, Any]) -> np.ndarray:
        puzzles, _ = self.sample_with_solutions(rng, n, params)
        return puzzles

    def sample_with_solutions(
        self, rng: np.random.Generator, n: int, params: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` puzzles and their solutions (no solver run needed: the generator knows them)."""
        mix = self.check_params(params)["mix"]
        weights = np.asarray([c["weight"] for c in mix])
        picks = rng.choice(len(mix), size=n, p=weights / weights.sum())
        puzzles = np.empty((n, 9, 9), dtype=np.uint8)
        solutions = np.empty((n, 9, 9), dtype=np.uint8)
        for i, pick in enumerate(picks.tolist()):
            c = mix[pick]
            rated = generate_rated_puzzle(
                rng,
                c["difficulty"],
                n_empty=c["n_empty"],
                n_givens=c["n_givens"],
            )
            puzzles[i], solutions[i] = rated.puzzle, rated.solution
        return puzzles, solutions

    def check_inputs(self, inputs: Any, what: str = "puzzles") -> np.ndarray:
        boards = as_int_grids(inputs, what, 0, 9)
        if boards.shape[1:] != (9, 9):
            raise PuzzleError(f"{what}: sudoku boards must be 9x9, got {boards.shape[1]}x{boards.shape[2]}")
        return boards

    def targets(self, inputs: np.ndarray) -> np.ndarray:
        """Solutions by THE solver; a board without solution, or with several, is an error."""
        out = np.empty(inputs.shape, dtype=np.int64)
        for index, board in enumerate(inputs):
            try:
                result = solve(board, max_solutions=2)
                out[index] = result.solution
            except ValueError as exc:
                raise PuzzleError(f"sudoku board {index}: {exc}") from exc
        return out

    def augment(
        self, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per board: relabel digits, shuffle bands/stacks/rows/columns, maybe transpose."""
        x_out = np.empty_like(inputs)
        y_out = np.empty_like(labels)
        for i in range(len(inputs)):
            x_out[i], y_out[i] = sudoku_symmetry(rng, inputs[i], labels[i])
        return x_out, y_out

    def is_valid(self, puzzle: np.ndarray, prediction: np.ndarray) -> bool:
        return is_valid_solution(puzzle, prediction)


def _line_permutation(rng: np.random.Generator) -> np.ndarray:
    """A row (or column) order that keeps bands: bands shuffled, rows shuffled in each band."""
    bands = rng.permutation(3)
    return np.concatenate([3 * b + rng.permutation(3) for b in bands])


def sudoku_symmetry(
    rng: np.random.Generator, puzzle: np.ndarray, solution: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One random validity-preserving transform applied to a puzzle and its solution alike."""
    digits = np.concatenate([[0], rng.permutation(9) + 1])  # 0 (empty) stays 0
    rows, cols = _line_permutation(rng), _line_permutation(rng)
    transpose = bool(rng.integers(2))
    out = []
    for board in (puzzle, solution):
        b = digits[board][rows][:, cols]
        out.append(b.T if transpose else b)
    return out[0].astype(puzzle.dtype), out[1].astype(solution.dtype)


def is_valid_solution(puzzle: np.ndarray, prediction: np.ndarray) -> bool:
    """A complete board (digits 1-9) that keeps every given and breaks no Sudoku rule."""
    pred = np.asarray(prediction)
    if pred.shape != (9, 9) or pred.min() < 1 or pred.max() > 9:
        return False
    givens = np.asarray(puzzle) != 0
    if not np.array_equal(pred[givens], np.asarray(puzzle)[givens]):
        return False
    return is_complete_solution(pred)


__all__ = ["MAX_EMPTY", "SudokuTask", "is_valid_solution", "sudoku_symmetry"]
