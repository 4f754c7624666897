"""PPO fine-tuning of the behaviour-cloned HRM policy against the chasing enemy.

    python -m agents.ppo [--config configs/foraging_chase_ppo.yaml] [--init DIR] [--set key=value ...]
                         [--out DIR] [--layouts FILE.npz]
    python -m agents.ppo --resume DIR
    python -m agents.ppo --compare DIR [--layouts FILE.npz]     (redo a finished run's comparison)

Reads top to bottom, phase by phase:

1. **init**: the BC run to start from (``--init``; default the newest ``runs/bc-*`` holding a
   ``policy.pt``; if there is none, a BC run with ``configs/foraging_chase_bc.yaml`` is trained
   first). PPO's policy is built from that checkpoint's own kwargs and weights, checked to give
   the same action probabilities.
2. **learn**: SB3 PPO (:class:`agents.rl.algorithm.HRMPPO`: frozen Q head, value warm-up, depth
   replay) on ``HRMForagingChase-v0`` plus ``foraging_envs`` plain Foraging envs, bounded by
   ``total_timesteps``; validation keeps the best policy as ``DIR/policy.pt``
   (:mod:`agents.rl.validation`).
3. **scratch**: the baseline, PPO from scratch with SB3's default ``MlpPolicy`` at the same
   number of steps (``DIR/scratch``).
4. **compare**: every row on the same seeded test episodes (and ``--layouts``), the PPO policy
   on Foraging, ``DIR/metrics.json``, the table and ``DIR/curves.png`` (:mod:`agents.rl.comparison`).

``DIR/last.pt`` (tensors + JSON, never a pickle or an SB3 zip) lets ``--resume`` continue any
phase; ``DIR/sb3_model.zip`` is written for users who want ``PPO.load``, never read here.

**Separate critic** (``critic: separate``): the value is a small MLP on the *detached* reasoning
state, so PPO's value loss (returns of +-10) never moves the BC trunk; ``shared`` uses the HRM's
own value head through the trunk instead.

Threads: rollouts and evaluations run on ``rollout_threads`` (default 1: batches of ``n_envs``
observations, where a second thread spins more than it helps on 2 cores), the updates on
``num_threads``, the final comparison (batches of hundreds of episodes x views) on
``test_threads``. ``DummyVecEnv`` by default: one Chase step costs ~50 us, one HRM decision
~7 ms, so worker processes cannot pay off.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
import yaml
from stable_baselines3.common.utils import get_linear_fn

import hrm_gym  # noqa: F401  (registers the envs)
from agents.checkpoint import POLICY_FILE, load_policy, policy_kwargs_of, save_policy
from agents.common.machine import machine_facts, resolve_device, seed_everything
from agents.common.run import LAST_FILE, RunDirectory, check_env_id, interrupted_exit, open_run, yaml_dump
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
from agents.pretrained import PretrainedError, is_pretrained
from agents.pretrained import resolve as resolve_pretrained
from agents.rl.algorithm import HRMPPO, SegmentRolloutBuffer, torch_threads
from agents.rl.comparison import (
    COMPARISON_KEYS,
    COMPARISON_ROWS,
    compare,
    comparison_table,
    dodge_layouts,
    plot_curves,
    score,
)
from agents.rl.envs import FORAGING_ID, make_env
from agents.rl.state import PPOState
from agents.rl.validation import VAL_SPLIT, ValidationCallback
from expert.generate import episode_seed

__all__ = ["COMPARISON_KEYS", "COMPARISON_ROWS", "PPOConfig", "main", "train"]

COMMAND = "agents.ppo"
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "foraging_chase_ppo.yaml"
#: The BC run trained for ``init: auto`` when runs/ holds none: Foraging plus planner-labelled
#: Chase states, so that the policy has met the enemy before PPO.
BC_CONFIG_FOR_PPO = Path(__file__).resolve().parents[1] / "configs" / "foraging_chase_bc.yaml"
SCRATCH_DIR = "scratch"
DODGE_GIF = "ppo_vs_blind.gif"


@dataclass
class PPOConfig:
    """Every setting of a PPO run (YAML keys; ``--set`` overrides)."""

    env_id: str = "HRMForagingChase-v0"
    env_kwargs: dict = field(default_factory=dict)
    #: "auto": newest runs/bc-* with a policy.pt (a BC run is trained if none);
    #: "none": a fresh policy; "pretrained:NAME": a shipped agent; else a BC run directory or its policy.pt.
    init: str = "auto"
    policy: Literal["hrm", "mlp"] = "hrm"
    preset: str = "cpu_grid16"  # only with init=none (else the BC checkpoint's architecture)
    model: dict = field(default_factory=dict)  # only with init=none
    mlp_net_arch: list | None = None  # None: SB3's default MlpPolicy (64, 64 for pi and vf)
    max_segments: int | None = None  # cap on HRM segments per decision (None: the model's)
    q_head: Literal["frozen"] = "frozen"  # agents.rl.algorithm says why
    #: "separate": a value MLP on the detached reasoning state; "shared": the HRM's value head.
    critic: Literal["shared", "separate"] = "separate"
    # PPO
    n_envs: int = 8
    #: How many of the n_envs run plain HRMForaging-v0 (no enemy), so that PPO on Chase does not
    #: unlearn Foraging.
    foraging_envs: int = 1
    vec_env: Literal["dummy", "subproc"] = "dummy"
    #: Potential-based shaping on the Chase envs (hrm_gym.wrappers.EnemyDistanceShaping; 0 = off).
    shaping_weight: float = 0.0
    shaping_radius: int = 5
    #: Greedy decisions' vote of symmetric views (None: the BC checkpoint's; 1: no vote).
    decision_views: int | None = None
    #: The run's bound: PPO trains on this many env steps, so the same command and seed give the
    #: same policy on any machine.
    total_timesteps: int = 200_000
    #: Optional wall-clock cap on PPO's training (null: none); a run it cuts says so in
    #: metrics.json (``stopped_by``) and depends on the machine's speed.
    time_budget_s: float | None = None
    n_steps: int = 256
    batch_size: int = 512
    n_epochs: int = 2
    lr: float = 1e-4
    #: "constant", or "linear": from lr down to 0 at total_timesteps (SB3's progress_remaining)
    lr_schedule: Literal["constant", "linear"] = "constant"
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
    #: Views voted on in validation decisions (1: the observation alone, 8x cheaper; None: the
    #: policy's decision_views). The test always uses the policy's vote.
    val_views: int | None = 1
    #: Validation episodes on plain HRMForaging-v0 beside the Chase ones (0 = none).
    val_foraging_episodes: int = 50
    checkpoint_every: int = 4096  # timesteps
    test_episodes: int = 300
    test_seed: int = 12345
    foraging_episodes: int = 200  # the PPO policy on HRMForaging-v0 (forgetting check)
    dodge_search_episodes: int = 100  # test episodes searched for blind-caught / PPO-success layouts
    #: Episodes of DIR/ppo_vs_blind.gif: the PPO agent beside the blind expert on the first dodge
    #: layouts (0 = no GIF)
    gif_episodes: int = 2
    #: The baseline: PPO from scratch with SB3's default policy at the same number of steps.
    scratch_baseline: bool = True
    #: Also score BC and PPO through agents.evaluate.LoopEscape (rows "bc + loop escape", ...).
    loop_escape: bool = True
    scratch: dict = field(
        default_factory=lambda: {
            "lr": 3e-4, "n_epochs": 10, "batch_size": 64, "clip_range": 0.2, "ent_coef": 0.0, "target_kl": None,
            "value_warmup_rollouts": 0,
        }
    )  # fmt: skip
    seed: int = 0
    device: str = "cpu"
    num_threads: int = 2  # torch threads for the PPO updates (batches of batch_size)
    rollout_threads: int = 1  # torch threads while collecting rollouts (batches of n_envs observations)
    test_threads: int = 2  # torch threads for the final comparison
    #: "baseline" marks the scratch sub-run: it trains and validates; the main run compares.
    role: Literal["main", "baseline"] = "main"


def check_config(config: PPOConfig) -> None:
    """Reject values SB3 would accept silently or fail on deep inside."""
    check_env_id(config.env_id)
    positive = ("n_envs", "total_timesteps", "n_steps", "batch_size", "n_epochs", "eval_every", "eval_episodes",
                "checkpoint_every", "test_episodes", "num_threads", "rollout_threads", "test_threads")  # fmt: skip
    for name in positive:
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(config, name)}")
    if not 0 <= config.foraging_envs < config.n_envs:
        raise ConfigError(f"foraging_envs must be in [0, n_envs={config.n_envs}), got {config.foraging_envs}")
    if (config.foraging_envs or config.val_foraging_episodes) and config.env_id == FORAGING_ID:
        raise ConfigError(f"foraging_envs and val_foraging_episodes rehearse {FORAGING_ID} beside another env; "
                          f"set them to 0 for {FORAGING_ID}")  # fmt: skip
    for name in (
        "foraging_episodes",
        "val_foraging_episodes",
        "value_warmup_rollouts",
        "dodge_search_episodes",
        "gif_episodes",
    ):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(config, name)}")
    if config.batch_size > config.n_steps * config.n_envs:
        raise ConfigError(f"batch_size={config.batch_size} exceeds the rollout size n_steps*n_envs="
                          f"{config.n_steps * config.n_envs}")  # fmt: skip
    if not (config.lr > 0 and config.clip_range > 0):
        raise ConfigError(f"lr and clip_range must be > 0, got {config.lr} and {config.clip_range}")
    if config.lr_schedule not in ("constant", "linear"):
        raise ConfigError(f"lr_schedule={config.lr_schedule!r}; allowed: 'constant', 'linear'")
    if config.shaping_weight < 0 or config.shaping_radius < 1:
        raise ConfigError(f"shaping_weight must be >= 0 (0 = off) and shaping_radius >= 1, got "
                          f"{config.shaping_weight} and {config.shaping_radius}")  # fmt: skip
    if config.time_budget_s is not None and not config.time_budget_s > 0:
        raise ConfigError(f"time_budget_s={config.time_budget_s} must be > 0, or null for no wall-clock cap")
    for name in ("decision_views", "val_views"):
        value = getattr(config, name)
        if value is not None and not 1 <= value <= 8:
            raise ConfigError(f"{name} must be 1..8 or null, got {value}")
    if config.max_segments is not None and config.max_segments < 1:
        raise ConfigError(f"max_segments must be >= 1 or null, got {config.max_segments}")
    if config.policy == "mlp" and config.init != "none":
        raise ConfigError("policy=mlp trains from scratch: set init=none (BC checkpoints are HRM policies)")
    unknown = sorted(set(config.scratch) - set(PPOConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in scratch; allowed: the PPO config keys")
    resolve_device(config.device)


# ---------------------------------------------------------------------------------------
# Phase 1: the policy to start from
def bc_envs(run_dir: Path) -> set[str]:
    """The envs whose expert data a BC run trained on (its ``config.yaml``: env_id and mix_env_id)."""
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return set()
    if not isinstance(config, dict):
        return set()
    return {str(config[key]) for key in ("env_id", "mix_env_id") if config.get(key)}


def newest_bc_run(env_id: str, root: str | Path = "runs") -> Path | None:
    """The most recently written ``runs/bc-*`` run with a ``policy.pt`` that trained on ``env_id``.

    A BC run that never saw the enemy (the Foraging-only config) is passed over: PPO from it
    stays at the enemy-blind expert's success (its enemy code's embedding never had a gradient).
    """
    found = [p.parent for p in Path(root).glob("bc-*/policy.pt") if env_id in bc_envs(p.parent)]
    return max(found, key=lambda d: (d / "policy.pt").stat().st_mtime) if found else None


def resolve_init(init: str, progress: bool, env_id: str) -> Path | None:
    """The BC checkpoint directory (or file) PPO starts from; None for init=none."""
    if init == "none":
        return None
    if is_pretrained(init):
        try:
            return Path(resolve_pretrained(init))
        except PretrainedError as exc:
            raise ConfigError(f"init={init!r}: {exc}") from None
    if init != "auto":
        path = Path(init)
        if not (path.is_file() or (path / "policy.pt").is_file()):
            raise ConfigError(f"init={init!r}: no policy.pt there (give a BC run directory, 'auto' or 'none')")
        return path
    found = newest_bc_run(env_id)
    if found is not None:
        print(f"starting from the newest BC run that trained on {env_id}: {found}")
        return found
    from agents import bc

    out = Path(f"runs/bc-chase-mix-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    command = ["--config", str(BC_CONFIG_FOR_PPO), "--out", str(out)]
    print(f"no BC run with a policy.pt under runs/: training one first (python -m agents.bc {' '.join(command)})")
    code = bc.main(command + ([] if progress else ["--no-progress"]))
    if code != 0:
        raise ConfigError(f"the BC run for init failed (exit status {code})")
    return out


def policy_spec(config: PPOConfig, init: Path | None) -> tuple[str, dict[str, Any], Any, dict[str, Any]]:
    """``(policy type, policy kwargs, BC policy or None, facts)`` of a new run."""
    facts: dict[str, Any] = {"init": None if init is None else str(init)}
    if config.policy == "mlp":
        return "mlp", ({} if config.mlp_net_arch is None else {"net_arch": config.mlp_net_arch}), None, facts
    if init is None:
        kwargs = {"hrm_config": config.model, "preset": config.preset, "max_segments": config.max_segments,
                  "critic": config.critic}  # fmt: skip
        return "hrm", kwargs, None, facts
    if config.model:
        raise ConfigError("model=... applies to init=none only: a BC checkpoint fixes the architecture")
    bc_policy, record = load_policy(init, config.env_id)
    if not isinstance(bc_policy, HRMActorCriticPolicy):
        raise ConfigError(f"init {init}: a {record['policy_type']} policy; PPO fine-tunes HRM policies")
    kwargs = dict(policy_kwargs_of(bc_policy), critic=config.critic)
    if config.max_segments is not None:
        kwargs["max_segments"] = config.max_segments
    if config.decision_views is not None:
        kwargs["decision_views"] = config.decision_views
    facts.update(init_env_id=record["env_id"], init_extra=record["extra"].get("test"))
    return "hrm", kwargs, bc_policy, facts


def new_model(config: PPOConfig, env, policy_type: str, policy_kwargs: dict[str, Any], tb: str | None) -> HRMPPO:
    """SB3 PPO (:class:`HRMPPO`) with the run's settings and a policy of that type and kwargs."""
    hrm = policy_type == "hrm"
    learning_rate = config.lr if config.lr_schedule == "constant" else get_linear_fn(config.lr, 0.0, 1.0)
    model = HRMPPO(
        HRMActorCriticPolicy if hrm else "MlpPolicy", env, learning_rate=learning_rate, n_steps=config.n_steps,
        batch_size=config.batch_size, n_epochs=config.n_epochs, gamma=config.gamma, gae_lambda=config.gae_lambda,
        clip_range=config.clip_range, ent_coef=config.ent_coef, vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm, target_kl=config.target_kl, policy_kwargs=policy_kwargs,
        rollout_buffer_class=SegmentRolloutBuffer if hrm else None, tensorboard_log=tb, seed=config.seed,
        device=config.device, verbose=0,
    )  # fmt: skip
    model.value_warmup_rollouts = config.value_warmup_rollouts
    model.rollout_threads = config.rollout_threads
    model.frozen_prefixes = ("hrm.q_head",) if hrm and config.q_head == "frozen" else ()
    model.apply_freezing(False)
    return model


def build_model(config: PPOConfig, env, init: Path | None, tb: str | None) -> tuple[HRMPPO, dict[str, Any]]:
    """PPO with the policy class + kwargs of the BC checkpoint, loaded with its weights (checked)."""
    policy_type, policy_kwargs, bc_policy, facts = policy_spec(config, init)
    model = new_model(config, env, policy_type, policy_kwargs, tb)
    facts.update(policy_type=policy_type, policy_kwargs=policy_kwargs)
    if bc_policy is not None:
        # Every BC tensor must fit; only a new separate critic may be missing.
        missing, unexpected = model.policy.load_state_dict(bc_policy.state_dict(), strict=False)
        new_critic = [k for k in missing if not k.startswith("critic.")]
        if unexpected or new_critic:
            raise ConfigError(f"init {init}: weights do not fit the PPO policy (missing {new_critic}, "
                              f"unexpected {unexpected})")  # fmt: skip
        facts["init_max_prob_diff"] = init_prob_difference(bc_policy, model.policy, config)
        if facts["init_max_prob_diff"] != 0.0:
            raise ConfigError(f"PPO's policy does not reproduce the BC policy {init} (max prob diff "
                              f"{facts['init_max_prob_diff']})")  # fmt: skip
    return model, facts


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
# Phase 2: learn, with data-only resume checkpoints
def save_last(run: RunDirectory, state: PPOState, model: HRMPPO | None) -> None:
    """``last.pt``: the policy and its optimizer as tensors, the typed state as JSON."""
    tensors = {}
    if model is not None:
        state.timesteps, state.n_updates = int(model.num_timesteps), int(model._n_updates)
        tensors = {"policy": model.policy.state_dict(), "optimizer": model.policy.optimizer.state_dict()}
    elif run.has(LAST_FILE):  # a later phase keeps the last weights
        tensors = run.load_checkpoint(PPOState)[1]
    run.save_checkpoint(state, tensors)


def resumed_model(config: PPOConfig, state: PPOState, tensors: dict[str, Any], env, tb: str) -> HRMPPO:
    """The model of ``last.pt``: rebuilt from the recorded policy type and kwargs, then loaded."""
    model = new_model(config, env, state.policy_type, state.policy_kwargs, tb)
    try:
        model.policy.load_state_dict(tensors["policy"])
        model.policy.optimizer.load_state_dict(tensors["optimizer"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"{LAST_FILE}: tensors do not fit the policy: {exc}") from exc
    model.num_timesteps, model._n_updates = state.timesteps, state.n_updates
    return model


def learn(config: PPOConfig, run: RunDirectory, state: PPOState, progress: bool) -> None:
    """PPO to ``total_timesteps`` (or the optional time cap), validating and checkpointing."""
    seed_everything(config.seed + state.timesteps, config.num_threads)
    env = make_env(config, config.seed + state.timesteps)  # a resumed run gets fresh episodes
    tb = str(run.file("tb"))
    tensors = run.load_checkpoint(PPOState)[1] if run.has(LAST_FILE) else {}
    resuming = "policy" in tensors  # a run stopped before its first checkpoint starts afresh
    if resuming:
        model = resumed_model(config, state, tensors, env, tb)
        state.resumes += 1
        print(f"resuming {run.path} at {model.num_timesteps} steps")
    else:
        init = Path(config.init) if config.init not in ("none", "auto") else None
        model, facts = build_model(config, env, init, tb)
        state.policy_type, state.policy_kwargs = facts.pop("policy_type"), facts.pop("policy_kwargs")
        state.facts = facts
    state.parameters = sum(p.numel() for p in model.policy.parameters())
    callback = ValidationCallback(config, run, state, lambda: save_last(run, state, model))
    try:
        remaining = config.total_timesteps - model.num_timesteps
        if remaining > 0 and state.stopped_by != "time_budget_s":
            model.learn(remaining, callback=callback, progress_bar=progress, reset_num_timesteps=not resuming,
                        tb_log_name="ppo")  # fmt: skip
        if not state.history or state.history[-1]["timesteps"] != model.num_timesteps:
            if callback.model is None:  # learn() never ran (resumed at the end)
                callback.init_callback(model)
            callback.evaluate()  # the final policy competes for best too
    except KeyboardInterrupt:
        save_last(run, state, model)
        raise
    finally:
        env.close()
    state.phase = "scratch" if config.role == "main" else "done"
    save_last(run, state, model)


# ---------------------------------------------------------------------------------------
# Phase 3: the baseline from scratch
def scratch_baseline(config: PPOConfig, run: RunDirectory, state: PPOState, progress: bool) -> int:
    """PPO from scratch with SB3's MlpPolicy at the same number of steps, in ``DIR/scratch``."""
    if config.scratch_baseline and config.policy == "hrm":
        settings = {**to_dict(config), **config.scratch}
        settings["batch_size"] = min(settings["batch_size"], settings["n_steps"] * settings["n_envs"])
        settings.update(policy="mlp", init="none", total_timesteps=state.timesteps, scratch_baseline=False,
                        role="baseline", time_budget_s=None)  # fmt: skip
        scratch_config = from_dict(PPOConfig, settings)
        scratch_dir = run.file(SCRATCH_DIR)
        if not (scratch_dir / "metrics.json").is_file():
            print(f"\nPPO from scratch, SB3 MlpPolicy, {state.timesteps} steps -> {scratch_dir}")
            if (scratch_dir / "run.json").is_file():
                scratch_run = RunDirectory.open(scratch_dir, COMMAND)
            else:
                scratch_run = RunDirectory.create(scratch_dir, COMMAND)
                scratch_run.write_text("config.yaml", yaml_dump(to_dict(scratch_config)))
            code = train(scratch_config, scratch_run, progress=progress)
            torch.set_num_threads(config.num_threads)
            if code != 0:
                return code
    state.phase = "compare"
    save_last(run, state, None)
    return 0


def finish_scratch(config: PPOConfig, run: RunDirectory, state: PPOState, started: float) -> int:
    metrics = {"env_id": config.env_id, "policy": config.policy, "timesteps": state.timesteps,
               "train_seconds": round(state.train_seconds, 1), "wall_seconds": round(time.time() - started, 1),
               "history": state.history, "config": to_dict(config)}  # fmt: skip
    run.write_json("metrics.json", metrics)
    return 0


# ---------------------------------------------------------------------------------------
# Phase 4: the comparison and the report
def row_policy(path: Path, env_id: str, name: str):
    """The policy of a comparison row, or None (with a note) when its checkpoint is gone."""
    if (path / POLICY_FILE).is_file() or path.is_file():
        return load_policy(path, env_id)[0]
    print(f"note: no checkpoint at {path}: the {name!r} row is left out of the comparison", file=sys.stderr)
    return None


def comparison(config: PPOConfig, run: RunDirectory, state: PPOState, layouts: str | None) -> dict[str, Any]:
    """Every row on the test episodes (and ``layouts``), PPO on Foraging, the dodge layouts."""
    ppo_policy = load_policy(run.verified(POLICY_FILE), config.env_id)[0]
    init = state.facts.get("init")
    policies = {
        "bc": row_policy(Path(init), config.env_id, "bc") if init else None,
        "ppo": ppo_policy,
        "ppo scratch (mlp)": row_policy(run.file(SCRATCH_DIR), config.env_id, "ppo scratch (mlp)")
        if config.scratch_baseline else None,
    }  # fmt: skip
    seeds = test_seeds(config.test_seed, config.test_episodes)
    decisions: dict[str, GreedyDecisions] = {}  # each policy's decisions, shared by all its rows
    print(f"\ncomparison on {len(seeds)} test episodes of {config.env_id}:", flush=True)
    result: dict[str, Any] = {"comparison": compare(policies, config.env_id, config.env_kwargs, seeds=seeds,
                                                    loop_escape=config.loop_escape, decisions=decisions)}  # fmt: skip
    result["comparison_layouts"] = None
    if layouts:
        grids = load_layouts(layouts, config.env_id)
        print(f"comparison on the {len(grids)} layouts of {layouts}:", flush=True)
        result["comparison_layouts"] = compare(policies, config.env_id, config.env_kwargs, layouts=grids,
                                               loop_escape=config.loop_escape, decisions=decisions)  # fmt: skip
    result.update(foraging_rows(config, policies["bc"], ppo_policy, decisions))
    save_policy(run.path, ppo_policy, config.env_id, config.env_kwargs,
                extra={"source": "ppo", "validation": state.best["row"], "test": result["comparison"]["ppo"],
                       "foraging": result["foraging"]})  # fmt: skip
    run.recorded(POLICY_FILE)
    run.recorded("sb3_model.zip")
    dodges = dodge_layouts(ppo_policy, config.env_id, config.env_kwargs, seeds[: config.dodge_search_episodes],
                           decisions["ppo"])  # fmt: skip
    run.save_arrays("dodge_layouts.npz", layouts=dodges)
    result["dodge_layouts"] = int(len(dodges))
    return result


def foraging_rows(config: PPOConfig, bc_policy, ppo_policy, decisions: dict[str, GreedyDecisions]) -> dict:
    """BC and PPO on plain Foraging (did PPO forget the task without the enemy?), greedy and with
    the loop escape; ``None`` rows where not asked for."""
    rows: dict[str, Any] = {key: None for key in ("foraging", "foraging_loop_escape", "foraging_bc",
                                                  "foraging_bc_loop_escape")}  # fmt: skip
    if not config.foraging_episodes:
        return rows
    seeds = test_seeds(config.test_seed, config.foraging_episodes)
    for key, policy, name in (("foraging", ppo_policy, "ppo"), ("foraging_bc", bc_policy, "bc")):
        if policy is None:
            continue
        policy.set_training_mode(False)
        shared = decisions.get(name)
        rows[key] = score(run_episodes(policy_actor(policy, decisions=shared), FORAGING_ID, {}, seeds=seeds,
                                       label_states=False))  # fmt: skip
        if config.loop_escape:
            escape = LoopEscape(policy, decisions=shared)
            rows[f"{key}_loop_escape"] = score(run_episodes(escape, FORAGING_ID, {}, seeds=seeds, label_states=False))
    return rows


def report(config: PPOConfig, run: RunDirectory, state: PPOState, result: dict[str, Any], started: float,
           layouts: str | None) -> None:  # fmt: skip
    """``metrics.json`` (with the machine), the tables and ``curves.png``."""
    scratch_metrics = run.file(SCRATCH_DIR) / "metrics.json"
    metrics = {
        "env_id": config.env_id, "policy": config.policy, "q_head": config.q_head, "parameters": state.parameters,
        "timesteps": state.timesteps, "stopped_by": state.stopped_by, "train_seconds": round(state.train_seconds, 1),
        "steps_per_s": round(state.timesteps / max(state.train_seconds, 1e-9), 1),
        "wall_seconds": round(time.time() - started, 1), "machine": machine_facts(config.device),
        "init": state.facts, "best_validation": state.best["row"], **result, "layouts_file": layouts,
        "history": state.history,
        "scratch_history": json.loads(scratch_metrics.read_text())["history"] if scratch_metrics.is_file() else None,
        "config": to_dict(config),
    }  # fmt: skip
    run.write_json("metrics.json", metrics)
    with contextlib.suppress(Exception):  # the picture is a convenience; never fail a run on it
        plot_curves(metrics, run.file("curves.png"))
        run.recorded("curves.png")
    print(f"\n{config.env_id}, {config.test_episodes} test episodes (seed {config.test_seed}):")
    print(comparison_table(result["comparison"]))
    if result["comparison_layouts"]:
        print(f"\n{layouts}:\n{comparison_table(result['comparison_layouts'])}")
    if result["foraging"]:
        named = {"bc": "foraging_bc", "bc + loop escape": "foraging_bc_loop_escape", "ppo": "foraging",
                 "ppo + loop escape": "foraging_loop_escape"}  # fmt: skip
        rows = {name: result[key] for name, key in named.items() if result.get(key)}
        print(f"\n{FORAGING_ID} (no enemy), {config.foraging_episodes} episodes:\n{format_table(rows)}")
    if result["dodge_layouts"]:
        print(f"\n{result['dodge_layouts']} of the first {config.dodge_search_episodes} test layouts: the blind "
              f"expert is caught, PPO succeeds.")  # fmt: skip
        gif = write_dodge_gif(config, run, min(config.gif_episodes, result["dodge_layouts"]))
        if gif:
            print(f"PPO beside the blind expert on {gif}")
        print(f"Watch one:\n  python -m agents.render --checkpoint {run.path} --compare-expert blind --layouts "
              f"{run.file('dodge_layouts.npz')} --episodes 1 --human")  # fmt: skip
    print(f"\nrun: {run.path}  ({metrics['wall_seconds']:.0f}s wall, {state.train_seconds:.0f}s PPO, "
          f"{state.timesteps:,} steps, {metrics['steps_per_s']:.0f} steps/s)")  # fmt: skip


def write_dodge_gif(config: PPOConfig, run: RunDirectory, episodes: int) -> Path | None:
    """``DIR/ppo_vs_blind.gif``: PPO beside the blind expert on the first ``episodes`` dodge layouts."""
    if episodes < 1:
        return None
    from agents import render

    gif = run.file(DODGE_GIF)
    gif.unlink(missing_ok=True)
    argv = ["--checkpoint", str(run.path), "--compare-expert", "blind", "--layouts",
            str(run.file("dodge_layouts.npz")), "--episodes", str(episodes), "--gif", str(gif)]  # fmt: skip
    with contextlib.redirect_stdout(sys.stderr):
        code = render.main(argv)
    if code != 0 or not gif.is_file():
        print(f"note: the GIF was not written (agents.render exit status {code})", file=sys.stderr)
        return None
    run.recorded(DODGE_GIF)
    return gif


# ---------------------------------------------------------------------------------------
def train(config: PPOConfig, run: RunDirectory, progress: bool = True, layouts: str | None = None) -> int:
    """One PPO run, phase by phase (module docstring); resumes whatever phase ``last.pt`` says."""
    check_config(config)
    started = time.time()
    state = run.load_checkpoint(PPOState)[0] if run.has(LAST_FILE) else PPOState()
    try:
        if state.phase == "train":
            learn(config, run, state, progress)
        if config.role == "baseline":
            return finish_scratch(config, run, state, started)
        if state.phase == "scratch":
            code = scratch_baseline(config, run, state, progress)
            if code != 0:
                return code
        with torch_threads(config.test_threads):
            result = comparison(config, run, state, layouts)
        report(config, run, state, result, started, layouts)
    except KeyboardInterrupt:
        return interrupted_exit(lambda: None if run.has(LAST_FILE) else save_last(run, state, None), COMMAND,
                                run.path, f"in the {state.phase} phase")  # fmt: skip
    state.phase = "done"
    save_last(run, state, None)
    return 0


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


def compare_again(run_dir: str, layouts: str | None) -> int:
    """``--compare DIR``: the comparison of a finished run, again (e.g. on other layouts)."""
    run = RunDirectory.open(run_dir, COMMAND)
    config = load_config(PPOConfig, run.verified("config.yaml"))
    state = run.load_checkpoint(PPOState)[0] if run.has(LAST_FILE) else None
    if state is None or state.phase != "done":
        raise ConfigError(f"{run_dir}: the run has not finished (use --resume {run_dir})")
    if layouts:
        load_layouts(layouts, config.env_id)  # fail before any work
    started = time.time()
    with torch_threads(config.test_threads):
        result = comparison(config, run, state, layouts)
    report(config, run, state, result, started, layouts)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.compare:
            if args.config or args.overrides or args.init or args.resume:
                raise ConfigError("--compare uses the run's own config: drop --config/--set/--init/--resume")
            return compare_again(args.compare, args.layouts)
        if args.layouts:
            load_layouts(args.layouts, check_env_id(PPOConfig.env_id))  # fail before training, not after
        overrides = list(args.overrides) + ([f"init={args.init}"] if args.init else [])
        if args.resume and args.init:
            raise ConfigError("--resume continues a run with its own config: drop --init")
        config, run, resuming = open_run(
            PPOConfig, COMMAND, config_path=args.config, overrides=overrides, out=args.out, resume=args.resume,
            default_config=DEFAULT_CONFIG, default_out=lambda c: f"runs/ppo-{c.env_id}-{c.policy}", check=check_config,
        )  # fmt: skip
        if not resuming and config.policy == "hrm":
            init = resolve_init(config.init, not args.no_progress, config.env_id)
            if init is not None:
                config = replace(config, init=str(init))
                run.write_text("config.yaml", yaml_dump(to_dict(config)))
        return train(config, run, progress=not args.no_progress, layouts=args.layouts)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    sys.exit(main())
