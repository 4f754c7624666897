"""Trained agents shipped inside the package, loaded as data (no network, no pickle).

Every command that takes ``--checkpoint`` also takes ``pretrained:NAME``; :func:`resolve`
turns that into the checkpoint file inside this folder. ``catalog.json`` lists each agent:
its file, what it is, the command that trained it and its held-out figures (and the sha256 of
the file, checked on every load, so a damaged install fails clearly instead of acting oddly).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

PREFIX = "pretrained:"
HERE = Path(__file__).resolve().parent
CATALOG = HERE / "catalog.json"


class PretrainedError(ValueError):
    """An unknown or damaged shipped agent."""


@cache
def catalog() -> dict[str, dict[str, Any]]:
    """Name -> entry (``file``, ``kind``, ``env_id`` or ``task``, ``command``, ``figures``, ``sha256``)."""
    if not CATALOG.is_file():
        return {}
    return json.loads(CATALOG.read_text())


def names() -> list[str]:
    return sorted(catalog())


def is_pretrained(checkpoint: str | Path) -> bool:
    return isinstance(checkpoint, str) and checkpoint.startswith(PREFIX)


def resolve(checkpoint: str | Path) -> str | Path:
    """``pretrained:NAME`` -> the shipped file (checked against its sha256); anything else as given."""
    if not is_pretrained(checkpoint):
        return checkpoint
    name = str(checkpoint)[len(PREFIX) :]
    entry = catalog().get(name)
    if entry is None:
        known = ", ".join(PREFIX + n for n in names()) or "none shipped"
        raise PretrainedError(f"unknown agent {checkpoint!r}; shipped: {known}")
    path = HERE / entry["file"]
    if not path.is_file():
        raise PretrainedError(f"{checkpoint}: {path} is missing from the install")
    if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
        raise PretrainedError(f"{checkpoint}: {path} does not match its recorded sha256 (damaged install?)")
    return path
