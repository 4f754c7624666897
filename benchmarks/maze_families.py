"""Out-of-distribution figures of a maze checkpoint: valid rate per family x endpoint placement x size.

    python benchmarks/maze_families.py --checkpoint runs/maze_hrm
    python benchmarks/maze_families.py --checkpoint runs/maze_hrm --sizes 11 21 30 10x14 --n 300 --segments 32
    python benchmarks/maze_families.py --checkpoint runs/maze_hard_hrm --sizes 30 --families obstacles --json-only

Draws ``--n`` fresh mazes (seed ``--seed``; each row has its own stream, so adding a row changes
no other) of every family of THE maze generator (:mod:`hrm_gym.maze.generator`: ``lattice``,
``rooms``, ``obstacles``) with every endpoint placement it allows (``lattice``: start and goal on
lattice cells; ``any``: on any open cells) at every size (``N`` or ``HxW``), solves them with a
fixed number of segments (no ACT halting) and reports the valid rate (exactly one shortest
start-goal path marked), the exact rate and the mean shortest path. The lattice families draw a
loop fraction per maze in [0, 0.3] (the maze task's default), obstacles a wall probability in
[0.3, 0.5]. A row the checkpoint never trained on (its family, or endpoints, not in the run's
task parameters) is marked ``new``. A size the model cannot read (learned positions of another
grid, or beyond what the maze task reads) is reported as such, as is a size a family cannot have
(lattice families: odd sides). Prints a table, then one JSON object.

The foreign families (``kruskal``, ``prim``, ``wilson``, ``division``, and ``md_*`` when
``maze-dataset`` is installed; see ``benchmarks/foreign_mazes.py``) are perfect lattice mazes
from generators the project never trains on, lattice endpoints only, always marked ``new``: they
tell whether the model learned maze solving or the habits of its own generator.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))  # foreign_mazes beside it

from foreign_mazes import FOREIGN_GENERATORS, check_shape, generate_foreign  # noqa: E402

LOOP_RANGE = (0.0, 0.3)


def parse_size(text: str) -> tuple[int, int]:
    """``"21"`` -> (21, 21); ``"10x14"`` -> (10, 14)."""
    parts = text.lower().split("x")
    try:
        sides = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} must be N or HxW (e.g. 21 or 10x14)") from None
    if len(sides) == 1:
        return sides[0], sides[0]
    if len(sides) == 2:
        return sides[0], sides[1]
    raise argparse.ArgumentTypeError(f"size {text!r} must be N or HxW (e.g. 21 or 10x14)")


def trained_kinds(task_params: dict[str, Any]) -> set[tuple[str, str]]:
    """The (family, endpoints) pairs a maze run's task parameters draw from."""
    from hrm_gym.maze.generator import LATTICE_FAMILIES

    parts = task_params.get("mix") or [task_params]
    kinds = set()
    for part in parts:
        family = part.get("family") or task_params.get("family") or "lattice"
        endpoints = part.get("endpoints") or task_params.get("endpoints")
        kinds.add((family, endpoints or ("lattice" if family in LATTICE_FAMILIES else "any")))
    return kinds


def is_new(family: str, endpoints: str, seen: set[tuple[str, str]]) -> bool:
    """Whether a row's mazes are new to the checkpoint (the foreign families always are)."""
    return family in FOREIGN_GENERATORS or (family, endpoints) not in seen


def draw(family: str, endpoints: str, shape: tuple[int, int], n: int, seed: int) -> np.ndarray:
    """``n`` mazes of one row, from a stream of their own (seed, family, endpoints, shape)."""
    from hrm_gym.maze.generator import ENDPOINTS, FAMILIES, generate_mazes

    if family in FOREIGN_GENERATORS:  # keyed by name, so that no family's stream depends on which exist
        rng = np.random.default_rng([seed, zlib.crc32(family.encode()), ENDPOINTS.index(endpoints), *shape])
        return generate_foreign(family, rng, n, shape)
    rng = np.random.default_rng([seed, FAMILIES.index(family), ENDPOINTS.index(endpoints), *shape])
    if family == "obstacles":
        return generate_mazes(rng, n, shape, family=family)
    loops = rng.uniform(*LOOP_RANGE, size=n)
    return generate_mazes(rng, n, shape, loops, family=family, endpoints=endpoints)


def score_row(model, task, mazes: np.ndarray, segments: int | None, pick: str) -> dict:
    """One row's scores, or why the model cannot read these mazes."""
    from agents.puzzles.base import PuzzleError
    from agents.puzzles.engine import check_model_reads, solve_set

    try:
        mazes = task.check_inputs(mazes, "mazes")
        check_model_reads(model, mazes.shape[1:])
    except PuzzleError as exc:
        return {"status": f"cannot read: {exc}"}
    targets = task.targets(mazes)
    outcome = solve_set(model, task, mazes, targets, segments=segments, pick=pick)
    return {
        "status": "ok",
        "n": len(mazes),
        "valid_rate": float(outcome.valid.mean()),
        "exact_accuracy": float(outcome.exact.mean()),
        "mean_path_length": float(targets.reshape(len(mazes), -1).sum(1).mean() - 1),
    }


def rows_to_score(families: list[str], sizes: list[tuple[int, int]]) -> list[tuple[str, str, tuple[int, int]]]:
    from hrm_gym.maze.generator import LATTICE_FAMILIES

    rows = []
    for family in families:
        if family in FOREIGN_GENERATORS:
            placements: tuple[str, ...] = ("lattice",)
        else:
            placements = ("lattice", "any") if family in LATTICE_FAMILIES else ("any",)
        for endpoints in placements:
            rows.extend((family, endpoints, shape) for shape in sizes)
    return rows


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every row's result and the run's settings (the JSON object the script prints)."""
    import torch

    from agents.puzzles.checkpoint import load_checkpoint
    from hrm_gym.maze.generator import maze_spec

    torch.set_num_threads(args.threads)
    model, task, record = load_checkpoint(args.checkpoint, task="maze")
    seen = trained_kinds(record.get("task_params") or {})
    rows = []
    for family, endpoints, shape in rows_to_score(args.families, args.sizes):
        row = {"family": family, "endpoints": endpoints, "size": f"{shape[0]}x{shape[1]}"}
        row["new"] = is_new(family, endpoints, seen)
        try:
            if family in FOREIGN_GENERATORS:
                check_shape(shape)
            else:
                maze_spec(shape, family=family, endpoints=endpoints)
        except ValueError as exc:
            rows.append({**row, "status": f"n/a: {exc}"})
            continue
        mazes = draw(family, endpoints, shape, args.n, args.seed)
        rows.append({**row, **score_row(model, task, mazes, args.segments, args.pick)})
    return {
        "checkpoint": str(args.checkpoint),
        "segments": args.segments or record["model_config"]["halt_max_steps"],
        "pick": args.pick,
        "seed": args.seed,
        "n": args.n,
        "trained_on": sorted(f"{family}/{endpoints}" for family, endpoints in seen),
        "rows": rows,
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"{result['checkpoint']}: {result['segments']} segments, pick {result['pick']}, {result['n']} mazes a row")
    print(f"{'family':>10} {'endpoints':>9} {'size':>7} {'':>3} {'valid':>7} {'exact':>7} {'mean path':>10}")
    for row in result["rows"]:
        head = f"{row['family']:>10} {row['endpoints']:>9} {row['size']:>7} {'new' if row['new'] else '':>3}"
        if row["status"] == "ok":
            print(f"{head} {row['valid_rate']:>7.3f} {row['exact_accuracy']:>7.3f} {row['mean_path_length']:>10.1f}")
        else:  # the JSON holds the whole reason
            print(f"{head} {row['status'][:80]}")


def main(argv: list[str] | None = None) -> int:
    from hrm_gym.maze.generator import FAMILIES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a maze run directory or model.pt")
    parser.add_argument("--n", type=int, default=200, help="mazes per row (default 200)")
    parser.add_argument("--sizes", type=parse_size, nargs="+", default=[(11, 11), (21, 21)], help="N or HxW")
    families = [*FAMILIES, *FOREIGN_GENERATORS]
    parser.add_argument("--families", nargs="+", choices=families, default=families, help="default: all")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--segments", type=int, default=None, help="reasoning segments (default: trained)")
    parser.add_argument("--pick", choices=("last", "confident"), default="last", help="as agents.solve --pick")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n {args.n} must be >= 1")
    if args.segments is not None and args.segments < 1:
        parser.error(f"--segments {args.segments} must be >= 1")
    result = measure(args)
    if not args.json_only:
        print_table(result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
