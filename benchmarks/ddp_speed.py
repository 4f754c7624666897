"""Data-parallel puzzle training on one machine: samples/s and accuracy with 1 and N processes.

    python benchmarks/ddp_speed.py                                   # maze, 500 batches, 1 and 2 processes
    python benchmarks/ddp_speed.py --config configs/sudoku_hrm.yaml --max-batches 100 --processes 1 2 4
    python benchmarks/ddp_speed.py --set hrm.hidden_size=32              # any config override for every run

Every run trains ``--config`` for the same ``--max-batches`` of the same global batch (torchrun
shards each batch over the processes), with the machine's ``--threads`` split evenly between them
(2 threads: 1 process x 2 threads, 2 processes x 1 thread), and is scored on its config's first
eval set (``--eval-n`` puzzles). Prints a table, then one JSON object: per process count the
training samples/s, the wall time, the held-out exact accuracy and valid rate, the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/maze_hrm.yaml")
    parser.add_argument("--max-batches", type=int, default=500)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=2, help="torch threads in all, split between the processes")
    parser.add_argument("--eval-n", type=int, default=300, help="held-out puzzles scored after training")
    parser.add_argument("--out", default="runs/ddp-speed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every run")  # fmt: skip
    args = parser.parse_args(argv)
    bad = [p for p in args.processes if p < 1 or args.threads % p]
    if bad:
        parser.error(f"--processes {bad}: each count must be >= 1 and divide --threads {args.threads}")
    if args.max_batches < 1 or args.eval_n < 1:
        parser.error("--max-batches and --eval-n must be >= 1")
    return args


def train(args: argparse.Namespace, processes: int) -> dict[str, Any]:
    """One torchrun job; its metrics.json."""
    out = Path(args.out) / f"p{processes}"
    if not (out / "metrics.json").exists():
        sets = f"[{{name: bench, params: {{}}, n: {args.eval_n}, val_n: {min(args.eval_n, 200)}, segments: [8]}}]"
        overrides = [f"max_batches={args.max_batches}", f"eval_every={args.max_batches}",
                     f"num_threads={args.threads // processes}", f"eval_sets={sets}", *args.overrides]  # fmt: skip
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   "-m", "agents.train_puzzle", "--config", args.config, "--out", str(out), "--no-progress"]  # fmt: skip
        for item in overrides:
            command += ["--set", item]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads // processes)}
        done = subprocess.run(command, cwd=ROOT, env=env)
        if done.returncode:
            raise SystemExit(f"torchrun with {processes} processes failed (exit {done.returncode})")
    return json.loads((out / "metrics.json").read_text())


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    last = metrics["test"]["bench"]["8"]  # 8 segments, every puzzle
    return {
        "processes": metrics["processes"], "samples_per_s": metrics["samples_per_s"],
        "train_seconds": metrics["train_seconds"], "wall_seconds": metrics["wall_seconds"],
        "exact_accuracy": last["exact_accuracy"], "valid_rate": last["valid_rate"],
        "threads_per_process": metrics["machine"]["threads"], "cpu": metrics["machine"]["cpu"],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = {str(p): summary(train(args, p)) for p in args.processes}
    print("| processes | threads each | samples/s | train s | exact | valid |")
    print("|---|---|---|---|---|---|")
    for row in results.values():
        print(f"| {row['processes']} | {row['threads_per_process']} | {row['samples_per_s']} | "
              f"{row['train_seconds']} | {row['exact_accuracy']:.3f} | {row['valid_rate']:.3f} |")  # fmt: skip
    print(json.dumps({"config": args.config, "max_batches": args.max_batches, "runs": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
