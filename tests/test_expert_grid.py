"""The Foraging and Maze experts: optimal against an independent BFS, fixed tie-break, masks."""

from __future__ import annotations

import importlib.util
from collections import deque

import numpy as np
import pytest

import expert.grid as grid_expert
from expert import make_expert
from expert.grid import ForagingExpert, MazeExpert
from hrm_gym.foraging.env import ForagingEnv

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
DELTAS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def reference_bfs(grid: np.ndarray, target: tuple[int, int]) -> dict[tuple[int, int], int]:
    """A tiny BFS written apart from hrm_gym.core.grid: cell -> steps to ``target``."""
    h, w = grid.shape
    dist = {target: 0}
    queue = deque([target])
    while queue:
        r, c = queue.popleft()
        for dr, dc in DELTAS:
            nr, nc = r + dr, c + dc
            if 0 <= nr < h and 0 <= nc < w and grid[nr, nc] != 1 and (nr, nc) not in dist:
                dist[(nr, nc)] = dist[(r, c)] + 1
                queue.append((nr, nc))
    return dist


def reference_mask(obs: np.ndarray) -> np.ndarray:
    """All actions that shorten the distance to food (or nest when no food), by the reference BFS."""
    target_code = 3 if (obs == 3).any() else 4
    target = tuple(int(v) for v in np.argwhere(obs == target_code)[0])
    agent = tuple(int(v) for v in np.argwhere(obs == 2)[0])
    dist = reference_bfs(obs, target)
    mask = np.zeros(4, dtype=bool)
    for action, (dr, dc) in enumerate(DELTAS):
        cell = (agent[0] + dr, agent[1] + dc)
        if dist.get(cell, -1) == dist[agent] - 1:
            mask[action] = True
    return mask


def run_episode(env, expert, **reset_kwargs):
    """Roll the expert out; check each state against the reference; return (steps, success)."""
    obs, info = env.reset(**reset_kwargs)
    expert.reset()
    steps = 0
    while True:
        mask = expert.optimal_actions(obs, info)
        action = expert.act(obs, info)
        expected = reference_mask(obs)
        np.testing.assert_array_equal(mask, expected)
        assert action == int(np.flatnonzero(expected)[0])  # first of up, down, left, right
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        if terminated or truncated:
            return steps, terminated


def foraging_optimum(layout: np.ndarray) -> int:
    nest = tuple(int(v) for v in np.argwhere(layout == 4)[0])
    food = tuple(int(v) for v in np.argwhere(layout == 3)[0])
    return 2 * reference_bfs(layout, food)[nest]


# ---- Foraging ----------------------------------------------------------------------------
def test_random_foraging_layouts_are_solved_optimally():
    env = ForagingEnv()
    expert = ForagingExpert()
    for seed in range(120):
        env.reset(seed=seed)
        layout = env._layout.copy()
        layout[env.food_pos] = 3
        steps, success = run_episode(env, expert, seed=seed)
        assert success
        assert steps == foraging_optimum(layout)


def layout_from(rows: list[str]) -> np.ndarray:
    codes = {".": 0, "#": 1, "F": 3, "N": 4}
    return np.array([[codes[ch] for ch in row] for row in rows], dtype=np.uint8)


HAND_MADE = {
    # a wall between nest and food forces a detour around its end
    "detour": [
        "........",
        "........",
        "..N.....",
        "#######.",
        "........",
        "..F.....",
        "........",
        "........",
    ],
    # food right next to the nest: one step out, one step back
    "adjacent": [
        "........",
        "........",
        "...NF...",
        "........",
        "........",
        "........",
        "........",
        "........",
    ],
    # a long snake corridor: the only path winds through every row
    "corridor": [
        "N.......",
        "#######.",
        "........",
        ".#######",
        "........",
        "#######.",
        "........",
        "F#######",
    ],
}


@pytest.mark.parametrize("name", sorted(HAND_MADE))
def test_hand_made_layouts(name):
    layout = layout_from(HAND_MADE[name])
    env = ForagingEnv(size=8)
    steps, success = run_episode(env, ForagingExpert(), options={"layout": layout})
    assert success
    assert steps == foraging_optimum(layout)
    expected = {"detour": 2 * 13, "adjacent": 2, "corridor": 2 * 35}[name]
    assert steps == expected


def test_tie_break_is_up_down_left_right_and_deterministic():
    expert = ForagingExpert()
    obs = np.zeros((8, 8), dtype=np.uint8)
    obs[0, 7] = 4
    obs[4, 4] = 2
    cases = {
        (1, 6): (UP, [UP, RIGHT]),
        (7, 7): (DOWN, [DOWN, RIGHT]),
        (1, 1): (UP, [UP, LEFT]),
        (7, 1): (DOWN, [DOWN, LEFT]),
        (4, 1): (LEFT, [LEFT]),
        (4, 7): (RIGHT, [RIGHT]),
    }
    for food, (action, optimal) in cases.items():
        state = obs.copy()
        state[food] = 3
        assert expert.act(state, {}) == action
        assert np.flatnonzero(expert.optimal_actions(state, {})).tolist() == optimal
        # same answer from a fresh expert and again after the cache filled up
        assert ForagingExpert().act(state, {}) == action
        assert expert.act(state, {}) == action
        label_action, label_mask = expert.label(state)
        assert label_action == action and np.flatnonzero(label_mask).tolist() == optimal


def test_target_is_nest_once_food_is_gone():
    obs = np.zeros((8, 8), dtype=np.uint8)
    obs[2, 2] = 4
    obs[2, 5] = 2
    expert = ForagingExpert()
    assert expert.target(obs) == (2, 2)
    assert expert.act(obs, {}) == LEFT
    obs[6, 5] = 3
    assert expert.target(obs) == (6, 5)
    assert expert.act(obs, {}) == DOWN


def test_enemy_cells_count_as_empty():
    obs = np.zeros((8, 8), dtype=np.uint8)
    obs[0, 0], obs[0, 1], obs[0, 3] = 2, 5, 3
    assert ForagingExpert().act(obs, {}) == RIGHT


def test_two_bfs_per_episode(monkeypatch):
    calls = []
    original = grid_expert.bfs_distances

    def counting(passable, source):
        calls.append(source)
        return original(passable, source)

    monkeypatch.setattr(grid_expert, "bfs_distances", counting)
    env = ForagingEnv()
    expert = ForagingExpert()
    steps, success = run_episode(env, expert, seed=3)
    assert success and steps > 4
    assert len(calls) == 2


def test_float_and_int64_observations_give_the_same_labels():
    env = ForagingEnv()
    obs, _ = env.reset(seed=11)
    expert = ForagingExpert()
    action = expert.act(obs, {})
    assert expert.act(obs.astype(np.float32), {}) == action
    assert expert.act(obs.astype(np.int64), {}) == action
    assert expert.act(obs.T.copy().T, {}) == action


def test_distances_match_reference():
    env = ForagingEnv()
    obs, _ = env.reset(seed=5)
    expert = ForagingExpert()
    dist = expert.distances(obs)
    ref = reference_bfs(obs, expert.target(obs))
    for (r, c), value in np.ndenumerate(dist):
        assert value == ref.get((r, c), -1)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda g: g.__setitem__((4, 4), 0), "exactly one agent"),
        (lambda g: g.__setitem__((5, 5), 2), "exactly one agent"),
        (lambda g: (g.__setitem__((0, 7), 0), g.__setitem__((7, 0), 0)), "neither food"),
        (lambda g: g.__setitem__((6, 6), 3), "2 food/goal cells"),
        (lambda g: g.__setitem__((1, 1), 9), "outside the cell codes"),
    ],
)
def test_bad_observations_are_rejected(mutate, message):
    obs = np.zeros((8, 8), dtype=np.uint8)
    obs[4, 4], obs[0, 7], obs[7, 0] = 2, 3, 4
    mutate(obs)
    with pytest.raises(ValueError, match=message):
        ForagingExpert().act(obs.astype(np.int64), {})


def test_unreachable_target_and_agent_on_target_are_rejected():
    obs = np.zeros((8, 8), dtype=np.uint8)
    obs[0, 0], obs[7, 7] = 2, 3
    obs[1, 0] = obs[0, 1] = 1
    with pytest.raises(ValueError, match="cannot reach the target"):
        ForagingExpert().act(obs, {})
    with pytest.raises(ValueError, match="2-D grid"):
        ForagingExpert().act(np.zeros((2, 4, 4), dtype=np.uint8), {})
    lone = np.zeros((8, 8), dtype=np.uint8)
    lone[3, 3] = 2
    with pytest.raises(ValueError, match="no target"):
        ForagingExpert().act(lone, {})


def test_factories_ignore_env_kwargs():
    expert = make_expert("HRMForaging-v0", size=12, max_steps=50, step_penalty=0.1)
    assert isinstance(expert, ForagingExpert) and expert.n_actions == 4
    assert isinstance(make_expert("HRMMaze-v0", size=21), MazeExpert)
    assert isinstance(make_expert("HRMMaze-Hard-v0"), MazeExpert)


# ---- Maze (needs hrm_gym.maze) -----------------------------------------------------------
def _maze_env(size: int):
    if importlib.util.find_spec("hrm_gym.maze") is None:
        pytest.skip("hrm_gym.maze not available yet")
    from hrm_gym.maze.env import MazeEnv

    return MazeEnv(size=size)


@pytest.mark.parametrize("size", [11, 21])
def test_random_mazes_are_solved_optimally(size):
    env = _maze_env(size)
    expert = MazeExpert()
    for seed in range(40 if size == 11 else 10):
        obs, info = env.reset(seed=seed)
        goal = tuple(int(v) for v in np.argwhere(obs == 3)[0])
        start = tuple(int(v) for v in np.argwhere(obs == 2)[0])
        optimum = reference_bfs(obs, goal)[start]
        steps, success = run_episode(env, expert, seed=seed)
        assert success
        assert steps == optimum == info["optimal_path_length"]


def test_maze_with_two_shortest_paths_uses_the_tie_break():
    env = _maze_env(7)
    layout = layout_from(
        [
            "#######",
            "#N....#",
            "#.###.#",
            "#.....#",
            "#.###.#",
            "#....F#",
            "#######",
        ]
    )
    obs, _ = env.reset(options={"layout": layout})
    expert = MazeExpert()
    assert expert.optimal_actions(obs, {}).tolist() == [False, True, False, True]
    assert expert.act(obs, {}) == DOWN
    steps, success = run_episode(env, expert, options={"layout": layout})
    assert success and steps == 8
