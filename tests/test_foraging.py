"""Rule-by-rule tests of ``HRMForaging-v0`` (DESIGN 1.A and 2)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hrm_gym.core.grid import AGENT, EMPTY, FOOD, NEST, UNREACHABLE, WALL, bfs_distances
from hrm_gym.foraging.env import FOOD_REWARD, RETURN_REWARD, ForagingEnv

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
CHARS = {".": EMPTY, "#": WALL, "F": FOOD, "N": NEST, "A": AGENT, "E": 5}

# 8x8 hand-made layout: nest at (3, 3), food at (3, 6), a wall at (2, 3).
OPEN = [
    "........",
    "........",
    "...#....",
    "...N..F.",
    "........",
    "........",
    "........",
    "........",
]


def grid(rows: list[str]) -> np.ndarray:
    return np.array([[CHARS[ch] for ch in row] for row in rows], dtype=np.int64)


def make(rows: list[str] = OPEN, **kwargs) -> tuple[ForagingEnv, np.ndarray, dict]:
    env = ForagingEnv(size=len(rows), **kwargs)
    obs, info = env.reset(seed=0, options={"layout": grid(rows)})
    return env, obs, info


# ---- moves, walls, edges ----------------------------------------------------------------
@pytest.mark.parametrize(("action", "expected"), [(DOWN, (4, 3)), (LEFT, (3, 2)), (RIGHT, (3, 4))])
def test_moves_in_each_direction(action, expected):
    env, _, _ = make()
    obs, reward, terminated, truncated, info = env.step(action)
    assert info["agent_pos"] == expected
    assert obs[expected] == AGENT
    assert obs[3, 3] == NEST  # the nest shows again once the agent leaves it
    assert (reward, terminated, truncated, info["steps"]) == (0.0, False, False, 1)


def test_up_moves_when_free():
    env, _, _ = make()
    env.step(DOWN)
    _, _, _, _, info = env.step(UP)
    assert info["agent_pos"] == (3, 3)


def test_wall_leaves_agent_in_place_and_counts_the_step():
    env, obs_before, _ = make()
    obs, reward, terminated, truncated, info = env.step(UP)  # (2, 3) is a wall
    assert info["agent_pos"] == (3, 3)
    assert info["steps"] == 1
    np.testing.assert_array_equal(obs, obs_before)
    assert (reward, terminated, truncated) == (0.0, False, False)


@pytest.mark.parametrize(
    ("rows", "action"),
    [
        (["N.......", "........", "........", "........", "........", "........", "........", ".......F"], UP),
        (["N.......", "........", "........", "........", "........", "........", "........", ".......F"], LEFT),
        (["F.......", "........", "........", "........", "........", "........", "........", ".......N"], DOWN),
        (["F.......", "........", "........", "........", "........", "........", "........", ".......N"], RIGHT),
    ],
)
def test_edges_leave_agent_in_place(rows, action):
    env, _, info0 = make(rows)
    _, _, _, _, info = env.step(action)
    assert info["agent_pos"] == info0["agent_pos"]
    assert info["steps"] == 1


# ---- food, phase switch, success ---------------------------------------------------------
def test_food_collection_and_return():
    env, _, info = make()
    assert info == {"agent_pos": (3, 3), "food_pos": (3, 6), "nest_pos": (3, 3), "has_food": False, "steps": 0}
    env.step(RIGHT)
    env.step(RIGHT)
    obs, reward, terminated, truncated, info = env.step(RIGHT)
    assert reward == FOOD_REWARD == 1.0
    assert info["has_food"] is True
    assert info["food_pos"] == (3, 6)  # still reported after pick-up
    assert not (obs == FOOD).any()  # the food cell is gone from the observation
    assert obs[3, 6] == AGENT
    assert (terminated, truncated) == (False, False)
    env.step(LEFT)
    obs, reward, terminated, truncated, info = env.step(LEFT)
    assert obs[3, 6] == EMPTY  # the cell became empty, not food again
    assert reward == 0.0
    obs, reward, terminated, truncated, info = env.step(LEFT)
    assert reward == RETURN_REWARD == 10.0
    assert (terminated, truncated) == (True, False)
    assert info["agent_pos"] == (3, 3)
    assert info["steps"] == 6


def test_nest_without_food_gives_nothing():
    env, _, _ = make()
    env.step(RIGHT)
    _, reward, terminated, _, info = env.step(LEFT)
    assert info["agent_pos"] == (3, 3)
    assert reward == 0.0 and not terminated and not info["has_food"]


def test_food_collected_only_once():
    env, _, _ = make()
    rewards = [env.step(a)[1] for a in (RIGHT, RIGHT, RIGHT, RIGHT, LEFT)]
    assert rewards == [0.0, 0.0, 1.0, 0.0, 0.0]


def test_food_next_to_nest():
    env, _, _ = make(["NF......"] + ["........"] * 7)
    _, reward, _, _, info = env.step(RIGHT)
    assert reward == 1.0 and info["has_food"]
    _, reward, terminated, _, _ = env.step(LEFT)
    assert reward == 10.0 and terminated


def test_step_penalty_applies_on_every_step():
    env, _, _ = make(step_penalty=0.25)
    rewards = [env.step(a)[1] for a in (UP, RIGHT, RIGHT, RIGHT, LEFT, LEFT, LEFT)]
    assert rewards == [-0.25, -0.25, -0.25, 0.75, -0.25, -0.25, 9.75]


def test_truncation_at_max_steps():
    env, _, _ = make(max_steps=3)
    assert env.step(UP)[3] is False
    assert env.step(UP)[3] is False
    _, _, terminated, truncated, info = env.step(UP)
    assert (terminated, truncated, info["steps"]) == (False, True, 3)
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(UP)


def test_success_on_the_last_step_is_terminated_not_truncated():
    env, _, _ = make(max_steps=6)
    results = [env.step(a) for a in (RIGHT, RIGHT, RIGHT, LEFT, LEFT, LEFT)]
    _, reward, terminated, truncated, _ = results[-1]
    assert (reward, terminated, truncated) == (10.0, True, False)


def test_step_after_success_and_before_reset_raise():
    env = ForagingEnv(size=8)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(UP)
    env.reset(options={"layout": grid(OPEN)})
    for a in (RIGHT, RIGHT, RIGHT, LEFT, LEFT, LEFT):
        env.step(a)
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(UP)
    env.reset(options={"layout": grid(OPEN)})  # reset makes it usable again
    assert env.step(RIGHT)[4]["agent_pos"] == (3, 4)


# ---- actions -----------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [-1, 4, 1.5, "up", None, np.array([0, 1]), np.float32(1.0)])
def test_invalid_actions_raise(bad):
    env, _, _ = make()
    with pytest.raises(ValueError, match="invalid action"):
        env.step(bad)
    assert env.steps == 0  # a rejected action does not count


@pytest.mark.parametrize("good", [np.int64(3), np.array(3), np.array([3]), np.uint8(3)])
def test_numpy_integer_actions_accepted(good):
    env, _, _ = make()
    assert env.step(good)[4]["agent_pos"] == (3, 4)


# ---- layouts -----------------------------------------------------------------------------
def test_layout_option_gives_that_grid():
    layout = grid(OPEN)
    env, obs, info = make()
    expected = layout.copy()
    expected[3, 3] = AGENT
    np.testing.assert_array_equal(obs, expected)
    assert obs.dtype == np.uint8 and env.observation_space.contains(obs)
    # the caller's array is not modified, and nested lists work as well
    assert layout[3, 3] == NEST
    env.reset(options={"layout": layout.tolist()})
    assert env.food_pos == (3, 6)


def test_layout_is_not_aliased():
    layout = grid(OPEN)
    env = ForagingEnv(size=8)
    env.reset(options={"layout": layout})
    for a in (RIGHT, RIGHT, RIGHT):
        env.step(a)
    assert layout[3, 6] == FOOD


def test_integral_float_layout_accepted():
    env = ForagingEnv(size=8)
    obs, _ = env.reset(options={"layout": grid(OPEN).astype(float)})
    assert obs[3, 6] == FOOD


def bad_layouts() -> list[tuple[object, str]]:
    base = grid(OPEN)
    two_nests, two_foods, no_nest, no_food = base.copy(), base.copy(), base.copy(), base.copy()
    two_nests[0, 0] = NEST
    two_foods[0, 0] = FOOD
    no_nest[3, 3] = EMPTY
    no_food[3, 6] = EMPTY
    with_agent, with_enemy, with_code_9, negative = base.copy(), base.copy(), base.copy(), base.copy()
    with_agent[0, 0] = AGENT
    with_enemy[0, 0] = 5
    with_code_9[0, 0] = 9
    negative[0, 0] = -1
    walled = base.copy()
    walled[2:5, 5] = WALL
    walled[2, 6:8] = WALL
    walled[4, 6:8] = WALL  # the food at (3, 6) is boxed in
    fractional = base.astype(float)
    fractional[0, 0] = 0.5
    return [
        (base[:7], "shape"),
        (base[:, :7], "shape"),
        (np.zeros((8, 8, 1), dtype=int), "2-D"),
        (base[0], "2-D"),
        (np.pad(base, 4), "shape"),
        (two_nests, "exactly 1 nest"),
        (two_foods, "exactly 1 food"),
        (no_nest, "exactly 1 nest"),
        (no_food, "exactly 1 food"),
        (with_agent, r"codes \[2\]"),
        (with_enemy, r"codes \[5\]"),
        (with_code_9, r"codes \[9\]"),
        (negative, r"codes \[-1\]"),
        (walled, "unsolvable"),
        (fractional, "integer"),
        ([[0, 1], [0]], "rectangular|shape|2-D"),
        (np.full((8, 8), "x"), "integer"),
    ]


@pytest.mark.parametrize(("layout", "message"), bad_layouts())
def test_bad_layouts_raise(layout, message):
    env = ForagingEnv(size=8)
    with pytest.raises(ValueError, match=message):
        env.reset(options={"layout": layout})


def test_unknown_reset_option_raises():
    env = ForagingEnv(size=8)
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"map": grid(OPEN)})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 7},
        {"size": 33},
        {"max_steps": 0},
        {"max_steps": 1.7},
        {"max_steps": True},
        {"step_penalty": float("nan")},
        {"step_penalty": float("-inf")},
        {"wall_segments": (3, 2)},
        {"wall_segments": (-1, 2)},
        {"render_mode": "video"},
    ],
)
def test_bad_constructor_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        ForagingEnv(**kwargs)


# ---- random layouts and determinism -------------------------------------------------------
def test_random_layouts_are_valid_and_solvable():
    env = ForagingEnv()
    for seed in range(40):
        obs, info = env.reset(seed=seed)
        assert obs.shape == (16, 16) and obs.dtype == np.uint8
        assert np.count_nonzero(obs == AGENT) == 1
        assert np.count_nonzero(obs == FOOD) == 1
        assert np.count_nonzero(obs == NEST) == 0  # the agent starts on the nest
        assert info["agent_pos"] == info["nest_pos"]
        assert bfs_distances(obs != WALL, info["nest_pos"])[info["food_pos"]] != UNREACHABLE
        assert 1 <= np.count_nonzero(obs == WALL) <= 40  # 5-10 segments of 2-4 cells


def rollout(env: ForagingEnv, seed: int, actions: list[int]) -> list:
    obs, info = env.reset(seed=seed)
    trace = [obs.tobytes(), info]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs.tobytes(), reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return trace


def test_same_seed_same_trajectory():
    actions = [int(a) for a in np.random.default_rng(1).integers(0, 4, 120)]
    assert rollout(ForagingEnv(), 7, actions) == rollout(ForagingEnv(), 7, actions)
    assert rollout(ForagingEnv(), 7, actions) != rollout(ForagingEnv(), 8, actions)


def test_reset_without_seed_continues_the_stream():
    env = ForagingEnv()
    first, _ = env.reset(seed=3)
    second, _ = env.reset()
    other = ForagingEnv()
    other.reset(seed=3)
    np.testing.assert_array_equal(other.reset()[0], second)
    assert not np.array_equal(first, second)


def test_gym_make_and_check_env():
    from gymnasium.utils.env_checker import check_env

    env = gym.make("HRMForaging-v0")
    assert env.observation_space == gym.spaces.Box(0, 5, (16, 16), np.uint8)
    assert env.action_space == gym.spaces.Discrete(4)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_render_modes():
    env = ForagingEnv(size=8, render_mode="ansi")
    env.reset(options={"layout": grid(OPEN)})
    text = env.render()
    assert text.splitlines()[3] == "...A..F."
    assert "find food" in text
    rgb_env = ForagingEnv(size=8, render_mode="rgb_array")
    rgb_env.reset(options={"layout": grid(OPEN)})
    picture = rgb_env.render()
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    rgb_env.close()


# ---- properties ----------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.integers(0, 3), min_size=1, max_size=250),
    step_penalty=st.sampled_from([0.0, 0.1]),
)
def test_random_episode_invariants(seed, actions, step_penalty):
    env = ForagingEnv(max_steps=200, step_penalty=step_penalty)
    obs, info = env.reset(seed=seed)
    walls = obs == WALL
    total, steps = 0.0, 0
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        steps += 1
        r, c = info["agent_pos"]
        assert 0 <= r < 16 and 0 <= c < 16
        assert not walls[r, c]
        assert np.count_nonzero(obs == AGENT) == 1 and obs[r, c] == AGENT
        np.testing.assert_array_equal(obs == WALL, walls)  # walls never change
        assert info["has_food"] == (np.count_nonzero(obs == FOOD) == 0)
        if terminated or truncated:
            assert terminated != truncated
            break
    assert steps == info["steps"]
    assert any(np.isclose(total, base - step_penalty * steps) for base in (0.0, 1.0, 11.0))
    if terminated:
        assert np.isclose(total, 11.0 - step_penalty * steps)
