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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))  # chase_pace beside it

from chase_pace import play  # noqa: E402

from expert.chase import BlindChaseExpert, ChasePlannerExpert  # noqa: E402
from hrm_gym.foraging.chase import ForagingChaseEnv  # noqa: E402


class FleeingAgent:
    """The blind move unless it ends within ``radius`` of the enemy (or caught); else the safest move.

    It looks ahead on a copy of ``env`` (the env being played), so it acts through
    :func:`chase_pace.play` like the experts do.
    """

    def __init__(self, env: ForagingChaseEnv, radius: int):
        self.env, self.radius, self.blind = env, radius, BlindChaseExpert()

    def reset(self) -> None:
        pass

    def _distance_after(self, action: int) -> float:
        trial = copy.deepcopy(self.env)
        _, _, terminated, _, info = trial.step(action)
        if info["caught"]:
            return -1.0
        return math.inf if terminated else trial.enemy_distance()

    def act(self, obs, info) -> int:
        blind_action = self.blind.act(obs, info)
        distances = {blind_action: self._distance_after(blind_action)}
        if distances[blind_action] >= self.radius:
            return blind_action
        distances.update({a: self._distance_after(a) for a in range(4) if a != blind_action})
        return max(range(4), key=lambda a: (distances[a], a == blind_action))


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
    env = ForagingChaseEnv()
    rows = {"blind expert": play(env, BlindChaseExpert(), seeds)}
    rows.update({f"flee at radius {r}": play(env, FleeingAgent(env, r), seeds) for r in radii})
    rows["planner (ceiling)"] = play(env, ChasePlannerExpert(), seeds)
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
