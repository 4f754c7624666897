"""Sudoku: the solver on known puzzles, the generator's guarantees, and HRMSudoku-v0's rules."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hrm_gym.sudoku import (
    DIFFICULTY_BANDS,
    GIVEN_BANDS,
    MAX_EMPTY,
    SudokuEnv,
    board_to_string,
    candidates,
    check_board,
    count_solutions,
    decode_action,
    difficulty_of,
    encode_action,
    generate_puzzle,
    generate_rated_puzzle,
    is_complete_solution,
    is_valid_partial,
    parse_board,
    random_solution,
    rate_difficulty,
    rule_violations,
    solve,
)
from hrm_gym.sudoku.solver import SearchLimitError, search_flat, solved_by_singles

# The Wikipedia example puzzle and its published solution.
CLASSIC = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
CLASSIC_SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
# Arto Inkala's "world's hardest Sudoku" (2012) and its published solution.
INKALA = "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4.."
INKALA_SOLUTION = "812753649943682175675491283154237896369845721287169534521974368438526917796318452"


def _solution_swapped_1_2() -> np.ndarray:
    """The classic solution with every 1 and 2 erased: swapping them gives a second solution."""
    board = parse_board(CLASSIC_SOLUTION)
    board[(board == 1) | (board == 2)] = 0
    return board


def _no_solution_board() -> np.ndarray:
    """Breaks no rule, yet (0, 8) needs a 9 that its column already holds."""
    board = np.zeros((9, 9), dtype=np.uint8)
    board[0, :8] = [1, 2, 3, 4, 5, 6, 7, 8]
    board[5, 8] = 9
    return board


def _brute_force_legal(board: np.ndarray) -> np.ndarray:
    legal = np.zeros((9, 9, 9), dtype=bool)
    for r in range(9):
        for c in range(9):
            if board[r, c]:
                continue
            br, bc = r // 3 * 3, c // 3 * 3
            box = board[br : br + 3, bc : bc + 3].ravel()
            used = set(board[r, :]) | set(board[:, c]) | set(box)
            for d in range(1, 10):
                legal[r, c, d - 1] = d not in used
    return legal


# ---- solver -----------------------------------------------------------------------------------
def test_classic_puzzle_solves_by_singles_alone():
    result = solve(parse_board(CLASSIC))
    assert result.unique and result.exhausted
    assert board_to_string(result.solution) == CLASSIC_SOLUTION
    assert result.backtracks == 0 and result.guesses == 0
    assert rate_difficulty(parse_board(CLASSIC)) == 0


def test_inkala_puzzle_needs_search_and_its_count_is_pinned():
    result = solve(parse_board(INKALA))
    assert result.unique
    assert board_to_string(result.solution) == INKALA_SOLUTION
    # The difficulty measure is fixed by the strategy: a change here changes every band.
    assert result.backtracks == 310
    assert solve(parse_board(INKALA), hidden_singles=False).backtracks == 3585


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backtracks_of_a_unique_puzzle_do_not_depend_on_digit_order(seed):
    shuffled = solve(parse_board(INKALA), rng=np.random.default_rng(seed))
    assert shuffled.unique and shuffled.backtracks == 310


def test_several_solutions_are_detected():
    board = _solution_swapped_1_2()
    result = solve(board, max_solutions=2)
    assert len(result.solutions) == 2 and not result.unique and not result.exhausted
    assert count_solutions(board) == 2 and count_solutions(board, limit=5) == 2
    assert count_solutions(np.zeros((9, 9), dtype=np.uint8), limit=3) == 3
    for solution in result.solutions:
        assert is_complete_solution(solution)
        assert np.all(solution[board > 0] == board[board > 0])
    with pytest.raises(ValueError, match="several solutions"):
        _ = result.solution
    with pytest.raises(ValueError, match="several solutions"):
        rate_difficulty(board)


def test_a_rule_abiding_board_without_solution_gives_none():
    board = _no_solution_board()
    assert is_valid_partial(board)
    result = solve(board)
    assert result.solutions == [] and result.exhausted and not result.unique
    assert count_solutions(board) == 0
    with pytest.raises(ValueError, match="no solution"):
        _ = result.solution
    with pytest.raises(ValueError, match="no solution"):
        rate_difficulty(board)


@pytest.mark.parametrize(
    ("board", "message"),
    [
        (np.zeros((9, 8)), r"shape \(9, 9\)"),
        (np.zeros((81,)), r"shape \(9, 9\)"),
        (np.zeros((3, 9, 9)), r"shape \(9, 9\)"),
        ([[0] * 9] * 8 + [[0] * 8], "rectangular|shape"),
        (np.full((9, 9), 10), "10 at \\(row 0, col 0\\); allowed: 0"),
        (np.full((9, 9), -1), "-1 at"),
        (np.full((9, 9), 1.5), "non-integer"),
        (np.full((9, 9), np.nan), "non-integer"),
        (np.zeros((9, 9), dtype=bool), "dtype bool"),
        (np.full((9, 9), "1"), "dtype"),
    ],
)
def test_malformed_boards_are_rejected(board, message):
    with pytest.raises(ValueError, match=message):
        solve(board)
    with pytest.raises(ValueError, match=message):
        check_board(board)


def test_float_boards_of_whole_numbers_are_accepted():
    board = parse_board(CLASSIC).astype(np.float64)
    assert board_to_string(solve(board).solution) == CLASSIC_SOLUTION


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ([(0, 0, 5), (0, 7, 5)], r"digit 5 appears twice in row 0: at \(0, 0\) and \(0, 7\)"),
        ([(1, 3, 4), (8, 3, 4)], r"digit 4 appears twice in column 3: at \(1, 3\) and \(8, 3\)"),
        ([(3, 3, 9), (5, 5, 9)], r"digit 9 appears twice in box 4: at \(3, 3\) and \(5, 5\)"),
    ],
)
def test_rule_breaking_boards_are_rejected_naming_the_clash(cells, message):
    board = np.zeros((9, 9), dtype=np.uint8)
    for r, c, d in cells:
        board[r, c] = d
    assert not is_valid_partial(board)
    assert len(rule_violations(board)) == 1
    with pytest.raises(ValueError, match=message):
        solve(board)


def test_complete_solution_checks():
    solution = parse_board(CLASSIC_SOLUTION)
    assert is_complete_solution(solution) and is_valid_partial(solution)
    assert not is_complete_solution(parse_board(CLASSIC))  # valid but not complete
    broken = solution.copy()
    broken[0, 0], broken[0, 1] = broken[0, 1], broken[0, 0]  # rows fine, columns broken
    assert not is_complete_solution(broken) and not is_valid_partial(broken)


def test_candidates_of_the_classic_puzzle():
    cand = candidates(parse_board(CLASSIC))
    assert cand.shape == (9, 9, 9) and cand.dtype == bool
    assert [d + 1 for d in np.flatnonzero(cand[0, 2])] == [1, 2, 4]
    assert not cand[0, 0].any()  # a given has no candidates


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), keep=st.floats(0.0, 1.0))
def test_candidates_match_the_rules(seed, keep):
    rng = np.random.default_rng(seed)
    board = random_solution(rng)
    board[rng.random((9, 9)) > keep] = 0
    assert np.array_equal(candidates(board), _brute_force_legal(board))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_empty=st.integers(30, 64))
def test_singles_alone_decide_the_easy_band(seed, n_empty):
    rng = np.random.default_rng(seed)
    board = random_solution(rng)
    board.flat[rng.permutation(81)[:n_empty]] = 0
    result = solve(board)
    assert solved_by_singles(board.ravel().tolist()) == (result.unique and result.backtracks == 0)


def test_random_solutions_are_valid_and_seeded():
    first = random_solution(np.random.default_rng(3))
    assert is_complete_solution(first)
    assert np.array_equal(first, random_solution(np.random.default_rng(3)))
    assert not np.array_equal(first, random_solution(np.random.default_rng(4)))


def test_parse_board_errors():
    assert parse_board(CLASSIC.replace(".", "0")).tolist() == parse_board(CLASSIC).tolist()
    with pytest.raises(ValueError, match="81 cells"):
        parse_board("123")
    with pytest.raises(ValueError, match=r"\['x'\]"):
        parse_board("x" + CLASSIC[1:])


# ---- generator --------------------------------------------------------------------------------
def _check_generated(puzzle: np.ndarray, solution: np.ndarray) -> int:
    assert puzzle.shape == solution.shape == (9, 9)
    assert puzzle.dtype == solution.dtype == np.uint8
    assert is_complete_solution(solution)
    assert np.all(puzzle[puzzle > 0] == solution[puzzle > 0])
    result = solve(puzzle)
    assert result.unique and np.array_equal(result.solution, solution)
    return result.backtracks


# Seeds chosen so that each band is generated fast here (the output is deterministic).
@pytest.mark.parametrize(("difficulty", "seed"), [("easy", 0), ("medium", 0), ("hard", 1), ("extreme", 3)])
def test_generated_puzzles_are_unique_and_in_their_band(difficulty, seed):
    rated = generate_rated_puzzle(np.random.default_rng(seed), difficulty)
    backtracks = _check_generated(rated.puzzle, rated.solution)
    assert backtracks == rated.backtracks
    lo, hi = DIFFICULTY_BANDS[difficulty]
    assert lo <= backtracks and (hi is None or backtracks <= hi)
    assert difficulty_of(backtracks) == difficulty


def test_several_easy_and_medium_puzzles_stay_in_band():
    rng = np.random.default_rng(11)
    for difficulty in ("easy", "medium"):
        for _ in range(4):
            puzzle, solution = generate_puzzle(rng, difficulty)
            assert difficulty_of(_check_generated(puzzle, solution)) == difficulty


@pytest.mark.parametrize("n_empty", [0, 1, 2, 35, MAX_EMPTY])
def test_exact_number_of_empty_cells(n_empty):
    puzzle, solution = generate_puzzle(np.random.default_rng(n_empty), n_empty=n_empty)
    assert int(np.sum(puzzle == 0)) == n_empty
    _check_generated(puzzle, solution)


def test_ranges_of_empty_cells_and_the_moderate_givens_band():
    rng = np.random.default_rng(5)
    lo, hi = GIVEN_BANDS["moderate"]
    assert (lo, hi) == (28, 40)
    givens = set()
    for _ in range(8):
        puzzle, solution = generate_puzzle(rng, n_givens=(lo, hi))
        count = int(np.sum(puzzle > 0))
        assert lo <= count <= hi
        givens.add(count)
        _check_generated(puzzle, solution)
    assert len(givens) > 1, "a range should be drawn from, not pinned"
    for _ in range(4):
        puzzle, _ = generate_puzzle(rng, n_empty=(1, 35))
        assert 1 <= int(np.sum(puzzle == 0)) <= 35


def test_difficulty_and_empty_cells_combine():
    puzzle, solution = generate_puzzle(np.random.default_rng(2), "medium", n_empty=50)
    assert int(np.sum(puzzle == 0)) == 50
    assert difficulty_of(_check_generated(puzzle, solution)) == "medium"


def test_generation_is_seeded():
    a = generate_puzzle(np.random.default_rng(42), "easy")
    b = generate_puzzle(np.random.default_rng(42), "easy")
    c = generate_puzzle(np.random.default_rng(43), "easy")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


# Boards drawn by seed, pinned: a change of the solver's search must not change what the
# generator makes (nor the difficulty it reports).
PINNED_PUZZLES = [
    ("medium", None, 0, "040000032106500400008000000600000010080403005000028700060100090000070020005080000", 2),
    ("medium", None, 1, "025000900009000023000400000780600009000030800050200600000080000000040050674050010", 1),
    ("hard", None, 1, "025001904009000023000400000780600009000030800050200600000080000000000050670000010", 6),
    (None, 40, 0, "549800032106590400208001000604700010087413005000628740762100090010070024005080070", 0),
]


@pytest.mark.parametrize(("difficulty", "n_empty", "seed", "puzzle", "backtracks"), PINNED_PUZZLES)
def test_generated_puzzles_are_pinned_by_seed(difficulty, n_empty, seed, puzzle, backtracks):
    rated = generate_rated_puzzle(np.random.default_rng(seed), difficulty, n_empty=n_empty)
    assert "".join(map(str, rated.puzzle.ravel())) == puzzle
    assert rated.backtracks == backtracks


def test_random_solution_is_pinned_by_seed():
    grid = random_solution(np.random.default_rng(0))
    assert "".join(map(str, grid.ravel())) == (
        "549867132136592487278341956624759813987413265351628749762134598813975624495286371"
    )


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_givens=st.integers(17, 40), from_grid=st.booleans())
def test_counting_and_rating_searches_agree_on_the_number_of_solutions(seed, n_givens, from_grid):
    """Boards kept from a full grid (at least one solution) or random rule-abiding givens
    (often none): both searches find the same number of solutions, up to 2."""
    rng = np.random.default_rng(seed)
    if from_grid:
        board = random_solution(rng)
        board.flat[rng.permutation(81)[n_givens:]] = 0
    else:
        board = np.zeros((9, 9), dtype=np.uint8)
        for cell in rng.permutation(81)[:n_givens]:
            for digit in rng.permutation(9) + 1:
                board.flat[cell] = digit
                if is_valid_partial(board):
                    break
                board.flat[cell] = 0
    flat = board.ravel().tolist()
    counted, _, _ = search_flat(flat, 2, count=True)
    try:
        rated, _, _ = search_flat(flat, 2)
    except SearchLimitError:  # a rare board the cell-only search cannot settle: nothing to compare
        rated = counted
    assert len(counted) == len(rated)
    for solution in counted:
        assert is_complete_solution(np.asarray(solution).reshape(9, 9))
        assert all(s == g for s, g in zip(solution, flat, strict=True) if g)


def test_minimal_puzzles_when_nothing_is_asked():
    puzzle, solution = generate_puzzle(np.random.default_rng(0))
    _check_generated(puzzle, solution)
    for r, c in np.argwhere(puzzle > 0):  # no given can go without losing uniqueness
        trial = puzzle.copy()
        trial[r, c] = 0
        assert count_solutions(trial) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"difficulty": "impossible"}, "unknown difficulty 'impossible'"),
        ({"n_empty": -1}, "n_empty=-1 is out of range; allowed: 0..58"),
        ({"n_empty": MAX_EMPTY + 1}, "out of range"),
        ({"n_givens": 10}, "n_givens=10 is out of range; allowed: 23..81"),
        ({"n_empty": (30, 20)}, "inclusive"),
        ({"n_empty": 2.5}, "inclusive"),
        ({"n_empty": "many"}, "inclusive"),
        ({"n_empty": True}, "inclusive"),
        ({"n_empty": 3, "n_givens": 3}, "not both"),
        ({"difficulty": "medium", "n_empty": 0}, "a full board has none"),
    ],
)
def test_generator_rejects_bad_requests(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_puzzle(np.random.default_rng(0), **kwargs)


def test_generator_needs_a_numpy_generator_and_says_when_it_gives_up():
    with pytest.raises(ValueError, match="numpy.random.Generator"):
        generate_puzzle(0, "easy")
    with pytest.raises(RuntimeError, match="no puzzle found in 1 attempts"):
        generate_puzzle(np.random.default_rng(0), "extreme", n_empty=3, max_attempts=1)


def test_difficulty_of_band_edges():
    expected = ["easy", "medium", "medium", "hard", "hard", "extreme", "extreme"]
    assert [difficulty_of(b) for b in (0, 1, 4, 5, 14, 15, 1000)] == expected
    with pytest.raises(ValueError, match="backtracks"):
        difficulty_of(-1)


# ---- environment ------------------------------------------------------------------------------
def _classic_env(**kwargs) -> tuple[SudokuEnv, np.ndarray, dict]:
    env = SudokuEnv(**kwargs)
    obs, info = env.reset(seed=0, options={"puzzle": parse_board(CLASSIC)})
    return env, obs, info


def _solution_actions(puzzle: np.ndarray, solution: np.ndarray) -> list[int]:
    return [encode_action(int(r), int(c), int(solution[r, c])) for r, c in np.argwhere(puzzle == 0)]


def test_action_encoding():
    assert encode_action(0, 0, 1) == 0 and encode_action(8, 8, 9) == 728
    assert encode_action(2, 3, 4) == 2 * 81 + 3 * 9 + 3
    for r, c, d in [(1, 2, 3), (8, 0, 9)]:
        assert decode_action(encode_action(r, c, d)) == (r, c, d)
    with pytest.raises(ValueError, match="digits 1..9"):
        encode_action(0, 0, 0)
    with pytest.raises(ValueError, match="action"):
        decode_action(729)


def test_spaces_and_reset():
    env, obs, info = _classic_env()
    assert env.observation_space == gym.spaces.Box(0, 9, (9, 9), np.uint8)
    assert env.action_space == gym.spaces.Discrete(729)
    assert obs.dtype == np.uint8 and np.array_equal(obs, parse_board(CLASSIC))
    assert info["solved"] is False and info["invalid_move"] is False
    assert info["invalid_reason"] is None and info["steps"] == 0
    assert info["empty_cells"] == CLASSIC.count(".") and info["backtracks"] == 0
    assert np.array_equal(env.givens, obs > 0)


def test_solving_gives_the_reward_and_terminates():
    env, obs, _ = _classic_env(solved_reward=2.0, dense_reward=0.0)
    actions = _solution_actions(obs, parse_board(CLASSIC_SOLUTION))
    rewards = []
    for k, action in enumerate(actions):
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        assert not truncated and info["invalid_move"] is False
        assert terminated == (k == len(actions) - 1)
    assert rewards[:-1] == [0.0] * (len(actions) - 1) and rewards[-1] == 2.0
    assert info["solved"] and info["empty_cells"] == 0
    assert board_to_string(obs) == CLASSIC_SOLUTION
    assert not info["action_mask"].any()


def test_dense_reward_per_correct_digit():
    env, obs, _ = _classic_env(solved_reward=1.0, dense_reward=0.25)
    actions = _solution_actions(obs, parse_board(CLASSIC_SOLUTION))
    total = sum(env.step(a)[1] for a in actions)
    assert total == pytest.approx(0.25 * len(actions) + 1.0)


def test_correct_placement_updates_board_and_mask():
    env, obs, info = _classic_env()
    action = encode_action(0, 2, 4)  # the solution digit of (0, 2)
    assert info["action_mask"][action]
    obs, reward, terminated, truncated, info = env.step(action)
    assert obs[0, 2] == 4 and not terminated and not truncated and reward == 0.0
    assert not info["action_mask"][action]
    assert not info["action_mask"][encode_action(0, 3, 4)]  # 4 now sits in row 0
    assert info["empty_cells"] == CLASSIC.count(".") - 1


@pytest.mark.parametrize(
    ("row", "col", "digit", "reason"),
    [
        (0, 2, 5, "breaks_rule"),  # 5 is already in row 0
        (0, 2, 8, "breaks_rule"),  # 8 is already in column 2
        (0, 2, 9, "breaks_rule"),  # 9 is already in box 0
        (0, 2, 1, "wrong_digit"),  # legal, but the solution has 4 there
        (0, 0, 5, "occupied"),  # overwriting a given, even with its own digit
        (0, 0, 1, "occupied"),
    ],
)
def test_invalid_moves_end_the_episode_with_the_penalty(row, col, digit, reason):
    env, before, info = _classic_env(invalid_move_penalty=-3.0)
    action = encode_action(row, col, digit)
    assert info["action_mask"][action] == (reason == "wrong_digit")
    obs, reward, terminated, truncated, info = env.step(action)
    assert terminated and not truncated and reward == -3.0
    assert info["invalid_move"] is True and info["invalid_reason"] == reason
    assert info["solved"] is False
    assert np.array_equal(obs, before), "an invalid move leaves the board unchanged"
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(encode_action(0, 2, 4))


def test_overwriting_a_placed_digit_is_invalid():
    env, _, _ = _classic_env()
    env.step(encode_action(0, 2, 4))
    _, reward, terminated, _, info = env.step(encode_action(0, 2, 4))
    assert terminated and reward == -1.0 and info["invalid_reason"] == "occupied"


def test_masks_match_the_rules_along_an_episode():
    env = SudokuEnv(difficulty="easy")
    obs, info = env.reset(seed=3)
    solution = env._solution
    for action in _solution_actions(obs, solution)[:20]:
        mask = env.action_masks()
        assert mask.dtype == bool and mask.shape == (729,)
        assert np.array_equal(mask, info["action_mask"])
        assert np.array_equal(mask, _brute_force_legal(obs).reshape(729))
        obs, _, _, _, info = env.step(action)


def test_every_action_of_a_state_does_what_its_mask_says():
    env = SudokuEnv()
    puzzle, solution = parse_board(CLASSIC), parse_board(CLASSIC_SOLUTION)
    _, info = env.reset(options={"puzzle": puzzle})
    mask = info["action_mask"]
    outcomes = {}
    for action in range(729):
        env.reset(options={"puzzle": puzzle})
        _, reward, terminated, _, info = env.step(action)
        outcomes[action] = info["invalid_reason"]
        row, col, digit = decode_action(action)
        if mask[action]:
            expected = None if solution[row, col] == digit else "wrong_digit"
        else:
            expected = "occupied" if puzzle[row, col] else "breaks_rule"
        assert outcomes[action] == expected, (row, col, digit)
        assert terminated == (expected is not None)
    assert sum(v is None for v in outcomes.values()) == CLASSIC.count(".")


def test_truncation_after_max_steps():
    env, obs, _ = _classic_env(max_steps=3)
    actions = _solution_actions(obs, parse_board(CLASSIC_SOLUTION))
    for k in range(3):
        _, _, terminated, truncated, info = env.step(actions[k])
        assert not terminated and truncated == (k == 2)
    assert info["steps"] == 3
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(actions[3])


def test_step_and_masks_before_reset_raise():
    env = SudokuEnv()
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(0)
    with pytest.raises(RuntimeError, match="before reset"):
        env.action_masks()


@pytest.mark.parametrize("bad", [-1, 729, 3.0, "a", None, np.array([1, 2])])
def test_actions_outside_the_space_are_rejected(bad):
    env, _, _ = _classic_env()
    with pytest.raises(ValueError, match="invalid action"):
        env.step(bad)


def test_numpy_integer_actions_are_accepted():
    env, _, _ = _classic_env()
    _, _, _, _, info = env.step(np.int64(encode_action(0, 2, 4)))
    assert info["invalid_move"] is False


def test_puzzle_option_with_its_solution():
    env = SudokuEnv()
    obs, info = env.reset(options={"puzzle": parse_board(INKALA), "solution": parse_board(INKALA_SOLUTION)})
    assert np.array_equal(obs, parse_board(INKALA)) and info["backtracks"] == 310


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"puzzle": np.zeros((9, 8))}, ValueError, r"puzzle must have shape \(9, 9\)"),
        ({"puzzle": np.full((9, 9), 12)}, ValueError, "puzzle holds 12"),
        ({"puzzle": _no_solution_board()}, ValueError, "no solution"),
        ({"puzzle": _solution_swapped_1_2()}, ValueError, "several solutions"),
        ({"puzzle": parse_board(CLASSIC_SOLUTION)}, ValueError, "no empty cell"),
        (
            {"puzzle": parse_board(CLASSIC), "solution": parse_board(INKALA_SOLUTION)},
            ValueError,
            "not the puzzle's unique solution",
        ),
        ({"puzzle": parse_board(CLASSIC), "solution": np.zeros(3)}, ValueError, "solution must"),
        ({"solution": parse_board(CLASSIC_SOLUTION)}, ValueError, 'needs "puzzle"'),
        ({"puzle": parse_board(CLASSIC)}, ValueError, "unknown reset option"),
    ],
)
def test_bad_puzzle_options_are_rejected(options, error, message):
    env = SudokuEnv()
    with pytest.raises(error, match=message):
        env.reset(seed=0, options=options)


def test_rule_breaking_puzzle_option_names_the_clash():
    board = parse_board(CLASSIC)
    board[0, 2] = 5  # a second 5 in row 0
    with pytest.raises(ValueError, match="puzzle breaks the Sudoku rules: digit 5 appears twice"):
        SudokuEnv().reset(options={"puzzle": board})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"difficulty": "trivial"}, "unknown difficulty"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": 2.5}, "max_steps"),
        ({"n_empty": 70}, "n_empty"),
        ({"render_mode": "window"}, "render_mode"),
        ({"invalid_move_penalty": float("nan")}, "invalid_move_penalty must be a finite number, got nan"),
        ({"dense_reward": "lots"}, "dense_reward must be a finite number, got 'lots'"),
        ({"n_empty": 0}, r"n_empty=0 allows a full board.*allowed: 1\.\.58"),
    ],
)
def test_bad_env_kwargs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SudokuEnv(**kwargs)


def test_generated_episodes_are_seeded_and_respect_kwargs():
    a, b = SudokuEnv(difficulty="medium"), SudokuEnv(difficulty="medium")
    obs_a, info_a = a.reset(seed=5)
    obs_b, info_b = b.reset(seed=5)
    assert np.array_equal(obs_a, obs_b) and info_a["backtracks"] == info_b["backtracks"]
    assert difficulty_of(info_a["backtracks"]) == "medium"
    assert not np.array_equal(obs_a, a.reset(seed=6)[0])
    env = SudokuEnv(difficulty=None, n_empty=(3, 5))
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        assert 3 <= info["empty_cells"] == int(np.sum(obs == 0)) <= 5


def test_registered_env_is_made_with_kwargs():
    env = gym.make("HRMSudoku-v0", difficulty="easy", dense_reward=0.1)
    obs, info = env.reset(seed=0)
    assert env.unwrapped.dense_reward == 0.1 and difficulty_of(info["backtracks"]) == "easy"
    assert obs.shape == (9, 9)


# ---- rendering --------------------------------------------------------------------------------
def test_ansi_marks_givens_placed_digits_and_the_wrong_move():
    env, _, _ = _classic_env(render_mode="ansi")
    env.step(encode_action(0, 2, 4))
    env.step(encode_action(0, 3, 2))  # legal but wrong (the solution has 6)
    text = env.render()
    lines = text.splitlines()
    assert lines[0].startswith(" 5 3 4'| .!") and "-------+-------+-------" in lines
    assert "invalid: 2 at (0, 3) wrong digit" in lines[-1]


def _pixels_of_cell(frame: np.ndarray, row: int, col: int, renderer) -> np.ndarray:
    px, m = renderer.cell_px, renderer.margin
    top, left = m + row * px, m + col * px
    return frame[top + 4 : top + px - 4, left + 4 : left + px - 4]


def test_rgb_array_tells_givens_placed_and_wrong_apart():
    from hrm_gym.sudoku.viewer import GIVEN_DIGIT, PLACED_DIGIT, WRONG_CELL

    env, _, _ = _classic_env(render_mode="rgb_array")
    env.step(encode_action(0, 2, 4))
    env.step(encode_action(0, 3, 2))
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape[2] == 3
    renderer = env._renderer

    def has(cell, color):
        return bool(np.all(cell == np.array(color, dtype=np.uint8), axis=2).any())

    given, placed, wrong = (_pixels_of_cell(frame, 0, c, renderer) for c in (0, 2, 3))
    assert has(given, GIVEN_DIGIT) and not has(given, PLACED_DIGIT)
    assert has(placed, PLACED_DIGIT) and not has(placed, GIVEN_DIGIT)
    assert has(wrong, WRONG_CELL)


def test_human_mode_runs_headless():
    env, _, _ = _classic_env(render_mode="human")
    env.step(encode_action(0, 2, 4))
    assert env.render() is None
    env.close()


def test_render_before_reset_raises():
    with pytest.raises(RuntimeError, match="before reset"):
        SudokuEnv(render_mode="ansi").render()
