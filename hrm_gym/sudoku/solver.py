"""The one Sudoku solver of the project: constraint propagation plus backtracking on bitmasks.

The environment's generator, the expert and the supervised puzzle mode all use this module, so
"unique solution" and "difficulty" mean the same thing everywhere.

Boards are ``(9, 9)`` integer arrays, ``0`` for an empty cell and ``1..9`` for a digit. Cells
are named ``(row, col)``, 0-based, in every message.

Two searches share the same propagation and differ only in where they branch:

1. *Propagation* until nothing changes: naked singles (an empty cell with one candidate gets
   it) and, unless ``hidden_singles=False``, hidden singles (a digit that fits only one cell
   of a row, column or box goes there). A cell without candidates, or a digit without a place
   in a unit, is a contradiction.
2. *Branching*.

   * The **rating** search (fixed and deterministic, so that backtrack counts are
     reproducible) branches on the most constrained empty cell (fewest candidates; ties:
     lowest row-major index), trying its candidates in ascending order (or in a random order
     when an ``rng`` is given, which only the full-grid generator does).
   * The **counting** search, which decides how many solutions a board has, branches on the
     tightest choice of the exact cover, as dancing links does: that same cell, unless some
     digit not yet placed in a row, column or box has fewer possible cells there than the cell
     has candidates; then it tries each of those cells for that digit. A contradiction hidden
     in a few units is then found in a few guesses even when the rest of the board is nearly
     empty (boards that keep a cell-only search busy for many seconds).

Every search stops with :class:`SearchLimitError` after :data:`MAX_GUESSES` guesses, so no
input keeps it busy for long. With hidden singles, the hardest published puzzles need a few
thousand guesses of the rating search, and the counting search settles them (and boards with
many solutions or none) in a few hundred at most.

**Backtracks** (the difficulty measure): the number of guesses of the rating search that were
undone because the whole search below them held no solution; a guess that fails at once (its
propagation hits a contradiction) counts too. Run with ``max_solutions=2`` on a puzzle with a
unique solution, the search visits the whole tree, so the count does not depend on the order
digits are tried: it is a property of the puzzle (for the propagation level above).
:func:`rate_difficulty` returns exactly that number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SIZE = 9
N_CELLS = 81
ALL_DIGITS = 0x1FF  # bit d-1 set <=> digit d is possible

# Units and peers, as flat cell indices (row * 9 + col).
ROWS = tuple(tuple(r * 9 + c for c in range(9)) for r in range(9))
COLS = tuple(tuple(r * 9 + c for r in range(9)) for c in range(9))
BOXES = tuple(tuple((br + r) * 9 + bc + c for r in range(3) for c in range(3)) for br in (0, 3, 6) for bc in (0, 3, 6))
UNITS = ROWS + COLS + BOXES
PEERS = tuple(tuple(sorted({p for unit in UNITS if i in unit for p in unit} - {i})) for i in range(N_CELLS))
UNITS_OF = tuple((i // 9, 9 + i % 9, 18 + (i // 27) * 3 + (i % 9) // 3) for i in range(N_CELLS))
POPCOUNT = tuple(bin(m).count("1") for m in range(512))
DIGITS_OF = tuple(tuple(d + 1 for d in range(9) if m >> d & 1) for m in range(512))
BIT_TO_DIGIT = {1 << d: d + 1 for d in range(9)}

#: Guesses one search may make before it stops with :class:`SearchLimitError` (under half a
#: second of pure Python).
MAX_GUESSES = 20_000


class SearchLimitError(ValueError):
    """A search made more than its ``max_guesses`` guesses without settling the board."""


# ---- validation -------------------------------------------------------------------------------
def as_board(board: Any, name: str = "board") -> np.ndarray:
    """``board`` as a fresh ``(9, 9) uint8`` array, or a ``ValueError`` saying what is malformed.

    Checks shape, integer values and the range ``0..9``; it does not check the Sudoku rules
    (see :func:`check_board`).
    """
    try:
        array = np.asarray(board)
    except Exception as exc:  # e.g. ragged nested lists
        raise ValueError(f"{name} is not a rectangular array: {exc}") from exc
    if array.shape != (SIZE, SIZE):
        raise ValueError(f"{name} must have shape (9, 9), got {array.shape}")
    if array.dtype.kind == "b" or array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integers 0..9 (0 = empty), got dtype {array.dtype}")
    integral = array.dtype.kind != "f" or (np.all(np.isfinite(array)) and np.all(array == np.round(array)))
    if not integral:
        raise ValueError(f"{name} must hold integers 0..9 (0 = empty), got non-integer values")
    bad = (array < 0) | (array > 9)
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        value = array[r, c].item()
        raise ValueError(f"{name} holds {value!r} at (row {r}, col {c}); allowed: 0 (empty) to 9")
    return array.astype(np.uint8)


def rule_violations(board: Any) -> list[str]:
    """Every Sudoku rule ``board`` breaks (a digit twice in a row, column or box), as text."""
    grid = as_board(board)
    problems = []
    for kind, units in (("row", ROWS), ("column", COLS), ("box", BOXES)):
        for k, unit in enumerate(units):
            seen: dict[int, int] = {}
            for i in unit:
                d = int(grid.flat[i])
                if not d:
                    continue
                if d in seen:
                    (r0, c0), (r1, c1) = divmod(seen[d], 9), divmod(i, 9)
                    problems.append(f"digit {d} appears twice in {kind} {k}: at ({r0}, {c0}) and ({r1}, {c1})")
                else:
                    seen[d] = i
    return problems


def check_board(board: Any, name: str = "board") -> np.ndarray:
    """A validated ``(9, 9) uint8`` copy; ``ValueError`` if malformed or breaking a rule."""
    grid = as_board(board, name)
    problems = rule_violations(grid)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ValueError(f"{name} breaks the Sudoku rules: {problems[0]}{more}")
    return grid


def is_valid_partial(board: Any) -> bool:
    """True when ``board`` (well-formed, ``0`` = empty) breaks no rule; it may have no solution."""
    return not rule_violations(board)


def is_complete_solution(board: Any) -> bool:
    """True when ``board`` is filled (no ``0``) and breaks no rule."""
    grid = as_board(board)
    return bool(np.all(grid > 0)) and not rule_violations(grid)


def candidates(board: Any) -> np.ndarray:
    """``bool (9, 9, 9)``: ``[r, c, d - 1]`` is True when digit ``d`` may go in empty cell
    ``(r, c)`` without repeating a digit of its row, column or box (filled cells: all False).

    Reshaped to ``(729,)`` this is the environment's action mask (``r * 81 + c * 9 + d - 1``).
    """
    return legal_placements(as_board(board))


def legal_placements(grid: np.ndarray) -> np.ndarray:
    """:func:`candidates` for a board already known to be a ``(9, 9)`` array of ``0..9``
    (no validation: the environment's per-step action mask). A batch of boards
    ``(..., 9, 9)`` gives ``(..., 9, 9, 9)`` (the HRM policy masks its decisions with it)."""
    lead = grid.shape[:-2]
    present = grid[..., None] == np.arange(1, 10)  # (..., row, col, digit)
    in_row = present.any(axis=-2, keepdims=True)  # (..., row, 1, digit)
    in_col = present.any(axis=-3, keepdims=True)  # (..., 1, col, digit)
    boxes = present.reshape(*lead, 3, 3, 3, 3, 9).any(axis=(-4, -2), keepdims=True)
    in_box = np.broadcast_to(boxes, (*lead, 3, 3, 3, 3, 9)).reshape(*lead, SIZE, SIZE, 9)
    return ~(in_row | in_col | in_box) & (grid == 0)[..., None]


# ---- search ------------------------------------------------------------------------------------
@dataclass
class SolveResult:
    """What :func:`solve` found.

    ``solutions``: up to ``max_solutions`` solved boards (``(9, 9) uint8``), in the counting
    search's order. ``backtracks``: guesses undone (see the module docstring), of the rating
    search when the solution is unique, else of the counting search. ``guesses``: digits tried
    at branching points, of the same search. ``exhausted``: True when the whole counting tree
    was visited, i.e. the search did not stop at ``max_solutions``, so ``len(solutions)`` is the
    exact count.
    """

    solutions: list[np.ndarray] = field(default_factory=list)
    backtracks: int = 0
    guesses: int = 0
    exhausted: bool = True

    @property
    def unique(self) -> bool:
        """Exactly one solution, proven by a complete search."""
        return self.exhausted and len(self.solutions) == 1

    @property
    def solution(self) -> np.ndarray:
        """The single solution; ``ValueError`` when there is none or more than one."""
        if not self.solutions:
            raise ValueError("the board has no solution")
        if not self.unique:
            raise ValueError("the board has several solutions")
        return self.solutions[0]


class _Search:
    """One search: state shared by the recursion (kept out of the hot loops' arguments).

    A search state is three lists: ``vals`` (81 digits, 0 = unassigned), ``cand`` (81
    candidate bitmasks, 0 once the cell is assigned) and ``placed`` (27 bitmasks of the digits
    already placed in each unit). ``units`` selects the counting search's branching (see the
    module docstring); without it, the rating search's.
    """

    __slots__ = (
        "hidden",
        "max_solutions",
        "rng",
        "units",
        "max_guesses",
        "solutions",
        "backtracks",
        "guesses",
    )

    def __init__(
        self,
        hidden: bool,
        max_solutions: int,
        rng: np.random.Generator | None,
        units: bool = False,
        max_guesses: int = MAX_GUESSES,
    ):
        self.hidden = hidden
        self.max_solutions = max_solutions
        self.rng = rng
        self.units = units
        self.max_guesses = max_guesses
        self.solutions: list[list[int]] = []
        self.backtracks = 0
        self.guesses = 0

    def run(self, vals: list[int], cand: list[int], placed: list[int], singles: list[int]) -> None:
        if not _propagate(vals, cand, placed, singles, self.hidden):
            return
        best, best_n = -1, 10
        for i in range(N_CELLS):
            c = cand[i]
            if c:
                n = POPCOUNT[c]
                if n < best_n:
                    best, best_n = i, n
                    if n == 2:  # the minimum after propagation (singles are already placed)
                        break
        if best < 0:
            self.solutions.append(vals)
            return
        choices = None
        if self.units and best_n > 2:
            choices = _fewest_places(cand, placed, best_n)
        if choices is None:
            digits = DIGITS_OF[cand[best]]
            if self.rng is not None:
                digits = tuple(digits[k] for k in self.rng.permutation(len(digits)))
            choices = [(best, d) for d in digits]
        for i, d in choices:
            found_before = len(self.solutions)
            self.guesses += 1
            if self.guesses > self.max_guesses:
                raise SearchLimitError(
                    f"the search made {self.max_guesses} guesses (max_guesses) without settling the board"
                )
            v2, c2, p2, s2 = vals[:], cand[:], placed[:], []
            if _assign(v2, c2, p2, i, d, s2):
                self.run(v2, c2, p2, s2)
            if len(self.solutions) >= self.max_solutions:
                return
            if len(self.solutions) == found_before:
                self.backtracks += 1


def _fewest_places(cand: list[int], placed: list[int], below: int) -> list[tuple[int, int]] | None:
    """The ``(cell, digit)`` choices of the digit with the fewest possible cells in one unit
    (0 to 3 are looked for), when that is fewer than ``below``; None when no digit is that tight.

    An empty list means a digit has no place left in some unit: the branch is dead.
    Ties go to the lowest unit index (rows, then columns, then boxes), then the lowest digit.
    """
    best_u, best_bit, best_n = -1, 0, min(below, 4)
    for u in range(27):
        free = ALL_DIGITS & ~placed[u]
        if not free:
            continue
        c1 = c2 = c3 = c4 = 0  # digits with at least 1, 2, 3, 4 possible cells in the unit
        for i in UNITS[u]:
            c = cand[i]
            c4 |= c3 & c
            c3 |= c2 & c
            c2 |= c1 & c
            c1 |= c
        for n, exactly in enumerate((free & ~c1, c1 & ~c2, c2 & ~c3, c3 & ~c4)):
            if n >= best_n:
                break
            if exactly:
                best_u, best_bit, best_n = u, exactly & -exactly, n
                break
        if best_n == 0:
            return []
    if best_u < 0:
        return None
    d = BIT_TO_DIGIT[best_bit]
    return [(i, d) for i in UNITS[best_u] if cand[i] & best_bit]


def _assign(vals: list[int], cand: list[int], placed: list[int], i: int, d: int, singles: list[int]) -> bool:
    """Put ``d`` in cell ``i`` and remove it from the peers; False on a contradiction.

    Peers left with a single candidate are appended to ``singles`` (naked singles to place).
    """
    bit = 1 << (d - 1)
    if not cand[i] & bit:
        return False  # not a candidate: a peer already holds d
    vals[i] = d
    cand[i] = 0
    u_row, u_col, u_box = UNITS_OF[i]
    placed[u_row] |= bit
    placed[u_col] |= bit
    placed[u_box] |= bit
    for p in PEERS[i]:
        c = cand[p]
        if c & bit:
            c ^= bit
            if not c:
                return False
            cand[p] = c
            if not c & (c - 1):
                singles.append(p)
    return True


def _propagate(vals: list[int], cand: list[int], placed: list[int], singles: list[int], hidden: bool) -> bool:
    """Naked singles (from the ``singles`` queue), then hidden singles, until nothing changes;
    False on a contradiction."""
    while True:
        while singles:
            i = singles.pop()
            c = cand[i]
            if c and not _assign(vals, cand, placed, i, BIT_TO_DIGIT[c], singles):
                return False
        if not hidden:
            return True
        progress = False
        for u in range(27):
            done = placed[u]
            if done == ALL_DIGITS:
                continue
            once = twice = 0
            unit = UNITS[u]
            for i in unit:
                c = cand[i]
                twice |= once & c
                once |= c
            if once | done != ALL_DIGITS:
                return False  # some digit has no place left in this unit
            lone = once & ~twice
            if lone:
                for i in unit:
                    c = cand[i] & lone
                    if c:
                        if c & (c - 1):
                            return False  # two digits need this same cell
                        if not _assign(vals, cand, placed, i, BIT_TO_DIGIT[c], singles):
                            return False
                        progress = True
        if not progress:
            return True


def _initial_state(
    flat: list[int],
) -> tuple[list[int], list[int], list[int], list[int]] | None:
    """Search state with the givens placed (and the naked singles they create queued);
    None when the givens already leave some cell without a candidate."""
    vals = [0] * N_CELLS
    cand = [ALL_DIGITS] * N_CELLS
    placed = [0] * len(UNITS)
    singles: list[int] = []
    for i, d in enumerate(flat):
        if d and not _assign(vals, cand, placed, i, d, singles):
            return None
    return vals, cand, placed, singles


def solved_by_singles(flat: list[int]) -> bool:
    """True when naked and hidden singles alone fill the trusted flat board ``flat``.

    Such a board has exactly one solution and rates 0 backtracks, and conversely (with a
    unique solution, every branching cell has a failing candidate), so this one propagation
    decides the easy band without a search.
    """
    state = _initial_state(flat)
    if state is None:
        return False
    vals, cand, placed, singles = state
    return _propagate(vals, cand, placed, singles, True) and all(vals)


def search_flat(
    flat: list[int],
    max_solutions: int = 2,
    hidden_singles: bool = True,
    rng: np.random.Generator | None = None,
    *,
    count: bool = False,
    max_guesses: int = MAX_GUESSES,
) -> tuple[list[list[int]], int, int]:
    """One search on a trusted flat list of 81 ints, without validation or arrays (the
    generator's inner loop): the rating search, or with ``count=True`` the counting search.

    Returns ``(solutions, backtracks, guesses)``; :class:`SearchLimitError` after
    ``max_guesses`` guesses.
    """
    search = _Search(hidden_singles, max_solutions, rng, count, max_guesses)
    state = _initial_state(flat)
    if state is not None:
        search.run(*state)
    return search.solutions, search.backtracks, search.guesses


def solve(
    board: Any,
    max_solutions: int = 2,
    *,
    hidden_singles: bool = True,
    rng: np.random.Generator | None = None,
    max_guesses: int = MAX_GUESSES,
) -> SolveResult:
    """Search ``board`` for up to ``max_solutions`` solutions, counting backtracks.

    The counting search finds the solutions; when it proves there is exactly one, the rating
    search gives ``backtracks`` and ``guesses`` (the difficulty; ``hidden_singles`` and ``rng``,
    the order of digits tried, only apply to it). Otherwise they are the counting search's.
    ``max_solutions=2`` (the default) proves uniqueness: ``result.unique``.

    Raises ``ValueError`` for a malformed board or one that already breaks a rule, and
    :class:`SearchLimitError` (a ``ValueError``) when either search needs more than
    ``max_guesses`` guesses; a well-formed board without solution gives ``solutions == []``.
    """
    for name, value in (("max_solutions", max_solutions), ("max_guesses", max_guesses)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    grid = check_board(board)
    max_solutions, max_guesses = int(max_solutions), int(max_guesses)
    flat = grid.ravel().tolist()
    solutions, backtracks, guesses = search_flat(flat, max_solutions, count=True, max_guesses=max_guesses)
    exhausted = len(solutions) < max_solutions
    if exhausted and len(solutions) == 1:
        _, backtracks, guesses = search_flat(flat, 2, bool(hidden_singles), rng, max_guesses=max_guesses)
    return SolveResult(
        solutions=[np.asarray(s, dtype=np.uint8).reshape(SIZE, SIZE) for s in solutions],
        backtracks=backtracks,
        guesses=guesses,
        exhausted=exhausted,
    )


def count_solutions(board: Any, limit: int = 2) -> int:
    """Number of solutions of ``board``, counting no further than ``limit``."""
    return len(solve(board, max_solutions=limit).solutions)


def rate_difficulty(board: Any) -> int:
    """Backtracks of the full search of a uniquely solvable puzzle: the difficulty measure.

    Raises ``ValueError`` when ``board`` has no solution or several.
    """
    result = solve(board, max_solutions=2)
    if not result.solutions:
        raise ValueError("the puzzle has no solution")
    if not result.unique:
        raise ValueError("the puzzle has several solutions")
    return result.backtracks


def random_solution(rng: np.random.Generator) -> np.ndarray:
    """A random complete grid (``(9, 9) uint8``), drawn with ``rng``."""
    solutions, _, _ = search_flat([0] * N_CELLS, max_solutions=1, rng=rng)
    return np.asarray(solutions[0], dtype=np.uint8).reshape(SIZE, SIZE)


def parse_board(text: str) -> np.ndarray:
    """A board from 81 characters (digits; ``0`` or ``.`` for empty; whitespace and ``|-+``
    ignored), e.g. the common one-line puzzle format."""
    chars = [ch for ch in text if not ch.isspace() and ch not in "|-+"]
    if len(chars) != N_CELLS:
        raise ValueError(f"a board needs 81 cells, got {len(chars)} in {text!r}")
    bad = sorted({ch for ch in chars if ch not in "0123456789."})
    if bad:
        raise ValueError(f"a board holds digits 1-9 and '0' or '.' for empty; got {bad}")
    values = [0 if ch == "." else int(ch) for ch in chars]
    return np.asarray(values, dtype=np.uint8).reshape(SIZE, SIZE)


def board_to_string(board: Any) -> str:
    """The 81-character one-line form of ``board`` (``.`` for empty)."""
    grid = as_board(board)
    return "".join(str(d) if d else "." for d in grid.ravel().tolist())
