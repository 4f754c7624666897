"""Puzzle tasks: targets on hand-made cases, checkers, augmentations, data cache, registry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.puzzles import TASKS, PuzzleError, PuzzleTask, get_task, register_task
from agents.puzzles.data import cached_dataset, load_dataset, make_dataset
from agents.puzzles.maze import MazeTask, is_shortest_path, next_move_classes
from agents.puzzles.sudoku import SudokuTask, is_valid_solution, sudoku_symmetry
from hrm_gym.maze.generator import maze_solution_mask, shortest_path_length
from hrm_gym.sudoku.solver import is_complete_solution, parse_board, solve

# Two shortest paths from S (1,1) to G (3,3): along the left column or along the top row.
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
LEFT_THEN_BOTTOM = [(1, 1), (2, 1), (3, 1), (3, 2), (3, 3)]
TOP_THEN_RIGHT = [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3)]

WIKI_PUZZLE = parse_board("53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79")
WIKI_SOLUTION = parse_board("534678912672195348198342567859761423426853791713924856961537284287419635345286179")


def mask_of(cells, shape=(5, 5)):
    mask = np.zeros(shape, dtype=np.int64)
    for cell in cells:
        mask[cell] = 1
    return mask


# ---- maze ---------------------------------------------------------------------------------
def test_maze_target_follows_the_expert_tie_break_on_a_maze_with_two_shortest_paths():
    task = MazeTask()
    target = task.targets(task.check_inputs(TWO_PATHS))[0]
    # From the start, "down" comes before "right" in the tie-break: the left column path.
    np.testing.assert_array_equal(target, mask_of(LEFT_THEN_BOTTOM))


def test_maze_checker_accepts_every_shortest_path_and_rejects_the_rest():
    assert is_shortest_path(TWO_PATHS, mask_of(LEFT_THEN_BOTTOM))
    assert is_shortest_path(TWO_PATHS, mask_of(TOP_THEN_RIGHT))
    assert not is_shortest_path(TWO_PATHS, mask_of(LEFT_THEN_BOTTOM + [(1, 2)]))  # one cell too many
    assert not is_shortest_path(TWO_PATHS, mask_of(LEFT_THEN_BOTTOM[:-1]))  # goal missing
    assert not is_shortest_path(TWO_PATHS, mask_of([(1, 1), (2, 1), (3, 1), (2, 2), (3, 3)]))  # a wall
    assert not is_shortest_path(TWO_PATHS, np.zeros((5, 5)))
    assert not is_shortest_path(TWO_PATHS, np.zeros((7, 7)))  # wrong shape


def test_maze_checker_rejects_shortest_path_cells_that_do_not_join_up():
    grid = np.ones((7, 7), dtype=np.uint8)
    grid[1:6, 1:6] = 0
    grid[1, 1], grid[5, 5] = 4, 3
    path = [(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert is_shortest_path(grid, mask_of(path, (7, 7)))
    # Right count, every cell on some shortest path, distances 0..8 once each, but (1,2) and
    # (3,1) are not neighbours.
    broken = [(1, 1), (1, 2), (3, 1), (3, 2), (3, 3), (3, 4), (4, 4), (4, 5), (5, 5)]
    assert not is_shortest_path(grid, mask_of(broken, (7, 7)))
    # A longer path (a detour) is not a shortest one.
    assert not is_shortest_path(grid, mask_of(path + [(2, 1)], (7, 7)))


def test_maze_next_move_classes_lead_from_start_to_goal_in_the_shortest_length():
    task = MazeTask()
    rng = np.random.default_rng(1)
    moves = {2: (-1, 0), 3: (1, 0), 4: (0, -1), 5: (0, 1)}
    for grid in task.sample(rng, 20, {"sizes": [9], "loop_fraction": 0.3}):
        aux = next_move_classes(grid)
        assert set(np.unique(aux[grid == 1])) == {0}
        here = tuple(int(v) for v in np.argwhere(grid == 4)[0])
        visited = [here]
        while aux[here] != 1:
            dr, dc = moves[int(aux[here])]
            here = (here[0] + dr, here[1] + dc)
            visited.append(here)
        assert len(visited) - 1 == shortest_path_length(grid)
        np.testing.assert_array_equal(mask_of(visited, grid.shape), maze_solution_mask(grid))


def test_maze_augmentation_keeps_the_answer_valid_and_recomputes_the_target():
    task = MazeTask()
    rng = np.random.default_rng(0)
    mazes = task.sample(rng, 64, {"sizes": [11], "loop_fraction": 0.4})
    labels = task.targets(mazes)
    augmented, new_labels = task.augment(rng, mazes, labels)
    assert not np.array_equal(augmented, mazes)
    for before, after, target in zip(mazes, augmented, new_labels):
        assert sorted(np.unique(after, return_counts=True)[1]) == sorted(np.unique(before, return_counts=True)[1])
        assert shortest_path_length(after) == shortest_path_length(before)
        np.testing.assert_array_equal(target, maze_solution_mask(after))
        assert task.is_valid(after, target)


def test_maze_sampling_is_deterministic_and_mixes_sizes_and_loops():
    task = MazeTask()
    params = {"sizes": [7, 9, 11], "loop_fraction": [0.0, 0.5]}
    a = [task.sample(np.random.default_rng(3), 4, params) for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])
    rng = np.random.default_rng(4)
    shapes = {task.sample(rng, 2, params).shape[1] for _ in range(30)}
    assert shapes == {7, 9, 11}


@pytest.mark.parametrize(
    "params, message",
    [
        ({"sizes": [10]}, "not allowed"),
        ({"sizes": [65]}, "not allowed"),
        ({"loop_fraction": 1.5}, "loop_fraction"),
        ({"colour": 1}, "unknown maze parameter"),
    ],
)
def test_maze_bad_parameters_fail_clearly(params, message):
    with pytest.raises(PuzzleError, match=message):
        MazeTask().check_params(params)


def test_maze_bad_layouts_fail_clearly():
    task = MazeTask()
    with pytest.raises(PuzzleError, match="code 2"):
        task.check_inputs(np.where(TWO_PATHS == 0, 2, TWO_PATHS))
    with pytest.raises(PuzzleError, match="start cells"):
        task.check_inputs(np.where(TWO_PATHS == 4, 0, TWO_PATHS))
    with pytest.raises(PuzzleError, match="must be"):
        task.check_inputs(np.ones((2, 2, 2, 2), dtype=np.uint8))
    walled = TWO_PATHS.copy()
    walled[2, 1] = walled[1, 2] = 1
    with pytest.raises(PuzzleError, match="cannot be reached"):
        task.targets(task.check_inputs(walled))


# ---- sudoku -------------------------------------------------------------------------------
def test_sudoku_target_is_the_known_solution():
    task = SudokuTask()
    np.testing.assert_array_equal(task.targets(task.check_inputs(WIKI_PUZZLE))[0], WIKI_SOLUTION)


def test_sudoku_checker_accepts_valid_boards_and_rejects_the_rest():
    assert is_valid_solution(WIKI_PUZZLE, WIKI_SOLUTION)
    bad = WIKI_SOLUTION.copy()
    bad[0, 2], bad[0, 3] = bad[0, 3], bad[0, 2]  # breaks column rules
    assert not is_valid_solution(WIKI_PUZZLE, bad)
    holes = WIKI_SOLUTION.copy()
    holes[4, 4] = 0
    assert not is_valid_solution(WIKI_PUZZLE, holes)
    # A valid full grid that does not keep the givens.
    relabelled = np.where(WIKI_SOLUTION == 1, 2, np.where(WIKI_SOLUTION == 2, 1, WIKI_SOLUTION))
    assert is_complete_solution(relabelled)
    assert not is_valid_solution(WIKI_PUZZLE, relabelled)
    # An empty board accepts any valid full grid.
    assert is_valid_solution(np.zeros((9, 9), dtype=np.uint8), relabelled)


def test_sudoku_augmentations_keep_the_solution_valid_and_unique():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(20):
        puzzle, solution = sudoku_symmetry(rng, WIKI_PUZZLE, WIKI_SOLUTION)
        seen.add(puzzle.tobytes())
        assert (puzzle > 0).sum() == (WIKI_PUZZLE > 0).sum()
        assert is_valid_solution(puzzle, solution)
        result = solve(puzzle)
        assert result.unique
        np.testing.assert_array_equal(result.solution, solution)
    assert len(seen) == 20


def test_sudoku_sampling_covers_near_complete_boards_with_their_solutions():
    task = SudokuTask()
    params = {"mix": [{"n_empty": [1, 3]}]}
    puzzles, solutions = task.sample_with_solutions(np.random.default_rng(2), 8, params)
    empty = (puzzles == 0).sum(axis=(1, 2))
    assert empty.min() >= 1 and empty.max() <= 3
    for puzzle, solution in zip(puzzles, solutions):
        assert is_valid_solution(puzzle, solution)
    np.testing.assert_array_equal(task.targets(puzzles), solutions)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"mix": []}, "non-empty"),
        ({"mix": [{"difficulty": "insane"}]}, "difficulty"),
        ({"mix": [{"n_empty": 70}]}, "out of range"),
        ({"mix": [{"n_givens": 30, "size": 9}]}, "unknown key"),
    ],
)
def test_sudoku_bad_parameters_fail_clearly(params, message):
    with pytest.raises(PuzzleError, match=message):
        SudokuTask().check_params(params)


def test_sudoku_bad_boards_fail_clearly():
    task = SudokuTask()
    with pytest.raises(PuzzleError, match="9x9"):
        task.check_inputs(np.zeros((2, 8, 8), dtype=np.uint8))
    with pytest.raises(PuzzleError, match="value 10"):
        task.check_inputs(np.full((9, 9), 10))
    two = WIKI_PUZZLE.copy()
    two[0, 1] = two[0, 0]
    with pytest.raises(PuzzleError, match="board 0"):
        task.targets(task.check_inputs(two))


def test_metrics_count_exact_valid_and_cells():
    task = MazeTask()
    grids = task.check_inputs(np.stack([TWO_PATHS, TWO_PATHS]))
    labels = task.targets(grids)
    preds = np.stack([mask_of(TOP_THEN_RIGHT), labels[1]])
    scores = task.metrics(grids, preds, labels)
    assert scores["exact"].tolist() == [False, True]
    assert scores["valid"].tolist() == [True, True]
    assert scores["cell_accuracy"][0] == pytest.approx(19 / 25)  # 3 cells differ each way


# ---- data cache and registry --------------------------------------------------------------
def test_dataset_cache_round_trip_and_refusals(tmp_path):
    maze = MazeTask()
    params = {"sizes": [7]}
    first = cached_dataset(maze, params, 10, 5, tmp_path, "val")
    files = sorted((tmp_path / "puzzles").iterdir())
    assert [f.suffix for f in files] == [".json", ".npz"]
    again = cached_dataset(maze, params, 10, 5, tmp_path, "val")
    np.testing.assert_array_equal(first["inputs"], again["inputs"])
    np.testing.assert_array_equal(first["labels"], make_dataset(maze, params, 10, 5)["labels"])
    npz = files[1]
    with pytest.raises(PuzzleError, match="'maze' puzzles, not 'sudoku'"):
        load_dataset(npz, SudokuTask())
    meta = json.loads(files[0].read_text())
    files[0].write_text(json.dumps({**meta, "generator_version": "maze-0"}))
    with pytest.raises(PuzzleError, match="generator version"):
        cached_dataset(maze, params, 10, 5, tmp_path, "val")
    files[0].write_text(json.dumps(meta))
    # A crafted file with a pickled object array is refused, never unpickled.
    np.savez(npz, inputs=np.array([{"x": 1}], dtype=object), labels=np.zeros(1))
    with pytest.raises(PuzzleError, match="not a readable puzzle dataset"):
        load_dataset(npz, maze)


def test_sudoku_cache_with_range_parameters_is_found_again(tmp_path):
    """Ranges are tuples in checked params and lists in the JSON beside the set: a second run
    must reuse the set instead of calling its own metadata a mismatch."""
    sudoku = SudokuTask()
    params = {"mix": [{"weight": 1.0, "n_empty": [1, 3]}]}
    first = cached_dataset(sudoku, params, 3, 1, tmp_path, "train")
    again = cached_dataset(sudoku, params, 3, 1, tmp_path, "train")
    np.testing.assert_array_equal(first["inputs"], again["inputs"])
    assert len(list((tmp_path / "puzzles").iterdir())) == 2


def test_registry_is_open_and_names_are_checked():
    assert {"maze", "sudoku"} <= set(TASKS)
    with pytest.raises(PuzzleError, match="registered tasks"):
        get_task("chess")

    class TinyTask(PuzzleTask):
        name = "tiny-test"

        def check_params(self, params):
            return dict(params)

        def sample(self, rng, n, params):
            return rng.integers(0, 2, size=(n, 2, 2)).astype(np.uint8)

        def check_inputs(self, inputs, what="puzzles"):
            return np.asarray(inputs, dtype=np.uint8)

        def targets(self, inputs):
            return 1 - inputs.astype(np.int64)

        def is_valid(self, puzzle, prediction):
            return bool(np.all(prediction == 1 - puzzle))

    try:
        register_task(TinyTask)
        assert isinstance(get_task("tiny-test"), TinyTask)
        data = make_dataset(get_task("tiny-test"), {}, 3, 0)
        assert data["labels"].shape == (3, 2, 2)
        with pytest.raises(ValueError, match="already registered"):
            register_task(type("Other", (TinyTask,), {}))
    finally:
        TASKS.pop("tiny-test", None)


def test_maze_sets_draw_a_loop_fraction_per_maze_and_a_share_of_perfect_mazes():
    task = MazeTask()
    perfect_open = 25 + 24  # an 11x11 spanning tree: 25 lattice cells, 24 passages
    mazes = task.sample(np.random.default_rng(0), 200, {"sizes": [11], "loop_fraction": 0.3, "perfect_share": 0.5})
    open_cells = (mazes != 1).sum(axis=(1, 2))
    assert set(open_cells.tolist()) == {perfect_open, perfect_open + round(0.3 * 16)}
    assert 70 <= (open_cells == perfect_open).sum() <= 130
    mixed = task.sample(np.random.default_rng(1), 200, {"sizes": [11], "loop_fraction": [0.0, 0.3]})
    assert len(set((mixed != 1).sum(axis=(1, 2)).tolist())) >= 5  # one loop fraction per maze, not per set


@pytest.mark.parametrize("share", [-0.1, 1.5, "half", True])
def test_maze_perfect_share_must_be_a_probability(share):
    with pytest.raises(PuzzleError, match="perfect_share"):
        MazeTask().check_params({"perfect_share": share})
