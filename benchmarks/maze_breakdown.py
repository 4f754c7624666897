"""Where a maze-solving checkpoint fails: valid rate by loop fraction and by path length.

    python benchmarks/maze_breakdown.py --checkpoint runs/maze_hrm --size 11 --segments 16
    python benchmarks/maze_breakdown.py --checkpoint runs/maze_hrm --size 21 --segments 16 --json-only
    python benchmarks/maze_breakdown.py --checkpoint runs/maze_hrm --segments 16 \
        --layouts data/puzzles/maze-test-n1000-seed200-<hash>.npz --array inputs   (a cached held-out set)

Draws ``--per-band`` fresh mazes (seed ``--seed``) at each loop fraction of ``--loops`` (0 =
perfect maze: one path; higher = more walls knocked out, several routes to compare), solves them
with every segment (no ACT halting) and reports, per loop fraction, the valid rate (exactly one
shortest start-goal path marked), the mean target path length, and over all mazes the valid rate
above path-length quantiles, and what the failures are: a *longer route* (the marked cells form one
simple start-goal path through open cells, just not a shortest one; with its excess length) or
*broken* (anything else: a gap, a branch, a blob). Prints a short table, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def failure_kind(grid: np.ndarray, prediction: np.ndarray) -> str:
    """``"longer route"`` when the marked cells are one simple start-goal path through open cells,
    else ``"broken"`` (called on invalid predictions only: a simple path that is not broken and
    not valid is longer than the shortest)."""
    from hrm_gym.core.grid import GOAL, START, WALL

    marked = prediction.astype(bool)
    if (marked & (grid == WALL)).any():
        return "broken"
    start, goal = (tuple(int(v) for v in np.argwhere(grid == code)[0]) for code in (START, GOAL))
    if not (marked[start] and marked[goal]):
        return "broken"
    padded = np.pad(marked, 1)
    neighbours = padded[:-2, 1:-1].astype(int) + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
    ends = {start, goal}
    for cell in map(tuple, np.argwhere(marked)):
        if neighbours[cell] != (1 if cell in ends else 2):
            return "broken"
    seen, frontier = {start}, [start]  # one connected piece: no separate loop beside the path
    while frontier:
        r, c = frontier.pop()
        for nxt in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= nxt[0] < grid.shape[0] and 0 <= nxt[1] < grid.shape[1] and marked[nxt] and nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return "longer route" if len(seen) == int(marked.sum()) else "broken"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a maze run directory or model.pt")
    parser.add_argument("--size", type=int, default=11, help="odd maze side (default 11)")
    parser.add_argument("--segments", type=int, default=None, help="reasoning segments (default: trained)")
    parser.add_argument("--loops", type=float, nargs="+", default=[0.0, 0.15, 0.3])
    parser.add_argument("--per-band", type=int, default=300, help="mazes per loop fraction")
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layouts", default=None, metavar="FILE.npz", help="score these mazes instead of fresh ones")
    parser.add_argument("--array", default="layouts", help="the array of --layouts holding the mazes")
    parser.add_argument("--views", type=int, default=1, help="dihedral views solved per maze (1-8)")
    parser.add_argument(
        "--combine",
        choices=("mean", "confident"),
        default="mean",
        help="how the views' answers combine (as agents.solve --combine)",
    )
    parser.add_argument(
        "--pick", choices=("last", "confident"), default="last", help="which segment answers (as agents.solve --pick)"
    )
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from agents.puzzles.checkpoint import load_checkpoint
    from agents.puzzles.engine import solve_set

    torch.set_num_threads(args.threads)
    model, task, record = load_checkpoint(args.checkpoint, task="maze")
    rng = np.random.default_rng(args.seed)
    per_band, lengths, valid = {}, [], []
    failures = {"longer route": 0, "broken": 0, "excess_cells": {}}
    if args.layouts:
        with np.load(args.layouts, allow_pickle=False) as data:
            if args.array not in data.files:
                parser.error(f"{args.layouts} has no array {args.array!r}; it holds {data.files}")
            bands = [(Path(args.layouts).name, task.check_inputs(data[args.array], args.array))]
    else:
        params = [task.check_params({"sizes": [args.size], "loop_fraction": loops}) for loops in args.loops]
        bands = [(str(loops), task.sample(rng, args.per_band, p)) for loops, p in zip(args.loops, params)]
    for band, mazes in bands:
        targets = task.targets(mazes)
        outcome = solve_set(
            model, task, mazes, targets, segments=args.segments, views=args.views, combine=args.combine, pick=args.pick
        )
        ok = outcome.valid
        length = targets.reshape(len(mazes), -1).sum(1)
        per_band[band] = {
            "n": len(mazes),
            "valid_rate": float(ok.mean()),
            "mean_path_length": float(length.mean()),
        }
        lengths.append(length)
        valid.append(ok)
        for index in np.flatnonzero(~ok):
            kind = failure_kind(mazes[index], outcome.predictions[index])
            failures[kind] += 1
            if kind == "longer route":
                excess = str(int(outcome.predictions[index].sum() - length[index]))
                failures["excess_cells"][excess] = failures["excess_cells"].get(excess, 0) + 1
    lengths, valid = np.concatenate(lengths), np.concatenate(valid)
    by_length = {}
    for q in (0.0, 0.5, 0.75, 0.9):
        cut = float(np.quantile(lengths, q))
        pick = lengths >= cut
        by_length[f"path>={cut:.0f}"] = {"quantile": q, "n": int(pick.sum()), "valid_rate": float(valid[pick].mean())}
    result = {
        "checkpoint": str(args.checkpoint),
        "size": args.size,
        "segments": args.segments or record["model_config"]["halt_max_steps"],
        "seed": args.seed,
        "views": args.views,
        "combine": args.combine,
        "pick": args.pick,
        "by_loop_fraction": per_band,
        "by_path_length": by_length,
        "valid_rate": float(valid.mean()),
        "failures": failures,
    }
    if not args.json_only:
        print(f"{args.layouts or f'{args.size}x{args.size} mazes'}, {result['segments']} segments")
        print(f"{'loop fraction' if not args.layouts else 'file':>14} {'n':>5} {'valid':>7} {'mean path':>10}")
        for loops, row in per_band.items():
            print(f"{loops:>14} {row['n']:>5} {row['valid_rate']:>7.3f} {row['mean_path_length']:>10.1f}")
        for name, row in by_length.items():
            print(f"{name:>14} {row['n']:>5} {row['valid_rate']:>7.3f}")
        excess = ", ".join(f"+{k}: {v}" for k, v in sorted(failures["excess_cells"].items(), key=lambda kv: int(kv[0])))
        print(
            f"failures: {failures['longer route']} longer routes ({excess or 'none'} cells), "
            f"{failures['broken']} broken"
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
