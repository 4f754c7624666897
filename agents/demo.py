"""A rendered demo: the shipped agents with no argument, or fresh puzzles solved by a puzzle checkpoint.

    hrm-demo [--out DIR] [--human]          (every shipped agent: one GIF each, or a window)
    python -m agents.demo --checkpoint DIR [--n 3] [--size 11] [--segments M] [--gif FILE]
    hrm-demo --model-path runs/maze --size 21 --segments 32 --gif docs/maze_reasoning.gif

With no checkpoint, each agent shipped in the package (``python -m agents.pretrained`` lists
them) plays or solves one fresh episode or puzzle: policies through ``agents.render``, puzzle
solvers with their reasoning heatmap, written to ``--out`` (default ``hrm-demo/``) as GIFs.

Prints each puzzle with the model's answer (maze: ``*`` marks predicted path cells; Sudoku: the
board it wrote, wrong digits in brackets), whether it is exact and valid, and the segments used.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from agents.puzzles import PuzzleError
from agents.puzzles.cli import Parser, fail, non_negative_int, output_file, positive_int

MAZE_CHARS = {0: " ", 1: "#", 3: "G", 4: "S"}


def render_answer(task_name: str, puzzle: np.ndarray, prediction: np.ndarray, target: np.ndarray) -> str:
    if task_name == "maze":
        lines = []
        for r in range(puzzle.shape[0]):
            row = []
            for c in range(puzzle.shape[1]):
                code = int(puzzle[r, c])
                row.append("*" if prediction[r, c] and code == 0 else MAZE_CHARS.get(code, "?"))
            lines.append("".join(row))
        return "\n".join(lines)
    lines = []
    for r in range(9):
        cells = []
        for c in range(9):
            digit = int(prediction[r, c])
            cells.append(f" {digit} " if digit == target[r, c] else f"[{digit}]")
        lines.append("".join(cells))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser("agents.demo", __doc__)
    parser.add_argument("--checkpoint", "--model-path", dest="checkpoint", default=None,
                        help="run directory (model.pt), a .pt file or pretrained:NAME (default: every shipped agent)")  # fmt: skip
    parser.add_argument("--out", default="hrm-demo", help="with no checkpoint: the folder for the GIFs")
    parser.add_argument("--human", action="store_true", help="with no checkpoint: play the policies in a window")
    parser.add_argument("--n", type=positive_int, default=3, help="puzzles to show")
    parser.add_argument("--size", type=int, default=None, help="maze side (default: the trained size)")
    parser.add_argument("--segments", type=positive_int, default=None, help="reasoning segments (default: as trained)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the fresh puzzles")
    parser.add_argument("--gif", type=output_file, default=None, help="also write the reasoning heatmap GIF")
    parser.add_argument("--num-threads", type=positive_int, default=2)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        if args.checkpoint is None:
            return shipped_demo(args)
        demo(args)
    except (PuzzleError, ValueError, OSError) as exc:
        return fail(exc)
    return 0


def demo(args: argparse.Namespace) -> None:
    """Draw fresh puzzles, print each with the model's answer, then the summary (and the GIF)."""
    import torch

    from agents.puzzles.checkpoint import load_checkpoint
    from agents.puzzles.engine import reasoning_trace, solve_set

    torch.set_num_threads(args.num_threads)
    model, task, record = load_checkpoint(args.checkpoint)
    params = dict(record["task_params"])
    if task.name == "maze":
        params["sizes"] = [args.size or model.config.grid_height]
    elif args.size is not None:
        raise PuzzleError(f"--size sets a maze's side; {record['path']} is a {task.name!r} model")
    inputs = task.check_inputs(task.sample(np.random.default_rng(args.seed), args.n, params))
    labels = task.targets(inputs)
    outcome = solve_set(model, task, inputs, labels, args.segments, "max")
    for i in range(len(inputs)):
        print(render_answer(task.name, inputs[i], outcome.predictions[i], labels[i]))
        print(
            f"puzzle {i + 1}: exact {bool(outcome.exact[i])}  valid {bool(outcome.valid[i])}  "
            f"cells {outcome.cell_accuracy[i]:.3f}  segments {int(outcome.segments[i])}\n"
        )
    summary = outcome.summary()
    print(
        f"{record['model']} ({model.config.block} blocks): exact {summary['exact_accuracy']:.3f}  "
        f"valid {summary['valid_rate']:.3f}  on {summary['n']} fresh puzzles"
    )
    if args.gif:
        from agents.puzzles.heatmap import write_reasoning_gif

        segments = args.segments or model.config.halt_max_steps
        probs = reasoning_trace(model, inputs, segments)
        write_reasoning_gif(args.gif, task.name, inputs, labels, probs, probs.shape[0] // segments)
        print(f"reasoning heatmap: {args.gif}")


def shipped_demo(args: argparse.Namespace) -> int:
    """Every shipped agent, one GIF each (policies through ``agents.render``; ``--human``: a window)."""
    from pathlib import Path

    from agents import render
    from agents.pretrained import catalog

    entries = catalog()
    if not entries:
        raise PuzzleError("no agent is shipped with this install: give --checkpoint DIR")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, entry in entries.items():
        checkpoint, gif = f"pretrained:{name}", out / f"{name}.gif"
        print(f"\n== {checkpoint}: {entry['command']}")
        if entry["kind"] == "policy":
            shown = ["--human"] if args.human else ["--gif", str(gif)]
            # a policy tuned against the enemy plays beside the enemy-blind expert it must beat
            beside = ["--compare-expert", "blind"] if "comparison" in entry["figures"] else []
            code = render.main(["--checkpoint", checkpoint, "--episodes", "1", "--seed", str(args.seed), *beside,
                                *shown])  # fmt: skip
            if code != 0:
                return code
        else:
            demo(argparse.Namespace(**{**vars(args), "checkpoint": checkpoint, "n": 1, "gif": str(gif)}))
    print(f"\nGIFs in {out}/" if not args.human else "")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    sys.exit(main())
