"""How far does reacting to the enemy get on Chase, without planning? (a diagnostic for PPO)

    python benchmarks/chase_flee.py                      # 300 episodes, radii 1-4
    python benchmarks/chase_flee.py --episodes 50 --radii 2

A *fleeing* agent follows the enemy-blind shortest path, except when its move would leave the
enemy within ``radius`` steps of it (the enemy's own BFS metric, ``enemy_distance()``; the nest
is out of reach) or get it caught: then it takes the move after which the enemy is farthest
(one step of look-ahead on a copy of the env, ties to the blind move). It plays the same seeded
episodes (reset seeds ``seed .. seed + N - 1``) as the blind expert and the enemy-aware planner.

What it shows: being caught is easy to avoid by reacting (the fleeing agent is almost never
caught), but the episodes it does not win it loses to the step limit, dithering in front of an
enemy that guards the way. Winning them takes planning (leading the enemy around a wall, then
running for the food), which is what PPO has to discover from the reward.

Prints a short table, then one JSON object.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from expert.chase import BlindChaseExpert, ChasePlannerExpert  # noqa: E402
from hrm_gym.foraging.chase import ForagingChaseEnv  # noqa: E402


def fleeing_action(env: ForagingChaseEnv, blind_action: int, radius: int) -> int:
    """The blind move unless it ends within ``radius`` of the enemy (or caught); else the safest move."""

    def distance_after(action: int) -> float:
        trial = copy.deepcopy(env)
        _, _, terminated, _, info = trial.step(action)
        if info["caught"]:
            return -1.0
        return math.inf if terminated else trial.enemy_distance()

    if distance_after(blind_action) >= radius:
        return blind_action
    return max(range(4), key=lambda a: (distance_after(a), a == blind_action))


def play(kind: str, seeds: range, radius: int = 0) -> dict[str, Any]:
    counts = {"success": 0, "caught": 0, "timeout": 0}
    lengths = []
    started = time.process_time()
    blind, planner = BlindChaseExpert(), ChasePlannerExpert()
    for seed in seeds:
        env = ForagingChaseEnv()
        obs, info = env.reset(seed=seed)
        planner.reset()
        terminated = truncated = False
        while not (terminated or truncated):
            if kind == "planner":
                action = planner.act(obs, info)
            else:
                action = blind.act(obs, info)
                if kind == "flee":
                    action = fleeing_action(env, action, radius)
            obs, _, terminated, truncated, info = env.step(action)
        counts["caught" if info["caught"] else ("timeout" if truncated else "success")] += 1
        lengths.append(info["steps"])
    n = len(seeds)
    return {
        **{f"{key}_rate": value / n for key, value in counts.items()},
        "mean_episode_length": sum(lengths) / n,
        "cpu_seconds": round(time.process_time() - started, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--radii", default="1,2,3,4", help="comma-separated radii of the fleeing agent")
    parser.add_argument("--seed", type=int, default=10_000, help="first reset seed")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    try:
        radii = [int(r) for r in args.radii.split(",")]
    except ValueError:
        parser.error(f"--radii must be comma-separated integers, got {args.radii!r}")
    if any(r < 1 for r in radii):
        parser.error(f"every radius must be >= 1, got {radii}")
    seeds = range(args.seed, args.seed + args.episodes)
    rows = {"blind expert": play("blind", seeds)}
    rows.update({f"flee at radius {r}": play("flee", seeds, r) for r in radii})
    rows["planner (ceiling)"] = play("planner", seeds)
    width = max(len(name) for name in rows)
    print(f"HRMForagingChase-v0 (default pace), {args.episodes} episodes from seed {args.seed}")
    print(f"{'':{width}s}  success  caught  timeout  length")
    for name, row in rows.items():
        print(f"{name:{width}s}  {row['success_rate']:7.3f}  {row['caught_rate']:6.3f}  "
              f"{row['timeout_rate']:7.3f}  {row['mean_episode_length']:6.1f}")  # fmt: skip
    print(json.dumps({"episodes": args.episodes, "seed": args.seed, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
