"""How a Sudoku checkpoint does on fresh boards, band by band and against thinking time.

    python benchmarks/sudoku_bands.py --checkpoint runs/sudoku_hrm
    python benchmarks/sudoku_bands.py --checkpoint runs/sudoku_hrm --per-band 300 --seed 4242 --segments 8 32
    python benchmarks/sudoku_bands.py --checkpoint runs/sudoku_hrm --bands moderate hard-backtracks --json-only

Draws ``--per-band`` fresh boards (seed ``--seed``, another stream than any training pool or
held-out set of ``agents.train_puzzle``, whose seeds are below 1000) from THE Sudoku generator in
each band of ``--bands``, solves them at every segment count of ``--segments`` (every segment, no
ACT halting) and reports the exact rate (the whole board right; a Sudoku of the generator has
one solution, so exact = valid), the cell accuracy, and for the board bands that span a range of
givens, the exact rate per number of givens. Prints a short table, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Named bands: the issue's three (1-35 empty, a single empty cell, the source guide's moderate
#: band) and, harder than any training board, the generator's backtrack-count bands.
BANDS: dict[str, dict] = {
    "empty1-35": {"n_empty": [1, 35]},
    "empty1": {"n_empty": 1},
    "moderate": {"n_givens": [28, 40]},
    "hard-backtracks": {"difficulty": "hard"},
    "extreme-backtracks": {"difficulty": "extreme"},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a sudoku run directory or model.pt")
    parser.add_argument(
        "--bands", nargs="+", default=["empty1-35", "empty1", "moderate"], help=f"bands to draw; allowed: {list(BANDS)}"
    )
    parser.add_argument("--segments", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--per-band", type=int, default=500, help="boards per band")
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args(argv)
    unknown = [band for band in args.bands if band not in BANDS]
    if unknown:
        parser.error(f"unknown band(s) {unknown}; allowed: {list(BANDS)}")
    if args.per_band < 1 or any(s < 1 for s in args.segments):
        parser.error(f"--per-band and --segments must be >= 1, got {args.per_band} and {args.segments}")

    import torch

    from agents.puzzles.checkpoint import load_checkpoint
    from agents.puzzles.engine import solve_set

    torch.set_num_threads(args.threads)
    model, task, _ = load_checkpoint(args.checkpoint, task="sudoku")
    rng = np.random.default_rng(args.seed)
    result = {"checkpoint": str(args.checkpoint), "seed": args.seed, "segments": args.segments, "bands": {}}
    for band in args.bands:
        tick = time.time()
        params = task.check_params({"mix": [BANDS[band]]})
        boards, solutions = task.sample_with_solutions(rng, args.per_band, params)
        givens = (boards != 0).reshape(len(boards), -1).sum(1)
        rows = {"n": len(boards), "mean_givens": float(givens.mean()), "make_seconds": round(time.time() - tick, 1)}
        for segments in args.segments:
            outcome = solve_set(model, task, boards, solutions, segments=segments)
            row = outcome.summary()
            if givens.max() > givens.min():
                per_givens = {}
                for count in np.unique(givens):
                    pick = givens == count
                    per_givens[str(int(count))] = {"n": int(pick.sum()), "exact": float(outcome.exact[pick].mean())}
                row["exact_by_givens"] = per_givens
            rows[str(segments)] = row
        result["bands"][band] = rows
    if not args.json_only:
        head = " ".join(f"{f'exact@{s}':>9}" for s in args.segments)
        print(f"{'band':>18} {'n':>5} {'givens':>7} {head}")
        for band, rows in result["bands"].items():
            cells = " ".join(f"{rows[str(s)]['exact_accuracy']:>9.3f}" for s in args.segments)
            print(f"{band:>18} {rows['n']:>5} {rows['mean_givens']:>7.1f} {cells}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
