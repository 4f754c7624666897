"""Puzzle checkpoints as plain data: tensors plus JSON text, never pickled objects.

``DIR/model.pt`` holds ``format``, ``task``, ``task_params_json``, ``model`` (kind),
``model_config_json``, ``train_config_json``, ``extra_json`` and ``state_dict``; it is read with
``torch.load(weights_only=True)``, so a crafted pickle is refused, never executed. The weights a
run ended with come from its resume checkpoint ``DIR/last.pt`` (:mod:`agents.common.run`), read
the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from agents.common.records import read_record
from agents.common.run import CHECKPOINT_FORMAT, LAST_FILE
from agents.puzzles import get_task
from agents.puzzles.base import PuzzleError, PuzzleTask
from agents.puzzles.models import build_model

FORMAT = "hrm-gym-puzzle-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.pt"


class CheckpointError(PuzzleError):
    """A puzzle checkpoint that is missing, unreadable, of another format or another task."""


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    kind: str,
    task: PuzzleTask,
    task_params: dict[str, Any],
    train_config: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    path = Path(path)
    if path.suffix != ".pt":
        path = path / MODEL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": task.name,
        "generator_version": task.generator_version,
        "task_params_json": json.dumps(task_params, sort_keys=True),
        "model": kind,
        "model_config_json": json.dumps(model.config.to_dict(), sort_keys=True),
        "train_config_json": json.dumps(train_config, sort_keys=True),
        "extra_json": json.dumps(extra or {}, sort_keys=True),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    tmp = path.with_name(f".{path.name}.tmp")  # hidden: a run directory ignores it if a save is cut
    torch.save(record, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checked record of ``path`` (a ``.pt`` file or a run directory holding model.pt)."""
    return read_record(
        path, default_file=MODEL_FILE, fmt=FORMAT, version=FORMAT_VERSION,
        json_keys=("task_params", "model_config", "train_config", "extra"), what="puzzle checkpoint",
        error=CheckpointError,
    )  # fmt: skip


#: Which weights of a run :func:`load_checkpoint` reads.
WEIGHTS = ("best", "last", "last-ema")


def load_checkpoint(
    path: str | Path, task: str | None = None, device: str | torch.device = "cpu", weights: str = "best"
) -> tuple[torch.nn.Module, PuzzleTask, dict[str, Any]]:
    """``(model in eval mode, task, record)``; ``task`` (optional) must be the trained one.

    ``weights="last"`` rebuilds the model of ``model.pt`` with the raw weights the run ended
    with (from the resume checkpoint ``last.pt`` beside it) instead of the kept best (or
    moving-average) ones; ``"last-ema"`` with the moving average of the weights the run ended
    with (runs trained with ``ema_decay > 0``): what ``model.pt`` would hold had the last
    validation won.
    """
    if weights not in WEIGHTS:
        raise CheckpointError(f"weights must be one of {list(WEIGHTS)}, got {weights!r}")
    record = read_checkpoint(path)
    if weights != "best":
        record["state_dict"] = last_weights(Path(record["path"]), weights)
        record["path"] = str(Path(record["path"]).parent / LAST_FILE)
    record["weights"] = weights
    if task is not None and record["task"] != task:
        raise CheckpointError(f"{record['path']} is a {record['task']!r} model, not a {task!r} one")
    puzzle_task = get_task(record["task"])
    try:
        model = build_model(record["model"], record["model_config"])
    except ValueError as exc:
        raise CheckpointError(f"{record['path']}: cannot rebuild the model: {exc}") from exc
    try:
        model.load_state_dict(record["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{record['path']}: tensors do not fit the model: {exc}") from exc
    return model.to(device).eval(), puzzle_task, record


def last_weights(model_path: Path, weights: str) -> dict[str, torch.Tensor]:
    """The raw (``"last"``) or moving-average (``"last-ema"``) weights of the resume checkpoint
    beside ``model_path``."""
    path = model_path.parent / LAST_FILE
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no {LAST_FILE} beside {model_path} "
                              f"(weights={weights!r} needs the run directory)") from None  # fmt: skip
    except Exception as exc:  # refused unpickling, truncated file
        raise CheckpointError(f"{path} is not a readable resume checkpoint: {type(exc).__name__}: {exc}") from exc
    tensors = saved.get("tensors") if isinstance(saved, dict) else None
    if not isinstance(tensors, dict) or saved.get("format") != CHECKPOINT_FORMAT or "model" not in tensors:
        raise CheckpointError(f"{path} is not a {CHECKPOINT_FORMAT!r} checkpoint of a puzzle run; "
                              "use weights='best' (model.pt)")  # fmt: skip
    if weights == "last":
        return tensors["model"]
    if "ema" not in tensors:
        raise CheckpointError(f"{path} holds no moving average (a run trained with ema_decay=0): use weights='last'")
    # AveragedModel's state: the averaged module's tensors under "module.", and a counter
    return {k[len("module.") :]: v for k, v in tensors["ema"].items() if k.startswith("module.")}
