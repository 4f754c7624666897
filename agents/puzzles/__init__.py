"""Supervised puzzle tasks for the HRM's sequence head (issue 9): an open registry.

``get_task("maze")`` / ``get_task("sudoku")`` / ``get_task("arc")`` return a :class:`PuzzleTask`;
a new family is one more module whose task class is passed to :func:`register_task`. This package
is numpy-only at import; the model, training and solving code that needs torch lives in
:mod:`agents.puzzles.models`, :mod:`agents.train_puzzle` and :mod:`agents.solve`.
"""

from __future__ import annotations

from agents.puzzles.arc import ArcTask
from agents.puzzles.base import PuzzleError, PuzzleTask
from agents.puzzles.maze import MazeTask
from agents.puzzles.sudoku import SudokuTask

TASKS: dict[str, type[PuzzleTask]] = {}


def register_task(task_class: type[PuzzleTask]) -> type[PuzzleTask]:
    """Add a task class under its ``name`` (usable as a decorator); names are unique."""
    name = getattr(task_class, "name", "")
    if not name:
        raise ValueError(f"{task_class.__name__} has no name")
    if name in TASKS and TASKS[name] is not task_class:
        raise ValueError(f"a puzzle task named {name!r} is already registered ({TASKS[name].__name__})")
    TASKS[name] = task_class
    return task_class


def get_task(name: str) -> PuzzleTask:
    """A fresh task object by name; ``PuzzleError`` listing the registered names otherwise."""
    if name not in TASKS:
        raise PuzzleError(f"unknown puzzle task {name!r}; registered tasks: {sorted(TASKS)}")
    return TASKS[name]()


register_task(MazeTask)
register_task(SudokuTask)
register_task(ArcTask)

__all__ = ["TASKS", "ArcTask", "MazeTask", "PuzzleError", "PuzzleTask", "SudokuTask", "get_task", "register_task"]
