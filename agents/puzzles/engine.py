"""Solving puzzles with a model: batched reasoning, predictions, the task's metrics, traces.

Tasks with puzzle identifiers (:mod:`agents.puzzles.arc`) pass them with every call
(``identifiers``); their scores break down per task (``groups``), :func:`solve_voted` votes over
augmentation variants, and :func:`tuned_embeddings` trains the embeddings of unseen puzzles on
their demonstration pairs (test-time training).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agents.puzzles.base import PuzzleError, PuzzleTask

#: How the answers of several dihedral views of a puzzle become one (see :func:`predict`).
COMBINES = ("mean", "confident")
#: Which segment's answer a view gives: its last, or its most confident (see :func:`predict`).
PICKS = ("last", "confident")


@dataclass
class SolveOutcome:
    """Predictions and scores of a set of puzzles (arrays are per puzzle)."""

    predictions: np.ndarray  # (N, rows, cols) class ids
    exact: np.ndarray
    valid: np.ndarray
    cell_accuracy: np.ndarray
    segments: np.ndarray  # segments each puzzle used
    seconds: float
    groups: np.ndarray | None = None  # per puzzle, the task its identifier names (per-task scores)

    def summary(self) -> dict[str, Any]:
        out = {
            "n": int(len(self.exact)),
            "exact_accuracy": float(self.exact.mean()) if len(self.exact) else 0.0,
            "valid_rate": float(self.valid.mean()) if len(self.valid) else 0.0,
            "cell_accuracy": float(self.cell_accuracy.mean()) if len(self.exact) else 0.0,
            "mean_segments": float(self.segments.mean()) if len(self.exact) else 0.0,
            "solve_seconds": round(self.seconds, 2),
        }
        if self.groups is not None:
            out["per_task"] = {str(g): float(self.exact[self.groups == g].mean()) for g in sorted(set(self.groups))}
        return out


def model_batch(
    inputs: np.ndarray, identifiers: np.ndarray | None, rows: slice, device: Any
) -> dict[str, torch.Tensor]:
    """Rows ``rows`` of a set as the model's batch: ``inputs`` and, if given, ``puzzle_identifiers``."""
    batch = {"inputs": torch.as_tensor(np.ascontiguousarray(inputs[rows]).astype(np.int64), device=device)}
    if identifiers is not None:
        batch["puzzle_identifiers"] = torch.as_tensor(np.asarray(identifiers[rows], dtype=np.int64), device=device)
    return batch


def check_model_reads(model: torch.nn.Module, shape: tuple[int, int]) -> None:
    """A clear error when the model cannot read grids of ``shape`` (learned positions)."""
    cfg = model.config
    trained = (cfg.grid_height, cfg.grid_width)
    if tuple(shape) != trained and cfg.pos_encodings == "learned":
        raise PuzzleError(
            f"this model has learned positions for {trained[0]}x{trained[1]} grids and cannot "
            f"read {shape[0]}x{shape[1]} puzzles (train with pos_encodings=rope or conv blocks)"
        )


def _view(grids: np.ndarray, k: int, inverse: bool = False) -> np.ndarray:
    """Dihedral symmetry ``k`` (as :func:`agents.augment.transform_grids`) of axes 1, 2, or its
    inverse (for per-cell outputs ``(N, rows, cols, ...)``)."""
    if not inverse:
        out = np.rot90(grids, k % 4, axes=(1, 2))
        return np.flip(out, axis=2) if k >= 4 else out
    out = np.flip(grids, axis=2) if k >= 4 else grids
    return np.rot90(out, -(k % 4), axes=(1, 2))


def least_confidence(probs: torch.Tensor) -> torch.Tensor:
    """Per row, the probability of the predicted class at its least confident cell: a whole
    answer is as sure as its weakest cell. ``probs``: ``(rows, cells, classes)``."""
    return probs.max(-1).values.min(-1).values


def _reason_probs(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], segments: int | None, halt: str, pick: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(per-cell probabilities (rows, cells, classes), segments run)`` of one batch: the last
    segment's answer, or (``pick="confident"``) each row's most confident segment's (the
    earliest of equally confident ones)."""
    if pick == "last":
        result = model.reason(batch, max_segments=segments, use_q_halt=halt == "q")
        return result.outputs["logits"].float().softmax(-1), result.steps
    recorder = _SegmentRecorder(len(batch["inputs"]))
    result = model.reason(batch, max_segments=segments, use_q_halt=halt == "q", on_segment=recorder)
    return recorder.best, result.steps


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    inputs: np.ndarray,
    segments: int | None = None,
    halt: str = "max",
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    views: int = 1,
    combine: str = "mean",
    pick: str = "last",
    identifiers: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(predictions (N, rows, cols), confidence of the predicted class, segments used)``.

    ``halt="max"`` runs every puzzle ``segments`` segments; ``"q"`` lets the Q head stop it
    earlier (ACT). ``views > 1`` also solves the first ``views`` dihedral symmetries of every
    puzzle (turned/mirrored mazes and Sudokus are puzzles of the same kind) and averages the
    per-cell probabilities mapped back: voting over perturbed inputs, a remedy Ren & Liu
    propose for HRM settling in a wrong fixed point. Segments used are averaged over views.
    ``combine="confident"`` instead keeps, per puzzle, the one view whose least confident cell
    is the most confident (a whole answer of one view, chosen by the model's own confidence:
    averaging can mix two different correct answers, e.g. two shortest paths).

    ``pick="confident"`` makes each view answer with its most confident segment of the
    ``segments`` it runs (same score, same compute: thinking longer can also drift away from
    a right answer, and the model's confidence says when it had one). ``identifiers``: the
    puzzle identifier of every puzzle, for a model with puzzle embeddings.
    """
    if halt not in ("q", "max"):
        raise PuzzleError(f"halt={halt!r}; allowed: 'q' (ACT) or 'max' (always all segments)")
    if not 1 <= views <= 8:
        raise PuzzleError(f"views={views} must be 1..8 (the dihedral symmetries of a square grid)")
    if views > 1 and inputs.shape[1] != inputs.shape[2]:
        raise PuzzleError(f"views > 1 needs square grids, got {inputs.shape[1]}x{inputs.shape[2]}")
    if combine not in COMBINES:
        raise PuzzleError(f"combine={combine!r}; allowed: {list(COMBINES)}")
    if pick not in PICKS:
        raise PuzzleError(f"pick={pick!r}; allowed: {list(PICKS)}")
    check_model_reads(model, inputs.shape[1:])
    model.eval()
    if len(inputs) == 0:
        empty = np.zeros((0, *inputs.shape[1:]))
        return empty.astype(np.int64), empty, np.zeros(0, dtype=np.int64)
    total_probs, total_steps, best_probs, best_score = None, None, None, None
    for k in range(views):
        viewed = np.ascontiguousarray(_view(inputs, k))
        probs_k, steps_k = [], []
        for start in range(0, len(viewed), batch_size):
            batch = model_batch(viewed, identifiers, slice(start, start + batch_size), device)
            probs, steps = _reason_probs(model, batch, segments, halt, pick)
            probs_k.append(probs.reshape(*batch["inputs"].shape, -1).cpu().numpy())
            steps_k.append(steps.cpu().numpy())
        probs = _view(np.concatenate(probs_k), k, inverse=True)
        steps = np.concatenate(steps_k).astype(np.float64)
        total_steps = steps if total_steps is None else total_steps + steps
        if combine == "mean":
            total_probs = probs if total_probs is None else total_probs + probs
            continue
        score = probs.max(-1).reshape(len(probs), -1).min(-1)  # its least confident cell
        if best_probs is None:
            best_probs, best_score = probs.copy(), score
        else:
            better = score > best_score
            best_probs[better], best_score = probs[better], np.maximum(score, best_score)
    chosen = total_probs / views if combine == "mean" else best_probs
    return chosen.argmax(-1), chosen.max(-1), total_steps / views


def solve_set(
    model: torch.nn.Module,
    task: PuzzleTask,
    inputs: np.ndarray,
    labels: np.ndarray,
    segments: int | None = None,
    halt: str = "max",
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    views: int = 1,
    combine: str = "mean",
    pick: str = "last",
    identifiers: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> SolveOutcome:
    """Solve and score ``inputs`` (arguments as :func:`predict`; ``groups``: per-task scores)."""
    started = time.time()
    predictions, _, steps = predict(
        model, inputs, segments, halt, batch_size, device, views, combine=combine, pick=pick, identifiers=identifiers
    )
    scores = task.metrics(inputs, predictions, labels)
    return SolveOutcome(
        predictions, scores["exact"], scores["valid"], scores["cell_accuracy"], steps, time.time() - started, groups
    )


class _SegmentRecorder:
    """``on_segment`` callback for one batch of ``n_rows``: each row's most confident per-cell
    probabilities so far (``best``; the earliest of equally confident segments), and at each
    depth of ``depths`` the answers of ``picks`` (the last segment's, or ``best``)."""

    def __init__(self, n_rows: int, depths: set[int] | None = None, picks: tuple[str, ...] = ()) -> None:
        self.n_rows, self.depths, self.picks = n_rows, depths or set(), picks
        self.segment, self.started = 0, time.time()
        self.best: torch.Tensor | None = None
        self.best_score: torch.Tensor | None = None
        self.answers: dict[tuple[int, str], torch.Tensor] = {}
        self.seconds: dict[int, float] = {}

    def __call__(self, rows: torch.Tensor, outputs: dict[str, torch.Tensor]) -> None:
        current = outputs["logits"].float().softmax(-1)
        score = least_confidence(current)
        if self.best is None:
            self.best = current.new_zeros((self.n_rows, *current.shape[1:]))
            self.best_score = current.new_full((self.n_rows,), -1.0)
        better = score > self.best_score[rows]
        self.best[rows[better]], self.best_score[rows[better]] = current[better], score[better]
        self.segment += 1
        if self.segment in self.depths:
            assert len(rows) == self.n_rows, "depth snapshots need every row reasoning (no ACT halting)"
            self.seconds[self.segment] = time.time() - self.started
            for pick in self.picks:
                self.answers[(self.segment, pick)] = current if pick == "last" else self.best.clone()


@torch.no_grad()
def solve_depths(
    model: torch.nn.Module,
    task: PuzzleTask,
    inputs: np.ndarray,
    labels: np.ndarray,
    depths: list[int],
    picks: tuple[str, ...] = ("last",),
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    identifiers: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> dict[tuple[int, str], SolveOutcome]:
    """``solve_set(..., segments=d, halt="max", pick=p)`` for every depth ``d`` and pick ``p``,
    from one run of ``max(depths)`` segments: without halting, a puzzle's answer after ``d``
    segments does not depend on how many more follow, so the test-time depth curve costs its
    deepest point only. ``seconds`` of an outcome is the time spent up to its depth."""
    for pick in picks:
        if pick not in PICKS:
            raise PuzzleError(f"pick={pick!r}; allowed: {list(PICKS)}")
    if not depths or any(int(d) < 1 for d in depths):
        raise PuzzleError(f"depths must be segment counts >= 1, got {depths!r}")
    check_model_reads(model, inputs.shape[1:])
    model.eval()
    depths = sorted({int(d) for d in depths})
    probs: dict[tuple[int, str], list[np.ndarray]] = {(d, p): [] for p in picks for d in depths}  # grouped by pick
    seconds = dict.fromkeys(depths, 0.0)
    for start in range(0, len(inputs), batch_size):
        batch = model_batch(inputs, identifiers, slice(start, start + batch_size), device)
        recorder = _SegmentRecorder(len(batch["inputs"]), depths=set(depths), picks=picks)
        model.reason(batch, max_segments=depths[-1], use_q_halt=False, on_segment=recorder)
        for (depth, pick), chosen in recorder.answers.items():
            probs[(depth, pick)].append(chosen.reshape(*batch["inputs"].shape, -1).cpu().numpy())
            seconds[depth] += recorder.seconds[depth]
    outcomes = {}
    for (depth, pick), parts in probs.items():
        predictions = np.concatenate(parts).argmax(-1) if parts else np.zeros(inputs.shape, dtype=np.int64)
        scores = task.metrics(inputs, predictions, labels)
        outcomes[(depth, pick)] = SolveOutcome(
            predictions,
            scores["exact"],
            scores["valid"],
            scores["cell_accuracy"],
            np.full(len(inputs), depth),
            seconds[depth],
            groups,
        )
    return outcomes


@torch.no_grad()
def reasoning_trace(
    model: torch.nn.Module,
    inputs: np.ndarray,
    segments: int | None = None,
    device: str | torch.device = "cpu",
    identifiers: np.ndarray | None = None,
) -> np.ndarray:
    """Per reasoning step, per puzzle, per cell class probabilities: ``(steps, N, rows, cols,
    classes)``. Steps are the H updates of every segment (HRM) or every iteration (control)."""
    check_model_reads(model, inputs.shape[1:])
    model.eval()
    batch = model_batch(inputs, identifiers, slice(None), device)
    result = model.reason(batch, max_segments=segments, use_q_halt=False, trace=True)
    probs = result.trace["logits"].float().softmax(-1).cpu().numpy()
    return probs.reshape(probs.shape[0], *inputs.shape, probs.shape[-1])


def majority_vote(answers: np.ndarray, well_formed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per puzzle, the whole answer most variants gave: ``(chosen (N, ...), its votes (N,))``.

    ``answers`` ``(K, N, ...)`` are mapped back to the puzzles' own frame; only ``well_formed``
    ones ``(K, N)`` vote, ties go to the lowest variant, and a puzzle without any well-formed
    answer keeps variant 0's (with 0 votes).
    """
    chosen, support = answers[0].copy(), np.zeros(answers.shape[1], dtype=np.int64)
    for i in range(answers.shape[1]):
        counts: dict[bytes, list[int]] = {}
        for k in np.flatnonzero(well_formed[:, i]):
            counts.setdefault(answers[k, i].tobytes(), []).append(int(k))
        if counts:
            voters = max(counts.values(), key=lambda ks: (len(ks), -ks[0]))
            chosen[i], support[i] = answers[voters[0], i], len(voters)
    return chosen, support


def solve_voted(
    model: torch.nn.Module,
    task: PuzzleTask,
    params: dict[str, Any],
    data: dict[str, np.ndarray],
    votes: int,
    segments: int | None = None,
    halt: str = "max",
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> SolveOutcome:
    """Solve every puzzle of ``data`` (inputs, labels, puzzle_identifiers) in its first ``votes``
    augmentation variants, each with that variant's identifier, map the answers back and take
    the majority (:func:`majority_vote`): the reference HRM's voting for ARC."""
    if not 1 <= votes <= task.num_variants(params):
        raise PuzzleError(f"votes={votes}: the {task.name} task has {task.num_variants(params)} variants to vote over")
    started = time.time()
    inputs, labels, identifiers = data["inputs"], data["labels"], data["puzzle_identifiers"]
    home = task.variant_of(identifiers, params)
    answers, steps = [], np.zeros(len(inputs))
    for variant in range(votes):
        viewed, ids = task.in_variant(inputs, identifiers, variant, params)
        predictions, _, used = predict(model, viewed, segments, halt, batch_size, device, identifiers=ids)
        answers.append(task.in_variant(predictions, ids, home, params)[0])
        steps += used / votes
    answers_k = np.stack(answers)
    formed = np.array([[task.is_valid(x, a) for x, a in zip(inputs, per)] for per in answers_k], dtype=bool)
    chosen, _ = majority_vote(answers_k, formed)
    scores = task.metrics(inputs, chosen, labels)
    groups = task.groups(identifiers, params)
    return SolveOutcome(chosen, scores["exact"], scores["valid"], scores["cell_accuracy"], steps,
                        time.time() - started, groups)  # fmt: skip


@contextmanager
def tuned_embeddings(
    model: torch.nn.Module,
    demos: dict[str, np.ndarray],
    steps: int,
    lr: float,
    weight_decay: float = 0.0,
    loss_type: str = "softmax_cross_entropy",
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> Iterator[dict[str, Any]]:
    """Test-time training: inside the ``with``, the puzzle embeddings of the identifiers in
    ``demos`` (inputs, labels, puzzle_identifiers: demonstration pairs of unseen puzzles) have had
    ``steps`` deep-supervision passes over the pairs, sparse SignSGD on those rows alone and every
    other weight frozen; afterwards the table is as it was. Yields ``{"steps", "loss"}`` (the
    mean loss of each pass)."""
    from agents.hrm.losses import ACTLossHead, deep_supervision_pass
    from agents.hrm.sparse_embedding import CastedSparseEmbeddingSignSGD_Distributed

    table = getattr(model, "puzzle_emb", None)
    if table is None:
        raise PuzzleError("test-time training tunes puzzle embeddings; this model has none (hrm.puzzle_emb_ndim=0)")
    saved = table.weight.detach().clone()
    frozen = [(param, param.requires_grad) for param in model.parameters()]
    optimizer = CastedSparseEmbeddingSignSGD_Distributed(table.parameters(), lr=lr, weight_decay=weight_decay)
    head, report = ACTLossHead(model, loss_type), {"steps": steps, "loss": []}
    try:
        for param, _ in frozen:
            param.requires_grad_(False)
        torch.manual_seed(seed)  # halting exploration draws from torch's generator
        model.train()
        for _ in range(steps):
            losses = []
            for start in range(0, len(demos["inputs"]), batch_size):
                batch = model_batch(
                    demos["inputs"], demos["puzzle_identifiers"], slice(start, start + batch_size), device
                )
                batch["labels"] = torch.as_tensor(demos["labels"][start : start + batch_size], device=device).long()
                losses.append(deep_supervision_pass(head, batch, [optimizer], grad_clip=None)["loss"])
            report["loss"].append(float(np.mean(losses)))
        model.eval()
        yield report
    finally:
        optimizer.release()
        for param, wanted in frozen:
            param.requires_grad_(wanted)
        with torch.no_grad():
            table.weight.copy_(saved)
        model.eval()
