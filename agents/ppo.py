"""PPO fine-tuning of the behaviour-cloned HRM policy against the chasing enemy.

    python -m agents.ppo [--config configs/foraging_chase_ppo.yaml] [--init DIR] [--set key=value ...]
                         [--out DIR] [--layouts FILE.npz]
    python -m agents.ppo --resume DIR
    python -m agents.ppo --compare DIR [--layouts FILE.npz]     (redo a finished run's comparison)

Reads top to bottom: config -> the BC run to start from (``--init``; default the newest
``runs/bc-*`` holding a ``policy.pt``, and if there is none, a BC run with
``configs/foraging_chase_bc.yaml`` (Foraging plus planner-labelled Chase states) is trained first) -> SB3 PPO on ``HRMForagingChase-v0`` with :class:`HRMActorCriticPolicy` built
from the BC checkpoint's own policy kwargs and loaded with its weights (checked: same action
probabilities) -> periodic evaluation on validation episodes keeping the best policy as
``DIR/policy.pt`` -> resume checkpoints (``DIR/last.zip`` + ``DIR/state.json``) -> PPO from
scratch with SB3's default ``MlpPolicy`` at the same number of steps (``DIR/scratch``) -> the
comparison on the same seeded test episodes (and ``--layouts``) -> ``DIR/metrics.json``, the
table and ``DIR/curves.png``. ``DIR/policy.pt`` is what ``agents.evaluate`` and
``agents.render`` load.

**The Q head is frozen during PPO** (``q_head: frozen``). Its BC target, "this segment's action
is the expert's", has no counterpart in RL (there is no label to be right about), and PPO's
loss reaches the model only through the halting segment's action logits and value, never
through the Q logits, so there is nothing for it to learn from PPO's own signal. Freezing it
keeps the halting rule BC learned, and ``requires_grad=False`` makes that explicit and
guaranteed (Adam without a gradient leaves the weights exactly as loaded; the tests check it).
An auxiliary ACT loss would need a target: "the action no longer changes with more segments"
is one, at the price of running every decision to ``halt_max_steps`` in each update, which
this CPU budget cannot pay. The trunk does move under PPO, so the Q head's inputs drift:
``mean_reasoning_steps`` of every evaluation shows by how much.

**Depth replay.** Each decision's reasoning depth (segments until the Q head halted) is stored
in the rollout buffer (:class:`SegmentRolloutBuffer`) and replayed when the update re-scores the
action: the trunk moves during an update, and re-running adaptive halting there could score an
action at another depth than the one it was sampled with.

**Auxiliary danger loss** (``danger_weight``; 0 = off). The BC policy learnt on enemy-free
Foraging: the enemy's token embedding never received a gradient (no Foraging observation holds
an enemy; in ``runs/bc-vote`` its norm is that of the unused pad token), so nothing in the trunk
says where the enemy is, and PPO's policy
gradient, from a few decisive steps per caught episode, must build that representation too.
With ``danger_weight > 0`` the policy gets a linear ``danger_head`` on its reasoning features,
and after PPO's epochs of every rollout ``danger_epochs`` more passes over the rollout fit it, through the
trunk, to the enemy's distance to the cell each move lands on
(:func:`hrm_gym.foraging.chase.move_enemy_distances`, read off the observation; clipped at
``danger_horizon`` and scaled to [0, 1]; MSE, weight ``danger_weight``). Self-supervised: no
expert, no planner, only what the agent sees. The action head never reads the danger head.

**Separate critic** (``critic: separate``). The value is a small MLP on the *detached*
reasoning state, so PPO's value loss (returns of +-10) never moves the BC trunk; only the policy
loss does. ``critic: shared`` uses the HRM's own value head through the trunk instead.

**Value warm-up.** The BC policy's value head was never trained. The first
``value_warmup_rollouts`` rollouts train the value head alone (every other weight frozen), so
that the first policy updates use sensible advantages instead of noise that would drag the
BC policy away from what it knows.

**Foraging rehearsal.** ``foraging_envs`` of the ``n_envs`` training envs (default 1 of 8) are
plain ``HRMForaging-v0`` (its own rewards, no enemy), so that the policy keeps meeting the
enemy-free grids it must still solve (target: >= 97% there) while it learns to dodge. The
scratch baseline trains on the same mix.

**Rehearsal loss** (``rehearsal_weight``; 0 = off). Meeting Foraging grids is not enough to
keep solving them: PPO's gradient on those states is only the advantage of what was sampled,
and single-view Foraging success fell 0.96 -> 0.90 over session 9's run. With
``rehearsal_weight > 0``, after PPO's epochs of every rollout, ``rehearsal_epochs`` passes over
the rollout's Foraging-env states fit the policy (cross-entropy, through the trunk, at each
decision's replayed depth) to the A* expert's action there: the expert BC imitated, labelling
the states the current policy visits (DAgger's labels, on-policy). Chase states get no expert
label: dodging stays PPO's to learn. Measured (session 10, one seed each from the same BC run):
with it and ``val_loop_escape`` PPO reached 0.903 greedy / 0.953 with the loop escape on Chase
and 0.985 on Foraging; without either, 0.930 / 0.973 and 0.980. So it stays opt-in.

**Validation and the kept checkpoint.** Every ``eval_every`` steps: ``eval_episodes`` Chase and
``val_foraging_episodes`` Foraging episodes, greedy on ``val_views`` views (default 1: the
8-view vote made validation cost more than half of PPO's own time); the checkpoint kept is the
one with the best mean success over both envs (as BC's mix selection), so that a policy that
dodges by forgetting Foraging is not the one kept. With ``val_loop_escape`` the validation decisions go
through :class:`agents.evaluate.LoopEscape`, so the kept checkpoint is the best at what the
``+ loop escape`` rows report. The test votes with the policy's own views.

**Loop escape rows** (``loop_escape``). A greedy policy of the grid alone is deterministic and so
are the envs: an episode that comes back to a state cycles to the step limit. The comparison
also scores BC and PPO through :class:`agents.evaluate.LoopEscape` (a revisited observation gets
the best move not yet taken from it), as separate rows beside the plain greedy ones.

Vectorised envs: ``DummyVecEnv`` by default. Measured on these 2 cores: one Chase step costs
~50 us (19k steps/s in one process), one HRM decision (``cpu_grid16``, batches of 8, 4
segments) ~7 ms, so worker processes (``vec_env: subproc``) cannot pay off: the policy,
not the env, is the bottleneck, and the workers would take CPU from it.

Threads: rollouts and evaluations run on ``rollout_threads`` (default 1) torch threads, the
updates on ``num_threads``. On the shared machine, 2 threads made collecting 4,096 steps take
210 s instead of 30 s (spin-waiting on batches of 8 observations); the updates' batches of 512
are where a second thread can help, and so are the final comparison's (``test_threads``: up to
300 episodes x 8 voted views per call; 1.5x faster with 2 threads, measured on an idle machine).

Measured (busy 2-core machine, 1 thread, from a BC policy that halts after 1 segment): ~140 PPO
steps/s with the default 2 epochs (rollout + update); an untrained HRM (4 segments per decision,
3 epochs) ran ~47 steps/s. SB3's MlpPolicy from scratch: ~1,300 steps/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import hrm_gym  # noqa: F401  (registers the envs)
from agents.checkpoint import load_policy, policy_kwargs_of, save_policy
from agents.config import ConfigError, from_dict, load_config, to_dict
from agents.evaluate import (
    GreedyDecisions,
    LoopEscape,
    format_table,
    load_layouts,
    policy_actor,
    run_episodes,
    test_seeds,
)
from agents.policy import HRMActorCriticPolicy
from expert.generate import episode_seed
from hrm_gym.core.grid import AGENT, NEST, WALL
from hrm_gym.foraging.chase import move_enemy_distances
from hrm_gym.wrappers import EnemyDistanceShaping

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "foraging_chase_ppo.yaml"
#: Split index of validation episodes in :func:`expert.generate.episode_seed` (test is 2).
VAL_SPLIT = 1
LAST_MODEL = "last.zip"
STATE_FILE = "state.json"
FORAGING_ID = "HRMForaging-v0"
#: Chase kwargs a plain Foraging env does not take (dropped for the rehearsal envs).
CHASE_ONLY_KWARGS = ("enemy_pace", "caught_penalty", "min_enemy_distance")
SCRATCH_DIR = "scratch"
#: The comparison's rows, in table order.
COMPARISON_ROWS = ("blind expert", "planner (ceiling)", "bc", "bc + loop escape", "ppo", "ppo + loop escape",
                   "ppo scratch (mlp)")  # fmt: skip
#: The learned rows that are also scored with :class:`agents.evaluate.LoopEscape` (``loop_escape``).
LOOP_ESCAPE_ROWS = ("bc", "ppo")
#: The keys of every comparison row in metrics.json.
COMPARISON_KEYS = (
    "success_rate",
    "caught_rate",
    "timeout_rate",
    "mean_path_ratio",
    "mean_episode_length",
    "mean_return",
    "mean_reasoning_steps",
    "episodes",
)


@dataclass
class PPOConfig:
    """Every setting of a PPO run (YAML keys; ``--set`` overrides)."""

    env_id: str = "HRMForagingChase-v0"
    env_kwargs: dict = field(default_factory=dict)
    #: "auto": newest runs/bc-* with a policy.pt (a default BC run is trained if none);
    #: "none": a fresh policy; else a BC run directory or its policy.pt.
    init: str = "auto"
    policy: Literal["hrm", "mlp"] = "hrm"
    preset: str = "cpu_grid16"  # only with init=none (else the BC checkpoint's architecture)
    model: dict = field(default_factory=dict)  # only with init=none
    mlp_net_arch: list | None = None  # None: SB3's default MlpPolicy (64, 64 for pi and vf)
    max_segments: int | None = None  # cap on HRM segments per decision (None: the model's)
    q_head: Literal["frozen"] = "frozen"  # the one treatment (module docstring says why)
    #: "separate": a value MLP on the detached reasoning state (PPO's value loss cannot move the
    #: BC trunk); "shared": the HRM's own value head, trained through the trunk.
    critic: Literal["shared", "separate"] = "separate"
    # PPO
    n_envs: int = 8
    #: How many of the n_envs run plain HRMForaging-v0 (no enemy): rehearsal, so that PPO on
    #: Chase does not unlearn Foraging (target: >= 97% success there).
    foraging_envs: int = 1
    vec_env: Literal["dummy", "subproc"] = "dummy"
    #: Potential-based shaping on the Chase envs (hrm_gym.wrappers.EnemyDistanceShaping; 0 = off):
    #: the step that lets the enemy within ``shaping_radius`` pays for it at once.
    shaping_weight: float = 0.0
    shaping_radius: int = 5
    #: Auxiliary danger loss (module docstring): its weight (0 = off) and the distance clip.
    danger_weight: float = 0.0
    danger_horizon: int = 6
    danger_epochs: int = 1  # passes of the danger loss over each rollout
    #: Foraging rehearsal loss (module docstring): its weight (0 = off). Cross-entropy of the
    #: policy to the A* expert's action on the rollout's own Foraging-env states.
    rehearsal_weight: float = 0.0
    rehearsal_epochs: int = 1  # passes of the rehearsal loss over each rollout's Foraging states
    #: Greedy decisions' vote of symmetric views (None: the BC checkpoint's; 1: no vote).
    decision_views: int | None = None
    total_timesteps: int = 200_000
    time_budget_s: float = 600.0  # PPO training stops after this (evaluations not counted)
    n_steps: int = 256
    batch_size: int = 512
    n_epochs: int = 2
    lr: float = 1e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.1
    ent_coef: float = 0.005
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = 0.03
    value_warmup_rollouts: int = 2
    # evaluation, checkpoints
    eval_every: int = 10240  # timesteps
    eval_episodes: int = 50
    #: Views voted on in validation decisions (1: the observation alone, 8x cheaper than the
    #: 8-view vote; None: the policy's decision_views). The test always uses the policy's vote.
    val_views: int | None = 1
    #: Validation episodes on plain HRMForaging-v0 beside the Chase ones (0 = none): the best
    #: checkpoint is then the one with the highest mean success over both envs (as agents.bc).
    val_foraging_episodes: int = 50
    #: Validation decisions through agents.evaluate.LoopEscape (as the "+ loop escape" rows): the
    #: checkpoint kept is then the best at what those rows report.
    val_loop_escape: bool = False
    checkpoint_every: int = 4096  # timesteps
    test_episodes: int = 300
    test_seed: int = 12345
    foraging_episodes: int = 200  # the PPO policy on HRMForaging-v0 (forgetting check)
    dodge_search_episodes: int = 100  # test episodes searched for blind-caught / PPO-success layouts
    # the baseline: PPO from scratch with SB3's default policy at the same number of steps
    scratch_baseline: bool = True
    #: Also score BC and PPO with agents.evaluate.LoopEscape (rows "bc + loop escape", ...): a
    #: greedy policy of the grid alone cycles forever once a state repeats.
    loop_escape: bool = True
    scratch: dict = field(
        default_factory=lambda: {
            "lr": 3e-4,
            "n_epochs": 10,
            "batch_size": 64,
            "clip_range": 0.2,
            "ent_coef": 0.0,
            "target_kl": None,
            "value_warmup_rollouts": 0,
        }
    )
    seed: int = 0
    device: str = "cpu"
    num_threads: int = 2  # torch threads for the PPO updates (batches of batch_size)
    rollout_threads: int = 1  # torch threads while collecting rollouts (batches of n_envs observations)
    #: torch threads for the final comparison (lockstep batches of up to test_episodes x 8 views:
    #: measured 27.5 s with 2 threads vs 39-44 s with 1 for 150 voted Chase episodes, idle machine)
    test_threads: int = 2
    #: "baseline" marks the scratch sub-run: it trains and evaluates, the main run compares.
    role: Literal["main", "baseline"] = "main"


def check_config(config: PPOConfig) -> None:
    """Reject values SB3 would accept silently or fail on deep inside."""
    positive = ("n_envs", "total_timesteps", "n_steps", "batch_size", "n_epochs", "eval_every", "eval_episodes",
                "checkpoint_every", "test_episodes", "num_threads", "rollout_threads", "test_threads", "danger_epochs",
                "rehearsal_epochs")  # fmt: skip
    for name in positive:
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(config, name)}")
    if not 0 <= config.foraging_envs < config.n_envs:
        raise ConfigError(f"foraging_envs must be in [0, n_envs={config.n_envs}), got {config.foraging_envs}")
    if config.foraging_envs and config.env_id == FORAGING_ID:
        raise ConfigError(f"foraging_envs rehearses {FORAGING_ID} beside another env; set it to 0 for {FORAGING_ID}")
    if config.foraging_episodes < 0 or config.value_warmup_rollouts < 0 or config.val_foraging_episodes < 0:
        raise ConfigError(
            f"foraging_episodes, val_foraging_episodes and value_warmup_rollouts must be >= 0, got "
            f"{config.foraging_episodes}, {config.val_foraging_episodes} and {config.value_warmup_rollouts}"
        )
    if config.val_foraging_episodes and config.env_id == FORAGING_ID:
        raise ConfigError(f"val_foraging_episodes validates on {FORAGING_ID} beside another env; set it to 0")
    if config.batch_size > config.n_steps * config.n_envs:
        raise ConfigError(
            f"batch_size={config.batch_size} exceeds the rollout size n_steps*n_envs="
            f"{config.n_steps * config.n_envs}"
        )
    if not (config.lr > 0 and config.clip_range > 0):
        raise ConfigError(f"lr and clip_range must be > 0, got {config.lr} and {config.clip_range}")
    if config.shaping_weight < 0 or config.shaping_radius < 1:
        raise ConfigError(f"shaping_weight must be >= 0 (0 = off) and shaping_radius >= 1, got "
                          f"{config.shaping_weight} and {config.shaping_radius}")  # fmt: skip
    if config.danger_weight < 0 or config.danger_horizon < 1:
        raise ConfigError(f"danger_weight must be >= 0 (0 = off) and danger_horizon >= 1, got "
                          f"{config.danger_weight} and {config.danger_horizon}")  # fmt: skip
    if config.danger_weight > 0 and config.policy != "hrm":
        raise ConfigError(f"danger_weight={config.danger_weight} needs policy=hrm (the loss trains the HRM trunk)")
    if config.decision_views is not None and not 1 <= config.decision_views <= 8:
        raise ConfigError(f"decision_views must be 1..8 or null (the BC checkpoint's), got {config.decision_views}")
    if config.val_views is not None and not 1 <= config.val_views <= 8:
        raise ConfigError(f"val_views must be 1..8 or null (the policy's decision_views), got {config.val_views}")
    if config.max_segments is not None and config.max_segments < 1:
        raise ConfigError(f"max_segments must be >= 1 or null, got {config.max_segments}")
    if config.policy == "mlp" and config.init != "none":
        raise ConfigError("policy=mlp trains from scratch: set init=none (BC checkpoints are HRM policies)")
    unknown = sorted(set(config.scratch) - {f.name for f in PPOConfig.__dataclass_fields__.values()})
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in scratch; allowed: the PPO config keys")
    if config.rehearsal_weight < 0:
        raise ConfigError(f"rehearsal_weight must be >= 0 (0 = off), got {config.rehearsal_weight}")
    if config.rehearsal_weight > 0 and (config.foraging_envs < 1 or config.policy != "hrm"):
        raise ConfigError(f"rehearsal_weight={config.rehearsal_weight} needs policy=hrm and foraging_envs >= 1 "
                          f"(it trains on the Foraging envs' states), got policy={config.policy!r}, "
                          f"foraging_envs={config.foraging_envs}; set rehearsal_weight=0 to turn it off")  # fmt: skip


# ---------------------------------------------------------------------------------------
# The PPO subclass: value warm-up and the Q-head treatment
class HRMPPO(PPO):
    """SB3 PPO plus a value warm-up phase (only the value head trains for the first rollouts).

    The warm-up and the frozen Q head are applied through ``requires_grad``: SB3's Adam skips
    parameters without a gradient, so frozen weights stay exactly as loaded.
    """

    value_warmup_rollouts: int = 0
    frozen_prefixes: tuple[str, ...] = ()
    rollout_threads: int = 1
    danger_weight: float = 0.0
    danger_horizon: int = 6
    danger_epochs: int = 1
    rehearsal_weight: float = 0.0
    rehearsal_epochs: int = 1
    rehearsal_envs: int = 0  # the last rehearsal_envs columns of the vec env are plain Foraging

    def _setup_model(self) -> None:
        super()._setup_model()
        if isinstance(self.rollout_buffer, SegmentRolloutBuffer):
            self.rollout_buffer.policy = self.policy

    def collect_rollouts(self, *args, **kwargs) -> bool:
        with torch_threads(self.rollout_threads):
            return super().collect_rollouts(*args, **kwargs)

    def apply_freezing(self, warmup: bool = False) -> None:
        for name, param in self.policy.named_parameters():
            frozen = any(name.startswith(p) for p in self.frozen_prefixes)
            if warmup:
                frozen = frozen or not is_value_parameter(name)
            param.requires_grad_(not frozen)

    def train(self) -> None:
        rollout = self.num_timesteps // (self.n_steps * self.n_envs)  # 1 after the first rollout
        warmup = rollout <= self.value_warmup_rollouts
        self.apply_freezing(warmup)
        try:
            super().train()
            if self.danger_weight > 0 and not warmup:
                self.train_danger()
            if self.rehearsal_weight > 0 and self.rehearsal_envs > 0 and not warmup:
                self.train_rehearsal()
        finally:
            self.apply_freezing(False)
        self.logger.record("train/value_warmup", float(warmup))

    def train_danger(self) -> None:
        """``danger_epochs`` passes of the auxiliary danger loss over the rollout (module docstring).

        The targets are read off the rollout's observations once.
        """
        buffer = self._flattened_rollout()
        targets = torch.as_tensor(danger_targets(buffer.observations, self.danger_horizon)).to(self.device)

        def loss_of(observations, segments, rows):
            target = targets[rows]
            loss = torch.nn.functional.mse_loss(self.policy.predict_danger(observations, segments), target)
            return loss, ((target - target.mean(0)) ** 2).mean().item()  # predicting each move's mean

        losses, baselines = self._auxiliary_passes(np.arange(len(targets)), self.danger_epochs, self.danger_weight,
                                                   loss_of)  # fmt: skip
        self.logger.record("train/danger_loss", float(np.mean(losses)))
        self.logger.record("train/danger_baseline", float(np.mean(baselines)))  # the loss to beat

    def train_rehearsal(self) -> None:
        """``rehearsal_epochs`` passes of the Foraging rehearsal loss (module docstring).

        The rollout buffer is flattened env-major (``swap_and_flatten``), so the last
        ``rehearsal_envs`` envs' states are its last ``rehearsal_envs * n_steps`` rows; their
        labels are the A* expert's actions, computed once per rollout.
        """
        buffer = self._flattened_rollout()
        indices = np.arange((self.n_envs - self.rehearsal_envs) * buffer.buffer_size, buffer.buffer_size * self.n_envs)
        labels = torch.as_tensor(expert_labels(buffer.observations[indices]), device=self.device)

        def loss_of(observations, segments, rows):
            logits = self.policy.action_logits(observations, segments)
            loss = torch.nn.functional.cross_entropy(logits, labels[rows])
            return loss, (logits.argmax(1) == labels[rows]).float().mean().item()

        losses, agreement = self._auxiliary_passes(indices, self.rehearsal_epochs, self.rehearsal_weight, loss_of)
        self.logger.record("train/rehearsal_loss", float(np.mean(losses)))
        self.logger.record("train/rehearsal_agreement", float(np.mean(agreement)))  # greedy == A* expert

    def _flattened_rollout(self) -> SegmentRolloutBuffer:
        """The rollout buffer, flattened (PPO's epochs have done it already; this is a guard)."""
        self.policy.set_training_mode(True)
        if not self.rollout_buffer.generator_ready:
            next(self.rollout_buffer.get(self.batch_size))
        return self.rollout_buffer

    def _auxiliary_passes(self, indices: np.ndarray, epochs: int, weight: float, loss_of) -> tuple[list, list]:
        """``epochs`` shuffled passes of an auxiliary loss over the buffer rows ``indices``.

        Minibatches come through the buffer's ``_get_samples``, which also hands the policy each
        decision's reasoning depth; ``loss_of(observations, segments, rows)`` returns the loss
        and one logged figure (``rows`` index ``indices``). Returns both, per minibatch.
        """
        policy, losses, figures = self.policy, [], []
        for _ in range(epochs):
            order = np.random.permutation(len(indices))
            for first in range(0, len(order), self.batch_size):
                rows = order[first : first + self.batch_size]
                batch = self.rollout_buffer._get_samples(indices[rows])
                segments, policy.replay_segments = policy.replay_segments, None
                loss, figure = loss_of(batch.observations, segments, torch.as_tensor(rows, device=self.device))
                policy.optimizer.zero_grad()
                (weight * loss).backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), self.max_grad_norm)
                policy.optimizer.step()
                losses.append(loss.item())
                figures.append(figure)
        return losses, figures


def expert_labels(observations: np.ndarray) -> np.ndarray:
    """``(B,)`` int64: the A* expert's action (its tie-break, BC's label) on Foraging states."""
    from expert.grid import ForagingExpert

    expert = ForagingExpert()
    return np.array([expert.act(obs) for obs in observations.astype(np.uint8)], dtype=np.int64)


def danger_targets(observations: np.ndarray, horizon: int) -> np.ndarray:
    """``(B, 4)`` float32: each move's enemy distance (``move_enemy_distances``), clipped at
    ``horizon`` and divided by it (1 = out of reach or safe)."""
    distances = np.stack([move_enemy_distances(obs) for obs in observations.astype(np.int64)])
    return (np.minimum(distances, horizon) / horizon).astype(np.float32)


def is_value_parameter(name: str) -> bool:
    """The value head's own weights (HRM ``hrm.value_head`` or the separate ``critic``; SB3 MLP
    ``value_net``/``mlp_extractor.value_net``)."""
    return name.startswith(("hrm.value_head", "critic.", "value_net", "mlp_extractor.value_net"))


class SegmentRolloutBuffer(RolloutBuffer):
    """SB3's rollout buffer plus the reasoning depth of every decision.

    The Q head picks each decision's depth from the trunk's state; the trunk moves during an
    update, so re-running adaptive halting there could score an action at another depth than
    the one it was sampled with, and PPO's probability ratio would compare two different
    policies. The buffer records ``policy.last_decision_steps`` at each ``add`` and hands each
    minibatch's depths to the policy (``replay_segments``) just before SB3 evaluates it.
    """

    policy: HRMActorCriticPolicy | None = None

    def reset(self) -> None:
        super().reset()
        self.segments = np.ones((self.buffer_size, self.n_envs), dtype=np.int64)
        self.flat_segments: np.ndarray | None = None

    def add(self, *args, **kwargs) -> None:
        steps = None if self.policy is None else self.policy.last_decision_steps
        if steps is not None:
            self.segments[self.pos] = steps.numpy().reshape(self.n_envs)
        super().add(*args, **kwargs)

    def _get_samples(self, batch_inds: np.ndarray, env=None):
        if self.flat_segments is None:  # the same (env, step) order as swap_and_flatten
            self.flat_segments = self.segments.swapaxes(0, 1).reshape(-1)
        if self.policy is not None:
            self.policy.replay_segments = torch.as_tensor(self.flat_segments[batch_inds])
        return super()._get_samples(batch_inds, env)


# ---------------------------------------------------------------------------------------
# Actors for the comparison: experts as batched obs (+ infos) -> actions functions
class ExpertActor:
    """Score an expert with ``run_episodes``: a batched actor that also reads the infos.

    The enemy-aware planner solves each layout once and caches a few solutions; lockstep
    evaluation interleaves hundreds of layouts, so one planner per layout is kept (LRU).
    """

    takes_info = True

    def __init__(self, kind: Literal["blind", "planner"], env_kwargs: dict[str, Any], keep: int = 300):
        from expert.chase import BlindChaseExpert, ChasePlannerExpert

        if kind not in ("blind", "planner"):
            raise ValueError(f"expert kind {kind!r}; allowed: 'blind', 'planner'")
        self.kind, self.keep = kind, keep
        self._make = (lambda: ChasePlannerExpert(**env_kwargs)) if kind == "planner" else None
        self._blind = BlindChaseExpert(**env_kwargs) if kind == "blind" else None
        self._planners: OrderedDict[tuple, Any] = OrderedDict()

    def _expert_for(self, obs: np.ndarray, info: dict[str, Any]):
        if self._blind is not None:
            return self._blind
        key = ((obs == WALL).tobytes(), tuple(info["nest_pos"]), tuple(info["food_pos"]))
        planner = self._planners.pop(key, None) or self._make()
        self._planners[key] = planner
        while len(self._planners) > self.keep:
            self._planners.popitem(last=False)
        return planner

    def __call__(self, obs: np.ndarray, infos: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        actions = np.array([self._expert_for(o, i).act(o, i) for o, i in zip(obs, infos)], dtype=np.int64)
        return actions, np.ones(len(obs))


@contextlib.contextmanager
def torch_threads(n: int):
    """Evaluate with ``n`` torch threads: lockstep evaluation ends on batches of one or two
    observations, where two spinning threads on a busy 2-core machine made each decision
    ~10x slower (a 10-episode evaluation took 50 s with 2 threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def score(report: dict[str, Any]) -> dict[str, Any]:
    """The comparison keys of an evaluation report (absent ones as None)."""
    return {key: report.get(key) for key in COMPARISON_KEYS}


def compare(
    policies: dict[str, Any],
    env_id: str,
    env_kwargs: dict[str, Any],
    *,
    seeds=None,
    layouts=None,
    loop_escape: bool = False,
    decisions: dict[str, GreedyDecisions] | None = None,
) -> dict[str, dict[str, Any]]:
    """Comparison rows on the same episodes: both experts, then each policy (None = skipped).

    With ``loop_escape``, the :data:`LOOP_ESCAPE_ROWS` policies get a second row, ``NAME + loop
    escape``: the same greedy decisions except on revisited observations (``LoopEscape``).
    A policy's rows share one :class:`GreedyDecisions` (from ``decisions``, which is filled in
    for reuse by later rows): the loop-escape episodes retrace the greedy ones up to their
    first revisit, so they cost few new decisions.
    """
    decisions = {} if decisions is None else decisions
    episodes = {"seeds": seeds} if layouts is None else {"layouts": layouts}
    rows: dict[str, dict[str, Any]] = {}

    def row(name: str, act) -> None:  # one row, with a progress line (the whole comparison takes minutes)
        started = time.time()
        rows[name] = run_episodes(act, env_id, env_kwargs, **episodes)
        print(f"  {name}: success {rows[name]['success_rate']:.3f} ({time.time() - started:.0f}s)", flush=True)

    row("blind expert", ExpertActor("blind", env_kwargs))
    row("planner (ceiling)", ExpertActor("planner", env_kwargs))
    for name, policy in policies.items():
        if policy is not None:
            policy.set_training_mode(False)
            shared = decisions.setdefault(name, GreedyDecisions(policy))
            row(name, policy_actor(policy, decisions=shared))
            if loop_escape and name in LOOP_ESCAPE_ROWS:
                row(f"{name} + loop escape", LoopEscape(policy, decisions=shared))
    return {name: score(report) for name, report in rows.items()}


def episode_outcomes(act, env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int]) -> list[str]:
    """``success`` / ``caught`` / ``timeout`` of each seeded episode (lockstep, like ``run_episodes``)."""
    envs = [gym.make(env_id, **env_kwargs).unwrapped for _ in seeds]
    current = [env.reset(seed=int(seed)) for env, seed in zip(envs, seeds)]
    outcomes = [""] * len(seeds)
    running = list(range(len(seeds)))
    while running:
        obs = np.stack([current[i][0] for i in running])
        infos = [current[i][1] for i in running]
        actions = act(obs, infos)[0] if getattr(act, "takes_info", False) else act(obs)[0]
        still = []
        for j, i in enumerate(running):
            obs_i, _, terminated, truncated, info = envs[i].step(int(actions[j]))
            current[i] = (obs_i, info)
            if terminated or truncated:
                outcomes[i] = "caught" if info.get("caught") else ("timeout" if truncated else "success")
            else:
                still.append(i)
        running = still
    return outcomes


def dodge_layouts(
    policy, env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int], decisions: GreedyDecisions | None = None
) -> np.ndarray:
    """Start layouts of the episodes where the blind expert is caught and ``policy`` succeeds.

    For the README's side-by-side GIF (``agents.render --layouts``): the agent starts on the
    nest, so the layout is the first observation with the agent cell drawn as the nest.
    """
    policy.set_training_mode(False)
    ours = episode_outcomes(policy_actor(policy, decisions=decisions), env_id, env_kwargs, seeds)
    blind = episode_outcomes(ExpertActor("blind", env_kwargs), env_id, env_kwargs, seeds)
    env = gym.make(env_id, **env_kwargs)
    layouts = []
    for seed, mine, theirs in zip(seeds, ours, blind):
        if mine == "success" and theirs == "caught":
            obs, _ = env.reset(seed=int(seed))
            layouts.append(np.where(obs == AGENT, NEST, obs).astype(np.uint8))
    env.close()
    return np.stack(layouts) if layouts else np.zeros((0, *env.observation_space.shape), dtype=np.uint8)


def comparison_table(rows: dict[str, dict[str, Any]]) -> str:
    columns = ("success_rate", "caught_rate", "timeout_rate", "mean_path_ratio", "mean_episode_length",
               "mean_reasoning_steps")  # fmt: skip
    width = max(len(n) for n in rows)
    lines = [f"{'':{width}s} " + " ".join(f"{c.replace('mean_', '')[:13]:>13s}" for c in columns)]
    for name, row in rows.items():
        cells = [f"{'-':>13s}" if row.get(c) is None else f"{row[c]:13.3f}" for c in columns]
        lines.append(f"{name:{width}s} " + " ".join(cells))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# The BC run to start from
#: The BC run trained for init=auto when runs/ holds none: Foraging plus planner-labelled Chase
#: states (measured: PPO from it 0.840 on Chase vs 0.557 from the Foraging-only BC; README).
BC_CONFIG_FOR_PPO = Path(__file__).resolve().parents[1] / "configs" / "foraging_chase_bc.yaml"


def newest_bc_run(root: str | Path = "runs") -> Path | None:
    """The most recently written ``runs/bc-*`` directory holding a ``policy.pt``."""
    found = [p.parent for p in Path(root).glob("bc-*/policy.pt")]
    return max(found, key=lambda d: (d / "policy.pt").stat().st_mtime) if found else None


def resolve_init(init: str, progress: bool) -> Path | None:
    """The BC checkpoint directory (or file) PPO starts from; None for init=none."""
    if init == "none":
        return None
    if init != "auto":
        path = Path(init)
        if not (path.is_file() or (path / "policy.pt").is_file()):
            raise ConfigError(f"init={init!r}: no policy.pt there (give a BC run directory, 'auto' or 'none')")
        return path
    found = newest_bc_run()
    if found is not None:
        print(f"starting from the newest BC run: {found}")
        return found
    from agents import bc

    out = Path(f"runs/bc-chase-mix-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    command = ["--config", str(BC_CONFIG_FOR_PPO), "--out", str(out)]
    print(f"no BC run with a policy.pt under runs/: training one first (python -m agents.bc {' '.join(command)})")
    code = bc.main(command + ([] if progress else ["--no-progress"]))
    if code != 0:
        raise ConfigError(f"the BC run for init failed (exit status {code})")
    return out


def build_model(config: PPOConfig, env, init: Path | None, tb: str | None) -> tuple[HRMPPO, dict[str, Any]]:
    """PPO with the policy class + kwargs of the BC checkpoint, loaded with its weights."""
    facts: dict[str, Any] = {"init": None if init is None else str(init)}
    if config.policy == "mlp":
        policy_class: Any = "MlpPolicy"
        policy_kwargs: dict[str, Any] = {} if config.mlp_net_arch is None else {"net_arch": config.mlp_net_arch}
        bc_policy = None
    elif init is None:
        policy_class = HRMActorCriticPolicy
        policy_kwargs = {
            "hrm_config": config.model, "preset": config.preset, "max_segments": config.max_segments,
            "critic": config.critic, "danger_head": config.danger_weight > 0,
        }
        bc_policy = None
    else:
        if config.model:
            raise ConfigError("model=... applies to init=none only: a BC checkpoint fixes the architecture")
        bc_policy, record = load_policy(init, config.env_id)
        if not isinstance(bc_policy, HRMActorCriticPolicy):
            raise ConfigError(f"init {init}: a {record['policy_type']} policy; PPO fine-tunes HRM policies")
        policy_class = HRMActorCriticPolicy
        policy_kwargs = dict(policy_kwargs_of(bc_policy))
        policy_kwargs["critic"] = config.critic
        policy_kwargs["danger_head"] = config.danger_weight > 0
        if config.max_segments is not None:
            policy_kwargs["max_segments"] = config.max_segments
        if config.decision_views is not None:
            policy_kwargs["decision_views"] = config.decision_views
        facts["init_env_id"] = record["env_id"]
        facts["init_extra"] = record["extra"].get("test")
    model = HRMPPO(
        policy_class,
        env,
        learning_rate=config.lr,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_range=config.clip_range,
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm,
        target_kl=config.target_kl,
        policy_kwargs=policy_kwargs,
        rollout_buffer_class=SegmentRolloutBuffer if policy_class is HRMActorCriticPolicy else None,
        tensorboard_log=tb,
        seed=config.seed,
        device=config.device,
        verbose=0,
    )
    if bc_policy is not None:
        # Every BC tensor must fit; only a new separate critic or danger head may be missing.
        missing, unexpected = model.policy.load_state_dict(bc_policy.state_dict(), strict=False)
        new_critic = [k for k in missing if not k.startswith(("critic.", "danger_head."))]
        if unexpected or new_critic:
            raise ConfigError(f"init {init}: weights do not fit the PPO policy (missing {new_critic}, "
                              f"unexpected {unexpected})")  # fmt: skip
        facts["init_max_prob_diff"] = init_prob_difference(bc_policy, model.policy, config)
        if facts["init_max_prob_diff"] != 0.0:
            raise ConfigError(f"PPO's policy does not reproduce the BC policy {init} (max prob diff "
                              f"{facts['init_max_prob_diff']})")  # fmt: skip
    configure_model(model, config)
    return model, facts


def configure_model(model: HRMPPO, config: PPOConfig) -> None:
    """The settings not saved in SB3's zip (re-applied after a resume)."""
    model.value_warmup_rollouts = config.value_warmup_rollouts
    model.rollout_threads = config.rollout_threads
    model.danger_weight, model.danger_horizon = config.danger_weight, config.danger_horizon
    model.danger_epochs = config.danger_epochs
    model.rehearsal_weight, model.rehearsal_epochs = config.rehearsal_weight, config.rehearsal_epochs
    model.rehearsal_envs = config.foraging_envs
    hrm = config.policy == "hrm"
    model.frozen_prefixes = ("hrm.q_head",) if hrm and config.q_head == "frozen" else ()
    model.apply_freezing(False)


def init_prob_difference(reference, policy, config: PPOConfig, n: int = 8) -> float:
    """Largest action-probability difference of two policies on ``n`` seeded observations."""
    env = gym.make(config.env_id, **config.env_kwargs)
    obs = torch.as_tensor(np.stack([env.reset(seed=episode_seed(config.seed, VAL_SPLIT, i))[0] for i in range(n)]))
    env.close()
    reference.set_training_mode(False)
    policy.set_training_mode(False)
    with torch.no_grad():
        a = reference.get_distribution(obs.to(reference.device)).distribution.probs.cpu()
        b = policy.get_distribution(obs.to(policy.device)).distribution.probs.cpu()
    return float((a - b).abs().max())


# ---------------------------------------------------------------------------------------
# Training
class RunCallback(BaseCallback):
    """Time budget, periodic evaluation keeping the best policy, resume checkpoints, curves.

    Evaluations and checkpoints happen at rollout starts (right after a PPO update), so a
    resumed run continues from a whole update.
    """

    def __init__(self, config: PPOConfig, out: Path, state: dict[str, Any], save_last, env_id: str):
        super().__init__()
        self.config, self.out, self.state, self.save_last, self.env_id = config, out, state, save_last, env_id
        self.val_seeds = [episode_seed(config.seed, VAL_SPLIT, i) for i in range(config.eval_episodes)]
        self.val_foraging_seeds = [
            episode_seed(config.seed, VAL_SPLIT, config.eval_episodes + i) for i in range(config.val_foraging_episodes)
        ]
        self.clock = time.time()
        self.episodes = {"done": 0, "caught": 0, "success": 0}

    def _tick(self) -> None:
        now = time.time()
        self.state["train_seconds"] += now - self.clock
        self.clock = now

    def _on_training_start(self) -> None:
        self.clock = time.time()
        if not self.state["history"]:
            self.evaluate()  # the starting point (the BC policy) is the first row of the curves

    def _on_rollout_start(self) -> None:
        self._tick()
        steps = self.model.num_timesteps
        if steps - self.state["last_eval"] >= self.config.eval_every:
            self.evaluate()
        if steps - self.state["last_checkpoint"] >= self.config.checkpoint_every:
            self.state["last_checkpoint"] = steps
            self.save_last()
        self.clock = time.time()

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"]):
            if done:
                self.episodes["done"] += 1
                self.episodes["caught"] += int(bool(info.get("caught", False)))
                self.episodes["success"] += int(self._succeeded(info))
        if self.episodes["done"] >= 50:
            for key in ("caught", "success"):
                self.logger.record(f"rollout/{key}_rate", self.episodes[key] / self.episodes["done"])
            self.episodes = {"done": 0, "caught": 0, "success": 0}
        self._tick()
        return self.state["train_seconds"] < self.config.time_budget_s

    @staticmethod
    def _succeeded(info: dict[str, Any]) -> bool:
        """An episode end that is neither a capture nor a timeout (Chase ends no other way)."""
        return not info.get("caught", False) and not info.get("TimeLimit.truncated", False)

    def evaluate(self) -> dict[str, Any]:
        started = time.time()
        policy = self.model.policy
        was_training = policy.training
        policy.set_training_mode(False)
        views = self.config.val_views

        def actor():  # a fresh LoopEscape per episode set: its memory is per episode id
            return LoopEscape(policy, views) if self.config.val_loop_escape else policy_actor(policy, views=views)

        foraging = None
        with torch_threads(1):
            report = run_episodes(actor(), self.env_id, self.config.env_kwargs, seeds=self.val_seeds)
            if self.val_foraging_seeds:
                foraging = run_episodes(actor(), FORAGING_ID, {}, seeds=self.val_foraging_seeds)["success_rate"]
        policy.set_training_mode(was_training)
        row = {
            "timesteps": int(self.model.num_timesteps),
            "train_seconds": round(self.state["train_seconds"], 1),
            **{k: report.get(k) for k in ("success_rate", "caught_rate", "timeout_rate", "mean_path_ratio",
                                          "mean_episode_length", "mean_return", "mean_reasoning_steps")},
            "foraging_success_rate": foraging,
        }  # fmt: skip
        self.state["history"].append(row)
        self.state["last_eval"] = row["timesteps"]
        for key, value in row.items():
            if value is not None and key not in ("timesteps",):
                self.logger.record(f"eval/{key}", value)
        selected = row["success_rate"] if foraging is None else (row["success_rate"] + foraging) / 2
        rank = [selected, -(row["caught_rate"] or 0.0), -row["mean_episode_length"]]
        if self.state["best"] is None or rank > self.state["best"]["rank"]:
            self.state["best"] = {"rank": rank, "row": row}
            save_policy(self.out, policy, self.env_id, self.config.env_kwargs,
                        extra={"source": "ppo", "validation": row}, sb3_zip=False)  # fmt: skip
        print(
            f"[{row['timesteps']:>7d} steps, {row['train_seconds']:6.0f}s] val success {row['success_rate']:.3f} "
            f"caught {row['caught_rate'] or 0.0:.3f} timeout {row['timeout_rate']:.3f} "
            + ("" if foraging is None else f"foraging {foraging:.3f} ")
            + f"segments {row['mean_reasoning_steps']:.2f} ({time.time() - started:.0f}s eval, "
            f"{row['timesteps'] / max(row['train_seconds'], 1e-9):.0f} steps/s)",
            flush=True,
        )
        self.clock = time.time()
        return row


def _monitored(env_id: str, env_kwargs: dict[str, Any], shaping: dict[str, Any] | None = None):
    """An env factory: ``Monitor`` (the env's own returns) inside the optional shaping."""

    def make() -> gym.Env:
        env = Monitor(gym.make(env_id, **env_kwargs))
        return EnemyDistanceShaping(env, **shaping) if shaping else env

    return make


def make_env(config: PPOConfig, seed: int):
    """The training envs: ``n_envs - foraging_envs`` of ``env_id``, then plain Foraging ones.

    Env ``i`` is seeded with ``seed + i`` (as SB3's ``make_vec_env`` does).
    """
    foraging_kwargs = {k: v for k, v in config.env_kwargs.items() if k not in CHASE_ONLY_KWARGS}
    shaping = None
    if config.shaping_weight > 0:
        shaping = {"weight": config.shaping_weight, "radius": config.shaping_radius, "gamma": config.gamma}
    makers = [_monitored(config.env_id, config.env_kwargs, shaping)] * (config.n_envs - config.foraging_envs)
    makers += [_monitored(FORAGING_ID, foraging_kwargs)] * config.foraging_envs
    vec = (SubprocVecEnv if config.vec_env == "subproc" else DummyVecEnv)(makers)
    vec.seed(seed)
    return vec


def train(config: PPOConfig, out: Path, resume: bool = False, progress: bool = True, layouts: str | None = None) -> int:
    """One PPO run into ``out`` (resuming it if asked); returns the exit status."""
    check_config(config)
    started = time.time()
    torch.set_num_threads(config.num_threads)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_FILE
    if resume and state_path.is_file():
        state = json.loads(state_path.read_text())
    else:
        state = {"timesteps": 0, "train_seconds": 0.0, "history": [], "best": None, "last_eval": 0,
                 "last_checkpoint": 0, "resumes": 0, "facts": {}, "finished": False}  # fmt: skip
        init = resolve_init(config.init, progress) if config.policy == "hrm" else None
        if init is not None:
            config = replace(config, init=str(init))
        (out / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))

    if not state["finished"]:
        code = _learn(config, out, state, resume and (out / LAST_MODEL).is_file(), progress)
        if code != 0:
            return code

    # PPO from scratch with SB3's default policy at the same number of steps.
    scratch_dir = out / SCRATCH_DIR
    if config.scratch_baseline and config.policy == "hrm":
        settings = {**to_dict(config), **config.scratch}
        settings["batch_size"] = min(settings["batch_size"], settings["n_steps"] * settings["n_envs"])
        scratch_config = from_dict(PPOConfig, {**settings, "policy": "mlp", "init": "none",
                                               "total_timesteps": state["timesteps"], "scratch_baseline": False,
                                               "role": "baseline", "time_budget_s": 10 * config.time_budget_s,
                                               "danger_weight": 0.0, "rehearsal_weight": 0.0})  # fmt: skip
        if not (scratch_dir / "metrics.json").is_file():
            print(f"\nPPO from scratch, SB3 MlpPolicy, {state['timesteps']} steps -> {scratch_dir}")
            code = train(scratch_config, scratch_dir, resume=(scratch_dir / STATE_FILE).is_file(), progress=progress)
            if code != 0:
                return code
            torch.set_num_threads(config.num_threads)

    if config.role == "baseline":
        return finish_scratch(config, out, state, started)
    return finish(config, out, state, started, layouts)


def _learn(config: PPOConfig, out: Path, state: dict[str, Any], resume: bool, progress: bool) -> int:
    torch.manual_seed(config.seed + state["timesteps"])
    # A resumed run gets fresh episodes (seeded by where it resumes), not a replay of the start.
    env = make_env(config, config.seed + state["timesteps"])
    torch.set_num_threads(config.num_threads)
    tb = str(out / "tb")
    if resume:
        model = HRMPPO.load(out / LAST_MODEL, env=env, device=config.device, tensorboard_log=tb)
        configure_model(model, config)
        state["resumes"] += 1
        print(f"resuming {out} at {model.num_timesteps} steps ({state['train_seconds']:.0f}s trained)")
    else:
        model, facts = build_model(config, env, Path(config.init) if config.init != "none" else None, tb)
        state["facts"] = facts
    state["parameters"] = sum(p.numel() for p in model.policy.parameters())

    def save_last() -> None:
        state["timesteps"] = int(model.num_timesteps)
        model.save(out / "last.tmp.zip")
        (out / "last.tmp.zip").replace(out / LAST_MODEL)
        tmp = out / "state.tmp"
        tmp.write_text(json.dumps(state))
        tmp.replace(out / STATE_FILE)

    callback = RunCallback(config, out, state, save_last, config.env_id)
    remaining = config.total_timesteps - model.num_timesteps
    try:
        if remaining > 0 and state["train_seconds"] < config.time_budget_s:
            model.learn(remaining, callback=callback, progress_bar=progress, reset_num_timesteps=not resume,
                        tb_log_name="ppo")  # fmt: skip
    except KeyboardInterrupt:
        save_last()
        print(f"\ninterrupted at {model.num_timesteps} steps: continue with python -m agents.ppo --resume {out}")
        return 130
    finally:
        env.close()
    if not state["history"] or state["history"][-1]["timesteps"] != model.num_timesteps:
        if callback.model is None:  # learn() never ran (resumed at the end)
            callback.init_callback(model)
        callback.evaluate()  # the final policy competes for best too
    state["finished"] = True
    save_last()
    return 0


def _load_row_policy(path: Path, env_id: str, name: str):
    """The policy of a comparison row, or None (with a note) when its checkpoint is gone."""
    if (path / "policy.pt").is_file() or path.is_file():
        return load_policy(path, env_id)[0]
    print(f"note: no checkpoint at {path}: the {name!r} row is left out of the comparison", file=sys.stderr)
    return None


def finish_scratch(config: PPOConfig, out: Path, state: dict[str, Any], started: float) -> int:
    metrics = {"env_id": config.env_id, "policy": config.policy, "timesteps": state["timesteps"],
               "train_seconds": round(state["train_seconds"], 1), "wall_seconds": round(time.time() - started, 1),
               "history": state["history"], "config": to_dict(config)}  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return 0


def finish(config: PPOConfig, out: Path, state: dict[str, Any], started: float, layouts: str | None) -> int:
    """Comparison on the test episodes (and layouts), forgetting check, metrics.json, table, curves."""
    with torch_threads(config.test_threads):
        return _finish(config, out, state, started, layouts)


def _finish(config: PPOConfig, out: Path, state: dict[str, Any], started: float, layouts: str | None) -> int:
    t0 = time.time()
    ppo_policy = load_policy(out, config.env_id)[0]
    init = state["facts"].get("init")
    policies = {
        "bc": _load_row_policy(Path(init), config.env_id, "bc") if init else None,
        "ppo": ppo_policy,
        "ppo scratch (mlp)": (
            _load_row_policy(out / SCRATCH_DIR, config.env_id, "ppo scratch (mlp)") if config.scratch_baseline else None
        ),
    }
    seeds = test_seeds(config.test_seed, config.test_episodes)
    escape = config.loop_escape
    print(f"\ncomparison on {len(seeds)} test episodes of {config.env_id}:", flush=True)
    decisions: dict[str, GreedyDecisions] = {}  # each policy's decisions, shared by all its rows below
    comparison = compare(policies, config.env_id, config.env_kwargs, seeds=seeds, loop_escape=escape,
                         decisions=decisions)  # fmt: skip
    comparison_layouts = None
    if layouts:
        grids = load_layouts(layouts, config.env_id)
        print(f"comparison on the {len(grids)} layouts of {layouts}:", flush=True)
        comparison_layouts = compare(policies, config.env_id, config.env_kwargs, layouts=grids, loop_escape=escape,
                                     decisions=decisions)  # fmt: skip
    foraging = foraging_escape = None
    if config.foraging_episodes:
        ppo_policy.set_training_mode(False)
        foraging_seeds = test_seeds(config.test_seed, config.foraging_episodes)
        shared = decisions["ppo"]
        foraging = score(run_episodes(policy_actor(ppo_policy, decisions=shared), FORAGING_ID, {},
                                      seeds=foraging_seeds))  # fmt: skip
        if escape:
            foraging_escape = score(run_episodes(LoopEscape(ppo_policy, decisions=shared), FORAGING_ID, {},
                                                 seeds=foraging_seeds))  # fmt: skip
    save_policy(out, ppo_policy, config.env_id, config.env_kwargs,
                extra={"source": "ppo", "validation": state["best"]["row"], "test": comparison["ppo"],
                       "foraging": foraging})  # fmt: skip
    dodges = dodge_layouts(ppo_policy, config.env_id, config.env_kwargs, seeds[: config.dodge_search_episodes],
                           decisions["ppo"])  # fmt: skip
    np.savez(out / "dodge_layouts.npz", layouts=dodges)
    scratch_metrics = out / SCRATCH_DIR / "metrics.json"
    metrics = {
        "env_id": config.env_id,
        "policy": config.policy,
        "q_head": config.q_head,
        "parameters": state.get("parameters"),
        "timesteps": state["timesteps"],
        "train_seconds": round(state["train_seconds"], 1),
        "eval_seconds": round(time.time() - t0, 1),
        "wall_seconds": round(time.time() - started, 1),
        "init": state["facts"],
        "best_validation": state["best"]["row"],
        "comparison": comparison,
        "comparison_layouts": comparison_layouts,
        "layouts_file": layouts,
        "foraging": foraging,
        "foraging_loop_escape": foraging_escape,
        "dodge_layouts": int(len(dodges)),
        "history": state["history"],
        "scratch_history": json.loads(scratch_metrics.read_text())["history"] if scratch_metrics.is_file() else None,
        "config": to_dict(config),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with contextlib.suppress(Exception):  # the picture is a convenience; never fail a run on it
        plot_curves(metrics, out / "curves.png")
    print()
    print(f"{config.env_id}, {config.test_episodes} test episodes (seed {config.test_seed}):")
    print(comparison_table(comparison))
    if comparison_layouts:
        print(f"\n{layouts}:")
        print(comparison_table(comparison_layouts))
    if foraging:
        print(f"\nppo on HRMForaging-v0 (no enemy), {config.foraging_episodes} episodes:")
        print(format_table({"ppo": foraging, **({"ppo + loop escape": foraging_escape} if foraging_escape else {})}))
    if len(dodges):
        print(f"\n{len(dodges)} of the first {config.dodge_search_episodes} test layouts: the blind expert is caught, "
              f"PPO succeeds. Watch one:\n  python -m agents.render --checkpoint {out} --compare-expert blind "
              f"--layouts {out / 'dodge_layouts.npz'} --episodes 1 --gif docs/ppo_vs_blind.gif")  # fmt: skip
    print(f"\nrun: {out}  ({metrics['wall_seconds']:.0f}s wall, {state['train_seconds']:.0f}s PPO, "
          f"{state['timesteps']:,} steps)")  # fmt: skip
    return 0


def plot_curves(metrics: dict[str, Any], path: Path) -> None:
    """Validation success / caught rate against PPO steps (HRM from BC vs MLP from scratch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, history, style in (("HRM from BC", metrics["history"], "C0-"),
                                 ("MLP from scratch", metrics.get("scratch_history") or [], "C2--")):  # fmt: skip
        if not history:
            continue
        steps = [row["timesteps"] for row in history]
        axes[0].plot(steps, [row["success_rate"] for row in history], style, label=name)
        axes[1].plot(steps, [row["caught_rate"] or 0.0 for row in history], style, label=name)
        if name == "HRM from BC" and any(row.get("foraging_success_rate") is not None for row in history):
            foraging = [(row["timesteps"], row["foraging_success_rate"]) for row in history
                        if row.get("foraging_success_rate") is not None]  # fmt: skip
            axes[0].plot(*zip(*foraging), "C1-.", label="HRM from BC on Foraging (no enemy)")
    for ax, rows_key, title in ((axes[0], "success_rate", "validation success"), (axes[1], "caught_rate", "caught")):
        for ref, color in (("blind expert", "grey"), ("planner (ceiling)", "green")):
            value = metrics["comparison"][ref][rows_key]
            ax.axhline(value, color=color, linestyle=":", label=f"{ref} (test)")
        ax.set_title(title)
        ax.set_xlabel("PPO steps (thousands)")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1000:.0f}"))
        ax.set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help=f"YAML config (default {DEFAULT_CONFIG.name})")
    parser.add_argument("--init", default=None, metavar="DIR", help="BC run to start from (same as --set init=DIR)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable), e.g. --set total_timesteps=50000")  # fmt: skip
    parser.add_argument("--out", default=None, help="run directory (default runs/ppo-<env>-<policy>-<time>)")
    parser.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR")
    parser.add_argument("--compare", default=None, metavar="DIR", help="redo the comparison of a finished run")
    parser.add_argument("--layouts", default=None, metavar="FILE.npz", help="also compare on these fixed layouts")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.resume or args.compare:
            if args.config or args.overrides or args.init:
                raise ConfigError("--resume/--compare use the run's own config: drop --config/--set/--init")
            out = Path(args.resume or args.compare)
            if not (out / "config.yaml").is_file():
                raise ConfigError(f"{out}: no config.yaml there (not a PPO run directory)")
            config = load_config(PPOConfig, out / "config.yaml")
            if args.compare:
                if not (out / STATE_FILE).is_file() or not json.loads((out / STATE_FILE).read_text())["finished"]:
                    raise ConfigError(f"{out}: the run has not finished (use --resume {out})")
                if args.layouts:
                    load_layouts(args.layouts, config.env_id)  # fail before any work
                return finish(config, out, json.loads((out / STATE_FILE).read_text()), time.time(), args.layouts)
        else:
            overrides = list(args.overrides) + ([f"init={args.init}"] if args.init else [])
            config = load_config(PPOConfig, args.config or DEFAULT_CONFIG, overrides)
            check_config(config)
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            out = Path(args.out or f"runs/ppo-{config.env_id}-{config.policy}-{stamp}")
            if (out / STATE_FILE).exists():
                raise ConfigError(f"{out} already holds a run: use --resume {out} or another --out")
        if args.layouts:
            load_layouts(args.layouts, config.env_id)  # fail before training, not after
        return train(config, out, resume=bool(args.resume), progress=not args.no_progress, layouts=args.layouts)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    sys.exit(main())
