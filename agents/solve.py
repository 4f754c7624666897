"""Solve every puzzle of an ``.npz`` (or fresh held-out sets) with a trained puzzle checkpoint, and score it.

    python -m agents.solve --checkpoint DIR [--layouts FILE.npz [--array NAME]] [--segments M]
                           [--halt max|q] [--json] [--gif FILE]
    hrm-eval --checkpoint runs/maze --layouts mazes21.npz --segments 32 --json
    hrm-eval --model-path runs/maze                  (fresh held-out sets, below)
    hrm-eval --model-path runs/arc --vote 8 [--ttt-steps 16]   (ARC-like tasks, last paragraph)

Maze files hold env-format grids under ``layouts``; Sudoku files hold boards (0 = empty) under
``puzzles`` (``--array`` picks another name). Targets are recomputed with the task's own
solver (shortest path, Sudoku solver). Without ``--layouts`` the checkpoint is scored on fresh
held-out sets: the eval sets of its recorded train config (``eval_sets``; for a checkpoint
without them, those of ``configs/<task>_hrm.yaml``), each drawn with the seed
``data_seed * 1000 + 300 + i`` (set ``i``), which no split of its training uses, so none of
these puzzles was trained, validated or tested on; ``--eval-set NAME`` keeps some of them.
``--json`` prints one object with ``n``, ``exact_accuracy`` (whole answer right),
``valid_rate`` (maze: exactly one shortest path, any; sudoku: a complete board that keeps the
givens and breaks no rule), ``cell_accuracy`` and ``mean_segments`` (held-out: one such object
per set under ``sets``). ``--segments M`` sets the reasoning segments at test time (train with
M, test with 2M, 4M: inference-time scaling); ``--halt q`` lets the ACT head stop earlier.
``--pick confident`` answers with each puzzle's most confident segment instead of its last;
``--views 8 --combine confident`` with the most confident of its 8 dihedral views.
``--gif`` writes the reasoning heatmap of the first ``--gif-count`` puzzles. Files are read as
data only (``allow_pickle=False``, ``torch.load(weights_only=True)``).

Tasks told apart by identity (``arc``) are scored on their held-out sets only (an input alone does
not say its answer), each row with every task's exact accuracy (``per_task``): fresh inputs of the
trained transformations, and the transformations held out of training. ``--vote K`` solves every
input in its first K augmentation variants, each with that variant's puzzle identifier, maps the
answers back and keeps the majority (the reference HRM's ARC voting). A held-out transformation's
puzzle embedding was never trained: by default it stays zero (``"embedding": "zero"``: no
test-time compute); ``--ttt-steps N`` instead trains that task's embedding rows alone, N passes of
sparse SignSGD over ``--ttt-demos`` demonstration pairs per task (drawn with seed
``data_seed * 1000 + 400 + i``, apart from the test inputs), every other weight frozen.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from agents.puzzles import PuzzleError
from agents.puzzles.cli import Parser, fail, non_negative_int, output_file, positive_int


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


def held_out_help() -> str:
    """``--layouts``'s help: what is scored without it, with the default sets of each task."""
    import yaml

    from agents.puzzles import TASKS
    from agents.train_puzzle import default_config_for

    defaults = []
    for name in sorted(TASKS):
        try:
            sets = yaml.safe_load(default_config_for(name).read_text())["eval_sets"]
            defaults.append(f"{name}: {', '.join(str(spec['name']) for spec in sets)}")
        except (ValueError, OSError, KeyError, TypeError, yaml.YAMLError):
            continue
    listed = f" ({'; '.join(defaults)})" if defaults else ""
    return (
        ".npz file of puzzles. Without it: fresh held-out sets, the eval sets of the checkpoint's recorded train "
        f"config, as set by its task's default config{listed}, each drawn with seed data_seed*1000+300+i, "
        "which its training never used"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser("agents.solve", __doc__)
    parser.add_argument("--checkpoint", "--model-path", dest="checkpoint", required=True,
                        help="run directory (model.pt) or a .pt file")  # fmt: skip
    parser.add_argument("--layouts", "--puzzles", dest="layouts", default=None, metavar="FILE", help=held_out_help())
    parser.add_argument("--array", default=None, help="array name (default: layouts for mazes, puzzles for sudoku)")
    parser.add_argument("--eval-set", dest="eval_sets", action="append", default=None, metavar="NAME",
                        help="without --layouts: score only this held-out set (repeatable; default all)")  # fmt: skip
    parser.add_argument("--segments", type=positive_int, default=None, help="reasoning segments (default: as trained)")
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
    parser.add_argument("--vote", type=positive_int, default=1,
                        help="arc: vote over this many augmentation variants of every input (default 1: none)")  # fmt: skip
    parser.add_argument("--ttt-steps", type=non_negative_int, default=0,
                        help="arc held-out tasks: test-time training passes of their embeddings on demonstration "
                        "pairs (default 0: the zero embedding)")  # fmt: skip
    parser.add_argument("--ttt-demos", type=positive_int, default=8, help="demonstration pairs per held-out task")
    parser.add_argument("--ttt-lr", type=float, default=None,
                        help="SignSGD step of test-time training (default: the run's puzzle_emb_lr)")  # fmt: skip
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="solve only the first N puzzles (held-out sets: draw N of each)")  # fmt: skip
    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--gif", type=output_file, default=None, help="write the reasoning heatmap GIF here")
    parser.add_argument("--gif-count", type=positive_int, default=3, help="puzzles shown in the GIF")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--num-threads", type=positive_int, default=2)
    args = parser.parse_args(argv)
    if args.layouts is None and args.array is not None:
        parser.error("--array names an array of --layouts; without --layouts there is no file to read")
    if args.layouts is not None and args.eval_sets:
        parser.error("--eval-set picks a held-out set, which is scored only without --layouts")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        report = run(args)
    except (PuzzleError, ValueError, OSError) as exc:
        return fail(exc)
    if args.json:
        print(json.dumps(report))
    elif "sets" in report:
        print(f"{report['task']} ({report['model']}) on fresh held-out sets of {report['held_out']['source']}:")
        for name, row in report["sets"].items():
            print(f"  {name} ({row['grid'][0]}x{row['grid'][1]}, seed {row['seed']}): {score_line(row)}")
            if "per_task" in row:
                how = f" ({row['embedding']} embedding)" if "embedding" in row else ""
                print(f"    exact per task{how}: " + ", ".join(f"{k} {v:.3f}" for k, v in row["per_task"].items()))
    else:
        grid = report["grid"]
        print(f"{report['task']} ({report['model']}, {grid[0]}x{grid[1]}): {score_line(report)}")
    if not args.json and report.get("gif"):
        print(f"reasoning heatmap: {report['gif']}")
    return 0


def score_line(row: dict) -> str:
    return (
        f"n={row['n']}  exact {row['exact_accuracy']:.4f}  valid {row['valid_rate']:.4f}  "
        f"cell {row['cell_accuracy']:.4f}  mean segments {row['mean_segments']:.2f}  ({row['solve_seconds']:.1f}s)"
    )


def run(args: argparse.Namespace) -> dict:
    """Load the checkpoint, solve the file (or the held-out sets), score, optionally draw the GIF."""
    import torch

    from agents.common.machine import resolve_device
    from agents.puzzles.checkpoint import load_checkpoint

    device = resolve_device(args.device, "--device")
    torch.set_num_threads(args.num_threads)
    model, task, record = load_checkpoint(args.checkpoint, device=device, weights=args.weights)
    check_test_time(args, task, record)
    segments = args.segments or model.config.halt_max_steps
    report = {
        "task": task.name,
        "model": record["model"],
        "block": model.config.block,
        "checkpoint": record["path"],
        "weights": args.weights,
        "segments": segments,
        "halt": args.halt,
        "views": args.views,
        "combine": args.combine,
        "pick": args.pick,
        "vote": args.vote,
    }
    if args.layouts is not None:
        raw = read_puzzles(args.layouts, args.array or task.array_name)
        inputs = task.check_inputs(raw, f"{args.layouts}:{args.array or task.array_name}")[: args.limit]
        labels = task.targets(inputs)
        report.update(file=str(args.layouts), grid=list(inputs.shape[1:]))
        report.update(score_set(args, model, task, {"inputs": inputs, "labels": labels}, device))
    else:
        source, sets = held_out_sets(task, record, args.eval_sets, args.limit)
        report["held_out"] = {"source": source}
        report["sets"] = {}
        for held in sets:
            scores = score_held_out(args, model, task, record, held, device)
            grid = list(held["inputs"].shape[1:])
            report["sets"][held["name"]] = {"params": held["params"], "seed": held["seed"], "grid": grid, **scores}
        inputs, labels = sets[0]["inputs"], sets[0]["labels"]
    if args.gif:
        from agents.puzzles.engine import reasoning_trace
        from agents.puzzles.heatmap import write_reasoning_gif

        k = max(1, min(args.gif_count, len(inputs)))
        probs = reasoning_trace(model, inputs[:k], segments, device)
        per_segment = probs.shape[0] // segments
        report["gif"] = str(write_reasoning_gif(args.gif, task.name, inputs[:k], labels[:k], probs, per_segment))
    return report


def check_test_time(args: argparse.Namespace, task, record: dict) -> None:
    """Refuse, before any solving, the options that do not fit the checkpoint's task."""
    if task.num_identifiers(task.check_params(record["task_params"])):
        if args.layouts is not None:
            raise PuzzleError(f"{task.name} puzzles are told apart by their puzzle identifiers, which a --layouts file "
                              "does not carry: score the held-out sets (drop --layouts)")  # fmt: skip
        if args.views > 1:
            raise PuzzleError(f"--views turns whole puzzles, and a turned {task.name} canvas is not one of its "
                              "puzzles: vote over augmentation variants with --vote K")  # fmt: skip
        if args.gif:
            raise PuzzleError(f"--gif draws mazes and Sudokus, not {task.name} canvases")
    elif args.vote > 1 or args.ttt_steps:
        raise PuzzleError(f"--vote and --ttt-steps are for tasks with puzzle identifiers (arc), not {task.name}; "
                          "vote over dihedral views with --views")  # fmt: skip


def score_set(args: argparse.Namespace, model, task, data: dict, device, params: dict | None = None) -> dict:
    """The scores of one set of puzzles (``inputs``, ``labels``, maybe ``puzzle_identifiers`` of a
    task with ``params``) with the test-time settings of ``args``."""
    from agents.puzzles.engine import check_model_reads, solve_set, solve_voted
    from agents.train_puzzle import identified

    check_model_reads(model, data["inputs"].shape[1:])
    if args.vote > 1:
        outcome = solve_voted(model, task, params, data, args.vote, args.segments, args.halt, args.batch_size, device)
    else:
        outcome = solve_set(model, task, data["inputs"], data["labels"], args.segments, args.halt, args.batch_size,
                            device, args.views, args.combine, args.pick, **identified(task, params, data))  # fmt: skip
    return outcome.summary()


def score_held_out(args: argparse.Namespace, model, task, record: dict, held: dict, device) -> dict:
    """One held-out set's scores. A set of never-trained puzzles (arc ``split: held_out``) reads
    their zero embeddings, or with ``--ttt-steps`` first trains them on demonstration pairs."""
    from agents.puzzles.engine import tuned_embeddings

    unseen = "puzzle_identifiers" in held and held["params"].get("split") == "held_out"
    if not unseen or not args.ttt_steps:
        scores = score_set(args, model, task, held, device, held["params"])
        return {**scores, "embedding": "zero"} if unseen else scores
    trained = record.get("train_config") or {}
    lr = args.ttt_lr if args.ttt_lr is not None else float(trained.get("puzzle_emb_lr", 1e-2))
    demos = demonstration_pairs(task, held, args)
    with tuned_embeddings(model, demos, args.ttt_steps, lr, float(trained.get("puzzle_emb_weight_decay", 0.0)),
                          trained.get("loss_type", "softmax_cross_entropy"), args.batch_size, device) as tuning:  # fmt: skip
        scores = score_set(args, model, task, held, device, held["params"])
    ttt = {"steps": args.ttt_steps, "lr": lr, "demos": len(demos["inputs"]), "loss": tuning["loss"]}
    return {**scores, "embedding": "test-time trained", "test_time_training": ttt}


def demonstration_pairs(task, held: dict, args: argparse.Namespace) -> dict:
    """``--ttt-demos`` fresh pairs of every task of a held-out set (its own seed), in each of the
    ``--vote`` variants that will read them."""
    from agents.puzzles.data import make_dataset
    from agents.train_puzzle import demos_seed

    n_tasks = len(set(task.groups(held["puzzle_identifiers"], held["params"])))
    drawn = make_dataset(task, held["params"], args.ttt_demos * n_tasks, demos_seed(held["data_seed"], held["index"]))
    parts = []
    for variant in range(args.vote):
        inputs, ids = task.in_variant(drawn["inputs"], drawn["puzzle_identifiers"], variant, held["params"])
        labels, _ = task.in_variant(drawn["labels"], drawn["puzzle_identifiers"], variant, held["params"])
        parts.append({"inputs": inputs, "labels": labels, "puzzle_identifiers": ids})
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def held_out_sets(task, record: dict, names: list[str] | None, limit: int | None) -> tuple[str, list[dict]]:
    """``(where the sets are defined, [{name, params, seed, inputs, labels}])``: the checkpoint's
    eval sets drawn afresh, each with :func:`agents.train_puzzle.held_out_seed` (module docstring)."""
    from agents.puzzles.data import make_dataset
    from agents.train_puzzle import check_eval_sets, held_out_seed

    config, source = eval_config(task, record)
    specs = check_eval_sets(task, config)
    known = [spec["name"] for spec in specs]
    unknown = [name for name in names or [] if name not in known]
    if unknown:
        raise PuzzleError(f"--eval-set {', '.join(unknown)}: no such held-out set; the sets of {source}: {known}")
    sets = []
    for index, spec in enumerate(specs):
        if names and spec["name"] not in names:
            continue
        seed = held_out_seed(config.data_seed, index)
        data = make_dataset(task, spec["params"], min(spec["n"], limit or spec["n"]), seed)
        sets.append({"name": spec["name"], "params": spec["params"], "seed": seed, "index": index,
                     "data_seed": config.data_seed, **data})  # fmt: skip
    return source, sets


def eval_config(task, record: dict):
    """``(train config, its source)``: the one recorded in the checkpoint if it has eval sets,
    else the task's default config file."""
    import dataclasses

    from agents.config import from_dict, load_config
    from agents.train_puzzle import PuzzleTrainConfig, default_config_for

    recorded = record.get("train_config") or {}
    if isinstance(recorded, dict) and recorded.get("eval_sets") and recorded.get("task") == task.name:
        fields = {field.name for field in dataclasses.fields(PuzzleTrainConfig)}
        path = Path(record["path"])  # --weights last: the train config is model.pt's, beside last.pt
        where = f"the train config recorded in {path if record.get('weights', 'best') == 'best' else path.parent}"
        return from_dict(PuzzleTrainConfig, {k: v for k, v in recorded.items() if k in fields}, where=where), where
    path = default_config_for(task.name)
    return load_config(PuzzleTrainConfig, path), str(path)


if __name__ == "__main__":
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    sys.exit(main())
