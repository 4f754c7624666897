"""Per-task exact accuracy on the ARC-like task: the HRM beside its controls, and what the held-out
transformations reach with each test-time option.

    python benchmarks/arc_table.py                                   # trains the three runs, then scores
    python benchmarks/arc_table.py --out runs/arc-table --vote 8 --ttt-steps 16
    python benchmarks/arc_table.py --variants hrm --set max_batches=100      # a smaller try

Every variant is ``configs/arc_hrm.yaml`` (``--config``) with its overrides, the same seed and the
same sample budget (``max_batches``):

- ``hrm``: the config as it is (puzzle embeddings, recurrent segments);
- ``no_recurrence``: ``model=transformer``, the HRM's blocks once, one segment;
- ``no_embedding``: ``hrm.puzzle_emb_ndim=0``, one shared model: the task inferred from the input alone.

A variant's run goes to ``OUT/<variant>``; a run folder that already holds ``metrics.json`` is scored,
not retrained (so the benchmark resumes where it stopped). Each run is scored with
:mod:`agents.solve` on its fresh held-out sets (inputs of the trained transformations it never saw,
and the transformations held out of training) three ways: one pass (held-out tasks with their zero
embedding), ``--vote K`` over augmentation variants, and ``--ttt-steps N`` (the held-out tasks'
embeddings trained on demonstration pairs; not for ``no_embedding``, which has none). Prints a table
(rows: transformations; columns: variant x option), then one JSON object with every figure, the
runs' wall time, samples/s, CPU and threads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

VARIANTS: dict[str, list[str]] = {
    "hrm": [],
    "no_recurrence": ["model=transformer"],
    "no_embedding": ["hrm.puzzle_emb_ndim=0"],
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="configs/arc_hrm.yaml", help="the ARC config every variant starts from")
    parser.add_argument("--out", default="runs/arc-table", help="folder of the variants' runs")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for every variant's training (e.g. max_batches=100)")  # fmt: skip
    parser.add_argument(
        "--vote", type=int, default=8, help="augmentation variants voted over (1 skips the vote column)"
    )
    parser.add_argument("--ttt-steps", type=int, default=16, help="test-time training passes (0 skips the column)")
    parser.add_argument("--limit", type=int, default=None, help="score at most this many inputs a set")
    parser.add_argument("--num-threads", type=int, default=2)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.vote < 1:
        parser.error(f"--vote {args.vote}: must be at least 1")
    if args.ttt_steps < 0:
        parser.error(f"--ttt-steps {args.ttt_steps}: must be 0 or more")
    return args


def train(args: argparse.Namespace, variant: str, run: Path) -> dict[str, Any]:
    """Train ``variant`` into ``run`` unless it finished there before; its metrics.json."""
    from agents.train_puzzle import main as train_puzzle

    if not (run / "metrics.json").exists():
        argv = ["--config", args.config, "--out", str(run)] if not run.exists() else ["--resume", str(run)]
        if not run.exists():
            for override in [*VARIANTS[variant], *args.overrides, f"num_threads={args.num_threads}"]:
                argv += ["--set", override]
        if args.no_progress:
            argv.append("--no-progress")
        code = train_puzzle(argv)
        if code:
            raise SystemExit(f"training {variant} into {run} failed (exit {code})")
    return json.loads((run / "metrics.json").read_text())


def options(args: argparse.Namespace, variant: str) -> dict[str, list[str]]:
    """The test-time options scored for ``variant``: name -> agents.solve flags."""
    chosen = {"one pass": []}
    if args.vote > 1:
        chosen[f"vote {args.vote}"] = ["--vote", str(args.vote)]
    if args.ttt_steps and variant != "no_embedding":
        chosen[f"ttt {args.ttt_steps}"] = ["--ttt-steps", str(args.ttt_steps)]
    return chosen


def score(args: argparse.Namespace, run: Path, flags: list[str]) -> dict[str, Any]:
    """agents.solve's report on the run's fresh held-out sets with ``flags``."""
    from agents.solve import parse_args as solve_args
    from agents.solve import run as solve

    argv = ["--checkpoint", str(run), "--num-threads", str(args.num_threads), *flags]
    if args.limit:
        argv += ["--limit", str(args.limit)]
    return solve(solve_args(argv))


def table(results: dict[str, dict[str, Any]]) -> str:
    """Rows: every transformation (trained ones' fresh inputs, then held-out ones), and each set's mean."""
    columns = [(variant, option) for variant, row in results.items() for option in row["scores"]]
    head = "| transformation | set | " + " | ".join(f"{v} {o}" for v, o in columns) + " |"
    lines = [head, "|" + "---|" * (len(columns) + 2)]
    first = next(iter(results.values()))["scores"]
    sets = next(iter(first.values()))["sets"]
    for set_name, row in sets.items():
        for task_name in [*row["per_task"], "mean"]:
            cells = []
            for variant, option in columns:
                scored = results[variant]["scores"][option]["sets"][set_name]
                value = scored["exact_accuracy"] if task_name == "mean" else scored["per_task"][task_name]
                cells.append(f"{value:.3f}")
            lines.append(f"| {task_name} | {set_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    results: dict[str, dict[str, Any]] = {}
    for variant in args.variants:
        run = out / variant
        metrics = train(args, variant, run)
        scores = {}
        for option, flags in options(args, variant).items():
            report = score(args, run, flags)
            scores[option] = {"sets": {name: {key: row[key] for key in ("n", "exact_accuracy", "per_task")}
                                       for name, row in report["sets"].items()}}  # fmt: skip
            print(f"{variant} {option}: " + ", ".join(f"{name} {row['exact_accuracy']:.3f}"
                                                      for name, row in report["sets"].items()), flush=True)  # fmt: skip
        keys = (
            "batches",
            "train_samples",
            "processes",
            "train_seconds",
            "wall_seconds",
            "samples_per_s",
            "machine",
            "parameters",
        )
        results[variant] = {
            "run": str(run),
            "training": {k: metrics[k] for k in keys if k in metrics},
            "scores": scores,
        }
    print(table(results))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
