"""Maze navigation of an HRM policy on mazes of every size: success, thinking per decision, ACT.

    python benchmarks/maze_navigation.py --checkpoint RUN
    python benchmarks/maze_navigation.py --checkpoint RUN --sizes 11 21 31 --episodes 100 30 20 --max-segments 4 16
    python benchmarks/maze_navigation.py --checkpoint RUN --halt max --max-segments 1 2 4 8   # no ACT halting
    python benchmarks/maze_navigation.py --checkpoint RUN --halt-threshold 0.5 0.9 0.99      # ACT, stricter halting

For every maze size (``HRMMaze-v0`` with ``size``; the policy may have trained on another), every
test-time segment maximum (``--max-segments``) and both decision rules (each decision from scratch,
and with the plan carried from the episode's previous decision, ``agents.evaluate.CarriedPlan``),
greedy decisions on the observation alone (one view, no loop escape) play the seeded evaluation
episodes of ``agents.evaluate`` (``--seed``); ``--halt max`` runs every decision to the maximum
instead of letting the Q head stop it. A row reports the success rate, the path ratio, the
mean segments per decision and Pearson's r between the segments a decision used and the expert's
shortest distance left from the agent (does ACT think longer when the goal is farther?). The mean
segments per size then show whether it thinks longer on larger mazes. Prints a table, then JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a BC or PPO run of an HRM policy (or its policy.pt)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[11, 21, 31])
    parser.add_argument("--episodes", type=int, nargs="+", default=[100],
                        help="episodes per size (one number for all, or one per size)")  # fmt: skip
    parser.add_argument("--max-segments", type=int, nargs="+", default=[None],
                        help="test-time ACT maxima (default: as trained)")  # fmt: skip
    parser.add_argument("--rules", nargs="+", default=["fresh", "carried"], choices=["fresh", "carried"])
    parser.add_argument("--halt", choices=["q", "max"], default="q",
                        help="q: the ACT Q head may stop a decision early; max: every decision runs the maximum")  # fmt: skip
    parser.add_argument("--halt-threshold", type=float, nargs="+", default=[None],
                        help="with --halt q: the Q head's probability of 'done' a decision must exceed to halt "
                             "(default: the checkpoint's, 0.5)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--num-threads", type=int, default=2)
    args = parser.parse_args(argv)
    if len(args.episodes) not in (1, len(args.sizes)):
        parser.error(f"--episodes takes one number or one per size ({len(args.sizes)}), got {len(args.episodes)}")
    if min(args.episodes) < 1 or min(args.sizes) < 5:
        parser.error("--episodes must be >= 1 and --sizes >= 5")
    if any(m is not None and m < 1 for m in args.max_segments):
        parser.error("--max-segments must be >= 1")
    if any(t is not None and not 0 < t < 1 for t in args.halt_threshold):
        parser.error(f"--halt-threshold must lie in (0, 1), got {args.halt_threshold}")
    return args


class RecordingActor:
    """Wraps a batch actor; records each decision's segments and the expert's distance left."""

    takes_episode_ids = True

    def __init__(self, act):
        from expert.grid import GridTargetExpert
        from hrm_gym.core.grid import AGENT

        self.act, self.expert, self.agent_code = act, GridTargetExpert(), AGENT
        self.segments: list[float] = []
        self.distances: list[int] = []

    def __call__(self, obs: np.ndarray, episode_ids):
        actions, steps = self.act(obs, episode_ids) if getattr(self.act, "takes_episode_ids", False) else self.act(obs)
        for grid, used in zip(obs, steps):
            agent = np.argwhere(grid == self.agent_code)[0]
            self.distances.append(int(self.expert.distances(grid)[tuple(agent)]))
            self.segments.append(float(used))
        return actions, steps

    def end_episode(self, episode_id: int) -> None:
        if getattr(self.act, "takes_episode_ids", False):
            self.act.end_episode(episode_id)


def correlation(a: list[float], b: list[int]) -> float | None:
    """Pearson's r, or None where either side does not vary."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def main(argv: list[str] | None = None) -> int:
    import torch

    from agents.evaluate import (
        CarriedPlan,
        load_checked_policy,
        policy_actor,
        run_episodes,
        set_halt_threshold,
        test_seeds,
    )

    args = parse_args(argv)
    torch.set_num_threads(args.num_threads)
    policy, record = load_checked_policy(args.checkpoint, "HRMMaze-v0")
    policy.set_training_mode(False)
    policy.hrm.config = policy.hrm.config.replace(eval_halt=args.halt)
    trained_max, trained_threshold = policy.max_segments, policy.hrm.config.halt_threshold
    rows: list[dict[str, Any]] = []
    per_size = args.episodes * len(args.sizes) if len(args.episodes) == 1 else args.episodes
    settings = [(m, t, r) for m in args.max_segments for t in args.halt_threshold for r in args.rules]
    for size, episodes in zip(args.sizes, per_size):
        for most, threshold, rule in settings:  # one row per size, segment maximum, threshold and rule
            if threshold is not None or policy.hrm.config.halt_threshold != trained_threshold:
                set_halt_threshold(policy, threshold if threshold is not None else trained_threshold)
            policy.max_segments = most if most is not None else trained_max
            act = CarriedPlan(policy) if rule == "carried" else policy_actor(policy, views=1)
            recorder = RecordingActor(act)
            started = time.time()
            report = run_episodes(recorder, "HRMMaze-v0", {"size": size}, seeds=test_seeds(args.seed, episodes))
            row = {
                "size": size, "max_segments": most or policy.model_config.halt_max_steps, "rule": rule,
                "halt_threshold": policy.hrm.config.halt_threshold, "episodes": episodes,
                "success_rate": report["success_rate"], "mean_path_ratio": report["mean_path_ratio"],
                "mean_segments": float(np.mean(recorder.segments)),
                "segments_vs_distance_r": correlation(recorder.segments, recorder.distances),
                "decisions": len(recorder.segments), "seconds": round(time.time() - started, 1),
            }  # fmt: skip
            rows.append(row)
            r = row["segments_vs_distance_r"]
            print(f"{size}x{size} max {row['max_segments']:>2} p>{row['halt_threshold']:.2f} {rule:7s}: "
                  f"success {row['success_rate']:.3f}  segments {row['mean_segments']:.2f}  r(segments, distance) "
                  f"{'-' if r is None else f'{r:.2f}'}  ({row['seconds']}s)", flush=True)  # fmt: skip
    print(json.dumps({"checkpoint": record["path"], "trained_on": record["env_kwargs"], "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
