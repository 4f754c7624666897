"""What a puzzle task is: inputs, targets, a checker and answer-preserving augmentations.

A task reads whole puzzles as integer grids ``(N, rows, cols)`` and answers one class per cell
(the HRM's sequence head). Tasks are numpy-only (no torch), so data making, checking and the
tests need no model. New task families plug in by subclassing :class:`PuzzleTask` and calling
:func:`agents.puzzles.register_task`. A family whose examples differ by identity, not by input
alone (:mod:`agents.puzzles.arc`), gives every example a puzzle identifier
(:meth:`PuzzleTask.sample_examples`, :meth:`PuzzleTask.num_identifiers`), which the model reads as
a puzzle embedding.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np


class PuzzleError(ValueError):
    """A puzzle, a dataset or a parameter that does not fit the task."""


class PuzzleTask(ABC):
    """One puzzle family. Subclasses set the class attributes and implement the methods.

    Attributes:
        name: registry key (also recorded in checkpoints and cached datasets).
        generator_version: bumped whenever sampling or targets change, so that a cached
            dataset made by another version is refused instead of silently reused.
        input_vocab / output_vocab / aux_vocab: token ids of inputs, targets, aux targets (0:
            no auxiliary target).
        array_name: the ``.npz`` array :mod:`agents.solve` reads by default.
        fixed_shape: (rows, cols) every puzzle must have, or None (any size the task allows).
        dihedral_views: whether a turned or mirrored puzzle is a puzzle of the same kind (test-time
            views, ``--views``); tasks with identifiers vote over their variants instead.
    """

    name: str = ""
    generator_version: str = "1"
    input_vocab: int = 0
    output_vocab: int = 0
    aux_vocab: int = 0
    array_name: str = "inputs"
    fixed_shape: tuple[int, int] | None = None
    dihedral_views: bool = True

    # ---- parameters --------------------------------------------------------------------
    @abstractmethod
    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The sampling parameters with defaults filled in; ``PuzzleError`` naming a bad one."""

    # ---- data --------------------------------------------------------------------------
    @abstractmethod
    def sample(self, rng: np.random.Generator, n: int, params: Mapping[str, Any]) -> np.ndarray:
        """``n`` fresh puzzles ``(n, rows, cols)`` (one shape per call) drawn with ``rng``."""

    def sample_examples(self, rng: np.random.Generator, n: int, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``n`` examples as arrays: ``inputs``, ``labels`` and, for a task with identifiers,
        ``puzzle_identifiers`` ``(n,)``. Default: :meth:`sample`, answered by :meth:`targets`."""
        inputs = self.sample(rng, n, params)
        return {"inputs": inputs, "labels": self.targets(inputs)}

    def check_training_params(self, params: Mapping[str, Any]) -> None:
        """``PuzzleError`` when checked params may serve an eval set but not a training stream."""
        return None

    @abstractmethod
    def check_inputs(self, inputs: Any, what: str = "puzzles") -> np.ndarray:
        """``inputs`` as a validated ``(N, rows, cols) uint8`` array, or ``PuzzleError``."""

    @abstractmethod
    def targets(self, inputs: np.ndarray) -> np.ndarray:
        """The answer of every puzzle, ``(N, rows, cols) int64`` class ids."""

    def aux_targets(self, inputs: np.ndarray) -> np.ndarray | None:
        """A dense auxiliary target per cell, or None when the task has none."""
        return None

    def augment(
        self, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """A random answer-preserving transform of every puzzle (default: none)."""
        return inputs, labels

    # ---- puzzle identifiers (tasks told apart by identity) ----------------------------------
    def num_identifiers(self, params: Mapping[str, Any]) -> int:
        """Rows of the puzzle-embedding table these params need (0: examples carry no identifier)."""
        return 0

    def identifier_layout(self, params: Mapping[str, Any]) -> Any:
        """What fixes the meaning of every identifier: sets scored by one model must share it."""
        return None

    def num_variants(self, params: Mapping[str, Any]) -> int:
        """Augmentation variants per puzzle, each its own identifier (1: none to vote over)."""
        return 1

    def variant_of(self, identifiers: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
        """The augmentation variant every identifier stands for (0: the puzzle as drawn)."""
        return np.zeros(len(identifiers), dtype=np.int64)

    def groups(self, identifiers: np.ndarray, params: Mapping[str, Any]) -> np.ndarray | None:
        """Per example, the name of the puzzle its identifier stands for (per-task scores), or None."""
        return None

    def in_variant(
        self, grids: np.ndarray, identifiers: np.ndarray, variants: Any, params: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Inputs or answers of the examples with ``identifiers`` re-expressed in augmentation
        ``variants``, with the identifiers of those variants (voting maps answers back with it)."""
        raise PuzzleError(f"the {self.name} task has no augmentation variants")

    # ---- checking ----------------------------------------------------------------------
    @abstractmethod
    def is_valid(self, puzzle: np.ndarray, prediction: np.ndarray) -> bool:
        """True when ``prediction`` is a correct answer to ``puzzle`` (not only the target)."""

    def metrics(self, inputs: np.ndarray, predictions: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        """Per-puzzle exact / valid / cell accuracy (arrays) of a batch of predictions."""
        predictions = np.asarray(predictions)
        exact = np.all(predictions == labels, axis=(1, 2))
        valid = np.array([self.is_valid(x, p) for x, p in zip(inputs, predictions)], dtype=bool)
        cells = np.mean(predictions == labels, axis=(1, 2))
        return {"exact": exact, "valid": valid, "cell_accuracy": cells}

    def describe(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "generator_version": self.generator_version,
            "input_vocab": self.input_vocab,
            "output_vocab": self.output_vocab,
            "aux_vocab": self.aux_vocab,
        }


def as_int_grids(inputs: Any, what: str, low: int, high: int) -> np.ndarray:
    """``inputs`` as ``(N, rows, cols) uint8`` with values in ``[low, high]``, or ``PuzzleError``."""
    try:
        array = np.asarray(inputs)
    except Exception as exc:  # ragged lists
        raise PuzzleError(f"{what} is not a rectangular array: {exc}") from exc
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise PuzzleError(f"{what} must be (N, rows, cols) (or one (rows, cols) grid), got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise PuzzleError(f"{what} must hold integers, got dtype {array.dtype}")
    if array.size and (array.min() < low or array.max() > high):
        bad = array[(array < low) | (array > high)][0]
        raise PuzzleError(f"{what} holds the value {int(bad)}; allowed: {low}..{high}")
    return array.astype(np.uint8)
