"""Small wrappers for variations of the hrm-gym environments.

``RandomDihedralView``: each episode is seen in one of the 8 rotations/mirrors of the grid,
drawn at reset, with the agent's moves mapped back. The task is the same (the rules have no
preferred direction); a learner that trains on all views acts the same way in each, which is
what a vote over the views at decision time assumes.

``EnemyDistanceShaping``: potential-based reward shaping for ``HRMForagingChase-v0``. The agent
pays as the enemy closes in and is paid back as it gets away, so that the step which walks into
the enemy's reach is the one that gets the blame, not only the capture several steps later.
With ``F = gamma * phi(s') - phi(s)`` (``phi = 0`` after a terminal step) the shaping never
changes which policies are optimal (Ng, Harada and Russell, 1999): the shaped discounted return
of an episode is its own minus ``phi(s_0)``, and ``phi(s_0) = 0`` (every episode starts with the
agent on the nest, out of the enemy's reach).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from hrm_gym.core.symmetry import INVERSE_ACTION_PERMUTATIONS, NUM_SYMMETRIES, transform_grids


class EnemyDistanceShaping(gym.Wrapper):
    """Add ``gamma * phi(s') - phi(s)`` to each reward, ``phi = -weight * max(0, radius - d) / radius``.

    ``d`` is the number of steps the enemy needs to reach the agent
    (:meth:`hrm_gym.foraging.chase.ForagingChaseEnv.enemy_distance`; ``inf`` on the nest). The
    unshaped reward is kept in ``info["unshaped_reward"]``; wrap a ``Monitor`` *inside* this
    wrapper to log the env's own returns.

    Args:
        env: a ``HRMForagingChase-v0`` env (anything whose ``unwrapped`` has ``enemy_distance()``).
        weight: ``-phi`` when the enemy is on the agent's heels (> 0).
        radius: distances at or beyond it cost nothing (an integer >= 1).
        gamma: the learner's discount (the shaping is policy-invariant for this gamma).
    """

    def __init__(self, env: gym.Env, weight: float = 2.0, radius: int = 5, gamma: float = 0.99):
        super().__init__(env)
        if not callable(getattr(env.unwrapped, "enemy_distance", None)):
            raise ValueError(
                f"EnemyDistanceShaping needs an env with an enemy (HRMForagingChase-v0), got {env.unwrapped!r}"
            )
        if not (isinstance(weight, int | float) and math.isfinite(weight) and weight > 0):
            raise ValueError(f"weight must be a finite number > 0, got {weight!r}")
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
            raise ValueError(f"radius must be an integer >= 1, got {radius!r}")
        if not (isinstance(gamma, int | float) and 0.0 < gamma <= 1.0):
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
        self.weight, self.radius, self.gamma = float(weight), radius, float(gamma)
        self._potential = 0.0

    def potential(self) -> float:
        """``phi`` of the current state: 0 out of reach, ``-weight`` at distance 0."""
        distance = self.env.unwrapped.enemy_distance()
        return -self.weight * max(0.0, self.radius - distance) / self.radius

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._potential = self.potential()
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        following = 0.0 if terminated else self.potential()
        shaped = float(reward) + self.gamma * following - self._potential
        self._potential = following
        info["unshaped_reward"] = float(reward)
        return obs, shaped, terminated, truncated, info


class RandomDihedralView(gym.Wrapper):
    """Show each episode in a random one of the 8 symmetric views of the grid; map actions back.

    ``info["view"]`` holds the episode's view ``k`` (:mod:`hrm_gym.core.symmetry`); the positions
    in ``info`` stay in the env's own frame. The views are drawn from a generator seeded by the
    first ``reset(seed=...)`` (its own stream: the layouts are the env's, seed for seed).

    Args:
        env: an env with square 2-D grid observations and the 4 grid moves (Foraging, Chase, Maze).
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        shape = getattr(env.observation_space, "shape", None)
        if shape is None or len(shape) != 2 or shape[0] != shape[1] or getattr(env.action_space, "n", None) != 4:
            raise ValueError(
                f"RandomDihedralView needs square grid observations and the 4 grid moves, got "
                f"{env.observation_space} / {env.action_space}"
            )
        self.view = 0
        self._rng = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._rng = np.random.default_rng([int(seed), 0x5EED])
        obs, info = self.env.reset(seed=seed, options=options)
        self.view = int(self._rng.integers(NUM_SYMMETRIES))
        info["view"] = self.view
        return transform_grids(obs, self.view), info

    def step(self, action: Any):
        if isinstance(action, bool) or not isinstance(action, int | np.integer) or not 0 <= action < 4:
            return self.env.step(action)  # the env's own error names the bad action
        obs, reward, terminated, truncated, info = self.env.step(int(INVERSE_ACTION_PERMUTATIONS[self.view][action]))
        info["view"] = self.view
        return transform_grids(obs, self.view), reward, terminated, truncated, info
