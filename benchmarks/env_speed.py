"""Single-environment steps/s of every hrm-gym env, next to MiniGrid-Empty-16x16 in the same run.

    pip install minigrid --no-deps     # only for the comparison (its deps would swap pygame)
    python benchmarks/env_speed.py [--seconds 3] [--json-only]

Each env is made with ``gym.make`` (the wrappers a user gets) and stepped with random actions
(legal ones for Sudoku, from ``info["action_mask"]``), resetting when an episode ends; the
reset time counts. Prints one JSON object, then a short table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym
import numpy as np

import hrm_gym

MINIGRID_ID = "MiniGrid-Empty-16x16-v0"


def steps_per_second(env_id: str, seconds: float, seed: int = 0, **kwargs) -> dict:
    env = gym.make(env_id, **kwargs)
    rng = np.random.default_rng(seed)
    n_actions = env.action_space.n
    actions = rng.integers(n_actions, size=1 << 16).tolist()
    obs, info = env.reset(seed=seed)
    masked = "action_mask" in info
    steps = episodes = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(1000):
            if masked:
                action = int(rng.choice(np.flatnonzero(info["action_mask"])))
            else:
                action = actions[steps & 0xFFFF]
            obs, reward, terminated, truncated, info = env.step(action)
            steps += 1
            if terminated or truncated:
                episodes += 1
                obs, info = env.reset()
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - start
    env.close()
    return {"steps_per_s": steps / elapsed, "steps": steps, "episodes": episodes, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per env (default 3)")
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args()

    results: dict[str, dict] = {}
    for env_id in sorted(hrm_gym.ENV_SPECS):
        results[env_id] = steps_per_second(env_id, args.seconds)
    try:
        import minigrid  # noqa: F401

        results[MINIGRID_ID] = steps_per_second(MINIGRID_ID, args.seconds)
    except ImportError:
        results[MINIGRID_ID] = {"error": "minigrid not installed: pip install minigrid --no-deps"}
    reference = results[MINIGRID_ID].get("steps_per_s")
    for row in results.values():
        if reference and "steps_per_s" in row:
            row["x_minigrid"] = row["steps_per_s"] / reference
    report = {
        "benchmark": "env_speed",
        "seconds_per_env": args.seconds,
        "python": platform.python_version(),
        "gymnasium": gym.__version__,
        "hrm_gym": hrm_gym.__version__,
        "cpu_count": os.cpu_count(),
        "results": results,
    }
    print(json.dumps(report, indent=2))
    if not args.json_only:
        print(f"\n{'env':28s} {'steps/s':>12s} {'x MiniGrid':>11s}")
        for env_id, row in results.items():
            if "steps_per_s" in row:
                ratio = f"{row['x_minigrid']:.1f}" if "x_minigrid" in row else "-"
                print(f"{env_id:28s} {row['steps_per_s']:12,.0f} {ratio:>11s}")
            else:
                print(f"{env_id:28s} {row['error']}")


if __name__ == "__main__":
    main()
