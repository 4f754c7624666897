"""The foreign maze generators of the out-of-distribution benchmark: perfect lattice mazes, seeded."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from hrm_gym.core.grid import GOAL, START, WALL, bfs_distances, find_cells
from hrm_gym.maze.generator import generate_mazes

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
NATIVE = ("kruskal", "prim", "wilson", "division")


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


foreign = load("foreign_mazes")


def assert_perfect_lattice_maze(grid: np.ndarray) -> None:
    height, width = grid.shape
    rows, cols = np.indices(grid.shape)
    lattice = (rows % 2 == 1) & (cols % 2 == 1)
    pillars = (rows % 2 == 0) & (cols % 2 == 0)
    border = (rows == 0) | (cols == 0) | (rows == height - 1) | (cols == width - 1)
    assert (grid[pillars | border] == WALL).all()
    assert (grid[lattice] != WALL).all()
    n_cells = int(lattice.sum())
    assert int(((grid != WALL) & ~lattice).sum()) == n_cells - 1  # a spanning tree's passages
    starts, goals = find_cells(grid, START), find_cells(grid, GOAL)
    assert len(starts) == 1 and len(goals) == 1 and starts != goals
    assert all(r % 2 == 1 and c % 2 == 1 for r, c in starts + goals)
    dist = bfs_distances(grid != WALL, starts[0])
    assert (dist[grid != WALL] >= 0).all()  # all open cells connected


def dead_ends(grid: np.ndarray) -> int:
    """Lattice cells with exactly one open neighbour."""
    open_ = grid != WALL
    inner = open_[1:-1:2, 1:-1:2]
    up, down = open_[0:-2:2, 1:-1:2], open_[2::2, 1:-1:2]
    left, right = open_[1:-1:2, 0:-2:2], open_[1:-1:2, 2::2]
    return int((inner & (up.astype(int) + down + left + right == 1)).sum())


def test_native_generators_are_registered() -> None:
    assert set(NATIVE) <= set(foreign.FOREIGN_GENERATORS)


@pytest.mark.parametrize("name", NATIVE)
@pytest.mark.parametrize("shape", [(5, 5), (11, 11), (9, 15), (15, 7)])
def test_every_maze_is_a_perfect_lattice_maze(name: str, shape: tuple[int, int]) -> None:
    mazes = foreign.generate_foreign(name, np.random.default_rng(7), 20, shape)
    assert mazes.shape == (20, *shape)
    assert mazes.dtype == generate_mazes(np.random.default_rng(0), 1, shape).dtype
    for grid in mazes:
        assert_perfect_lattice_maze(grid)


@pytest.mark.parametrize("name", NATIVE)
def test_same_seed_same_mazes_other_seed_other_mazes(name: str) -> None:
    first = foreign.generate_foreign(name, np.random.default_rng(3), 10, (11, 13))
    again = foreign.generate_foreign(name, np.random.default_rng(3), 10, (11, 13))
    other = foreign.generate_foreign(name, np.random.default_rng(4), 10, (11, 13))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert len({grid.tobytes() for grid in first}) > 1


def test_endpoints_are_spread_over_the_lattice() -> None:
    mazes = foreign.generate_foreign("kruskal", np.random.default_rng(0), 400, (5, 5))
    start_cells = {tuple(np.argwhere(grid == START)[0]) for grid in mazes}
    assert start_cells == {(1, 1), (1, 3), (3, 1), (3, 3)}


def test_dead_ends_set_the_tree_generators_apart_from_ours() -> None:
    """Our DFS carves long corridors: about 12 of the 100 lattice cells of a 21x21 maze are dead ends
    (sd 2), against 28 to 33 for the foreign generators (sd 3; Wilson: 29, the uniform spanning
    tree's 8/pi^2 (1 - 2/pi) = 29 %)."""
    shape, n = (21, 21), 50
    ours = np.mean([dead_ends(g) for g in generate_mazes(np.random.default_rng(0), n, shape)])
    assert 9 < ours < 15
    for name in NATIVE:
        mazes = foreign.generate_foreign(name, np.random.default_rng(0), n, shape)
        mean = np.mean([dead_ends(g) for g in mazes])
        assert mean > 2 * ours and 24 < mean < 38, (name, mean, ours)


@pytest.mark.parametrize(
    ("name", "shape", "n", "message"),
    [
        ("eller", (11, 11), 1, r"must be one of \['kruskal', 'prim', 'wilson', 'division'.*got 'eller'"),
        ("kruskal", (10, 11), 1, r"odd integers from 5 to 128.*got 10x11"),
        ("prim", (3, 3), 1, r"odd integers from 5 to 128.*got 3x3"),
        ("wilson", (131, 5), 1, r"got 131x5"),
        ("wilson", 11, 1, r"\(height, width\) pair"),
        ("division", (11, 11), -1, r"n must be an integer >= 0, got -1"),
    ],
)
def test_bad_input_raises_value_error(name: str, shape, n: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        foreign.generate_foreign(name, np.random.default_rng(0), n, shape)


def test_maze_dataset_names_say_how_to_enable_them() -> None:
    if "md_wilson" in foreign.FOREIGN_GENERATORS:
        pytest.skip("maze-dataset is installed")
    with pytest.raises(ValueError, match="pip install maze-dataset"):
        foreign.generate_foreign("md_wilson", np.random.default_rng(0), 1, (11, 11))


def test_maze_dataset_connection_lists_land_on_our_lattice(monkeypatch) -> None:
    """A stand-in for maze-dataset's documented API: connection_list[0] joins (i, j) to (i + 1, j),
    connection_list[1] joins (i, j) to (i, j + 1)."""

    def comb(grid_shape):  # row 0 a corridor, every column hanging down from it
        connections = np.zeros((2, *grid_shape), dtype=bool)
        connections[0, :-1, :] = True
        connections[1, 0, :-1] = True
        return types.SimpleNamespace(connection_list=connections)

    generation = types.ModuleType("maze_dataset.generation")
    generation.LatticeMazeGenerators = types.SimpleNamespace(gen_wilson=comb)
    generation.generators = types.ModuleType("maze_dataset.generation.generators")
    monkeypatch.setitem(sys.modules, "maze_dataset", types.ModuleType("maze_dataset"))
    monkeypatch.setitem(sys.modules, "maze_dataset.generation", generation)
    grid = foreign._one(foreign._maze_dataset("md_wilson"))(np.random.default_rng(0), (7, 9))
    assert_perfect_lattice_maze(grid)
    open_ = grid != WALL
    assert open_[1, 1:-1].all() and open_[1:-1, 1::2].all() and not open_[3:-1, 2::2].any()


def test_benchmark_scores_foreign_rows_as_new() -> None:
    benchmark = load("maze_families")
    rows = benchmark.rows_to_score(["lattice", *NATIVE], [(11, 11), (9, 15)])
    foreign_rows = [row for row in rows if row[0] in NATIVE]
    assert foreign_rows == [(name, "lattice", shape) for name in NATIVE for shape in [(11, 11), (9, 15)]]
    assert len(rows) == len(foreign_rows) + 2 * 2  # lattice: two endpoint placements
    mazes = benchmark.draw("wilson", "lattice", (9, 15), 3, seed=1)
    assert np.array_equal(mazes, benchmark.draw("wilson", "lattice", (9, 15), 3, seed=1))
    assert not np.array_equal(mazes, benchmark.draw("prim", "lattice", (9, 15), 3, seed=1))
    for grid in mazes:
        assert_perfect_lattice_maze(grid)
    seen = benchmark.trained_kinds({"family": "lattice"})
    assert not benchmark.is_new("lattice", "lattice", seen) and benchmark.is_new("lattice", "any", seen)
    assert all(benchmark.is_new(name, "lattice", seen | {(name, "lattice")}) for name in NATIVE)


def test_benchmark_offers_foreign_families_by_default(capsys) -> None:
    benchmark = load("maze_families")
    with pytest.raises(SystemExit) as exit_:
        benchmark.main(["--help"])
    assert exit_.value.code == 0
    usage = capsys.readouterr().out
    assert all(name in usage for name in NATIVE)
    with pytest.raises(SystemExit):
        benchmark.main(["--checkpoint", "x", "--families", "eller"])
    assert "invalid choice: 'eller'" in capsys.readouterr().err
