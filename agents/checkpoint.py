"""Policy checkpoints as plain data: tensors plus JSON-able facts, never pickled objects.

``save_policy(dir, policy, ...)`` writes ``dir/policy.pt`` (loaded with
``torch.load(weights_only=True)``, so a crafted file cannot run code) and, for SB3 users,
``dir/sb3_model.zip`` (``PPO.load`` works on it). ``load_policy(dir)`` rebuilds the policy from
the recorded env id, env kwargs and policy kwargs, and checks that every tensor fits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.policies import ActorCriticPolicy

import hrm_gym  # noqa: F401  (registers the envs)
from agents.common.records import read_record, save_record
from agents.common.run import check_env_id
from agents.config import ConfigError
from agents.policy import HRMActorCriticPolicy

FORMAT = "hrm-gym-policy"
FORMAT_VERSION = 1
POLICY_FILE = "policy.pt"
POLICY_TYPES = {"hrm": HRMActorCriticPolicy, "mlp": ActorCriticPolicy}


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, of another format or for another env."""


def policy_type_of(policy: ActorCriticPolicy) -> str:
    return "hrm" if isinstance(policy, HRMActorCriticPolicy) else "mlp"


def policy_kwargs_of(policy: ActorCriticPolicy) -> dict[str, Any]:
    """The JSON-able kwargs that rebuild ``policy`` (beyond its spaces)."""
    if isinstance(policy, HRMActorCriticPolicy):
        return {
            "hrm_config": policy.hrm_config,
            "preset": policy.preset,
            "max_segments": policy.max_segments,
            "critic": policy.critic_kind,
            "action_mask": policy.action_mask,
            "decision_views": policy.decision_views,
            "view_keep": policy.view_keep,
        }
    return {"net_arch": policy.net_arch}


def build_policy(env: gym.Env, policy_type: str, policy_kwargs: dict[str, Any], lr: float = 3e-4) -> ActorCriticPolicy:
    """A fresh policy of ``policy_type`` ("hrm" or "mlp") for ``env``'s spaces."""
    if policy_type not in POLICY_TYPES:
        raise ValueError(f"unknown policy type {policy_type!r}; allowed: {sorted(POLICY_TYPES)}")
    cls = POLICY_TYPES[policy_type]
    return cls(env.observation_space, env.action_space, lambda _: lr, **policy_kwargs)


def save_policy(
    directory: str | Path,
    policy: ActorCriticPolicy,
    env_id: str,
    env_kwargs: dict[str, Any],
    extra: dict[str, Any] | None = None,
    filename: str = POLICY_FILE,
    sb3_zip: bool = True,
) -> Path:
    """Write the policy checkpoint (and an SB3 ``.zip`` beside it); return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "env_id": env_id,
        "env_kwargs_json": json.dumps(env_kwargs, sort_keys=True),
        "policy_type": policy_type_of(policy),
        "policy_kwargs_json": json.dumps(policy_kwargs_of(policy), sort_keys=True),
        "extra_json": json.dumps(extra or {}, sort_keys=True),
        "state_dict": {k: v.detach().cpu() for k, v in policy.state_dict().items()},
    }
    path = directory / filename
    save_record(record, path)
    if sb3_zip:
        save_sb3_zip(directory / "sb3_model.zip", policy, env_id, env_kwargs)
    return path


def save_sb3_zip(path: Path, policy: ActorCriticPolicy, env_id: str, env_kwargs: dict[str, Any]) -> None:
    """The policy inside an SB3 PPO ``.zip`` (``PPO.load(path)`` gives it back)."""
    from stable_baselines3 import PPO

    env = gym.make(env_id, **env_kwargs)
    model = PPO(type(policy), env, policy_kwargs=policy_kwargs_of(policy), n_steps=8, batch_size=8, device="cpu")
    model.policy.load_state_dict(policy.state_dict())
    model.save(path)
    env.close()


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checked record of a checkpoint file (or of ``dir/policy.pt``)."""
    return read_record(
        path, default_file=POLICY_FILE, fmt=FORMAT, version=FORMAT_VERSION,
        json_keys=("env_kwargs", "policy_kwargs", "extra"), what="policy checkpoint", error=CheckpointError,
    )  # fmt: skip


def load_policy(
    path: str | Path, env_id: str | None = None, device: str | torch.device = "cpu"
) -> tuple[ActorCriticPolicy, dict[str, Any]]:
    """Rebuild a saved policy; ``env_id`` (optional) must be the env it was trained on.

    A checkpoint of one grid env also serves another env with the same spaces (Foraging and
    Chase share theirs); pass the env you will run it on.
    """
    record = read_checkpoint(path)
    trained_on = record["env_id"]
    try:  # an id like "module:Env-v0" would make gym.make import that module
        check_env_id(trained_on)
        if env_id is not None:
            check_env_id(env_id)
    except ConfigError as exc:
        raise CheckpointError(f"{record['path']}: {exc}") from None
    env = gym.make(env_id or trained_on, **(record["env_kwargs"] if env_id in (None, trained_on) else {}))
    trained_env = gym.make(trained_on, **record["env_kwargs"])
    if (
        env_id is not None
        and env_id != trained_on
        and (env.observation_space != trained_env.observation_space or env.action_space != trained_env.action_space)
    ):
        raise CheckpointError(
            f"{record['path']} was trained on {trained_on} (observations {trained_env.observation_space}, "
            f"actions {trained_env.action_space}); {env_id} has {env.observation_space} and {env.action_space}"
        )
    policy = build_policy(trained_env, record["policy_type"], record["policy_kwargs"])
    try:
        missing, unexpected = policy.load_state_dict(record["state_dict"], strict=False)
    except RuntimeError as exc:  # a tensor of the wrong shape
        raise CheckpointError(f"{record['path']}: tensors do not fit the policy: {exc}") from exc
    if missing or unexpected:
        raise CheckpointError(
            f"{record['path']}: tensors do not fit the policy (missing {missing}, unexpected {unexpected})"
        )
    env.close()
    trained_env.close()
    return policy.to(device), record
