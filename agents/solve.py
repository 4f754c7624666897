"""Solve every puzzle of an ``.npz`` with a trained puzzle checkpoint, and score it.

    python -m agents.solve --checkpoint DIR --layouts FILE.npz [--array NAME] [--segments M]
                           [--halt max|q] [--json] [--gif FILE]
    hrm-eval --checkpoint runs/maze --layouts mazes21.npz --segments 32 --json

Maze files hold env-format grids under ``layouts``; Sudoku files hold boards (0 = empty) under
``puzzles`` (``--array`` picks another name). Targets are recomputed with the task's own
solver (shortest path, Sudoku solver). ``--json`` prints one object with ``n``,
``exact_accuracy`` (whole answer right), ``valid_rate`` (maze: exactly one shortest path, any;
sudoku: a complete board that keeps the givens and breaks no rule), ``cell_accuracy`` and
``mean_segments``. ``--segments M`` sets the reasoning segments at test time (train with M,
test with 2M, 4M: inference-time scaling); ``--halt q`` lets the ACT head stop earlier.
``--pick confident`` answers with each puzzle's most confident segment instead of its last;
``--views 8 --combine confident`` with the most confident of its 8 dihedral views.
``--gif`` writes the reasoning heatmap of the first ``--gif-count`` puzzles. Files are read as
data only (``allow_pickle=False``, ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from agents.puzzles import PuzzleError


def read_puzzles(path: str | Path, array: str) -> np.ndarray:
    """The array ``array`` of ``path``; ``PuzzleError`` naming the arrays present otherwise."""
    path = Path(path)
    if not path.is_file():
        raise PuzzleError(f"no puzzle file at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if array not in names:
                raise PuzzleError(f"{path} has no array {array!r}; arrays present: {names} (choose one with --array)")
            return archive[array]
    except PuzzleError:
        raise
    except (ValueError, OSError) as exc:  # object arrays (pickles) are refused here
        raise PuzzleError(f"{path} is not a readable .npz of plain arrays: {exc}") from exc


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="run directory (model.pt) or a .pt file")
    parser.add_argument("--layouts", "--puzzles", dest="layouts", required=True, help=".npz file of puzzles")
    parser.add_argument("--array", default=None, help="array name (default: layouts for mazes, puzzles for sudoku)")
    parser.add_argument("--segments", type=int, default=None, help="reasoning segments (default: as trained)")
    parser.add_argument(
        "--weights",
        choices=("best", "last", "last-ema"),
        default="best",
        help="best: the kept checkpoint (model.pt); last: the raw weights training ended with "
        "(last.pt); last-ema: the moving average of the weights it ended with (last.pt)",
    )
    parser.add_argument(
        "--halt",
        choices=("max", "q"),
        default="max",
        help="max: every puzzle runs all segments; q: the ACT Q head may halt earlier",
    )
    parser.add_argument(
        "--views",
        type=int,
        default=1,
        help="solve this many dihedral views of each puzzle (1-8) and combine them (--combine)",
    )
    parser.add_argument(
        "--combine",
        choices=("mean", "confident"),
        default="mean",
        help="mean: average the views' per-cell probabilities (voting); confident: keep the "
        "view whose least confident cell is the most confident",
    )
    parser.add_argument(
        "--pick",
        choices=("last", "confident"),
        default="last",
        help="which segment answers: the last one run, or each puzzle's most confident of "
        "segments 1..M (its least confident cell the most confident; no extra compute)",
    )
    parser.add_argument("--limit", type=int, default=None, help="solve only the first N puzzles")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--gif", default=None, help="write the reasoning heatmap GIF here")
    parser.add_argument("--gif-count", type=int, default=3, help="puzzles shown in the GIF")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-threads", type=int, default=2)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except (PuzzleError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{report['task']} ({report['model']}, {report['grid'][0]}x{report['grid'][1]}): n={report['n']}  "
            f"exact {report['exact_accuracy']:.4f}  valid {report['valid_rate']:.4f}  "
            f"cell {report['cell_accuracy']:.4f}  mean segments {report['mean_segments']:.2f}  "
            f"({report['solve_seconds']:.1f}s)"
        )
        if report.get("gif"):
            print(f"reasoning heatmap: {report['gif']}")
    return 0


def run(args: argparse.Namespace) -> dict:
    import torch

    from agents.puzzles.checkpoint import load_checkpoint
    from agents.puzzles.engine import check_model_reads, reasoning_trace, solve_set

    torch.set_num_threads(args.num_threads)
    if args.segments is not None and args.segments < 1:
        raise PuzzleError(f"--segments must be >= 1, got {args.segments}")
    model, task, record = load_checkpoint(args.checkpoint, device=args.device, weights=args.weights)
    raw = read_puzzles(args.layouts, args.array or task.array_name)
    inputs = task.check_inputs(raw, f"{args.layouts}:{args.array or task.array_name}")
    if args.limit is not None:
        inputs = inputs[: args.limit]
    check_model_reads(model, inputs.shape[1:])
    labels = task.targets(inputs)
    outcome = solve_set(
        model,
        task,
        inputs,
        labels,
        args.segments,
        args.halt,
        args.batch_size,
        args.device,
        args.views,
        args.combine,
        args.pick,
    )
    segments = args.segments or model.config.halt_max_steps
    report = {
        "task": task.name,
        "model": record["model"],
        "block": model.config.block,
        "checkpoint": record["path"],
        "weights": args.weights,
        "file": str(args.layouts),
        "grid": list(inputs.shape[1:]),
        "segments": segments,
        "halt": args.halt,
        "views": args.views,
        "combine": args.combine,
        "pick": args.pick,
        **outcome.summary(),
    }
    if args.gif:
        from agents.puzzles.heatmap import write_reasoning_gif

        k = max(1, min(args.gif_count, len(inputs)))
        probs = reasoning_trace(model, inputs[:k], segments, args.device)
        per_segment = probs.shape[0] // segments
        report["gif"] = str(write_reasoning_gif(args.gif, task.name, inputs[:k], labels[:k], probs, per_segment))
    return report


if __name__ == "__main__":
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    sys.exit(main())
