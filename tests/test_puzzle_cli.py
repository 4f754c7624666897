"""The puzzle commands' interface: hrm-train --task, --model-path, hrm-eval's fresh held-out sets, clean errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agents import demo, solve, train_puzzle
from agents.config import ConfigError
from agents.puzzles import get_task
from agents.puzzles.checkpoint import load_checkpoint, save_checkpoint
from agents.puzzles.data import make_dataset
from hrm_gym.maze.generator import generate_mazes

ROOT = Path(__file__).resolve().parents[1]
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
    "warmup_steps=2",
    "num_threads=1",
    "hrm.forward_dtype=float32",
]
MAZE = [
    "task_params.sizes=[7]",
    "eval_sets=[{name: m7, params: {sizes: [7]}, n: 4, val_n: 3}, {name: m9, params: {sizes: [9]}, n: 3}]",
]
SUDOKU = ["train_pool=8", "eval_sets=[{name: e1, params: {mix: [{n_empty: 1}]}, n: 3, val_n: 2}]"]


def train_argv(out: Path, data: Path, *overrides: str) -> list[str]:
    argv = ["--out", str(out), "--no-progress"]
    for item in (*TINY, f"data_dir={data}", *overrides):
        argv += ["--set", item]
    return argv


@pytest.fixture(scope="module")
def maze_run(tmp_path_factory) -> Path:
    """A tiny maze run started with ``--task maze`` (data_seed 3: its splits draw at 3000 + ...)."""
    root = tmp_path_factory.mktemp("cli")
    out = root / "maze"
    assert train_puzzle.main(["--task", "maze", *train_argv(out, root / "data", "data_seed=3", *MAZE)]) == 0
    return out


def call(main, capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


# ---- hrm-train --task ------------------------------------------------------------------------
def test_default_config_for_a_task_is_its_config_file_and_unknown_tasks_list_the_known_ones():
    for task in ("maze", "sudoku"):
        path = train_puzzle.default_config_for(task)
        assert path == ROOT / "configs" / f"{task}_hrm.yaml" and path.is_file()
    with pytest.raises(ConfigError, match="unknown task 'chess'; known tasks: arc, maze, sudoku"):
        train_puzzle.default_config_for("chess")
    with pytest.raises(ConfigError, match="unknown task"):
        train_puzzle.default_config_for("../configs/maze")  # a name, never a path


def test_task_maze_trains_with_the_maze_default_config(maze_run):
    config = (maze_run / "config.yaml").read_text()
    assert "task: maze" in config and "block: conv" in config and "aux_weight: 0.5" in config  # the maze defaults
    assert json.loads((maze_run / "metrics.json").read_text())["batches"] == 2


def test_task_sudoku_trains_with_the_sudoku_default_config(tmp_path):
    out = tmp_path / "sudoku"
    assert train_puzzle.main(["--task", "sudoku", *train_argv(out, tmp_path / "data", *SUDOKU)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "sudoku" and metrics["config"]["hrm"]["attention_scope"] == "sudoku"


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["--task", "chess"], ["unknown task 'chess'; known tasks: arc, maze, sudoku"]),
        (
            ["--task", "sudoku", "--config", "configs/maze_hrm.yaml"],
            ["--task sudoku", "--config configs/maze_hrm.yaml"],
        ),
        (["--task", "maze", "--resume", "nowhere"], ["--resume", "drop --task maze"]),
        (["--task"], ["argument --task: expected one argument"]),
        (["--bogus", "1"], ["unrecognized arguments: --bogus 1"]),
    ],
)
def test_bad_train_arguments_fail_in_one_line_before_anything_is_written(tmp_path, capsys, argv, needles):
    out = tmp_path / "run"
    code, _, err = call(train_puzzle.main, capsys, *argv, "--out", out)
    assert_one_line_error(code, err, *needles)
    assert not out.exists()


def test_unwritable_run_directory_fails_in_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, _, err = call(train_puzzle.main, capsys, "--task", "maze", "--out", tmp_path / "file" / "run")
    assert_one_line_error(code, err, "file")


@pytest.mark.parametrize("command", ["module", "script"])
def test_the_commands_answer_an_unknown_task_without_a_traceback(command):
    if command == "module":
        argv = [sys.executable, "-m", "agents.train_puzzle"]
    else:
        script = Path(sys.executable).parent / "hrm-train"
        if not script.is_file():
            pytest.skip("hrm-train is not installed in this environment")
        argv = [str(script)]
    done = subprocess.run([*argv, "--task", "chess"], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "SDL_VIDEODRIVER": "dummy"})  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "error: unknown task 'chess'; known tasks: arc, maze, sudoku\n"


# ---- hrm-eval: --model-path and the fresh held-out sets ---------------------------------------
def solve_json(capsys, *argv) -> dict:
    code, out, err = call(solve.main, capsys, *argv, "--json", "--num-threads", "1")
    assert code == 0, err
    return json.loads(out)


def test_model_path_is_an_alias_of_checkpoint(maze_run, tmp_path, capsys):
    mazes = tmp_path / "mazes.npz"
    np.savez(mazes, layouts=generate_mazes(np.random.default_rng(0), 3, 7, 0.2))
    by_alias = solve_json(capsys, "--model-path", maze_run, "--layouts", mazes)
    by_name = solve_json(capsys, "--checkpoint", maze_run, "--puzzles", mazes)
    drop = ("solve_seconds",)
    assert {k: v for k, v in by_alias.items() if k not in drop} == {k: v for k, v in by_name.items() if k not in drop}
    assert by_alias["n"] == 3 and by_alias["file"] == str(mazes)


def test_without_layouts_the_recorded_eval_sets_are_drawn_with_seeds_training_never_used(maze_run, capsys):
    report = solve_json(capsys, "--model-path", maze_run)
    assert report["held_out"]["source"] == f"the train config recorded in {maze_run / 'model.pt'}"
    assert list(report["sets"]) == ["m7", "m9"]
    m7, m9 = report["sets"]["m7"], report["sets"]["m9"]
    assert (m7["n"], m7["grid"], m9["n"], m9["grid"]) == (4, [7, 7], 3, [9, 9])  # the recorded sizes
    assert (m7["seed"], m9["seed"]) == (3300, 3301)
    # Every set the run drew (validation, test) is cached with its seed: none is a held-out seed.
    cached = [json.loads(p.read_text())["seed"] for p in (maze_run.parent / "data" / "puzzles").glob("*.json")]
    assert sorted(cached) == [3001, 3200, 3201] and not {m7["seed"], m9["seed"]} & set(cached)
    _, task, record = load_checkpoint(maze_run)
    source, sets = solve.held_out_sets(task, record, ["m9"], 2)  # --eval-set m9 --limit 2
    assert [s["name"] for s in sets] == ["m9"] and len(sets[0]["inputs"]) == 2
    expected = make_dataset(task, sets[0]["params"], 2, 3301)
    np.testing.assert_array_equal(sets[0]["inputs"], expected["inputs"])


def test_held_out_seeds_are_never_a_training_split_seed():
    for data_seed in range(50):
        base = data_seed * 1000
        used = {base + train_puzzle.SPLIT_TRAIN, base + train_puzzle.SPLIT_VAL} | {base + 200 + i for i in range(100)}
        fresh = {train_puzzle.held_out_seed(data_seed, i) for i in range(100)}
        assert not fresh & used and len(fresh) == 100
    with pytest.raises(ConfigError, match="out of range"):
        train_puzzle.held_out_seed(0, 100)


def test_a_checkpoint_without_eval_sets_uses_its_tasks_default_config(maze_run, tmp_path, capsys):
    model, task, record = load_checkpoint(maze_run)
    bare = save_checkpoint(tmp_path / "bare", model, record["model"], task, {}, {"note": "no train config"})
    gif = tmp_path / "held.gif"
    report = solve_json(capsys, "--model-path", bare, "--eval-set", "mix11", "--limit", "2", "--gif", gif)
    assert report["held_out"]["source"] == str(ROOT / "configs" / "maze_hrm.yaml")
    assert list(report["sets"]) == ["mix11"] and report["sets"]["mix11"]["grid"] == [11, 11]
    assert report["sets"]["mix11"]["n"] == 2 and report["sets"]["mix11"]["seed"] == 300
    assert gif.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    code, out, err = call(solve.main, capsys, "--model-path", bare, "--limit", "1", "--num-threads", "1")
    assert code == 0 and "mix11 (11x11, seed 300): n=1" in out and "maze21 (21x21, seed 301): n=1" in out
    assert "mix21 (21x21, seed 302): n=1" in out


def test_help_says_which_held_out_sets_are_scored(capsys):
    with pytest.raises(SystemExit) as stop:
        solve.main(["--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--model-path" in text and "Without it: fresh held-out sets" in text
    assert "maze: mix11, maze21, mix21" in text and "data_seed*1000+300+i" in text


# ---- bad inputs: one line, exit 2 ---------------------------------------------------------
@pytest.mark.parametrize(
    "argv, needles",
    [
        ([], ["the following arguments are required: --checkpoint/--model-path"]),
        (["--segments", "0"], ["argument --segments: 0 is not allowed: it must be >= 1"]),
        (["--limit", "x"], ["argument --limit: 'x' is not an integer"]),
        (["--num-threads", "0"], ["argument --num-threads: 0 is not allowed"]),
        (["--batch-size", "0"], ["argument --batch-size: 0 is not allowed"]),
        (["--gif-count", "-1"], ["argument --gif-count"]),
        (["--halt", "z"], ["argument --halt: invalid choice: 'z'"]),
        (["--device", "tpu"], ["--device='tpu' is not allowed; choose auto, cpu, cuda or cuda:N"]),
        (["--views", "9"], ["views=9 must be 1..8"]),
        (["--array", "grids"], ["--array names an array of --layouts"]),
        (["--eval-set", "nope"], ["--eval-set nope: no such held-out set", "['m7', 'm9']"]),
        (["--layouts", "x.npz", "--eval-set", "m7"], ["--eval-set picks a held-out set"]),
        (["--layouts", "missing.npz"], ["no puzzle file at missing.npz"]),
        (["--weights", "final"], ["argument --weights: invalid choice: 'final'"]),
    ],
)
def test_bad_eval_arguments_fail_in_one_line(maze_run, capsys, argv, needles):
    checkpoint = [] if not argv else ["--checkpoint", maze_run]
    code, out, err = call(solve.main, capsys, *checkpoint, *argv, "--limit", "1")
    assert_one_line_error(code, err, *needles)
    assert out == ""


def test_unwritable_gif_fails_before_any_work(maze_run, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for main in (solve.main, demo.main):
        code, out, err = call(main, capsys, "--model-path", maze_run, "--gif", tmp_path / "file" / "a.gif")
        assert_one_line_error(code, err, "argument --gif: cannot write")
        code, out, err = call(main, capsys, "--model-path", maze_run, "--gif", tmp_path)
        assert_one_line_error(code, err, "is a directory, not a file")
        assert out == ""


# ---- hrm-demo ----------------------------------------------------------------------------
def test_demo_takes_model_path_and_refuses_bad_inputs_in_one_line(maze_run, capsys):
    code, out, _ = call(demo.main, capsys, "--model-path", maze_run, "--n", "1", "--size", "7", "--num-threads", "1")
    assert code == 0 and out.count("puzzle ") == 1
    for argv, needle in (
        (["--n", "0"], "argument --n: 0 is not allowed"),
        (["--seed", "-1"], "argument --seed: -1 is not allowed: it must be >= 0"),
        (["--segments", "0"], "argument --segments: 0 is not allowed"),
        (["--num-threads", "0"], "argument --num-threads: 0 is not allowed"),
        (["--size", "65"], "maze size 65 is not allowed"),
    ):
        code, out, err = call(demo.main, capsys, "--model-path", maze_run, *argv)
        assert_one_line_error(code, err, needle)


def test_demo_size_is_only_for_mazes(tmp_path, capsys):
    torch.manual_seed(0)
    from agents.puzzles.models import build_model, hrm_config

    task = get_task("sudoku")
    cfg = hrm_config("hrm", {"hidden_size": 16, "num_heads": 2, "expansion": 1.0, "mlp_multiple": 16},
                     vocab_size=task.input_vocab, vocab_out=task.output_vocab, aux_vocab=0, grid=(9, 9), segments=1)  # fmt: skip
    path = save_checkpoint(tmp_path / "sudoku", build_model("hrm", cfg), "hrm", task, {}, {})
    code, _, err = call(demo.main, capsys, "--model-path", path, "--size", "9")
    assert_one_line_error(code, err, "--size sets a maze's side", "'sudoku' model")
