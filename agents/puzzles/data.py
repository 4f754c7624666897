"""Puzzle datasets: made from a task and a seed, cached under ``data/`` as plain arrays.

A cached set is two files: ``<stem>.npz`` (``inputs``, ``labels`` and, for a task with puzzle
identifiers, ``puzzle_identifiers``; read with
``allow_pickle=False``, so a crafted file cannot run code) and ``<stem>.json`` (task, generator
version, parameters, size, seed). The stem includes a hash of that metadata; loading checks the
metadata again, so a set made for another task or by another generator version fails with an
error instead of being reused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from agents.puzzles.base import PuzzleError, PuzzleTask
from agents.puzzles.sudoku import SudokuTask

FORMAT = "hrm-gym-puzzle-dataset"


def make_dataset(task: PuzzleTask, params: Mapping[str, Any], n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` puzzles with targets (and identifiers), deterministic in ``seed`` (one shape per set)."""
    rng = np.random.default_rng(seed)
    if isinstance(task, SudokuTask):
        inputs, solutions = task.sample_with_solutions(rng, n, params)
        return {"inputs": inputs, "labels": solutions.astype(np.int64)}
    return task.sample_examples(rng, n, params)


def dataset_metadata(task: PuzzleTask, params: Mapping[str, Any], n: int, seed: int) -> dict[str, Any]:
    """The set's description in its JSON form (tuples as lists), as written beside it and read back."""
    meta = {
        "format": FORMAT,
        "task": task.name,
        "generator_version": task.generator_version,
        "params": task.check_params(params),
        "n": int(n),
        "seed": int(seed),
    }
    return json.loads(json.dumps(meta))


def cached_dataset(
    task: PuzzleTask,
    params: Mapping[str, Any],
    n: int,
    seed: int,
    data_dir: str | Path = "data",
    label: str = "set",
) -> dict[str, np.ndarray]:
    """The dataset for these settings: read from ``data_dir/puzzles`` or made and written there."""
    meta = dataset_metadata(task, params, n, seed)
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:12]
    stem = Path(data_dir) / "puzzles" / f"{task.name}-{label}-n{n}-seed{seed}-{digest}"
    path = stem.with_suffix(".npz")
    if path.exists():
        return load_dataset(path, task, expect=meta)
    data = make_dataset(task, params, n, seed)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tmp = stem.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **data)
    tmp.replace(path)
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return data


def load_dataset(path: str | Path, task: PuzzleTask, expect: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """A cached set, checked against its metadata file, the task and (optionally) ``expect``."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        raise PuzzleError(f"{path}: no metadata file {meta_path.name} beside it (not a puzzle dataset)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise PuzzleError(f"{meta_path}: damaged metadata ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PuzzleError(f"{meta_path} is not a puzzle dataset description (format {FORMAT!r})")
    if meta.get("task") != task.name:
        raise PuzzleError(f"{path} holds {meta.get('task')!r} puzzles, not {task.name!r} ones")
    if meta.get("generator_version") != task.generator_version:
        raise PuzzleError(
            f"{path} was made by generator version {meta.get('generator_version')!r}; this code is "
            f"{task.generator_version!r}: delete it (it is regenerated) or use a matching version"
        )
    if expect is not None and meta != dict(expect):
        raise PuzzleError(f"{path}: metadata {meta} does not match the requested set {dict(expect)}")
    keys = ["inputs", "labels"]
    try:
        if task.num_identifiers(task.check_params(meta.get("params") or {})):
            keys.append("puzzle_identifiers")
        with np.load(path, allow_pickle=False) as archive:
            data = {key: archive[key] for key in keys}
    except (ValueError, KeyError, OSError) as exc:
        raise PuzzleError(f"{path} is not a readable puzzle dataset (arrays only): {exc}") from exc
    task.check_inputs(data["inputs"], str(path))
    ids = data.get("puzzle_identifiers", np.zeros(len(data["inputs"])))
    if data["labels"].shape != data["inputs"].shape or not len(data["inputs"]) == len(ids) == meta.get("n"):
        raise PuzzleError(f"{path}: arrays do not match its metadata (n={meta.get('n')})")
    return data
