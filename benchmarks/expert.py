"""Expert benchmark: dataset generation speed, expert optimality, Chase outcome rates.

    python benchmarks/expert.py                      # full run (the lead runs this alone)
    python benchmarks/expert.py --episodes 50 --gen-scale 0.01   # quick check
    python benchmarks/expert.py --json-only
    python benchmarks/expert.py --only Foraging --only Maze   # a subset (label substrings)

1. Generation speed: ``expert.generate.generate_dataset`` end to end (rollouts, labels, files
   with hashes) into a temporary directory, training split only; episodes/s and states/s.
   Default counts: 10,000 Foraging episodes (goal: under 10 s on 2 cores), 2,000 Maze 11x11,
   1,000 Maze 21x21, 200 Maze-Hard, 200 Chase, 200 Sudoku per difficulty; ``--gen-scale``
   multiplies them.
2. Quality on ``--episodes`` (default 1,000) episodes per env, reset seeds 0..N-1: success rate
   and path length over the optimum. The optimum is computed here by an independent BFS on the
   first observation (the layout): Foraging 2 x d(nest, food), Maze d(start, goal) (and checked
   against ``info["optimal_path_length"]``); Sudoku: the number of empty cells.
3. Chase (when ``expert/chase.py`` exists): success / caught / timeout rates and mean episode
   length of the enemy-blind expert and of the enemy-aware planner, default enemy pace.

Prints a short table, then one JSON object (only the JSON with ``--json-only``). The full run
takes tens of minutes, mostly Sudoku (the env's puzzle generator: ~1 s per extreme puzzle)
and the Chase planner (one joint-state solve per layout).
Sections whose env or expert modules are missing are reported as skipped.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import tempfile
import time
from collections import deque
from typing import Any

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import hrm_gym  # noqa: E402
from expert import make_expert  # noqa: E402
from expert.generate import generate_dataset, make_unwrapped_env  # noqa: E402

DEFAULT_DIFFICULTIES = ("easy", "medium", "hard", "extreme")


def sudoku_difficulties() -> tuple[str, ...]:
    """The difficulty names the Sudoku generator offers (its own list when it exports one)."""
    for module_name in ("hrm_gym.sudoku.generator", "hrm_gym.sudoku"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for attribute in ("DIFFICULTIES", "DIFFICULTY_BANDS", "BANDS"):
            value = getattr(module, attribute, None)
            if value:
                return tuple(value)
    return DEFAULT_DIFFICULTIES


def configs() -> list[tuple[str, str, dict[str, Any], int]]:
    """(label, env id, env kwargs, default generation episodes)."""
    rows = [
        ("Foraging 16x16", "HRMForaging-v0", {}, 10_000),
        ("Maze 11x11", "HRMMaze-v0", {"size": 11}, 2_000),
        ("Maze 21x21", "HRMMaze-v0", {"size": 21}, 1_000),
        ("Maze-Hard", "HRMMaze-Hard-v0", {}, 200),
        ("Chase 16x16", "HRMForagingChase-v0", {}, 200),
    ]
    rows += [(f"Sudoku {d}", "HRMSudoku-v0", {"difficulty": d}, 200) for d in sudoku_difficulties()]
    return rows


# ---- independent optimum ---------------------------------------------------------------------
def reference_distance(grid: np.ndarray, source: tuple[int, int], target: tuple[int, int]) -> int:
    """BFS step count written apart from hrm_gym.core.grid (walls = code 1); -1 if cut off."""
    h, w = grid.shape
    seen = {source: 0}
    queue = deque([source])
    while queue:
        cell = queue.popleft()
        if cell == target:
            return seen[cell]
        r, c = cell
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= nr < h and 0 <= nc < w and grid[nr, nc] != 1 and (nr, nc) not in seen:
                seen[(nr, nc)] = seen[cell] + 1
                queue.append((nr, nc))
    return -1


def _cell(grid: np.ndarray, code: int) -> tuple[int, int]:
    found = np.argwhere(grid == code)
    if len(found) != 1:
        raise ValueError(f"expected one cell with code {code}, found {len(found)}")
    return int(found[0][0]), int(found[0][1])


def optimum(env_id: str, first_obs: np.ndarray, info: dict[str, Any]) -> int:
    """The optimal episode length from the first observation, computed independently."""
    if env_id == "HRMSudoku-v0":
        return int(np.count_nonzero(first_obs == 0))
    agent, food = _cell(first_obs, 2), _cell(first_obs, 3)
    distance = reference_distance(first_obs, agent, food)
    if env_id.startswith("HRMMaze"):
        if "optimal_path_length" in info and int(info["optimal_path_length"]) != distance:
            raise AssertionError(
                f"info optimal_path_length {info['optimal_path_length']} != independent BFS {distance}"
            )
        return distance
    return 2 * distance  # Foraging: nest -> food -> nest, the agent starts on the nest


# ---- sections ------------------------------------------------------------------------------------
def generation_speed(label: str, env_id: str, kwargs: dict, episodes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        metadata = generate_dataset(env_id, episodes, 0, directory, val_episodes=0, env_kwargs=kwargs, progress=False)
        elapsed = time.perf_counter() - start
    states = metadata["splits"]["train"]["states"]
    return {
        "env": label,
        "env_id": env_id,
        "env_kwargs": kwargs,
        "episodes": episodes,
        "seconds": round(elapsed, 3),
        "episodes_per_s": round(episodes / elapsed, 1),
        "states_per_s": round(states / elapsed, 1),
        "mean_episode_length": round(states / episodes, 2),
    }


def rollout(env, expert, seed: int) -> tuple[int, bool, dict[str, Any], np.ndarray, dict[str, Any]]:
    obs, info = env.reset(seed=seed)
    expert.reset()
    first_obs, first_info = np.array(obs), dict(info)
    steps = 0
    while True:
        obs, _, terminated, truncated, info = env.step(expert.act(obs, info))
        steps += 1
        if terminated or truncated:
            return steps, bool(terminated), info, first_obs, first_info


def quality(label: str, env_id: str, kwargs: dict, episodes: int) -> dict[str, Any]:
    env = make_unwrapped_env(env_id, kwargs)
    expert = make_expert(env_id, **kwargs)
    successes, ratios = 0, []
    start = time.perf_counter()
    for seed in range(episodes):
        steps, terminated, info, first_obs, first_info = rollout(env, expert, seed)
        success = terminated and not info.get("invalid_move", False) and info.get("solved", True) is not False
        successes += success
        if success:
            ratios.append(steps / optimum(env_id, first_obs, first_info))
    elapsed = time.perf_counter() - start
    return {
        "env": label,
        "env_id": env_id,
        "env_kwargs": kwargs,
        "episodes": episodes,
        "success_rate": successes / episodes,
        "mean_path_ratio": float(np.mean(ratios)) if ratios else None,
        "min_path_ratio": float(np.min(ratios)) if ratios else None,
        "max_path_ratio": float(np.max(ratios)) if ratios else None,
        "seconds": round(elapsed, 3),
    }


def chase(episodes: int) -> list[dict[str, Any]]:
    module = importlib.import_module("expert.chase")
    env = make_unwrapped_env("HRMForagingChase-v0", {})
    rows = []
    for name in ("BlindChaseExpert", "ChasePlannerExpert"):
        expert = getattr(module, name)()
        outcome = {"success": 0, "caught": 0, "timeout": 0}
        lengths = []
        start = time.perf_counter()
        for seed in range(episodes):
            steps, terminated, info, _, _ = rollout(env, expert, seed)
            lengths.append(steps)
            if info.get("caught", False):
                outcome["caught"] += 1
            elif terminated:
                outcome["success"] += 1
            else:
                outcome["timeout"] += 1
        rows.append(
            {
                "expert": name,
                "episodes": episodes,
                **{f"{k}_rate": v / episodes for k, v in outcome.items()},
                "mean_episode_length": float(np.mean(lengths)),
                "enemy_pace": list(getattr(env, "enemy_pace", ())) or None,
                "seconds": round(time.perf_counter() - start, 3),
            }
        )
    return rows


def _guarded(function, *args) -> Any:
    """Run one section; a missing module (another part not written yet) becomes a skip."""
    try:
        return function(*args)
    except ImportError as exc:
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    except ValueError as exc:
        if "unknown env id" in str(exc) or "No module named" in str(exc):
            return {"skipped": str(exc)}
        raise
    except Exception as exc:
        if type(exc).__name__ in ("NameNotFound", "NamespaceNotFound", "ModuleNotFoundError"):
            return {"skipped": f"{type(exc).__name__}: {exc}"}
        raise


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_tables(result: dict[str, Any]) -> None:
    print("Generation speed (train split written to disk, incl. hashing)")
    print(f"{'env':<18}{'episodes':>9}{'seconds':>9}{'episodes/s':>12}{'states/s':>11}")
    for row in result["generation"]:
        if "skipped" in row:
            print(f"{row['env']:<18}  skipped: {row['skipped'][:70]}")
            continue
        print(
            f"{row['env']:<18}{row['episodes']:>9}{row['seconds']:>9.2f}"
            f"{row['episodes_per_s']:>12.0f}{row['states_per_s']:>11.0f}"
        )
    print()
    print(f"Expert quality ({result['quality_episodes']} seeded episodes per env)")
    print(f"{'env':<18}{'success':>9}{'path ratio':>12}{'min':>8}{'max':>8}")
    for row in result["quality"]:
        if "skipped" in row:
            print(f"{row['env']:<18}  skipped: {row['skipped'][:70]}")
            continue
        print(
            f"{row['env']:<18}{row['success_rate']:>9.3f}{_fmt(row['mean_path_ratio'], '>12.4f')}"
            f"{_fmt(row['min_path_ratio'], '>8.3f')}{_fmt(row['max_path_ratio'], '>8.3f')}"
        )
    print()
    print("Chase, default enemy pace")
    if isinstance(result["chase"], dict):
        print(f"  skipped: {result['chase']['skipped']}")
    else:
        print(f"{'expert':<20}{'success':>9}{'caught':>9}{'timeout':>9}{'mean len':>10}")
        for row in result["chase"]:
            print(
                f"{row['expert']:<20}{row['success_rate']:>9.3f}{row['caught_rate']:>9.3f}"
                f"{row['timeout_rate']:>9.3f}{row['mean_episode_length']:>10.1f}"
            )
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=1000, help="quality episodes per env")
    parser.add_argument("--gen-scale", type=float, default=1.0, help="scale the generation counts")
    parser.add_argument("--json-only", action="store_true")
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="TEXT",
        help="run only the envs whose label contains TEXT (repeatable; 'Chase' for that section)",
    )
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.gen_scale <= 0:
        parser.error("--episodes must be >= 1 and --gen-scale > 0")
    result: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "package_version": hrm_gym.__version__,
        "quality_episodes": args.episodes,
        "generation": [],
        "quality": [],
    }

    def wanted(label: str) -> bool:
        return args.only is None or any(text.lower() in label.lower() for text in args.only)

    for label, env_id, kwargs, count in configs():
        if not wanted(label):
            continue
        episodes = max(1, round(count * args.gen_scale))
        row = _guarded(generation_speed, label, env_id, kwargs, episodes)
        result["generation"].append({"env": label, **row} if "skipped" in row else row)
        if env_id == "HRMForagingChase-v0":
            continue  # its outcomes (the planner detours on purpose) are the Chase section
        row = _guarded(quality, label, env_id, kwargs, args.episodes)
        result["quality"].append({"env": label, **row} if "skipped" in row else row)
    result["chase"] = _guarded(chase, args.episodes) if wanted("Chase") else {"skipped": "--only"}
    if not args.json_only:
        print_tables(result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
