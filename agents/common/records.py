"""Reading checkpoints stored as plain data: tensors plus JSON text, never pickled objects.

Every model checkpoint of this package (``policy.pt`` of BC/PPO, ``model.pt`` of the puzzle
trainer) is a dict with ``format``, ``format_version``, a few ``<key>_json`` strings and
tensors, loaded with ``torch.load(weights_only=True)``: a crafted pickle is refused, never
executed. This is the one reader; each checkpoint kind names its format, its JSON keys and its
error type. Resume checkpoints (``last.pt``) are the run layer's (:mod:`agents.common.run`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


def read_record(
    path: str | Path,
    *,
    default_file: str,
    fmt: str,
    version: int,
    json_keys: tuple[str, ...],
    what: str,
    error: type[Exception],
) -> dict[str, Any]:
    """The checked record at ``path`` (a file, or a directory holding ``default_file``).

    Each ``key`` of ``json_keys`` is decoded from ``record[key + "_json"]`` into
    ``record[key]``; ``record["path"]`` says which file was read. Raises ``error`` (its
    message naming the file and ``what`` was expected) for a missing or unreadable file,
    another format or version, or damaged metadata. ``pretrained:NAME`` names an agent shipped
    in the package (:mod:`agents.pretrained`).
    """
    from agents.pretrained import PretrainedError, resolve

    try:
        path = Path(resolve(path))
    except PretrainedError as exc:
        raise error(str(exc)) from None
    if path.is_dir():
        path = path / default_file
    if not path.is_file():
        raise error(f"no {what} at {path}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # refused unpickling, truncated file, not a torch file
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise error(
            f"{path} is not a readable {what} (it is loaded as data only, never as code): "
            f"{type(exc).__name__}: {first_line}"
        ) from exc
    if not isinstance(record, dict) or record.get("format") != fmt:
        raise error(f"{path} is not a {what} (format {fmt!r} expected)")
    if record.get("format_version") != version:
        raise error(f"{path} has format version {record.get('format_version')!r}; this code reads {version}")
    try:
        for key in json_keys:
            record[key] = json.loads(record[f"{key}_json"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: damaged metadata ({exc!r})") from exc
    record["path"] = str(path)
    return record


def save_record(record: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` to a temporary file, then rename: an interrupted save never leaves half a file."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    torch.save(record, tmp)
    tmp.replace(path)
    return path
