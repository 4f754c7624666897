"""The ``arc`` task: a minimal ARC-like family of grid transformations, told apart by identity.

Ten transformations (:data:`TRANSFORMS`) of small grids (sides up to 10, colours 0-9, 0 the
background), each with its own input generator. A grid sits at the top-left of a fixed 11x11
canvas as tokens, the reference HRM's layout: ``PAD`` (0) outside, ``EOG`` (1, end of grid) on the
row below and the column right of the grid, colour ``c`` as ``2 + c``. Input and answer are both
canvases; the answer's shape may differ from the input's (tiling, counting, cropping), and a
prediction is *valid* when it is a well-formed canvas.

Nothing in an input says which transformation to apply: every example carries a puzzle
identifier, ``1 + t * variants + v`` for transformation ``t`` in augmentation variant ``v`` (0 is
a blank identifier no example uses), which the model reads as a puzzle embedding. Variant 0 is the
identity; variant ``v > 0`` is a fixed dihedral symmetry plus a colour permutation that keeps the
background, applied to input and answer together. ``(A(x), A(f(x)))`` is an example of ``A f A^-1``,
which is another puzzle (a clockwise turn seen in a mirror turns the other way), so every variant
is an identifier of its own, as in the reference's augmented ARC data; :meth:`ArcTask.in_variant`
re-expresses an example (or a predicted answer) in another variant, which maps answers back at
test time. Transformations listed in ``held_out`` are never drawn by a training stream
(``split: trained``); eval sets draw them with ``split: held_out``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from agents.puzzles.base import PuzzleError, PuzzleTask, as_int_grids

CANVAS = 11  # the fixed canvas side: a 10x10 grid plus its end-of-grid row and column
MAX_SIDE = CANVAS - 1
PAD, EOG, COLOUR_OFFSET = 0, 1, 2
N_COLOURS = 10
FILL = 4  # the colour fill_enclosed paints
VARIANT_SEED = 20250730  # fixes the variant table: variant v is the same symmetry and colours in every run

Grid = np.ndarray
Generator = Callable[[np.random.Generator, int, int], Grid]


# ---- the transformations (answer from input) ---------------------------------------------
def rotate(grid: Grid) -> Grid:
    """A quarter turn clockwise."""
    return np.rot90(grid, -1).copy()


def mirror(grid: Grid) -> Grid:
    """Left-right mirror."""
    return grid[:, ::-1].copy()


def recolour(grid: Grid) -> Grid:
    """Every colour c > 0 becomes c % 9 + 1 (1->2, ..., 9->1); the background stays."""
    return np.where(grid > 0, grid % 9 + 1, 0).astype(grid.dtype)


def gravity(grid: Grid) -> Grid:
    """Every coloured cell falls to the bottom of its column, keeping their order."""
    out = np.zeros_like(grid)
    for col in range(grid.shape[1]):
        cells = grid[:, col][grid[:, col] > 0]
        if cells.size:
            out[grid.shape[0] - cells.size :, col] = cells
    return out


def _neighbours(r: int, c: int, shape: tuple[int, int]):
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        if 0 <= r + dr < shape[0] and 0 <= c + dc < shape[1]:
            yield r + dr, c + dc


def fill_enclosed(grid: Grid) -> Grid:
    """Background cells that cannot reach the border through background (4-neighbours) become FILL."""
    outside = np.zeros(grid.shape, dtype=bool)
    stack = [
        (int(r), int(c))
        for r, c in np.argwhere(grid == 0)
        if r in (0, grid.shape[0] - 1) or c in (0, grid.shape[1] - 1)
    ]
    for cell in stack:
        outside[cell] = True
    while stack:
        for nb in _neighbours(*stack.pop(), grid.shape):
            if grid[nb] == 0 and not outside[nb]:
                outside[nb] = True
                stack.append(nb)
    out = grid.copy()
    out[(grid == 0) & ~outside] = FILL
    return out


def tile(grid: Grid) -> Grid:
    """The pattern repeated 2x2."""
    return np.tile(grid, (2, 2))


def count(grid: Grid) -> Grid:
    """One row of as many cells as the input has coloured cells, in their (first) colour."""
    cells = grid[grid > 0]
    return np.full((1, max(1, cells.size)), cells[0] if cells.size else 0, dtype=grid.dtype)


def components(grid: Grid) -> list[np.ndarray]:
    """The objects of a grid: boolean masks of its 4-connected one-colour regions, largest first."""
    seen = np.zeros(grid.shape, dtype=bool)
    found = []
    for r, c in np.argwhere(grid > 0):
        if seen[r, c]:
            continue
        mask, stack = np.zeros(grid.shape, dtype=bool), [(int(r), int(c))]
        mask[r, c] = seen[r, c] = True
        while stack:
            for nb in _neighbours(*stack.pop(), grid.shape):
                if grid[nb] == grid[r, c] and not seen[nb]:
                    mask[nb] = seen[nb] = True
                    stack.append(nb)
        found.append(mask)
    return sorted(found, key=lambda m: -int(m.sum()))  # stable: ties keep reading order


def largest_object(grid: Grid) -> Grid:
    """The bounding box of the largest object, with only that object in it."""
    objects = components(grid)
    if not objects:
        return grid.copy()
    rows, cols = np.nonzero(objects[0])
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    return np.where(objects[0], grid, 0)[box]


def draw_line(grid: Grid) -> Grid:
    """Every coloured cell paints the cells to its right in its colour, up to the next coloured cell."""
    out = grid.copy()
    for row in out:
        current = 0
        for col in range(row.size):
            current = row[col] if row[col] > 0 else current
            row[col] = current
    return out


# ---- input generators -----------------------------------------------------------------------
def _side(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


def scatter(rng: np.random.Generator, lo: int, hi: int, density: tuple[float, float] = (0.15, 0.5)) -> Grid:
    """A grid of random colours on a random share of its cells (at least one)."""
    h, w = _side(rng, lo, hi), _side(rng, lo, hi)
    mask = rng.random((h, w)) < rng.uniform(*density)
    if not mask.any():
        mask[rng.integers(h), rng.integers(w)] = True
    grid = np.zeros((h, w), dtype=np.uint8)
    grid[mask] = rng.integers(1, N_COLOURS, size=int(mask.sum()))
    return grid


def _place(rng: np.random.Generator, taken: np.ndarray, rh: int, rw: int) -> tuple[int, int] | None:
    """A top-left corner where an ``rh x rw`` box and a one-cell margin around it are free, or None."""
    h, w = taken.shape
    for _ in range(30):
        r, c = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
        if not taken[max(0, r - 1) : r + rh + 1, max(0, c - 1) : c + rw + 1].any():
            taken[r : r + rh, c : c + rw] = True
            return r, c
    return None


def rings(rng: np.random.Generator, lo: int, hi: int) -> Grid:
    """One or two hollow rectangles (sides >= 3) apart from each other, in colours other than FILL."""
    h, w = _side(rng, max(lo, 5), hi), _side(rng, max(lo, 5), hi)
    grid, taken = np.zeros((h, w), dtype=np.uint8), np.zeros((h, w), dtype=bool)
    colours = [c for c in range(1, N_COLOURS) if c != FILL]
    for _ in range(int(rng.integers(1, 3))):
        rh, rw = _side(rng, 3, min(h, 6)), _side(rng, 3, min(w, 6))
        corner = _place(rng, taken, rh, rw)
        if corner is None:
            continue
        r, c = corner
        grid[r : r + rh, c : c + rw] = colours[int(rng.integers(len(colours)))]
        grid[r + 1 : r + rh - 1, c + 1 : c + rw - 1] = 0
    return grid


def small_pattern(rng: np.random.Generator, lo: int, hi: int) -> Grid:
    """A dense pattern with sides up to half the largest side (its 2x2 tiling fits)."""
    top = max(2, hi // 2)
    return scatter(rng, min(max(2, lo), top), top, density=(0.3, 0.7))


def dots(rng: np.random.Generator, lo: int, hi: int) -> Grid:
    """1-10 cells of one colour."""
    h, w = _side(rng, lo, hi), _side(rng, lo, hi)
    k = int(rng.integers(1, min(MAX_SIDE, h * w) + 1))
    grid = np.zeros(h * w, dtype=np.uint8)
    grid[rng.choice(h * w, size=k, replace=False)] = rng.integers(1, N_COLOURS)
    return grid.reshape(h, w)


def boxes(rng: np.random.Generator, lo: int, hi: int) -> Grid:
    """Two or three solid rectangles of distinct colours and distinct areas, apart from each other."""
    h, w = _side(rng, max(lo, 5), hi), _side(rng, max(lo, 5), hi)
    grid, taken = np.zeros((h, w), dtype=np.uint8), np.zeros((h, w), dtype=bool)
    colours = rng.permutation(np.arange(1, N_COLOURS))
    areas: set[int] = set()
    for index in range(int(rng.integers(2, 4))):
        rh, rw = _side(rng, 1, 4), _side(rng, 1, 4)
        if rh * rw in areas:
            continue
        corner = _place(rng, taken, rh, rw)
        if corner is not None:
            areas.add(rh * rw)
            grid[corner[0] : corner[0] + rh, corner[1] : corner[1] + rw] = colours[index]
    return grid


def line_seeds(rng: np.random.Generator, lo: int, hi: int) -> Grid:
    """1-3 cells in distinct rows, none in the last column."""
    h, w = _side(rng, lo, hi), _side(rng, max(lo, 2), hi)
    grid = np.zeros((h, w), dtype=np.uint8)
    for row in rng.choice(h, size=int(rng.integers(1, min(3, h) + 1)), replace=False):
        grid[row, rng.integers(0, w - 1)] = rng.integers(1, N_COLOURS)
    return grid


#: name -> (input generator, transformation), in the order that numbers the identifiers.
TRANSFORMS: dict[str, tuple[Generator, Callable[[Grid], Grid]]] = {
    "copy": (scatter, lambda grid: grid.copy()),
    "rotate": (scatter, rotate),
    "mirror": (scatter, mirror),
    "recolour": (scatter, recolour),
    "gravity": (lambda rng, lo, hi: scatter(rng, lo, hi, (0.1, 0.4)), gravity),
    "fill_enclosed": (rings, fill_enclosed),
    "tile": (small_pattern, tile),
    "count": (dots, count),
    "largest_object": (boxes, largest_object),
    "draw_line": (line_seeds, draw_line),
}

DEFAULT_PARAMS: dict[str, Any] = {
    "tasks": list(TRANSFORMS),  # the family; its order numbers the identifiers
    "held_out": ["mirror", "fill_enclosed", "draw_line"],  # never drawn by the training stream
    "split": "trained",  # which transformations a set draws: trained, held_out or all
    "variants": 16,  # augmentation variants per transformation, each its own identifier (1: none)
    "augmented": True,  # draw each example in a random variant (False: variant 0, the original)
    "min_side": 3,
    "max_side": MAX_SIDE,
}
SPLITS = ("trained", "held_out", "all")


# ---- canvases and variants ---------------------------------------------------------------
def encode(grid: Grid) -> np.ndarray:
    """A grid (sides 1..10, colours 0-9) on the canvas: colours + 2 at the top-left, EOG row and column, PAD."""
    h, w = grid.shape
    canvas = np.full((CANVAS, CANVAS), PAD, dtype=np.uint8)
    canvas[:h, :w] = grid + COLOUR_OFFSET
    canvas[h, :w] = EOG
    canvas[:h, w] = EOG
    return canvas


def decode(canvas: np.ndarray) -> Grid | None:
    """The grid on a canvas, or None when the canvas is not one :func:`encode` can write."""
    canvas = np.asarray(canvas)
    h = int(np.argmin(canvas[:, 0] >= COLOUR_OFFSET))
    w = int(np.argmin(canvas[0, :] >= COLOUR_OFFSET))
    if h == 0 or w == 0:
        return None
    grid = (canvas[:h, :w].astype(np.int64) - COLOUR_OFFSET).astype(np.uint8)
    if (canvas[:h, :w] < COLOUR_OFFSET).any() or not np.array_equal(encode(grid), canvas):
        return None
    return grid


def dihedral(grid: Grid, k: int, inverse: bool = False) -> Grid:
    """Symmetry ``k`` of :mod:`agents.augment` (k % 4 quarter turns, then a mirror for k >= 4), or its inverse."""
    if inverse:
        grid = grid[:, ::-1] if k >= 4 else grid
        return np.rot90(grid, -(k % 4)).copy()
    out = np.rot90(grid, k % 4)
    return (out[:, ::-1] if k >= 4 else out).copy()


@lru_cache(maxsize=8)
def variant_table(variants: int) -> tuple[tuple[int, np.ndarray], ...]:
    """``(symmetry, colour map)`` of every variant; variant 0 is the identity, the others drawn
    from a fixed seed one after another (so variant v is the same whatever the table's size)."""
    rng = np.random.default_rng(VARIANT_SEED)
    table = [(0, np.arange(N_COLOURS, dtype=np.uint8))]
    for _ in range(1, variants):
        k = int(rng.integers(8))
        table.append((k, np.concatenate([[0], rng.permutation(np.arange(1, N_COLOURS))]).astype(np.uint8)))
    return tuple(table)


def apply_variant(grid: Grid, variant: int, variants: int, inverse: bool = False) -> Grid:
    """``grid`` in variant ``variant`` (symmetry then colours), or back from it (``inverse``)."""
    k, colours = variant_table(variants)[variant]
    if inverse:
        return dihedral(np.argsort(colours).astype(np.uint8)[grid], k, inverse=True)
    return colours[dihedral(grid, k)]


# ---- the task ------------------------------------------------------------------------------
def _check_names(value: Any, key: str, allowed: list[str], empty_ok: bool) -> list[str]:
    if not isinstance(value, (list, tuple)) or (not value and not empty_ok):
        raise PuzzleError(
            f"arc {key} must be a {'' if empty_ok else 'non-empty '}list of transformations, got {value!r}"
        )
    unknown = [name for name in value if name not in allowed]
    if unknown or len(set(value)) != len(value):
        raise PuzzleError(f"arc {key}={list(value)!r}: unknown or repeated names {unknown}; allowed: {allowed}")
    return list(value)


def _check_int(params: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PuzzleError(f"arc {key}={value!r} must be an integer in [{low}, {high}]")
    return value


class ArcTask(PuzzleTask):
    """ARC-like transformations on an 11x11 canvas, every example with its puzzle identifier (module docstring)."""

    name = "arc"
    generator_version = "arc-1"
    input_vocab = COLOUR_OFFSET + N_COLOURS  # PAD, EOG, 10 colours
    output_vocab = COLOUR_OFFSET + N_COLOURS
    fixed_shape = (CANVAS, CANVAS)
    dihedral_views = False  # a turned canvas moves the grid off its corner: vote over variants instead

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - set(DEFAULT_PARAMS))
        if unknown:
            raise PuzzleError(f"unknown arc parameter(s) {unknown}; allowed: {sorted(DEFAULT_PARAMS)}")
        out = {**DEFAULT_PARAMS, **dict(params)}
        out["tasks"] = _check_names(out["tasks"], "tasks", list(TRANSFORMS), empty_ok=False)
        out["held_out"] = _check_names(out["held_out"], "held_out", out["tasks"], empty_ok=True)
        if len(out["held_out"]) == len(out["tasks"]):
            raise PuzzleError("arc held_out holds every transformation: none is left to train on")
        if out["split"] not in SPLITS:
            raise PuzzleError(f"arc split={out['split']!r}; allowed: {list(SPLITS)}")
        if out["split"] == "held_out" and not out["held_out"]:
            raise PuzzleError("arc split=held_out but held_out is empty")
        out["variants"] = _check_int(out, "variants", 1, 1000)
        if not isinstance(out["augmented"], bool):
            raise PuzzleError(f"arc augmented must be true or false, got {out['augmented']!r}")
        out["max_side"] = _check_int(out, "max_side", 5, MAX_SIDE)
        out["min_side"] = _check_int(out, "min_side", 2, out["max_side"])
        return out

    def check_training_params(self, params: Mapping[str, Any]) -> None:
        if params["split"] != "trained":
            raise PuzzleError(f"arc training draws the trained transformations: task_params.split must be "
                              f"'trained', got {params['split']!r} (eval sets choose their split)")  # fmt: skip

    def drawn(self, params: Mapping[str, Any]) -> list[str]:
        """The transformations a set of these params draws."""
        if params["split"] == "all":
            return list(params["tasks"])
        held = params["split"] == "held_out"
        return [name for name in params["tasks"] if (name in params["held_out"]) == held]

    def identifier(self, params: Mapping[str, Any], name: str, variant: int) -> int:
        return 1 + params["tasks"].index(name) * params["variants"] + variant

    # ---- data ----------------------------------------------------------------------------
    def sample_examples(self, rng: np.random.Generator, n: int, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``n`` examples, the transformations drawn in equal shares (shuffled), each in a random
        variant (``augmented``) or in variant 0."""
        params = self.check_params(params)
        names, variants = self.drawn(params), params["variants"]
        order = rng.permutation(np.arange(n) % len(names))
        chosen = rng.integers(0, variants, size=n) if params["augmented"] else np.zeros(n, dtype=np.int64)
        inputs = np.empty((n, CANVAS, CANVAS), dtype=np.uint8)
        labels = np.empty((n, CANVAS, CANVAS), dtype=np.int64)
        ids = np.empty(n, dtype=np.int64)
        for i in range(n):
            name, variant = names[order[i]], int(chosen[i])
            make, transform = TRANSFORMS[name]
            grid = make(rng, params["min_side"], params["max_side"])
            inputs[i] = encode(apply_variant(grid, variant, variants))
            labels[i] = encode(apply_variant(transform(grid), variant, variants))
            ids[i] = self.identifier(params, name, variant)
        return {"inputs": inputs, "labels": labels, "puzzle_identifiers": ids}

    def sample(self, rng: np.random.Generator, n: int, params: Mapping[str, Any]) -> np.ndarray:
        return self.sample_examples(rng, n, params)["inputs"]

    def check_inputs(self, inputs: Any, what: str = "puzzles") -> np.ndarray:
        grids = as_int_grids(inputs, what, 0, self.input_vocab - 1)
        if grids.shape[1:] != (CANVAS, CANVAS):
            raise PuzzleError(
                f"{what}: arc inputs are {CANVAS}x{CANVAS} canvases, got {grids.shape[1]}x{grids.shape[2]}"
            )
        for index, canvas in enumerate(grids):
            if decode(canvas) is None:
                raise PuzzleError(f"{what}[{index}] is not a canvas: a grid at the top-left, colours 2-11, "
                                  f"end-of-grid {EOG} below and right of it, pad {PAD} elsewhere")  # fmt: skip
        return grids

    def targets(self, inputs: np.ndarray) -> np.ndarray:
        raise PuzzleError(
            "arc answers depend on each example's transformation, which its input does not say: they come "
            "with the examples and their puzzle identifiers (held-out sets), not from inputs alone"
        )

    def is_valid(self, puzzle: np.ndarray, prediction: np.ndarray) -> bool:
        return decode(np.asarray(prediction)) is not None

    # ---- identifiers -------------------------------------------------------------------------
    def num_identifiers(self, params: Mapping[str, Any]) -> int:
        return 1 + len(params["tasks"]) * params["variants"]

    def identifier_layout(self, params: Mapping[str, Any]) -> Any:
        return {"tasks": list(params["tasks"]), "variants": params["variants"]}

    def num_variants(self, params: Mapping[str, Any]) -> int:
        return params["variants"]

    def variant_of(self, identifiers: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
        return (np.asarray(identifiers, dtype=np.int64) - 1) % params["variants"]

    def groups(self, identifiers: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
        names = np.array(["blank", *params["tasks"]], dtype=object)
        return names[(np.asarray(identifiers) - 1) // params["variants"] + 1]

    def in_variant(
        self, grids: np.ndarray, identifiers: np.ndarray, variants: Any, params: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Canvases of examples with ``identifiers`` re-expressed in ``variants`` (one or one per
        example), with their new identifiers; a canvas that is not well formed becomes all PAD."""
        size = params["variants"]
        identifiers = np.asarray(identifiers, dtype=np.int64)
        targets = np.broadcast_to(np.asarray(variants, dtype=np.int64), identifiers.shape)
        if (identifiers < 1).any() or (identifiers >= self.num_identifiers(params)).any():
            raise PuzzleError(f"arc identifiers must lie in 1..{self.num_identifiers(params) - 1}")
        if (targets < 0).any() or (targets >= size).any():
            raise PuzzleError(f"arc variants must lie in 0..{size - 1}")
        out = np.full(np.shape(grids), PAD, dtype=np.asarray(grids).dtype)
        for i, (canvas, ident, target) in enumerate(zip(grids, identifiers, targets)):
            grid = decode(canvas)
            if grid is not None:
                original = apply_variant(grid, int((ident - 1) % size), size, inverse=True)
                out[i] = encode(apply_variant(original, int(target), size))
        return out, (identifiers - 1) // size * size + 1 + targets
