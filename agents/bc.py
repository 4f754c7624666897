"""Behaviour cloning of an HRM-ACT policy on expert trajectories, with imitation's BC.

    python -m agents.bc [--config configs/foraging_chase_bc.yaml] [--set key=value ...] [--out DIR]
    python -m agents.bc --resume DIR

Reads top to bottom: config -> expert dataset (generated once and cached under ``data/``) ->
policy -> imitation ``bc.BC`` with a deep-supervision + ACT loss -> periodic validation
(keeping the best checkpoint) -> optional DAgger rounds -> held-out test -> results table and
``DIR/metrics.json``. ``DIR/policy.pt`` (best on validation) is what ``agents.evaluate``,
``agents.render`` and ``agents.ppo`` load; ``DIR/last.pt`` lets ``--resume`` continue an
interrupted run where it stopped.

``mix_env_id`` joins a second env's expert data to the same run. The default config
(``configs/foraging_chase_bc.yaml``) is Foraging plus the Chase planner's labels, the start that
``agents.ppo`` needs, so that ``python -m agents.bc`` then ``python -m agents.ppo`` is the whole
pipeline; ``configs/foraging_bc.yaml`` is Foraging alone. The mix env's trajectories, coverage
states and DAgger rounds are trained on unaugmented, and validation and test run on both.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch

import hrm_gym  # noqa: F401  (registers the envs)
from agents.augment import random_symmetries
from agents.checkpoint import POLICY_FILE, build_policy, load_policy, save_policy
from agents.common.machine import machine_facts, resolve_device, seed_everything
from agents.common.plots import plot_history
from agents.common.run import LAST_FILE, RunDirectory, check_env_id, interrupted_exit, open_run
from agents.config import ConfigError, to_dict
from agents.evaluate import format_table, policy_actor, run_episodes, test_seeds
from agents.hrm.losses import ACTLossHead
from agents.policy import HRMActorCriticPolicy, planned_route
from agents.puzzles.maze import MazeTask, move_classes
from expert import make_expert
from expert.chase import ChasePlannerExpert
from expert.coverage import chase_coverage_states, coverage_states
from expert.dataset import load_dataset
from expert.generate import ensure_dataset, episode_seed
from expert.grid import GridTargetExpert
from hrm_gym.core.grid import FOOD, WALL

#: Classes of the per-cell next-move target (agents.puzzles.maze.next_move_classes).
NEXT_MOVE_CLASSES = MazeTask.aux_vocab
#: Envs whose expert heads for one target cell (expert.grid.GridTargetExpert): the per-cell
#: next-move target (``aux_weight``) is defined there.
AUX_ENVS = ("HRMMaze-v0", "HRMForaging-v0")

#: Foraging + Chase: what ``agents.ppo`` starts from (a Foraging-only start never saw the enemy)
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "foraging_chase_bc.yaml"
COMMAND = "agents.bc"
#: Split indices of :func:`expert.generate.episode_seed` used here (train 0, val 1, test 2).
DAGGER_SPLIT_BASE = 10
#: Seed stream of the coverage states (expert.coverage), apart from the loader's.
COVERAGE_STREAM = 7


@dataclass
class BCConfig:
    """Every setting of a behaviour-cloning run (YAML keys; ``--set`` overrides)."""

    env_id: str = "HRMForaging-v0"
    env_kwargs: dict = field(default_factory=dict)
    policy: Literal["hrm", "mlp"] = "hrm"
    preset: str = "cpu_grid16"  # HRM preset (agents.hrm.HRMACTv1Config.PRESETS)
    model: dict = field(default_factory=dict)  # HRM config keys overriding the preset
    mlp_net_arch: list = field(default_factory=lambda: [64, 64])  # for policy=mlp
    #: greedy decisions checked by a vote of this many symmetric views of the grid (1 = none;
    #: agents.policy.HRMActorCriticPolicy.greedy_actions), and the vote share that keeps the
    #: observation's own choice; validation during training uses one view (8x cheaper)
    decision_views: int = 1
    view_keep: float = 0.4
    #: HRM policy's decision mask: "auto" = "sudoku" (rule-legal moves only) on HRMSudoku-v0, else "none"
    action_mask: Literal["auto", "none", "sudoku"] = "auto"
    # data
    episodes: int = 2000
    val_episodes: int = 200
    data_seed: int = 0
    data_dir: str = "data"
    augment: bool = True  # the 8 grid symmetries (square grid envs only)
    #: expert-labelled states with the agent on this many random reachable cells per training
    #: layout and task phase (expert.coverage); 0 = the expert's trajectories only
    coverage_per_layout: int = 0
    #: a second env whose expert data joins the training set (e.g. HRMForagingChase-v0 with
    #: its enemy-aware planner, so the policy has seen the enemy before PPO); "" = none. Its
    #: states are never augmented (the enemy's tie-break is not symmetric); validation picks
    #: the checkpoint on the mean success over both envs, and the test runs on both
    mix_env_id: str = ""
    mix_env_kwargs: dict = field(default_factory=dict)
    mix_episodes: int = 0
    mix_val_episodes: int = 200
    #: coverage states of the mix env on its first mix_coverage_layouts training layouts
    #: (Chase: expert.coverage.chase_coverage_states, the enemy within mix_enemy_radius)
    mix_coverage_layouts: int = 0
    mix_coverage_per_layout: int = 0
    mix_enemy_radius: int = 6
    # optimisation
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01
    lr_schedule: Literal["cosine", "constant"] = "cosine"  # cosine: decays to lr_min_ratio * lr
    lr_min_ratio: float = 0.05
    warmup_batches: int = 100
    #: The run's bound: training ends after this many batches (of ``batch_size`` states), so the
    #: same command and seed give the same policy on any machine.
    max_batches: int = 4000
    #: Optional wall-clock cap on training (null: none); a run it cuts says so in metrics.json
    #: (``stopped_by``) and depends on the machine's speed.
    time_budget_s: float | None = None
    q_loss_weight: float = 0.5
    #: weight of a dense per-cell target in every segment's loss (0: off): each open cell's
    #: optimal next move towards the expert's current target (the classes of the puzzle mode's
    #: maze target, agents.puzzles.maze.next_move_classes), read by the model's per-cell
    #: auxiliary head. It teaches the whole grid's plan from every state, not only the agent's
    #: move; HRMMaze-v0 and HRMForaging-v0 (one target cell at a time)
    aux_weight: float = 0.0
    #: what the ACT Q head learns to predict: "action" (the reference: this segment's action is
    #: the expert's) or "route" (also every cell of the expert's route from the agent to its
    #: target carries the right per-cell move; needs aux_weight > 0). A right first move comes
    #: early on any maze; a right route takes longer the farther the target, so with "route"
    #: the policy halts when its plan reaches the agent and thinks longer on larger mazes.
    halt_target: Literal["action", "route"] = "action"
    #: the reference HRM's training loop: each batch runs ONE segment; rows that have not halted
    #: keep their state and their own state/labels into the next batch (the new batch's samples
    #: fill only the rows that halted). A batch then costs one segment while a state may think
    #: for up to halt_max_steps segments, so long plans train at the price of short ones.
    #: False: every batch runs its states' segments until each halts.
    carry_across_batches: bool = False
    # DAgger: after each phase, roll the policy out and add expert labels of the states it visits
    dagger_rounds: int = 0
    dagger_episodes: int = 300
    # validation / test
    eval_every: int = 250  # batches
    val_states: int = 2048
    val_rollouts: int = 100
    test_episodes: int = 500
    test_seed: int = 12345
    checkpoint_every: int = 100  # batches between resume checkpoints
    seed: int = 0
    device: str = "auto"
    num_threads: int = 2


# ---------------------------------------------------------------------------------------
# Data
class DemonstrationBatches:
    """Re-iterable shuffled minibatches (``{"obs", "acts"}``) for imitation's BC.

    Each pass is one epoch with a fresh permutation and, with ``augment``, a random grid
    symmetry per sample. A symmetry maps the *set* of optimal actions onto the transformed
    state's set, but not the expert's choice within it: the expert breaks ties in a fixed
    order (up < down < left < right), which no rotation or mirror preserves. Augmented samples
    are therefore relabelled with the first optimal action of the transformed mask, which is
    exactly what the expert would do in that state (remapping the action instead gives ~20%
    labels that contradict the expert and caps agreement near 80%). The generator's state is
    part of the resume checkpoint.
    """

    def __init__(
        self, states: np.ndarray, actions: np.ndarray, masks: np.ndarray, batch_size: int, augment: bool, seed: int
    ):
        if len(states) < batch_size:
            raise ValueError(f"{len(states)} training states are fewer than batch_size={batch_size}")
        if augment:
            check_tie_break_labels(actions, masks)
        self.states, self.actions, self.masks = states, actions, masks
        self.augmentable = np.full(len(states), augment)  # per state: may a symmetry transform it
        self.batch_size, self.augment = batch_size, augment
        self.rng = np.random.default_rng(seed)

    def add(self, states: np.ndarray, actions: np.ndarray, masks: np.ndarray, augment: bool = True) -> None:
        """Join more labelled states; ``augment=False`` keeps them untransformed (another env's)."""
        augment = augment and self.augment
        if augment:
            check_tie_break_labels(actions, masks)
        self.states = np.concatenate([self.states, states])
        self.actions = np.concatenate([self.actions, actions])
        self.masks = np.concatenate([self.masks, masks])
        self.augmentable = np.concatenate([self.augmentable, np.full(len(states), augment)])

    def __iter__(self):
        order = self.rng.permutation(len(self.states))
        for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
            idx = order[start : start + self.batch_size]
            obs, acts = self.states[idx], self.actions[idx]
            if self.augment:  # the expert's tie-break in each transformed state (class docstring)
                rows = np.flatnonzero(self.augmentable[idx])
                if rows.size:
                    obs[rows], _, masks = random_symmetries(self.rng, obs[rows], acts[rows], self.masks[idx[rows]])
                    acts[rows] = masks.argmax(axis=1)
            yield {"obs": obs, "acts": acts}


def check_tie_break_labels(actions: np.ndarray, masks: np.ndarray) -> None:
    """Symmetry augmentation relabels with the first optimal action: the labels must be that."""
    first = masks.argmax(axis=1)
    bad = np.flatnonzero(~masks.any(axis=1) | (first != actions))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"augment=true needs expert labels that are the first optimal action (fixed tie-break); "
            f"state {i} has action {int(actions[i])} with optimal mask {masks[i].astype(int).tolist()} "
            f"({bad.size} such states): set augment=false for this expert"
        )


def training_coverage(train_set, config: BCConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`expert.coverage.coverage_states` over the training layouts (never validation ones).

    The layouts are the episodes' first states; a return phase is labelled when the data has
    one (states without food). Seeded by ``config.seed``, so a resumed run rebuilds the same set.
    """
    expert = make_expert(config.env_id, **config.env_kwargs)
    if not isinstance(expert, GridTargetExpert):
        raise ValueError(
            f"coverage_per_layout needs a grid BFS expert (HRMForaging-v0, HRMMaze-v0); {config.env_id} has "
            f"{type(expert).__name__}: set coverage_per_layout=0"
        )
    layouts = train_set.states[train_set.episode_starts.astype(bool)]
    return_phase = not (train_set.states == FOOD).reshape(train_set.num_states, -1).any(1).all()
    rng = np.random.default_rng([config.seed, COVERAGE_STREAM])
    return coverage_states(layouts, expert, config.coverage_per_layout, rng, return_phase)


def mix_round_file(round_file: Path) -> Path:
    """``dagger_RR_mix.npz``: the mix env's states of DAgger round ``RR`` (beside ``dagger_RR.npz``)."""
    return round_file.with_name(round_file.stem + "_mix.npz")


#: Bump when :func:`expert.coverage.chase_coverage_states` or the planner's ``grid_label``
#: changes what it returns: cached coverage files of another version are recomputed.
MIX_COVERAGE_VERSION = 1


def cached_mix_coverage(mix_dir: Path, mix_set, config: BCConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """:func:`mix_coverage`, cached in the mix dataset's directory (~0.1 s per layout to build).

    The file is keyed by everything its states depend on (the dataset's train states by their
    sha256, the coverage settings, the seed, the code version): a file of other settings, or
    one that does not load, is rebuilt, never used. Returns the arrays and whether they came
    from the cache.
    """
    key = json.dumps(
        {
            "version": MIX_COVERAGE_VERSION,
            "train_states_sha256": mix_set.metadata["files"]["train_states.npy"]["sha256"],  # checked on load
            "env_kwargs": config.mix_env_kwargs,
            "layouts": config.mix_coverage_layouts,
            "per_layout": config.mix_coverage_per_layout,
            "enemy_radius": config.mix_enemy_radius,
            "seed": config.seed,
        },
        sort_keys=True,
    )
    path = mix_dir / (
        f"coverage_L{config.mix_coverage_layouts}_P{config.mix_coverage_per_layout}"
        f"_R{config.mix_enemy_radius}_seed{config.seed}.npz"
    )
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as cached:
                if str(cached["key"]) == key:
                    states, actions, masks = cached["states"], cached["actions"], cached["masks"]
                    n = len(states)
                    if (states.shape[1:] == mix_set.states.shape[1:] and actions.shape == (n,)
                            and masks.shape == (n, mix_set.optimal_masks.shape[1])):  # fmt: skip
                        return states, actions, masks, True
                    print(f"{path}: arrays of the wrong shape; rebuilding it")
                else:
                    print(f"{path}: made with other settings or code; rebuilding it")
        except Exception as exc:  # a truncated or foreign file: rebuild, never trust it
            print(f"{path}: unreadable ({type(exc).__name__}: {exc}); rebuilding it")
    states, actions, masks = mix_coverage(mix_set, config)
    temporary = path.with_name(path.stem + ".tmp.npz")
    np.savez(temporary, key=np.array(key), states=states, actions=actions, masks=masks)
    os.replace(temporary, path)
    return states, actions, masks, False


def mix_coverage(mix_set, config: BCConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coverage states of the mix env on its first ``mix_coverage_layouts`` training layouts.

    Chase: the enemy placed near the agent, labelled by the planner from the grid alone
    (:func:`expert.coverage.chase_coverage_states`, ~0.1 s per layout for the planner's solve).
    """
    expert = make_expert(config.mix_env_id, **config.mix_env_kwargs)
    if not isinstance(expert, ChasePlannerExpert):
        raise ValueError(
            f"mix_coverage_layouts needs the Chase planner (mix_env_id=HRMForagingChase-v0), "
            f"{config.mix_env_id} has {type(expert).__name__}: set mix_coverage_layouts=0"
        )
    layouts = mix_set.states[mix_set.episode_starts.astype(bool)][: config.mix_coverage_layouts]
    rng = np.random.default_rng([config.seed, COVERAGE_STREAM, 1])
    return chase_coverage_states(layouts, expert, config.mix_coverage_per_layout, rng, config.mix_enemy_radius)


# ---------------------------------------------------------------------------------------
# Loss: deep supervision (every segment predicts the action) + ACT Q losses
@dataclass(frozen=True)
class HRMBCMetrics:
    """What imitation logs each batch (every field goes to TensorBoard as ``bc/<name>``)."""

    loss: torch.Tensor
    neglogp: torch.Tensor
    accuracy: torch.Tensor
    q_halt_loss: torch.Tensor
    q_halt_accuracy: torch.Tensor
    segments: torch.Tensor
    entropy: torch.Tensor | None = None
    l2_norm: torch.Tensor | None = None

    @classmethod
    def of(cls, loss: torch.Tensor, metrics: dict[str, torch.Tensor], segments: torch.Tensor) -> HRMBCMetrics:
        """From the loss head's metrics of the last segment."""
        return cls(
            loss=loss,
            neglogp=metrics["task_loss"].detach(),
            accuracy=metrics["accuracy"],
            q_halt_loss=metrics["q_halt_loss"],
            q_halt_accuracy=metrics["q_halt_accuracy"],
            segments=segments,
        )


class DeepSupervisionLoss:
    """imitation ``loss_calculator`` for the HRM policy: the ACT loss of every segment.

    Segments run until every row has halted (Q head, exploration, or ``halt_max_steps``); the
    carry is detached between segments, so summing their losses equals one backward per
    segment (HRM's deep supervision) with one optimizer step per batch.
    """

    def __init__(
        self,
        q_loss_weight: float,
        aux_weight: float = 0.0,
        halt_target: str = "action",
        carry_across_batches: bool = False,
    ):
        self.q_loss_weight = q_loss_weight
        self.aux_weight = aux_weight
        self.halt_target = halt_target
        self.carry_across_batches = carry_across_batches
        self._heads: dict[int, ACTLossHead] = {}
        self._carries: dict[int, Any] = {}  # per policy: the rows still reasoning (carry_across_batches)
        self._started = 0  # states that began reasoning since the last take_started()

    def take_started(self) -> int:
        """States that began reasoning since the last call (then counts from zero again)."""
        started, self._started = self._started, 0
        return started

    def __call__(self, policy: HRMActorCriticPolicy, obs: torch.Tensor, acts: torch.Tensor) -> HRMBCMetrics:
        head = self._heads.get(id(policy))
        if head is None:
            aux = {"aux_label_key": "aux", "aux_weight": self.aux_weight} if self.aux_weight > 0 else {}
            if self.halt_target == "route":
                aux["halt_mask_key"] = "route"
            head = self._heads[id(policy)] = ACTLossHead(policy.hrm, q_loss_weight=self.q_loss_weight, **aux)
        policy.hrm.train()
        batch = {"inputs": policy.tokens(obs), "labels": acts.long()}
        if self.aux_weight > 0:
            if self.halt_target == "route":
                batch["aux"], batch["route"] = next_move_targets(obs, with_route=True)
            else:
                batch["aux"] = next_move_targets(obs)
        if self.carry_across_batches:
            return self._one_segment(policy, head, batch)
        self._started += len(obs)
        carry = head.initial_carry(batch)
        losses, current = [], batch
        metrics: dict[str, torch.Tensor] = {}
        while True:
            carry, loss, metrics, _, all_halted = head(carry, current, return_keys=())
            losses.append(loss)
            if bool(all_halted):
                break
            keep = ~carry.halted  # finished rows leave; the rest keep reasoning
            carry = carry.select(keep)
            current = carry.current_data
        return HRMBCMetrics.of(torch.stack(losses).sum(), metrics, torch.tensor(float(len(losses))))

    def _one_segment(self, policy: HRMActorCriticPolicy, head: ACTLossHead, batch: dict) -> HRMBCMetrics:
        """One segment of the rows in flight; halted rows restart on this batch's samples."""
        carry = self._carries.get(id(policy))
        if carry is None or carry.halted.shape[0] != batch["inputs"].shape[0]:
            carry = head.initial_carry(batch)
        self._started += int(carry.halted.sum())
        carry, loss, metrics, _, _ = head(carry, batch, return_keys=())
        self._carries[id(policy)] = carry
        return HRMBCMetrics.of(loss, metrics, metrics["steps"])  # segments of the rows that halted


def next_move_targets(obs: torch.Tensor, with_route: bool = False):
    """``(B, rows, cols)`` per-cell targets of grid observations: 0 wall, 1 the expert's current
    target (the goal / food, else the nest), 2-5 the optimal next move towards it (up, down,
    left, right; the expert's tie-break), 6 cut off from it. ``with_route``: also a bool mask
    of the cells on the expert's route from the agent to its target (both ends included;
    ``agents.policy.planned_route`` of these moves)."""
    grids = obs.detach().to(torch.uint8).cpu().numpy()
    expert = GridTargetExpert()
    classes = np.stack([move_classes(expert.distances(grid), grid != WALL) for grid in grids])
    targets = torch.as_tensor(classes, device=obs.device)
    if not with_route:
        return targets
    routes = np.stack([planned_route(grid, grid_classes) for grid_classes, grid in zip(classes, grids)])
    return targets, torch.as_tensor(routes, device=obs.device)


# ---------------------------------------------------------------------------------------
# Validation
def per_state_scores(
    policy, states: np.ndarray, actions: np.ndarray, masks: np.ndarray, batch: int = 512, views: int | None = None
) -> dict:
    """Agreement with the expert and optimal-action rate on labelled states (greedy actions;
    ``views``: the symmetric views that vote, default the policy's own)."""
    act = policy_actor(policy, views=views)
    chosen, steps = [], []
    for start in range(0, len(states), batch):
        a, s = act(states[start : start + batch])
        chosen.append(a)
        steps.append(s)
    chosen_all = np.concatenate(chosen)
    return {
        "agreement": float(np.mean(chosen_all == actions)),
        "optimal_action_rate": float(np.mean(masks[np.arange(len(masks)), chosen_all])),
        "mean_reasoning_steps": float(np.mean(np.concatenate(steps))),
    }


def collect_on_policy_states(
    policy, env_id: str, env_kwargs: dict, seeds: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DAgger: states the policy visits on ``seeds``, with the expert's action and optimal mask.

    The network acts on the observation alone (no vote of symmetric views): its own mistakes
    are the states to label, and one view costs an eighth.
    """
    act = policy_actor(policy, views=1)
    envs = [gym.make(env_id, **env_kwargs).unwrapped for _ in seeds]
    experts = [make_expert(env_id, **env_kwargs) for _ in seeds]
    current = []
    for env, expert, seed in zip(envs, experts, seeds):
        expert.reset()
        current.append(env.reset(seed=seed))
    running = list(range(len(seeds)))
    states, labels, masks = [], [], []
    while running:
        actions, _ = act(np.stack([current[i][0] for i in running]))
        still = []
        for j, i in enumerate(running):
            obs, info = current[i]
            states.append(obs)
            labels.append(experts[i].act(obs, info))
            masks.append(experts[i].optimal_actions(obs, info))
            obs, _, terminated, truncated, info = envs[i].step(int(actions[j]))
            current[i] = (obs, info)
            if not (terminated or truncated):
                still.append(i)
        running = still
    return np.stack(states).astype(np.uint8), np.asarray(labels, dtype=np.int64), np.stack(masks).astype(bool)


# ---------------------------------------------------------------------------------------
class StopTraining(Exception):
    """Raised from a batch callback to leave imitation's training loop early."""


def learning_rate(config: BCConfig, batches: int) -> float:
    """Linear warmup, then cosine decay over ``max_batches`` (the run's bound)."""
    if config.lr_schedule == "constant":
        return config.lr
    if batches < config.warmup_batches:
        return config.lr * (batches + 1) / config.warmup_batches
    progress = min(1.0, batches / config.max_batches)
    floor = config.lr * config.lr_min_ratio
    return floor + (config.lr - floor) * 0.5 * (1.0 + np.cos(np.pi * progress))


def dataset_dir(config: BCConfig, mix: bool = False) -> Path:
    """Where the expert dataset of the run's env (or, with ``mix``, of its mix env) is cached."""
    env_id, env_kwargs, episodes, val_episodes = (
        (config.mix_env_id, config.mix_env_kwargs, config.mix_episodes, config.mix_val_episodes)
        if mix
        else (config.env_id, config.env_kwargs, config.episodes, config.val_episodes)
    )
    kwargs = "-".join(f"{k}{v}" for k, v in sorted(env_kwargs.items())) or "default"
    return Path(config.data_dir) / f"{env_id}_{kwargs}_ep{episodes}_val{val_episodes}_seed{config.data_seed}"


def check_config(config: BCConfig) -> None:
    """Settings that would otherwise fail deep inside training, or be ignored."""
    check_env_id(config.env_id)
    positive = ("episodes", "val_episodes", "batch_size", "max_batches", "eval_every", "checkpoint_every",
                "val_states", "val_rollouts", "test_episodes", "num_threads", "decision_views")  # fmt: skip
    for name in positive:
        if getattr(config, name) < 1:
            raise ConfigError(f"{name}={getattr(config, name)} must be >= 1")
    if config.decision_views > 8:
        raise ConfigError(f"decision_views={config.decision_views} must be 1..8 (the grid's symmetries)")
    if config.dagger_rounds < 0 or config.coverage_per_layout < 0:
        raise ConfigError("dagger_rounds and coverage_per_layout must be >= 0")
    if config.dagger_rounds and config.dagger_episodes < 1:
        raise ConfigError(f"dagger_episodes={config.dagger_episodes} must be >= 1 with dagger_rounds > 0")
    if not config.lr > 0 or config.weight_decay < 0:
        raise ConfigError(f"lr must be > 0 and weight_decay >= 0, got {config.lr} and {config.weight_decay}")
    if config.time_budget_s is not None and not config.time_budget_s > 0:
        raise ConfigError(f"time_budget_s={config.time_budget_s} must be > 0, or null for no wall-clock cap")
    if not config.aux_weight >= 0:
        raise ConfigError(f"aux_weight={config.aux_weight} must be >= 0 (0: off)")
    if config.aux_weight > 0 and (config.env_id not in AUX_ENVS or config.mix_env_id or config.policy != "hrm"):
        raise ConfigError(
            f"aux_weight={config.aux_weight} needs policy=hrm on {' or '.join(AUX_ENVS)} alone (its per-cell "
            f"target is the shortest-path expert's move towards its target); got policy={config.policy}, "
            f"env_id={config.env_id}, mix_env_id={config.mix_env_id!r}"
        )
    if config.halt_target not in ("action", "route"):
        raise ConfigError(f"halt_target={config.halt_target!r} must be 'action' or 'route'")
    if config.halt_target == "route" and not config.aux_weight > 0:
        raise ConfigError("halt_target='route' needs aux_weight > 0 (the route is read from the per-cell head)")
    resolve_device(config.device)
    check_mix(config)


def check_mix(config: BCConfig) -> None:
    """Mix settings that would otherwise be ignored or fail deep inside the data generation."""
    if not config.mix_env_id:
        if config.mix_episodes or config.mix_coverage_layouts:
            raise ConfigError(
                f"mix_episodes={config.mix_episodes} / mix_coverage_layouts={config.mix_coverage_layouts} "
                "need mix_env_id (e.g. HRMForagingChase-v0)"
            )
        return
    check_env_id(config.mix_env_id)
    if config.mix_env_id == config.env_id:
        raise ConfigError(f"mix_env_id={config.mix_env_id!r} is the run's own env_id: give another env")
    if config.mix_episodes < 1 or config.mix_val_episodes < 1:
        raise ConfigError(
            f"mix_episodes and mix_val_episodes must be >= 1 with mix_env_id set, got "
            f"{config.mix_episodes} and {config.mix_val_episodes}"
        )
    if config.mix_coverage_layouts < 0 or config.mix_coverage_per_layout < 0:
        raise ConfigError("mix_coverage_layouts and mix_coverage_per_layout must be >= 0")
    if config.mix_coverage_layouts and config.mix_coverage_per_layout < 1:
        raise ConfigError("mix_coverage_layouts > 0 needs mix_coverage_per_layout >= 1")


# ---------------------------------------------------------------------------------------
# The run: typed state, then one named function per phase
@dataclass
class BCState:
    """Everything a resumed BC run needs besides its tensors (saved in ``last.pt`` as JSON)."""

    phase: Literal["train", "test", "done"] = "train"
    batches: int = 0
    train_seconds: float = 0.0
    dagger_round: int = 0
    best: dict | None = None
    history: list = field(default_factory=list)
    stopped_by: str = "max_batches"
    #: states that started reasoning (with carry_across_batches fewer than batches x batch_size:
    #: a batch's samples only fill the rows that halted)
    states: int = 0


@dataclass
class BCData:
    """The run's training batches and its validation states and episodes."""

    loader: DemonstrationBatches
    val_states: np.ndarray
    val_actions: np.ndarray
    val_masks: np.ndarray
    val_seeds: list[int]
    mix_val_seeds: list[int]
    seconds: float


@dataclass
class BCRun:
    """What the phases share: the config, the run directory, the data, the model and its state."""

    config: BCConfig
    run: RunDirectory
    data: BCData
    policy: Any
    trainer: Any
    logger: Any
    device: torch.device
    state: BCState = field(default_factory=BCState)
    clock: float = 0.0

    def phases(self) -> int:
        return self.config.dagger_rounds + 1

    def phase_end(self) -> int:
        """The batch at which the current DAgger phase ends (each phase a share of ``max_batches``)."""
        return self.config.max_batches * (self.state.dagger_round + 1) // self.phases()


def load_data(config: BCConfig, progress: bool) -> BCData:
    """Phase 1: the expert datasets (generated once and cached), coverage and mix states."""
    started = time.time()
    data_path = dataset_dir(config)
    ensure_dataset(config.env_id, config.episodes, config.data_seed, data_path, val_episodes=config.val_episodes,
                   env_kwargs=config.env_kwargs, progress=progress)  # fmt: skip
    train_set = load_dataset(data_path, "train", config.env_id)
    val_set = load_dataset(data_path, "val", config.env_id)
    shape = gym.make(config.env_id, **config.env_kwargs).observation_space.shape
    augment = config.augment and shape[0] == shape[1] and config.env_id != "HRMSudoku-v0"
    loader = DemonstrationBatches(train_set.states, train_set.actions, train_set.optimal_masks, config.batch_size,
                                  augment, config.seed)  # fmt: skip
    if config.coverage_per_layout > 0:
        states, actions, masks = training_coverage(train_set, config)
        loader.add(states, actions, masks)
        print(f"coverage: +{len(states)} expert-labelled states off the expert's paths")
    mix_val_seeds: list[int] = []
    if config.mix_env_id:
        mix_dir = dataset_dir(config, mix=True)
        ensure_dataset(config.mix_env_id, config.mix_episodes, config.data_seed, mix_dir,
                       val_episodes=config.mix_val_episodes, env_kwargs=config.mix_env_kwargs,
                       progress=progress)  # fmt: skip
        mix_set = load_dataset(mix_dir, "train", config.mix_env_id)
        mix_val = load_dataset(mix_dir, "val", config.mix_env_id)
        loader.add(mix_set.states, mix_set.actions, mix_set.optimal_masks, augment=False)
        message = f"mix: +{mix_set.num_states} {config.mix_env_id} expert states"
        if config.mix_coverage_layouts > 0:
            states, actions, masks, cached = cached_mix_coverage(mix_dir, mix_set, config)
            loader.add(states, actions, masks, augment=False)
            message += f" and {len(states)} coverage states" + (" (cached)" if cached else "")
        print(f"{message} (now {len(loader.states)})", flush=True)
        mix_val_seeds = [int(s) for s in mix_val.episode_seeds[: config.val_rollouts]]
    pick = np.random.default_rng(config.seed).permutation(val_set.num_states)[: config.val_states]
    return BCData(
        loader=loader, val_states=val_set.states[pick], val_actions=val_set.actions[pick],
        val_masks=val_set.optimal_masks[pick], val_seeds=[int(s) for s in val_set.episode_seeds[: config.val_rollouts]],
        mix_val_seeds=mix_val_seeds, seconds=time.time() - started,
    )  # fmt: skip


def policy_kwargs_for(config: BCConfig) -> dict[str, Any]:
    """The policy's kwargs from the config (HRM preset + overrides, or the MLP's layers)."""
    if config.policy != "hrm":
        return {"net_arch": list(config.mlp_net_arch)}
    model_keys = dict(config.model)
    if config.aux_weight > 0:
        model_keys["aux_vocab_out"] = NEXT_MOVE_CLASSES
    mask = config.action_mask
    if mask == "auto":
        mask = "sudoku" if config.env_id == "HRMSudoku-v0" else "none"
    return {"hrm_config": model_keys, "preset": config.preset, "action_mask": mask,
            "decision_views": config.decision_views, "view_keep": config.view_keep}  # fmt: skip


def build_run(config: BCConfig, run: RunDirectory, data: BCData, device: torch.device) -> BCRun:
    """Phase 2: the policy and imitation's BC trainer (AdamW, deep-supervision loss)."""
    from imitation.algorithms import bc
    from imitation.util import logger as imitation_logger

    env = gym.make(config.env_id, **config.env_kwargs)
    policy = build_policy(env, config.policy, policy_kwargs_for(config), lr=config.lr).to(device)
    logger = imitation_logger.configure(str(run.file("tb")), ["tensorboard", "csv"])
    trainer = bc.BC(
        observation_space=env.observation_space, action_space=env.action_space,
        rng=np.random.default_rng(config.seed), policy=policy, demonstrations=data.loader,
        batch_size=config.batch_size, optimizer_cls=torch.optim.AdamW, optimizer_kwargs={"lr": config.lr},
        device=device, custom_logger=logger,
    )  # fmt: skip
    for group in trainer.optimizer.param_groups:  # imitation refuses weight_decay in optimizer_kwargs
        group["weight_decay"] = config.weight_decay
    if config.policy == "hrm":
        trainer.loss_calculator = DeepSupervisionLoss(
            config.q_loss_weight, config.aux_weight, config.halt_target, config.carry_across_batches
        )
    env.close()
    return BCRun(config=config, run=run, data=data, policy=policy, trainer=trainer, logger=logger, device=device)


def save_last(ctx: BCRun) -> None:
    """The resume checkpoint: weights, optimizer, typed state and the loader's generator."""
    tensors = {"policy": ctx.policy.state_dict(), "optimizer": ctx.trainer.optimizer.state_dict()}
    ctx.run.save_checkpoint(ctx.state, tensors, {"loader": ctx.data.loader.rng.bit_generator.state})


def restore(ctx: BCRun) -> None:
    """Continue from ``last.pt``, with the DAgger rounds the run recorded (and nothing else)."""
    state, tensors, rng = ctx.run.load_checkpoint(BCState, map_location=ctx.device)
    ctx.policy.load_state_dict(tensors["policy"])
    ctx.trainer.optimizer.load_state_dict(tensors["optimizer"])
    ctx.data.loader.rng.bit_generator.state = rng["loader"]
    ctx.state = state
    for round_index in range(state.dagger_round if state.phase == "train" else ctx.config.dagger_rounds):
        if round_index >= ctx.config.dagger_rounds:
            break
        for name, augmentable in ((dagger_file(round_index), True), (dagger_file(round_index, mix=True), False)):
            if ctx.run.has(name):
                arrays = ctx.run.load_arrays(name)
                ctx.data.loader.add(arrays["states"], arrays["actions"], arrays["masks"], augment=augmentable)
    print(f"resuming {ctx.run.path} at batch {state.batches} ({state.phase} phase)")


def dagger_file(round_index: int, mix: bool = False) -> str:
    """``dagger_RR.npz`` (and ``dagger_RR_mix.npz``: the mix env's states) of DAgger round ``RR``."""
    return f"dagger_{round_index:02d}{'_mix' if mix else ''}.npz"


def validate(ctx: BCRun) -> dict:
    """One validation row (expert states + rollouts, one view); keeps the best ``policy.pt``."""
    config, state, data, policy = ctx.config, ctx.state, ctx.data, ctx.policy
    policy.set_training_mode(False)
    scores = per_state_scores(policy, data.val_states, data.val_actions, data.val_masks, views=1)
    rollouts = run_episodes(policy_actor(policy, views=1), config.env_id, config.env_kwargs, seeds=data.val_seeds,
                            label_states=False)  # fmt: skip
    success, mix_row = rollouts["success_rate"], {}
    if data.mix_val_seeds:
        mix = run_episodes(policy_actor(policy, views=1), config.mix_env_id, config.mix_env_kwargs,
                           seeds=data.mix_val_seeds, label_states=False)  # fmt: skip
        mix_row = {"val_mix_success_rate": mix["success_rate"], "val_mix_caught_rate": mix.get("caught_rate")}
        success = (success + mix["success_rate"]) / 2
    policy.set_training_mode(True)
    row = {"batch": state.batches, "train_seconds": round(state.train_seconds, 1), **scores,
           "val_success_rate": rollouts["success_rate"], "val_mean_path_ratio": rollouts["mean_path_ratio"],
           **mix_row}  # fmt: skip
    state.history.append(row)
    for key, value in row.items():
        if value is not None:
            ctx.logger.record(f"val/{key}", value)
    ctx.logger.dump(state.batches)
    score = [success, row["optimal_action_rate"], row["agreement"]]
    if state.best is None or score > state.best["score"]:
        state.best = {"score": score, "row": row}
        save_policy(ctx.run.path, policy, config.env_id, config.env_kwargs, extra={"source": "bc", "validation": row},
                    sb3_zip=False)  # fmt: skip
        ctx.run.recorded(POLICY_FILE)
    mix_text = f" {config.mix_env_id} {mix_row['val_mix_success_rate']:.3f}" if mix_row else ""
    print(f"[batch {row['batch']}] val agreement {row['agreement']:.3f} optimal {row['optimal_action_rate']:.3f} "
          f"success {row['val_success_rate']:.3f}{mix_text} segments {row['mean_reasoning_steps']:.2f}",
          flush=True)  # fmt: skip
    return row


def over_time_cap(ctx: BCRun) -> bool:
    cap = ctx.config.time_budget_s
    return cap is not None and ctx.state.train_seconds >= cap


def on_batch_end(ctx: BCRun) -> None:
    """After every batch: count it, set the learning rate, checkpoint, validate, stop at the bound."""
    now = time.time()
    state = ctx.state
    state.train_seconds += now - ctx.clock
    state.batches += 1
    loss = ctx.trainer.loss_calculator
    state.states += loss.take_started() if isinstance(loss, DeepSupervisionLoss) else ctx.config.batch_size
    for group in ctx.trainer.optimizer.param_groups:
        group["lr"] = learning_rate(ctx.config, state.batches)
    if state.batches % ctx.config.checkpoint_every == 0:
        save_last(ctx)
    if state.batches % ctx.config.eval_every == 0:
        validate(ctx)
    ctx.clock = time.time()
    if state.batches >= ctx.phase_end() or over_time_cap(ctx):
        raise StopTraining


def dagger_round(ctx: BCRun) -> None:
    """Roll the policy out (one view), label the states it visits by the expert, train on them."""
    config, state = ctx.config, ctx.state
    ctx.policy.set_training_mode(False)
    seeds = [episode_seed(config.data_seed, DAGGER_SPLIT_BASE + state.dagger_round, i)
             for i in range(config.dagger_episodes)]  # fmt: skip
    rounds = [(dagger_file(state.dagger_round), config.env_id, config.env_kwargs, True)]
    if config.mix_env_id:  # as many episodes on the mix env, labelled by its expert
        rounds.append((dagger_file(state.dagger_round, mix=True), config.mix_env_id, config.mix_env_kwargs, False))
    added = 0
    for name, env_id, env_kwargs, augmentable in rounds:
        states, actions, masks = collect_on_policy_states(ctx.policy, env_id, env_kwargs, seeds)
        ctx.run.save_arrays(name, states=states, actions=actions, masks=masks)
        ctx.data.loader.add(states, actions, masks, augment=augmentable)
        added += len(states)
    ctx.policy.set_training_mode(True)
    print(f"DAgger round {state.dagger_round + 1}: +{added} labelled states (now {len(ctx.data.loader.states)})",
          flush=True)  # fmt: skip


def fit(ctx: BCRun, progress: bool) -> None:
    """Phase 3: training phases of ``max_batches / (dagger_rounds + 1)`` batches, DAgger between."""
    state = ctx.state
    while state.dagger_round < ctx.phases():
        remaining = ctx.phase_end() - state.batches
        if remaining > 0 and not over_time_cap(ctx):
            for group in ctx.trainer.optimizer.param_groups:
                group["lr"] = learning_rate(ctx.config, state.batches)
            ctx.clock = time.time()
            with contextlib.suppress(StopTraining), warnings.catch_warnings():
                # imitation logs each metric with float(), the loss too (it needs its graph)
                warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
                ctx.trainer.train(n_batches=remaining, on_batch_end=lambda: on_batch_end(ctx), progress_bar=progress,
                                  log_interval=50)  # fmt: skip
        if over_time_cap(ctx):
            state.stopped_by = "time_budget_s"
            print(f"time_budget_s={ctx.config.time_budget_s:g} reached at batch {state.batches}: training stops")
            break
        if state.dagger_round + 1 < ctx.phases():
            dagger_round(ctx)
        state.dagger_round += 1
        save_last(ctx)
    if not state.history or state.history[-1]["batch"] != state.batches:
        validate(ctx)
    state.phase = "test"
    save_last(ctx)


def test_best(ctx: BCRun) -> tuple[dict[str, dict], dict[str, Any]]:
    """Phase 4: the best checkpoint on the held-out test episodes (voted and one view, mix env too)."""
    config, data = ctx.config, ctx.data
    best, _ = load_policy(ctx.run.verified(POLICY_FILE), config.env_id, ctx.device)
    best.set_training_mode(False)
    seeds = test_seeds(config.test_seed, config.test_episodes)
    test = run_episodes(policy_actor(best), config.env_id, config.env_kwargs, seeds=seeds)
    views = getattr(best, "decision_views", 1)
    rows, extra = {f"{config.policy} (test)": test}, {"test": test}
    if views > 1:  # what the vote buys: the same network on the observation alone
        single = run_episodes(policy_actor(best, views=1), config.env_id, config.env_kwargs, seeds=seeds)
        rows = {f"{config.policy}, {views}-view vote (test)": test, f"{config.policy}, 1 view (test)": single}
        extra["test_single_view"] = single
        extra["validation_states_voted"] = per_state_scores(best, data.val_states, data.val_actions, data.val_masks)
    if config.mix_env_id:  # the mix env's own held-out episodes
        for name, views_ in [(f"{views}-view vote", views), ("1 view", 1)] if views > 1 else [("1 view", 1)]:
            report = run_episodes(policy_actor(best, views=views_), config.mix_env_id, config.mix_env_kwargs,
                                  seeds=seeds)  # fmt: skip
            rows[f"{config.policy}, {name}, {config.mix_env_id} (test)"] = report
            extra["test_mix" if views_ == views else "test_mix_single_view"] = report
    save_policy(ctx.run.path, best, config.env_id, config.env_kwargs,
                extra={"source": "bc", "validation": ctx.state.best["row"], "test": test})  # fmt: skip
    ctx.run.recorded(POLICY_FILE)
    ctx.run.recorded("sb3_model.zip")
    return rows, extra


def report(ctx: BCRun, rows: dict[str, dict], extra: dict[str, Any], started: float) -> None:
    """Phase 5: ``metrics.json`` (with the machine it ran on) and the results table."""
    config, state = ctx.config, ctx.state
    samples = state.states or state.batches * config.batch_size
    n_params = sum(p.numel() for p in ctx.policy.parameters())
    metrics = {
        "env_id": config.env_id, "policy": config.policy, "parameters": n_params, "batches": state.batches,
        "train_samples": samples, "row_segments": state.batches * config.batch_size, "stopped_by": state.stopped_by,
        "train_seconds": round(state.train_seconds, 1),
        "samples_per_s": round(samples / max(state.train_seconds, 1e-9), 1), "data_seconds": round(ctx.data.seconds, 1),
        "wall_seconds": round(time.time() - started, 1), "machine": machine_facts(ctx.device),
        "train_states": int(len(ctx.data.loader.states)), "best_validation": state.best["row"], **extra,
        "history": state.history, "config": to_dict(config),
    }  # fmt: skip
    ctx.run.write_json("metrics.json", metrics)
    labels = {"val_success_rate": f"{config.env_id} success", "val_mix_success_rate": f"{config.mix_env_id} success",
              "optimal_action_rate": "optimal-action rate", "agreement": "expert agreement"}  # fmt: skip
    plot_history(state.history, "batch", labels, ctx.run.file("curves.png"), f"BC on {config.env_id}: validation",
                 x_scale=config.batch_size)  # fmt: skip
    ctx.run.recorded("curves.png")
    print()
    print(format_table(rows))
    if "validation_states_voted" in extra:
        voted = extra["validation_states_voted"]
        print(f"held-out expert states, voted: agreement {voted['agreement']:.3f} "
              f"optimal {voted['optimal_action_rate']:.3f}")  # fmt: skip
    print(f"\nrun: {ctx.run.path}  ({metrics['wall_seconds']:.0f}s, {n_params:,} parameters, {samples:,} samples, "
          f"{metrics['samples_per_s']:.0f} samples/s)")  # fmt: skip


def train(config: BCConfig, run: RunDirectory, resume: bool = False, progress: bool = True) -> int:
    """A BC run, phase by phase: data, model, fit (with DAgger), test, report."""
    started = time.time()
    check_config(config)
    device = resolve_device(config.device)
    seed_everything(config.seed, config.num_threads)
    data = load_data(config, progress)
    ctx = build_run(config, run, data, device)
    if resume and run.has(LAST_FILE):
        restore(ctx)
    try:
        if ctx.state.phase == "train":
            fit(ctx, progress)
        rows, extra = test_best(ctx)
        report(ctx, rows, extra, started)
    except KeyboardInterrupt:
        return interrupted_exit(lambda: save_last(ctx), COMMAND, run.path, f"at batch {ctx.state.batches}")
    ctx.state.phase = "done"
    save_last(ctx)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help=f"YAML config (default {DEFAULT_CONFIG.name})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable), e.g. --set policy=mlp")  # fmt: skip
    parser.add_argument("--out", default=None, help="run directory (default runs/bc-<env>-<policy>-<time>)")
    parser.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config, run, resuming = open_run(
            BCConfig, COMMAND, config_path=args.config, overrides=args.overrides, out=args.out, resume=args.resume,
            default_config=DEFAULT_CONFIG, default_out=lambda c: f"runs/bc-{c.env_id}-{c.policy}", check=check_config,
        )  # fmt: skip
        return train(config, run, resume=resuming, progress=not args.no_progress)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    sys.exit(main())
