"""The maze generator, its shortest-path helpers, and the HRMMaze-v0 / HRMMaze-Hard-v0 envs."""

from __future__ import annotations

import hashlib

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hrm_gym.core.grid import (
    AGENT,
    DOWN,
    EMPTY,
    GOAL,
    LEFT,
    RIGHT,
    START,
    UP,
    WALL,
    bfs_distances,
    find_cells,
    greedy_action,
    shortest_path,
)
from hrm_gym.maze import (
    HARD_MIN_PATH_LENGTH,
    HARD_SIZE,
    MazeEnv,
    generate_maze,
    generate_mazes,
    max_path_length,
    maze_solution_mask,
    shortest_path_length,
)

SIZES = (5, 7, 11, 21, 31)
maze_settings = settings(max_examples=40, deadline=None, derandomize=True)


def open_edges(grid: np.ndarray) -> int:
    """Pairs of 4-adjacent open cells."""
    passable = grid != WALL
    return int((passable[1:] & passable[:-1]).sum() + (passable[:, 1:] & passable[:, :-1]).sum())


def lattice_walls_knocked_out(grid: np.ndarray) -> int:
    """Open cells between two lattice cells (odd row + even col, or even row + odd col)."""
    rows, cols = np.indices(grid.shape)
    between = (rows % 2) != (cols % 2)
    return int(((grid != WALL) & between).sum())


# ---- generator: structure ----------------------------------------------------------------
@maze_settings
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from(SIZES))
def test_perfect_maze_structure(seed: int, size: int) -> None:
    grid = generate_maze(np.random.default_rng(seed), size)
    assert grid.shape == (size, size) and grid.dtype == np.uint8
    assert set(np.unique(grid).tolist()) <= {EMPTY, WALL, GOAL, START}
    # border walls; lattice cells (odd, odd) open; (even, even) cells always wall
    assert (grid[0] == WALL).all() and (grid[-1] == WALL).all()
    assert (grid[:, 0] == WALL).all() and (grid[:, -1] == WALL).all()
    assert (grid[1::2, 1::2] != WALL).all()
    assert (grid[::2, ::2] == WALL).all()
    # a tree: connected, and open cells - 1 == open edges
    passable = grid != WALL
    n_open = int(passable.sum())
    assert open_edges(grid) == n_open - 1
    start, goal = find_cells(grid, START), find_cells(grid, GOAL)
    assert len(start) == 1 and len(goal) == 1 and start != goal
    assert start[0][0] % 2 == 1 and start[0][1] % 2 == 1  # on lattice cells
    assert goal[0][0] % 2 == 1 and goal[0][1] % 2 == 1
    dist = bfs_distances(passable, start[0])
    assert (dist[passable] >= 0).all()  # every open cell reachable, the goal included


@maze_settings
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.sampled_from(SIZES),
    loop_fraction=st.sampled_from((0.1, 0.25, 0.5, 1.0)),
)
def test_loops_knock_out_the_requested_share(seed: int, size: int, loop_fraction: float) -> None:
    grid = generate_maze(np.random.default_rng(seed), size, loop_fraction=loop_fraction)
    k = (size - 1) // 2
    remaining_after_tree = (k - 1) ** 2  # inner lattice walls a perfect maze leaves standing
    expected_loops = int(np.floor(loop_fraction * remaining_after_tree + 0.5))
    n_open = int((grid != WALL).sum())
    assert open_edges(grid) - (n_open - 1) == expected_loops
    assert lattice_walls_knocked_out(grid) == k * k - 1 + expected_loops
    assert (grid[::2, ::2] == WALL).all()  # loops never open the pillars: no open 2x2 blocks
    if size >= 11:
        assert expected_loops > 0


def test_loops_make_several_shortest_paths_possible() -> None:
    rng = np.random.default_rng(3)
    grids = generate_mazes(rng, 50, 11, loop_fraction=0.5)
    several = 0
    for grid in grids:
        goal = find_cells(grid, GOAL)[0]
        dist = bfs_distances(grid != WALL, goal)
        on_path = maze_solution_mask(grid)
        # a path cell with two moves that both get closer means two shortest paths
        for cell in zip(*np.nonzero(on_path)):
            here = dist[cell]
            closer = [
                (cell[0] + dr, cell[1] + dc)
                for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))
                if dist[cell[0] + dr, cell[1] + dc] == here - 1
            ]
            if len(closer) > 1:
                several += 1
                break
    assert several > 0


def test_loop_fraction_one_opens_every_lattice_passage() -> None:
    grid = generate_maze(np.random.default_rng(0), 9, loop_fraction=1.0)
    expected = np.ones((9, 9), dtype=bool)
    expected[0], expected[-1], expected[:, 0], expected[:, -1] = False, False, False, False
    expected[::2, ::2] = False
    np.testing.assert_array_equal(grid != WALL, expected)


@pytest.mark.parametrize("size,min_path", [(7, 10), (11, 30), (21, 80), (31, 150)])
def test_min_path_length_is_honoured(size: int, min_path: int) -> None:
    grids = generate_mazes(np.random.default_rng(size), 30, size, min_path_length=min_path)
    lengths = [shortest_path_length(grid) for grid in grids]
    assert min(lengths) >= min_path
    # and with loops
    looped = generate_mazes(np.random.default_rng(1), 10, size, 0.05, min_path_length=min_path // 2)
    assert min(shortest_path_length(grid) for grid in looped) >= min_path // 2


def test_start_cells_cover_the_lattice() -> None:
    grids = generate_mazes(np.random.default_rng(7), 600, 7)
    starts = {find_cells(grid, START)[0] for grid in grids}
    goals = {find_cells(grid, GOAL)[0] for grid in grids}
    lattice = {(r, c) for r in (1, 3, 5) for c in (1, 3, 5)}
    assert starts == lattice and goals == lattice


def test_same_seed_same_maze_and_batches_match_single_calls() -> None:
    first = generate_maze(np.random.default_rng(42), 21, 0.1, min_path_length=20)
    again = generate_maze(np.random.default_rng(42), 21, 0.1, min_path_length=20)
    other = generate_maze(np.random.default_rng(43), 21, 0.1, min_path_length=20)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    rng = np.random.default_rng(5)
    singles = np.stack([generate_maze(rng, 11, 0.2, min_path_length=6) for _ in range(5)])
    batch = generate_mazes(np.random.default_rng(5), 5, 11, 0.2, min_path_length=6)
    np.testing.assert_array_equal(singles, batch)
    assert generate_mazes(np.random.default_rng(0), 0, 7).shape == (0, 7, 7)


def digest(grids: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(grids, dtype=np.uint8).tobytes()).hexdigest()[:16]


def test_lattice_mazes_are_pinned_by_seed() -> None:
    # Digests taken before the generator grew the rooms / obstacles families and any-cell endpoints:
    # the default family draws exactly what it drew, so old seeds, sets and runs keep their mazes.
    assert digest(generate_mazes(np.random.default_rng(0), 20, 11)) == "f457e7c2211107bb"
    assert digest(generate_mazes(np.random.default_rng(1), 20, 21, 0.2, min_path_length=40)) == "fc418b63d36553ef"
    assert digest(generate_mazes(np.random.default_rng(2), 10, 7, [0.0, 0.5] * 5)) == "ac0e8a640e00cc07"
    env = MazeEnv()
    assert digest(np.stack([env.reset(seed=seed)[0] for seed in range(5)])) == "0cf8b4759aca89b0"
    env = gym.make("HRMMaze-v0", size=15, loop_fraction=0.1, min_path_length=30)
    assert digest(np.stack([env.reset(seed=seed)[0] for seed in range(5)])) == "9ba6bf3322f22ab5"
    expected = [
        [1, 1, 1, 1, 1, 1, 1],
        [1, 3, 1, 4, 0, 0, 1],
        [1, 0, 1, 1, 1, 0, 1],
        [1, 0, 0, 0, 1, 0, 1],
        [1, 1, 1, 0, 1, 0, 1],
        [1, 0, 0, 0, 0, 0, 1],
        [1, 1, 1, 1, 1, 1, 1],
    ]
    np.testing.assert_array_equal(generate_maze(np.random.default_rng(3), 7), expected)
    np.testing.assert_array_equal(generate_maze(np.random.default_rng(3), (7, 7), family="lattice"), expected)


def test_a_batch_takes_one_loop_fraction_per_maze() -> None:
    fractions = [0.0, 0.5, 0.2, 0.0, 1.0]
    rng = np.random.default_rng(8)
    singles = np.stack([generate_maze(rng, 11, fraction, min_path_length=4) for fraction in fractions])
    batch = generate_mazes(np.random.default_rng(8), 5, 11, np.array(fractions), min_path_length=4)
    np.testing.assert_array_equal(singles, batch)
    with pytest.raises(ValueError, match="sequence of n=5 numbers"):
        generate_mazes(np.random.default_rng(0), 5, 11, [0.1, 0.2])
    with pytest.raises(ValueError, match="loop_fraction must be in"):
        generate_mazes(np.random.default_rng(0), 2, 11, [0.1, 2.0])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"size": 10}, "odd integer >= 5"),
        ({"size": 3}, "odd integer >= 5"),
        ({"size": 11.0}, "size must be an integer"),
        ({"size": True}, "size must be an integer"),
        ({"size": "11"}, "size must be an integer"),
        ({"size": 11, "loop_fraction": -0.1}, "loop_fraction"),
        ({"size": 11, "loop_fraction": 1.5}, "loop_fraction"),
        ({"size": 11, "loop_fraction": float("nan")}, "loop_fraction"),
        ({"size": 11, "loop_fraction": "lots"}, "loop_fraction"),
        ({"size": 11, "min_path_length": -1}, "min_path_length"),
        ({"size": 11, "min_path_length": 51}, "between 0 and 48"),
        ({"size": 11, "min_path_length": 2.5}, "min_path_length must be an integer"),
    ],
)
def test_generator_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_maze(np.random.default_rng(0), **kwargs)
    with pytest.raises(ValueError, match=message):
        generate_mazes(np.random.default_rng(0), 2, **kwargs)


def test_generator_rejects_bad_rng_and_count() -> None:
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        generate_maze(0, 11)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        generate_maze(np.random.RandomState(0), 11)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be >= 0"):
        generate_mazes(np.random.default_rng(0), -1, 11)


def test_unreachable_min_path_length_fails_clearly() -> None:
    # With every passage open a 7x7 maze's longest shortest path is 8 moves.
    with pytest.raises(RuntimeError, match="at least 10 moves"):
        generate_maze(np.random.default_rng(0), 7, loop_fraction=1.0, min_path_length=10)
    assert max_path_length(7) == 16 and max_path_length(31) == 448


# ---- shortest paths ----------------------------------------------------------------------
TWO_PATHS = np.array(
    [
        [1, 1, 1, 1, 1],
        [1, 4, 0, 0, 1],
        [1, 0, 1, 0, 1],
        [1, 0, 0, 3, 1],
        [1, 1, 1, 1, 1],
    ],
    dtype=np.uint8,
)


def test_solution_mask_follows_the_tie_break_on_two_shortest_paths() -> None:
    # Start top-left, goal bottom-right: "down" comes before "right" in the tie-break.
    expected = np.zeros((5, 5), dtype=bool)
    expected[[1, 2, 3, 3, 3], [1, 1, 1, 2, 3]] = True
    np.testing.assert_array_equal(maze_solution_mask(TWO_PATHS), expected)
    assert shortest_path_length(TWO_PATHS) == 4
    # Swap start and goal: "up" comes before "left", so the other path is chosen.
    swapped = TWO_PATHS.copy()
    swapped[1, 1], swapped[3, 3] = GOAL, START
    expected = np.zeros((5, 5), dtype=bool)
    expected[[3, 2, 1, 1, 1], [3, 3, 3, 2, 1]] = True
    np.testing.assert_array_equal(maze_solution_mask(swapped), expected)
    # A list of lists works too.
    assert maze_solution_mask(TWO_PATHS.tolist()).sum() == 5


@pytest.mark.parametrize("loop_fraction", [0.0, 0.3, 1.0])
def test_solution_mask_matches_core_shortest_path(loop_fraction: float) -> None:
    grids = generate_mazes(np.random.default_rng(11), 25, 15, loop_fraction)
    for grid in grids:
        start, goal = find_cells(grid, START)[0], find_cells(grid, GOAL)[0]
        path = shortest_path(grid != WALL, start, goal)
        expected = np.zeros(grid.shape, dtype=bool)
        expected[tuple(np.array(path).T)] = True
        mask = maze_solution_mask(grid)
        np.testing.assert_array_equal(mask, expected)
        assert mask.sum() == shortest_path_length(grid) + 1 == len(path)


@pytest.mark.parametrize(
    "grid,message",
    [
        (np.zeros((5, 5), dtype=np.uint8), "exactly one start"),
        (np.where(TWO_PATHS == GOAL, EMPTY, TWO_PATHS), "exactly one goal"),
        (np.where(TWO_PATHS == EMPTY, GOAL, TWO_PATHS), "exactly one goal"),
        (np.where(TWO_PATHS == EMPTY, WALL, TWO_PATHS), "cannot be reached"),
        (TWO_PATHS[None], "2-D"),
    ],
)
def test_path_helpers_reject_bad_grids(grid: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        maze_solution_mask(grid)
    with pytest.raises(ValueError, match=message):
        shortest_path_length(grid)


# ---- the environment ---------------------------------------------------------------------
CORRIDOR = np.array(
    [
        [1, 1, 1, 1, 1, 1, 1],
        [1, 4, 0, 0, 0, 0, 1],
        [1, 1, 1, 1, 1, 0, 1],
        [1, 0, 0, 0, 1, 0, 1],
        [1, 0, 1, 1, 1, 0, 1],
        [1, 0, 0, 0, 0, 3, 1],
        [1, 1, 1, 1, 1, 1, 1],
    ],
    dtype=np.uint8,
)


def test_moves_walls_and_goal_reward() -> None:
    env = MazeEnv(size=7)
    obs, info = env.reset(options={"layout": CORRIDOR})
    assert info == {
        "agent_pos": (1, 1),
        "start_pos": (1, 1),
        "goal_pos": (5, 5),
        "steps": 0,
        "optimal_path_length": 8,
    }
    assert obs[1, 1] == AGENT and (obs == START).sum() == 0 and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    for blocked in (UP, DOWN, LEFT):  # walls all round but to the right
        obs, reward, terminated, truncated, info = env.step(blocked)
        assert info["agent_pos"] == (1, 1) and reward == 0.0 and not terminated
    obs, reward, terminated, truncated, info = env.step(RIGHT)
    assert info["agent_pos"] == (1, 2) and info["steps"] == 4
    assert obs[1, 1] == START and obs[1, 2] == AGENT  # the start shows again once left
    for action in (RIGHT, RIGHT, RIGHT, DOWN, DOWN, DOWN):
        obs, reward, terminated, truncated, info = env.step(action)
        assert reward == 0.0 and not terminated
    obs, reward, terminated, truncated, info = env.step(DOWN)
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["agent_pos"] == (5, 5) and obs[5, 5] == AGENT
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(UP)


def test_step_penalty_and_truncation() -> None:
    env = MazeEnv(size=7, step_penalty=0.01, max_steps=3)
    env.reset(options={"layout": CORRIDOR})
    rewards = []
    for _ in range(3):
        _, reward, terminated, truncated, _ = env.step(LEFT)
        rewards.append(reward)
    assert rewards == [-0.01] * 3 and truncated and not terminated
    env = MazeEnv(size=7, step_penalty=0.01)
    assert env.max_steps == 49  # size * size by default
    env.reset(options={"layout": CORRIDOR})
    total = 0.0
    for action in (RIGHT,) * 4 + (DOWN,) * 4:
        _, reward, terminated, truncated, _ = env.step(action)
        total += reward
    assert terminated and total == pytest.approx(1.0 - 8 * 0.01)


def test_following_the_solution_mask_reaches_the_goal_optimally() -> None:
    env = MazeEnv(size=21, loop_fraction=0.2)
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        layout = np.where(obs == AGENT, START, obs)
        mask = maze_solution_mask(layout)
        dist = bfs_distances(layout != WALL, info["goal_pos"])
        terminated = False
        while not terminated:
            action = greedy_action(dist, info["agent_pos"])
            obs, reward, terminated, truncated, info = env.step(action)
            assert mask[info["agent_pos"]]
        assert reward == 1.0 and info["steps"] == info["optimal_path_length"]
        assert info["steps"] == mask.sum() - 1


@pytest.mark.parametrize(
    "size,message",
    [
        (6, "odd integer >= 5"),
        (8, "odd integer >= 5"),
        (3, "odd integer >= 5"),
        (129, "<= 128"),
        ((9, 10), "odd integer >= 5"),
        ((9, 9, 9), r"\(height, width\) pair"),
        (11.0, "size must be an integer"),
        (True, "size must be an integer"),
        ("11", "size must be an integer"),
    ],
)
def test_env_size_validation(size: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MazeEnv(size=size)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"loop_fraction": 2.0}, "loop_fraction"),
        ({"loop_fraction": "x"}, "loop_fraction"),
        ({"min_path_length": 49}, "between 0 and 48"),
        ({"min_path_length": -2}, "min_path_length"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": 1.7}, "max_steps must be an integer >= 1, got 1.7"),
        ({"step_penalty": float("nan")}, "step_penalty must be a finite number, got nan"),
        ({"step_penalty": float("inf")}, "step_penalty must be a finite number, got inf"),
        ({"render_mode": "video"}, "render_mode"),
        ({"hard": True, "size": 11}, "fixes size=30"),
        ({"hard": True, "loop_fraction": 0.2}, "fixes loop_fraction"),
        ({"hard": True, "min_path_length": 10}, "fixes min_path_length"),
        ({"hard": True, "family": "lattice"}, "fixes family"),
        ({"hard": True, "wall_prob": 0.4}, "fixes wall_prob"),
        ({"hard": True, "height": 30, "width": 31}, "fixes size"),
        ({"size": 11, "height": 11, "width": 11}, "not both"),
        ({"height": 11}, "go together"),
    ],
)
def test_env_rejects_bad_kwargs(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MazeEnv(**kwargs)


def test_sizes_and_seeding() -> None:
    for size in (7, 9, 11, 21, 31):
        env = MazeEnv(size=size)
        obs, info = env.reset(seed=size)
        assert obs.shape == (size, size) and env.max_steps == size * size
        assert info["optimal_path_length"] == shortest_path_length(np.where(obs == AGENT, 4, obs))
    first, _ = MazeEnv().reset(seed=123)
    again, _ = MazeEnv().reset(seed=123)
    other, _ = MazeEnv().reset(seed=124)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.shape == (11, 11)


def test_hard_mazes_follow_the_maze_hard_rule() -> None:
    # HRM's Maze-Hard: 30x30 random-obstacle grids (Lehnert et al.), shortest path > 110 moves.
    env = gym.make("HRMMaze-Hard-v0")
    assert env.unwrapped.size == HARD_SIZE == 30 and env.observation_space.shape == (30, 30)
    assert env.unwrapped.family == "obstacles" and env.unwrapped.endpoints == "any"
    lengths, wall_shares = [], []
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        lengths.append(info["optimal_path_length"])
        grid = np.where(obs == AGENT, START, obs)
        assert shortest_path_length(grid) == info["optimal_path_length"]
        wall_shares.append(float((grid == WALL).mean()))
    assert min(lengths) >= HARD_MIN_PATH_LENGTH == 111
    assert min(wall_shares) > 0.25 and max(wall_shares) < 0.55  # p drawn in [0.3, 0.5] per grid
    # The filter is what makes them hard: plain grids of that kind almost never reach 111 moves.
    plain = generate_mazes(np.random.default_rng(0), 200, HARD_SIZE, family="obstacles")
    assert np.mean([shortest_path_length(g) >= HARD_MIN_PATH_LENGTH for g in plain]) < 0.02


def test_env_min_path_length_and_loops() -> None:
    env = gym.make("HRMMaze-v0", size=15, loop_fraction=0.1, min_path_length=30)
    for seed in range(10):
        _, info = env.reset(seed=seed)
        assert info["optimal_path_length"] >= 30


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda g: g[:6, :6], r"shape \(7, 7\)"),
        (lambda g: np.where(g == 0, 2, g), r"cell codes \[2\]"),
        (lambda g: np.where(g == 0, 5, g), r"cell codes \[5\]"),
        (lambda g: np.where(g == 3, 4, g), "exactly one start"),
        (lambda g: np.where(g == 3, 0, g), "exactly one goal"),
        (lambda g: np.where((np.arange(7) == 4)[:, None] & (g == 0), 1, g), "cannot be reached"),
        (lambda g: g.astype(float) + 0.5, "integer cell codes"),
    ],
)
def test_layout_option_errors(change, message: str) -> None:
    env = MazeEnv(size=7)
    with pytest.raises(ValueError, match=message):
        env.reset(options={"layout": change(CORRIDOR.copy())})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"puzzle": CORRIDOR})


def test_layout_option_accepts_any_valid_grid() -> None:
    env = MazeEnv(size=7, hard=False, min_path_length=12)
    open_room = np.zeros((7, 7), dtype=np.int64)
    open_room[0, 0], open_room[0, 1] = START, GOAL
    obs, info = env.reset(options={"layout": open_room.tolist()})
    assert info["optimal_path_length"] == 1  # min_path_length applies to random mazes only
    _, reward, terminated, _, _ = env.step(RIGHT)
    assert reward == 1.0 and terminated


def test_render_modes() -> None:
    env = gym.make("HRMMaze-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    env.close()
    env = gym.make("HRMMaze-v0", size=7, render_mode="ansi")
    env.reset(options={"layout": CORRIDOR})
    text = env.render()
    assert text.splitlines()[1] == "#A....#" and "shortest path 8" in text
