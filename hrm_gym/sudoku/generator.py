"""The one Sudoku generator of the project: puzzles with a unique solution, graded by backtracks.

A puzzle is made in three moves, all drawing from the ``rng`` passed in:

1. a random full grid (:func:`~hrm_gym.sudoku.solver.random_solution`);
2. *carving*: cells are emptied in a random order, each removal kept only while the solution
   stays unique (and, for a difficulty band, while the backtrack count stays within the band's
   top), until the requested number of empty cells is reached or no cell can go;
3. *climbing* (only when the carved puzzle is easier than the band's bottom): random local
   moves that keep the solution unique and never make it easier (nor harder than the band's
   top), namely emptying one more given, or swapping a given for another cell chosen among
   those where the second solution left by that removal differs (so the swap tends to restore
   uniqueness); when a number of empty cells was asked for, only swaps. After
   ``CLIMB_PATIENCE`` moves without progress the attempt starts over from a new grid.

The difficulty is :func:`~hrm_gym.sudoku.solver.rate_difficulty`: the backtracks of the
solver's complete rating search with naked and hidden singles (0 = solvable by singles alone).

Bands (backtracks, inclusive), chosen from the distribution of puzzles carved as far as
they go (measured on 200 of them: half need no guess, median 1, 90th percentile 8, 99th
percentile 23) so that every band stays cheap to reach. CPU time per puzzle, pure Python, one
core (40 puzzles per row, ``np.random.default_rng(100)``; mean / 90th percentile):

=============================  ===========  ===================
request                        backtracks   ms per puzzle
=============================  ===========  ===================
``"easy"``                     0            8 / 8
``"medium"``                   1 - 4        21 / 39
``"hard"``                     5 - 14       119 / 300
``"extreme"``                  >= 15        430 / 900 (max 1.6 s)
None (a minimal puzzle)        any          13 / 14
``n_empty=1`` / ``35`` / 58    any          2 / 3 / 59
``n_givens=(28, 40)``          any          4 / 6
=============================  ===========  ===================

For comparison, Arto Inkala's "hardest Sudoku" rates 310 and the classic Wikipedia puzzle 0.

Givens can be asked for instead of (or besides) a difficulty: ``n_empty=k`` or
``n_givens=k`` (an int or an inclusive ``(lo, hi)`` range drawn uniformly), e.g. the source
guide's "moderate" band, ``n_givens=GIVEN_BANDS["moderate"]`` (28 to 40 givens).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from hrm_gym.sudoku.solver import (
    PEERS,
    SearchLimitError,
    random_solution,
    search_flat,
    solved_by_singles,
)

#: Backtrack bands of :func:`generate_puzzle`'s ``difficulty``: name -> (lowest, highest or None).
DIFFICULTY_BANDS: dict[str, tuple[int, int | None]] = {
    "easy": (0, 0),
    "medium": (1, 4),
    "hard": (5, 14),
    "extreme": (15, None),
}
DIFFICULTIES = tuple(DIFFICULTY_BANDS)

#: Bands defined by the number of givens (inclusive), as the source guide names them.
GIVEN_BANDS: dict[str, tuple[int, int]] = {"moderate": (28, 40)}

#: Most empty cells :func:`generate_puzzle` accepts (at least 23 givens). Fewer givens exist
#: (17 at the least) but carving rarely reaches them, so asking would be very slow.
MAX_EMPTY = 58

#: Climbing moves without progress before an attempt starts over from a new grid.
CLIMB_PATIENCE = 200

#: Attempts (new full grids) before :func:`generate_puzzle` gives up with an error.
MAX_ATTEMPTS = 200


class RatedPuzzle(NamedTuple):
    """A generated puzzle, its unique solution and its difficulty (backtracks)."""

    puzzle: np.ndarray
    solution: np.ndarray
    backtracks: int


def difficulty_of(backtracks: int) -> str:
    """The band name of a backtrack count (see :data:`DIFFICULTY_BANDS`)."""
    if int(backtracks) < 0:
        raise ValueError(f"backtracks must be >= 0, got {backtracks}")
    for name, (lo, hi) in DIFFICULTY_BANDS.items():
        if backtracks >= lo and (hi is None or backtracks <= hi):
            return name
    raise AssertionError("the bands cover every count")  # pragma: no cover


def empty_range(
    n_empty: int | tuple[int, int] | None = None, n_givens: int | tuple[int, int] | None = None
) -> tuple[int, int] | None:
    """The requested number of empty cells as an inclusive range (None: carve as far as
    possible); ``ValueError`` for a bad request."""
    if n_empty is not None and n_givens is not None:
        raise ValueError("give n_empty or n_givens, not both")
    if n_empty is None and n_givens is None:
        return None
    name, value = ("n_empty", n_empty) if n_empty is not None else ("n_givens", n_givens)
    if isinstance(value, tuple | list) and len(value) == 2:
        lo, hi = value
    else:
        lo = hi = value
    problem = f"{name} must be an int or an inclusive (lo, hi) range, got {value!r}"
    try:
        lo_i, hi_i = int(lo), int(hi)
    except (TypeError, ValueError) as exc:
        raise ValueError(problem) from exc
    if (lo_i, hi_i) != (lo, hi) or isinstance(lo, bool) or isinstance(hi, bool) or lo_i > hi_i:
        raise ValueError(problem)
    if name == "n_givens":
        lo_i, hi_i = 81 - hi_i, 81 - lo_i
    if lo_i < 0 or hi_i > MAX_EMPTY:
        allowed = f"0..{MAX_EMPTY}" if name == "n_empty" else f"{81 - MAX_EMPTY}..81"
        raise ValueError(f"{name}={value!r} is out of range; allowed: {allowed}")
    return lo_i, hi_i


def difficulty_band(difficulty: str | None) -> tuple[int, int | None]:
    """The (lowest, highest or None) backtracks of a band name; None means any."""
    if difficulty is None:
        return 0, None
    if difficulty not in DIFFICULTY_BANDS:
        raise ValueError(f"unknown difficulty {difficulty!r}; use one of {list(DIFFICULTIES)} or None")
    return DIFFICULTY_BANDS[difficulty]


def _forced_by_givens(flat: list[int], cell: int) -> bool:
    """True when the givens among ``cell``'s peers already hold the eight other digits, so
    emptying it changes neither the solutions nor the backtrack count (no search needed)."""
    seen = 0
    for p in PEERS[cell]:
        d = flat[p]
        if d:
            seen |= 1 << d
    return seen | (1 << flat[cell]) == 0x3FE


def _carve(
    rng: np.random.Generator, solution: np.ndarray, n_empty: int | None, ceiling: int | None
) -> tuple[np.ndarray, int, int]:
    """Empty cells of ``solution`` in a random order while the solution stays unique and the
    backtracks stay <= ``ceiling``; stop at ``n_empty`` empty cells (None: as many as possible).

    Returns ``(puzzle, backtracks, empty cells)``.
    """
    flat = solution.ravel().tolist()
    backtracks = 0
    empty = 0
    for cell in rng.permutation(81).tolist():
        if n_empty is not None and empty >= n_empty:
            break
        if _forced_by_givens(flat, cell):
            flat[cell] = 0
            empty += 1
            continue
        digit, flat[cell] = flat[cell], 0
        if ceiling == 0:  # one propagation decides it, no search needed
            keep = solved_by_singles(flat)
        else:
            unique, count, _ = _rate(flat)
            keep = unique and (ceiling is None or count <= ceiling)
            if keep:
                backtracks = count
        if keep:
            empty += 1
        else:
            flat[cell] = digit
    return np.asarray(flat, dtype=np.uint8).reshape(9, 9), backtracks, empty


def _rate(flat: list[int]) -> tuple[bool, int, list[list[int]]]:
    """``(unique, backtracks, solutions found)`` of a trusted flat board.

    A board the search cannot settle within its guess limit counts as not unique, with no
    solution found, so the move that made it is not kept.
    """
    try:
        solutions, backtracks, _ = search_flat(flat, max_solutions=2)
    except SearchLimitError:
        return False, 0, []
    return len(solutions) == 1, backtracks, solutions


def _climb(
    rng: np.random.Generator,
    puzzle: np.ndarray,
    solution: np.ndarray,
    backtracks: int,
    band: tuple[int, int | None],
    keep_count: bool,
) -> tuple[np.ndarray, int] | None:
    """Local search from a too-easy ``puzzle`` into ``band``; None after ``CLIMB_PATIENCE``
    moves without progress. ``keep_count`` forbids moves that change the number of givens."""
    lo, hi = band
    flat = puzzle.ravel().tolist()
    sol = solution.ravel().tolist()
    stale = 0
    while backtracks < lo:
        if stale >= CLIMB_PATIENCE:
            return None
        stale += 1
        givens = [i for i in range(81) if flat[i]]
        removed = givens[int(rng.integers(len(givens)))]
        trial = flat[:]
        trial[removed] = 0
        unique, count, found = _rate(trial)
        if not unique:
            if not found:
                continue  # not settled within the guess limit
            # Give back a cell where the other solution differs, to rule that one out.
            other = next(s for s in found if s != sol)
            choices = [i for i in range(81) if not trial[i] and i != removed and other[i] != sol[i]]
            if not choices:
                continue
            added = choices[int(rng.integers(len(choices)))]
            trial[added] = sol[added]
            unique, count, _ = _rate(trial)
            if not unique:
                continue
        elif keep_count:
            # Still unique: give back any other empty cell (stays unique) to keep the count.
            choices = [i for i in range(81) if not trial[i] and i != removed]
            if not choices:
                continue
            added = choices[int(rng.integers(len(choices)))]
            trial[added] = sol[added]
            unique, count, _ = _rate(trial)
        if count < backtracks or (hi is not None and count > hi):
            continue
        if count > backtracks:
            stale = 0
        flat, backtracks = trial, count
    return np.asarray(flat, dtype=np.uint8).reshape(9, 9), backtracks


def generate_rated_puzzle(
    rng: np.random.Generator,
    difficulty: str | None = None,
    *,
    n_empty: int | tuple[int, int] | None = None,
    n_givens: int | tuple[int, int] | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> RatedPuzzle:
    """Like :func:`generate_puzzle`, also returning the puzzle's backtrack count."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    band = difficulty_band(difficulty)
    wanted = empty_range(n_empty, n_givens)
    lo, hi = band
    if lo > 0 and wanted is not None and wanted[1] == 0:
        raise ValueError(f"difficulty={difficulty!r} needs backtracks, a full board has none")
    for _ in range(int(max_attempts)):
        target = None
        if wanted is not None:
            target = int(rng.integers(wanted[0], wanted[1] + 1))
        solution = random_solution(rng)
        puzzle, backtracks, empty = _carve(rng, solution, target, hi)
        if target is not None and empty < target:
            continue
        if backtracks < lo:
            climbed = _climb(rng, puzzle, solution, backtracks, band, keep_count=target is not None)
            if climbed is None:
                continue
            puzzle, backtracks = climbed
        return RatedPuzzle(puzzle, solution, backtracks)
    raise RuntimeError(
        f"no puzzle found in {max_attempts} attempts for difficulty={difficulty!r}, "
        f"n_empty={n_empty!r}, n_givens={n_givens!r}: this combination is too rare "
        "(harder bands need more empty cells; ask for more of them or for an easier band)"
    )


def generate_puzzle(
    rng: np.random.Generator,
    difficulty: str | None = None,
    *,
    n_empty: int | tuple[int, int] | None = None,
    n_givens: int | tuple[int, int] | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> tuple[np.ndarray, np.ndarray]:
    """A random puzzle with a unique solution: ``(puzzle, solution)``, both ``(9, 9) uint8``.

    Args:
        rng: every random choice is drawn from it (same state, same puzzle).
        difficulty: a band of :data:`DIFFICULTY_BANDS` (``"easy"`` ... ``"extreme"``), or
            None for no constraint on the backtracks.
        n_empty: number of empty cells, an int or an inclusive ``(lo, hi)`` range (drawn
            uniformly per puzzle), ``0`` to :data:`MAX_EMPTY`. None: carve as far as possible
            (a minimal puzzle, usually 22 to 27 givens).
        n_givens: the same in givens (``81 - n_empty``); e.g. ``GIVEN_BANDS["moderate"]``.
        max_attempts: full grids to try before giving up with ``RuntimeError``.
    """
    puzzle, solution, _ = generate_rated_puzzle(
        rng, difficulty, n_empty=n_empty, n_givens=n_givens, max_attempts=max_attempts
    )
    return puzzle, solution
