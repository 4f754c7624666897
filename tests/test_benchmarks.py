"""The diagnostic benchmarks' own logic: maze failure kinds, the fleeing Chase agent."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest


def load(name: str):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CODES = {"#": 1, ".": 0, "S": 4, "G": 3}
# A loop: the short way across the top row, the long way around the bottom.
LOOP = [
    "#######",
    "#S...G#",
    "#.###.#",
    "#.....#",
    "#######",
]


def grid(rows):
    return np.array([[CODES[ch] for ch in row] for row in rows], dtype=np.uint8)


def marks(rows):
    return np.array([[ch == "x" for ch in row] for row in rows], dtype=np.int64)


@pytest.mark.parametrize(
    "marked, kind",
    [
        (["#######", "#x...x#", "#x###x#", "#xxxxx#", "#######"], "longer route"),  # the long way round
        (["#######", "#xx.xx#", "#.###.#", "#.....#", "#######"], "broken"),  # a gap
        (["#######", "#xxxxx#", "#x###.#", "#.....#", "#######"], "broken"),  # a branch
        (["#######", "#xxxxx#", "#.###.#", "#.....#", "x######"], "broken"),  # a wall cell marked
        (["#######", "#.xxxx#", "#.###.#", "#.....#", "#######"], "broken"),  # start not marked
    ],
)
def test_maze_failure_kinds(marked, kind):
    assert load("maze_breakdown").failure_kind(grid(LOOP), marks(marked)) == kind


def test_maze_failure_kind_separates_a_ring_beside_the_path():
    rows = [
        "#########",
        "#S.G#...#",
        "#####.#.#",
        "#####...#",
        "#########",
    ]
    marked = ["#########", "#xxx#xxx#", "#####x#x#", "#####xxx#", "#########"]  # the path plus a ring
    assert load("maze_breakdown").failure_kind(grid(rows), marks(marked)) == "broken"
    path_only = ["#########", "#xxx#...#", "#####.#.#", "#####...#", "#########"]
    assert load("maze_breakdown").failure_kind(grid(rows), marks(path_only)) == "longer route"  # (valid, in fact)


def test_chase_flee_benchmark_runs_on_a_tiny_setting(capsys):
    assert load("chase_flee").main(["--episodes", "3", "--radii", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(result["rows"]) == ["blind expert", "flee at radius 1", "planner (ceiling)"]
    for row in result["rows"].values():
        assert row["success_rate"] + row["caught_rate"] + row["timeout_rate"] == pytest.approx(1.0)
    assert result["rows"]["planner (ceiling)"]["success_rate"] == 1.0
    assert result["rows"]["flee at radius 1"]["caught_rate"] == 0.0  # it never steps into a capture


def test_puzzle_speed_benchmark_runs_on_a_tiny_setting(capsys):
    config = Path(__file__).resolve().parents[1] / "configs" / "maze_hrm.yaml"
    args = ["--config", str(config), "--seconds", "0.5", "--set", "task_params.sizes=[7]", "--set", "batch_size=4",
            "--set", "hrm.hidden_size=16", "--set", "segments=2", "--set", "num_threads=1"]  # fmt: skip
    assert load("puzzle_speed").main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["passes"] >= 1 and result["puzzles_per_s"] > 0 and result["batch_size"] == 4
    assert result["mean_segments"] == 2.0  # a fresh model halts no row early


def test_maze_breakdown_on_a_file_counts_every_failure(tmp_path, capsys):
    from hrm_gym.maze.generator import generate_mazes
    from tests.test_solve import make_checkpoint

    checkpoint = make_checkpoint(tmp_path / "ckpt", "maze")  # untrained: nearly every answer fails
    np.savez(tmp_path / "mazes.npz", layouts=generate_mazes(np.random.default_rng(0), 6, 9, 0.2))
    benchmark = load("maze_breakdown")
    assert benchmark.main(["--checkpoint", str(checkpoint), "--layouts", str(tmp_path / "mazes.npz"),
                           "--threads", "1", "--json-only"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert list(result["by_loop_fraction"]) == ["mazes.npz"] and result["by_loop_fraction"]["mazes.npz"]["n"] == 6
    failed = round(6 * (1 - result["valid_rate"]))
    assert result["failures"]["longer route"] + result["failures"]["broken"] == failed
    with pytest.raises(SystemExit):
        benchmark.main(["--checkpoint", str(checkpoint), "--layouts", str(tmp_path / "mazes.npz"), "--array", "nope"])
    assert "has no array 'nope'" in capsys.readouterr().err


def test_sudoku_bands_benchmark_scores_fresh_boards_per_band(tmp_path, capsys):
    from tests.test_solve import make_checkpoint

    checkpoint = make_checkpoint(tmp_path / "ckpt", "sudoku")  # untrained
    benchmark = load("sudoku_bands")
    assert benchmark.main(["--checkpoint", str(checkpoint), "--bands", "empty1", "moderate", "--per-band", "3",
                           "--segments", "1", "2", "--threads", "1", "--json-only"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert list(result["bands"]) == ["empty1", "moderate"]
    moderate = result["bands"]["moderate"]
    assert moderate["n"] == 3 and 28 <= moderate["mean_givens"] <= 40
    assert moderate["2"]["mean_segments"] == 2.0
    assert sum(row["n"] for row in moderate["1"]["exact_by_givens"].values()) == 3
    assert result["bands"]["empty1"]["mean_givens"] == 80 and "exact_by_givens" not in result["bands"]["empty1"]["1"]
    with pytest.raises(SystemExit):
        benchmark.main(["--checkpoint", str(checkpoint), "--bands", "tough"])
    assert "unknown band(s) ['tough']" in capsys.readouterr().err


def test_arc_table_trains_each_variant_once_and_tables_every_transformation(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = Path(__file__).resolve().parents[1] / "configs" / "arc_hrm.yaml"
    sets = ("[{name: trained, params: {split: trained, augmented: false}, n: 14, val_n: 7, segments: [2]}, "
            "{name: held_out, params: {split: held_out, augmented: false}, n: 6, segments: [2]}]")  # fmt: skip
    small = ["max_batches=2", "eval_every=2", "batch_size=4", "segments=2", "hrm.hidden_size=16",
             "hrm.puzzle_emb_ndim=16", "task_params.variants=2", "warmup_steps=1", f"eval_sets={sets}"]  # fmt: skip
    args = ["--config", str(config), "--out", "arc", "--variants", "hrm", "no_embedding", "--vote", "2",
            "--ttt-steps", "1", "--num-threads", "1", "--no-progress", *[p for s in small for p in ("--set", s)]]  # fmt: skip
    assert load("arc_table").main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert set(result) == {"hrm", "no_embedding"}
    assert set(result["hrm"]["scores"]) == {"one pass", "vote 2", "ttt 1"}
    assert set(result["no_embedding"]["scores"]) == {"one pass", "vote 2"}  # no embedding to tune
    assert result["hrm"]["training"]["batches"] == 2
    held = result["hrm"]["scores"]["ttt 1"]["sets"]["held_out"]["per_task"]
    assert set(held) == {"mirror", "fill_enclosed", "draw_line"}
    table = "\n".join(out)
    assert "| rotate | trained |" in table and "| mean | held_out |" in table
    mtime = (tmp_path / "arc" / "hrm" / "model.pt").stat().st_mtime
    assert load("arc_table").main([*args[:4], "--variants", "hrm", "--vote", "1", "--ttt-steps", "0",
                                   "--num-threads", "1"]) == 0  # fmt: skip
    assert (tmp_path / "arc" / "hrm" / "model.pt").stat().st_mtime == mtime  # scored again, not retrained
