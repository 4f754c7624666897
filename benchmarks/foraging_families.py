"""Foraging layouts built differently from the env's generator: does a policy find a way, or head for the target?

    python benchmarks/foraging_families.py --checkpoint pretrained:foraging-bc RUN
    python benchmarks/foraging_families.py --checkpoint RUN --families detour clutter --n 300 --views 1 8
    python benchmarks/foraging_families.py --save layouts/   # write the sets; then:
    python -m agents.evaluate --checkpoint RUN --layouts layouts/foraging_detour.npz --views 1

``HRMForaging-v0`` draws 5-10 wall segments of 2-4 cells (:mod:`hrm_gym.foraging.generator`), so a
straight line to the food is rarely blocked for long. A policy can score well there by heading for
the target. These families keep the env's 16x16 grid and cell codes but build the walls otherwise:

* ``own``: the env's generator itself (fresh draws: the reference row).
* ``long_walls``: 5-10 segments of 5-8 cells.
* ``detour``: 6-12 segments of 3-8 cells, nest and food placed where the shortest path is at least
  4 steps longer than the Manhattan distance (a wall forces the agent round it, both ways).
* ``clutter``: a perfect maze (randomized Kruskal on the odd lattice of a 17x17 grid, cut to 16x16
  at a random offset) with 15-35% of its walls knocked out: maze-like clutter
  with loops; nest and food at least 8 steps apart.

Every layout is solvable (the BFS expert plays each; its length is the path ratio's reference).
Each family draws from a stream of its own (``--seed`` and the family's name), so adding a family
changes no other. For every checkpoint x views x family, greedy decisions (no loop escape) play
each layout once; a row reports the success rate, the mean path ratio of the successes, the
timeout rate and the mean segments per decision. Prints a table, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from hrm_gym.core.grid import EMPTY, FOOD, NEST, UNREACHABLE, WALL, bfs_distances, find_cells  # noqa: E402
from hrm_gym.foraging.generator import draw_walls, generate_foraging_layout  # noqa: E402

SIZE = 16
FAMILIES = ("own", "long_walls", "detour", "clutter")
#: Shortest path minus Manhattan distance that a ``detour`` layout needs at least.
MIN_DETOUR = 4
#: Shortest nest-food distance of a ``clutter`` layout, at least.
MIN_CLUTTER_DISTANCE = 8
#: Draws per layout before a builder gives up (never reached with these settings).
MAX_DRAWS = 1000


def kruskal_clutter(rng: np.random.Generator) -> np.ndarray:
    """A perfect 17x17 lattice maze cut to 16x16 at a random offset, then 15-35% of its walls opened."""
    cells = 8  # lattice cells a side of a 17x17 maze
    grid = np.full((2 * cells + 1, 2 * cells + 1), WALL, dtype=np.uint8)
    grid[1::2, 1::2] = EMPTY
    parent = list(range(cells * cells))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    edges = [(r, c, dr, dc) for r in range(cells) for c in range(cells) for dr, dc in ((0, 1), (1, 0))
             if r + dr < cells and c + dc < cells]  # fmt: skip
    for k in rng.permutation(len(edges)):
        r, c, dr, dc = edges[int(k)]
        a, b = root(r * cells + c), root((r + dr) * cells + c + dc)
        if a != b:
            parent[a] = b
            grid[2 * r + 1 + dr, 2 * c + 1 + dc] = EMPTY
    top, left = int(rng.integers(0, 2)), int(rng.integers(0, 2))
    grid = grid[top : top + SIZE, left : left + SIZE].copy()
    walls = np.flatnonzero(grid == WALL)
    opened = rng.choice(walls, size=int(len(walls) * rng.uniform(0.15, 0.35)), replace=False)
    grid.flat[opened] = EMPTY
    return grid


def _place(rng: np.random.Generator, grid: np.ndarray, family: str) -> np.ndarray | None:
    """Nest and food on open cells as the family asks, or None if this grid has no such pair."""
    free = np.flatnonzero(grid == EMPTY)
    if free.size < 2:
        return None
    nest = divmod(int(rng.choice(free)), SIZE)
    distance = bfs_distances(grid != WALL, nest)
    rows, cols = np.divmod(np.arange(SIZE * SIZE), SIZE)
    manhattan = (np.abs(rows - nest[0]) + np.abs(cols - nest[1])).reshape(SIZE, SIZE)
    ok = (distance != UNREACHABLE) & (grid == EMPTY) & (distance > 0)
    if family == "detour":
        ok &= distance - manhattan >= MIN_DETOUR
    elif family == "clutter":
        ok &= distance >= MIN_CLUTTER_DISTANCE
    candidates = np.flatnonzero(ok)
    if candidates.size == 0:
        return None
    food = divmod(int(rng.choice(candidates)), SIZE)
    layout = grid.copy()
    layout[nest], layout[food] = NEST, FOOD
    return layout


def build_layout(family: str, rng: np.random.Generator) -> np.ndarray:
    """One solvable ``(16, 16)`` Foraging layout of ``family`` (see the module docstring)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; allowed: {', '.join(FAMILIES)}")
    if family == "own":
        return generate_foraging_layout(rng, SIZE)
    for _ in range(MAX_DRAWS):
        if family == "long_walls":
            grid = draw_walls(rng, SIZE, (5, 10), (5, 8))
        elif family == "detour":
            grid = draw_walls(rng, SIZE, (6, 12), (3, 8))
        else:
            grid = kruskal_clutter(rng)
        layout = _place(rng, grid, family)
        if layout is not None:
            return layout
    raise RuntimeError(f"no {family} layout found in {MAX_DRAWS} draws")


def build_family(family: str, n: int, seed: int) -> np.ndarray:
    """``n`` layouts of ``family``, ``(n, 16, 16) uint8``, from the stream of (seed, family)."""
    rng = np.random.default_rng([seed, zlib.crc32(family.encode())])
    return np.stack([build_layout(family, rng) for _ in range(n)])


def detours(layouts: np.ndarray) -> np.ndarray:
    """Shortest nest-food path minus their Manhattan distance, per layout."""
    out = []
    for layout in layouts:
        nest, food = find_cells(layout, NEST)[0], find_cells(layout, FOOD)[0]
        out.append(int(bfs_distances(layout != WALL, nest)[food]) - abs(nest[0] - food[0]) - abs(nest[1] - food[1]))
    return np.asarray(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", nargs="*", default=[],
                        help="Foraging BC/PPO runs, policy.pt files or pretrained:NAME (none: the sets only)")  # fmt: skip
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--n", type=int, default=200, help="layouts per family")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--views", type=int, nargs="+", default=[1], choices=[1, 2, 4, 8],
                        help="symmetric views that vote on a decision (1: the observation alone)")  # fmt: skip
    parser.add_argument("--max-segments", type=int, default=None, help="test-time ACT maximum (default: as trained)")
    parser.add_argument("--save", type=Path, default=None, help="write DIR/foraging_FAMILY.npz (array 'layouts')")
    parser.add_argument("--num-threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be >= 1, got {args.n}")
    if args.max_segments is not None and args.max_segments < 1:
        parser.error(f"--max-segments must be >= 1, got {args.max_segments}")
    if not args.checkpoint and args.save is None:
        parser.error("give --checkpoint (to evaluate) and/or --save (to write the sets)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sets = {family: build_family(family, args.n, args.seed) for family in args.families}
    stats = {f: {"mean_detour": float(detours(s).mean()), "detour_ge_4": float((detours(s) >= MIN_DETOUR).mean())}
             for f, s in sets.items()}  # fmt: skip
    for family, layouts in sets.items():
        print(f"{family:10s}: {len(layouts)} layouts, mean detour {stats[family]['mean_detour']:.2f}, "
              f"detour >= {MIN_DETOUR} in {stats[family]['detour_ge_4']:.3f}")  # fmt: skip
        if args.save is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(args.save / f"foraging_{family}.npz", layouts=layouts)
    rows: list[dict[str, Any]] = []
    if args.checkpoint:
        import torch

        from agents.evaluate import load_checked_policy, policy_actor, run_episodes

        torch.set_num_threads(args.num_threads)
        for path in args.checkpoint:
            policy, record = load_checked_policy(path, "HRMForaging-v0")
            policy.set_training_mode(False)
            if args.max_segments is not None and hasattr(policy, "max_segments"):
                policy.max_segments = args.max_segments
            for views in args.views:
                for family, layouts in sets.items():
                    started = time.time()
                    report = run_episodes(policy_actor(policy, views=views), "HRMForaging-v0", layouts=layouts)
                    row = {"checkpoint": path, "views": views, "family": family, "episodes": len(layouts),
                           "success_rate": report["success_rate"], "mean_path_ratio": report["mean_path_ratio"],
                           "timeout_rate": report["timeout_rate"], "mean_segments": report["mean_reasoning_steps"],
                           "optimal_action_rate": report["optimal_action_rate"],
                           "seconds": round(time.time() - started, 1)}  # fmt: skip
                    rows.append(row)
                    ratio = row["mean_path_ratio"]
                    print(f"{Path(path).name[:24]:24s} views {views} {family:10s}: success {row['success_rate']:.3f}  "
                          f"path ratio {'-' if ratio is None else f'{ratio:.3f}'}  timeouts {row['timeout_rate']:.3f}  "
                          f"segments {row['mean_segments']:.2f}  ({row['seconds']}s)", flush=True)  # fmt: skip
    print(json.dumps({"seed": args.seed, "n": args.n, "families": stats, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
