"""The PPO run's training envs: Chase with optional shaping, plus plain Foraging envs to rehearse on."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from hrm_gym.wrappers import EnemyDistanceShaping

FORAGING_ID = "HRMForaging-v0"
#: Chase kwargs a plain Foraging env does not take (dropped for the rehearsal envs).
CHASE_ONLY_KWARGS = ("enemy_pace", "caught_penalty", "min_enemy_distance")


def monitored(env_id: str, env_kwargs: dict[str, Any], shaping: dict[str, Any] | None = None):
    """An env factory: ``Monitor`` (the env's own returns) inside the optional shaping."""

    def make() -> gym.Env:
        env = Monitor(gym.make(env_id, **env_kwargs))
        return EnemyDistanceShaping(env, **shaping) if shaping else env

    return make


def make_env(config: Any, seed: int):
    """The training envs: ``n_envs - foraging_envs`` of ``env_id``, then plain Foraging ones.

    Env ``i`` is seeded with ``seed + i`` (as SB3's ``make_vec_env`` does). Meeting enemy-free
    grids keeps the policy solving them while it learns to dodge.
    """
    foraging_kwargs = {k: v for k, v in config.env_kwargs.items() if k not in CHASE_ONLY_KWARGS}
    shaping = None
    if config.shaping_weight > 0:
        shaping = {"weight": config.shaping_weight, "radius": config.shaping_radius, "gamma": config.gamma}
    makers = [monitored(config.env_id, config.env_kwargs, shaping)] * (config.n_envs - config.foraging_envs)
    makers += [monitored(FORAGING_ID, foraging_kwargs)] * config.foraging_envs
    vec = (SubprocVecEnv if config.vec_env == "subproc" else DummyVecEnv)(makers)
    vec.seed(seed)
    return vec
