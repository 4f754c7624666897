"""Solving puzzles with a model: batched reasoning, predictions, the task's metrics, traces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agents.puzzles.base import PuzzleError, PuzzleTask


@dataclass
class SolveOutcome:
    """Predictions and scores of a set of puzzles (arrays are per puzzle)."""

    predictions: np.ndarray  # (N, rows, cols) class ids
    exact: np.ndarray
    valid: np.ndarray
    cell_accuracy: np.ndarray
    segments: np.ndarray  # segments each puzzle used
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "n": int(len(self.exact)),
            "exact_accuracy": float(self.exact.mean()) if len(self.exact) else 0.0,
            "valid_rate": float(self.valid.mean()) if len(self.valid) else 0.0,
            "cell_accuracy": float(self.cell_accuracy.mean()) if len(self.exact) else 0.0,
            "mean_segments": float(self.segments.mean()) if len(self.exact) else 0.0,
            "solve_seconds": round(self.seconds, 2),
        }


def check_model_reads(model: torch.nn.Module, shape: tuple[int, int]) -> None:
    """A clear error when the model cannot read grids of ``shape`` (learned positions)."""
    cfg = model.config
    trained = (cfg.grid_height, cfg.grid_width)
    if tuple(shape) != trained and cfg.pos_encodings == "learned":
        raise PuzzleError(
            f"this model has learned positions for {trained[0]}x{trained[1]} grids and cannot "
            f"read {shape[0]}x{shape[1]} puzzles (train with pos_encodings=rope or conv blocks)"
        )


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    inputs: np.ndarray,
    segments: int | None = None,
    halt: str = "max",
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(predictions (N, rows, cols), confidence of the predicted class, segments used)``.

    ``halt="max"`` runs every puzzle ``segments`` segments; ``"q"`` lets the Q head stop it
    earlier (ACT).
    """
    if halt not in ("q", "max"):
        raise PuzzleError(f"halt={halt!r}; allowed: 'q' (ACT) or 'max' (always all segments)")
    check_model_reads(model, inputs.shape[1:])
    model.eval()
    preds, confs, steps = [], [], []
    for start in range(0, len(inputs), batch_size):
        chunk = torch.as_tensor(inputs[start : start + batch_size].astype(np.int64), device=device)
        result = model.reason({"inputs": chunk}, max_segments=segments, use_q_halt=halt == "q")
        probs = result.outputs["logits"].float().softmax(-1)
        conf, pred = probs.max(-1)
        preds.append(pred.reshape(chunk.shape).cpu().numpy())
        confs.append(conf.reshape(chunk.shape).cpu().numpy())
        steps.append(result.steps.cpu().numpy())
    if not preds:
        empty = np.zeros((0, *inputs.shape[1:]))
        return empty.astype(np.int64), empty, np.zeros(0, dtype=np.int64)
    return np.concatenate(preds), np.concatenate(confs), np.concatenate(steps)


def solve_set(
    model: torch.nn.Module,
    task: PuzzleTask,
    inputs: np.ndarray,
    labels: np.ndarray,
    segments: int | None = None,
    halt: str = "max",
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> SolveOutcome:
    import time

    started = time.time()
    predictions, _, steps = predict(model, inputs, segments, halt, batch_size, device)
    scores = task.metrics(inputs, predictions, labels)
    return SolveOutcome(predictions, scores["exact"], scores["valid"], scores["cell_accuracy"], steps,
                        time.time() - started)


@torch.no_grad()
def reasoning_trace(
    model: torch.nn.Module, inputs: np.ndarray, segments: int | None = None, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Per reasoning step, per puzzle, per cell class probabilities: ``(steps, N, rows, cols,
    classes)``. Steps are the H updates of every segment (HRM) or every iteration (control)."""
    check_model_reads(model, inputs.shape[1:])
    model.eval()
    chunk = torch.as_tensor(inputs.astype(np.int64), device=device)
    result = model.reason({"inputs": chunk}, max_segments=segments, use_q_halt=False, trace=True)
    probs = result.trace["logits"].float().softmax(-1).cpu().numpy()
    return probs.reshape(probs.shape[0], *inputs.shape, probs.shape[-1])
