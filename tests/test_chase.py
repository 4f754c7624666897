"""Rule-by-rule tests of ``HRMForagingChase-v0``: enemy start, pursuit, pace, capture, layouts."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hrm_gym.core.grid import AGENT, EMPTY, ENEMY, FOOD, NEST, WALL
from hrm_gym.foraging.chase import (
    DEFAULT_ENEMY_PACE,
    ForagingChaseEnv,
    enemy_distances,
    enemy_moves_on_step,
    enemy_passable,
    enemy_step,
    move_enemy_distances,
)

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
DELTAS = ((-1, 0), (1, 0), (0, -1), (0, 1))
CHARS = {".": EMPTY, "#": WALL, "F": FOOD, "N": NEST, "E": ENEMY, "A": AGENT}


def grid(rows: list[str]) -> np.ndarray:
    return np.array([[CHARS[ch] for ch in row] for row in rows], dtype=np.int64)


def make(rows: list[str], **kwargs):
    env = ForagingChaseEnv(size=len(rows), **kwargs)
    obs, info = env.reset(seed=0, options={"layout": grid(rows)})
    return env, obs, info


# ---- an independent model of the enemy's rule -----------------------------------------------
def reference_distances(layout: np.ndarray, has_food: bool, agent: tuple[int, int]) -> dict:
    """BFS from the agent through cells the enemy may enter (written apart from the env)."""

    def enterable(cell):
        code = layout[cell]
        return code != WALL and code != NEST and not (code == FOOD and not has_food)

    dist = {agent: 0}
    queue = deque([agent])
    while queue:
        cell = queue.popleft()
        for dr, dc in DELTAS:
            nxt = (cell[0] + dr, cell[1] + dc)
            inside = 0 <= nxt[0] < layout.shape[0] and 0 <= nxt[1] < layout.shape[1]
            if inside and nxt not in dist and enterable(nxt):
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    return dist


def reference_enemy_step(layout, has_food, agent, enemy):
    dist = reference_distances(layout, has_food, agent)
    if enemy not in dist or enemy == agent:
        return enemy
    for dr, dc in DELTAS:  # up, down, left, right
        nxt = (enemy[0] + dr, enemy[1] + dc)
        if dist.get(nxt) == dist[enemy] - 1:
            return enemy if (nxt == agent and layout[agent] == NEST) else nxt
    raise AssertionError("no closer neighbour")


# ---- random layouts -------------------------------------------------------------------------
def test_random_layouts_start_the_enemy_far_from_the_nest():
    env = ForagingChaseEnv()
    for seed in range(60):
        obs, info = env.reset(seed=seed)
        assert np.count_nonzero(obs == ENEMY) == 1 and np.count_nonzero(obs == AGENT) == 1
        assert np.count_nonzero(obs == FOOD) == 1
        enemy, nest = info["enemy_pos"], info["nest_pos"]
        assert obs[enemy] == ENEMY and info["agent_pos"] == nest
        layout = obs.copy()
        layout[nest] = NEST
        layout[enemy] = EMPTY
        # distance through everything but walls, by the reference BFS with the food passable
        free = layout.copy()
        free[free == FOOD] = EMPTY
        free[nest] = EMPTY
        assert reference_distances(free, True, nest)[enemy] >= 6
        assert info["caught"] is False


def test_min_enemy_distance_kwarg():
    env = ForagingChaseEnv(min_enemy_distance=14)
    for seed in range(15):
        obs, info = env.reset(seed=seed)
        free = np.where(obs == WALL, WALL, EMPTY)
        assert reference_distances(free, True, info["nest_pos"])[info["enemy_pos"]] >= 14


def test_gym_make_defaults_and_kwargs():
    env = gym.make("HRMForagingChase-v0")
    assert env.unwrapped.enemy_pace == DEFAULT_ENEMY_PACE
    assert env.unwrapped.caught_penalty == -10.0
    assert env.observation_space == gym.spaces.Box(0, 5, (16, 16), np.uint8)
    env = gym.make("HRMForagingChase-v0", enemy_pace=(1, 2), caught_penalty=-3)
    assert env.unwrapped.enemy_pace == (1, 2) and env.unwrapped.caught_penalty == -3.0


def test_check_env_and_render_modes():
    from gymnasium.utils.env_checker import check_env

    check_env(gym.make("HRMForagingChase-v0").unwrapped, skip_render_check=True)
    env = ForagingChaseEnv(render_mode="ansi")
    env.reset(seed=1)
    text = env.render()
    assert text.count("E") == 1 and text.count("A") == 1
    rgb = ForagingChaseEnv(render_mode="rgb_array")
    rgb.reset(seed=1)
    picture = rgb.render()
    assert picture.dtype == np.uint8 and picture.shape[2] == 3
    rgb.close()


# ---- pace -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pace", "moving_steps"),
    [
        ((1, 1), [1, 2, 3, 4, 5, 6, 7, 8]),
        ((1, 2), [2, 4, 6, 8]),
        ((2, 3), [2, 3, 5, 6, 8]),
        ((3, 4), [2, 3, 4, 6, 7, 8]),
        ((0, 3), []),
    ],
)
def test_pace_schedule(pace, moving_steps):
    assert [t for t in range(1, 9) if enemy_moves_on_step(t, pace)] == moving_steps


@given(k=st.integers(0, 8), extra=st.integers(0, 8), start=st.integers(1, 500))
def test_pace_moves_k_of_every_n_steps(k, extra, start):
    n = k + extra if k + extra > 0 else 1
    window = [enemy_moves_on_step(t, (k, n)) for t in range(start, start + n)]
    assert sum(window) == k
    assert enemy_moves_on_step(start, (k, n)) == enemy_moves_on_step(start + n, (k, n))


# ---- pursuit ----------------------------------------------------------------------------------
# Nest top-left, food bottom-left, enemy bottom-right.
OPEN = [
    "N.......",
    "........",
    "........",
    "........",
    "........",
    "........",
    "........",
    "F......E",
]


def test_pursuit_tie_break_up_first_and_waiting_next_to_the_nest():
    env, _, info = make(OPEN, enemy_pace=(1, 1))
    assert info["enemy_pos"] == (7, 7)
    path = []
    for _ in range(16):  # the agent pushes against the edge and stays on the nest
        obs, reward, terminated, truncated, info = env.step(UP)
        path.append(info["enemy_pos"])
        assert not terminated and reward == 0.0
    # up first while that gets closer, then left along row 0, then it waits next to the nest
    expected = [(r, 7) for r in range(6, -1, -1)] + [(0, c) for c in range(6, 0, -1)]
    expected += [(0, 1)] * (16 - len(expected))
    assert path == expected
    assert obs[0, 1] == ENEMY and obs[0, 0] == AGENT


def test_pursuit_at_pace_one_in_two():
    env, _, _ = make(OPEN, enemy_pace=(1, 2))
    path = [env.step(UP)[4]["enemy_pos"] for _ in range(6)]
    assert path == [(7, 7), (6, 7), (6, 7), (5, 7), (5, 7), (4, 7)]


def test_pursuit_at_pace_three_in_four():
    env, _, _ = make(OPEN, enemy_pace=(3, 4))
    path = [env.step(UP)[4]["enemy_pos"] for _ in range(8)]
    assert path == [(7, 7), (6, 7), (5, 7), (4, 7), (4, 7), (3, 7), (2, 7), (1, 7)]


def test_enemy_routes_around_walls_and_targets_the_agents_new_cell():
    rows = [
        "N.......",
        "........",
        "........",
        "........",
        "........",
        "........",
        ".......#",
        "F......E",
    ]
    env, _, _ = make(rows, enemy_pace=(1, 1))
    _, _, _, _, info = env.step(RIGHT)  # agent to (0, 1); up is a wall, so the enemy goes left
    assert info["agent_pos"] == (0, 1) and info["enemy_pos"] == (7, 6)
    _, _, _, _, info = env.step(DOWN)
    assert info["enemy_pos"] == (6, 6)


def test_enemy_never_steps_on_the_lying_food():
    # The food sits in the enemy's corridor: it must go around until the food is picked up.
    rows = [
        "N......#",
        "........",
        "........",
        "........",
        "........",
        "........",
        "######..",
        "E.F....#",
    ]
    env, _, info = make(rows, enemy_pace=(0, 1), min_enemy_distance=1)
    layout = env._layout
    can_enter = enemy_passable(layout)
    assert not can_enter[7, 2] and not can_enter[0, 0]
    # from (7, 0) the enemy is walled in by the food: it cannot reach the agent at all
    assert enemy_step(can_enter, (0, 0), (7, 0)) == (7, 0)
    assert enemy_distances(can_enter, (0, 0))[7, 0] == -1
    can_enter[7, 2] = True  # after the pick-up it would come through
    assert enemy_step(can_enter, (0, 0), (7, 0)) == (7, 1)


def test_food_pickup_opens_the_cell_for_the_enemy_on_the_same_step():
    rows = [
        "........",
        "........",
        "........",
        "...NF.E.",
        "........",
        "........",
        "........",
        "........",
    ]
    env, _, _ = make(rows, enemy_pace=(1, 1), min_enemy_distance=1)
    _, reward, terminated, _, info = env.step(RIGHT)  # picks up the food at (3, 4)
    assert info["has_food"] and info["enemy_pos"] == (3, 5)  # through the old food cell's side
    assert reward == 1.0 and not terminated
    _, reward, terminated, _, info = env.step(LEFT)  # back home; the enemy cannot follow in
    assert (reward, terminated, info["caught"]) == (10.0, True, False)


def test_enemy_cut_off_from_the_nest_is_allowed_and_harmless():
    rows = [
        "N.....#.",
        "......#.",
        "......#.",
        "......#.",
        "......#.",
        "......#.",
        "......#E",
        "F.....#.",
    ]
    env, _, info = make(rows, enemy_pace=(1, 1))
    total = 0.0
    for action in [DOWN] * 7 + [UP] * 7:
        _, reward, terminated, _, info = env.step(action)
        total += reward
        assert info["enemy_pos"] == (6, 7)
    assert terminated and total == 11.0


# ---- capture ----------------------------------------------------------------------------------
NEAR = [
    "........",
    "........",
    "........",
    "...N.E..",
    "........",
    "........",
    "........",
    ".......F",
]


def test_caught_when_stepping_onto_the_enemy():
    env, _, _ = make(NEAR, enemy_pace=(0, 1), min_enemy_distance=1)
    _, reward, terminated, _, info = env.step(RIGHT)
    assert (reward, terminated, info["caught"]) == (0.0, False, False)
    obs, reward, terminated, truncated, info = env.step(RIGHT)
    assert (reward, terminated, truncated, info["caught"]) == (-10.0, True, False, True)
    assert info["agent_pos"] == info["enemy_pos"] == (3, 5)
    assert obs[3, 5] == AGENT and np.count_nonzero(obs == ENEMY) == 0  # the agent drawn on top
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(LEFT)


def test_caught_on_a_swap():
    # After step 1 (the enemy rests at pace 1/2) they are neighbours; on step 2 the enemy would
    # step left onto the agent's cell while the agent steps right onto the enemy's: a swap.
    env, _, _ = make(NEAR, enemy_pace=(1, 2), min_enemy_distance=1)
    _, _, _, _, info = env.step(RIGHT)
    assert info["agent_pos"] == (3, 4) and info["enemy_pos"] == (3, 5)
    _, reward, terminated, _, info = env.step(RIGHT)
    assert (reward, terminated, info["caught"]) == (-10.0, True, True)


def test_caught_when_the_enemy_steps_onto_the_agent():
    rows = ["....#.E.", "....N...", *["........"] * 5, ".......F"]
    env, _, _ = make(rows, enemy_pace=(1, 2), min_enemy_distance=1, caught_penalty=-4)
    _, _, _, _, info = env.step(RIGHT)  # agent (1, 5); enemy rests at (0, 6)
    assert info["enemy_pos"] == (0, 6)
    _, reward, terminated, _, info = env.step(UP)  # agent (0, 5); the enemy steps left onto it
    assert (reward, terminated, info["caught"]) == (-4.0, True, True)
    assert info["enemy_pos"] == info["agent_pos"] == (0, 5)


def test_caught_on_the_step_the_food_is_picked_up_keeps_the_food_reward():
    rows = [
        "........",
        "........",
        "........",
        "...N.FE.",
        "........",
        "........",
        "........",
        "........",
    ]
    env, _, _ = make(rows, enemy_pace=(1, 2), min_enemy_distance=1, step_penalty=0.5)
    _, reward, _, _, info = env.step(RIGHT)
    assert info["enemy_pos"] == (3, 6) and reward == -0.5
    _, reward, terminated, _, info = env.step(RIGHT)  # food at (3, 5); the enemy steps onto it
    assert info["has_food"] and info["caught"] and terminated
    assert reward == 1.0 - 10.0 - 0.5


@pytest.mark.parametrize("pace", [(1, 1), (1, 2)])
def test_enemy_next_to_the_nest_cannot_stop_a_return(pace):
    rows = ["........", "........", "........", "..FNE...", *["........"] * 4]
    env, _, _ = make(rows, enemy_pace=pace, min_enemy_distance=1)
    _, reward, _, _, info = env.step(LEFT)  # picks up the food at (3, 2)
    assert reward == 1.0 and not info["caught"]
    _, reward, terminated, _, info = env.step(RIGHT)  # home: the enemy may not enter the nest
    assert (reward, terminated, info["caught"]) == (10.0, True, False)


def test_truncation_with_an_enemy_that_cannot_reach():
    rows = [
        "N......F",
        "........",
        "........",
        "........",
        "........",
        "......##",
        "......#.",
        "......#E",
    ]
    env, _, _ = make(rows, max_steps=5)
    for _ in range(4):
        assert env.step(DOWN)[3] is False
    _, reward, terminated, truncated, info = env.step(DOWN)
    assert (reward, terminated, truncated, info["caught"]) == (0.0, False, True, False)


# ---- layouts and arguments -------------------------------------------------------------------
def bad_layouts():
    base = grid(OPEN)
    no_enemy, two_enemies, near, agent = base.copy(), base.copy(), base.copy(), base.copy()
    no_enemy[7, 7] = EMPTY
    two_enemies[4, 4] = ENEMY
    near[7, 7] = EMPTY
    near[0, 3] = ENEMY  # 3 steps from the nest
    agent[2, 2] = AGENT
    unreachable_food = base.copy()
    unreachable_food[6, 0:2] = WALL
    unreachable_food[7, 1] = WALL
    code_six = base.copy()
    code_six[1, 1] = 6
    return [
        (no_enemy, "exactly 1 enemy"),
        (two_enemies, "exactly 1 enemy"),
        (near, "3 steps from the nest"),
        (agent, r"codes \[2\]"),
        (code_six, r"codes \[6\]"),
        (unreachable_food, "unsolvable"),
        (base[:7], "shape"),
    ]


@pytest.mark.parametrize(("layout", "message"), bad_layouts())
def test_bad_layouts_raise(layout, message):
    env = ForagingChaseEnv(size=8)
    with pytest.raises(ValueError, match=message):
        env.reset(options={"layout": layout})


def test_layout_not_modified_and_enemy_shown_in_the_observation():
    layout = grid(OPEN)
    env = ForagingChaseEnv(size=8)
    obs, info = env.reset(options={"layout": layout})
    assert layout[7, 7] == ENEMY and layout[0, 0] == NEST
    assert obs[7, 7] == ENEMY and obs[0, 0] == AGENT and obs[7, 0] == FOOD
    assert set(info) == {
        "agent_pos",
        "food_pos",
        "nest_pos",
        "has_food",
        "steps",
        "enemy_pos",
        "caught",
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"enemy_pace": (2, 1)},
        {"enemy_pace": (0, 0)},
        {"enemy_pace": (-1, 2)},
        {"enemy_pace": (1,)},
        {"enemy_pace": "3/4"},
        {"enemy_pace": (1.5, 2)},
        {"enemy_pace": (True, 2)},
        {"caught_penalty": 5},
        {"caught_penalty": float("nan")},
        {"min_enemy_distance": 0},
        {"min_enemy_distance": 1.5},
        {"size": 7},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        ForagingChaseEnv(**kwargs)


@pytest.mark.parametrize("bad", [-1, 4, 2.0, "left", None])
def test_invalid_actions_raise(bad):
    env, _, _ = make(OPEN)
    with pytest.raises(ValueError, match="invalid action"):
        env.step(bad)


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="before reset"):
        ForagingChaseEnv().step(0)


# ---- determinism and properties -----------------------------------------------------------------
def rollout(seed: int, actions: list[int], **kwargs) -> list:
    env = ForagingChaseEnv(**kwargs)
    obs, info = env.reset(seed=seed)
    trace = [obs.tobytes(), info]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs.tobytes(), reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return trace


def test_same_seed_same_trajectory():
    actions = [int(a) for a in np.random.default_rng(3).integers(0, 4, 200)]
    for seed in (0, 5):
        assert rollout(seed, actions) == rollout(seed, actions)
    assert rollout(0, actions) != rollout(1, actions)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.integers(0, 3), min_size=1, max_size=120),
    pace=st.sampled_from([(1, 1), (3, 4), (2, 3), (1, 2), (0, 1)]),
    bias=st.integers(0, 3),
)
def test_random_episodes_follow_the_rules(seed, actions, pace, bias):
    """Replays random play against the reference enemy model, checking every invariant."""
    env = ForagingChaseEnv(enemy_pace=pace, max_steps=100, step_penalty=0.1)
    obs, info = env.reset(seed=seed)
    walls = obs == WALL
    nest, food = info["nest_pos"], info["food_pos"]
    static = np.where(walls, WALL, EMPTY)
    static[nest], static[food] = NEST, FOOD
    total = 0.0
    for action in actions + [bias] * 30:  # a biased tail walks further from the nest
        agent, enemy, had_food = info["agent_pos"], info["enemy_pos"], info["has_food"]
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        new_agent = info["agent_pos"]
        # the agent's move
        dr, dc = DELTAS[action]
        target = (agent[0] + dr, agent[1] + dc)
        inside = 0 <= target[0] < 16 and 0 <= target[1] < 16
        assert new_agent == (target if inside and not walls[target] else agent)
        # the enemy's move, by the reference model
        if new_agent == enemy or (info["has_food"] and new_agent == nest):
            expected_enemy = enemy  # caught first, or home: the enemy does not move
        elif enemy_moves_on_step(info["steps"], pace):
            layout = static.copy()
            if info["has_food"]:
                layout[food] = EMPTY
            expected_enemy = reference_enemy_step(layout, info["has_food"], new_agent, enemy)
        else:
            expected_enemy = enemy
        assert info["enemy_pos"] == expected_enemy
        assert info["caught"] == (info["enemy_pos"] == new_agent)
        # what the observation shows
        assert np.count_nonzero(obs == AGENT) == 1 and obs[new_agent] == AGENT
        assert not walls[info["enemy_pos"]] and info["enemy_pos"] != nest
        if not had_food:
            assert info["enemy_pos"] != food or info["has_food"]
        if not info["caught"]:
            assert np.count_nonzero(obs == ENEMY) == 1 and obs[info["enemy_pos"]] == ENEMY
        assert (np.count_nonzero(obs == FOOD) == 1) == (not info["has_food"])
        if new_agent != nest:
            assert obs[nest] == NEST
        np.testing.assert_array_equal(obs == WALL, walls)
        if terminated or truncated:
            assert terminated != truncated
            break
    steps = info["steps"]
    if info["caught"]:
        bases = (-10.0, -9.0)
    elif terminated:
        bases = (11.0,)
    else:
        bases = (0.0, 1.0)
    assert any(np.isclose(total, base - 0.1 * steps) for base in bases)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), has_food=st.booleans(), picks=st.integers(0, 2**32 - 1))
def test_enemy_step_matches_the_reference_everywhere(seed, has_food, picks):
    env = ForagingChaseEnv()
    env.reset(seed=seed)
    layout = env._layout.copy()  # static cells, food still lying
    if has_food:
        layout[env.food_pos] = EMPTY
    can_enter = enemy_passable(layout)
    rng = np.random.default_rng(picks)
    free = np.argwhere(layout != WALL)
    enemies = np.argwhere(can_enter)
    for _ in range(40):
        agent = tuple(int(v) for v in free[rng.integers(len(free))])
        if not has_food and layout[agent] == FOOD:
            continue
        enemy = tuple(int(v) for v in enemies[rng.integers(len(enemies))])
        expected = reference_enemy_step(layout, has_food, agent, enemy)
        assert enemy_step(can_enter, agent, enemy) == expected


def test_move_enemy_distances_match_the_env_after_each_move():
    """From the observation alone: each move's enemy distance is what the env reports after it."""
    import copy

    checked = 0
    for seed in range(12):
        env = ForagingChaseEnv(enemy_pace=(0, 1), min_enemy_distance=1)  # the enemy stands still
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(40):
            predicted = move_enemy_distances(obs)
            for action in range(4):
                probe = copy.deepcopy(env)
                _, _, terminated, _, info = probe.step(action)
                expected = 0.0 if info["caught"] else probe.enemy_distance()
                assert predicted[action] == expected, (seed, action, predicted, expected)
                checked += 1
            obs, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
            if terminated or truncated:
                break
    assert checked > 500
    assert np.isinf(move_enemy_distances(np.zeros((5, 5), dtype=np.int64))).all()  # no agent, no enemy


def test_move_enemy_distances_by_hand():
    obs = grid(
        [
            "N.#..",
            "A.#.E",
            ".....",
        ]
    )
    # up: the nest (safe); down: (2, 0) is 5 enemy steps away; left: a wall edge, stays at
    # (1, 0): 6; right: (1, 1): 5 (through (2, 1)).
    np.testing.assert_array_equal(move_enemy_distances(obs), [np.inf, 5.0, 6.0, 5.0])
