"""Contract tests every registered environment must pass: Gymnasium and SB3 checkers,
rendering, seeding, registration, and the no-torch rule of ``hrm_gym``."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from hrm_gym import ENV_SPECS

ENV_IDS = sorted(ENV_SPECS)
RENDER_MODES = ["rgb_array", "ansi"]


def _sample_action(env: gym.Env, info: dict, rng: np.random.Generator) -> int:
    """A random action; a legal one where the env publishes an action mask."""
    mask = info.get("action_mask")
    if mask is not None:
        return int(rng.choice(np.flatnonzero(mask)))
    return int(rng.integers(env.action_space.n))


def _rollout(env_id: str, seed: int, steps: int = 60) -> list[tuple]:
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    trajectory = [(obs.tobytes(), 0.0, False, False)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(_sample_action(env, info, rng))
        trajectory.append((obs.tobytes(), reward, terminated, truncated))
        if terminated or truncated:
            obs, info = env.reset()
            trajectory.append((obs.tobytes(), 0.0, False, False))
    env.close()
    return trajectory


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_observation_space_is_a_uint8_grid(env_id):
    env = gym.make(env_id)
    space = env.observation_space
    assert isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 2
    assert isinstance(env.action_space, gym.spaces.Discrete)
    obs, info = env.reset(seed=0)
    assert space.contains(obs)
    if env_id == "HRMSudoku-v0":
        assert space.shape == (9, 9) and space.high.max() == 9 and env.action_space.n == 729
    else:
        assert space.high.max() == 5 and space.low.min() == 0 and env.action_space.n == 4


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)
        gym_check_env(gym.make(env_id).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("render_mode", RENDER_MODES)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env_render_modes(env_id, render_mode):
    gym_check_env(gym.make(env_id, render_mode=render_mode), skip_render_check=False)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_check_env(env_id):
    sb3_check_env(gym.make(env_id).unwrapped, warn=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_rgb_array_is_a_picture(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=1)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape[0] >= 100 and frame.shape[1] >= 100
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) >= 4  # not blank
    text = gym.make(env_id, render_mode="ansi")
    text.reset(seed=1)
    assert isinstance(text.render(), str) and len(text.render().splitlines()) >= 9


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_trajectory(env_id):
    assert _rollout(env_id, seed=7) == _rollout(env_id, seed=7)
    first_obs = {_rollout(env_id, seed=s, steps=0)[0][0] for s in range(4)}
    assert len(first_obs) > 1, "different seeds should give different layouts"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_before_reset_and_after_end_raise(env_id):
    env = gym.make(env_id).unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_invalid_actions_are_rejected(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    n = env.action_space.n
    for bad in (-1, n, 1.5, "up", None):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)


def test_unknown_reset_option_is_rejected():
    env = gym.make("HRMForaging-v0").unwrapped
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(seed=0, options={"layuot": None})


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_envs_are_made_without_importing_hrm_gym():
    """The ``gymnasium.envs`` entry point registers every env on ``import gymnasium``."""
    code = "import gymnasium as gym\n" + "".join(f"gym.make({env_id!r})\n" for env_id in ENV_IDS)
    result = _run_python(code)
    assert result.returncode == 0, result.stderr


def test_hrm_gym_never_imports_torch_or_agents():
    code = (
        "import sys, gymnasium as gym, hrm_gym\n"
        + "".join(
            f"e = gym.make({env_id!r}, render_mode='rgb_array'); e.reset(seed=0); e.render()\n" for env_id in ENV_IDS
        )
        + "bad = [m for m in ('torch', 'agents', 'expert') if m in sys.modules]\n"
        + "assert not bad, bad\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
