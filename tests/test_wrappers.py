"""``hrm_gym.wrappers.EnemyDistanceShaping`` and the distance it reads (``enemy_distance``)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import hrm_gym  # noqa: F401
from hrm_gym.foraging.chase import ForagingChaseEnv
from hrm_gym.wrappers import EnemyDistanceShaping
from tests.test_chase import OPEN, grid, make, reference_distances

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3

CORRIDOR = OPEN  # nest top-left, food bottom-left, enemy bottom-right


def test_enemy_distance_is_the_enemys_bfs_distance_and_inf_on_the_nest():
    env, _, info = make(CORRIDOR, enemy_pace=(0, 1))  # an enemy that never moves
    assert env.enemy_distance() == math.inf  # the agent starts on the nest
    env.step(RIGHT)
    assert env.enemy_distance() == 7 + 6  # (0, 1) -> (7, 7): Manhattan in the open
    env.step(DOWN)
    layout = grid(CORRIDOR)
    expected = reference_distances(np.where(layout == 5, 0, layout), False, (1, 1))[(7, 7)]
    assert env.enemy_distance() == expected == 12


def test_enemy_distance_before_reset_raises():
    with pytest.raises(RuntimeError, match="call reset"):
        ForagingChaseEnv().enemy_distance()


def test_enemy_distance_inf_when_cut_off():
    rows = ["N.....#.", "......#.", "......#.", "......#.", "......#.", "......#.", "......#E", "F.....#."]
    env, _, _ = make(rows)
    env.step(DOWN)
    assert env.enemy_distance() == math.inf


def test_shaped_reward_is_the_potential_difference():
    env, _, _ = make(CORRIDOR, enemy_pace=(0, 1))
    wrapped = EnemyDistanceShaping(env, weight=2.0, radius=4, gamma=0.9)
    wrapped.reset(seed=0, options={"layout": grid(CORRIDOR)})
    assert wrapped.potential() == 0.0  # on the nest
    # walk towards the still enemy along the right edge: distances 13, 12, ... on row 0 then down
    actions = [RIGHT] * 7 + [DOWN] * 5
    potentials = [0.0]
    for action in actions:
        _, reward, terminated, _, info = wrapped.step(action)
        d = env.enemy_distance()
        phi = -2.0 * max(0.0, 4 - d) / 4
        assert reward == pytest.approx(info["unshaped_reward"] + 0.9 * phi - potentials[-1])
        potentials.append(phi)
        assert not terminated
    assert potentials[-1] == -2.0 * (4 - 2) / 4  # (5, 7): two steps from the enemy at (7, 7)
    _, reward, terminated, _, info = wrapped.step(DOWN)  # (6, 7): one step away
    assert not terminated and reward == pytest.approx(0.9 * -1.5 - -1.0)
    _, reward, terminated, _, info = wrapped.step(DOWN)  # onto the enemy: caught, phi(end) = 0
    assert terminated and info["caught"] and info["unshaped_reward"] == -10.0
    assert reward == pytest.approx(-10.0 - -1.5)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_shaping_telescopes_to_the_env_return_with_gamma_one(seed):
    """With gamma=1 the shaped return is the env's own return minus phi(s_0) (= 0 here)."""
    wrapped = EnemyDistanceShaping(gym.make("HRMForagingChase-v0"), weight=3.0, radius=6, gamma=1.0)
    rng = np.random.default_rng(seed)
    _, _ = wrapped.reset(seed=seed)
    shaped = unshaped = 0.0
    done = False
    while not done:
        _, reward, terminated, truncated, info = wrapped.step(int(rng.integers(4)))
        shaped += reward
        unshaped += info["unshaped_reward"]
        done = terminated or truncated
    assert shaped == pytest.approx(unshaped)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weight": 0.0}, "weight"),
        ({"weight": float("nan")}, "weight"),
        ({"radius": 0}, "radius"),
        ({"radius": 2.5}, "radius"),
        ({"gamma": 0.0}, "gamma"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EnemyDistanceShaping(ForagingChaseEnv(), **kwargs)


def test_an_env_without_an_enemy_is_refused():
    with pytest.raises(ValueError, match="HRMForagingChase-v0"):
        EnemyDistanceShaping(gym.make("HRMForaging-v0"))


# ---- RandomDihedralView ------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", ["HRMForagingChase-v0", "HRMMaze-v0"])
def test_random_view_is_the_same_episode_turned(env_id):
    """Mapped actions replay the env's own episode; every observation is its turned copy."""
    from hrm_gym.core.symmetry import ACTION_PERMUTATIONS, transform_grids
    from hrm_gym.wrappers import RandomDihedralView

    views = set()
    for seed in range(12):
        wrapped, plain = RandomDihedralView(gym.make(env_id)), gym.make(env_id)
        obs, info = wrapped.reset(seed=seed)
        plain_obs, _ = plain.reset(seed=seed)
        k = info["view"]
        views.add(k)
        assert np.array_equal(obs, transform_grids(plain_obs, k))
        rng = np.random.default_rng(seed)
        for _ in range(30):
            action = int(rng.integers(4))  # a move in the env's frame ...
            obs, reward, terminated, truncated, info = wrapped.step(int(ACTION_PERMUTATIONS[k][action]))  # ... as seen
            plain_obs, plain_reward, plain_terminated, plain_truncated, _ = plain.step(action)
            assert np.array_equal(obs, transform_grids(plain_obs, k)) and reward == plain_reward
            assert (terminated, truncated) == (plain_terminated, plain_truncated) and info["view"] == k
            if terminated or truncated:
                break
    assert len(views) >= 5  # the views are drawn, not fixed


def test_random_view_is_seeded_and_refuses_what_it_cannot_turn():
    from hrm_gym.wrappers import RandomDihedralView

    first = [RandomDihedralView(gym.make("HRMForaging-v0")).reset(seed=s)[1]["view"] for s in range(8)]
    again = [RandomDihedralView(gym.make("HRMForaging-v0")).reset(seed=s)[1]["view"] for s in range(8)]
    assert first == again
    with pytest.raises(ValueError, match="square grid observations and the 4 grid moves"):
        RandomDihedralView(gym.make("HRMSudoku-v0"))
    wrapped = RandomDihedralView(gym.make("HRMForaging-v0"))
    wrapped.reset(seed=0)
    with pytest.raises(Exception, match="7"):
        wrapped.step(7)  # the env's own invalid-action error
