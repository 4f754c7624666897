"""Every maze family of the one generator: valid mazes, shortest expert paths, endpoint placement,
open pillars, rectangular and even sizes, clear errors; the puzzle task's mix; the
out-of-distribution benchmark on a tiny trained checkpoint."""

from __future__ import annotations

import importlib.util
import json
from collections import deque
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from agents import train_puzzle
from agents.puzzles.base import PuzzleError
from agents.puzzles.maze import MazeTask
from expert.grid import MazeExpert
from hrm_gym.core.grid import AGENT, EMPTY, GOAL, START, WALL, find_cells
from hrm_gym.maze import FAMILIES, MazeEnv, generate_maze, generate_mazes, maze_spec, shortest_path_length

#: (family, endpoints, size): every family and endpoint placement, square, rectangular and even.
KINDS = [
    ("lattice", "lattice", 11),
    ("lattice", "any", 11),
    ("lattice", "any", (7, 15)),
    ("rooms", "lattice", 13),
    ("rooms", "any", (9, 21)),
    ("obstacles", "any", 11),
    ("obstacles", "any", 10),
    ("obstacles", "any", (6, 17)),
]


def reference_distance(grid: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> int:
    """Shortest start-goal moves by a plain queue BFS (independent of the project's BFS); -1 if none."""
    height, width = grid.shape
    dist = {start: 0}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        if (r, c) == goal:
            return dist[(r, c)]
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= nr < height and 0 <= nc < width and grid[nr, nc] != WALL and (nr, nc) not in dist:
                dist[(nr, nc)] = dist[(r, c)] + 1
                queue.append((nr, nc))
    return -1


def shape_of(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else tuple(size)


# ---- the generator: every family ---------------------------------------------------------------
@pytest.mark.parametrize("family,endpoints,size", KINDS)
def test_every_family_makes_valid_mazes(family: str, endpoints: str, size) -> None:
    grids = generate_mazes(np.random.default_rng(7), 40, size, family=family, endpoints=endpoints)
    assert grids.shape == (40, *shape_of(size)) and grids.dtype == np.uint8
    for grid in grids:
        assert set(np.unique(grid).tolist()) <= {EMPTY, WALL, GOAL, START}  # 0 open, 1 wall, 3 goal, 4 start
        (start,), (goal,) = find_cells(grid, START), find_cells(grid, GOAL)
        assert start != goal
        assert reference_distance(grid, start, goal) == shortest_path_length(grid) >= 1  # connected
        if family != "obstacles":  # the lattice families keep the lattice: border walls, lattice cells open
            assert (grid[0] == WALL).all() and (grid[-1] == WALL).all()
            assert (grid[:, 0] == WALL).all() and (grid[:, -1] == WALL).all()
            assert (grid[1::2, 1::2] != WALL).all()


@pytest.mark.parametrize("family,endpoints,size", KINDS)
def test_the_bfs_expert_walks_a_shortest_path_on_every_family(family: str, endpoints: str, size) -> None:
    height, width = shape_of(size)
    env = MazeEnv(height=height, width=width, family=family, endpoints=endpoints)
    expert = MazeExpert()
    for seed in range(8):
        obs, info = env.reset(seed=seed)
        layout = np.where(obs == AGENT, START, obs)
        optimum = reference_distance(layout, info["start_pos"], info["goal_pos"])
        assert info["optimal_path_length"] == optimum
        terminated = truncated = False
        while not (terminated or truncated):
            obs, reward, terminated, truncated, info = env.step(expert.act(obs, info))
        assert terminated and reward == 1.0 and info["steps"] == optimum


@pytest.mark.parametrize(
    "family,endpoints,size,min_path",
    [
        ("lattice", "any", 15, 40),
        ("rooms", "lattice", 15, 30),
        ("rooms", "any", 21, 50),
        ("obstacles", "any", 20, 45),
        ("obstacles", "any", (12, 30), 50),
    ],
)
def test_min_path_length_holds_on_every_family(family: str, endpoints: str, size, min_path: int) -> None:
    grids = generate_mazes(
        np.random.default_rng(3), 15, size, family=family, endpoints=endpoints, min_path_length=min_path
    )
    assert min(shortest_path_length(grid) for grid in grids) >= min_path


def on_lattice(cell: tuple[int, int]) -> bool:
    return cell[0] % 2 == 1 and cell[1] % 2 == 1


@pytest.mark.parametrize("family", ["lattice", "rooms"])
def test_endpoint_placement_appears_when_asked(family: str) -> None:
    any_ends = generate_mazes(np.random.default_rng(1), 200, 11, family=family, endpoints="any")
    lattice_ends = generate_mazes(np.random.default_rng(1), 200, 11, family=family, endpoints="lattice")
    off = [not on_lattice(find_cells(g, code)[0]) for g in any_ends for code in (START, GOAL)]
    assert 0.2 < np.mean(off) < 0.8  # passages (and opened pillars) hold start and goal too
    assert all(on_lattice(find_cells(g, code)[0]) for g in lattice_ends for code in (START, GOAL))
    # the default placement of the lattice families is the lattice
    np.testing.assert_array_equal(generate_mazes(np.random.default_rng(1), 200, 11, family=family), lattice_ends)


def test_rooms_open_the_requested_share_of_pillars() -> None:
    size = 21
    inner = ((size - 3) // 2) ** 2  # pillars not on the border
    for fraction in (0.1, 0.3, 1.0):
        for grid in generate_mazes(np.random.default_rng(2), 10, size, family="rooms", pillar_fraction=fraction):
            pillars = grid[2:-2:2, 2:-2:2]
            assert int((pillars != WALL).sum()) == int(np.floor(fraction * inner + 0.5))
            rows, cols = np.nonzero(pillars != WALL)
            for r, c in zip(2 + 2 * rows, 2 + 2 * cols):  # an opened pillar is the middle of a 3x3 open block
                assert (grid[r - 1 : r + 2, c - 1 : c + 2] != WALL).all()
    default = generate_mazes(np.random.default_rng(2), 10, size, family="rooms")
    assert all(int((g[2:-2:2, 2:-2:2] != WALL).sum()) == int(np.floor(0.2 * inner + 0.5)) for g in default)
    plain = generate_mazes(np.random.default_rng(2), 10, size)
    assert (plain[:, ::2, ::2] == WALL).all()  # the lattice family never opens a pillar


def test_obstacle_walls_follow_wall_prob() -> None:
    fixed = generate_mazes(np.random.default_rng(4), 200, 16, family="obstacles", wall_prob=0.2)
    assert abs(float((fixed == WALL).mean()) - 0.2) < 0.02
    ranged = generate_mazes(np.random.default_rng(4), 300, 16, family="obstacles")  # default [0.3, 0.5]
    shares = (ranged == WALL).mean(axis=(1, 2))
    assert 0.36 < shares.mean() < 0.44 and shares.min() > 0.15 and shares.max() < 0.65
    open_grid = generate_maze(np.random.default_rng(0), 5, family="obstacles", wall_prob=0.0)
    assert (open_grid != WALL).all()


@pytest.mark.parametrize("size", [5, (5, 64), 64, (63, 65)])
def test_small_large_and_rectangular_sides(size) -> None:
    family = "obstacles" if 64 in shape_of(size) else "lattice"
    grid = generate_maze(np.random.default_rng(0), size, family=family)
    assert grid.shape == shape_of(size) and shortest_path_length(grid) >= 1


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_is_deterministic_and_batches_match_single_calls(family: str) -> None:
    size = 12 if family == "obstacles" else 13
    rng = np.random.default_rng(9)
    singles = np.stack([generate_maze(rng, size, family=family, min_path_length=8) for _ in range(6)])
    batch = generate_mazes(np.random.default_rng(9), 6, size, family=family, min_path_length=8)
    np.testing.assert_array_equal(singles, batch)
    assert not np.array_equal(batch, generate_mazes(np.random.default_rng(10), 6, size, family=family))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"size": 11, "family": "maze"}, r"family must be one of \['lattice', 'rooms', 'obstacles'\], got 'maze'"),
        ({"size": 10, "family": "rooms"}, "odd integer >= 5 .* family 'rooms'"),
        ({"size": (9, 10)}, "odd integer >= 5"),
        ({"size": 4, "family": "obstacles"}, "an integer >= 5 and <= 128 .* got 4"),
        ({"size": 129, "family": "obstacles"}, "<= 128"),
        ({"size": (9, 9, 9)}, r"\(height, width\) pair"),
        ({"size": 11, "endpoints": "corners"}, r"endpoints must be one of \['lattice', 'any'\], got 'corners'"),
        ({"size": 11, "family": "obstacles", "endpoints": "lattice"}, "endpoints='lattice' needs a lattice family"),
        ({"size": 11, "wall_prob": 0.3}, "wall_prob=0.3 applies to family 'obstacles' only, not 'lattice'"),
        ({"size": 11, "pillar_fraction": 0.2}, "pillar_fraction=0.2 applies to family 'rooms' only"),
        ({"size": 11, "family": "obstacles", "loop_fraction": 0.1}, "loop_fraction=0.1 applies to family 'lattice'"),
        ({"size": 11, "family": "rooms", "pillar_fraction": 1.5}, "pillar_fraction must be in"),
        ({"size": 11, "family": "obstacles", "wall_prob": 1.0}, "wall_prob=1.0 must satisfy 0 <= lo <= hi < 1"),
        ({"size": 11, "family": "obstacles", "wall_prob": [0.5, 0.3]}, "lo <= hi"),
        ({"size": 11, "family": "obstacles", "wall_prob": "dense"}, "wall_prob must be a number or a"),
        ({"size": 11, "family": "obstacles", "min_path_length": 121}, "between 0 and 120"),
    ],
)
def test_bad_generator_arguments_are_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_maze(np.random.default_rng(0), **kwargs)
    with pytest.raises(ValueError, match=message):
        maze_spec(**kwargs)


def test_an_impossible_path_length_on_obstacles_fails_clearly() -> None:
    with pytest.raises(RuntimeError, match="at least 30 moves"):
        generate_maze(np.random.default_rng(0), 6, family="obstacles", wall_prob=0.0, min_path_length=30)


# ---- the env ----------------------------------------------------------------------------------
def test_env_takes_the_family_kwargs() -> None:
    env = gym.make("HRMMaze-v0", height=10, width=14, family="obstacles", wall_prob=[0.2, 0.3], min_path_length=12)
    assert env.observation_space.shape == (10, 14) and env.unwrapped.max_steps == 140
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        assert obs.shape == (10, 14) and info["optimal_path_length"] >= 12
    first, _ = MazeEnv(size=15, family="rooms", endpoints="any").reset(seed=5)
    again, _ = MazeEnv(size=15, family="rooms", endpoints="any").reset(seed=5)
    np.testing.assert_array_equal(first, again)
    layout = generate_maze(np.random.default_rng(0), (10, 14), family="obstacles")
    obs, info = env.reset(options={"layout": layout})
    assert info["start_pos"] == find_cells(layout, START)[0]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"family": "open"}, "family must be one of"),
        ({"size": 12}, "odd integer >= 5"),
        ({"family": "obstacles", "endpoints": "lattice"}, "needs a lattice family"),
        ({"wall_prob": 0.3}, "applies to family 'obstacles' only"),
        ({"family": "rooms", "pillar_fraction": -0.1}, "pillar_fraction must be in"),
        ({"height": 9, "width": 10}, "odd integer >= 5"),
    ],
)
def test_env_rejects_bad_family_kwargs(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MazeEnv(**kwargs)


# ---- the puzzle task ---------------------------------------------------------------------------
MIX = {
    "sizes": [9, [10, 12]],
    "mix": [
        {"family": "lattice", "weight": 2},
        {"family": "rooms", "endpoints": "any", "pillar_fraction": 0.5},
        {"family": "obstacles", "wall_prob": [0.2, 0.3], "min_path_length": 6},
    ],
}


def test_puzzle_task_draws_a_mix_of_families_and_sizes() -> None:
    task = MazeTask()
    rng = np.random.default_rng(0)
    shapes, bordered, unbordered, pillars = set(), 0, 0, 0
    for _ in range(12):
        mazes = task.sample(rng, 16, MIX)
        shapes.add(mazes.shape[1:])
        task.targets(task.check_inputs(mazes))  # every maze solvable
        for grid in mazes:
            border = np.concatenate([grid[0], grid[-1], grid[:, 0], grid[:, -1]])
            bordered += (border == WALL).all()
            unbordered += not (border == WALL).all()
            pillars += grid.shape == (9, 9) and (grid[2:-2:2, 2:-2:2] != WALL).any()
        if mazes.shape[1:] == (10, 12):  # even sides: only the obstacles component fits
            assert all(shortest_path_length(grid) >= 6 for grid in mazes)
    assert shapes == {(9, 9), (10, 12)} and bordered and unbordered and pillars
    np.testing.assert_array_equal(
        task.sample(np.random.default_rng(3), 8, MIX), task.sample(np.random.default_rng(3), 8, MIX)
    )
    checked = task.check_params(MIX)
    assert task.check_params(checked) == checked  # normalised params are a fixed point (cached-set keys)


def test_puzzle_task_single_family_params() -> None:
    task = MazeTask()
    hard = task.sample(np.random.default_rng(0), 2, {"sizes": [30], "family": "obstacles", "min_path_length": 111})
    assert hard.shape == (2, 30, 30) and min(shortest_path_length(g) for g in hard) >= 111
    anywhere = task.sample(np.random.default_rng(0), 50, {"sizes": [11], "endpoints": "any"})
    assert any(not on_lattice(find_cells(g, START)[0]) for g in anywhere)


@pytest.mark.parametrize(
    "params,message",
    [
        ({"family": "maze"}, "family must be one of"),
        ({"sizes": [10]}, "not allowed"),
        ({"sizes": [65]}, "not allowed"),
        ({"sizes": [[9, 11, 13]]}, "not allowed"),
        ({"family": "obstacles", "endpoints": "lattice"}, "needs a lattice family"),
        ({"family": "obstacles", "wall_prob": 1.5}, "wall_prob"),
        ({"mix": []}, "non-empty list"),
        ({"mix": [{"family": "lattice", "colour": 1}]}, r"mix\[0\] must be a mapping with keys from"),
        ({"mix": [{"family": "rooms", "pillar_fraction": 2}]}, r"mix\[0\] pillar_fraction"),
        ({"mix": [{"weight": -1}]}, r"mix\[0\] weight must be a number >= 0"),
        ({"mix": [{"weight": 0}]}, "weights are all 0"),
        ({"sizes": [10], "mix": [{"family": "lattice"}, {"family": "rooms"}]}, "size 10 is not allowed"),
    ],
)
def test_puzzle_task_rejects_bad_params(params: dict, message: str) -> None:
    with pytest.raises(PuzzleError, match=message):
        MazeTask().check_params(params)


# ---- the out-of-distribution benchmark ------------------------------------------------------------
def load_benchmark():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "maze_families.py"
    spec = importlib.util.spec_from_file_location("benchmark_maze_families", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = [
    "hrm.hidden_size=16",
    "hrm.num_heads=2",
    "hrm.expansion=1.0",
    "hrm.mlp_multiple=16",
    "hrm.H_cycles=1",
    "hrm.L_cycles=2",
    "segments=2",
    "batch_size=4",
    "max_batches=2",
    "eval_every=1000",
    "warmup_steps=2",
    "num_threads=1",
    "hrm.forward_dtype=float32",
    "task_params.sizes=[7]",
    "eval_sets=[{name: m7, params: {sizes: [7]}, n: 2, val_n: 2, segments: [2]}]",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A maze checkpoint trained for two batches of four 7x7 mazes (lattice and obstacles)."""
    root = tmp_path_factory.mktemp("maze_families")
    argv = ["--config", "configs/maze_hrm.yaml", "--out", str(root / "run"), "--no-progress"]
    mix = "task_params.mix=[{family: lattice}, {family: obstacles}]"
    for item in (*TINY, f"data_dir={root / 'data'}", mix):
        argv += ["--set", item]
    assert train_puzzle.main(argv) == 0
    return root / "run"


def test_benchmark_scores_every_family_on_a_tiny_checkpoint(tiny_run, capsys) -> None:
    benchmark = load_benchmark()
    argv = ["--checkpoint", str(tiny_run), "--n", "3", "--sizes", "7", "8", "5x9", "--seed", "1", "--threads", "1"]
    assert benchmark.main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert "family" in out[1] and len(out) == 2 + len(result["rows"]) + 1  # title, header, rows, JSON
    assert result["segments"] == 2 and result["trained_on"] == ["lattice/lattice", "obstacles/any"]
    rows = {(r["family"], r["endpoints"], r["size"]): r for r in result["rows"]}
    assert len(rows) == (5 + 4) * 3  # lattice x2, rooms x2, obstacles x1, four foreign generators; three sizes
    for (family, endpoints, size), row in rows.items():
        if size == "8x8" and family != "obstacles":
            assert row["status"].startswith("n/a") and "odd" in row["status"]
            continue
        assert row["status"] == "ok" and row["n"] == 3 and 0.0 <= row["valid_rate"] <= 1.0
        assert row["mean_path_length"] >= 1
        assert row["new"] == ((family, endpoints) not in {("lattice", "lattice"), ("obstacles", "any")})
    again = benchmark.main([*argv, "--json-only", "--families", "obstacles", "--segments", "1"])
    first = json.loads(capsys.readouterr().out)
    assert again == 0 and first["segments"] == 1 and {r["family"] for r in first["rows"]} == {"obstacles"}


def test_benchmark_reports_sizes_the_model_cannot_read(tmp_path, capsys) -> None:
    from tests.test_solve import make_checkpoint

    checkpoint = make_checkpoint(tmp_path / "learned", "maze", pos_encodings="learned")  # reads 9x9 only
    benchmark = load_benchmark()
    argv = [
        "--checkpoint",
        str(checkpoint),
        "--n",
        "2",
        "--sizes",
        "9",
        "11",
        "--families",
        "lattice",
        "--threads",
        "1",
    ]
    assert benchmark.main([*argv, "--json-only"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {r["size"]: r["status"] for r in rows if r["endpoints"] == "lattice"} == {
        "9x9": "ok",
        "11x11": "cannot read: this model has learned positions for 9x9 grids and cannot read 11x11 puzzles "
        "(train with pos_encodings=rope or conv blocks)",
    }
    with pytest.raises(SystemExit):
        benchmark.main([*argv, "--sizes", "9by9"])
