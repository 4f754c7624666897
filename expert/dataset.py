"""The on-disk format of expert trajectory datasets, its writer and its checking loader.

A dataset is one directory. Per split (``train``, ``val``), with ``N`` states and ``E`` episodes:

=============================  ====================  =========================================
file                           dtype, shape          content
=============================  ====================  =========================================
``{split}_states.npy``         ``uint8 (N, H, W)``   the grid/board *before* each action
``{split}_actions.npy``        ``int64 (N,)``        the expert's action in that state
``{split}_optimal_masks.npy``  ``bool (N, A)``       every optimal action in that state
``{split}_episode_starts.npy`` ``bool (N,)``         True at the first state of each episode
``{split}_episode_seeds.npy``  ``uint64 (E,)``       ``env.reset(seed=...)`` of each episode
=============================  ====================  =========================================

and ``metadata.json`` (written last, so a directory without it is an unfinished dataset): format
name and version, env id and kwargs, expert, seeds, episode/state counts per split, package
version, ``n_actions``, observation shape, and the size and sha256 of every file, so a
truncated, swapped or edited file is caught before training on it.

Every ``.npy`` is read with ``allow_pickle=False``. Every problem raises :class:`DatasetError`
(a ``ValueError``) naming the file and what is wrong; a missing file raises
:class:`DatasetMissingError` (also a ``FileNotFoundError``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_NAME = "hrm-gym-expert-dataset"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
SPLITS = ("train", "val")

#: array name -> (dtype, shape suffix after the leading count); "obs" and "actions" are
#: filled in from the metadata (observation shape, n_actions).
ARRAY_NAMES = ("states", "actions", "optimal_masks", "episode_starts", "episode_seeds")
_DTYPES = {
    "states": np.dtype(np.uint8),
    "actions": np.dtype(np.int64),
    "optimal_masks": np.dtype(np.bool_),
    "episode_starts": np.dtype(np.bool_),
    "episode_seeds": np.dtype(np.uint64),
}


class DatasetError(ValueError):
    """A dataset file is missing, damaged, inconsistent or not the one that was expected."""


class DatasetMissingError(DatasetError, FileNotFoundError):
    """A dataset file (or the whole dataset) does not exist."""


@dataclass(frozen=True)
class SplitArrays:
    """One split in memory, as :func:`write_dataset` takes it and :func:`load_dataset` gives it."""

    states: np.ndarray
    actions: np.ndarray
    optimal_masks: np.ndarray
    episode_starts: np.ndarray
    episode_seeds: np.ndarray

    @property
    def num_states(self) -> int:
        return int(self.actions.shape[0])

    @property
    def num_episodes(self) -> int:
        return int(self.episode_seeds.shape[0])

    def episode_index(self) -> np.ndarray:
        """``int64 (N,)``: which episode (0-based) each state belongs to."""
        return np.cumsum(self.episode_starts, dtype=np.int64) - 1


@dataclass(frozen=True)
class ExpertDataset(SplitArrays):
    """A loaded, checked split plus the dataset's metadata."""

    split: str = "train"
    metadata: dict[str, Any] = field(default_factory=dict)


def file_name(split: str, array: str) -> str:
    """``{split}_{array}.npy``, e.g. ``train_states.npy``."""
    return f"{split}_{array}.npy"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_split_arrays(arrays: SplitArrays, n_actions: int, obs_shape: tuple[int, ...], where: str) -> None:
    """Raise :class:`DatasetError` unless the arrays of one split agree with each other.

    ``where`` names the split (or directory) in the messages.
    """
    n = arrays.num_states
    expected_shapes = {
        "states": (n, *obs_shape),
        "actions": (n,),
        "optimal_masks": (n, n_actions),
        "episode_starts": (n,),
    }
    for name, shape in expected_shapes.items():
        array = getattr(arrays, name)
        if array.dtype != _DTYPES[name]:
            raise DatasetError(f"{where}: {name} has dtype {array.dtype}, expected {_DTYPES[name]}")
        if array.shape != shape:
            raise DatasetError(f"{where}: {name} has shape {array.shape}, expected {shape}")
    seeds = arrays.episode_seeds
    if seeds.dtype != _DTYPES["episode_seeds"] or seeds.ndim != 1:
        raise DatasetError(
            f"{where}: episode_seeds must be a 1-D {_DTYPES['episode_seeds']} array, "
            f"got {seeds.dtype} with shape {seeds.shape}"
        )
    starts = int(np.count_nonzero(arrays.episode_starts))
    if starts != seeds.shape[0]:
        raise DatasetError(
            f"{where}: episode_starts marks {starts} episodes but there are {seeds.shape[0]} episode seeds"
        )
    if n and not arrays.episode_starts[0]:
        raise DatasetError(f"{where}: the first state is not marked as an episode start")
    if n:
        low, high = int(arrays.actions.min()), int(arrays.actions.max())
        if low < 0 or high >= n_actions:
            raise DatasetError(f"{where}: actions range over [{low}, {high}], allowed [0, {n_actions - 1}]")
        if not arrays.optimal_masks[np.arange(n), arrays.actions].all():
            bad = int(np.flatnonzero(~arrays.optimal_masks[np.arange(n), arrays.actions])[0])
            raise DatasetError(
                f"{where}: state {bad}: the expert action {int(arrays.actions[bad])} is not in "
                "its own optimal-action mask"
            )


def write_dataset(
    directory: str | os.PathLike,
    metadata: Mapping[str, Any],
    splits: Mapping[str, SplitArrays],
) -> dict[str, Any]:
    """Write ``splits`` and ``metadata.json`` (with counts, sizes and hashes added) to ``directory``.

    ``metadata`` must hold at least ``env_id``, ``n_actions`` and ``observation_shape``. An old
    ``metadata.json`` is removed first and the new one is written last (each file through a
    temporary name), so an interrupted write leaves a directory that loads as *missing*.
    Returns the metadata written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n_actions = int(metadata["n_actions"])
    obs_shape = tuple(int(v) for v in metadata["observation_shape"])
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; allowed: {list(SPLITS)}")
    meta_path = directory / METADATA_FILE
    if meta_path.exists():
        meta_path.unlink()
    files: dict[str, dict[str, Any]] = {}
    split_meta: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        if split not in splits:
            continue
        arrays = splits[split]
        check_split_arrays(arrays, n_actions, obs_shape, f"split {split!r}")
        for name in ARRAY_NAMES:
            path = directory / file_name(split, name)
            temporary = path.with_name(path.name + ".tmp")
            with open(temporary, "wb") as handle:
                np.save(handle, getattr(arrays, name), allow_pickle=False)
            os.replace(temporary, path)
            files[path.name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
        split_meta[split] = {
            **dict(metadata.get("splits", {}).get(split, {})),
            "episodes": arrays.num_episodes,
            "states": arrays.num_states,
        }
    full = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        **{k: v for k, v in metadata.items() if k not in ("splits", "files")},
        "observation_shape": list(obs_shape),
        "n_actions": n_actions,
        "splits": split_meta,
        "files": files,
    }
    temporary = meta_path.with_name(METADATA_FILE + ".tmp")
    temporary.write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, meta_path)
    return full


def load_metadata(directory: str | os.PathLike, env_id: str | None = None) -> dict[str, Any]:
    """The checked ``metadata.json`` of a dataset directory.

    Raises :class:`DatasetMissingError` when it does not exist, :class:`DatasetError` when it
    is unreadable, of another format or version, or (with ``env_id``) made for another env.
    """
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise DatasetMissingError(f"{path}: no such file (not a dataset directory, or its generation did not finish)")
    try:
        metadata = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable metadata ({exc})") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path}: not a {FORMAT_NAME} metadata file")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetError(
            f"{path}: format version {version!r}, this code reads version {FORMAT_VERSION}; "
            "regenerate the dataset with `python -m expert.generate`"
        )
    required = ("env_id", "env_kwargs", "n_actions", "observation_shape", "splits", "files")
    missing = [key for key in required if key not in metadata]
    if missing:
        raise DatasetError(f"{path}: metadata lacks the key(s) {missing}")
    if env_id is not None and metadata["env_id"] != env_id:
        raise DatasetError(f"{path}: dataset was made for env {metadata['env_id']!r}, expected {env_id!r}")
    return metadata


def _load_array(directory: Path, name: str, metadata: Mapping[str, Any], verify: bool) -> np.ndarray:
    path = directory / name
    record = metadata["files"].get(name)
    if record is None:
        raise DatasetError(f"{path}: not listed in {METADATA_FILE}")
    if not isinstance(record, dict) or not {"bytes", "sha256"} <= set(record):
        raise DatasetError(f"{path}: its {METADATA_FILE} entry lacks 'bytes' or 'sha256': {record!r}")
    if not path.is_file():
        raise DatasetMissingError(f"{path}: no such file (listed in {METADATA_FILE})")
    size = path.stat().st_size
    if size != record["bytes"]:
        raise DatasetError(f"{path}: {size} bytes, {METADATA_FILE} says {record['bytes']} (truncated or replaced)")
    if verify and _sha256(path) != record["sha256"]:
        raise DatasetError(f"{path}: sha256 differs from {METADATA_FILE} (corrupted or edited)")
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/EOFError/OSError... for a bad file
        raise DatasetError(f"{path}: not a readable .npy file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(array, np.ndarray):
        raise DatasetError(f"{path}: holds {type(array).__name__}, expected one array")
    return array


def load_dataset(
    directory: str | os.PathLike,
    split: str,
    env_id: str | None = None,
    *,
    verify: bool = True,
) -> ExpertDataset:
    """Load and check one split of a dataset directory.

    ``env_id`` (optional) is the env the caller expects; another one is an error. ``verify``
    checks every file's sha256 against the metadata (sizes are always checked). Raises
    :class:`DatasetMissingError` / :class:`DatasetError` naming the file and the problem.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {list(SPLITS)}")
    directory = Path(directory)
    metadata = load_metadata(directory, env_id)
    split_meta = metadata["splits"].get(split)
    if split_meta is None:
        raise DatasetError(f"{directory / METADATA_FILE}: no split {split!r} (it holds {sorted(metadata['splits'])})")
    arrays = {name: _load_array(directory, file_name(split, name), metadata, verify) for name in ARRAY_NAMES}
    for name, array in arrays.items():
        if array.dtype != _DTYPES[name]:
            raise DatasetError(f"{directory / file_name(split, name)}: dtype {array.dtype}, expected {_DTYPES[name]}")
    try:
        obs_shape = tuple(int(v) for v in metadata["observation_shape"])
        n_actions = int(metadata["n_actions"])
        n_states, n_episodes = int(split_meta["states"]), int(split_meta["episodes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(
            f"{directory / METADATA_FILE}: bad shape or count entries for split {split!r} ({exc!r})"
        ) from exc
    expected = {
        "states": (n_states, *obs_shape),
        "actions": (n_states,),
        "optimal_masks": (n_states, n_actions),
        "episode_starts": (n_states,),
        "episode_seeds": (n_episodes,),
    }
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise DatasetError(
                f"{directory / file_name(split, name)}: shape {arrays[name].shape}, "
                f"expected {shape} from {METADATA_FILE}"
            )
    split_arrays = SplitArrays(**arrays)
    check_split_arrays(split_arrays, n_actions, obs_shape, f"{directory} split {split!r}")
    return ExpertDataset(**arrays, split=split, metadata=metadata)


__all__ = [
    "ARRAY_NAMES",
    "FORMAT_VERSION",
    "METADATA_FILE",
    "SPLITS",
    "DatasetError",
    "DatasetMissingError",
    "ExpertDataset",
    "SplitArrays",
    "check_split_arrays",
    "file_name",
    "load_dataset",
    "load_metadata",
    "write_dataset",
]
