"""Validation during PPO: periodic greedy episodes on both envs, keeping the best policy.

Every ``eval_every`` steps: ``eval_episodes`` Chase and ``val_foraging_episodes`` Foraging
episodes, greedy on ``val_views`` views (default 1: the 8-view vote would cost more than PPO
itself). The policy kept (``policy.pt``) has the best mean success over both envs, so a policy
that dodges by forgetting Foraging is not the one kept. Evaluations and resume checkpoints
happen at rollout starts, right after an update, so a resumed run continues from a whole update.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from agents.checkpoint import POLICY_FILE, save_policy
from agents.common.run import RunDirectory
from agents.evaluate import policy_actor, run_episodes
from agents.rl.algorithm import torch_threads
from agents.rl.envs import FORAGING_ID
from agents.rl.state import PPOState
from expert.generate import episode_seed

#: Split index of validation episodes in :func:`expert.generate.episode_seed` (test is 2).
VAL_SPLIT = 1
ROW_KEYS = ("success_rate", "caught_rate", "timeout_rate", "mean_path_ratio", "mean_episode_length", "mean_return",
            "mean_reasoning_steps")  # fmt: skip


class ValidationCallback(BaseCallback):
    """Validation keeping the best policy, resume checkpoints, the optional wall-clock cap."""

    def __init__(self, config: Any, run: RunDirectory, state: PPOState, save_last: Callable[[], None]):
        super().__init__()
        self.config, self.run, self.state, self.save_last = config, run, state, save_last
        self.val_seeds = [episode_seed(config.seed, VAL_SPLIT, i) for i in range(config.eval_episodes)]
        self.val_foraging_seeds = [
            episode_seed(config.seed, VAL_SPLIT, config.eval_episodes + i) for i in range(config.val_foraging_episodes)
        ]
        self.clock = time.time()
        self.episodes = {"done": 0, "caught": 0, "success": 0}

    def _tick(self) -> None:
        now = time.time()
        self.state.train_seconds += now - self.clock
        self.clock = now

    def _on_training_start(self) -> None:
        self.clock = time.time()
        if not self.state.history:
            self.evaluate()  # the starting point (the BC policy) is the first row of the curves

    def _on_rollout_start(self) -> None:
        self._tick()
        steps = self.model.num_timesteps
        if steps - self.state.last_eval >= self.config.eval_every:
            self.evaluate()
        if steps - self.state.last_checkpoint >= self.config.checkpoint_every:
            self.state.last_checkpoint = steps
            self.save_last()
        self.clock = time.time()

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"]):
            if done:
                self.episodes["done"] += 1
                self.episodes["caught"] += int(bool(info.get("caught", False)))
                self.episodes["success"] += int(not info.get("caught", False) and not info.get("TimeLimit.truncated"))
        if self.episodes["done"] >= 50:
            for key in ("caught", "success"):
                self.logger.record(f"rollout/{key}_rate", self.episodes[key] / self.episodes["done"])
            self.episodes = {"done": 0, "caught": 0, "success": 0}
        self._tick()
        cap = self.config.time_budget_s
        if cap is not None and self.state.train_seconds >= cap:
            self.state.stopped_by = "time_budget_s"
            return False
        return True

    def evaluate(self) -> dict[str, Any]:
        """One validation row; the policy is kept when its mean success over both envs is the best."""
        started = time.time()
        policy = self.model.policy
        was_training = policy.training
        policy.set_training_mode(False)
        views, foraging = self.config.val_views, None
        with torch_threads(1):
            report = run_episodes(policy_actor(policy, views=views), self.config.env_id, self.config.env_kwargs,
                                  seeds=self.val_seeds, label_states=False)  # fmt: skip
            if self.val_foraging_seeds:
                foraging = run_episodes(policy_actor(policy, views=views), FORAGING_ID, {},
                                        seeds=self.val_foraging_seeds, label_states=False)["success_rate"]  # fmt: skip
        policy.set_training_mode(was_training)
        row = {"timesteps": int(self.model.num_timesteps), "train_seconds": round(self.state.train_seconds, 1),
               **{k: report.get(k) for k in ROW_KEYS}, "foraging_success_rate": foraging}  # fmt: skip
        self.state.history.append(row)
        self.state.last_eval = row["timesteps"]
        for key, value in row.items():
            if value is not None and key != "timesteps":
                self.logger.record(f"eval/{key}", value)
        selected = row["success_rate"] if foraging is None else (row["success_rate"] + foraging) / 2
        rank = [selected, -(row["caught_rate"] or 0.0), -row["mean_episode_length"]]
        if self.state.best is None or rank > self.state.best["rank"]:
            self.state.best = {"rank": rank, "row": row}
            save_policy(self.run.path, policy, self.config.env_id, self.config.env_kwargs,
                        extra={"source": "ppo", "validation": row}, sb3_zip=False)  # fmt: skip
            self.run.recorded(POLICY_FILE)
        print(f"[{row['timesteps']:>7d} steps] val success {row['success_rate']:.3f} "
              f"caught {row['caught_rate'] or 0.0:.3f} timeout {row['timeout_rate']:.3f} "
              + ("" if foraging is None else f"foraging {foraging:.3f} ")
              + f"segments {row['mean_reasoning_steps']:.2f} ({time.time() - started:.0f}s eval, "
              f"{row['timesteps'] / max(row['train_seconds'], 1e-9):.0f} steps/s)", flush=True)  # fmt: skip
        self.clock = time.time()
        return row
