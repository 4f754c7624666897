"""How long the default trainings take on this machine: samples/s on 1 and 2 threads, predicted times.

    python benchmarks/train_speed.py [--seconds 15] [--threads 1 2] [--only bc maze sudoku ppo]

Every default run is bounded by samples (BC and the puzzle trainer: ``max_batches``; PPO:
``total_timesteps``), so its result does not depend on the machine, only its wall time does.
This times each default config's own training step (BC: a batch of the HRM policy with the
deep-supervision loss and AdamW; maze and Sudoku: a deep-supervision pass of the puzzle
trainer, every segment at full depth as a fresh model runs it; PPO: rollouts and updates of
the HRM policy with the BC preset) for ``--seconds`` after a warm-up, on each thread count,
and predicts the training time of the default budget (validation, data and tests come on
top). Prints a table, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(step: Callable[[], int], seconds: float) -> float:
    """Samples/s of ``step`` (returns the samples it did) over ``seconds``, after one warm-up call."""
    step()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        done += step()
    return done / (time.perf_counter() - started)


def bc_step(config_path: Path) -> tuple[Callable[[], int], int]:
    """One BC batch of the default config on Foraging states; ``(step, budget in samples)``."""
    import gymnasium as gym
    import numpy as np
    import torch

    from agents.bc import BCConfig, DeepSupervisionLoss, policy_kwargs_for
    from agents.checkpoint import build_policy
    from agents.config import load_config

    config = load_config(BCConfig, config_path)
    env = gym.make(config.env_id, **config.env_kwargs)
    states = np.stack([env.reset(seed=i)[0] for i in range(config.batch_size)])
    obs = torch.as_tensor(states)
    acts = torch.as_tensor(np.random.default_rng(0).integers(0, env.action_space.n, config.batch_size))
    policy = build_policy(env, config.policy, policy_kwargs_for(config), lr=config.lr)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss = DeepSupervisionLoss(config.q_loss_weight)

    def step() -> int:
        optimizer.zero_grad()
        loss(policy, obs, acts).loss.backward()
        optimizer.step()
        return config.batch_size

    return step, config.max_batches * config.batch_size


def puzzle_step(config_path: Path) -> tuple[Callable[[], int], int]:
    """One deep-supervision pass of a puzzle config; ``(step, budget in puzzles)``."""
    import torch

    from agents.config import load_config
    from agents.hrm.losses import ACTLossHead, deep_supervision_pass
    from agents.puzzles import get_task
    from agents.train_puzzle import PuzzleTrainConfig, TrainStream, build

    config = load_config(PuzzleTrainConfig, config_path)
    task = get_task(config.task)
    params = task.check_params(config.task_params)
    stream = TrainStream(task, config, params)
    model = build(config, task, params, [])
    head = ACTLossHead(model, config.loss_type, q_loss_weight=config.q_loss_weight,
                       aux_label_key="aux" if config.aux_weight > 0 else None, aux_weight=config.aux_weight)  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def step() -> int:
        batch = {k: torch.as_tensor(v) for k, v in stream.next().items()}
        deep_supervision_pass(head, batch, [optimizer], grad_clip=config.grad_clip)
        return config.batch_size

    return step, config.max_batches * config.batch_size


def ppo_step(config_path: Path) -> tuple[Callable[[], int], int]:
    """One rollout + update of the default PPO config with a BC-preset HRM; ``(step, budget in steps)``."""
    from agents.bc import BCConfig, policy_kwargs_for
    from agents.config import load_config
    from agents.ppo import PPOConfig, new_model
    from agents.rl.envs import make_env

    config = load_config(PPOConfig, config_path, ["value_warmup_rollouts=0"])
    bc_config = load_config(BCConfig, ROOT / "configs" / "foraging_chase_bc.yaml")
    kwargs = {**policy_kwargs_for(bc_config), "critic": config.critic}
    model = new_model(config, make_env(config, 0), "hrm", kwargs, tb=None)
    rollout = config.n_steps * config.n_envs

    def step() -> int:
        model.learn(rollout, reset_num_timesteps=False)
        return rollout

    return step, config.total_timesteps


TRAINERS = {
    "bc": (
        "python -m agents.bc --config configs/foraging_bc.yaml",
        lambda: bc_step(ROOT / "configs" / "foraging_bc.yaml"),
    ),
    "maze": ("python -m agents.train_puzzle", lambda: puzzle_step(ROOT / "configs" / "maze_hrm.yaml")),
    "sudoku": ("... --config configs/sudoku_hrm.yaml", lambda: puzzle_step(ROOT / "configs" / "sudoku_hrm.yaml")),
    "ppo": ("python -m agents.ppo", lambda: ppo_step(ROOT / "configs" / "foraging_chase_ppo.yaml")),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="timing budget per trainer and thread count")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--only", nargs="+", choices=sorted(TRAINERS), default=list(TRAINERS))
    args = parser.parse_args(argv)
    if args.seconds <= 0 or any(t < 1 for t in args.threads):
        parser.error(f"--seconds must be > 0 and --threads >= 1, got {args.seconds} and {args.threads}")

    import torch

    from agents.common.machine import machine_facts

    results = {"machine": machine_facts(), "trainers": {}}
    for name in args.only:
        command, make = TRAINERS[name]
        row = {"command": command}
        for threads in args.threads:
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            step, budget = make()
            rate = timed(step, args.seconds)
            row[f"{threads}_threads"] = {"samples_per_s": round(rate, 1), "predicted_train_minutes": round(budget / rate / 60, 1)}  # fmt: skip
            row["budget_samples"] = budget
        results["trainers"][name] = row
        cells = "  ".join(f"{t} thr: {row[f'{t}_threads']['samples_per_s']:>8.1f}/s = "
                          f"{row[f'{t}_threads']['predicted_train_minutes']:>5.1f} min" for t in args.threads)  # fmt: skip
        print(f"{name:7s} {row['budget_samples']:>9,d} samples  {cells}", flush=True)
    results["machine"]["threads"] = args.threads
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
