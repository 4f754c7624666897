"""The Sudoku expert: correct digits only, the documented human order, from the board alone."""

from __future__ import annotations

import time

import numpy as np
import pytest

from expert import make_expert
from expert.sudoku import REASONS, SudokuExpert
from hrm_gym.sudoku import SudokuEnv, decode_action, encode_action, parse_board, solve

CLASSIC = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
CLASSIC_SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
INKALA = "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4.."


def _reference_next(board: np.ndarray) -> tuple[tuple[int, int], str]:
    """The documented order, written independently with sets and loops."""
    empties = [(r, c) for r in range(9) for c in range(9) if board[r, c] == 0]

    def unit_cells(r, c):
        br, bc = r // 3 * 3, c // 3 * 3
        return (
            [(r, k) for k in range(9)],
            [(k, c) for k in range(9)],
            [(br + i, bc + j) for i in range(3) for j in range(3)],
        )

    cand = {}
    for r, c in empties:
        used = {int(board[x, y]) for unit in unit_cells(r, c) for x, y in unit}
        cand[(r, c)] = set(range(1, 10)) - used
    naked = [cell for cell in empties if len(cand[cell]) == 1]
    if naked:
        return min(naked), "naked_single"
    hidden = [
        cell
        for cell in empties
        for d in cand[cell]
        for unit in unit_cells(*cell)
        if sum(1 for other in unit if d in cand.get(other, ())) == 1
    ]
    if hidden:
        return min(hidden), "hidden_single"
    return min(empties, key=lambda cell: (len(cand[cell]), cell)), "most_constrained"


def _play(env: SudokuEnv, expert: SudokuExpert, obs: np.ndarray, info: dict) -> tuple[int, dict]:
    steps = 0
    while True:
        obs, _, terminated, truncated, info = env.step(expert.act(obs, info))
        steps += 1
        if terminated or truncated:
            return steps, info


def test_factory_takes_and_ignores_env_kwargs():
    expert = make_expert("HRMSudoku-v0", difficulty="hard", dense_reward=0.5, max_steps=81)
    assert isinstance(expert, SudokuExpert) and expert.n_actions == 729


@pytest.mark.parametrize(("difficulty", "seeds"), [("easy", range(4)), ("medium", range(3)), ("hard", [1])])
def test_expert_solves_generated_puzzles_in_exactly_the_empty_cell_count(difficulty, seeds):
    env, expert = SudokuEnv(difficulty=difficulty), SudokuExpert()
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        expert.reset()
        steps, final = _play(env, expert, obs, info)
        assert final["solved"] and not final["invalid_move"]
        assert steps == info["empty_cells"]


def test_expert_follows_the_documented_order_on_every_state():
    env, expert = SudokuEnv(), SudokuExpert()
    puzzles = [parse_board(CLASSIC), parse_board(INKALA)]
    seen = set()
    for seed, puzzle in enumerate(puzzles + [None, None]):
        options = {"puzzle": puzzle} if puzzle is not None else None
        obs, info = env.reset(seed=seed, options=options)
        while True:
            row, col, digit, reason = expert.next_placement(obs)
            cell, expected_reason = _reference_next(obs)
            assert (row, col) == cell and reason == expected_reason
            assert digit == env._solution[row, col]
            seen.add(reason)
            obs, _, terminated, truncated, info = env.step(expert.act(obs, info))
            if terminated or truncated:
                break
        assert info["solved"]
    assert seen == set(REASONS), "the puzzles should exercise every rule of the order"


def test_inkala_starts_with_the_most_constrained_cell():
    row, col, digit, reason = SudokuExpert().next_placement(parse_board(INKALA))
    # No single anywhere; (7, 6) is the first cell with two candidates (3 and 9), and the
    # solution has 9 there.
    assert reason == "most_constrained" and (row, col, digit) == (7, 6, 9)


def test_optimal_actions_are_the_solution_digits_of_empty_cells():
    board = parse_board(CLASSIC)
    solution = solve(board).solution
    expert = SudokuExpert()
    mask = expert.optimal_actions(board, {})
    assert mask.dtype == bool and mask.shape == (729,)
    expected = {encode_action(int(r), int(c), int(solution[r, c])) for r, c in np.argwhere(board == 0)}
    assert set(np.flatnonzero(mask).tolist()) == expected
    action, label_mask = expert.label(board, {})
    assert action == expert.act(board, {}) and mask[action]
    assert np.array_equal(label_mask, mask)


def test_optimal_actions_label_states_off_the_expert_path():
    """DAgger: a learner filling cells in another order still gets correct labels."""
    rng = np.random.default_rng(0)
    env, expert = SudokuEnv(), SudokuExpert()
    obs, info = env.reset(seed=9)
    while True:
        mask = expert.optimal_actions(obs, info)
        assert mask.sum() == info["empty_cells"]
        assert np.all(info["action_mask"][mask])  # correct digits are always legal
        obs, _, terminated, _, info = env.step(int(rng.choice(np.flatnonzero(mask))))
        if terminated:
            break
    assert info["solved"]


def test_expert_is_deterministic_and_detects_a_new_puzzle_without_reset():
    first, second = parse_board(CLASSIC), parse_board(INKALA)
    expert = SudokuExpert()
    a = expert.act(first, {})
    assert expert.act(second, {}) == SudokuExpert().act(second, {})  # cache replaced, not reused
    assert expert.act(first, {}) == a == SudokuExpert().act(first, {})
    # A board that keeps the cached puzzle's digits reuses its solution and stays correct.
    row, col, digit = decode_action(a)
    advanced = first.copy()
    advanced[row, col] = digit
    assert expert.optimal_actions(advanced, {}).sum() == int(np.sum(advanced == 0))


@pytest.mark.parametrize(
    ("board", "message"),
    [
        (np.zeros((9, 8)), "shape"),
        (np.full((9, 9), 11), "observation holds 11"),
        (np.zeros((9, 9)), "several solutions"),
        (parse_board(CLASSIC.replace("53..", "535.", 1)), "breaks the Sudoku rules"),
        (parse_board(CLASSIC_SOLUTION), "full"),
    ],
)
def test_bad_observations_are_rejected(board, message):
    with pytest.raises(ValueError, match=message):
        SudokuExpert().act(board, {})


def test_board_without_solution_is_rejected():
    board = np.zeros((9, 9), dtype=np.uint8)
    board[0, :8] = [1, 2, 3, 4, 5, 6, 7, 8]
    board[5, 8] = 9
    with pytest.raises(ValueError, match="no solution"):
        SudokuExpert().optimal_actions(board, {})


def test_board_with_several_solutions_is_rejected_fast():
    """17 givens, several solutions, that a search branching only on cells needs >10 s for."""
    board = parse_board(".....6....59.....82....8....45........3........6..3.54...325..6..................")
    start = time.perf_counter()
    with pytest.raises(ValueError, match="several solutions"):
        SudokuExpert().act(board, {})
    assert time.perf_counter() - start < 2.0
