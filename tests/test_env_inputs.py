"""Bad inputs to the environments end in a clear error, fast: puzzles the Sudoku checker must
settle, non-finite penalties, non-integer step limits, unplayable Sudoku sizes, and
``hrm-play`` without a display."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest

from hrm_gym import ENV_SPECS
from hrm_gym.play import main as play_main
from hrm_gym.play import no_display_reason
from hrm_gym.sudoku import MAX_EMPTY, SudokuEnv, board_to_string, parse_board, solve
from hrm_gym.sudoku import env as sudoku_env
from hrm_gym.sudoku.solver import MAX_GUESSES, SearchLimitError, search_flat

#: Generous wall-clock bound of one puzzle check (each takes a few milliseconds to ~0.1 s).
CHECK_SECONDS = 2.0

ESCARGOT = "1....7.9..3..2...8..96..5....53..9...1..8...26....4...3......1..4......7..7...3.."
ESCARGOT_SOLUTION = "162857493534129678789643521475312986913586742628794135356478219241935867897261354"
PLATINUM_BLONDE = ".......12........3..23..4....18....5.6..7.8.......9.....85.....9...4.5..47...6..."
GOLDEN_NUGGET = ".......39.....1..5..3.5.8....8.9...6.7...2...1..4.......9.8..5..2....6..4..7....."
ROYLE_17 = "000000010400000000020000000000050407008000300001090000300400200050100000000806000"
#: 17 givens, several solutions; a cell-only search wanders ~650k guesses (>10 s) to see it.
NORVIG_HARD1 = ".....6....59.....82....8....45........3........6..3.54...325..6.................."
#: 21 givens (two rows and three cells of Escargot's solution): a huge number of solutions.
MANY_21 = ESCARGOT_SOLUTION[:21] + "." * 60
#: Escargot with a 2 at (0, 1): breaks no rule, but no completion exists.
ESCARGOT_WRONG_2 = "12...7.9..3..2...8..96..5....53..9...1..8...26....4...3......1..4......7..7...3.."
#: A 5 twice in row 0.
CLASH = "5" + "." * 6 + "5" + "." * 73


def _timed_reset(puzzle: str):
    env = SudokuEnv()
    start = time.perf_counter()
    try:
        return env.reset(options={"puzzle": parse_board(puzzle)})
    finally:
        assert time.perf_counter() - start < CHECK_SECONDS


# ---- the Sudoku puzzle check ---------------------------------------------------------------
@pytest.mark.parametrize(
    "puzzle", [ESCARGOT, PLATINUM_BLONDE, GOLDEN_NUGGET, ROYLE_17], ids=["escargot", "platinum", "nugget", "17"]
)
def test_hard_unique_puzzles_are_accepted_fast(puzzle):
    obs, info = _timed_reset(puzzle)
    assert board_to_string(obs) == board_to_string(parse_board(puzzle))
    assert info["backtracks"] >= 0


def test_escargot_gets_its_published_solution():
    result = solve(parse_board(ESCARGOT))
    assert result.unique and board_to_string(result.solution) == ESCARGOT_SOLUTION


@pytest.mark.parametrize(
    ("puzzle", "message"),
    [
        (NORVIG_HARD1, "has several solutions"),
        (MANY_21, "has several solutions"),
        (ESCARGOT_WRONG_2, "has no solution"),
        (CLASH, r"breaks the Sudoku rules: digit 5 appears twice in row 0"),
    ],
    ids=["hard1-17-givens", "21-givens-many", "unsolvable", "clashing-givens"],
)
def test_bad_puzzles_are_refused_fast_with_the_reason(puzzle, message):
    with pytest.raises(ValueError, match=message):
        _timed_reset(puzzle)


def test_bad_puzzle_messages_name_the_puzzle():
    with pytest.raises(ValueError, match=f"puzzle {ESCARGOT_WRONG_2.replace('.', '[.]')} has no solution"):
        _timed_reset(ESCARGOT_WRONG_2)


def test_counting_search_settles_what_the_cell_search_cannot():
    flat = parse_board(NORVIG_HARD1).ravel().tolist()
    with pytest.raises(SearchLimitError):
        search_flat(flat, 2, max_guesses=MAX_GUESSES)  # the rating search alone
    solutions, _, guesses = search_flat(flat, 2, count=True)
    assert len(solutions) == 2 and guesses < 100


def test_the_guess_limit_ends_in_a_clear_error():
    start = time.perf_counter()
    with pytest.raises(SearchLimitError, match="made 5 guesses"):
        solve(parse_board(ESCARGOT), max_guesses=5)
    with pytest.raises(SearchLimitError, match=f"made {MAX_GUESSES} guesses"):
        solve(np.zeros((9, 9), dtype=np.uint8), max_solutions=10**9)  # more solutions than guesses
    assert time.perf_counter() - start < 2 * CHECK_SECONDS
    with pytest.raises(ValueError, match="max_guesses must be an integer >= 1, got 0"):
        solve(parse_board(ESCARGOT), max_guesses=0)


def test_the_env_reports_a_puzzle_past_the_guess_limit(monkeypatch):
    monkeypatch.setattr(sudoku_env, "solve", lambda board, max_solutions: solve(board, max_solutions, max_guesses=3))
    with pytest.raises(ValueError, match=r"puzzle 1\.\.\.\.7\.9.* could not be checked: .*made 3 guesses.*allowed"):
        SudokuEnv().reset(options={"puzzle": parse_board(ESCARGOT)})


# ---- Sudoku sizes -----------------------------------------------------------------------------
@pytest.mark.parametrize("n_empty", [0, (0, 5), [0, 0]])
def test_sudoku_refuses_a_full_board(n_empty):
    with pytest.raises(ValueError, match=rf"n_empty=.*full board.*allowed: 1\.\.{MAX_EMPTY}"):
        SudokuEnv(n_empty=n_empty)


def test_sudoku_with_one_empty_cell_can_be_won():
    env = SudokuEnv(n_empty=1, difficulty=None)
    obs, info = env.reset(seed=0)
    assert info["empty_cells"] == 1
    (action,) = np.flatnonzero(info["action_mask"])
    _, reward, terminated, _, info = env.step(int(action))
    assert terminated and info["solved"] and reward == 1.0


# ---- penalties and step limits ----------------------------------------------------------------
GRID_ENVS = [env_id for env_id in sorted(ENV_SPECS) if env_id != "HRMSudoku-v0"]


@pytest.mark.parametrize("env_id", GRID_ENVS)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "a lot"])
def test_grid_envs_refuse_a_non_finite_step_penalty(env_id, value):
    with pytest.raises(ValueError, match=rf"step_penalty must be a finite number, got {value!r}"):
        gym.make(env_id, step_penalty=value)


@pytest.mark.parametrize("env_id", sorted(ENV_SPECS))
@pytest.mark.parametrize("value", [1.7, 2.0, True, 0, -3, "10"])
def test_every_env_refuses_a_bad_max_steps(env_id, value):
    with pytest.raises(ValueError, match=rf"max_steps must be an integer >= 1, got {value!r}"):
        gym.make(env_id, max_steps=value)


@pytest.mark.parametrize("env_id", sorted(ENV_SPECS))
@pytest.mark.parametrize("value", [1, 7, np.int64(7), np.uint8(7)])
def test_every_env_takes_python_and_numpy_integers_as_max_steps(env_id, value):
    env = gym.make(env_id, max_steps=value)
    assert env.unwrapped.max_steps == int(value) and type(env.unwrapped.max_steps) is int
    env.close()


# ---- hrm-play without a display ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        ({"SDL_VIDEODRIVER": "dummy", "DISPLAY": ":0"}, "linux", "SDL_VIDEODRIVER=dummy"),
        ({"SDL_VIDEODRIVER": "offscreen"}, "darwin", "SDL_VIDEODRIVER=offscreen"),
        ({}, "linux", "neither DISPLAY nor WAYLAND_DISPLAY"),
        ({"DISPLAY": ":0"}, "linux", None),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", None),
        ({}, "win32", None),
    ],
)
def test_no_display_reason(environ, platform, expected):
    reason = no_display_reason(environ, platform)
    assert reason == expected if expected is None else expected in reason


def test_play_exits_at_once_without_a_display(monkeypatch, capsys):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    with pytest.raises(SystemExit) as exit_info:
        play_main(["HRMMaze-v0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no display" in err and "SDL_VIDEODRIVER=dummy" in err
    assert "python -m agents.render --expert --env HRMMaze-v0 --gif out.gif" in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY is how Linux finds a display")
def test_hrm_play_command_exits_with_status_2_without_display():
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    proc = subprocess.run(
        [sys.executable, "-m", "hrm_gym.play", "HRMForaging-v0"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "neither DISPLAY nor WAYLAND_DISPLAY" in proc.stderr and "agents.render" in proc.stderr
